"""The operator's rules file in the running daemon: actions applied after triage, the
knowledge base answering a general question, and SIGHUP reload — a bad file is rejected with
its line and the rules in force stay; a good one takes effect."""

from __future__ import annotations

import signal
import time

import switchboard_harness as h
from switchboard_harness import wait_until

RULES_V1 = """
knowledge_base:
  - id: parking
    keywords: [parking, park, garage]
    answer: "Free parking is in the Elm Street garage."
rules:
  - name: billing team
    when: {intent: billing}
    then: {team: billing, priority: urgent, tag: money}
  - name: kb
    when: {intent: general_info}
    then: {answer_from_knowledge_base: true}
"""

RULES_V2 = """
rules:
  - name: billing team v2
    when: {intent: billing}
    then: {team: accounts}
"""


def _start(make_daemon, receiver, tmp_path, text):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    d = make_daemon(outbound_url=receiver.url, overrides={"triage": {"rules_file": str(path)}})
    return d, path, d.api(d.add_agent(role="admin"))


def _triaged(api, cid):
    def check():
        c = api.get(f"/conversations/{cid}").json()
        return c if c["messages"][0].get("triage") else None
    return wait_until(check, 60, 0.2, "message triaged")


def test_rules_set_team_priority_and_answer_from_knowledge_base(make_daemon, receiver, tmp_path):
    d, _, api = _start(make_daemon, receiver, tmp_path, RULES_V1)
    r = d.webhook(h.portal_event(text="Why was I charged twice for my visit last month? Please fix the bill."))
    assert r.status_code == 202
    billing = _triaged(api, r.json()["conversation_id"])
    assert billing["conversation"]["intent"] == "billing"
    assert billing["conversation"]["priority"] == "urgent" and billing["conversation"]["team_id"]
    assert billing["tags"] == ["money"]

    r = d.webhook(h.portal_event(thread_id="T-KB", text="Where can I park when I come to the clinic? Is there a garage?"))
    assert r.status_code == 202
    info = _triaged(api, r.json()["conversation_id"])
    assert info["conversation"]["intent"] == "general_info"
    got = wait_until(lambda: [x for x in receiver.accepted() if x.json and "Elm Street" in x.json["message"]["text"]],
                     30, 0.1, "knowledge-base answer at the portal")
    assert got[0].json["thread_id"] == "T-KB"


def test_sighup_reload_rejects_bad_file_and_applies_good_one(make_daemon, receiver, tmp_path):
    d, path, api = _start(make_daemon, receiver, tmp_path, RULES_V1)
    path.write_text("rules:\n  - name: broken\n    when: {intent: bill}\n    then: {team: x}\n")
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "rules file rejected" in d.log_text(), 10, 0.1, "rejection logged")
    log = d.log_text()
    assert "line=3" in log and "unknown intent" in log
    assert d.running()
    # The old rules are still in force.
    r = d.webhook(h.portal_event(text="I was billed twice for the same visit, please correct my bill"))
    old = _triaged(api, r.json()["conversation_id"])
    assert old["conversation"]["priority"] == "urgent"
    # A good file takes effect on the next SIGHUP.
    path.write_text(RULES_V2)
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "rules reloaded" in d.log_text(), 10, 0.1, "reload logged")
    r = d.webhook(h.portal_event(text="Can you explain this charge on my statement? I think the bill is wrong"))
    new = _triaged(api, r.json()["conversation_id"])
    assert new["conversation"]["intent"] == "billing"
    assert new["conversation"]["priority"] == "normal"
    assert new["conversation"]["team_id"] and new["conversation"]["team_id"] != old["conversation"]["team_id"]


def test_bad_rules_file_refuses_to_start(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - name: x\n    then: {colour: red}\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"triage:\n  rules_file: {path}\n")
    cp = h.check_config(cfg)
    assert cp.returncode == 78, cp
    assert f"{path}:3" in cp.stderr and "unknown key 'colour'" in cp.stderr


def test_talk_to_a_person_is_tagged_for_handover_without_bot_reply(make_daemon, receiver, tmp_path):
    d, _, api = _start(make_daemon, receiver, tmp_path, RULES_V1)
    r = d.webhook(h.portal_event(patient_id="P-HO", thread_id="T-HO", text="Is there a parking garage near the clinic?"))
    cid = r.json()["conversation_id"]
    _triaged(api, cid)
    wait_until(lambda: [x for x in receiver.accepted() if x.json and "Elm Street" in x.json["message"]["text"]], 30, 0.1, "kb")
    r = d.webhook(h.portal_event(patient_id="P-HO", thread_id="T-HO", text="talk to a person please"))
    assert r.json()["conversation_id"] == cid
    wait_until(lambda: "handover" in api.get(f"/conversations/{cid}").json()["tags"], 30, 0.2, "handover tag")
    time.sleep(0.5)
    assert len([x for x in receiver.accepted() if x.json and x.json.get("thread_id") == "T-HO"]) == 1


def test_after_hours_auto_reply_names_the_next_opening(make_daemon, receiver, tmp_path):
    """Open one hour a week, on a day three days from now (UTC): now is after hours, and the
    auto-reply names that day and time, and the conversation is tagged."""
    import datetime
    day = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3)
    key = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][day.weekday()]
    rules = f"""
business_hours:
  timezone: UTC
  {key}: "09:00-10:00"
rules:
  - name: after-hours notice
    when: {{after_hours: true, urgency: [routine, urgent]}}
    then: {{auto_reply: "We are closed; we reopen {{next_opening}}.", tag: after_hours}}
"""
    d, _, api = _start(make_daemon, receiver, tmp_path, rules)
    r = d.webhook(h.portal_event(thread_id="T-AH", text="Can I move my physio appointment to next week?"))
    assert r.status_code == 202
    conversation = _triaged(api, r.json()["conversation_id"])
    assert conversation["tags"] == ["after_hours"]
    expected = f"We are closed; we reopen {day.strftime('%A')} 09:00."
    got = wait_until(lambda: [x for x in receiver.accepted() if x.json and x.json.get("thread_id") == "T-AH"],
                     30, 0.1, "the after-hours reply at the portal")
    assert got[0].json["message"]["text"] == expected
