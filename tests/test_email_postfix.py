"""The organisation's MTA in front of the SMTP listener: a real Postfix (TESTBED.md 2b)
relaying the clinic's domain to Switchboard, as most hospitals would wire it.

- Mail relayed by Postfix becomes a conversation, and Postfix logs it as delivered
  (``status=sent``) with our ``250`` — its queue is then empty.
- When the store cannot commit, the listener answers ``451`` after DATA: Postfix keeps the
  message, retries it, and once the store is back it is stored exactly once.
- Mail for a domain that is not the clinic's is refused by our listener even when it comes
  from the trusted MTA (no relaying through Switchboard).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
import uuid

import pytest

import mail_harness as mail
from mail_harness import SUPPORT_ADDRESS, build_mail, find_email_conversations, inbound_texts, wait_email_conversation
from switchboard_harness import wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("postfix") is None,
                                reason="a private Postfix instance needs root and the postfix package (make test-deps)")


@pytest.fixture
def postfix_in_front(mail_daemon):
    made = []

    def factory(**email_kv):
        env = mail_daemon(**email_kv)
        pf = mail.Postfix(relay_port=env.port)
        made.append(pf)
        pf.start()
        env.postfix = pf
        return env

    yield factory
    for pf in made:
        print(pf.log()[-3000:])
        pf.close()


def test_mail_relayed_by_postfix_becomes_a_conversation(postfix_in_front):
    env = postfix_in_front()
    patient = f"pf.{uuid.uuid4().hex[:10]}@example.net"
    mid = f"<{uuid.uuid4().hex}@example.net>"
    env.postfix.send(build_mail(from_addr=patient, to=SUPPORT_ADDRESS, subject="Refill", text="Relayed by the hospital MTA: refill please",
                                message_id=mid), patient, [SUPPORT_ADDRESS])
    det = wait_email_conversation(env.api, patient, timeout=20)
    assert inbound_texts(det) == ["Relayed by the hospital MTA: refill please"]
    wait_until(lambda: "status=sent" in env.postfix.log(), 15, 0.2, "Postfix logging the delivery")
    sent = [line for line in env.postfix.log().splitlines() if "status=sent" in line]
    assert len(sent) == 1 and f"relay=127.0.0.1[127.0.0.1]:{env.port}" in sent[0] and "250 2.0.0" in sent[0], sent
    wait_until(env.postfix.queue_is_empty, 10, 0.2, "Postfix's queue empty")


def test_451_while_the_store_is_held_is_retried_by_postfix_and_stored_once(postfix_in_front):
    env = postfix_in_front()
    patient = f"pf.{uuid.uuid4().hex[:10]}@example.net"
    text = "Sent while the store was held: please call me back"
    lock = sqlite3.connect(env.d.config["store"]["path"], timeout=10, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        env.postfix.send(build_mail(from_addr=patient, to=SUPPORT_ADDRESS, subject="Call back", text=text,
                                    message_id=f"<{uuid.uuid4().hex}@example.net>"), patient, [SUPPORT_ADDRESS])
        # The listener waits out the store's busy timeout, then answers 451: Postfix defers.
        wait_until(lambda: "status=deferred" in env.postfix.log(), 30, 0.3, "Postfix deferring on our 451")
        assert find_email_conversations(env.api, patient) == []
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    deferred = [line for line in env.postfix.log().splitlines() if "status=deferred" in line]
    assert all("451" in line for line in deferred), deferred
    det = wait_email_conversation(env.api, patient, timeout=30)
    assert inbound_texts(det) == [text]
    wait_until(env.postfix.queue_is_empty, 15, 0.3, "Postfix's queue empty after the retry")
    time.sleep(1)
    assert len(find_email_conversations(env.api, patient)) == 1
    assert inbound_texts(wait_email_conversation(env.api, patient, timeout=5)) == [text]


def test_other_domains_are_refused_even_from_the_trusted_mta(postfix_in_front):
    """Postfix is told to relay example.org to us too (a misconfiguration): our listener still
    refuses it with 550 5.7.1, so Postfix bounces it; nothing is stored."""
    env = postfix_in_front()
    pf = env.postfix
    main_cf = (pf.etc / "main.cf").read_text()
    main_cf = main_cf.replace(f"relay_domains = {pf.domain}", f"relay_domains = {pf.domain}, example.org")
    (pf.etc / "main.cf").write_text(main_cf)
    import subprocess
    subprocess.run(["postfix", "-c", str(pf.etc), "reload"], capture_output=True, timeout=30, check=True)
    time.sleep(1)
    patient = f"pf.{uuid.uuid4().hex[:10]}@example.net"
    pf.send(build_mail(from_addr=patient, to="someone@example.org", subject="x", text="not for the clinic",
                       message_id=f"<{uuid.uuid4().hex}@example.net>"), patient, ["someone@example.org"])
    wait_until(lambda: "status=bounced" in pf.log(), 20, 0.3, "Postfix bouncing our 550")
    bounced = [line for line in pf.log().splitlines() if "status=bounced" in line]
    assert any("550 5.7.1" in line for line in bounced), bounced
    assert find_email_conversations(env.api, patient) == []
