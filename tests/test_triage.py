"""Triage end to end: a signed portal webhook in -> classified after the commit -> for an
emergency, the safety reply goes out through the outbox, the conversation is at emergency
priority on the clinical team, and an audit event exists; routine messages stay routine; the
log says which rule fired but never the patient's words."""

from __future__ import annotations

import sqlite3

import switchboard_harness as h
from switchboard_harness import wait_until


def _conversation(admin, cid: str) -> dict:
    r = admin.get(f"/conversations/{cid}")
    assert r.status_code == 200, r.text
    return r.json()


def test_emergency_gets_safety_reply_priority_and_team(daemon, receiver, admin):
    text = "My father has crushing chest pain and is sweating, what do we do"
    r = daemon.webhook(h.portal_event(patient_id="P-EMERG-1", thread_id="T-EMERG-1", text=text))
    assert r.status_code == 202, r.text
    cid = r.json()["conversation_id"]

    def triaged():
        c = _conversation(admin, cid)
        return c if c["conversation"]["priority"] == "emergency" and c["messages"][0].get("triage") else None
    detail = wait_until(triaged, 60, 0.2, "conversation triaged as emergency")
    conv = detail["conversation"]
    assert conv["team_id"], conv
    assert conv["intent"] == "clinical_question" and conv["language"] == "en"
    triage = detail["messages"][0]["triage"]
    assert triage["urgency"] == "emergency"
    assert any(f["rule"] == "en.chest_pain" for f in triage["evidence"]["red_flags"]), triage

    # The safety reply reaches the portal, signed, in the patient's thread.
    def safety():
        return [x for x in receiver.accepted() if x.json and "911" in x.json["message"]["text"]]
    got = wait_until(safety, 30, 0.1, "safety reply at the portal")
    assert got[0].signature_valid
    assert got[0].json["thread_id"] == "T-EMERG-1" and got[0].json["patient"]["id"] == "P-EMERG-1"

    # The supervisors' event is in the audit trail.
    db = sqlite3.connect(f"file:{daemon.workdir}/var/switchboard.sqlite?mode=ro", uri=True)
    actions = [row[0] for row in db.execute(
        "SELECT action FROM audit_events WHERE conversation_id = ? AND action LIKE 'triage.%'", (cid,))]
    db.close()
    assert "triage.emergency" in actions and "triage.safety_reply" in actions

    log = daemon.log_text()
    assert "emergency message triaged" in log and "en.chest_pain" in log
    assert "crushing" not in log and "sweating" not in log


def test_spanish_emergency_gets_spanish_safety_reply(daemon, receiver, admin):
    r = daemon.webhook(h.portal_event(text="Mi mamá no puede respirar y tiene los labios morados"))
    assert r.status_code == 202, r.text
    cid = r.json()["conversation_id"]
    wait_until(lambda: _conversation(admin, cid)["conversation"]["priority"] == "emergency", 60, 0.2, "emergency")
    got = wait_until(lambda: [x for x in receiver.accepted() if x.json and "emergencia" in x.json["message"]["text"]],
                     30, 0.1, "Spanish safety reply")
    assert "988" in got[0].json["message"]["text"]
    assert _conversation(admin, cid)["conversation"]["language"] == "es"


def test_routine_and_idioms_stay_routine(daemon, receiver, admin):
    cids = []
    for text in ["I'm dying to know my lab results from Tuesday",
                 "Can I get a refill of my lisinopril sent to the pharmacy?"]:
        r = daemon.webhook(h.portal_event(text=text))
        assert r.status_code == 202, r.text
        cids.append(r.json()["conversation_id"])
    for cid in cids:
        detail = wait_until(lambda: (c := _conversation(admin, cid))["messages"][0].get("triage") and c, 60, 0.2, "triaged")
        assert detail["conversation"]["priority"] == "normal"
        assert detail["messages"][0]["triage"]["urgency"] != "emergency"
    assert _conversation(admin, cids[1])["conversation"]["intent"] == "prescription_refill"
    assert not [x for x in receiver.accepted() if x.json and "911" in x.json["message"]["text"]]


def test_triage_can_be_disabled(make_daemon, receiver):
    d = make_daemon(outbound_url=receiver.url, overrides={"triage": {"enabled": False}})
    a = d.api(d.add_agent(role="admin"))
    r = d.webhook(h.portal_event(text="I want to kill myself"))
    assert r.status_code == 202
    cid = r.json()["conversation_id"]
    import time
    time.sleep(1.5)
    c = _conversation(a, cid)
    assert c["conversation"]["priority"] == "normal" and c["messages"][0]["triage"] is None
    assert "triage disabled" in d.log_text()
