"""Crash proof: SIGKILL at random moments under mixed load, and nothing acknowledged is lost.

Four clients drive the daemon at a steady rate at once — signed portal webhooks, signed
Twilio webhooks, SMTP (smtplib) and web chat (a real WebSocket) — each remembering exactly
what the daemon acknowledged (202, TwiML 200, 250 after DATA, the chat `ack`). At a random
moment the daemon is SIGKILLed; it is started again on the same store, and then:

- every message acknowledged so far, in every trial, is stored exactly once;
- a few acknowledged messages sent again after the restart are answered as duplicates and
  stored nothing new (dedupe survives the crash);
- nothing at all is stored twice, whether or not it was acknowledged;
- `PRAGMA integrity_check` is `ok`.

CRASH_TRIALS (default 20) and CRASH_SEED (default: random, printed) reproduce a run.
"""

from __future__ import annotations

import os
import random
import smtplib
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field

import pytest
import requests

import chat_harness as ch
import mail_harness as mh
import sms_harness as sh
import switchboard_harness as h

TRIALS = int(os.environ.get("CRASH_TRIALS", "20"))
SEED = int(os.environ.get("CRASH_SEED", str(random.SystemRandom().randrange(1 << 30))))
PACE = 0.02  # seconds between one client's messages: about 50 per second per channel


@dataclass
class Ledger:
    """What one channel's client sent and what the daemon acknowledged."""
    channel: str
    acked: list[str] = field(default_factory=list)      # the channel's own ids
    in_doubt: list[str] = field(default_factory=list)   # sent, no answer (the kill came first)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, external_id: str) -> None:
        with self.lock:
            self.acked.append(external_id)

    def doubt(self, external_id: str) -> None:
        with self.lock:
            self.in_doubt.append(external_id)


def portal_client(d: h.Daemon, ledger: Ledger, stop: threading.Event) -> None:
    session = requests.Session()
    while not stop.is_set():
        message_id = "m-" + uuid.uuid4().hex
        event = h.portal_event(f"P-crash-{random.randrange(50)}", f"crash test portal {message_id}", message_id=message_id)
        try:
            r = h.post_webhook(d.url, d.signer, event, session=session)
        except requests.RequestException:
            ledger.doubt(message_id)
            return
        if r.status_code in (200, 202):
            ledger.ack(message_id)
        else:
            ledger.doubt(message_id)
        time.sleep(PACE)


def twilio_client(d: h.Daemon, ledger: Ledger, stop: threading.Event) -> None:
    session = requests.Session()
    while not stop.is_set():
        message_sid = sh.sid()
        form = sh.twilio_form(f"+1555010{random.randrange(50):04d}", f"crash test sms {message_sid}", message_sid=message_sid)
        try:
            r = sh.post_twilio(d, form, session=session)
        except requests.RequestException:
            ledger.doubt(message_sid)
            return
        (ledger.ack if r.status_code == 200 else ledger.doubt)(message_sid)
        time.sleep(PACE)


def smtp_client(d: h.Daemon, ledger: Ledger, stop: threading.Event) -> None:
    try:
        client = smtplib.SMTP("127.0.0.1", mh.smtp_port_of(d), timeout=10)
        client.ehlo("crash.example.net")
    except OSError:
        return
    while not stop.is_set():
        token = uuid.uuid4().hex
        raw = mh.build_mail(from_addr=f"patient{random.randrange(50)}@example.net", to=mh.SUPPORT_ADDRESS,
                            subject="crash test", text=f"crash test mail {token}", message_id=f"<{token}@example.net>")
        try:
            client.sendmail("patient@example.net", [mh.SUPPORT_ADDRESS], raw)
        except (smtplib.SMTPException, OSError):
            ledger.doubt(token)
            return
        ledger.ack(token)  # sendmail returns only after the 250 that follows DATA
        time.sleep(PACE)


def chat_client(d: h.Daemon, ledger: Ledger, stop: threading.Event) -> None:
    try:
        client = ch.ChatClient(d.url, timeout=10)
        client.hello()
    except Exception:  # noqa: BLE001 - the daemon may already be gone
        return
    while not stop.is_set():
        client_id = uuid.uuid4().hex
        try:
            client.message(f"crash test chat {client_id}", client_id=client_id)
            client.expect("ack", timeout=10, where=lambda f, c=client_id: f.get("client_id") == c)
        except Exception:  # noqa: BLE001 - closed by the kill
            ledger.doubt(client_id)
            return
        ledger.ack(client_id)
        time.sleep(PACE)


CLIENTS = {"portal": portal_client, "sms": twilio_client, "email": smtp_client, "chat": chat_client}



def stored_external_ids(db: sqlite3.Connection) -> dict[str, list[str]]:
    """channel -> the channel-side id of every inbound message, as the clients know it."""
    out: dict[str, list[str]] = {name: [] for name in CLIENTS}
    for channel, external_id in db.execute("SELECT channel, external_id FROM messages WHERE direction = 'inbound'"):
        if channel == "chat":
            out["chat"].append(external_id.rsplit(":", 1)[-1])  # visitor:client_id
        elif channel == "email":
            out["email"].append(external_id.strip("<>").split("@", 1)[0])
        elif channel == "sms":
            out["sms"].append(external_id.split(":", 1)[-1])  # twilio:MessageSid
        elif channel in out:
            out[channel].append(external_id)
    return out


def resend_acknowledged(d: h.Daemon, ledgers: dict[str, Ledger]) -> None:
    """Sends the last acknowledged portal and Twilio messages again: each must be a duplicate."""
    portal = ledgers["portal"].acked[-1:]
    for message_id in portal:
        r = h.post_webhook(d.url, d.signer, h.portal_event("P-crash-0", f"crash test portal {message_id}", message_id=message_id))
        assert r.status_code in (200, 202), r.text
    for message_sid in ledgers["sms"].acked[-1:]:
        form = sh.twilio_form("+15550100000", f"crash test sms {message_sid}", message_sid=message_sid)
        assert sh.post_twilio(d, form).status_code == 200


def wait_for_queue_to_drain(db_path: str, timeout: float = 60.0) -> None:
    """With portal.acknowledge: received, what was acknowledged may still be in the inbound
    queue after the restart: wait until the normaliser has stored all of it (none failed)."""
    def drained():
        with sqlite3.connect(db_path, timeout=10) as db:
            waiting, failed = db.execute("SELECT count(*) FILTER (WHERE failed_at IS NULL), "
                                         "count(*) FILTER (WHERE failed_at IS NOT NULL) FROM inbound_queue").fetchone()
        assert failed == 0, f"{failed} queued deliveries failed to be stored"
        return waiting == 0
    h.wait_until(drained, timeout, interval=0.1, what="the inbound queue to be stored")


@pytest.mark.slow
@pytest.mark.parametrize("acknowledge", ["stored", "received"])
def test_sigkill_under_mixed_load_never_loses_an_acknowledged_message(make_daemon, acknowledge):
    overrides = h.merge(sh.sms_overrides(), mh.email_overrides())
    overrides["chat"] = {"message_burst": 1000, "messages_per_minute": 10000}
    overrides["portal"] = {"acknowledge": acknowledge}
    d = make_daemon(overrides=overrides, start=False)
    rng = random.Random(SEED)
    print(f"crash test: {TRIALS} trials, portal.acknowledge={acknowledge}, CRASH_SEED={SEED}")
    ledgers = {name: Ledger(name) for name in CLIENTS}
    db_path = d.config["store"]["path"]
    for trial in range(TRIALS):
        d.start()
        stop = threading.Event()
        threads = [threading.Thread(target=client, args=(d, ledgers[name], stop), daemon=True)
                   for name, client in CLIENTS.items()]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.3, 2.5))
        d.kill9()
        stop.set()
        for t in threads:
            t.join(timeout=20)
            assert not t.is_alive(), "a load client hung after the kill"

        d.start()
        resend_acknowledged(d, ledgers)
        wait_for_queue_to_drain(db_path)
        with sqlite3.connect(db_path, timeout=10) as db:
            stored = stored_external_ids(db)
            for name, ledger in ledgers.items():
                counts: dict[str, int] = {}
                for external_id in stored[name]:
                    counts[external_id] = counts.get(external_id, 0) + 1
                lost = [x for x in ledger.acked if counts.get(x, 0) == 0]
                assert not lost, f"trial {trial} (CRASH_SEED={SEED}): {len(lost)} acknowledged {name} message(s) lost"
                twice = [x for x, n in counts.items() if n > 1]
                assert not twice, f"trial {trial} (CRASH_SEED={SEED}): {name} message(s) stored twice: {twice[:3]}"
            duplicates = db.execute("SELECT count(*) FROM (SELECT channel, external_id FROM messages "
                                    "GROUP BY channel, external_id HAVING count(*) > 1)").fetchone()[0]
            assert duplicates == 0
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        d.kill9()

    acked = {name: len(ledger.acked) for name, ledger in ledgers.items()}
    print(f"crash test: acknowledged {acked}, in doubt {({n: len(l.in_doubt) for n, l in ledgers.items()})}")
    # The test proves something only if every channel carried load through the trials.
    for name, count in acked.items():
        assert count >= TRIALS, f"only {count} {name} messages were acknowledged over {TRIALS} trials"


def test_sigkill_with_acknowledged_deliveries_still_queued_stores_each_once_after_restart(make_daemon):
    """portal.acknowledge: received. A burst is acknowledged faster than it is stored; the
    daemon is killed while acknowledged deliveries still wait in the inbound queue. After the
    restart each is stored exactly once, and sending them all again stores nothing new."""
    from concurrent.futures import ThreadPoolExecutor
    d = make_daemon(overrides={"portal": {"acknowledge": "received"}})
    events = [(f"msg_{uuid.uuid4().hex}", h.portal_event(text=f"burst {n}")) for n in range(600)]
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=16))

    def send(item):
        msg_id, event = item
        return h.post_webhook(d.url, d.signer, event, msg_id=msg_id, session=session).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(send, events))
    d.kill9()
    assert codes == [202] * len(events)
    db_path = d.config["store"]["path"]
    with sqlite3.connect(db_path, timeout=10) as db:
        waiting = db.execute("SELECT count(*) FROM inbound_queue").fetchone()[0]
    print(f"acknowledged {len(events)}, still queued at the kill: {waiting}")
    assert waiting > 0, "the burst was stored before the kill: this run proves nothing about the queue"

    d.start()
    wait_for_queue_to_drain(db_path)
    for msg_id, event in events[:50]:
        assert h.post_webhook(d.url, d.signer, event, msg_id=msg_id, session=session).status_code == 202
    wait_for_queue_to_drain(db_path)
    with sqlite3.connect(db_path, timeout=10) as db:
        stored = [row[0] for row in db.execute("SELECT external_id FROM messages WHERE channel = 'portal'")]
        journal = db.execute("SELECT count(*) FROM inbound_journal WHERE channel = 'portal'").fetchone()[0]
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert sorted(stored) == sorted(event["message"]["id"] for _, event in events)
    assert journal == len(events)
