"""Web chat (/chat) against the running daemon: the protocol of channels/webchat/PROTOCOL.md,
over real WebSockets — ack only after commit, dedupe of retried client ids, order, resume
after a dropped connection with nothing lost either way, identity, origins, limits, and a
WebSocket conformance subset (kosoku running Autobahn's cases)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

import chat_harness as ch
import switchboard_harness as h


def chat_conversations(api) -> list[dict]:
    return [c for c in api.list(status="any") if c["channel"] in ("chat", "sms", "email")]


def only_chat_conversation(api) -> dict:
    found = h.wait_until(lambda: chat_conversations(api) or None, 10, 0.1, "a chat conversation")
    assert len(found) == 1, found
    return found[0]


def texts(api, cid: str, direction: str | None = None) -> list[str]:
    return [m["text"] for m in api.conversation(cid)["messages"] if direction is None or m["direction"] == direction]


@pytest.fixture
def chat_daemon(make_daemon):
    return make_daemon(overrides={"chat": {"identity_secret": ch.IDENTITY_SECRET, "hello_timeout_seconds": 2}})


@pytest.fixture
def chat_admin(chat_daemon):
    agent = chat_daemon.add_agent(role="admin", name="Ana Ruiz")
    return chat_daemon.api(agent)


def test_a_message_is_acknowledged_after_commit_and_a_retry_is_stored_once(chat_daemon, chat_admin):
    client = ch.ChatClient(chat_daemon.url)
    welcome = client.hello()
    assert welcome["v"] == 1 and welcome["identified"] is False and welcome["seq"] == 0
    assert welcome["visitor_token"].startswith("v1.vis_")
    assert set(welcome["availability"]) == {"open", "agents_available", "next_opening", "continue_with"}
    cid = client.message("I would like to book a physical next week", client_id="c-1")
    ack = client.expect("ack")
    assert ack["client_id"] == cid and ack["duplicate"] is False and ack["seq"] > 0
    # The ack came after the commit: the message is already readable through the API.
    conversation = only_chat_conversation(chat_admin)
    assert conversation["channel"] == "chat"
    assert texts(chat_admin, conversation["id"], "inbound") == ["I would like to book a physical next week"]
    # The widget retries (say it missed the ack): same client id, same answer, nothing new.
    client.message("I would like to book a physical next week", client_id="c-1")
    again = client.expect("ack")
    assert again == {**ack, "duplicate": True}
    assert texts(chat_admin, conversation["id"], "inbound") == ["I would like to book a physical next week"]
    # Its own message comes back in the stream (a second tab sees it) with its client id.
    echoed = client.expect("message", where=lambda f: f.get("from") == "patient")
    assert echoed["client_id"] == "c-1" and echoed["seq"] == ack["seq"]
    client.close()


def test_many_messages_keep_their_order_end_to_end(make_daemon):
    d = make_daemon(overrides={"chat": {"message_burst": 100, "messages_per_minute": 6000}})
    admin = d.api(d.add_agent(role="admin"))
    client = ch.ChatClient(d.url)
    client.hello()
    sent = [f"line {i:02d}" for i in range(40)]
    ids = [client.message(text, client_id=f"m{i:02d}") for i, text in enumerate(sent)]  # pipelined
    acks = {}
    for _ in ids:
        frame = client.expect("ack")
        acks[frame["client_id"]] = frame["seq"]
    seqs = [acks[i] for i in ids]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    stream = [client.expect("message") for _ in ids]
    assert [m["text"] for m in stream] == sent and [m["seq"] for m in stream] == seqs
    conversation = only_chat_conversation(admin)
    assert texts(admin, conversation["id"], "inbound") == sent
    client.close()


def test_a_dropped_connection_loses_nothing_in_either_direction(chat_daemon, chat_admin):
    client = ch.ChatClient(chat_daemon.url)
    token = client.hello()["visitor_token"]
    client.message("Can someone call me about my results?", client_id="first")
    first = client.expect("ack")
    # The patient's next message leaves, and the connection drops before any answer.
    client.message("My number has not changed", client_id="second")
    client.ws.sock.close()
    conversation = only_chat_conversation(chat_admin)
    # Agents answer while the patient is away.
    chat_admin.reply(conversation["id"], "Hello, this is Ana from the clinic.")
    chat_admin.reply(conversation["id"], "Your results are ready; I will call at 3pm.")

    back = ch.ChatClient(chat_daemon.url)
    welcome = back.hello(token=token, last_seq=first["seq"])
    assert welcome["visitor_token"] == token and welcome["seq"] > first["seq"]
    # The widget resends what was never acknowledged, with the same client id.
    back.message("My number has not changed", client_id="second")
    back.expect("ack", where=lambda f: f["client_id"] == "second")
    replies = [back.expect("message", where=lambda f: f["from"] == "agent") for _ in range(2)]
    assert [r["text"] for r in replies] == ["Hello, this is Ana from the clinic.", "Your results are ready; I will call at 3pm."]
    assert all(r["agent_name"] == "Ana Ruiz" and r["seq"] > first["seq"] for r in replies)
    assert replies[0]["seq"] < replies[1]["seq"]
    # Nothing from before last_seq is sent again.
    assert not [f for f in back.frames if f.get("type") == "message" and f["seq"] <= first["seq"]]
    inbound = texts(chat_admin, conversation["id"], "inbound")
    assert inbound == ["Can someone call me about my results?", "My number has not changed"]

    # The widget confirms receipt: the replies become delivered for the agent.
    back.send({"type": "received", "seq": replies[1]["seq"]})
    for message in chat_admin.conversation(conversation["id"])["messages"]:
        if message["direction"] == "outbound":
            chat_admin.wait_delivery(conversation["id"], message["id"], "delivered", timeout=10)
    back.close()


def test_live_updates_agent_joined_typing_reply_and_resolved(chat_daemon, chat_admin):
    client = ch.ChatClient(chat_daemon.url)
    client.hello()
    client.message("Is the pharmacy open on Sunday?")
    client.expect("ack")
    queue = client.expect("queue")
    assert queue["position"] >= 1
    conversation = only_chat_conversation(chat_admin)
    chat_admin.claim(conversation["id"])
    assert client.expect("agent_joined")["name"] == "Ana Ruiz"
    r = chat_admin.post(f"/conversations/{conversation['id']}/typing", {"active": True})
    assert r.status_code == 204, r.text
    assert client.expect("typing") == {"type": "typing", "active": True}
    assert chat_admin.post(f"/conversations/{conversation['id']}/typing", {"active": "yes"}).status_code == 400
    chat_admin.reply(conversation["id"], "Yes, 10am to 4pm.")
    reply = client.expect("message", where=lambda f: f["from"] == "agent")
    assert reply["text"] == "Yes, 10am to 4pm."
    assert chat_admin.post(f"/conversations/{conversation['id']}/resolve").status_code == 200
    client.expect("resolved")
    client.close()


def test_bad_frames_get_error_frames_and_change_nothing(make_daemon):
    d = make_daemon(overrides={"chat": {"message_burst": 3, "messages_per_minute": 6, "max_message_characters": 50,
                                        "max_frame_bytes": 2048}})
    admin = d.api(d.add_agent(role="admin"))
    client = ch.ChatClient(d.url)
    client.hello()
    client.send("this is not json")
    assert client.expect("error")["code"] == "bad_frame"
    client.send({"type": "shout"})
    assert client.expect("error")["code"] == "unknown_type"
    client.send({"type": "message", "client_id": "x", "text": "y" * 51})
    too_long = client.expect("error")
    assert too_long["code"] == "too_long" and too_long["client_id"] == "x"
    client.send({"type": "message", "client_id": "bad id!", "text": "hi"})
    err = client.expect("error")
    assert err["code"] == "invalid_field" and "client_id" in err["message"]
    client.send({"type": "hello", "v": 1})
    assert client.expect("error")["code"] == "unexpected_hello"
    client.ws.send_binary(b"\x00\x01")
    assert client.expect("error")["code"] == "bad_frame"
    # Still usable, and nothing was stored.
    client.send({"type": "ping"})
    client.expect("pong")
    assert chat_conversations(admin) == []
    # The burst: 3 go through, the 4th is refused with when to retry, and not stored.
    for i in range(4):
        client.message(f"message {i}", client_id=f"b{i}")
    for i in range(3):
        client.expect("ack", where=lambda f, i=i: f["client_id"] == f"b{i}")
    refused = client.expect("error")
    assert refused["code"] == "rate_limited" and refused["client_id"] == "b3" and 0 < refused["retry_after_ms"] <= 10_000
    conversation = only_chat_conversation(admin)
    assert texts(admin, conversation["id"], "inbound") == ["message 0", "message 1", "message 2"]
    # A frame above chat.max_frame_bytes closes the connection (1009, message too big).
    client.send({"type": "message", "client_id": "big", "text": "z" * 4000})
    code, _ = client.expect_close()
    assert code == 1009
    assert "z" * 100 not in d.log_text()


def test_hello_is_required_and_checked(chat_daemon):
    first = ch.ChatClient(chat_daemon.url)
    first.message("hi before hello")
    assert first.expect("error")["code"] == "hello_required"
    assert first.expect_close()[0] == 4400

    silent = ch.ChatClient(chat_daemon.url)
    started = time.time()
    assert silent.expect_close(timeout=10)[0] == 4408
    assert time.time() - started >= 1.5

    future = ch.ChatClient(chat_daemon.url)
    future.send({"type": "hello", "v": 2})
    assert future.expect("error")["code"] == "unsupported_version"
    assert future.expect_close()[0] == 4400

    # A forged or foreign token starts a new, empty visitor: it never reads someone's chat.
    owner = ch.ChatClient(chat_daemon.url)
    token = owner.hello()["visitor_token"]
    owner.message("private words")
    owner.expect("ack")
    visitor = token.split(".")[1]
    forged = ch.ChatClient(chat_daemon.url)
    welcome = forged.hello(token=f"v1.{visitor}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", last_seq=0)
    assert welcome["seq"] == 0 and visitor not in welcome["visitor_token"]
    assert [f for f in forged.quiet(1.0) if f.get("type") == "message"] == []


def test_identified_patients_join_their_contact_and_forgeries_are_refused(chat_daemon, chat_admin, make_daemon):
    r = chat_daemon.webhook(h.portal_event(patient_id="P-7781", text="portal question about billing"))
    assert r.status_code == 202, r.text
    identity = {"id": "P-7781", "hash": ch.identity_hash("P-7781"), "name": "Maria Lopez"}
    device = ch.ChatClient(chat_daemon.url)
    welcome = device.hello(identity=identity)
    assert welcome["identified"] is True and welcome["visitor_token"] == ""
    device.message("chatting from the portal page")
    device.expect("ack")
    conversations = chat_admin.list(status="any")
    chat = [c for c in conversations if c["channel"] == "chat"][0]
    portal = [c for c in conversations if c["channel"] == "portal"][0]
    assert chat["contact_id"] == portal["contact_id"]
    history = chat_admin.get("/conversations", status="any", contact_id=chat["contact_id"]).json()["conversations"]
    assert {c["id"] for c in history} == {chat["id"], portal["id"]}
    # Another device of the same patient sees the same chat.
    other = ch.ChatClient(chat_daemon.url)
    other.hello(identity=identity, last_seq=0)
    assert other.expect("message")["text"] == "chatting from the portal page"

    forged = ch.ChatClient(chat_daemon.url)
    forged.send({"type": "hello", "v": 1, "identity": {"id": "P-7781", "hash": ch.identity_hash("P-7781", "x" * 40)}})
    assert forged.expect("error")["code"] == "identity_rejected"
    assert forged.expect_close()[0] == 4401
    missing = ch.ChatClient(chat_daemon.url)
    missing.send({"type": "hello", "v": 1, "identity": {"id": "P-7781", "hash": "00"}})
    assert missing.expect("error")["code"] == "invalid_field"

    # With an expiry, the hash signs "id:expires"; a past one is refused.
    soon = int(time.time()) + 300
    fresh = ch.ChatClient(chat_daemon.url)
    fresh_welcome = fresh.hello(identity={"id": "P-7781", "expires": soon, "hash": ch.identity_hash("P-7781", expires=soon)}, last_seq=0)
    assert fresh_welcome["identified"] is True
    assert fresh.expect("message")["text"] == "chatting from the portal page"
    past = int(time.time()) - 1
    stale = ch.ChatClient(chat_daemon.url)
    stale.send({"type": "hello", "v": 1, "identity": {"id": "P-7781", "expires": past, "hash": ch.identity_hash("P-7781", expires=past)}})
    assert stale.expect("error")["code"] == "identity_rejected"
    assert stale.expect_close()[0] == 4401
    strict = make_daemon(name="strict", overrides={"chat": {"identity_secret": ch.IDENTITY_SECRET, "identity_require_expiry": True}})
    no_expiry = ch.ChatClient(strict.url)
    no_expiry.send({"type": "hello", "v": 1, "identity": identity})
    assert no_expiry.expect("error")["code"] == "identity_rejected"

    plain = make_daemon(name="plain")
    refused = ch.ChatClient(plain.url)
    refused.send({"type": "hello", "v": 1, "identity": identity})
    assert refused.expect("error")["code"] == "identity_not_configured"
    assert refused.expect_close()[0] == 4401
    assert "P-7781" not in chat_daemon.log_text() and "Maria" not in chat_daemon.log_text()


def test_only_allowed_origins_may_open_the_chat(make_daemon):
    d = make_daemon(overrides={"chat": {"allowed_origins": "https://clinic.example"}})
    ch.ChatClient(d.url, origin="https://clinic.example").hello()
    ch.ChatClient(d.url, origin=f"http://127.0.0.1:{d.port}").hello()  # the daemon's own pages
    evil = ch.ChatClient(d.url, origin="https://evil.example")
    code, reason = evil.expect_close()
    assert code == 4403 and "origin" in reason
    assert "chat refused: origin not allowed" in d.log_text()
    # Without the upgrade, the path says what it is.
    r = requests.get(d.url + "/chat", timeout=5)
    assert r.status_code == 426 and r.json()["error"]["code"] == "upgrade_required"


def test_an_idle_chat_is_closed_and_pings_do_not_keep_it(make_daemon):
    d = make_daemon(overrides={"chat": {"idle_timeout_seconds": 5}})
    client = ch.ChatClient(d.url)
    client.hello()
    started = time.time()
    for _ in range(3):
        client.send({"type": "ping"})
        client.expect("pong")
        time.sleep(1)
    code, reason = client.expect_close(timeout=10)
    assert (code, reason) == (1001, "idle")
    assert 4.5 <= time.time() - started <= 9


def test_an_emergency_in_chat_gets_the_safety_reply_in_the_widget(chat_daemon, chat_admin):
    client = ch.ChatClient(chat_daemon.url)
    client.hello()
    client.message("my father has crushing chest pain and his left arm is numb")
    client.expect("ack")
    safety = client.expect("message", where=lambda f: f["from"] == "system", timeout=20)
    assert "911" in safety["text"]
    conversation = only_chat_conversation(chat_admin)
    assert chat_admin.conversation(conversation["id"])["conversation"]["priority"] == "emergency"


def test_nobody_available_continues_by_sms(make_daemon, fake_twilio):
    import sms_harness as sms
    d = make_daemon(overrides=sms.sms_overrides(twilio_api=fake_twilio.url))
    admin = d.api(d.add_agent(role="admin"))
    client = ch.ChatClient(d.url)
    welcome = client.hello()
    assert welcome["availability"]["agents_available"] is False  # nobody is online
    assert welcome["availability"]["continue_with"] == ["sms"]
    client.send({"type": "continue", "channel": "sms", "address": "+1 (415) 555-0134"})
    assert client.expect("error")["code"] == "no_conversation"
    client.message("please text me back about my refill")
    client.expect("ack")
    client.send({"type": "continue", "channel": "email", "address": "maria@example.org"})
    assert client.expect("error")["code"] == "channel_unavailable"
    client.send({"type": "continue", "channel": "sms", "address": "not a number"})
    assert client.expect("error")["code"] == "invalid_field"
    client.send({"type": "continue", "channel": "sms", "address": "+1 (415) 555-0134"})
    assert client.expect("continued") == {"type": "continued", "channel": "sms"}
    conversation = only_chat_conversation(admin)
    assert conversation["channel"] == "sms"
    admin.reply(conversation["id"], "Your refill is ready for pickup.")
    call = h.wait_until(lambda: [c for c in fake_twilio.calls if c.body == "Your refill is ready for pickup."] or None,
                        20, 0.1, "the reply at the fake Twilio API")[0]
    assert call.form["To"] == "+14155550134"
    assert "555-0134" not in d.log_text() and "4155550134" not in d.log_text()


# ---------------------------------------------------------------------------------------------
# WebSocket conformance (kosoku runs Autobahn's own case files against /chat)


def test_websocket_conformance_subset(chat_daemon, tmp_path):
    kosoku = shutil.which("kosoku", path=str(Path(os.sys.executable).parent))
    if not kosoku:
        pytest.skip("kosoku is not installed (tests/requirements.txt)")
    out = tmp_path / "autobahn"
    # Sections 1-7 and 10 (framing, pings, reserved bits and opcodes, fragmentation, UTF-8,
    # closing); 9 (performance) and 12-13 (compression, which the daemon does not offer) left out.
    cp = subprocess.run([kosoku, f"ws://127.0.0.1:{chat_daemon.port}/chat", "-p", "2", "-x", "9.*", "-x", "12.*",
                         "-x", "13.*", "-o", str(out)], capture_output=True, text=True, timeout=600)
    index = json.loads((out / "index.json").read_text())
    results = next(iter(index.values()))
    # Autobahn's data cases expect an echo server; /chat speaks its own protocol and answers a
    # non-hello frame with an error frame, so cases whose expectation is an echoed message
    # cannot apply. Every other case — the protocol layer — must pass.
    applicable, failed = [], []
    for case, result in results.items():
        report = json.loads((out / result["reportfile"]).read_text())
        expects_echo = any(any(event[0] == "message" for event in events) for events in report["expected"].values())
        if expects_echo:
            continue
        applicable.append(case)
        if result["behavior"] not in ("OK", "NON-STRICT", "INFORMATIONAL"):
            failed.append((case, result["behavior"], result.get("behaviorClose")))
    assert len(applicable) >= 120, f"only {len(applicable)} applicable cases: {cp.stderr[-2000:]}"
    assert failed == [], failed


def test_no_patient_data_in_the_logs_of_a_chat_scenario(chat_daemon, chat_admin):
    secret_words = "Zephyrine Quillfeather allergic to penicillin"
    client = ch.ChatClient(chat_daemon.url)
    client.hello(identity={"id": "P-SECRET-991", "hash": ch.identity_hash("P-SECRET-991"), "name": "Zephyrine"})
    client.message(secret_words)
    client.expect("ack")
    client.send({"type": "message", "client_id": "z", "text": secret_words + " " + "x" * 5000})
    client.expect("error")
    conversation = only_chat_conversation(chat_admin)
    chat_admin.reply(conversation["id"], "Noted, Zephyrine.")
    client.expect("message", where=lambda f: f["from"] == "agent")
    client.close()
    log = chat_daemon.log_text()
    for datum in ("Zephyrine", "Quillfeather", "penicillin", "P-SECRET-991"):
        assert datum not in log, datum


def test_sigterm_closes_chats_and_a_reconnect_resumes(chat_daemon, chat_admin):
    client = ch.ChatClient(chat_daemon.url)
    token = client.hello()["visitor_token"]
    client.message("before the restart")
    seq = client.expect("ack")["seq"]
    chat_daemon.proc.send_signal(15)
    code, reason = client.expect_close(timeout=15)
    assert code == 1000
    assert chat_daemon.proc.wait(timeout=20) == 0
    chat_daemon.proc = None
    chat_daemon.start()
    back = ch.ChatClient(chat_daemon.url)
    welcome = back.hello(token=token, last_seq=0)
    assert welcome["seq"] == seq  # the visitor token still works: its key is kept in the store
    assert back.expect("message")["text"] == "before the restart"
