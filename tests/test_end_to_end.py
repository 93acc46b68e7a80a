"""End-to-end: portal webhook in -> agent API -> reply -> signed outbound webhook out, plus
crash/restart durability, auth, PHI in logs, configuration checking and shutdown."""

from __future__ import annotations

import json
import re
import socket
import threading
import time

import pytest
import requests

import switchboard_harness as h
from switchboard_harness import Signer, encode, portal_event, uid


def accepted(resp: requests.Response) -> dict:
    assert resp.status_code == 202, f"expected 202, got {resp.status_code}: {resp.text[:500]}"
    return resp.json()


def ids(convs: list) -> list:
    return [c["id"] for c in convs]


def assert_once_each_in_order(receiver: h.Receiver, message_ids: list[str], settle: float = 1.5):
    """Each message reached the receiver with a 2xx exactly once, in the given order; every
    attempt of one message carried one webhook-id and a valid signature; nothing was sent again
    after the 2xx (waits ``settle`` seconds for stragglers)."""
    receiver.wait_accepted(message_ids, timeout=20)
    time.sleep(settle)
    recs = receiver.snapshot()
    for mid in message_ids:
        attempts = [r for r in recs if r.message_id == mid]
        wids = {r.webhook_id for r in attempts}
        assert len(wids) == 1 and None not in wids, f"message {mid}: webhook-ids varied across retries: {wids}"
        assert all(r.signature_valid for r in attempts), f"message {mid}: bad signature on some attempt"
        ok = [r for r in attempts if 200 <= r.status < 300]
        assert len(ok) == 1, f"message {mid} delivered {len(ok)} times with a 2xx: {[r.status for r in attempts]}"
        after = [r for r in attempts if r.t > ok[0].t]
        assert not after, f"message {mid} sent again after its 2xx: {[r.status for r in after]}"
    order = [r.message_id for r in recs if 200 <= r.status < 300 and r.message_id in message_ids]
    assert order == message_ids, f"delivery order {order} != {message_ids}"


def open_conversation(d: h.Daemon, text: str = "hello", **kw) -> dict:
    ev = portal_event(kw.pop("patient_id", None) or uid("P-"), text, thread_id=kw.pop("thread_id", uid("T-")), **kw)
    return {"event": ev, **accepted(d.webhook(ev))}


# ---------------------------------------------------------------------------------------------
# the full path


def test_full_path_webhook_to_agent_to_outbound(daemon, receiver):
    me = daemon.add_agent(name="Ada Agent", role="agent")
    api = daemon.api(me)
    pid, tid = uid("P-"), uid("T-")
    ev = portal_event(pid, "Can I move my appointment to Friday?", thread_id=tid)
    acc = accepted(daemon.webhook(ev))
    cid = acc["conversation_id"]

    unassigned = api.list(status="open", assignee="unassigned")
    assert cid in ids(unassigned), unassigned
    entry = next(c for c in unassigned if c["id"] == cid)
    assert entry["status"] == "open" and entry["channel"] == "portal" and entry["assignee_id"] is None

    detail = api.conversation(cid)
    assert [m["text"] for m in detail["messages"]] == ["Can I move my appointment to Friday?"]
    assert detail["messages"][0]["direction"] == "inbound"

    claimed = api.claim(cid)
    assert claimed["id"] == cid and claimed["assignee_id"] == me["agent_id"], claimed
    assert cid in ids(api.list(status="open", assignee="me"))
    assert cid not in ids(api.list(status="open", assignee="unassigned"))
    assert api.claim(cid)["assignee_id"] == me["agent_id"]  # claiming again is harmless

    reply_text = "Yes - Friday 10:30 is free, booked for you."
    mid = api.reply(cid, reply_text)
    receiver.wait_accepted([mid], timeout=20)
    [rec] = [r for r in receiver.accepted() if r.message_id == mid]
    assert rec.path == h.Receiver.PATH
    assert rec.headers.get("content-type", "").startswith("application/json"), rec.headers
    assert rec.signature_valid, f"outbound signature does not verify with outbound_secret: {rec.headers}"
    assert abs(int(rec.headers["webhook-timestamp"]) - time.time()) < 60
    body = rec.json
    assert body["type"] == "message.created", body
    assert body["patient"]["id"] == pid, body
    assert body["thread_id"] == tid, body
    assert body["message"]["id"] == mid, body
    assert body["message"]["text"] == reply_text, body
    assert isinstance(body["message"].get("sent_at"), str) and body["message"]["sent_at"], body

    m = api.wait_delivery(cid, mid, "delivered", timeout=20)
    assert m["direction"] == "outbound" and m["text"] == reply_text
    msgs = api.conversation(cid)["messages"]
    assert [x["direction"] for x in msgs] == ["inbound", "outbound"]


def test_outbound_secret_defaults_to_webhook_secret(make_daemon):
    r = h.Receiver(secret=h.DEFAULT_SECRET).start()
    try:
        d = make_daemon(outbound_url=r.url, overrides={"portal": {"outbound_secret": ""}})
        api = d.api(d.add_agent(role="admin"))
        conv = open_conversation(d)
        mid = api.reply(conv["conversation_id"], "signed with the inbound secret")
        r.wait_accepted([mid])
        assert all(x.signature_valid for x in r.for_message(mid)), "not signed with webhook_secret"
    finally:
        r.close()


def test_outbound_secret_from_file(make_daemon, tmp_path):
    secret = h.make_secret()
    f = tmp_path / "outbound_secret"
    f.write_text(secret + "\n")
    r = h.Receiver(secret=secret).start()
    try:
        d = make_daemon(outbound_url=r.url,
                        overrides={"portal": {"outbound_secret": "", "outbound_secret_file": str(f)}})
        api = d.api(d.add_agent(role="admin"))
        conv = open_conversation(d)
        mid = api.reply(conv["conversation_id"], "signed with the file secret")
        r.wait_accepted([mid])
        assert all(x.signature_valid for x in r.for_message(mid))
    finally:
        r.close()


# ---------------------------------------------------------------------------------------------
# concurrency


def _parallel(n: int, fn):
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        try:
            barrier.wait(timeout=10)
            results[i] = fn(i)
        except Exception as e:  # noqa: BLE001
            results[i] = e
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "requests still hanging after 30 s"
    return results


def test_twenty_concurrent_replays_one_message(daemon):
    admin = daemon.api(daemon.add_agent(role="admin"))
    body = encode(portal_event(uid("P-"), "sent once, delivered twenty times", thread_id=uid("T-")))
    headers = daemon.signer.headers(body)

    results = _parallel(20, lambda i: requests.post(f"{daemon.url}/webhooks/portal", data=body,
                                                    headers=headers, timeout=h.HTTP_TIMEOUT))
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    statuses = [r.status_code for r in results]
    assert statuses == [202] * 20, [(r.status_code, r.text[:200]) for r in results]
    bodies = [r.json() for r in results]
    assert all(b == bodies[0] for b in bodies), bodies
    cid = bodies[0]["conversation_id"]
    msgs = admin.conversation(cid)["messages"]
    assert len(msgs) == 1, msgs
    assert len(admin.list(status=None, assignee="any")) == 1


def test_concurrent_new_events_same_thread_one_conversation(daemon):
    admin = daemon.api(daemon.add_agent(role="admin"))
    pid, tid = uid("P-"), uid("T-")
    results = _parallel(10, lambda i: daemon.webhook(portal_event(pid, f"burst {i}", thread_id=tid)))
    assert all(not isinstance(r, Exception) and r.status_code == 202 for r in results), \
        [r if isinstance(r, Exception) else (r.status_code, r.text[:200]) for r in results]
    cids = {r.json()["conversation_id"] for r in results}
    assert len(cids) == 1, f"one thread split into {len(cids)} conversations"
    assert len(admin.conversation(cids.pop())["messages"]) == 10


# ---------------------------------------------------------------------------------------------
# outbox: retries, ordering, dead letter


@pytest.mark.slow
def test_receiver_down_then_up_delivers_in_order_once(make_daemon, down_receiver):
    d = make_daemon(outbound_url=down_receiver.url)
    api = d.api(d.add_agent(role="agent"))
    conv = open_conversation(d, "please reply twice")
    cid = conv["conversation_id"]
    api.claim(cid)
    a = api.reply(cid, "reply A")
    b = api.reply(cid, "reply B")
    time.sleep(1.2)  # several refused attempts happen meanwhile
    for mid in (a, b):
        st = api.message(cid, mid)["delivery_status"]
        assert st in ("queued", "sent"), f"{mid} is {st} while the receiver is down"

    # first attempt of each message that reaches the receiver gets a 500, then 200
    down_receiver.behavior = lambda rec, prior: 500 if not prior else 200
    down_receiver.start()
    assert_once_each_in_order(down_receiver, [a, b])
    for mid in (a, b):
        assert len(down_receiver.for_message(mid)) >= 2, "the 500 was not retried"
        api.wait_delivery(cid, mid, "delivered", timeout=20)


@pytest.mark.slow
@pytest.mark.parametrize("transient", [500, 502, 503, 429])
def test_transient_failure_is_retried_with_same_webhook_id(daemon, receiver, transient):
    api = daemon.api(daemon.add_agent(role="admin"))
    conv = open_conversation(daemon)
    receiver.behavior = lambda rec, prior: transient if len(prior) < 2 else 200
    mid = api.reply(conv["conversation_id"], f"after two {transient}s")
    assert_once_each_in_order(receiver, [mid], settle=1.0)
    assert [r.status for r in receiver.for_message(mid)] == [transient, transient, 200]
    api.wait_delivery(conv["conversation_id"], mid, "delivered")


@pytest.mark.slow
def test_timeout_is_retried_with_same_webhook_id(make_daemon, receiver):
    d = make_daemon(outbound_url=receiver.url, overrides={"portal": {"outbound_timeout_ms": 500}})
    api = d.api(d.add_agent(role="admin"))
    conv = open_conversation(d)
    receiver.behavior = lambda rec, prior: (200, 2.0) if not prior else 200  # first answer comes too late
    mid = api.reply(conv["conversation_id"], "slow receiver")
    api.wait_delivery(conv["conversation_id"], mid, "delivered", timeout=20)
    attempts = receiver.for_message(mid)
    assert len(attempts) >= 2, "a timed-out attempt was not retried"
    assert len({r.webhook_id for r in attempts}) == 1, [r.webhook_id for r in attempts]


@pytest.mark.slow
def test_per_conversation_order_under_failures(daemon, receiver):
    """Five replies; the receiver fails every first attempt. They must be accepted in order."""
    api = daemon.api(daemon.add_agent(role="admin"))
    conv = open_conversation(daemon)
    receiver.behavior = lambda rec, prior: 503 if not prior else 200
    mids = [api.reply(conv["conversation_id"], f"part {i}") for i in range(5)]
    assert_once_each_in_order(receiver, mids)


def test_redirect_is_not_followed(make_daemon, receiver):
    """A reply carries patient data: it goes only to the configured URL. A 307 pointing
    elsewhere is a refusal, never a second POST to the other host."""
    elsewhere = h.Receiver().start()
    try:
        d = make_daemon(outbound_url=receiver.url)
        api = d.api(d.add_agent(role="admin"))
        conv = open_conversation(d)
        receiver.behavior = lambda rec, prior: (307, 0, b"", {"Location": elsewhere.url})
        mid = api.reply(conv["conversation_id"], "for the configured portal only")
        m = api.wait_delivery(conv["conversation_id"], mid, "failed", timeout=20)
        assert "307" in (m.get("failure_reason") or ""), m
        time.sleep(0.5)
        assert elsewhere.snapshot() == [], "the reply followed the redirect to another URL"
        assert len(receiver.for_message(mid)) == 1
    finally:
        elsewhere.close()


@pytest.mark.slow
def test_dead_letter_after_horizon(make_daemon, receiver):
    d = make_daemon(outbound_url=receiver.url, overrides={"outbox": {"horizon_seconds": 2}})
    api = d.api(d.add_agent(role="admin"))
    conv = open_conversation(d)
    receiver.behavior = lambda rec, prior: 500
    mid = api.reply(conv["conversation_id"], "never gets through")
    m = api.wait_delivery(conv["conversation_id"], mid, "failed", timeout=20)
    assert m.get("failure_reason"), f"failed message without failure_reason: {m}"
    n = len(receiver.for_message(mid))
    assert n >= 2
    time.sleep(1.5)
    assert len(receiver.for_message(mid)) == n, "still retrying after being dead-lettered"


# ---------------------------------------------------------------------------------------------
# crash durability


@pytest.mark.slow
def test_kill9_after_202_message_survives(daemon):
    admin = daemon.api(daemon.add_agent(role="admin"))
    ev = portal_event(uid("P-"), "acknowledged means stored", thread_id=uid("T-"))
    msg_id = uid("msg_")
    acc = accepted(daemon.webhook(ev, msg_id=msg_id))
    daemon.kill9()
    daemon.start()
    detail = admin.conversation(acc["conversation_id"])
    assert [m["id"] for m in detail["messages"]] == [acc["message_id"]]
    assert detail["messages"][0]["text"] == "acknowledged means stored"
    # the idempotency record survived too
    again = daemon.webhook(ev, msg_id=msg_id)
    assert again.status_code == 202 and again.json() == acc
    assert len(admin.conversation(acc["conversation_id"])["messages"]) == 1


@pytest.mark.slow
def test_kill9_with_queued_reply_delivered_after_restart(make_daemon, down_receiver):
    d = make_daemon(outbound_url=down_receiver.url)
    api = d.api(d.add_agent(role="admin"))
    conv = open_conversation(d)
    mid = api.reply(conv["conversation_id"], "queued before the crash")
    time.sleep(0.3)
    d.kill9()
    d.start()
    down_receiver.start()
    assert_once_each_in_order(down_receiver, [mid])
    api.wait_delivery(conv["conversation_id"], mid, "delivered")


# ---------------------------------------------------------------------------------------------
# agent API auth and visibility


@pytest.mark.parametrize("auth", [None, "Bearer ", "Bearer sbt_not_a_real_token", "Basic dXNlcjpwYXNz",
                                  "sbt_missing_scheme"])
def test_api_requires_valid_token(daemon, auth):
    conv = open_conversation(daemon)
    hdrs = {} if auth is None else {"Authorization": auth}
    for method, path in [("GET", "/api/v1/conversations?status=open&assignee=any"),
                         ("GET", f"/api/v1/conversations/{conv['conversation_id']}"),
                         ("POST", f"/api/v1/conversations/{conv['conversation_id']}/claim")]:
        r = requests.request(method, daemon.url + path, headers=hdrs, timeout=h.HTTP_TIMEOUT)
        assert r.status_code == 401, f"{method} {path} with {auth!r} -> {r.status_code} {r.text[:300]}"
        assert h.error_shape_ok(r), r.text[:300]


def test_token_is_bound_to_daemon_store(daemon, make_daemon):
    """A token issued by another installation is not valid here."""
    other = make_daemon(name="other")
    foreign = other.add_agent(role="admin")
    r = daemon.api(foreign).get("/conversations", status="open", assignee="any")
    assert r.status_code == 401, r.text


def test_other_agent_cannot_see_claimed_conversation(daemon):
    first_info = daemon.add_agent(role="agent")
    first, second = daemon.api(first_info), daemon.api(daemon.add_agent(role="agent"))
    conv = open_conversation(daemon)
    cid = conv["conversation_id"]
    assert cid in ids(second.list(status="open", assignee="unassigned"))
    first.claim(cid)

    r = second.get(f"/conversations/{cid}")
    assert r.status_code == 404, f"second agent GET -> {r.status_code} {r.text[:300]}"
    assert h.error_shape_ok(r)
    r = second.post(f"/conversations/{cid}/claim")
    assert r.status_code in (404, 409), f"second agent claim -> {r.status_code} {r.text[:300]}"
    r = second.post(f"/conversations/{cid}/messages", {"text": "not mine"})
    assert r.status_code in (403, 404, 409), f"second agent reply -> {r.status_code} {r.text[:300]}"
    for assignee in ("any", "unassigned", "me"):
        assert cid not in ids(second.list(status="open", assignee=assignee)), assignee
    # the owner still sees it, and a supervisor sees it too
    assert first.conversation(cid)["conversation"]["assignee_id"] == first_info["agent_id"]
    sup = daemon.api(daemon.add_agent(role="supervisor"))
    assert sup.conversation(cid)["conversation"]["id"] == cid


def test_claim_conflict_is_409_for_supervisor(daemon):
    """Someone who may see the conversation but did not claim it gets 409 on claim."""
    first = daemon.api(daemon.add_agent(role="agent"))
    sup = daemon.api(daemon.add_agent(role="supervisor"))
    cid = open_conversation(daemon)["conversation_id"]
    first.claim(cid)
    r = sup.post(f"/conversations/{cid}/claim")
    assert r.status_code == 409, f"{r.status_code} {r.text[:300]}"
    assert h.error_shape_ok(r)


def test_concurrent_claims_exactly_one_wins(daemon):
    cid = open_conversation(daemon)["conversation_id"]
    apis = [daemon.api(daemon.add_agent(role="agent")) for _ in range(5)]
    results = _parallel(5, lambda i: apis[i].post(f"/conversations/{cid}/claim"))
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(200) == 1 and all(s in (404, 409) for s in statuses if s != 200), statuses


def test_unknown_conversation_is_404(daemon, admin):
    for method, path in [("GET", "/conversations/does-not-exist"),
                         ("POST", "/conversations/does-not-exist/claim"),
                         ("POST", "/conversations/does-not-exist/resolve")]:
        r = admin.get(path) if method == "GET" else admin.post(path)
        assert r.status_code == 404, f"{method} {path} -> {r.status_code} {r.text[:300]}"
        assert h.error_shape_ok(r), r.text[:300]


def test_reply_without_text_is_400(daemon, admin):
    cid = open_conversation(daemon)["conversation_id"]
    for body in ({}, {"text": ""}, {"text": 5}):
        r = admin.post(f"/conversations/{cid}/messages", body)
        assert r.status_code in (400, 422), f"{body} -> {r.status_code} {r.text[:300]}"
        assert h.error_shape_ok(r)


# ---------------------------------------------------------------------------------------------
# lifecycle of a conversation


def test_resolve_then_reopen(daemon):
    me = daemon.add_agent(role="agent")
    api = daemon.api(me)
    cid = open_conversation(daemon)["conversation_id"]
    api.claim(cid)
    r = api.post(f"/conversations/{cid}/resolve")
    assert r.status_code == 200, r.text
    assert r.json()["conversation"]["status"] == "resolved"
    assert api.conversation(cid)["conversation"]["status"] == "resolved"
    assert cid not in ids(api.list(status="open", assignee="any"))
    assert cid in ids(api.list(status="resolved", assignee="any"))
    r = api.post(f"/conversations/{cid}/reopen")
    assert r.status_code == 200, r.text
    assert r.json()["conversation"]["status"] == "open"
    assert cid in ids(api.list(status="open", assignee="any"))


def test_new_message_after_resolve_without_thread_starts_new_conversation(daemon, admin):
    pid = uid("P-")
    first = accepted(daemon.webhook(portal_event(pid, "first matter")))
    assert admin.post(f"/conversations/{first['conversation_id']}/resolve").status_code == 200
    second = accepted(daemon.webhook(portal_event(pid, "new matter")))
    assert second["conversation_id"] != first["conversation_id"], \
        "no thread_id: must join the latest *unresolved* portal conversation, not a resolved one"
    c1 = admin.conversation(first["conversation_id"])["contact"]["id"]
    c2 = admin.conversation(second["conversation_id"])["contact"]["id"]
    assert c1 == c2


# ---------------------------------------------------------------------------------------------
# PHI never reaches the logs


PHI = {
    "name": "Zebulon Quixote",
    "phone": "+1 555 867 5309",
    "email": "zq.patient@example.org",
    "text": "my rash is spreading ZQX-4471",
}
FORBIDDEN_SUBSTRINGS = ["Zebulon", "Quixote", "8675309", "867 5309", "867-5309", "zq.patient",
                        "zq.patient@example.org", "ZQX-4471"]  # compared case-insensitively
FORBIDDEN_PATTERNS = [
    re.compile(r"(?<![0-9A-Za-z])5309(?![0-9A-Za-z])"),  # '5309' as its own token ('…5309', 'last4=5309')
    re.compile(r"\brash\b", re.IGNORECASE),                 # the word, not 'crash'/'trash'
    re.compile(r"spreading", re.IGNORECASE),
]


def phi_findings(text: str, extra: tuple = ()) -> list[str]:
    found = []
    for s in FORBIDDEN_SUBSTRINGS + list(extra):
        if s.lower() in text.lower():
            found += [ln for ln in text.splitlines() if s.lower() in ln.lower()][:3]
    for p in FORBIDDEN_PATTERNS:
        found += [ln for ln in text.splitlines() if p.search(ln)][:3]
    return list(dict.fromkeys(found))


@pytest.mark.slow
def test_no_phi_in_logs(make_daemon, receiver):
    d = make_daemon(outbound_url=receiver.url, overrides={"log": {"level": "trace"}})
    me = d.add_agent(role="agent")
    api = d.api(me)
    pid, tid = "P-ZQ-867", uid("T-")
    ev = portal_event(pid, PHI["text"], thread_id=tid, name=PHI["name"], phone=PHI["phone"], email=PHI["email"])

    # accepted, replayed, second message
    msg_id = uid("msg_")
    acc = accepted(d.webhook(ev, msg_id=msg_id))
    cid = acc["conversation_id"]
    assert d.webhook(ev, msg_id=msg_id).status_code == 202
    accepted(d.webhook(portal_event(pid, "the rash on my arm, ZQX-4471 again", thread_id=tid, name=PHI["name"],
                                    phone=PHI["phone"], email=PHI["email"])))
    # every kind of rejection, each carrying the PHI
    bad = json.loads(json.dumps(ev))
    del bad["message"]["id"]
    r400 = d.webhook(bad)
    assert r400.status_code == 400
    assert not phi_findings(r400.text), f"400 error echoes PHI: {r400.text}"
    bad_type = json.loads(json.dumps(ev))
    bad_type["message"]["text"] = {"nested": PHI["text"]}
    d.webhook(bad_type)
    d.webhook(body=encode(ev)[:-3] + b"Zebulon Quixote rash")  # malformed JSON containing PHI
    r401 = h.post_webhook(d.url, Signer(h.make_secret()), ev)
    assert r401.status_code == 401 and not phi_findings(r401.text), r401.text
    r415 = d.webhook(ev, content_type="text/plain")
    assert not phi_findings(r415.text), r415.text
    try:
        r413 = d.webhook(portal_event(pid, PHI["text"] * 20000, name=PHI["name"]))
        assert not phi_findings(r413.text), r413.text
    except requests.ConnectionError:
        pass  # a server may cut an oversized upload short; only the log matters here

    # agent side: list, read, claim, reply (receiver fails once, with PHI in its error body)
    api.list(status="open", assignee="unassigned")
    detail = api.conversation(cid)
    assert detail["contact"]["name"] == PHI["name"]  # the data is really there...
    api.claim(cid)
    receiver.behavior = lambda rec, prior: (500, 0, b'{"error":"Zebulon Quixote 867-5309 rash ZQX-4471"}') \
        if not prior else 200
    mid = api.reply(cid, "Zebulon, please send a photo of the rash (ref ZQX-4471)")
    api.wait_delivery(cid, mid, "delivered", timeout=20)
    api.post(f"/conversations/{cid}/resolve")
    api.post(f"/conversations/{cid}/reopen")
    metrics = requests.get(f"{d.url}/metrics", timeout=h.HTTP_TIMEOUT).text

    d.stop()
    log = d.log_text()
    assert log.strip(), "daemon wrote no log at all"
    found = phi_findings(log, extra=(me["token"], h.DEFAULT_SECRET[6:], h.OUTBOUND_SECRET[6:]))
    assert not found, "PHI or secrets in the daemon's log:\n" + "\n".join(found)
    found = phi_findings(metrics)
    assert not found, "PHI in /metrics:\n" + "\n".join(found)


# ---------------------------------------------------------------------------------------------
# configuration checking


def write_config(tmp_path, text: str, name: str = "cfg.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def good_config_text(tmp_path) -> str:
    return h.to_yaml(h.default_config(tmp_path, h.free_port(), "http://127.0.0.1:9/portal"))


def test_check_config_good_exits_0(tmp_path):
    cp = h.check_config(write_config(tmp_path, good_config_text(tmp_path)))
    assert cp.returncode == 0, f"exit {cp.returncode}\nstdout: {cp.stdout}\nstderr: {cp.stderr}"


def test_check_config_minimal_file_uses_defaults(tmp_path):
    cp = h.check_config(write_config(tmp_path, "http:\n  port: 18080\n"))
    assert cp.returncode == 0, f"exit {cp.returncode}\nstderr: {cp.stderr}"


@pytest.mark.parametrize("key,section,line", [
    ("http.port", "http", 'port: "notaport"'),
    ("http.port", "http", "port: 70000"),
    ("log.level", "log", "level: loud"),
    ("log.format", "log", "format: xml"),
    ("outbox.concurrency", "outbox", 'concurrency: "many"'),
    ("portal.max_body_bytes", "portal", "max_body_bytes: -5"),
    ("portal.webhook_secret", "portal", 'webhook_secret: "not a whsec secret!"'),
])
def test_check_config_bad_value_names_key(tmp_path, key, section, line):
    text = f"{section}:\n  {line}\n"
    cp = h.check_config(write_config(tmp_path, text))
    assert cp.returncode != 0, f"accepted bad {key}: {line}\nstdout: {cp.stdout}\nstderr: {cp.stderr}"
    assert key in cp.stderr, f"stderr does not name {key}: {cp.stderr!r}"


def test_check_config_unknown_top_level_key(tmp_path):
    cp = h.check_config(write_config(tmp_path, "htp:\n  port: 8080\n"))
    assert cp.returncode != 0, f"accepted unknown key htp\nstderr: {cp.stderr}"
    assert "htp" in cp.stderr, cp.stderr


def test_check_config_unknown_nested_key(tmp_path):
    cp = h.check_config(write_config(tmp_path, "http:\n  prot: 8080\n"))
    assert cp.returncode != 0, f"accepted unknown key http.prot\nstderr: {cp.stderr}"
    assert "http.prot" in cp.stderr, cp.stderr


def test_check_config_bad_env_override(tmp_path):
    cp = h.check_config(write_config(tmp_path, good_config_text(tmp_path)),
                        env={"SWITCHBOARD_HTTP_PORT": "notaport"})
    assert cp.returncode != 0, f"accepted SWITCHBOARD_HTTP_PORT=notaport\nstderr: {cp.stderr}"
    assert "http.port" in cp.stderr or "SWITCHBOARD_HTTP_PORT" in cp.stderr, cp.stderr


def test_check_config_yaml_syntax_error(tmp_path):
    cp = h.check_config(write_config(tmp_path, "http:\n  port: [8080\n"))
    assert cp.returncode != 0


def test_check_config_missing_file(tmp_path):
    cp = h.check_config(tmp_path / "nope.yaml")
    assert cp.returncode != 0


def test_check_config_does_not_print_secrets(tmp_path):
    secret = h.make_secret()
    cp = h.check_config(write_config(tmp_path, f'portal:\n  webhook_secret: "{secret}"\n  outbound_url: 5\n'
                                               'log:\n  level: loud\n'))
    assert secret[6:] not in cp.stdout + cp.stderr


def test_env_override_port(make_daemon):
    other = h.free_port()
    d = make_daemon(env={"SWITCHBOARD_HTTP_PORT": str(other)}, start=False)
    file_port = d.port
    d.port = other
    d.start()
    assert requests.get(f"http://127.0.0.1:{other}/healthz", timeout=h.HTTP_TIMEOUT).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{file_port}/healthz", timeout=2)


def test_daemon_refuses_to_start_on_bad_config(make_daemon):
    d = make_daemon(overrides={"log": {"level": "loud"}}, start=False)
    d.start(wait=False)
    try:
        rc = d.proc.wait(timeout=15)
    except Exception:  # noqa: BLE001
        pytest.fail("daemon kept running with log.level: loud")
    assert rc != 0
    assert "log.level" in d.stderr_text()


# ---------------------------------------------------------------------------------------------
# operations: health, metrics, logs, shutdown


def test_health_ready_metrics(daemon):
    assert requests.get(f"{daemon.url}/healthz", timeout=h.HTTP_TIMEOUT).status_code == 200
    assert requests.get(f"{daemon.url}/readyz", timeout=h.HTTP_TIMEOUT).status_code == 200
    daemon.webhook(portal_event())
    r = requests.get(f"{daemon.url}/metrics", timeout=h.HTTP_TIMEOUT)
    assert r.status_code == 200
    assert r.headers.get("Content-Type", "").startswith("text/plain"), r.headers
    assert re.search(r"^# TYPE \S+ (counter|gauge|histogram|summary)", r.text, re.M), r.text[:1000]


def test_listening_line_names_address(daemon):
    lines = [ln for ln in daemon.log_text().splitlines() if "listening" in ln]
    assert lines, daemon.log_tail()
    assert any(str(daemon.port) in ln and "127.0.0.1" in ln for ln in lines), lines


LOGFMT_LINE = re.compile(r'^\s*([A-Za-z_][\w.\-/]*=("([^"\\]|\\.)*"|[^\s"]*))(\s+[A-Za-z_][\w.\-/]*=("([^"\\]|\\.)*"|[^\s"]*))*\s*$')


def daemon_stderr_lines(d: h.Daemon) -> list[str]:
    return [ln for ln in d.stderr_text().splitlines() if ln.strip() and not ln.startswith("# ---- harness")]


def test_logs_are_logfmt(daemon):
    daemon.webhook(portal_event())
    daemon.stop()
    lines = daemon_stderr_lines(daemon)
    assert lines
    bad = [ln for ln in lines if not LOGFMT_LINE.match(ln)]
    assert not bad, "non-logfmt stderr lines:\n" + "\n".join(bad[:10])
    assert all(re.search(r"(^|\s)level=", ln) for ln in lines), lines[:5]


def test_logs_json_format(make_daemon):
    d = make_daemon(overrides={"log": {"format": "json"}})
    d.webhook(portal_event())
    d.stop()
    lines = daemon_stderr_lines(d)
    assert lines
    for ln in lines:
        obj = json.loads(ln)
        assert isinstance(obj, dict), ln


def test_sigterm_exits_0_quickly(daemon):
    daemon.webhook(portal_event())
    t0 = time.monotonic()
    rc = daemon.stop(timeout=10)
    took = time.monotonic() - t0
    assert rc == 0, f"exit code {rc} after SIGTERM"
    assert took < 5, f"took {took:.1f}s to exit"


def test_sigterm_with_idle_keepalive_connection(daemon):
    s = requests.Session()
    assert s.get(f"{daemon.url}/healthz", timeout=h.HTTP_TIMEOUT).status_code == 200  # connection stays open
    raw = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)  # and one that never sends anything
    try:
        t0 = time.monotonic()
        rc = daemon.stop(timeout=15)
        took = time.monotonic() - t0
        assert rc == 0
        assert took < 10, f"idle connections delayed shutdown by {took:.1f}s"
    finally:
        raw.close()
        s.close()


def test_restart_keeps_data_and_tokens(daemon):
    me = daemon.add_agent(role="agent")
    api = daemon.api(me)
    cid = open_conversation(daemon)["conversation_id"]
    api.claim(cid)
    assert daemon.stop() == 0
    daemon.start()
    assert daemon.api(me).conversation(cid)["conversation"]["assignee_id"] == me["agent_id"]


def test_cli_agent_add_while_daemon_runs(daemon):
    a = daemon.add_agent(name="Cli Person", email="cli.person@clinic.example", role="supervisor", team="front-desk")
    assert a["name"] == "Cli Person" and a["email"] == "cli.person@clinic.example" and a["role"] == "supervisor"
    assert a["agent_id"]
    # the running daemon accepts the fresh token at once
    r = daemon.api(a).get("/conversations", status="open", assignee="any")
    assert r.status_code == 200, r.text
    b = daemon.add_agent(role="agent")
    assert b["token"] != a["token"] and b["agent_id"] != a["agent_id"]


def test_cli_config_before_subcommand(daemon):
    """The documented form: ``switchboard --config PATH agent add ... --json``."""
    cp = daemon.cli("agent", "add", "--name", "Form Check", "--email", "form.check@clinic.example", "--json",
                    check=False, config_first=True)
    assert cp.returncode == 0, f"exit {cp.returncode}\nstdout: {cp.stdout}\nstderr: {cp.stderr}"
    assert json.loads(cp.stdout)["token"].startswith("sbt_")


# ---------------------------------------------------------------------------------------------
# more outbox behaviour


@pytest.mark.slow
def test_order_kept_per_conversation_across_conversations(daemon, receiver):
    """Three conversations, three replies each, every first attempt fails: each conversation's
    replies are accepted in order (conversations may interleave)."""
    api = daemon.api(daemon.add_agent(role="admin"))
    convs = [open_conversation(daemon, f"conv {i}")["conversation_id"] for i in range(3)]
    receiver.behavior = lambda rec, prior: 500 if not prior else 200
    per_conv = {cid: [] for cid in convs}
    for n in range(3):
        for cid in convs:
            per_conv[cid].append(api.reply(cid, f"{cid} part {n}"))
    all_ids = [m for ids_ in per_conv.values() for m in ids_]
    receiver.wait_accepted(all_ids, timeout=30)
    accepted_order = [r.message_id for r in receiver.accepted()]
    for cid, mids in per_conv.items():
        got = [m for m in accepted_order if m in mids]
        assert got == mids, f"conversation {cid}: accepted {got}, sent {mids}"
    for m in all_ids:
        assert len({r.webhook_id for r in receiver.for_message(m)}) == 1


@pytest.mark.slow
def test_backoff_is_bounded_no_hot_loop(daemon, receiver):
    """initial 100 ms, max 500 ms (+ jitter, + 100 ms poll): over ~3 s of 500s the outbox retries
    several times, never faster than a hot loop would, and never waits much beyond max_backoff."""
    api = daemon.api(daemon.add_agent(role="admin"))
    cid = open_conversation(daemon)["conversation_id"]
    receiver.behavior = lambda rec, prior: 500
    mid = api.reply(cid, "keeps failing")
    time.sleep(3.0)
    times = [r.t for r in receiver.for_message(mid)]
    assert 4 <= len(times) <= 40, f"{len(times)} attempts in 3 s"
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert max(gaps) < 1.5, f"a retry waited {max(gaps):.2f}s with max_backoff_ms=500: {gaps}"


def test_sigterm_while_outbox_retrying(make_daemon, down_receiver):
    d = make_daemon(outbound_url=down_receiver.url)
    api = d.api(d.add_agent(role="admin"))
    cid = open_conversation(d)["conversation_id"]
    api.reply(cid, "cannot be delivered yet")
    time.sleep(0.5)
    t0 = time.monotonic()
    rc = d.stop(timeout=10)
    assert rc == 0 and time.monotonic() - t0 < 5, f"rc={rc} after {time.monotonic() - t0:.1f}s"


def test_unicode_round_trip(daemon, receiver):
    api = daemon.api(daemon.add_agent(role="admin"))
    text_in = "Grüße 👋 — 日本語のテキスト \"quoted\" \\ back\\slash \n second line"
    ev = portal_event(uid("P-"), text_in, thread_id=uid("T-"))
    raw = json.dumps(ev, ensure_ascii=False).encode("utf-8")  # raw UTF-8, not \u escapes
    acc = accepted(daemon.webhook(body=raw))
    assert api.conversation(acc["conversation_id"])["messages"][0]["text"] == text_in
    reply = "Danke! 🙏 «ça va» — ✓"
    mid = api.reply(acc["conversation_id"], reply)
    receiver.wait_accepted([mid])
    rec = receiver.for_message(mid)[0]
    assert rec.signature_valid
    assert rec.json["message"]["text"] == reply


# ---------------------------------------------------------------------------------------------
# audit (peeks at the store read-only: the API has no audit endpoint)


def _audit_rows(d: h.Daemon) -> list:
    import sqlite3
    con = sqlite3.connect(f"file:{d.config['store']['path']}?mode=ro", uri=True, timeout=5)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        audit = [t for t in tables if "audit" in t.lower()]
        assert audit, f"no audit table among {tables}"
        cur = con.execute(f"select * from {audit[0]}")
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        con.close()


def test_each_read_writes_audit_event_without_text(daemon):
    me = daemon.add_agent(role="agent")
    api = daemon.api(me)
    secret_text = "audit-probe-text ZQX-9917"
    cid = open_conversation(daemon, secret_text)["conversation_id"]
    before = [r for r in _audit_rows(daemon) if r.get("conversation_id") == cid]
    api.conversation(cid)
    api.conversation(cid)
    after = [r for r in _audit_rows(daemon) if r.get("conversation_id") == cid]
    new = after[len(before):]
    reads = [r for r in new if r.get("actor_id") == me["agent_id"]]
    assert len(reads) >= 2, f"two reads by {me['agent_id']} wrote {len(reads)} audit rows: {new}"
    for r in _audit_rows(daemon):
        assert not any(isinstance(v, str) and ("audit-probe" in v or "ZQX-9917" in v) for v in r.values()), r
