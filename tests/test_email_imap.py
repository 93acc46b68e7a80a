"""Email in through IMAP polling: a private Dovecot (mail_harness.Dovecot) on loopback, polled every
second. Mail becomes conversations; committed mail is flagged \\Seen (or moved to the processed folder),
never deleted; the UID cursor (not the \\Seen flag) decides what is new; an outage loses nothing and
duplicates nothing; a UIDVALIDITY change duplicates nothing; bad credentials and untrusted certificates
are errors the daemon survives; IMAPS and STARTTLS with a CA file; SMTP + IMAP dedupe on Message-ID."""

from __future__ import annotations

import re
import time

import pytest

import mail_harness as mail
from mail_harness import (IMAP_PASSWORD, SUPPORT_ADDRESS, all_inbound_email, build_mail, find_email_conversations,
                          inbound_texts, metric_value, smtp_send, wait_email_conversation)
from switchboard_harness import parse_time, uid, wait_until

POLLS = "switchboard_imap_polls_total"


def patient(prefix: str = "imap") -> str:
    return f"{prefix}.{uid()}@example.net"


def norm(text: str) -> str:
    return " ".join(text.split())


def deliver(dv: mail.Dovecot, text: str, addr: str | None = None, mailbox: str = "INBOX",
            subject: str = "Portal question", **kw) -> tuple[str, str]:
    """Drop one patient mail into ``mailbox``; returns (patient address, Message-ID)."""
    addr = addr or patient()
    mid = kw.pop("message_id", None) or f"<{uid('imap.')}@example.net>"
    dv.deliver(build_mail(from_addr=addr, to=SUPPORT_ADDRESS, subject=subject, text=text, message_id=mid, **kw),
               mailbox)
    return addr, mid


def wait_inbound_count(api, n: int, timeout: float = 20.0) -> list[dict]:
    return wait_until(lambda: (lambda ms: ms if len(ms) >= n else None)(all_inbound_email(api)), timeout, 0.3,
                      f"{n} inbound email messages")


def polls(d, outcome: str | None = None) -> float:
    return metric_value(d, POLLS, {"outcome": outcome} if outcome else None)


def wait_polls(d, more: int, timeout: float = 15.0) -> None:
    start = polls(d)
    wait_until(lambda: polls(d) >= start + more, timeout, 0.2, f"{more} more IMAP polls (from {start})")


def seen(flags: set) -> bool:
    return "\\Seen" in flags


# ---------------------------------------------------------------------------------------------


def test_imap_mail_becomes_conversations_and_is_marked_seen(make_dovecot, mail_daemon):
    dv = make_dovecot()
    env = mail_daemon(dovecot=dv)
    sent = [deliver(dv, f"IMAP message number {i}: my prescription ran out") for i in range(3)]
    for addr, _ in sent:
        det = wait_email_conversation(env.api, addr, timeout=15)
        assert det["conversation"]["channel"] == "email"
    for i, (addr, _) in enumerate(sent):
        assert inbound_texts(find_email_conversations(env.api, addr)[0]) == [
            f"IMAP message number {i}: my prescription ran out"]
    wait_until(lambda: (lambda f: len(f) == 3 and all(seen(x) for x in f.values()))(dv.all_flags()), 10, 0.2,
               "all three INBOX messages flagged \\Seen")
    ids = dv.message_ids()
    assert sorted(ids.values()) == sorted(m for _, m in sent), f"INBOX changed (deleted/expunged?): {ids}"
    assert "\\Deleted" not in set().union(*dv.all_flags().values())


def test_imap_already_seen_mail_is_stored_too(make_dovecot, mail_daemon):
    dv = make_dovecot()
    a1, m1 = deliver(dv, "read in webmail before the daemon saw it")
    a2, m2 = deliver(dv, "unread one")
    dv.add_flag(dv.uid_of(m1))
    assert seen(dv.flags(dv.uid_of(m1)))
    env = mail_daemon(dovecot=dv)
    assert inbound_texts(wait_email_conversation(env.api, a1, timeout=15)) == ["read in webmail before the daemon saw it"]
    assert inbound_texts(wait_email_conversation(env.api, a2, timeout=15)) == ["unread one"]


def test_imap_processed_folder_move(make_dovecot, mail_daemon):
    dv = make_dovecot()
    m = dv.imap()
    try:
        typ, data = m.create("Processed")
        assert typ == "OK", data
    finally:
        m.logout()
    env = mail_daemon(dovecot=dv, imap_processed_folder="Processed")
    sent = [deliver(dv, f"please move me {i}") for i in range(2)]
    for addr, _ in sent:
        wait_email_conversation(env.api, addr, timeout=15)
    wait_until(lambda: dv.folder_uids("INBOX") == [] and len(dv.folder_uids("Processed")) == 2, 10, 0.2,
               "both messages moved from INBOX to Processed")
    assert sorted(dv.message_ids("Processed").values()) == sorted(m for _, m in sent)
    # nothing is processed twice from the processed folder
    wait_polls(env.d, 2)
    assert len(all_inbound_email(env.api)) == 2


def test_imap_outage_loses_and_duplicates_nothing(make_dovecot, mail_daemon):
    dv = make_dovecot()
    env = mail_daemon(dovecot=dv)
    first, _ = deliver(dv, "before the outage")
    wait_email_conversation(env.api, first, timeout=15)
    dv.stop()
    texts = [f"outage message {i:02d} about my blood pressure" for i in range(30)]
    mids = [deliver(dv, t)[1] for t in texts]
    wait_until(lambda: polls(env.d, "error") > 0, 10, 0.2, "an IMAP poll error during the outage")
    dv.start()
    msgs = wait_inbound_count(env.api, 31, timeout=30)
    time.sleep(2.5)  # a couple more polls: nothing may arrive twice
    msgs = all_inbound_email(env.api)
    got = [m["text"] for m in msgs]
    assert sorted(got) == sorted(["before the outage"] + texts), \
        f"missing: {set(texts) - set(got)}; duplicates: {[t for t in set(got) if got.count(t) > 1]}"
    # stored in UID (= delivery) order
    by_text = {m["text"]: m for m in msgs}
    created = [parse_time(by_text[t]["created_at"]) for t in texts]
    assert created == sorted(created), f"not stored in UID order: {list(zip(texts, created))}"
    wait_until(lambda: all(seen(f) for f in dv.all_flags().values()), 10, 0.2, "all 31 flagged \\Seen")
    inbox = dv.message_ids()
    assert len(inbox) == 31 and set(mids) <= set(inbox.values()), "INBOX lost messages"
    assert [inbox[u] for u in sorted(inbox) if inbox[u] in mids] == mids, "test setup: UIDs not in delivery order"


@pytest.mark.parametrize("how", ["doveadm-update", "recreate-index"])
def test_imap_uidvalidity_change_duplicates_nothing(make_dovecot, mail_daemon, how):
    dv = make_dovecot()
    env = mail_daemon(dovecot=dv)
    sent = [deliver(dv, f"before the uidvalidity change {i}") for i in range(3)]
    wait_inbound_count(env.api, 3, timeout=15)
    wait_until(lambda: all(seen(f) for f in dv.all_flags().values()), 10, 0.2, "committed (\\Seen)")
    before = dv.uidvalidity()
    if how == "doveadm-update":
        dv.set_uidvalidity(before + 1000)
    else:
        dv.stop()
        dv.recreate_inbox()
        dv.start()
    assert dv.uidvalidity() != before
    wait_polls(env.d, 3)
    texts = [m["text"] for m in all_inbound_email(env.api)]
    assert sorted(texts) == sorted(f"before the uidvalidity change {i}" for i in range(3)), texts
    addr, _ = deliver(dv, "after the uidvalidity change")
    wait_email_conversation(env.api, addr, timeout=15)
    wait_polls(env.d, 2)
    texts = [m["text"] for m in all_inbound_email(env.api)]
    assert sorted(texts) == sorted([f"before the uidvalidity change {i}" for i in range(3)]
                                   + ["after the uidvalidity change"]), texts
    for addr, _ in sent:
        assert len(find_email_conversations(env.api, addr)) == 1


def test_imap_wrong_password(make_dovecot, mail_daemon):
    dv = make_dovecot()
    env = mail_daemon(dovecot=dv, imap_password="not-the-imap-pw-7731")
    addr, mid = deliver(dv, "nobody will read this")
    wait_until(lambda: polls(env.d, "error") > 0, 10, 0.2, f'{POLLS}{{outcome="error"}} > 0')
    time.sleep(1.5)
    assert env.d.running(), "daemon died on an IMAP login failure"
    assert find_email_conversations(env.api) == []
    assert not seen(dv.flags(dv.uid_of(mid)))
    log = env.d.log_text()
    assert re.search(r"level=(warning|error)\b.*imap|imap.*level=(warning|error)\b", log, re.I), \
        "no warning about the failing IMAP poll in the log"
    assert "not-the-imap-pw-7731" not in log and IMAP_PASSWORD not in log, "IMAP password in the log"
    # the same daemon with the right password (config reload is out of scope: restart)
    env.d.stop()
    env.d.config["email"]["imap_password"] = IMAP_PASSWORD
    env.d.config_path.write_text(mail_to_yaml(env.d.config))
    env.d.start()
    assert inbound_texts(wait_email_conversation(env.api, addr, timeout=15)) == ["nobody will read this"]


def mail_to_yaml(cfg: dict) -> str:
    import switchboard_harness as h
    return h.to_yaml(cfg)


def test_imaps_with_ca_file(make_dovecot, mail_daemon):
    dv = make_dovecot()
    env = mail_daemon(dovecot=dv, imap_url=dv.imaps_url, imap_tls="starttls", imap_ca_file=str(dv.cert))
    addr, _ = deliver(dv, "over IMAPS")
    assert inbound_texts(wait_email_conversation(env.api, addr, timeout=15)) == ["over IMAPS"]
    wait_until(lambda: all(seen(f) for f in dv.all_flags().values()), 10, 0.2, "\\Seen over IMAPS")


def test_imap_starttls_with_ca_file(make_dovecot, mail_daemon):
    dv = make_dovecot()
    env = mail_daemon(dovecot=dv, imap_tls="starttls", imap_ca_file=str(dv.cert))
    addr, _ = deliver(dv, "over IMAP STARTTLS")
    assert inbound_texts(wait_email_conversation(env.api, addr, timeout=15)) == ["over IMAP STARTTLS"]
    log = (dv.dir / "dovecot.log").read_text(errors="replace")
    assert re.search(r"Login: user=<alice@example\.test>.*TLS", log), \
        "Dovecot logged no TLS login for alice:\n" + "\n".join(log.splitlines()[-10:])


def test_imaps_untrusted_certificate_is_an_error(make_dovecot, mail_daemon):
    dv = make_dovecot()
    env = mail_daemon(dovecot=dv, imap_url=dv.imaps_url, imap_tls="starttls")  # no imap_ca_file
    addr, mid = deliver(dv, "must not be fetched over an unverified connection")
    wait_until(lambda: polls(env.d, "error") > 0, 10, 0.2, "an IMAP poll error (self-signed cert not trusted)")
    time.sleep(1.5)
    assert find_email_conversations(env.api) == []
    assert not seen(dv.flags(dv.uid_of(mid)))


def test_imap_several_mailboxes(make_dovecot, mail_daemon):
    dv = make_dovecot()
    dv.create_mailbox("Clinic")
    env = mail_daemon(dovecot=dv, imap_mailboxes="INBOX,Clinic")
    a1, _ = deliver(dv, "in the inbox")
    a2, _ = deliver(dv, "in the clinic folder", mailbox="Clinic")
    assert inbound_texts(wait_email_conversation(env.api, a1, timeout=15)) == ["in the inbox"]
    assert inbound_texts(wait_email_conversation(env.api, a2, timeout=15)) == ["in the clinic folder"]


def test_imap_batches_larger_than_batch_size(make_dovecot, mail_daemon):
    dv = make_dovecot()
    texts = [f"batch message {i:02d}" for i in range(12)]
    for t in texts:
        deliver(dv, t)
    env = mail_daemon(dovecot=dv, imap_batch_size=5)
    wait_inbound_count(env.api, 12, timeout=20)
    wait_polls(env.d, 2)
    got = [m["text"] for m in all_inbound_email(env.api)]
    assert sorted(got) == sorted(texts), got


def test_same_message_over_smtp_and_imap_stored_once(make_dovecot, mail_daemon):
    dv = make_dovecot()
    env = mail_daemon(dovecot=dv)
    addr = patient("both")
    mid = f"<{uid('both.')}@example.net>"
    raw = build_mail(from_addr=addr, subject="twice", text="delivered by SMTP and found over IMAP", message_id=mid)
    res = smtp_send(env.port, addr, SUPPORT_ADDRESS, raw)
    assert res.ok, res
    dv.deliver(raw)
    wait_email_conversation(env.api, addr, timeout=15)
    wait_until(lambda: all(seen(f) for f in dv.all_flags().values()), 10, 0.2, "IMAP copy committed")
    wait_polls(env.d, 1)
    convs = find_email_conversations(env.api, addr)
    assert len(convs) == 1 and inbound_texts(convs[0]) == ["delivered by SMTP and found over IMAP"], \
        [inbound_texts(c) for c in convs]
    assert norm(inbound_texts(convs[0])[0]) == "delivered by SMTP and found over IMAP"


def test_imap_message_stays_unread_until_committed_even_across_a_crash(make_dovecot, mail_daemon):
    """The window between reading a message and committing it: the store is held (another
    process has SQLite's write lock), so the poller has read the mail but cannot commit it.
    Then the daemon is SIGKILLed in that window. The message must still be unread in the
    patient-facing mailbox (it was read with BODY.PEEK[]), and after a restart it is stored
    once and only then flagged \\Seen."""
    import sqlite3

    dv = make_dovecot()
    env = mail_daemon(dovecot=dv, log_level="debug")
    addr, mid = deliver(dv, "fetched while the store is held, then the daemon dies")
    lock = sqlite3.connect(env.d.config["store"]["path"], timeout=10, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        wait_until(lambda: "IMAP message fetched" in env.d.log_text(), 15, 0.1, "the poller fetching the message")
        time.sleep(0.5)  # the commit is waiting for the lock now
        assert not seen(dv.flags(1)), f"flagged before the commit: {dv.flags(1)}"
        env.d.kill9()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert not seen(dv.flags(1)), "a crash between fetch and commit left the message flagged \\Seen"
    assert dv.message_ids() == {1: mid}
    env.d.start()
    det = wait_email_conversation(env.api, addr, timeout=15)
    assert inbound_texts(det) == ["fetched while the store is held, then the daemon dies"]
    wait_until(lambda: seen(dv.flags(1)), 10, 0.2, "\\Seen after the commit")
    time.sleep(2.5)  # more polls: nothing is stored twice
    assert [m["text"] for m in all_inbound_email(env.api)] == ["fetched while the store is held, then the daemon dies"]


def test_imap_message_over_the_size_limit_is_skipped_untouched(make_dovecot, mail_daemon):
    """A message over email.max_message_bytes is sized first (RFC822.SIZE) and never fetched:
    not stored, left unread in the mailbox, counted as rejected; the next message is stored."""
    dv = make_dovecot()
    env = mail_daemon(dovecot=dv, max_message_bytes=65536)
    big_addr, _ = deliver(dv, "big attachment follows\n" + ("x" * 76 + "\n") * 1200)  # ~93 KB
    small_addr, _ = deliver(dv, "a normal message after the big one")
    det = wait_email_conversation(env.api, small_addr, timeout=15)
    assert inbound_texts(det) == ["a normal message after the big one"]
    assert find_email_conversations(env.api, big_addr) == []
    wait_until(lambda: seen(dv.flags(2)), 10, 0.2, "the small message flagged \\Seen")
    assert not seen(dv.flags(1)), "the oversized message was marked read"
    assert metric_value(env.d, "switchboard_mail_in_total", {"source": "imap", "outcome": "rejected"}) == 1
    assert "imap.uid=1" in env.d.log_text() and "over email.max_message_bytes" in env.d.log_text()
