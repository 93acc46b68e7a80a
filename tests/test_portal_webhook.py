"""POST /webhooks/portal: Standard Webhooks signatures, validation, limits, idempotency,
threading and contact resolution, against a running switchboardd."""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests

import switchboard_harness as h
from switchboard_harness import Signer, encode, portal_event, post_webhook, uid


def assert_error(resp: requests.Response, status: int) -> dict:
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text[:500]}"
    assert h.error_shape_ok(resp), f'error body is not {{"error":{{"code","message"}}}}: {resp.text[:500]}'
    return resp.json()["error"]


def assert_accepted(resp: requests.Response) -> dict:
    assert resp.status_code == 202, f"expected 202, got {resp.status_code}: {resp.text[:500]}"
    j = resp.json()
    assert isinstance(j.get("conversation_id"), str) and j["conversation_id"], j
    assert isinstance(j.get("message_id"), str) and j["message_id"], j
    return j


def inbound_messages(api, cid):
    return [m for m in api.conversation(cid)["messages"] if m["direction"] == "inbound"]


# ---------------------------------------------------------------------------------------------
# signature matrix


def test_good_signature_accepted(daemon):
    assert_accepted(daemon.webhook(portal_event(text="good signature")))


def test_signature_within_tolerance_accepted(daemon):
    # 200 s old and 200 s ahead are inside the 300 s tolerance
    assert_accepted(daemon.webhook(portal_event(), ts=int(time.time()) - 200))
    assert_accepted(daemon.webhook(portal_event(), ts=int(time.time()) + 200))


def test_content_type_with_charset_accepted(daemon):
    assert_accepted(daemon.webhook(portal_event(), content_type="application/json; charset=utf-8"))


def _tampered(d):
    signed = encode(portal_event(text="original"))
    sent = signed.replace(b"original", b"tampered")
    hd = d.signer.headers(signed)
    return requests.post(f"{d.url}/webhooks/portal", data=sent, headers=hd, timeout=h.HTTP_TIMEOUT)


def _sig_header(d, value):
    return d.webhook(portal_event(), headers={"webhook-signature": value})


def _valid_sig_for(d, body, msg_id, ts):
    return d.signer.signature(msg_id, ts, body)


def _with_sig(d, make_value):
    """Post with a webhook-signature built from the valid one: make_value(valid) -> header."""
    body = encode(portal_event())
    msg_id, ts = uid("msg_"), int(time.time())
    valid = _valid_sig_for(d, body, msg_id, ts)
    hd = {"webhook-id": msg_id, "webhook-timestamp": str(ts),
          "webhook-signature": make_value(valid), "Content-Type": "application/json"}
    return requests.post(f"{d.url}/webhooks/portal", data=body, headers=hd, timeout=h.HTTP_TIMEOUT)


def _wrong_length_sig():
    return "v1," + base64.b64encode(b"\x00" * 16).decode()


UNAUTHORIZED_CASES = {
    "tampered_body": _tampered,
    "wrong_secret": lambda d: post_webhook(d.url, Signer(h.make_secret()), portal_event()),
    "outbound_secret_is_not_inbound": lambda d: post_webhook(d.url, Signer(h.OUTBOUND_SECRET), portal_event()),
    "stale_10min": lambda d: d.webhook(portal_event(), ts=int(time.time()) - 600),
    "future_10min": lambda d: d.webhook(portal_event(), ts=int(time.time()) + 600),
    "future_1day": lambda d: d.webhook(portal_event(), ts=int(time.time()) + 86400),
    "timestamp_zero": lambda d: d.webhook(portal_event(), ts=0),
    "timestamp_not_a_number": lambda d: _with_sig_ts_text(d, "yesterday"),
    "timestamp_milliseconds": lambda d: d.webhook(portal_event(), ts=int(time.time() * 1000)),
    "missing_webhook_id": lambda d: d.webhook(portal_event(), drop=("webhook-id",)),
    "missing_webhook_timestamp": lambda d: d.webhook(portal_event(), drop=("webhook-timestamp",)),
    "missing_webhook_signature": lambda d: d.webhook(portal_event(), drop=("webhook-signature",)),
    "missing_all_headers": lambda d: d.webhook(portal_event(),
                                               drop=("webhook-id", "webhook-timestamp", "webhook-signature")),
    "empty_signature": lambda d: _sig_header(d, ""),
    "garbage_signature": lambda d: _sig_header(d, "garbage"),
    "v1_empty": lambda d: _sig_header(d, "v1,"),
    "v1_not_base64": lambda d: _sig_header(d, "v1,not*base64!!"),
    "v1_wrong_length": lambda d: _sig_header(d, _wrong_length_sig()),
    "valid_mac_wrong_version": lambda d: _with_sig(d, lambda v: "v2," + v.split(",", 1)[1]),
    "valid_mac_no_version": lambda d: _with_sig(d, lambda v: v.split(",", 1)[1]),
    "valid_mac_truncated": lambda d: _with_sig(d, lambda v: v[:-6]),
    "signature_for_other_id": lambda d: _with_other_id(d),
}


def _with_sig_ts_text(d, ts_text):
    body = encode(portal_event())
    msg_id = uid("msg_")
    hd = {"webhook-id": msg_id, "webhook-timestamp": ts_text,
          "webhook-signature": d.signer.signature(msg_id, ts_text, body), "Content-Type": "application/json"}
    return requests.post(f"{d.url}/webhooks/portal", data=body, headers=hd, timeout=h.HTTP_TIMEOUT)


def _with_other_id(d):
    body = encode(portal_event())
    ts = int(time.time())
    hd = {"webhook-id": uid("msg_"), "webhook-timestamp": str(ts),
          "webhook-signature": d.signer.signature(uid("msg_"), ts, body), "Content-Type": "application/json"}
    return requests.post(f"{d.url}/webhooks/portal", data=body, headers=hd, timeout=h.HTTP_TIMEOUT)


@pytest.mark.parametrize("case", sorted(UNAUTHORIZED_CASES))
def test_bad_authentication_is_401(daemon, case):
    resp = UNAUTHORIZED_CASES[case](daemon)
    assert_error(resp, 401)


def test_rejections_store_nothing(daemon):
    """Many rejected requests, then the store has no conversation at all."""
    for case in ("tampered_body", "wrong_secret", "stale_10min", "missing_webhook_signature"):
        assert UNAUTHORIZED_CASES[case](daemon).status_code == 401
    admin = daemon.api(daemon.add_agent(role="admin"))
    assert admin.list(status=None, assignee="any") == []


def test_401_is_not_remembered_for_the_webhook_id(daemon):
    """A bad attempt must not poison the webhook-id: the real delivery with that id is accepted."""
    ev = portal_event(text="first attempt forged")
    msg_id = uid("msg_")
    bad = post_webhook(daemon.url, Signer(h.make_secret()), ev, msg_id=msg_id)
    assert_error(bad, 401)
    assert_accepted(daemon.webhook(ev, msg_id=msg_id))


@pytest.mark.parametrize("position", ["valid_last", "valid_first", "valid_middle"])
def test_rotation_several_signatures_one_valid(daemon, position):
    """Standard Webhooks: the header may carry several space-separated signatures (key rotation);
    one valid v1 signature is enough, unknown versions are ignored."""
    def make(valid):
        old_key_sig = "v1," + base64.b64encode(b"x" * 32).decode()
        parts = {"valid_last": [old_key_sig, "v1a,ignored-unknown-version", valid],
                 "valid_first": [valid, old_key_sig],
                 "valid_middle": [old_key_sig, valid, "v2,whatever"]}[position]
        return " ".join(parts)
    assert_accepted(_with_sig(daemon, make))


def test_rotation_all_signatures_invalid_is_401(daemon):
    bogus = ["v1," + base64.b64encode(bytes([i]) * 32).decode() for i in range(3)]
    assert_error(_sig_header(daemon, " ".join(bogus)), 401)


# ---------------------------------------------------------------------------------------------
# validation: 400 naming the field


def _without(ev, dotted):
    a, b = dotted.split(".")
    del ev[a][b]
    return ev


@pytest.mark.parametrize("field", ["message.text", "patient.id", "message.id"])
def test_missing_field_is_400_naming_it(daemon, field):
    ev = _without(portal_event(text="missing something"), field)
    err = assert_error(daemon.webhook(ev), 400)
    assert field in err["message"], f"error message does not name {field}: {err}"


@pytest.mark.parametrize("field,value", [("message.text", 42), ("patient.id", ["P-1"]), ("message.id", None)])
def test_wrong_type_field_is_400_naming_it(daemon, field, value):
    ev = portal_event()
    a, b = field.split(".")
    ev[a][b] = value
    err = assert_error(daemon.webhook(ev), 400)
    assert field in err["message"], f"error message does not name {field}: {err}"


@pytest.mark.parametrize("body", [b'{"type":"message.created","patient":{"id":"P-1"', b"not json at all",
                                  b"", b"[]", b'"a string"'])
def test_malformed_json_is_400(daemon, body):
    assert_error(daemon.webhook(body=body), 400)


def test_missing_patient_object_is_400(daemon):
    ev = portal_event()
    del ev["patient"]
    err = assert_error(daemon.webhook(ev), 400)
    assert "patient" in err["message"], err


def test_400_stores_nothing(daemon):
    for field in ("message.text", "patient.id", "message.id"):
        assert_error(daemon.webhook(_without(portal_event(), field)), 400)
    admin = daemon.api(daemon.add_agent(role="admin"))
    assert admin.list(status=None, assignee="any") == []


# ---------------------------------------------------------------------------------------------
# limits, content type


def test_body_over_max_is_413(daemon):
    limit = daemon.config["portal"]["max_body_bytes"]
    ev = portal_event(text="x" * (limit + 1024))
    assert_error(daemon.webhook(ev), 413)


def test_body_just_under_max_is_accepted(daemon):
    limit = daemon.config["portal"]["max_body_bytes"]
    base = len(encode(portal_event(text="", message_id="M-fixedlen0000", patient_id="P-fixedlen0000")))
    ev = portal_event(text="y" * (limit - base - 8), message_id="M-fixedlen0000", patient_id="P-fixedlen0000")
    assert len(encode(ev)) <= limit
    assert_accepted(daemon.webhook(ev))


def test_configured_smaller_max_body_is_enforced(make_daemon, receiver):
    d = make_daemon(outbound_url=receiver.url, overrides={"portal": {"max_body_bytes": 2048}})
    assert_accepted(d.webhook(portal_event(text="a" * 1000)))
    assert_error(d.webhook(portal_event(text="a" * 3000)), 413)


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_415(daemon, ctype):
    assert_error(daemon.webhook(portal_event(), content_type=ctype), 415)


def test_missing_content_type_is_415(daemon):
    assert_error(daemon.webhook(portal_event(), content_type=None), 415)


# ---------------------------------------------------------------------------------------------
# idempotency and threading


def test_replay_same_webhook_id_same_answer_one_message(daemon):
    admin = daemon.api(daemon.add_agent(role="admin"))
    ev = portal_event(text="replayed", thread_id=uid("T-"))
    msg_id, ts = uid("msg_"), int(time.time())
    first = daemon.webhook(ev, msg_id=msg_id, ts=ts)
    body1 = assert_accepted(first)
    second = daemon.webhook(ev, msg_id=msg_id, ts=ts)
    assert second.status_code == first.status_code
    assert second.json() == body1
    # a redelivery re-signed with a fresh timestamp is still the same delivery
    third = daemon.webhook(ev, msg_id=msg_id, ts=int(time.time()) + 1)
    assert third.status_code == 202 and third.json() == body1
    msgs = inbound_messages(admin, body1["conversation_id"])
    assert [m["id"] for m in msgs] == [body1["message_id"]], msgs
    assert len(admin.list(status=None, assignee="any")) == 1


def test_same_portal_message_id_under_new_webhook_id_is_not_duplicated(daemon):
    """Dedupe also on the channel's own message id (DESIGN: 'dedupe on the channel's own message id')."""
    admin = daemon.api(daemon.add_agent(role="admin"))
    ev = portal_event(text="same portal message twice", thread_id=uid("T-"))
    a = assert_accepted(daemon.webhook(ev))
    b = daemon.webhook(ev)  # new webhook-id, same message.id
    assert b.status_code in (200, 202), b.text
    assert len(inbound_messages(admin, a["conversation_id"])) == 1


def test_second_event_same_thread_same_conversation(daemon):
    admin = daemon.api(daemon.add_agent(role="admin"))
    pid, tid = uid("P-"), uid("T-")
    a = assert_accepted(daemon.webhook(portal_event(pid, "first in thread", thread_id=tid,
                                                    sent_at="2026-11-29T10:00:00Z")))
    b = assert_accepted(daemon.webhook(portal_event(pid, "second in thread", thread_id=tid,
                                                    sent_at="2026-11-29T10:01:00Z")))
    assert a["conversation_id"] == b["conversation_id"]
    assert a["message_id"] != b["message_id"]
    msgs = inbound_messages(admin, a["conversation_id"])
    assert [m["text"] for m in msgs] == ["first in thread", "second in thread"]
    assert [m["id"] for m in msgs] == [a["message_id"], b["message_id"]]


def test_different_threads_different_conversations(daemon):
    pid = uid("P-")
    a = assert_accepted(daemon.webhook(portal_event(pid, "thread one", thread_id=uid("T-"))))
    b = assert_accepted(daemon.webhook(portal_event(pid, "thread two", thread_id=uid("T-"))))
    assert a["conversation_id"] != b["conversation_id"]


def test_no_thread_id_joins_latest_unresolved_conversation(daemon):
    pid = uid("P-")
    a = assert_accepted(daemon.webhook(portal_event(pid, "no thread 1")))
    b = assert_accepted(daemon.webhook(portal_event(pid, "no thread 2")))
    assert a["conversation_id"] == b["conversation_id"]


# ---------------------------------------------------------------------------------------------
# contact resolution


def _contact(admin, cid):
    return admin.conversation(cid)["contact"]


def test_same_phone_written_differently_same_contact(daemon):
    admin = daemon.api(daemon.add_agent(role="admin"))
    pid = uid("P-")
    a = assert_accepted(daemon.webhook(portal_event(pid, "formatted phone", thread_id=uid("T-"),
                                                    phone="+1 (555) 010-0000")))
    b = assert_accepted(daemon.webhook(portal_event(pid, "e164 phone", thread_id=uid("T-"),
                                                    phone="+15550100000")))
    ca, cb = _contact(admin, a["conversation_id"]), _contact(admin, b["conversation_id"])
    assert ca["id"] == cb["id"]
    phones = [i["value"] for i in cb["identities"] if i["kind"] == "phone"]
    assert phones == ["+15550100000"], cb["identities"]


def test_phone_identifies_contact_across_patient_ids(daemon):
    """'patient id, phone (normalised E.164), email identify the same contact': a second portal
    patient id arriving with a known phone (written differently) joins the known contact."""
    admin = daemon.api(daemon.add_agent(role="admin"))
    a = assert_accepted(daemon.webhook(portal_event(uid("P-"), "first id", thread_id=uid("T-"),
                                                    phone="+1 (555) 010-0002")))
    b = assert_accepted(daemon.webhook(portal_event(uid("P-"), "second id", thread_id=uid("T-"),
                                                    phone="+15550100002")))
    assert _contact(admin, a["conversation_id"])["id"] == _contact(admin, b["conversation_id"])["id"]


def test_email_identifies_contact_case_insensitively(daemon):
    admin = daemon.api(daemon.add_agent(role="admin"))
    a = assert_accepted(daemon.webhook(portal_event(uid("P-"), "mail one", thread_id=uid("T-"),
                                                    email="Pat.Example@Example.ORG")))
    b = assert_accepted(daemon.webhook(portal_event(uid("P-"), "mail two", thread_id=uid("T-"),
                                                    email="pat.example@example.org")))
    ca, cb = _contact(admin, a["conversation_id"]), _contact(admin, b["conversation_id"])
    assert ca["id"] == cb["id"]
    emails = [i["value"] for i in cb["identities"] if i["kind"] == "email"]
    assert emails == ["pat.example@example.org"], cb["identities"]


def test_national_phone_uses_default_country_code(daemon):
    admin = daemon.api(daemon.add_agent(role="admin"))
    a = assert_accepted(daemon.webhook(portal_event(uid("P-"), "national number", phone="(555) 010-0001")))
    phones = [i["value"] for i in _contact(admin, a["conversation_id"])["identities"] if i["kind"] == "phone"]
    assert phones == ["+15550100001"]


def test_portal_identity_and_name_recorded(daemon):
    admin = daemon.api(daemon.add_agent(role="admin"))
    pid = uid("P-")
    a = assert_accepted(daemon.webhook(portal_event(pid, "who am i", name="Pat Example")))
    c = _contact(admin, a["conversation_id"])
    assert c["name"] == "Pat Example"
    assert {"kind": "portal", "value": pid} in [{"kind": i["kind"], "value": i["value"]} for i in c["identities"]]


def test_inbound_message_fields(daemon):
    admin = daemon.api(daemon.add_agent(role="admin"))
    a = assert_accepted(daemon.webhook(portal_event(text="check the fields", sent_at="2026-11-29T10:00:00Z")))
    full = admin.conversation(a["conversation_id"])
    conv = full["conversation"]
    for k in ("id", "status", "priority", "channel", "assignee_id", "contact_id", "created_at", "updated_at",
              "last_message_at"):
        assert k in conv, f"conversation lacks {k}: {conv}"
    assert conv["id"] == a["conversation_id"]
    assert conv["channel"] == "portal"
    assert conv["status"] == "open"
    assert conv["assignee_id"] is None
    assert conv["contact_id"] == full["contact"]["id"]
    [m] = full["messages"]
    assert m["id"] == a["message_id"]
    assert m["direction"] == "inbound"
    assert m["text"] == "check the fields"
    assert m["delivery_status"] is None
    for k in ("sent_at", "created_at", "failure_reason"):
        assert k in m, f"message lacks {k}: {m}"
    assert m["sent_at"].startswith("2026-11-29T10:00:00"), m["sent_at"]


# ---------------------------------------------------------------------------------------------
# configuration of the channel


def test_portal_disabled_without_secret_is_503(make_daemon):
    d = make_daemon(overrides={"portal": {"webhook_secret": ""}})
    resp = post_webhook(d.url, Signer(h.DEFAULT_SECRET), portal_event())
    assert_error(resp, 503)


def test_secret_from_file(make_daemon, tmp_path, receiver):
    secret = h.make_secret()
    f = tmp_path / "webhook_secret"
    f.write_text(secret + "\n")  # systemd credentials often end with a newline
    d = make_daemon(outbound_url=receiver.url,
                    overrides={"portal": {"webhook_secret": "", "webhook_secret_file": str(f)}})
    assert_accepted(post_webhook(d.url, Signer(secret), portal_event()))
    assert_error(post_webhook(d.url, Signer(h.DEFAULT_SECRET), portal_event()), 401)


def test_secret_from_env_override(make_daemon, receiver):
    secret = h.make_secret()
    d = make_daemon(outbound_url=receiver.url, env={"SWITCHBOARD_PORTAL_WEBHOOK_SECRET": secret})
    assert_accepted(post_webhook(d.url, Signer(secret), portal_event()))
    assert_error(post_webhook(d.url, Signer(h.DEFAULT_SECRET), portal_event()), 401)


def test_configured_tolerance_is_used(make_daemon, receiver):
    d = make_daemon(outbound_url=receiver.url, overrides={"portal": {"timestamp_tolerance_seconds": 30}})
    assert_accepted(d.webhook(portal_event(), ts=int(time.time()) - 10))
    assert_error(d.webhook(portal_event(), ts=int(time.time()) - 120), 401)


def test_response_is_json(daemon):
    r = daemon.webhook(portal_event())
    assert r.status_code == 202
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    json.loads(r.text)


# ---------------------------------------------------------------------------------------------
# wire details


def test_signature_is_over_raw_bytes(daemon):
    """Odd whitespace, key order and escapes must verify as sent (no re-serialisation)."""
    admin = daemon.api(daemon.add_agent(role="admin"))
    raw = ('{ "message" : {"sent_at":"2026-11-29T10:00:00Z",  "text" : "caf\\u00e9 \\/ ok", "id":"M-raw-1"},\n'
           '  "type":"message.created",\t"patient":{"id":"P-raw-1"} }').encode()
    acc = assert_accepted(daemon.webhook(body=raw))
    assert inbound_messages(admin, acc["conversation_id"])[0]["text"] == "café / ok"


def test_unknown_extra_fields_accepted(daemon):
    ev = portal_event(text="with extras")
    ev["delivery_attempt"] = 3
    ev["patient"]["date_of_birth_hidden"] = True
    ev["message"]["attachments"] = []
    assert_accepted(daemon.webhook(ev))


def test_replay_same_id_different_body_returns_original(daemon):
    admin = daemon.api(daemon.add_agent(role="admin"))
    msg_id = uid("msg_")
    first = assert_accepted(daemon.webhook(portal_event(text="original body", thread_id=uid("T-")), msg_id=msg_id))
    again = daemon.webhook(portal_event(text="different body", thread_id=uid("T-")), msg_id=msg_id)
    assert again.status_code == 202 and again.json() == first, again.text
    convs = admin.list(status=None, assignee="any")
    assert len(convs) == 1, convs
    assert [m["text"] for m in inbound_messages(admin, first["conversation_id"])] == ["original body"]


# ---------------------------------------------------------------------------------------------
# portal.acknowledge: received - 202 once the delivery is queued, stored moments later


def received_daemon(make_daemon, receiver):
    return make_daemon(outbound_url=receiver.url, overrides={"portal": {"acknowledge": "received"}})


def queue_rows(d) -> list:
    import sqlite3
    with sqlite3.connect(d.config["store"]["path"], timeout=10) as db:
        return db.execute("SELECT external_id, failed_at FROM inbound_queue").fetchall()


def find_conversation(api, text: str, timeout: float = 15.0) -> dict:
    """The conversation whose inbound messages include ``text`` (waits for the normaliser)."""
    def found():
        for c in api.list(status=None):
            messages = inbound_messages(api, c["id"])
            if any(m["text"] == text for m in messages):
                return {"conversation": c, "messages": messages}
        return None
    return h.wait_until(found, timeout, interval=0.1, what=f"a conversation holding {text!r}")


def test_received_acknowledges_the_queued_delivery_and_stores_it_once(make_daemon, receiver):
    import mail_harness as mh
    d = received_daemon(make_daemon, receiver)
    api = d.api(d.add_agent(role="admin"))
    event = portal_event(text=uid("queued message "), thread_id=uid("T-"))
    msg_id = uid("msg_")
    r = d.webhook(event, msg_id=msg_id)
    assert r.status_code == 202, r.text
    assert r.json() == {"status": "queued", "webhook_id": msg_id}
    found = find_conversation(api, event["message"]["text"])
    assert [m["text"] for m in found["messages"]] == [event["message"]["text"]]
    # The same delivery again, and the same message under a new delivery id: nothing new.
    again = d.webhook(event, msg_id=msg_id)
    assert again.status_code == 202 and again.json() == {"status": "queued", "webhook_id": msg_id}
    assert d.webhook(event).status_code == 202
    h.wait_until(lambda: queue_rows(d) == [], 15, what="the inbound queue to empty")
    assert [m["text"] for m in inbound_messages(api, found["conversation"]["id"])] == [event["message"]["text"]]
    assert mh.metric_value(d, "switchboard_messages_in_total", {"channel": "portal"}) == 1
    assert mh.metric_value(d, "switchboard_inbound_backlog") == 0
    # Each message is triaged as if it had been stored at once.
    h.wait_until(lambda: inbound_messages(api, found["conversation"]["id"])[0].get("triage"), 15, what="triage")


def test_received_stores_a_delivery_sent_many_times_at_once_exactly_once(make_daemon, receiver):
    """The queue appends only (no index on delivery ids): copies of one delivery that arrive
    together may all be queued, and each must be answered 202 and the message stored once.
    (Tried here three times: 3, 2 and 0 copies were queued behind the first and recognised as
    repeats when stored; the others were refused at receipt, the first being stored already.)"""
    import mail_harness as mh
    from concurrent.futures import ThreadPoolExecutor
    d = received_daemon(make_daemon, receiver)
    api = d.api(d.add_agent(role="admin"))
    event = portal_event(text=uid("sent eight times "))
    msg_id = uid("msg_")
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: d.webhook(event, msg_id=msg_id), range(8)))
    assert [a.status_code for a in answers] == [202] * 8, [a.text for a in answers]
    assert all(a.json() == {"status": "queued", "webhook_id": msg_id} for a in answers)
    found = find_conversation(api, event["message"]["text"])
    h.wait_until(lambda: queue_rows(d) == [], 15, what="the inbound queue to empty")
    assert [m["text"] for m in inbound_messages(api, found["conversation"]["id"])] == [event["message"]["text"]]
    assert mh.metric_value(d, "switchboard_messages_in_total", {"channel": "portal"}) == 1
    assert mh.metric_value(d, "switchboard_inbound_backlog") == 0


def test_received_still_refuses_bad_input_before_queueing_anything(make_daemon, receiver):
    d = received_daemon(make_daemon, receiver)
    assert_error(d.webhook(portal_event(), headers={"webhook-signature": "v1,AAAA"}), 401)
    assert_error(d.webhook(body=b'{"type":"message.created","patient":{}}'), 400)
    assert_error(d.webhook(portal_event(phone="call me")), 400)
    assert queue_rows(d) == []


def test_received_never_joins_another_patients_thread(make_daemon, receiver):
    d = received_daemon(make_daemon, receiver)
    api = d.api(d.add_agent(role="admin"))
    thread = uid("T-")
    first = portal_event(patient_id=uid("P-A-"), text=uid("patient a "), thread_id=thread)
    second = portal_event(patient_id=uid("P-B-"), text=uid("patient b "), thread_id=thread)
    assert d.webhook(first).status_code == 202
    a = find_conversation(api, first["message"]["text"])
    assert d.webhook(second).status_code == 202
    b = find_conversation(api, second["message"]["text"])
    assert a["conversation"]["id"] != b["conversation"]["id"]
    assert [m["text"] for m in inbound_messages(api, a["conversation"]["id"])] == [first["message"]["text"]]
    assert "queued message stored in a new conversation" in d.log_text()
