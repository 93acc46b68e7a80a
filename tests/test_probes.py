"""Probes: what an attacker would try first, swept over every entry point in one place.

The deep cases live with each channel (tests/test_portal_webhook.py, test_sms_twilio.py,
test_sms_kannel.py, test_email_smtp.py, test_chat.py, test_router.py::test_access_matrix);
this file sweeps the same attacks across all of them at once, against one daemon with every
inbound channel configured, and checks after each that the store did not change:

- every webhook, unsigned and with a forged signature (and the portal's with a stale one):
  refused with 401/403 and an error naming the problem; nothing stored;
- a valid delivery replayed ten times: one message;
- attachment downloads: another conversation's attachment through a conversation the caller
  may see, path traversal in every spelling, an agent without access — always 404, never
  bytes;
- oversized everything: request line, headers, and bodies past each route's limit — a 4xx
  (or the connection closed) and the daemon still healthy.
"""

from __future__ import annotations

import sqlite3
import uuid

import pytest
import requests

import mail_harness as mh
import sms_harness as sh
import switchboard_harness as h


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    overrides = {**sh.sms_overrides(kannel_inbound=True), **mh.email_overrides()}
    d = h.Daemon(tmp_path_factory.mktemp("probes"), overrides=overrides)
    d.start()
    try:
        yield d
    finally:
        d.cleanup()


def stored(d: h.Daemon) -> tuple[int, int]:
    with sqlite3.connect(d.config["store"]["path"], timeout=10) as db:
        return (db.execute("SELECT count(*) FROM messages").fetchone()[0],
                db.execute("SELECT count(*) FROM inbound_journal").fetchone()[0])


def refused(r: requests.Response, *statuses: int) -> None:
    assert r.status_code in statuses, f"{r.request.method} {r.request.path_url} -> {r.status_code} {r.text[:200]}"
    if r.content:
        body = r.json()
        assert body["error"]["code"] and body["error"]["message"], body


def test_every_webhook_refuses_unsigned_forged_and_stale(target):
    d = target
    before = stored(d)
    event = h.portal_event("P-probe", "probe text that must not be stored")
    body = h.encode(event)
    # portal: unsigned, forged (another key), stale (ten minutes old), signature over another body
    refused(h.post_webhook(d.url, d.signer, event, drop=("webhook-signature",)), 400, 401)
    refused(h.post_webhook(d.url, h.Signer(h.make_secret()), event), 401)
    import time as _time
    refused(h.post_webhook(d.url, d.signer, event, ts=int(_time.time()) - 600), 401)
    other = d.signer.headers(h.encode(h.portal_event("P-probe", "another body")))
    refused(requests.post(f"{d.url}/webhooks/portal", data=body, headers=other, timeout=h.HTTP_TIMEOUT), 401)
    # Twilio, inbound and status callbacks: unsigned, and signed with another token
    form = sh.twilio_form(sh.patient_number(), "probe text that must not be stored")
    for path in (sh.TWILIO_PATH, sh.TWILIO_STATUS_PATH):
        refused(sh.post_twilio(d, form, path=path, drop_signature=True), 401, 403)
        refused(sh.post_twilio(d, form, path=path, token="0" * 32), 401, 403)
    # Kannel, MO and DLR: no secret, a wrong one, a prefix of the right one
    mo = {"from": sh.patient_number(), "to": "12345", "text": "probe text that must not be stored", "id": h.uid()}
    for path, params in ((sh.KANNEL_PATH, mo), (sh.KANNEL_PATH + "/dlr", {"message": "x", "status": "1"})):
        for secret in (None, sh.KANNEL_SECRET + "x", sh.KANNEL_SECRET[:-1]):
            query = dict(params, **({"secret": secret} if secret else {}))
            refused(requests.get(d.url + path, params=query, timeout=h.HTTP_TIMEOUT), 401, 403)
    assert stored(d) == before, "a refused webhook changed the store"
    log = d.log_text()
    assert "probe text that must not be stored" not in log


def test_a_valid_delivery_replayed_ten_times_is_one_message(target):
    d = target
    before = stored(d)[0]
    event = h.portal_event("P-replay", "replayed delivery")
    body = h.encode(event)
    headers = d.signer.headers(body)
    answers = {requests.post(f"{d.url}/webhooks/portal", data=body, headers=headers, timeout=h.HTTP_TIMEOUT).text
               for _ in range(10)}
    assert len(answers) == 1, answers  # the same answer every time
    form = sh.twilio_form(sh.patient_number(), "replayed sms")
    for _ in range(10):
        assert sh.post_twilio(d, form).status_code == 200
    assert stored(d)[0] == before + 2


def test_attachments_never_leak_across_conversations_or_paths(target):
    d = target
    admin = d.add_agent(role="admin")
    api = d.api(admin)
    address = f"probe.{uuid.uuid4().hex[:8]}@example.net"
    secret_bytes = b"%PDF-1.4 probe attachment " + uuid.uuid4().hex.encode()
    raw = mh.build_mail(from_addr=address, text="see attached", attachments=[("results.pdf", "application/pdf", secret_bytes)])
    assert mh.smtp_send(mh.smtp_port_of(d), address, mh.SUPPORT_ADDRESS, raw).ok
    mail_conversation = mh.wait_email_conversation(api, address)
    [attachment] = [a for m in mail_conversation["messages"] for a in m.get("attachments", [])]
    own = api.get(attachment["download_url"].removeprefix("/api/v1"))
    assert own.status_code == 200 and own.content == secret_bytes, own.status_code

    r = d.webhook(h.portal_event("P-probe-attach", "another conversation"))
    other_cid = r.json()["conversation_id"]
    attachment_id = attachment["download_url"].rsplit("/", 1)[-1]
    mail_cid = mail_conversation["conversation"]["id"]
    probes = [
        f"/conversations/{other_cid}/attachments/{attachment_id}",          # someone else's, via a visible one
        f"/conversations/{mail_cid}/attachments/..%2F..%2F..%2Fetc%2Fpasswd",
        f"/conversations/{mail_cid}/attachments/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        f"/conversations/{mail_cid}/attachments/{attachment_id}%00.txt",
        f"/conversations/{mail_cid}/attachments/{attachment_id}/..",
        f"/conversations/..%2F{mail_cid}/attachments/{attachment_id}",
    ]
    for path in probes:
        r = api.get(path)
        assert r.status_code in (400, 404), f"{path} -> {r.status_code}"
        assert secret_bytes not in r.content and b"root:" not in r.content, path
    # An agent who may not see the mail's conversation (it is assigned to someone else).
    api.claim(mail_cid)
    outsider = d.api(d.add_agent(role="agent"))
    r = outsider.get(f"/conversations/{mail_cid}/attachments/{attachment_id}")
    assert r.status_code == 404 and secret_bytes not in r.content


def test_oversized_everything_is_refused_and_the_daemon_stays_healthy(target):
    d = target
    before = stored(d)
    admin = d.add_agent(role="admin")
    auth = {"Authorization": f"Bearer {admin['token']}"}

    def answered_or_closed(call) -> None:
        try:
            r = call()
        except requests.ConnectionError:
            return  # closed on us: acceptable for a malformed request
        assert 400 <= r.status_code < 500, f"{r.status_code} {r.text[:200]}"

    answered_or_closed(lambda: requests.get(d.url + "/api/v1/conversations?x=" + "a" * 200_000, headers=auth, timeout=10))
    answered_or_closed(lambda: requests.get(d.url + "/api/v1/conversations", headers={**auth, "X-Big": "b" * 200_000}, timeout=10))
    answered_or_closed(lambda: requests.get(d.url + "/api/v1/conversations",
                                            headers={**auth, **{f"X-H{i}": "v" for i in range(2000)}}, timeout=10))
    big = b"x" * 300_000
    for path, content_type in (("/webhooks/portal", "application/json"),
                               (sh.TWILIO_PATH, "application/x-www-form-urlencoded"),
                               (sh.KANNEL_PATH, "application/x-www-form-urlencoded"),
                               ("/api/v1/session", "application/json"),
                               ("/api/v1/agents", "application/json")):
        r = requests.post(d.url + path, data=big, headers={**auth, "Content-Type": content_type}, timeout=10)
        assert r.status_code in (401, 403, 413), f"{path} -> {r.status_code} {r.text[:200]}"
    r = requests.post(f"{d.url}/api/v1/conversations/cnv_x/messages", data=big,
                      headers={**auth, "Content-Type": "application/json"}, timeout=10)
    assert r.status_code in (404, 413), r.status_code
    assert requests.get(d.url + "/healthz", timeout=5).status_code == 200
    assert requests.get(d.url + "/readyz", timeout=5).status_code == 200
    assert stored(d) == before


def test_a_silent_or_half_sent_request_is_closed_after_the_idle_timeout(make_daemon):
    """A connection that stops half-way through its request head (slowloris) or sends nothing
    is closed after http.idle_timeout_seconds (raised to two ping intervals + 10 s), so such
    connections cannot pile up; the daemon keeps answering meanwhile."""
    import socket
    import time
    d = make_daemon(overrides={"http": {"idle_timeout_seconds": 10}, "events": {"ping_interval_seconds": 5}})
    half = socket.create_connection(("127.0.0.1", d.port), timeout=40)
    half.sendall(b"POST /webhooks/portal HTTP/1.1\r\nHost: x\r\nContent-Len")
    silent = socket.create_connection(("127.0.0.1", d.port), timeout=40)
    started = time.monotonic()
    assert requests.get(d.url + "/healthz", timeout=5).status_code == 200
    for connection in (half, silent):
        try:
            assert connection.recv(100) == b""  # closed by the daemon
        except ConnectionResetError:
            pass
    elapsed = time.monotonic() - started
    assert 15 <= elapsed <= 35, f"closed after {elapsed:.1f} s (expected about 20 s: max(10, 2 × 5 + 10))"
