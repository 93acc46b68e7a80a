"""The command line's operations: dead letters (outbox list/retry/discard), retention
(purge keeps what it must), and conversation list/show — every change and read audited."""
from __future__ import annotations

import json
import subprocess
import sqlite3
import time

import requests

import switchboard_harness as h
from switchboard_harness import portal_event, uid


def audit_actions(d: h.Daemon) -> list[tuple[str, str]]:
    db = sqlite3.connect(f"file:{d.config['store']['path']}?mode=ro", uri=True)
    try:
        return [(r[0], r[1]) for r in db.execute("SELECT action, actor_id FROM audit_events ORDER BY id")]
    finally:
        db.close()


def test_dead_letter_list_retry_discard(make_daemon, receiver):
    d = make_daemon(outbound_url=receiver.url, overrides={"outbox": {"horizon_seconds": 1}})
    api = d.api(d.add_agent(role="admin"))
    cid = d.webhook(portal_event(uid("P-"), "please answer")).json()["conversation_id"]
    receiver.behavior = lambda rec, prior: 500
    first = api.reply(cid, "first try")
    second = api.reply(cid, "second try")
    for mid in (first, second):
        api.wait_delivery(cid, mid, "failed", timeout=30)
    dead = json.loads(d.cli("outbox", "list", "--json").stdout)
    by_message = {e["message_id"]: e for e in dead}
    assert {first, second} <= set(by_message), dead
    assert all(e["state"] == "dead" and e["last_error"] for e in dead), dead  # attempts may be 0: the horizon passed first

    # The receiver is back: a retried dead letter is delivered.
    receiver.behavior = lambda rec, prior: 200
    assert d.cli("outbox", "retry", str(by_message[first]["id"])).returncode == 0
    api.wait_delivery(cid, first, "delivered", timeout=30)
    # A discarded one leaves the list and is never sent.
    sent_before = len(receiver.for_message(second))
    assert d.cli("outbox", "discard", str(by_message[second]["id"])).returncode == 0
    remaining = {e["message_id"] for e in json.loads(d.cli("outbox", "list", "--json").stdout)}
    assert first not in remaining and second not in remaining
    time.sleep(1.0)
    assert len(receiver.for_message(second)) == sent_before
    assert api.message(cid, second)["delivery_status"] == "failed"
    # Unknown or not dead: a clear refusal.
    cp = d.cli("outbox", "retry", str(by_message[first]["id"]), check=False)
    assert cp.returncode == 1 and "not a dead letter" in cp.stderr
    actions = audit_actions(d)
    assert ("outbox.retried", actions[-2][1]) in actions and any(a == "outbox.discarded" and who.startswith("cli:") for a, who in actions)


def test_purge_removes_old_text_and_keeps_what_it_must(make_daemon, receiver):
    d = make_daemon(outbound_url=receiver.url)
    api = d.api(d.add_agent(role="admin"))
    old = d.webhook(portal_event(uid("P-"), "old private words")).json()
    fresh = d.webhook(portal_event(uid("P-"), "fresh private words")).json()
    receiver.behavior = lambda rec, prior: 503  # a reply that stays pending in the outbox
    pending_reply = api.reply(old["conversation_id"], "still to deliver")
    d.stop()
    # Age the first conversation by 40 days in the store.
    db = sqlite3.connect(d.config["store"]["path"])
    shift = 40 * 86_400_000
    db.execute("UPDATE messages SET created_at = created_at - ? WHERE conversation_id = ?", (shift, old["conversation_id"]))
    db.execute("UPDATE conversations SET last_message_at = last_message_at - ? WHERE id = ?", (shift, old["conversation_id"]))
    db.commit()
    db.close()
    dry = json.loads(d.cli("purge", "--older-than-days", "30", "--dry-run", "--json").stdout)
    assert dry == {"messages": 1, "attachments": 0, "journal_entries": 1, "dry_run": True}, dry
    done = json.loads(d.cli("purge", "--older-than-days", "30", "--json").stdout)
    assert done["messages"] == 1 and done["dry_run"] is False
    db = sqlite3.connect(f"file:{d.config['store']['path']}?mode=ro", uri=True)
    texts = dict(db.execute("SELECT id, body_text FROM messages"))
    raw = dict(db.execute("SELECT message_id, length(raw) FROM inbound_journal"))
    db.close()
    assert texts[old["message_id"]] == "" and raw[old["message_id"]] == 0
    assert texts[fresh["message_id"]] == "fresh private words" and raw[fresh["message_id"]] > 0
    assert texts[pending_reply] == "still to deliver", "a reply waiting in the outbox keeps its text"
    assert any(a == "retention.purged" for a, _ in audit_actions(d))
    assert d.cli("audit", "verify").returncode == 0
    assert d.cli("purge", "--older-than-days", "0", check=False).returncode == 64


def test_conversation_list_and_show_are_audited(make_daemon):
    d = make_daemon()
    r = d.webhook(portal_event(uid("P-"), "show me on the command line")).json()
    listed = json.loads(d.cli("conversation", "list", "--json").stdout)
    assert r["conversation_id"] in [c["id"] for c in listed]
    shown = json.loads(d.cli("conversation", "show", r["conversation_id"], "--json").stdout)
    assert shown["messages"][0]["text"] == "show me on the command line"
    assert any(a == "conversation.read" and who.startswith("cli:") for a, who in audit_actions(d))
    cp = d.cli("conversation", "show", "cnv_nosuch", check=False)
    assert cp.returncode == 1 and "no such conversation" in cp.stderr


def test_commands_refuse_a_missing_database(tmp_path):
    config = tmp_path / "switchboard.yaml"
    config.write_text(f"store:\n  path: {tmp_path / 'nowhere' / 'switchboard.sqlite'}\n")
    for args in (["outbox", "list"], ["audit", "verify"], ["conversation", "list"], ["db", "check"]):
        cp = subprocess.run([str(h.cli_bin()), *args, "--config", str(config)], capture_output=True, text=True,
                            timeout=60, env=h.clean_env(), cwd=tmp_path)
        assert cp.returncode == 1 and "no database at" in cp.stderr, (args, cp.stderr)
    assert not (tmp_path / "nowhere").exists(), "a read-only command created a database"


def test_agent_and_team_commands_reach_the_running_router(make_daemon):
    d = make_daemon(overrides={"triage": {"enabled": False}})
    admin = d.api(d.add_agent(role="admin"))
    a = d.add_agent(role="agent", team="cli-team")
    assert d.api(a).put("/me/presence", {"presence": "online"}).status_code == 200
    out = json.loads(d.cli("agent", "update", a["agent_id"], "--skills", "billing, records", "--languages", "en,es",
                           "--capacity", "portal=0,sms=2", "--json").stdout)
    assert out["skills"] == ["billing", "records"] and out["capacity"] == {"portal": 0, "sms": 2}, out
    # The router follows at once: no portal capacity, so a portal conversation waits.
    cid = d.webhook(portal_event(uid("P-"), "route me")).json()["conversation_id"]
    h.wait_until(lambda: admin.get(f"/conversations/{cid}/routing").json()["decisions"], 10, what="a routing decision")
    decision = admin.get(f"/conversations/{cid}/routing").json()["decisions"][-1]
    assert decision["outcome"] == "queued", decision
    passed = next(c for c in decision["candidates"] if c["agent_id"] == a["agent_id"])
    assert "no portal capacity" in passed["reasons"], passed
    assert d.cli("agent", "update", a["agent_id"], "--capacity", "portal=lots", check=False).returncode == 64

    team = json.loads(d.cli("team", "set", "cli-team", "--policy", "round-robin", "--auto-accept", "true", "--json").stdout)
    assert team["policy"] == "round-robin" and team["auto_accept"] is True
    listed = json.loads(d.cli("team", "list", "--json").stdout)
    assert any(t["name"] == "cli-team" and t["policy"] == "round-robin" for t in listed)
    assert d.cli("team", "set", "cli-team", "--policy", "random", check=False).returncode == 64

    assert d.cli("agent", "deactivate", a["agent_id"]).returncode == 0
    assert d.api(a).get("/me").status_code == 401
    assert d.cli("agent", "deactivate", a["agent_id"], check=False).returncode == 1


def test_trusted_proxy_client_address_in_the_audit_trail(make_daemon):
    """Behind a proxy listed in http.trusted_proxies, audited reads record the client
    address from X-Forwarded-For (the right-most untrusted entry); from anyone else the
    header is ignored."""
    def read_as(d: h.Daemon, forwarded: str) -> str:
        admin = d.add_agent(role="admin")
        cid = d.webhook(portal_event(uid("P-"), "where from")).json()["conversation_id"]
        r = requests.get(f"{d.url}/api/v1/conversations/{cid}",
                         headers={"Authorization": "Bearer " + admin["token"], "X-Forwarded-For": forwarded}, timeout=10)
        assert r.status_code == 200, r.text
        db = sqlite3.connect(f"file:{d.config['store']['path']}?mode=ro", uri=True)
        try:
            return db.execute("SELECT source_address FROM audit_events WHERE action = 'conversation.read' AND conversation_id = ?",
                              (cid,)).fetchone()[0]
        finally:
            db.close()

    trusting = make_daemon(overrides={"http": {"trusted_proxies": "127.0.0.1"}}, name="trusting")
    assert read_as(trusting, "198.51.100.7, 203.0.113.9") == "203.0.113.9"  # the proxy appended the real client
    assert read_as(trusting, "not-an-address") == "127.0.0.1"
    plain = make_daemon(name="plain")
    assert read_as(plain, "203.0.113.9") == "127.0.0.1"
