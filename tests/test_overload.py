"""Overload: past capacity the daemon sheds inbound load explicitly and recovers by itself.

The store's capacity is made small and certain: `store.max_queued_writes` is 4, and another
process holds SQLite's write lock, so nothing can commit and every write waits. Then:

- inbound webhooks beyond the queue are answered at once with 503 `overloaded` and
  Retry-After (not left to time out), SMTP DATA with 451 4.3.2, a chat message with an
  `overloaded` error frame and no ack;
- nothing refused is stored; every message that was admitted is stored once the lock goes;
- without a restart, the refused messages sent again are stored, each once;
- every refusal is counted in switchboard_inbound_shed_total, and the log says so without
  patient data.
"""

from __future__ import annotations

import smtplib
import sqlite3
import threading
import time
import uuid

import chat_harness as ch
import mail_harness as mh
import switchboard_harness as h


def metric(d: h.Daemon, name: str, labels: str = "") -> float:
    text = h.requests.get(d.url + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(name + (("{" + labels + "}") if labels else " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_full_write_queue_is_refused_at_once_and_the_daemon_recovers(make_daemon):
    overrides = {"store": {"max_queued_writes": 4}}
    overrides.update(mh.email_overrides())
    d = make_daemon(overrides=overrides)
    db_path = d.config["store"]["path"]
    texts = {}
    for i in range(24):
        message_id = "m-" + uuid.uuid4().hex
        texts[message_id] = f"overload test note {uuid.uuid4().hex[:8]} number {i}"

    answers: dict[str, tuple[int, dict, float]] = {}

    def send(message_id: str) -> None:
        started = time.monotonic()
        r = h.post_webhook(d.url, d.signer, h.portal_event("P-overload", texts[message_id], message_id=message_id))
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        answers[message_id] = (r.status_code, {"retry-after": r.headers.get("Retry-After"), **body}, time.monotonic() - started)

    # The chat is open before the store is held (its hello writes the visitor).
    chat = ch.ChatClient(d.url)
    chat.hello()
    lock = sqlite3.connect(db_path, timeout=10, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        threads = [threading.Thread(target=send, args=(m,)) for m in texts]
        for t in threads:
            t.start()
        # The refusals come back while the lock is still held: shedding does not wait.
        h.wait_until(lambda: sum(1 for a in answers.values() if a[0] == 503) >= 10, 5, what="503s while the store is held")

        # SMTP and chat are refused the same way while the queue is full.
        smtp = smtplib.SMTP("127.0.0.1", mh.smtp_port_of(d), timeout=10)
        smtp.ehlo("overload.example.net")
        raw = mh.build_mail(from_addr="patient.overload@example.net", text="overload mail body", message_id=f"<{uuid.uuid4().hex}@example.net>")
        try:
            smtp.sendmail("patient.overload@example.net", [mh.SUPPORT_ADDRESS], raw)
            smtp_refusal = None
        except smtplib.SMTPDataError as error:
            smtp_refusal = error
        client_id = chat.message("overload chat body")
        refusal = chat.expect("error", timeout=5)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    for t in threads:
        t.join(timeout=30)

    assert smtp_refusal is not None and smtp_refusal.smtp_code == 451, smtp_refusal
    assert smtp_refusal.smtp_error.decode().startswith("4.3.2"), smtp_refusal
    assert refusal["code"] == "overloaded" and refusal["client_id"] == client_id and refusal.get("retry_after_ms"), refusal
    assert not [f for f in chat.quiet(1.0) if f.get("type") == "ack"], "a shed chat message was acknowledged"

    refused = [m for m, (status, _, _) in answers.items() if status == 503]
    admitted = [m for m, (status, _, _) in answers.items() if status == 202]
    assert len(refused) + len(admitted) == len(texts), answers
    # Admitted: the batch that was already waiting for the lock, and up to 4 queued behind it.
    assert admitted and len(refused) >= 10, f"{len(admitted)} admitted, {len(refused)} refused"
    for message_id in refused:
        status, body, elapsed = answers[message_id]
        assert body["retry-after"] == "1" and body["error"]["code"] == "overloaded", body
        assert elapsed < 5, f"a refusal took {elapsed:.1f} s: shedding must not wait for the store"

    with sqlite3.connect(db_path) as db:
        stored = {row[0] for row in db.execute("SELECT external_id FROM messages WHERE channel = 'portal'")}
        assert stored == set(admitted), "stored is not exactly what was acknowledged"
        assert db.execute("SELECT count(*) FROM messages WHERE channel IN ('email', 'chat')").fetchone()[0] == 0

    # Recovery without a restart: the refused messages, sent again, are stored once each;
    # the mail and the chat message too.
    for message_id in refused:
        r = h.post_webhook(d.url, d.signer, h.portal_event("P-overload", texts[message_id], message_id=message_id))
        assert r.status_code == 202, r.text
    smtp.sendmail("patient.overload@example.net", [mh.SUPPORT_ADDRESS], raw)
    smtp.quit()
    chat.message("overload chat body", client_id=client_id)
    chat.expect("ack", where=lambda f: f.get("client_id") == client_id)
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT external_id, count(*) FROM messages WHERE channel = 'portal' GROUP BY external_id").fetchall()
        assert {r[0] for r in rows} == set(texts) and all(r[1] == 1 for r in rows)
        assert db.execute("SELECT count(*) FROM messages WHERE channel = 'email'").fetchone()[0] == 1
        assert db.execute("SELECT count(*) FROM messages WHERE channel = 'chat'").fetchone()[0] == 1

    assert metric(d, "switchboard_inbound_shed_total", 'channel="portal"') == len(refused)
    assert metric(d, "switchboard_inbound_shed_total", 'channel="email"') == 1
    assert metric(d, "switchboard_inbound_shed_total", 'channel="chat"') == 1
    # The 451 4.3.2 is counted as shedding, not as a store failure.
    assert metric(d, "switchboard_smtp_refusals_total", 'reason="overloaded"') == 1
    assert metric(d, "switchboard_smtp_refusals_total", 'reason="store_unavailable"') == 0
    log = d.log_text()
    assert "inbound messages refused: the store's write queue is full" in log
    assert "overload test note" not in log and "patient.overload" not in log and "overload chat body" not in log
