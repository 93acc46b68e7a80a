"""SMS channel through Twilio: signed inbound webhooks, status callbacks, outbound through a local
fake of Twilio's Messages API (retries, permanent errors, 429), segments, opt-out keywords,
notify-only mode and conversation threading. Signatures come from the official twilio library."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
import requests

import switchboard_harness as h
import sms_harness as sms
from sms_harness import (HELP_TEXT, NOTICE_TEXT, START_REPLY, STOP_REPLY, TWILIO_FROM, TWIML_EMPTY,
                         FakeTwilioAPI, find_sms_conversations, patient_number, post_twilio, reply_raw,
                         twilio_form, twilio_in, twilio_status, wait_sms_conversation)
from switchboard_harness import wait_until


@pytest.fixture
def sms_env(make_daemon, fake_twilio):
    """Factory: a daemon with Twilio in+out (fake API), twilio.public_url = its own URL, and an admin Api."""
    def build(twilio: dict | None = None, sms_cfg: dict | None = None, public: bool = True, **kw):
        port = h.free_port()
        o = sms.sms_overrides(twilio_api=fake_twilio.url, twilio_public=f"http://127.0.0.1:{port}" if public else None,
                              twilio=twilio, sms=sms_cfg, **kw)
        d = make_daemon(overrides=o, port=port)
        return SimpleNamespace(d=d, api=d.api(d.add_agent(role="admin")), fake=fake_twilio)
    return build


def all_conversation_ids(api: h.Api) -> set:
    return {c["id"] for c in api.list(status="any", assignee="any")}


def open_sms(env, text: str = "hello from my phone", phone: str | None = None) -> tuple[str, str]:
    phone = phone or patient_number()
    twilio_in(env.d, phone, text)
    det = wait_sms_conversation(env.api, phone)
    return phone, det["conversation"]["id"]


def wait_msg(api: h.Api, cid: str, mid: str, pred, what: str, timeout: float = 15.0) -> dict:
    return wait_until(lambda: (lambda m: m if m and pred(m) else None)(api.message(cid, mid)), timeout, 0.1,
                      f"message {mid}: {what}")


# ---------------------------------------------------------------------------------------------
# inbound


def test_inbound_signed_sms_creates_sms_conversation(sms_env):
    env = sms_env()
    phone = patient_number()
    form = twilio_form(phone, "Hello ü & more, my knee hurts")
    r = post_twilio(env.d, form)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].split(";")[0].strip() == "text/xml", r.headers
    assert r.text == TWIML_EMPTY
    convs = find_sms_conversations(env.api, phone)
    assert len(convs) == 1, "the message must be committed before the 200"
    det = convs[0]
    assert det["conversation"]["channel"] == "sms"
    assert {"kind": "phone", "value": phone} in det["contact"]["identities"]
    msgs = det["messages"]
    assert [m["text"] for m in msgs] == ["Hello ü & more, my knee hurts"]
    assert msgs[0]["direction"] == "inbound" and msgs[0]["channel"] == "sms"


def test_inbound_number_formats_normalised(sms_env):
    env = sms_env()
    digits = patient_number()[2:]
    r = post_twilio(env.d, twilio_form(f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", "formatted number"))
    assert r.status_code == 200, r.text
    assert len(find_sms_conversations(env.api, "+1" + digits)) == 1


def test_inbound_mms_accepted(sms_env):
    env = sms_env()
    phone = patient_number()
    form = twilio_form(phone, "", NumMedia="1",
                       MediaUrl0=f"https://api.twilio.com/2010-04-01/Accounts/{sms.TWILIO_SID}/Messages/MM1/Media/ME1",
                       MediaContentType0="image/jpeg")
    r = post_twilio(env.d, form)
    assert r.status_code == 200, f"MMS without body -> {r.status_code} {r.text}"
    assert len(find_sms_conversations(env.api, phone)) == 1


@pytest.mark.parametrize("case", ["tampered_body", "wrong_url", "missing_header", "wrong_token", "garbage_header",
                                  "extra_param"])
def test_inbound_bad_signature_refused_nothing_stored(sms_env, case):
    env = sms_env()
    phone = patient_number()
    form = twilio_form(phone, "please refill my prescription")
    d = env.d
    good_url = d.config["twilio"]["public_url"] + sms.TWILIO_PATH
    if case == "tampered_body":
        signed = dict(form)
        form = dict(form, Body="please refill my prescription x10")
        r = post_twilio(d, form, sign_form=signed)
    elif case == "wrong_url":
        r = post_twilio(d, form, sign_url=good_url.replace("/twilio", "/twilio/other"))
    elif case == "missing_header":
        r = post_twilio(d, form, drop_signature=True)
    elif case == "wrong_token":
        r = post_twilio(d, form, token="not-the-token-000000")
    elif case == "garbage_header":
        r = post_twilio(d, form, signature="not base64 !!")
    else:
        signed = dict(form)
        form = dict(form, Injected="1")
        r = post_twilio(d, form, sign_form=signed)
    assert r.status_code == 403, f"{case}: {r.status_code} {r.text}"
    assert r.json()["error"]["code"] == "invalid_signature", r.text
    assert not find_sms_conversations(env.api, phone), f"{case}: a refused message was stored"
    assert all_conversation_ids(env.api) == set()


def test_inbound_signature_url_with_or_without_default_port(make_daemon, fake_twilio):
    """public_url without a port: a signature over the URL with explicit :80 is accepted too (Twilio may add it),
    and vice versa for https with :443."""
    port = h.free_port()
    d = make_daemon(port=port, overrides=sms.sms_overrides(twilio_api=fake_twilio.url,
                                                            twilio_public="http://sms.clinic.example"))
    api = d.api(d.add_agent(role="admin"))
    p1, p2 = patient_number(), patient_number()
    r = post_twilio(d, twilio_form(p1, "plain url"), sign_url="http://sms.clinic.example/webhooks/sms/twilio")
    assert r.status_code == 200, r.text
    r = post_twilio(d, twilio_form(p2, "url with :80"), sign_url="http://sms.clinic.example:80/webhooks/sms/twilio")
    assert r.status_code == 200, f"explicit default port refused: {r.status_code} {r.text}"
    r = post_twilio(d, twilio_form(patient_number(), "wrong port"),
                    sign_url="http://sms.clinic.example:8080/webhooks/sms/twilio")
    assert r.status_code == 403, r.text
    assert len(find_sms_conversations(api, p1)) == 1 and len(find_sms_conversations(api, p2)) == 1

    d2 = make_daemon(overrides=sms.sms_overrides(twilio_api=fake_twilio.url,
                                                 twilio_public="https://sms.clinic.example:443"))
    p3 = patient_number()
    r = post_twilio(d2, twilio_form(p3, "https without port"), sign_url="https://sms.clinic.example/webhooks/sms/twilio")
    assert r.status_code == 200, f"https URL without :443 refused: {r.status_code} {r.text}"


def test_inbound_signature_with_query_string(sms_env):
    env = sms_env()
    phone = patient_number()
    form = twilio_form(phone, "query string")
    url = env.d.url + sms.TWILIO_PATH + "?tenant=t1&x=%20y"
    sig = sms.twilio_signature(env.d.config["twilio"]["public_url"] + sms.TWILIO_PATH + "?tenant=t1&x=%20y", form)
    r = requests.post(url, data=form, headers={"X-Twilio-Signature": sig}, timeout=h.HTTP_TIMEOUT)
    assert r.status_code == 200, r.text


def test_inbound_without_public_url_uses_host_header(sms_env):
    env = sms_env(public=False)
    phone = patient_number()
    r = post_twilio(env.d, twilio_form(phone, "no public url"), sign_url=env.d.url + sms.TWILIO_PATH)
    assert r.status_code == 200, r.text
    assert len(find_sms_conversations(env.api, phone)) == 1


def test_inbound_validation_errors(sms_env):
    env = sms_env()
    d = env.d
    for missing in ("MessageSid", "From", "To"):
        form = twilio_form(patient_number(), "x")
        del form[missing]
        if missing == "MessageSid":
            del form["SmsSid"]
        r = post_twilio(d, form)
        assert r.status_code == 400, f"missing {missing}: {r.status_code} {r.text}"
        assert missing in r.json()["error"]["message"], f"400 must name {missing}: {r.text}"
    r = post_twilio(d, twilio_form("not-a-phone", "x"))
    assert r.status_code == 400 and "From" in r.json()["error"]["message"], r.text
    # not a form
    r = requests.post(d.url + sms.TWILIO_PATH, json=twilio_form(patient_number(), "x"),
                      headers={"X-Twilio-Signature": "x"}, timeout=h.HTTP_TIMEOUT)
    assert r.status_code == 415, f"JSON body: {r.status_code} {r.text}"
    assert all_conversation_ids(env.api) == set()


def test_inbound_refused_when_twilio_not_configured(make_daemon):
    d = make_daemon()
    r = post_twilio(d, twilio_form(patient_number(), "hi"))
    assert r.status_code == 503, f"no twilio.auth_token: {r.status_code} {r.text}"
    assert h.error_shape_ok(r)


def test_inbound_replay_stored_once(sms_env):
    env = sms_env()
    phone = patient_number()
    form = twilio_form(phone, "only once please")
    for _ in range(3):
        r = post_twilio(env.d, form)
        assert r.status_code == 200 and r.text == TWIML_EMPTY, r.text
    det = wait_sms_conversation(env.api, phone)
    assert sms.inbound_texts(det) == ["only once please"]


def test_inbound_concurrent_replays_one_message(sms_env):
    env = sms_env()
    phone = patient_number()
    form = twilio_form(phone, "twenty at once")
    results: list = []
    barrier = threading.Barrier(20)

    def go():
        s = requests.Session()
        barrier.wait(timeout=10)
        try:
            results.append(post_twilio(env.d, form, session=s).status_code)
        except requests.RequestException as e:
            results.append(repr(e))

    threads = [threading.Thread(target=go) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == [200] * 20, results
    convs = find_sms_conversations(env.api, phone)
    assert len(convs) == 1, f"{len(convs)} conversations"
    assert sms.inbound_texts(convs[0]) == ["twenty at once"]


# ---------------------------------------------------------------------------------------------
# threading


def test_same_number_threads_and_reopens_within_window(sms_env):
    env = sms_env()
    phone, cid = open_sms(env, "first")
    digits = phone[2:]
    twilio_in(env.d, f"1 ({digits[:3]}) {digits[3:6]}-{digits[6:]}", "second")  # same number, other format
    det = wait_sms_conversation(env.api, phone, 2)
    assert det["conversation"]["id"] == cid and sms.inbound_texts(det) == ["first", "second"]
    assert env.api.post(f"/conversations/{cid}/resolve").status_code == 200
    assert env.api.conversation(cid)["conversation"]["status"] == "resolved"
    twilio_in(env.d, phone, "third, after resolve")
    convs = find_sms_conversations(env.api, phone)
    assert [c["conversation"]["id"] for c in convs] == [cid], "within the reopen window the same conversation reopens"
    assert convs[0]["conversation"]["status"] == "open"
    assert sms.inbound_texts(convs[0]) == ["first", "second", "third, after resolve"]


def test_reopen_window_zero_starts_new_conversation(sms_env):
    env = sms_env(sms_cfg={"reopen_window_seconds": 0})
    phone, cid = open_sms(env, "first matter")
    assert env.api.post(f"/conversations/{cid}/resolve").status_code == 200
    twilio_in(env.d, phone, "new matter")
    convs = find_sms_conversations(env.api, phone)
    assert len(convs) == 2, [c["conversation"]["id"] for c in convs]
    assert convs[0]["conversation"]["id"] == cid and convs[0]["conversation"]["status"] == "resolved"
    assert sms.inbound_texts(convs[1]) == ["new matter"] and convs[1]["conversation"]["status"] == "open"
    assert convs[0]["contact"]["id"] == convs[1]["contact"]["id"]


def test_different_numbers_different_conversations(sms_env):
    env = sms_env()
    _, c1 = open_sms(env, "a")
    _, c2 = open_sms(env, "b")
    assert c1 != c2


# ---------------------------------------------------------------------------------------------
# outbound through the fake Twilio API


def test_reply_goes_to_twilio_then_status_callbacks(sms_env):
    env = sms_env()
    phone, cid = open_sms(env, "can I move my appointment?")
    r = reply_raw(env.api, cid, "Yes, see you Tuesday")
    assert r.status_code == 202, r.text
    j = r.json()
    mid = j["message_id"]
    assert j["delivery_status"] == "queued"
    assert j["sms"] == {"encoding": "GSM-7", "segments": 1, "units": len("Yes, see you Tuesday")}, j
    assert not j.get("warnings"), j
    call = env.fake.wait_body("Yes, see you Tuesday")
    assert call.auth_ok, "HTTP Basic sid:token"
    assert call.path == f"/2010-04-01/Accounts/{sms.TWILIO_SID}/Messages.json"
    assert call.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert call.form["To"] == phone
    assert call.form["From"] == TWILIO_FROM, "From = the number the patient wrote to"
    assert "MessagingServiceSid" not in call.form
    assert call.form["StatusCallback"] == env.d.config["twilio"]["public_url"] + "/webhooks/sms/twilio/status"
    m = wait_msg(env.api, cid, mid, lambda m: m["delivery_status"] == "sent", "sent after Twilio's 201")
    assert m["direction"] == "outbound" and m["channel"] == "sms"
    # status callbacks: queued (behind) is ignored, delivered advances, sent after delivered is ignored
    r = twilio_status(env.d, call.sid, "queued")
    assert r.status_code == 204, r.text
    assert env.api.message(cid, mid)["delivery_status"] == "sent", "delivery_status moved backwards"
    r = twilio_status(env.d, call.sid, "delivered")
    assert r.status_code == 204, r.text
    assert env.api.message(cid, mid)["delivery_status"] == "delivered"
    assert twilio_status(env.d, call.sid, "sent").status_code == 204
    assert env.api.message(cid, mid)["delivery_status"] == "delivered", "delivery_status moved backwards"
    # unknown sid: still 204 (nothing to update); unsigned: 403
    assert twilio_status(env.d, sms.sid(), "delivered").status_code == 204
    bad = post_twilio(env.d, {"MessageSid": call.sid, "MessageStatus": "failed"}, path=sms.TWILIO_STATUS_PATH,
                      drop_signature=True)
    assert bad.status_code == 403 and bad.json()["error"]["code"] == "invalid_signature", bad.text
    assert env.api.message(cid, mid)["delivery_status"] == "delivered"


def test_reply_uses_number_patient_wrote_to(sms_env):
    env = sms_env()
    phone = patient_number()
    other_clinic_number = "+15550007777"
    twilio_in(env.d, phone, "to the other line", to=other_clinic_number)
    cid = wait_sms_conversation(env.api, phone)["conversation"]["id"]
    env.api.reply(cid, "answer from the other line")
    call = env.fake.wait_body("answer from the other line")
    assert call.form["From"] == other_clinic_number


def test_messaging_service_sid_used_instead_of_from(sms_env):
    mg = "MG" + "ab" * 16
    env = sms_env(twilio={"messaging_service_sid": mg})
    phone, cid = open_sms(env)
    env.api.reply(cid, "via messaging service")
    call = env.fake.wait_body("via messaging service")
    assert call.form.get("MessagingServiceSid") == mg and "From" not in call.form, call.form


def test_status_callback_failed_with_error_code(sms_env):
    env = sms_env()
    phone, cid = open_sms(env)
    mid = env.api.reply(cid, "your lab results are ready")
    call = env.fake.wait_body("your lab results are ready")
    wait_msg(env.api, cid, mid, lambda m: m["delivery_status"] == "sent", "sent")
    assert twilio_status(env.d, call.sid, "undelivered", error_code="30007").status_code == 204
    m = env.api.message(cid, mid)
    assert m["delivery_status"] == "failed", m
    assert m["failure_reason"] == "Twilio error 30007: message filtered by the carrier", m
    assert twilio_status(env.d, call.sid, "delivered").status_code == 204
    assert env.api.message(cid, mid)["delivery_status"] == "failed", "failed is final"


@pytest.mark.slow
def test_run_of_500s_then_recovery_each_once_in_order(sms_env, fake_twilio):
    env = sms_env()
    state = {"fails": 0}

    def behavior(call, prior):
        if state["fails"] < 6:
            state["fails"] += 1
            return 500
        return None
    fake_twilio.behavior = behavior
    phone, cid = open_sms(env)
    texts = [f"reply number {i}" for i in range(1, 5)]
    mids = [env.api.reply(cid, t) for t in texts]
    for t in texts:
        env.fake.wait_body(t, timeout=30)
    for mid in mids:
        wait_msg(env.api, cid, mid, lambda m: m["delivery_status"] == "sent", "sent", timeout=20)
    time.sleep(1.5)  # stragglers
    accepted = env.fake.bodies_to(phone)
    assert accepted == texts, f"accepted order/count {accepted} != {texts}"
    assert state["fails"] == 6
    assert [c.status for c in fake_twilio.snapshot()][:6] == [500] * 6


@pytest.mark.slow
def test_flaky_twilio_several_conversations_order_per_conversation(sms_env, fake_twilio):
    """Every other attempt fails (500/503/429 without Retry-After); 3 conversations x 4 replies: each body accepted
    exactly once and, per conversation, in the order the agent sent them."""
    env = sms_env()
    n = {"i": 0}

    def behavior(call, prior):
        n["i"] += 1
        return (500, 503, 429)[n["i"] % 3] if n["i"] % 2 else None
    fake_twilio.behavior = behavior
    convs = [open_sms(env, f"conv {k}") for k in range(3)]
    sent: dict = {}
    for i in range(4):
        for k, (phone, cid) in enumerate(convs):
            t = f"c{k} reply {i}"
            env.api.reply(cid, t)
            sent.setdefault(phone, []).append(t)
    for phone, texts in sent.items():
        for t in texts:
            env.fake.wait_body(t, timeout=40)
    time.sleep(1.5)
    for phone, texts in sent.items():
        assert env.fake.bodies_to(phone) == texts, f"{phone}: accepted {env.fake.bodies_to(phone)} != {texts}"


@pytest.mark.slow
def test_queued_reply_survives_restart(sms_env, fake_twilio):
    env = sms_env()
    fake_twilio.behavior = lambda call, prior: 503
    phone, cid = open_sms(env, "hello")
    mid = env.api.reply(cid, "survives a crash")
    wait_until(lambda: [c for c in fake_twilio.snapshot() if c.body == "survives a crash"], 10, 0.05, "an attempt")
    env.d.kill9()
    fake_twilio.behavior = None
    env.d.start()
    env.fake.wait_body("survives a crash", timeout=20)
    wait_msg(env.api, cid, mid, lambda m: m["delivery_status"] == "sent", "sent after restart")
    time.sleep(1)
    assert env.fake.bodies_to(phone) == ["survives a crash"]


@pytest.mark.slow
def test_connection_refused_then_recovery(make_daemon):
    """The Twilio API is down (port refuses connections), then comes up: the reply goes out once."""
    port = h.free_port()
    fake = FakeTwilioAPI()
    down = h.Receiver(port=fake.port).reserve()  # hold the port, refuse connections
    try:
        d = make_daemon(port=port, overrides=sms.sms_overrides(twilio_api=fake.url,
                                                               twilio_public=f"http://127.0.0.1:{port}"))
        api = d.api(d.add_agent(role="admin"))
        env = SimpleNamespace(d=d, api=api, fake=fake)
        phone, cid = open_sms(env)
        mid = api.reply(cid, "sent while Twilio was down")
        time.sleep(1.5)
        assert api.message(cid, mid)["delivery_status"] == "queued"
        down.close()
        fake.start()
        fake.wait_body("sent while Twilio was down", timeout=20)
        wait_msg(api, cid, mid, lambda m: m["delivery_status"] == "sent", "sent")
        time.sleep(1)
        assert fake.bodies_to(phone) == ["sent while Twilio was down"]
    finally:
        down.close()
        fake.stop()


def test_21211_permanent_failure_no_retry(sms_env, fake_twilio):
    env = sms_env()
    fake_twilio.behavior = lambda call, prior: FakeTwilioAPI.error(
        21211, f"The 'To' number {call.form.get('To')} is not a valid phone number.")
    phone, cid = open_sms(env)
    mid = env.api.reply(cid, "this will not go")
    m = wait_msg(env.api, cid, mid, lambda m: m["delivery_status"] == "failed", "failed")
    assert m["failure_reason"] == "Twilio error 21211: invalid 'To' phone number", m
    assert phone not in m["failure_reason"] and phone[2:] not in m["failure_reason"]
    time.sleep(1.5)
    assert len([c for c in fake_twilio.snapshot() if c.body == "this will not go"]) == 1, "a 4xx with a code is not retried"
    assert env.api.message(cid, mid)["delivery_status"] == "failed"


def test_401_from_twilio_is_permanent(make_daemon, fake_twilio):
    port = h.free_port()
    d = make_daemon(port=port, overrides=sms.sms_overrides(twilio_api=fake_twilio.url,
                                                           twilio_public=f"http://127.0.0.1:{port}"))
    api = d.api(d.add_agent(role="admin"))
    fake_twilio.token = "some-other-token"  # our Basic auth no longer matches -> 401/20003
    env = SimpleNamespace(d=d, api=api, fake=fake_twilio)
    phone, cid = open_sms(env)
    mid = api.reply(cid, "bad creds")
    m = wait_msg(api, cid, mid, lambda m: m["delivery_status"] == "failed", "failed")
    assert m["failure_reason"].startswith("Twilio error 20003"), m


@pytest.mark.slow
def test_429_with_retry_after_is_honoured(sms_env, fake_twilio):
    env = sms_env()
    fake_twilio.behavior = lambda call, prior: (
        (429, {"Retry-After": "2"}, {"code": 20429, "message": "Too Many Requests", "status": 429})
        if not prior else None)
    phone, cid = open_sms(env)
    mid = env.api.reply(cid, "rate limited reply")
    env.fake.wait_body("rate limited reply", timeout=20)
    wait_msg(env.api, cid, mid, lambda m: m["delivery_status"] == "sent", "sent")
    calls = [c for c in fake_twilio.snapshot() if c.body == "rate limited reply"]
    assert [c.status for c in calls] == [429, 201], [c.status for c in calls]
    gap = calls[1].t - calls[0].t
    assert gap >= 1.8, f"retried after {gap:.2f}s despite Retry-After: 2 (max_backoff_ms is 500)"


# ---------------------------------------------------------------------------------------------
# segments


@pytest.mark.parametrize("text,encoding,segments,units", [
    ("a" * 160, "GSM-7", 1, 160),
    ("a" * 161, "GSM-7", 2, 161),
    ("a" * 306, "GSM-7", 2, 306),
    ("a" * 307, "GSM-7", 3, 307),
    ("€" * 10, "GSM-7", 1, 20),          # extension table: 2 septets each
    ("✓" * 70, "UCS-2", 1, 70),
    ("✓" * 71, "UCS-2", 2, 71),
    ("héllo ü ✓", "UCS-2", 1, 9),
    ("😀" * 35, "UCS-2", 1, 70),         # astral characters are 2 UTF-16 units each
    ("😀" * 36, "UCS-2", 2, 72),
    ("{}[]~^|\\" * 20, "GSM-7", 3, 320),  # 160 extension chars, 2 septets each: 76 per 153-septet part
    # an escape sequence (ESC + '€') must not be split across two parts (3GPP TS 23.038): part 1 holds the
    # 152 'a', part 2 starts with the '€' -> 3 parts although 306 septets would fit 2 x 153
    ("a" * 152 + "€" + "a" * 152, "GSM-7", 3, 306),
])
def test_reply_segments_reported(sms_env, text, encoding, segments, units):
    env = sms_env()
    _, cid = open_sms(env)
    r = reply_raw(env.api, cid, text)
    assert r.status_code == 202, r.text
    j = r.json()
    assert j["sms"] == {"encoding": encoding, "segments": segments, "units": units}, j
    assert not j.get("warnings"), j


def test_reply_segment_warning(sms_env):
    env = sms_env()
    _, cid = open_sms(env)
    r = reply_raw(env.api, cid, "b" * (153 * 3 + 1))
    assert r.status_code == 202, r.text
    j = r.json()
    assert j["sms"]["segments"] == 4 and j["sms"]["encoding"] == "GSM-7", j
    assert isinstance(j.get("warnings"), list) and len(j["warnings"]) == 1 and "4" in j["warnings"][0], j
    r = reply_raw(env.api, cid, "✓" * (67 * 3 + 1))
    j = r.json()
    assert j["sms"]["segments"] == 4 and j["sms"]["encoding"] == "UCS-2" and j.get("warnings"), j
    r = reply_raw(env.api, cid, "c" * (153 * 3))
    assert r.json()["sms"]["segments"] == 3 and not r.json().get("warnings"), r.json()


def test_portal_reply_has_no_sms_block(make_daemon, receiver):
    d = make_daemon(outbound_url=receiver.url)
    api = d.api(d.add_agent(role="admin"))
    acc = d.webhook(h.portal_event(text="portal hello", thread_id=h.uid("T-")))
    cid = acc.json()["conversation_id"]
    r = reply_raw(api, cid, "portal reply")
    assert r.status_code == 202 and "sms" not in r.json() or r.json().get("sms") is None, r.json()


# ---------------------------------------------------------------------------------------------
# opt-out keywords


def assert_opted_out_409(api: h.Api, cid: str, keyword: str = "STOP"):
    r = reply_raw(api, cid, "are you there?")
    assert r.status_code == 409, f"reply after {keyword}: {r.status_code} {r.text}"
    err = r.json()["error"]
    assert err["code"] == "conflict", err
    assert err["message"].startswith(f"the patient opted out of SMS (replied {keyword} at "), err


@pytest.mark.parametrize("stop,start", [("STOP", "START"), ("stop.", "unstop"), ("Unsubscribe!", "YES"),
                                        ("ALTO", "START"), ("parar", "start"), ("cancel", "Start"),
                                        ("END", "START"), ("quit", "START"), ("StopAll", "START"),
                                        ("  Stop!  ", "start.")])
def test_stop_and_start_keywords(sms_env, stop, start):
    env = sms_env(twilio={"send_keyword_replies": True})
    phone, cid = open_sms(env, "hello")
    twilio_in(env.d, phone, stop)
    env.fake.wait_body(STOP_REPLY, to=phone)
    r = reply_raw(env.api, cid, "are you there?")
    assert r.status_code == 409, f"reply after {stop!r}: {r.status_code} {r.text}"
    assert r.json()["error"]["code"] == "conflict"
    assert r.json()["error"]["message"].startswith("the patient opted out of SMS (replied "), r.text
    twilio_in(env.d, phone, start)
    env.fake.wait_body(START_REPLY, to=phone)
    env.api.reply(cid, "welcome back")
    env.fake.wait_body("welcome back", to=phone)
    assert "are you there?" not in env.fake.bodies_to(phone)


def test_stop_409_message_names_keyword_and_time(sms_env):
    env = sms_env(twilio={"send_keyword_replies": True})
    phone, cid = open_sms(env, "hello")
    twilio_in(env.d, phone, "STOP")
    assert_opted_out_409(env.api, cid, "STOP")


def test_help_keywords_send_help_text(sms_env):
    env = sms_env(twilio={"send_keyword_replies": True})
    for word in ("HELP", "info", "Ayuda"):
        phone, cid = open_sms(env, word)
        call = env.fake.wait_body(HELP_TEXT, to=phone)
        assert call.form["From"] == TWILIO_FROM
        env.api.reply(cid, f"after {word} replies still work")
        env.fake.wait_body(f"after {word} replies still work", to=phone)


def test_stop_inside_sentence_is_ordinary_message(sms_env):
    env = sms_env(twilio={"send_keyword_replies": True})
    phone, cid = open_sms(env, "Stop calling me")
    env.api.reply(cid, "sorry, noted")
    env.fake.wait_body("sorry, noted", to=phone)
    assert env.fake.bodies_to(phone) == ["sorry, noted"], "no compliance reply for an ordinary sentence"


def test_keyword_replies_off_by_default_for_twilio(sms_env):
    env = sms_env()  # twilio.send_keyword_replies defaults to false: Twilio's own Advanced Opt-Out answers
    phone, cid = open_sms(env, "hello")
    twilio_in(env.d, phone, "STOP")
    assert_opted_out_409(env.api, cid)
    twilio_in(env.d, phone, "HELP")
    time.sleep(1.0)
    assert env.fake.bodies_to(phone) == [], "the daemon must not answer keywords itself"
    twilio_in(env.d, phone, "START")
    env.api.reply(cid, "ok again")
    env.fake.wait_body("ok again", to=phone)


def test_keywords_are_stored_as_messages(sms_env):
    env = sms_env(twilio={"send_keyword_replies": True})
    phone, cid = open_sms(env, "hello")
    twilio_in(env.d, phone, "STOP")
    twilio_in(env.d, phone, "START")
    det = wait_sms_conversation(env.api, phone, 3)
    assert sms.inbound_texts(det) == ["hello", "STOP", "START"]


@pytest.mark.slow
def test_reply_queued_before_stop_is_failed_at_send_time(sms_env, fake_twilio):
    env = sms_env()
    gate = {"open": False}
    fake_twilio.behavior = lambda call, prior: None if gate["open"] else 503
    phone, cid = open_sms(env, "hello")
    mid = env.api.reply(cid, "queued before the STOP")
    wait_until(lambda: [c for c in fake_twilio.snapshot() if c.body == "queued before the STOP"], 10, 0.05,
               "a first (failed) attempt")
    twilio_in(env.d, phone, "STOP")
    gate["open"] = True
    m = wait_msg(env.api, cid, mid, lambda m: m["delivery_status"] == "failed", "failed after STOP", timeout=15)
    assert m["failure_reason"].startswith("the patient opted out of SMS"), m
    time.sleep(1)
    assert "queued before the STOP" not in env.fake.bodies_to(phone), "sent to a number that opted out"


def test_ordinary_message_after_stop_keeps_opt_out(sms_env):
    """Only START/UNSTOP/YES opt back in; any other text from an opted-out number does not."""
    env = sms_env(twilio={"send_keyword_replies": True})
    phone, cid = open_sms(env, "hello")
    twilio_in(env.d, phone, "STOP")
    twilio_in(env.d, phone, "actually I have a question")
    wait_sms_conversation(env.api, phone, 3)
    assert_opted_out_409(env.api, cid)


def test_help_after_stop_is_still_answered(sms_env):
    """Compliance replies go out even though the number opted out."""
    env = sms_env(twilio={"send_keyword_replies": True})
    phone, cid = open_sms(env, "hello")
    twilio_in(env.d, phone, "STOP")
    env.fake.wait_body(STOP_REPLY, to=phone)
    twilio_in(env.d, phone, "HELP")
    env.fake.wait_body(HELP_TEXT, to=phone)
    assert_opted_out_409(env.api, cid)


def test_notify_only_does_not_replace_compliance_replies(sms_env):
    env = sms_env(twilio={"send_keyword_replies": True}, sms_cfg={"notify_only": True})
    phone, cid = open_sms(env, "HELP")
    env.fake.wait_body(HELP_TEXT, to=phone)
    twilio_in(env.d, phone, "STOP")
    env.fake.wait_body(STOP_REPLY, to=phone)
    time.sleep(0.5)
    assert NOTICE_TEXT not in env.fake.bodies_to(phone)


def test_same_id_from_two_gateways_not_deduped_together(make_daemon, fake_twilio):
    """Dedupe keys are per gateway: a Kannel id equal to a Twilio MessageSid is a different message."""
    port = h.free_port()
    d = make_daemon(port=port, overrides=sms.sms_overrides(twilio_api=fake_twilio.url, kannel_inbound=True,
                                                           twilio_public=f"http://127.0.0.1:{port}"))
    api = d.api(d.add_agent(role="admin"))
    shared = sms.sid()
    p1, p2 = patient_number(), patient_number()
    assert post_twilio(d, twilio_form(p1, "via twilio", message_sid=shared)).status_code == 200
    r = requests.get(f"{d.url}{sms.KANNEL_PATH}", params={"secret": sms.KANNEL_SECRET, "from": p2, "to": "12345",
                                                          "text": "via kannel", "id": shared}, timeout=h.HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    assert sms.inbound_texts(wait_sms_conversation(api, p2)) == ["via kannel"], \
        "a Kannel MO whose id equals an earlier Twilio MessageSid was dropped as a duplicate"


def test_opt_out_is_per_number_across_gateways(make_daemon, fake_twilio):
    """STOP through Twilio blocks replies; START through Kannel (same number) re-enables them."""
    port = h.free_port()
    d = make_daemon(port=port, overrides=sms.sms_overrides(twilio_api=fake_twilio.url, kannel_inbound=True,
                                                           twilio_public=f"http://127.0.0.1:{port}"))
    api = d.api(d.add_agent(role="admin"))
    env = SimpleNamespace(d=d, api=api, fake=fake_twilio)
    phone, cid = open_sms(env, "hello")
    twilio_in(d, phone, "STOP")
    assert_opted_out_409(api, cid)
    r = requests.get(f"{d.url}{sms.KANNEL_PATH}", params={"secret": sms.KANNEL_SECRET, "from": phone, "to": "12345",
                                                          "text": "START", "id": h.uid()}, timeout=h.HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    det = wait_sms_conversation(api, phone, 3)
    assert det["conversation"]["id"] == cid
    r = reply_raw(api, cid, "back again")
    assert r.status_code == 202, r.text


# ---------------------------------------------------------------------------------------------
# notify-only


def test_notify_only_sends_notice_text(sms_env):
    env = sms_env(sms_cfg={"notify_only": True})
    phone, cid = open_sms(env, "what were my results?")
    r = reply_raw(env.api, cid, "Your potassium was 5.9, please call us")
    assert r.status_code == 202, r.text
    assert r.json()["sms"]["encoding"] == "GSM-7", r.json()
    assert r.json()["sms"]["units"] == len(NOTICE_TEXT), "segments describe what the phone receives: the notice"
    mid = r.json()["message_id"]
    env.fake.wait_body(NOTICE_TEXT, to=phone)
    wait_msg(env.api, cid, mid, lambda m: m["delivery_status"] == "sent", "sent")
    time.sleep(0.5)
    assert "Your potassium was 5.9, please call us" not in [c.body for c in env.fake.snapshot()]
    assert env.api.message(cid, mid)["text"] == "Your potassium was 5.9, please call us"


# ---------------------------------------------------------------------------------------------
# config


def test_config_env_override_enables_twilio(make_daemon, fake_twilio):
    port = h.free_port()
    env_vars = {"SWITCHBOARD_TWILIO_AUTH_TOKEN": sms.TWILIO_TOKEN,
                "SWITCHBOARD_TWILIO_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    d = make_daemon(port=port, env=env_vars)
    d.config.setdefault("twilio", {})["public_url"] = f"http://127.0.0.1:{port}"
    phone = patient_number()
    r = post_twilio(d, twilio_form(phone, "env configured"))
    assert r.status_code == 200, r.text


def test_invalid_account_sid_rejected_by_check_config(tmp_path):
    cfg = h.merge(h.default_config(tmp_path, h.free_port()), {"twilio": {"account_sid": "AC123", "auth_token": "x"}})
    p = tmp_path / "bad.yaml"
    p.write_text(h.to_yaml(cfg))
    cp = h.check_config(p)
    assert cp.returncode != 0 and "twilio.account_sid" in (cp.stdout + cp.stderr), (cp.returncode, cp.stdout, cp.stderr)
