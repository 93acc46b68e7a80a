"""SMS channel through a real Kannel (bearerbox + smsbox, private config on free loopback ports) with
the fake SMSC link driven from the test (sms_harness.FakeSMSC): MO in (ASCII, Unicode, GET and POST
services), agent replies out through cgi-bin/sendsms to the SMSC, delivery reports back, opt-out
keywords, gateway choice, and direct requests to the Kannel webhook (auth, validation, dedupe,
UCS-2). Skipped when Kannel is not installed."""

from __future__ import annotations

import time
import urllib.parse
from types import SimpleNamespace

import pytest
import requests

import mail_harness as mh
import switchboard_harness as h
import sms_harness as sms
from sms_harness import (CLINIC_SHORT, HELP_TEXT, KANNEL_PATH, KANNEL_SECRET, START_REPLY, STOP_REPLY,
                         find_sms_conversations, patient_number, reply_raw, wait_sms_conversation)
from switchboard_harness import wait_until

pytestmark = pytest.mark.skipif(sms.kannel_installed() is not None,
                                reason=str(sms.kannel_installed()))


@pytest.fixture
def kenv(make_daemon, make_kannel, request):
    """Factory: Kannel (started, fake SMSC connected) + a daemon with Kannel in/out pointing at it."""
    made = []

    def build(kannel: dict | None = None, sms_cfg: dict | None = None, twilio_api: str | None = None,
              twilio: dict | None = None, connect: bool = True, twilio_inbound: bool = False,
              log_level: str | None = None, outbox: dict | None = None):
        port = h.free_port()
        k = make_kannel(port)
        o = sms.sms_overrides(kannel_sendsms=k.sendsms_url, kannel_public=f"http://127.0.0.1:{port}",
                              kannel=kannel, sms=sms_cfg, twilio_api=twilio_api,
                              twilio_public=f"http://127.0.0.1:{port}" if (twilio_api or twilio_inbound) else None,
                              twilio=twilio, twilio_inbound=twilio_inbound)
        if log_level:
            o["log"] = {"level": log_level, "format": "logfmt"}
        if outbox:
            o["outbox"] = outbox
        d = make_daemon(overrides=o, port=port)
        smsc = k.connect_smsc() if connect else None
        if smsc:
            made.append(smsc)
        return SimpleNamespace(d=d, k=k, smsc=smsc, api=d.api(d.add_agent(role="admin")))

    yield build
    for c in made:
        c.close()


def mo(env, text: str, phone: str | None = None, to: str = CLINIC_SHORT, n: int | None = None) -> tuple[str, dict]:
    """Inject an MO at the fake SMSC and wait until the daemon's conversation holds it."""
    phone = phone or patient_number()
    before = len(sms.inbound_texts(find_sms_conversations(env.api, phone)[-1])) if n is None and \
        find_sms_conversations(env.api, phone) else 0
    env.smsc.send_mo(phone, to, text)
    det = wait_sms_conversation(env.api, phone, n or before + 1, timeout=20)
    return phone, det


def kannel_get(d: h.Daemon, params: dict | None = None, raw_query: str | None = None) -> requests.Response:
    q = raw_query if raw_query is not None else urllib.parse.urlencode(params or {})
    return requests.get(f"{d.url}{KANNEL_PATH}?{q}", timeout=h.HTTP_TIMEOUT)


def wait_msg(api: h.Api, cid: str, mid: str, status: str, timeout: float = 20.0) -> dict:
    return api.wait_delivery(cid, mid, status, timeout=timeout)


# ---------------------------------------------------------------------------------------------
# MO through real Kannel


def test_mo_ascii_through_kannel(kenv):
    env = kenv()
    phone, det = mo(env, "hello from kannel, my ankle is swollen")
    assert sms.inbound_texts(det) == ["hello from kannel, my ankle is swollen"]
    assert det["conversation"]["channel"] == "sms"
    assert {"kind": "phone", "value": phone} in det["contact"]["identities"]
    # the 200 had an empty body: Kannel sends nothing back for an ordinary message
    time.sleep(1.5)
    assert env.smsc.drain() == [], "Kannel sent an SMS back: the daemon's MO answer was not empty"


def test_mo_unicode_through_kannel(kenv):
    env = kenv()
    phone, det = mo(env, "héllo ü ✓")
    assert sms.inbound_texts(det) == ["héllo ü ✓"]
    phone2, det2 = mo(env, "Привет, 你好 😀")
    assert sms.inbound_texts(det2) == ["Привет, 你好 😀"]


def test_mo_post_service_through_kannel(kenv):
    """sms-service with post-url: text in the body, sender in X-Kannel-From, id in the query."""
    env = kenv()
    phone, det = mo(env, "post this via the body ü")
    assert sms.inbound_texts(det) == ["post this via the body ü"]


def test_mo_threads_per_number(kenv):
    env = kenv()
    phone, det = mo(env, "one")
    phone, det2 = mo(env, "two", phone=phone)
    assert det2["conversation"]["id"] == det["conversation"]["id"]
    assert sms.inbound_texts(det2) == ["one", "two"]


# ---------------------------------------------------------------------------------------------
# MT (agent replies) through real Kannel to the fake SMSC, DLRs back


def test_reply_reaches_smsc_and_dlr_marks_delivered(kenv):
    env = kenv()
    phone, det = mo(env, "can I get a callback?")
    cid = det["conversation"]["id"]
    r = reply_raw(env.api, cid, "We will call you at 3pm")
    assert r.status_code == 202, r.text
    assert r.json()["sms"]["encoding"] == "GSM-7"
    mid = r.json()["message_id"]
    sender, receiver, text, typ = env.smsc.recv_mt(timeout=20)
    assert (sender, receiver, text) == (CLINIC_SHORT, phone, "We will call you at 3pm"), (sender, receiver, text, typ)
    assert typ == "text"
    # fake SMSC acks (DLR 8) and reports delivery (DLR 1)
    m = wait_msg(env.api, cid, mid, "delivered")
    assert m["failure_reason"] is None


def test_unicode_reply_reaches_smsc(kenv):
    env = kenv()
    phone, det = mo(env, "hola")
    cid = det["conversation"]["id"]
    r = reply_raw(env.api, cid, "Sí, mañana ✓ à 9h")
    assert r.status_code == 202 and r.json()["sms"]["encoding"] == "UCS-2", r.text
    sender, receiver, text, typ = env.smsc.recv_mt(timeout=20)
    assert (receiver, text, typ) == (phone, "Sí, mañana ✓ à 9h", "ucs-2")
    wait_msg(env.api, cid, r.json()["message_id"], "delivered")


def test_several_replies_in_order(kenv):
    env = kenv()
    phone, det = mo(env, "hi")
    cid = det["conversation"]["id"]
    texts = [f"part {i} of the instructions" for i in range(1, 5)]
    mids = [env.api.reply(cid, t) for t in texts]
    got = [env.smsc.recv_mt(timeout=20)[2] for _ in texts]
    assert got == texts
    for mid in mids:
        wait_msg(env.api, cid, mid, "delivered")
    time.sleep(1)
    assert env.smsc.drain() == [], "duplicates at the SMSC"


def test_sendsms_wrong_credentials_fails_message(kenv):
    env = kenv(kannel={"password": "wrong-password-xyz"})
    phone, det = mo(env, "hi")
    cid = det["conversation"]["id"]
    mid = env.api.reply(cid, "will be refused")
    m = wait_msg(env.api, cid, mid, "failed")
    assert m["failure_reason"].startswith("Kannel refused the credentials"), m
    assert "wrong-password" not in m["failure_reason"]


def test_reply_queued_while_smsc_down_is_sent_when_link_up(kenv):
    """No SMSC connected: sendsms answers '3: Queued for later delivery' -> 'sent'; delivered after connect."""
    env = kenv(connect=False)
    phone = patient_number()
    r = kannel_get(env.d, {"secret": KANNEL_SECRET, "from": phone, "to": CLINIC_SHORT, "text": "direct mo",
                           "id": h.uid("kid-"), "coding": "0"})
    assert r.status_code == 200, r.text
    cid = wait_sms_conversation(env.api, phone)["conversation"]["id"]
    mid = env.api.reply(cid, "queued in kannel")
    wait_msg(env.api, cid, mid, "sent")
    smsc = env.k.connect_smsc()
    try:
        assert smsc.recv_mt(timeout=20)[2] == "queued in kannel"
        wait_msg(env.api, cid, mid, "delivered")
    finally:
        smsc.close()


def test_kannel_down_then_back_delivers_each_reply_once_in_order(kenv):
    """Kannel itself away (bearerbox and smsbox stopped: sendsms refuses connections) while an
    agent answers three times: the outbox retries, visibly and bounded; once Kannel is back,
    the three reach the SMSC exactly once each, in the order written, and none is dead-lettered."""
    env = kenv(outbox={"initial_backoff_ms": 100, "max_backoff_ms": 500})
    phone, det = mo(env, "are you there?")
    cid = det["conversation"]["id"]
    env.smsc.close()
    env.k.stop()
    texts = [f"answer {i} while the gateway is away" for i in range(1, 4)]
    mids = [env.api.reply(cid, t) for t in texts]

    def retries() -> float:
        return mh.metric_value(env.d, "switchboard_messages_out_total", {"channel": "sms", "outcome": "retry"})

    wait_until(lambda: retries() >= 2, 20, 0.2, "SMS retries while Kannel is down")
    time.sleep(2)
    bounded = retries()
    # One attempt at a time per conversation, backoff doubling to 500 ms: a few a second at most.
    assert bounded < 40, f"{bounded} retries in a few seconds: a hot loop"
    env.k.start()
    smsc = env.k.connect_smsc()
    try:
        got = [smsc.recv_mt(timeout=30)[2] for _ in texts]
        assert got == texts
        for mid in mids:
            wait_msg(env.api, cid, mid, "delivered", timeout=30)
        time.sleep(1.5)
        assert smsc.drain() == [], "a reply reached the SMSC twice"
    finally:
        smsc.close()
    outbound = [m for m in env.api.conversation(cid)["messages"] if m["direction"] == "outbound"]
    # None failed (a dead letter would be "failed").
    assert [m["delivery_status"] for m in outbound] == ["delivered"] * 3, outbound


# ---------------------------------------------------------------------------------------------
# keywords via Kannel (kannel.send_keyword_replies defaults to true)


def test_stop_via_kannel_sends_stop_reply_and_blocks_replies(kenv):
    env = kenv()
    phone, det = mo(env, "hello")
    cid = det["conversation"]["id"]
    env.smsc.send_mo(phone, CLINIC_SHORT, "STOP")
    _, receiver, text, _ = env.smsc.recv_mt(timeout=20)
    assert (receiver, text) == (phone, STOP_REPLY)
    r = reply_raw(env.api, cid, "are you there?")
    assert r.status_code == 409, f"{r.status_code} {r.text}"
    assert r.json()["error"]["code"] == "conflict"
    assert r.json()["error"]["message"].startswith("the patient opted out of SMS (replied STOP at "), r.text
    env.smsc.send_mo(phone, CLINIC_SHORT, "start")
    assert env.smsc.recv_mt(timeout=20)[2] == START_REPLY
    env.api.reply(cid, "glad to have you back")
    assert env.smsc.recv_mt(timeout=20)[2] == "glad to have you back"


@pytest.mark.parametrize("word", ["HELP", "ayuda"])
def test_help_via_kannel_sends_help_text(kenv, word):
    env = kenv()
    phone = patient_number()
    env.smsc.send_mo(phone, CLINIC_SHORT, word)
    sender, receiver, text, _ = env.smsc.recv_mt(timeout=20)
    assert (receiver, text) == (phone, HELP_TEXT)
    det = wait_sms_conversation(env.api, phone)
    assert sms.inbound_texts(det) == [word]


def test_alto_via_kannel(kenv):
    env = kenv()
    phone, det = mo(env, "hola")
    env.smsc.send_mo(phone, CLINIC_SHORT, "Alto")
    assert env.smsc.recv_mt(timeout=20)[2] == STOP_REPLY
    assert reply_raw(env.api, det["conversation"]["id"], "x").status_code == 409


def test_notify_only_via_kannel(kenv):
    env = kenv(sms_cfg={"notify_only": True})
    phone, det = mo(env, "my results?")
    env.api.reply(det["conversation"]["id"], "Your A1C is 9.1")
    assert env.smsc.recv_mt(timeout=20)[2] == sms.NOTICE_TEXT


# ---------------------------------------------------------------------------------------------
# gateway choice (both gateways configured)


def test_reply_goes_through_gateway_patient_used(kenv, fake_twilio):
    env = kenv(twilio_api=fake_twilio.url)
    # patient A writes through Kannel -> reply via Kannel
    pa, det_a = mo(env, "via kannel")
    env.api.reply(det_a["conversation"]["id"], "answer A")
    assert env.smsc.recv_mt(timeout=20)[2] == "answer A"
    # patient B writes through Twilio -> reply via Twilio
    pb = patient_number()
    sms.twilio_in(env.d, pb, "via twilio")
    cid_b = wait_sms_conversation(env.api, pb)["conversation"]["id"]
    env.api.reply(cid_b, "answer B")
    fake_twilio.wait_body("answer B", to=pb)
    # patient A now writes through Twilio -> the next reply goes via Twilio
    sms.twilio_in(env.d, pa, "now via twilio")
    wait_sms_conversation(env.api, pa, 2)
    env.api.reply(det_a["conversation"]["id"], "answer A2")
    fake_twilio.wait_body("answer A2", to=pa)
    time.sleep(1)
    assert [m[2] for m in env.smsc.drain()] == []
    assert "answer A" not in fake_twilio.bodies_to(pa)


def test_reply_falls_back_to_other_gateway(kenv):
    """Twilio is inbound-only (no account_sid/from): a patient who wrote via Twilio gets the reply via Kannel."""
    env = kenv(twilio_inbound=True)
    phone = patient_number()
    sms.twilio_in(env.d, phone, "twilio inbound only")
    cid = wait_sms_conversation(env.api, phone)["conversation"]["id"]
    env.api.reply(cid, "fallback via kannel")
    _, receiver, text, _ = env.smsc.recv_mt(timeout=20)
    assert (receiver, text) == (phone, "fallback via kannel")


# ---------------------------------------------------------------------------------------------
# direct requests to the Kannel webhook (no Kannel needed, but kept here with the channel)


@pytest.fixture
def kdaemon(make_daemon):
    def build(**kannel):
        d = make_daemon(overrides=sms.sms_overrides(twilio_inbound=False, kannel_inbound=True, kannel=kannel))
        return SimpleNamespace(d=d, api=d.api(d.add_agent(role="admin")))
    return build


def test_kannel_webhook_auth(kdaemon):
    env = kdaemon()
    phone = patient_number()
    base = {"from": phone, "to": CLINIC_SHORT, "text": "hi", "coding": "0"}
    r = kannel_get(env.d, dict(base, id=h.uid()))
    assert r.status_code == 403, f"no secret: {r.status_code} {r.text}"
    r = kannel_get(env.d, dict(base, id=h.uid(), secret=KANNEL_SECRET + "x"))
    assert r.status_code == 403, f"wrong secret: {r.status_code} {r.text}"
    r = kannel_get(env.d, dict(base, id=h.uid(), secret=KANNEL_SECRET[:-1]))
    assert r.status_code == 403, f"prefix of secret: {r.status_code} {r.text}"
    assert not find_sms_conversations(env.api, phone)
    r = kannel_get(env.d, dict(base, id=h.uid(), secret=KANNEL_SECRET))
    assert r.status_code == 200 and r.content == b"", (r.status_code, r.content)
    assert len(find_sms_conversations(env.api, phone)) == 1
    # DLR endpoint also needs the secret
    r = requests.get(f"{env.d.url}{KANNEL_PATH}/dlr", params={"message": "x", "status": "1"}, timeout=h.HTTP_TIMEOUT)
    assert r.status_code == 403, r.text


def test_kannel_allowed_sources_without_secret(make_daemon):
    d = make_daemon(overrides=sms.sms_overrides(twilio_inbound=False, kannel={"allowed_sources": "10.9.9.9, 127.0.0.1"}))
    api = d.api(d.add_agent(role="admin"))
    phone = patient_number()
    r = kannel_get(d, {"from": phone, "to": CLINIC_SHORT, "text": "from an allowed ip", "id": h.uid()})
    assert r.status_code == 200 and r.content == b"", (r.status_code, r.text)
    assert sms.inbound_texts(wait_sms_conversation(api, phone)) == ["from an allowed ip"]
    d2 = make_daemon(overrides=sms.sms_overrides(twilio_inbound=False, kannel={"allowed_sources": "10.9.9.9"}))
    r = kannel_get(d2, {"from": phone, "to": CLINIC_SHORT, "text": "not allowed", "id": h.uid()})
    assert r.status_code == 403, r.text


def test_kannel_webhook_not_configured_503(make_daemon):
    d = make_daemon()
    r = kannel_get(d, {"from": patient_number(), "text": "x", "id": "1", "secret": KANNEL_SECRET})
    assert r.status_code == 503, f"{r.status_code} {r.text}"


def test_kannel_webhook_validation(kdaemon):
    env = kdaemon()
    full = {"secret": KANNEL_SECRET, "from": patient_number(), "to": CLINIC_SHORT, "text": "x", "id": h.uid()}
    for missing in ("id", "from", "text"):
        q = dict(full)
        del q[missing]
        r = kannel_get(env.d, q)
        assert r.status_code == 400, f"missing {missing}: {r.status_code} {r.text}"
        assert f"field {missing}" in r.json()["error"]["message"], r.text
    r = kannel_get(env.d, dict(full, id=h.uid(), **{"from": "not a number"}))
    assert r.status_code == 400, r.text
    assert not find_sms_conversations(env.api, full["from"])


def test_kannel_webhook_dedupe_on_id(kdaemon):
    env = kdaemon()
    phone = patient_number()
    q = {"secret": KANNEL_SECRET, "from": phone, "to": CLINIC_SHORT, "text": "same id twice", "id": h.uid("kid-")}
    for _ in range(3):
        r = kannel_get(env.d, q)
        assert r.status_code == 200 and r.content == b"", r.text
    assert sms.inbound_texts(wait_sms_conversation(env.api, phone)) == ["same id twice"]
    # The journal keeps the request, but not the shared secret from its URL.
    import sqlite3
    db = sqlite3.connect(f"file:{env.d.workdir}/var/switchboard.sqlite?mode=ro", uri=True)
    raws = [bytes(r[0]) for r in db.execute("SELECT raw FROM inbound_journal WHERE channel = 'sms'")]
    db.close()
    assert raws and all(b"same+id+twice" in r for r in raws)
    assert not any(KANNEL_SECRET.encode() in r for r in raws)


def test_kannel_webhook_ucs2_raw_bytes(kdaemon):
    """Without mo-recode Kannel passes UCS-2 text as raw UTF-16BE bytes with coding=2."""
    env = kdaemon()
    phone = patient_number()
    text = "héllo ü ✓ 😀"
    raw = urllib.parse.quote(text.encode("utf-16-be"), safe="")
    q = (f"secret={KANNEL_SECRET}&from={urllib.parse.quote(phone)}&to=12345&text={raw}&id={h.uid()}"
         f"&coding=2&charset=UTF-16BE")
    r = kannel_get(env.d, raw_query=q)
    assert r.status_code == 200, r.text
    phone2 = patient_number()
    q2 = f"secret={KANNEL_SECRET}&from={urllib.parse.quote(phone2)}&to=12345&text={raw}&id={h.uid()}&coding=2"
    assert kannel_get(env.d, raw_query=q2).status_code == 200
    assert sms.inbound_texts(wait_sms_conversation(env.api, phone)) == [text]
    assert sms.inbound_texts(wait_sms_conversation(env.api, phone2)) == [text]


def test_kannel_webhook_post_variant(kdaemon):
    env = kdaemon()
    phone = patient_number()
    body = "posted body ü ✓".encode()
    r = requests.post(f"{env.d.url}{KANNEL_PATH}?secret={KANNEL_SECRET}&id={h.uid()}", data=body,
                      headers={"Content-Type": 'text/plain; charset="UTF-8"', "X-Kannel-From": phone,
                               "X-Kannel-To": CLINIC_SHORT, "X-Kannel-Coding": "0"}, timeout=h.HTTP_TIMEOUT)
    assert r.status_code == 200 and r.content == b"", (r.status_code, r.text)
    assert sms.inbound_texts(wait_sms_conversation(env.api, phone)) == ["posted body ü ✓"]


def test_kannel_dlr_codes_direct(make_daemon):
    """DLR status mapping, driven directly (Kannel's fake SMSC only ever reports 8 and 1): 8/4 -> sent,
    1 -> delivered, 2/16 -> failed (final), never backwards. A stub sendsms answers '0: Accepted'."""
    import http.server
    import threading

    seen: list = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append(self.path)
            b = b"0: Accepted for delivery"
            self.send_response(202)
            self.send_header("Content-Length", str(len(b)))
            self.end_headers()
            self.wfile.write(b)

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        port = h.free_port()
        d = make_daemon(port=port, overrides=sms.sms_overrides(
            twilio_inbound=False, kannel_sendsms=f"http://127.0.0.1:{srv.server_address[1]}/cgi-bin/sendsms",
            kannel_public=f"http://127.0.0.1:{port}"))
        api = d.api(d.add_agent(role="admin"))
        phone = patient_number()
        assert kannel_get(d, {"secret": KANNEL_SECRET, "from": phone, "to": CLINIC_SHORT, "text": "hi",
                              "id": h.uid()}).status_code == 200
        cid = wait_sms_conversation(api, phone)["conversation"]["id"]

        def dlr(mid, code):
            r = requests.get(f"{d.url}{KANNEL_PATH}/dlr", params={"secret": KANNEL_SECRET, "message": mid,
                                                                  "status": str(code)}, timeout=h.HTTP_TIMEOUT)
            assert r.status_code == 200, r.text

        m1 = api.reply(cid, "one")
        wait_msg(api, cid, m1, "sent")
        u = urllib.parse.urlsplit(seen[0])
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        assert u.path == "/cgi-bin/sendsms"
        dlr_url = f"http://127.0.0.1:{port}{KANNEL_PATH}/dlr?" + urllib.parse.urlencode(
            {"secret": KANNEL_SECRET, "message": m1}) + "&status=%d"
        assert q == {"username": sms.KANNEL_USER, "password": sms.KANNEL_PASSWORD, "to": phone, "text": "one",
                     "charset": "UTF-8", "coding": "0", "from": CLINIC_SHORT, "dlr-mask": "31",
                     "dlr-url": dlr_url}, q
        dlr(m1, 8)
        assert api.message(cid, m1)["delivery_status"] == "sent"
        dlr(m1, 1)
        assert api.message(cid, m1)["delivery_status"] == "delivered"
        dlr(m1, 8)
        assert api.message(cid, m1)["delivery_status"] == "delivered", "moved backwards"
        m2 = api.reply(cid, "two")
        wait_msg(api, cid, m2, "sent")
        dlr(m2, 4)
        assert api.message(cid, m2)["delivery_status"] == "sent"
        dlr(m2, 16)
        m = api.message(cid, m2)
        assert m["delivery_status"] == "failed" and m["failure_reason"], m
        m3 = api.reply(cid, "three")
        wait_msg(api, cid, m3, "sent")
        dlr(m3, 2)
        assert api.message(cid, m3)["delivery_status"] == "failed"
        dlr(m3, 1)
        assert api.message(cid, m3)["delivery_status"] == "failed", "failed is final"
    finally:
        srv.shutdown()
        srv.server_close()


# ---------------------------------------------------------------------------------------------
# PHI never reaches the logs (both gateways, full scenario)


@pytest.mark.slow
@pytest.mark.parametrize("level", ["info", "trace"])
def test_no_phi_in_logs_sms(kenv, fake_twilio, level):
    from test_end_to_end import phi_findings as _pf

    def phi_findings(text, extra=()):
        return [ln[:400] + ("…" if len(ln) > 400 else "") for ln in _pf(text, extra)]
    env = kenv(twilio_api=fake_twilio.url, twilio={"send_keyword_replies": True},
               sms_cfg={"segment_warning": 1}, log_level=level)
    d, api = env.d, env.api
    tw_phone, kn_phone = "+15558675309", "+15554441234"
    extra = ("5554441234", "4441234", "444-1234", "ZQX-4471", "Zebulon", sms.TWILIO_TOKEN, KANNEL_SECRET,
             sms.KANNEL_PASSWORD)

    # --- Twilio: inbound, replay, rejections carrying PHI
    form = sms.twilio_form(tw_phone, "Zebulon here, my rash is spreading ZQX-4471")
    assert sms.post_twilio(d, form).status_code == 200
    assert sms.post_twilio(d, form).status_code == 200
    bad = sms.post_twilio(d, dict(form, Body="Zebulon rash tampered"), sign_form=form)
    assert bad.status_code == 403 and not phi_findings(bad.text, extra), bad.text
    no_from = dict(form, MessageSid=sms.sid())
    no_from["From"] = "Zebulon 867-5309"
    r = sms.post_twilio(d, no_from)
    assert r.status_code == 400 and not phi_findings(r.text, extra), r.text
    cid_tw = wait_sms_conversation(api, tw_phone)["conversation"]["id"]
    # reply: first attempt 500 with PHI in Twilio's body, then accepted; then a status callback
    fake_twilio.behavior = lambda call, prior: (
        (500, {}, {"code": 20500, "message": f"boom for {call.form.get('To')} Zebulon rash", "status": 500})
        if not prior else None)
    mid = api.reply(cid_tw, "Zebulon, the rash cream (ZQX-4471) is ready " + "x" * 200)
    call = fake_twilio.wait_body("Zebulon, the rash cream (ZQX-4471) is ready " + "x" * 200, timeout=20)
    api.wait_delivery(cid_tw, mid, "sent")
    assert sms.twilio_status(d, call.sid, "delivered", to=tw_phone).status_code == 204
    # permanent failure whose Twilio message quotes the number
    fake_twilio.behavior = lambda call, prior: FakeTwilioAPI_error(call)
    mid2 = api.reply(cid_tw, "Zebulon second note about the rash")
    m = api.wait_delivery(cid_tw, mid2, "failed")
    assert not phi_findings(m["failure_reason"], extra), m
    fake_twilio.behavior = None
    # keywords: HELP, STOP (then a refused reply), START
    sms.twilio_in(d, tw_phone, "HELP")
    sms.twilio_in(d, tw_phone, "STOP")
    r409 = reply_raw(api, cid_tw, "Zebulon are you there? rash?")
    assert r409.status_code == 409 and not phi_findings(r409.text, extra), r409.text
    sms.twilio_in(d, tw_phone, "START")

    # --- Kannel: MO (ASCII + Unicode), wrong secret, reply, DLRs, STOP
    env.smsc.send_mo(kn_phone, CLINIC_SHORT, "Zebulon: rash spreading, ZQX-4471")
    cid_kn = wait_sms_conversation(api, kn_phone, 1, timeout=20)["conversation"]["id"]
    env.smsc.send_mo(kn_phone, CLINIC_SHORT, "Zebulon ü rash ✓ spreading")
    wait_sms_conversation(api, kn_phone, 2, timeout=20)
    r = kannel_get(d, {"secret": "wrong-secret-0000000", "from": kn_phone, "text": "Zebulon rash", "id": h.uid()})
    assert r.status_code == 403 and not phi_findings(r.text, extra), r.text
    r = kannel_get(d, {"secret": KANNEL_SECRET, "from": "Zebulon", "text": "rash ZQX-4471", "id": h.uid()})
    assert r.status_code == 400 and not phi_findings(r.text, extra), r.text
    mid3 = api.reply(cid_kn, "Zebulon, apply the rash cream ✓ ZQX-4471")
    assert env.smsc.wait_mt(lambda m: "apply the rash cream" in m[2], 20)
    api.wait_delivery(cid_kn, mid3, "delivered")
    env.smsc.send_mo(kn_phone, CLINIC_SHORT, "STOP")
    env.smsc.wait_mt(lambda m: m[2] == STOP_REPLY, 20)

    api.conversation(cid_tw)
    api.conversation(cid_kn)
    api.post(f"/conversations/{cid_kn}/resolve")
    metrics = requests.get(f"{d.url}/metrics", timeout=h.HTTP_TIMEOUT).text
    d.stop()
    log = d.log_text()
    assert "sms message stored" in log or "sms" in log, "the SMS path logged nothing at all"
    found = phi_findings(log, extra=extra + (api.token,))
    assert not found, "PHI or secrets in the daemon's log:\n" + "\n".join(found)
    found = phi_findings(metrics, extra)
    assert not found, "PHI in /metrics:\n" + "\n".join(found)


def FakeTwilioAPI_error(call):  # noqa: N802
    return sms.FakeTwilioAPI.error(21211, f"The 'To' number {call.form.get('To')} is not a valid phone number.")
