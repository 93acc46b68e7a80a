"""`switchboard journal replay`: stored messages are made again from the journal's raw bytes
(after a parser fix). The "old parser's" results are simulated by damaging the stored text;
replay must restore exactly what the live path stores, report it, audit it, touch nothing
else, and with --dry-run change nothing."""

from __future__ import annotations

import json
import sqlite3

import chat_harness as ch
import mail_harness as mail
import switchboard_harness as h


def damage(daemon, message_id: str, text: str, html: str | None = None) -> None:
    db = sqlite3.connect(daemon.config["store"]["path"])
    db.execute("UPDATE messages SET body_text = ?, body_html = COALESCE(?, body_html) WHERE id = ?", (text, html, message_id))
    db.execute("UPDATE email_messages SET quoted_text = NULL WHERE message_id = ?", (message_id,))
    db.commit()
    db.close()


def replay(daemon, *args: str) -> dict:
    cp = daemon.cli("journal", "replay", *args, "--json")
    return json.loads(cp.stdout)


def test_replay_restores_what_the_parsers_make_of_the_raw_deliveries(mail_daemon):
    env = mail_daemon()
    d, api = env.d, env.api
    # An email with quoted history, a portal message and a chat message.
    addr = f"{h.uid('pat.')}@example.net"
    new_text = "Could I move my appointment to Thursday?"
    raw = mail.build_mail(from_addr=addr, subject="RE: Appointment",
                          text=new_text + "\n" + mail.outlook_history(text="Your appointment is on Tuesday at 9:30."),
                          message_id=f"<{h.uid('m.')}@example.net>")
    assert mail.smtp_send(env.port, addr, [mail.SUPPORT_ADDRESS], raw).ok
    email = mail.wait_email_conversation(api, addr)
    email_message = mail.inbound(email)[0]
    assert d.webhook(h.portal_event(patient_id="P-31", text="portal: my refill please")).status_code == 202
    client = ch.ChatClient(d.url)
    client.hello()
    client.message("chat: is the lab open?")
    client.expect("ack")
    conversations = {c["channel"]: c["id"] for c in api.list(status="any")}
    portal_message = api.conversation(conversations["portal"])["messages"][0]
    chat_message = api.conversation(conversations["chat"])["messages"][0]

    # Nothing differs yet.
    first = replay(d)
    assert first["examined"] == 3 and first["changed"] == [] and first["unchanged"] == 3 and first["skipped"] == []

    # As if an older parser had stored worse results.
    damage(d, email_message["id"], "garbled by an old parser", "<p>garbled</p>")
    damage(d, portal_message["id"], "garbled")
    damage(d, chat_message["id"], "garbled")

    dry = replay(d, "--dry-run")
    assert sorted(dry["changed"]) == sorted([email_message["id"], portal_message["id"], chat_message["id"]]) and dry["dry_run"]
    assert mail.inbound(api.conversation(email["conversation"]["id"]))[0]["text"] == "garbled by an old parser"

    only_chat = replay(d, "--channel", "chat")
    assert only_chat["changed"] == [chat_message["id"]] and only_chat["examined"] == 1
    assert api.conversation(conversations["chat"])["messages"][0]["text"] == "chat: is the lab open?"

    done = replay(d)
    assert sorted(done["changed"]) == sorted([email_message["id"], portal_message["id"]])
    restored = mail.inbound(api.conversation(email["conversation"]["id"]))[0]
    assert restored["text"] == email_message["text"] and restored["email"]["quoted"] == email_message["email"]["quoted"]
    assert restored["email"]["html"] == email_message["email"]["html"]
    assert api.conversation(conversations["portal"])["messages"][0]["text"] == "portal: my refill please"
    assert replay(d)["changed"] == []

    # Audited, with the operator; and a bad option is a usage error.
    db = sqlite3.connect(d.config["store"]["path"])
    audited = db.execute("SELECT count(*) FROM audit_events WHERE action = 'message.reparsed' AND actor_kind = 'admin'").fetchone()[0]
    db.close()
    assert audited == 3
    bad = d.cli("journal", "replay", "--channel", "fax", check=False)
    assert bad.returncode == 64 and "--channel" in bad.stderr
    text = d.cli("journal", "replay", "--message", email_message["id"]).stdout
    assert "1 deliveries examined: 0 changed, 1 unchanged" in text
