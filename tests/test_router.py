"""The router, black-box: presence, offers (accept, decline, lapse), capacity and backlog
drain, teams and policies, transfers and notes, the routing log and queue position, the
visibility rule with its audit trail, and the events WebSocket (live, replay with ?after=,
close codes) -- checking on the way that no event frame and no log line carries PHI."""

from __future__ import annotations

import json
import socket
import sqlite3
import struct
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
import requests
import websocket

import switchboard_harness as h
from switchboard_harness import parse_time, portal_event, uid, wait_until

ROUTE_TIMEOUT = 10.0  # asynchronous routing after a webhook / resolve: normally milliseconds
TRIAGE_TIMEOUT = 60.0  # first triage of a daemon may load its model


# --------------------------------------------------------------------------------------------
# helpers


class EventStream:
    """One connection to GET /api/v1/events, read by a background thread.

    Every text frame is kept raw (``raw``) and parsed (``frames``); the close frame's status
    code and reason are kept in ``close_code`` / ``close_reason``."""

    def __init__(self, d: h.Daemon, token: Optional[str], after: Any = None, extra_headers: Optional[list] = None):
        query = "" if after is None else f"?after={after}"
        headers = [f"Authorization: Bearer {token}"] if token is not None else []
        headers += extra_headers or []
        self.url = f"ws://127.0.0.1:{d.port}/api/v1/events{query}"
        self.ws = websocket.create_connection(self.url, header=headers, timeout=10)
        h.answer_close_best_effort(self.ws)
        self.ws.settimeout(None)  # the reader blocks; close() shuts the socket down to stop it
        self.raw: list[str] = []
        self.frames: list[dict] = []
        self.close_code: Optional[int] = None
        self.close_reason: Optional[str] = None
        self.error: Optional[BaseException] = None
        self.cond = threading.Condition()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while True:
                opcode, frame = self.ws.recv_data_frame(control_frame=True)
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    text = frame.data.decode("utf-8")
                    with self.cond:
                        self.raw.append(text)
                        self.frames.append(json.loads(text))
                        self.cond.notify_all()
                elif opcode == websocket.ABNF.OPCODE_CLOSE:
                    data = frame.data or b""
                    with self.cond:
                        self.close_code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                        self.close_reason = data[2:].decode("utf-8", "replace")
                        self.cond.notify_all()
                    return
        except BaseException as e:  # noqa: BLE001 - socket shut down, or a protocol error
            with self.cond:
                self.error = e
                self.cond.notify_all()
        finally:
            self.done.set()

    # -- reading
    def snapshot(self) -> list[dict]:
        with self.cond:
            return list(self.frames)

    def events(self) -> list[dict]:
        return [f for f in self.snapshot() if f.get("type") == "event"]

    def hello(self, timeout: float = 10) -> dict:
        return self.wait(lambda f: f.get("type") == "hello", timeout, "hello frame")

    def wait(self, pred: Callable[[dict], bool], timeout: float = ROUTE_TIMEOUT, what: str = "frame") -> dict:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for f in self.frames:
                    if pred(f):
                        return f
                left = deadline - time.monotonic()
                if left <= 0 or self.done.is_set():
                    raise AssertionError(f"{what}: not received within {timeout}s (close={self.close_code}, "
                                         f"error={self.error!r}); got {[summary(x) for x in self.frames]}")
                self.cond.wait(min(left, 0.2))

    def wait_event(self, kind: str, cid: Optional[str] = None, timeout: float = ROUTE_TIMEOUT, **data) -> dict:
        return self.wait(lambda f: is_event(f, kind, cid, **data), timeout, f"event {kind} {cid or ''} {data or ''}")

    def matching(self, kind: str, cid: Optional[str] = None, **data) -> list[dict]:
        return [f for f in self.snapshot() if is_event(f, kind, cid, **data)]

    def wait_closed(self, timeout: float = 10) -> Optional[int]:
        assert self.done.wait(timeout), f"stream not closed by the server within {timeout}s: {self.snapshot()}"
        return self.close_code

    # -- ending
    def close(self) -> None:
        """A clean close (1000); the reader ends with the server's close frame, else the socket is shut."""
        if not self.done.is_set():
            try:
                self.ws.send_close()
            except Exception:  # noqa: BLE001
                pass
            self.done.wait(3)
        if not self.done.is_set():
            try:
                self.ws.sock.shutdown(socket.SHUT_RDWR)
            except Exception:  # noqa: BLE001
                pass
            self.done.wait(3)
        try:
            self.ws.shutdown()
        except Exception:  # noqa: BLE001
            pass


def is_event(f: dict, kind: str, cid: Optional[str] = None, **data) -> bool:
    if f.get("type") != "event" or f.get("kind") != kind:
        return False
    d = f.get("data") or {}
    if cid is not None and d.get("conversation_id") != cid:
        return False
    return all(d.get(k) == v for k, v in data.items())


def summary(f: dict) -> str:
    if f.get("type") != "event":
        return f"{f.get('type')}#{f.get('seq')}"
    d = f.get("data") or {}
    extra = {k: v for k, v in d.items() if k not in ("conversation_id", "message_id", "expires_at")}
    return f"{f['seq']}:{f['kind']}:{d.get('conversation_id', '-')[-6:]}:{extra}"


@pytest.fixture
def streams():
    """Opens EventStreams and closes them all after the test."""
    opened: list[EventStream] = []

    def open_stream(d: h.Daemon, token: Optional[str], after: Any = None, **kw) -> EventStream:
        s = EventStream(d, token, after, **kw)
        opened.append(s)
        return s

    yield open_stream
    for s in opened:
        s.close()


def router_daemon(make_daemon, receiver, triage: bool = False, **sections) -> h.Daemon:
    overrides: dict = {} if triage else {"triage": {"enabled": False}}
    for section, kv in sections.items():
        overrides.setdefault(section, {}).update(kv)
    return make_daemon(outbound_url=receiver.url, overrides=overrides)


def set_presence(d: h.Daemon, agent: dict, presence: str = "online") -> dict:
    r = d.api(agent).put("/me/presence", {"presence": presence})
    assert r.status_code == 200, f"PUT /me/presence -> {r.status_code} {r.text}"
    assert r.json()["agent"]["presence"] == presence, r.json()
    return r.json()["agent"]


def inbound(d: h.Daemon, text: str = "Could someone call me back about my appointment?", **kw) -> str:
    ev = portal_event(kw.pop("patient_id", None) or uid("P-"), text, thread_id=kw.pop("thread_id", uid("T-")), **kw)
    r = d.webhook(ev)
    assert r.status_code == 202, f"webhook -> {r.status_code} {r.text}"
    return r.json()["conversation_id"]


def expect_error(r: requests.Response, status: int, code: Optional[str] = None, mentions: Optional[str] = None) -> dict:
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:500]}"
    assert h.error_shape_ok(r), f"not the JSON error shape: {r.headers.get('content-type')} {r.text[:500]}"
    err = r.json()["error"]
    if code is not None:
        assert err["code"] == code, err
    if mentions is not None:
        assert mentions in err["message"], err
    return err


def routing_log(api: h.Api, cid: str) -> list[dict]:
    r = api.get(f"/conversations/{cid}/routing")
    assert r.status_code == 200, f"routing log {cid} -> {r.status_code} {r.text[:500]}"
    j = r.json()
    assert j["conversation_id"] == cid, j
    return j["decisions"]


def wait_decision(api: h.Api, cid: str, pred: Callable[[dict], bool], what: str, timeout: float = ROUTE_TIMEOUT) -> dict:
    def check():
        return next((x for x in routing_log(api, cid) if pred(x)), None)
    return wait_until(check, timeout, 0.05, f"routing decision: {what}")


def candidate(decision: dict, agent_id: str) -> Optional[dict]:
    return next((c for c in decision["candidates"] if c["agent_id"] == agent_id), None)


def audit_rows(d: h.Daemon, action: str, actor_id: Optional[str] = None, cid: Optional[str] = None) -> list[tuple]:
    path = Path(d.config["store"]["path"])
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        sql = "SELECT actor_kind, actor_id, action, conversation_id, source_address FROM audit_events WHERE action = ?"
        args: list = [action]
        if actor_id is not None:
            sql += " AND actor_id = ?"
            args.append(actor_id)
        if cid is not None:
            sql += " AND conversation_id = ?"
            args.append(cid)
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def team_id(api: h.Api, name: str) -> str:
    r = api.get("/teams")
    assert r.status_code == 200, r.text
    return next(t["id"] for t in r.json()["teams"] if t["name"] == name)


def assert_no_phi(texts: list[str], needles: list[str], where: str) -> None:
    blob = "\n".join(texts)
    leaked = [n for n in needles if n.lower() in blob.lower()]
    assert not leaked, f"PHI {leaked} found in {where}"


# Distinctive patient data, easy to spot if it leaks.
PHI_NAME = "Zebulon Quimby-Hartwright"
PHI_PHONE = "+1 (555) 013-4477"
PHI_PHONE_E164 = "+15550134477"
PHI_EMAIL = "zebulon.quimby@example.org"
PHI_TEXT = "My insulin pump alarm keeps beeping since the Kilimanjaro trip, please advise"
PHI_NEEDLES = ["Zebulon", "Quimby", "Hartwright", "5550134477", "013-4477", "0134477", "zebulon.quimby",
               "insulin pump", "Kilimanjaro", "keeps beeping"]


# --------------------------------------------------------------------------------------------
# 1. the live stream


def test_live_stream_offer_accept_and_no_phi_in_frames(make_daemon, receiver, streams):
    d = router_daemon(make_daemon, receiver)
    a = d.add_agent(role="agent")
    api = d.api(a)
    set_presence(d, a, "online")
    s = streams(d, a["token"])

    hello = s.hello()
    assert hello["type"] == "hello" and hello["agent_id"] == a["agent_id"], hello
    assert isinstance(hello["seq"], int) and hello["seq"] >= 0, hello
    assert json.loads(s.raw[0]) == hello  # hello comes first

    cid = inbound(d, PHI_TEXT, name=PHI_NAME, phone=PHI_PHONE, email=PHI_EMAIL)
    msg = s.wait_event("message.created", cid)
    assert msg["data"]["direction"] == "inbound" and msg["data"]["channel"] == "portal", msg
    offer = s.wait_event("offer.created", cid)
    assert offer["data"]["channel"] == "portal" and offer["data"]["priority"] == "normal", offer
    lifetime = (parse_time(offer["data"]["expires_at"]) - parse_time(offer["at"])).total_seconds()
    assert 25 <= lifetime <= 35, f"offer should live ~routing.offer_timeout_seconds (30): {offer}"

    # The message id in the event is the one the audited API shows.
    detail = api.conversation(cid)
    assert msg["data"]["message_id"] == detail["messages"][0]["id"], (msg, detail["messages"])
    assert detail["messages"][0]["text"] == PHI_TEXT

    r = api.post(f"/conversations/{cid}/accept")
    assert r.status_code == 200, r.text
    assert r.json()["conversation"]["assignee_id"] == a["agent_id"], r.json()
    assigned = s.wait_event("conversation.assigned", cid)
    assert assigned["data"] == {"conversation_id": cid, "agent_id": a["agent_id"], "via": "accepted"}, assigned

    # Accepting again: the offer is gone.
    expect_error(api.post(f"/conversations/{cid}/accept"), 409, "conflict")

    events = s.events()
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)) and seqs[0] > hello["seq"], f"seq not strictly increasing after hello: {seqs}"
    for e in events:
        assert set(e) == {"type", "seq", "kind", "at", "data"}, e
        parse_time(e["at"])
        assert e["data"].get("conversation_id") == cid, e
    # No patient data in any frame (hello included): ids and states only.
    assert_no_phi(s.raw, PHI_NEEDLES + [PHI_PHONE_E164], "event frames")


# --------------------------------------------------------------------------------------------
# 2. reconnecting, close codes, plain GET


def test_reconnect_after_seq_replays_exactly_the_missed_events(make_daemon, receiver, streams):
    d = router_daemon(make_daemon, receiver)
    a = d.add_agent(role="agent")
    api = d.api(a)
    set_presence(d, a, "online")

    live = streams(d, a["token"])
    live_start = live.hello()["seq"]
    c1 = inbound(d)
    live.wait_event("offer.created", c1)
    assert api.post(f"/conversations/{c1}/accept").status_code == 200
    live.wait_event("conversation.assigned", c1)
    seen = live.events()
    last_seq = seen[-1]["seq"]
    live.close()
    assert live.close_code == 1000, live.close_code

    # While disconnected: an offer declined, another accepted, the first resolved.
    c2 = inbound(d)
    wait_decision(api, c2, lambda x: x["outcome"] == "offered" and x["agent_id"] == a["agent_id"], "c2 offered to a")
    assert api.post(f"/conversations/{c2}/decline").status_code == 204
    c3 = inbound(d)
    wait_decision(api, c3, lambda x: x["outcome"] == "offered" and x["agent_id"] == a["agent_id"], "c3 offered to a")
    r = api.post(f"/conversations/{c3}/accept")
    assert r.status_code == 200, r.text
    assert api.post(f"/conversations/{c1}/resolve").status_code == 200

    again = streams(d, a["token"], after=last_seq)
    full = streams(d, a["token"], after=0)
    assert again.hello()["seq"] == last_seq, again.snapshot()[:1]
    full.hello()

    missed = [("message.created", c2, {}), ("offer.created", c2, {}), ("offer.ended", c2, {"reason": "declined"}),
              ("conversation.queued", c2, {}),
              ("message.created", c3, {}), ("offer.created", c3, {}),
              ("conversation.assigned", c3, {"via": "accepted"}),
              ("conversation.status", c1, {"status": "resolved"})]
    for kind, cid, data in missed:
        again.wait_event(kind, cid, **data)
        full.wait_event(kind, cid, **data)

    # Let both settle, then compare: the replay is exactly the tail of the full history.
    def settled():
        x, y = again.events(), full.events()
        return x and y and x[-1]["seq"] == y[-1]["seq"]
    wait_until(settled, ROUTE_TIMEOUT, 0.05, "both streams at the same seq")
    time.sleep(0.5)
    replay, history = again.events(), full.events()
    rseqs = [e["seq"] for e in replay]
    assert rseqs == sorted(rseqs) and len(set(rseqs)) == len(rseqs), f"replay out of order or duplicated: {rseqs}"
    assert all(s > last_seq for s in rseqs), rseqs
    tail = [e for e in history if e["seq"] > last_seq]
    assert replay == tail, ("replay differs from the full history after SEQ",
                            [summary(e) for e in replay], [summary(e) for e in tail])
    # ...and the full history's head is what the live connection saw.
    head = [e for e in history if live_start < e["seq"] <= last_seq]
    assert head == seen, ([summary(e) for e in head], [summary(e) for e in seen])
    assert any(is_event(e, "agent.presence", presence="online") for e in history if e["seq"] <= live_start), \
        "the full history lacks the presence change made before the live connection"
    hseqs = [e["seq"] for e in history]
    assert hseqs == sorted(set(hseqs)), hseqs
    # Order within a conversation follows what happened.
    c2_kinds = [e["kind"] for e in replay if e["data"].get("conversation_id") == c2]
    assert c2_kinds.index("offer.created") < c2_kinds.index("offer.ended"), c2_kinds

    # After the replay the same connection continues live.
    c4 = inbound(d)
    again.wait_event("message.created", c4)
    full.wait_event("message.created", c4)

    # Without ?after: starts at the newest event, nothing replayed.
    fresh = streams(d, a["token"])
    hello = fresh.hello()
    assert hello["seq"] >= again.events()[-1]["seq"], (hello, summary(again.events()[-1]))
    c5 = inbound(d)
    # The router may still be offering c4 (or re-offering c2): any event may come first, but
    # every one is newer than the hello, and c5's arrive live.
    first = fresh.wait(lambda f: f.get("type") == "event", ROUTE_TIMEOUT, "first live event")
    assert first["seq"] > hello["seq"], (hello, first)
    fresh.wait_event("message.created", c5)


@pytest.mark.parametrize("after", ["abc", "-1", "1.5", "", "12abc"])
def test_events_bad_after_closes_4400(make_daemon, receiver, streams, after):
    d = router_daemon(make_daemon, receiver)
    a = d.add_agent(role="agent")
    s = streams(d, a["token"], after=after)
    assert s.wait_closed() == 4400, (s.close_code, s.close_reason, s.snapshot())
    assert "after" in (s.close_reason or ""), s.close_reason
    assert s.snapshot() == [], "no hello before the close"


@pytest.mark.parametrize("token", [None, "sbt_notarealtoken", "notevenprefixed", "Basic Zm9vOmJhcg=="])
def test_events_bad_token_closes_4401(make_daemon, receiver, streams, token):
    d = router_daemon(make_daemon, receiver)
    d.add_agent(role="agent")
    extra = None
    if token is not None and token.startswith("Basic "):
        extra, token = [f"Authorization: {token}"], None
    s = streams(d, token, after=0, extra_headers=extra)
    assert s.wait_closed() == 4401, (s.close_code, s.close_reason, s.snapshot())
    assert s.snapshot() == [], "no hello (and no event) before the close"


def test_events_without_upgrade_is_426_json(make_daemon, receiver):
    d = router_daemon(make_daemon, receiver)
    a = d.add_agent(role="agent")
    for headers in ({}, {"Authorization": f"Bearer {a['token']}"}):
        r = requests.get(f"{d.url}/api/v1/events", headers=headers, timeout=h.HTTP_TIMEOUT)
        expect_error(r, 426, "upgrade_required")
        assert r.headers.get("upgrade", "").lower() == "websocket", dict(r.headers)


# --------------------------------------------------------------------------------------------
# 3. offer timeout


def two_online_agents(d, streams, team):
    """Two online agents of `team`, each with an event stream past its hello frame."""
    pair = []
    for _ in range(2):
        ag = d.add_agent(role="agent", team=team)
        set_presence(d, ag, "online")
        pair.append(ag)
    out = []
    for ag in pair:
        st = streams(d, ag["token"])
        st.hello()
        out.append((ag, st))
    return out


def test_offer_lapses_and_goes_to_the_other_agent(make_daemon, receiver, streams):
    d = router_daemon(make_daemon, receiver, routing={"offer_timeout_seconds": 1})
    admin = d.api(d.add_agent(role="admin"))
    (x, sx), (y, sy) = two_online_agents(d, streams, "lapse-team")

    cid = inbound(d)
    t0 = time.monotonic()
    by_id = {x["agent_id"]: (x, sx), y["agent_id"]: (y, sy)}
    first_id = wait_until(lambda: next((i for i, (_, s) in by_id.items() if s.matching("offer.created", cid)), None),
                          ROUTE_TIMEOUT, 0.02, "first offer")
    second_id = next(i for i in by_id if i != first_id)
    first_stream, second_stream = by_id[first_id][1], by_id[second_id][1]
    offer1 = first_stream.wait_event("offer.created", cid)
    lifetime = (parse_time(offer1["data"]["expires_at"]) - parse_time(offer1["at"])).total_seconds()
    assert 0.5 <= lifetime <= 1.5, offer1

    ended = first_stream.wait_event("offer.ended", cid, timeout=5)
    assert ended["data"]["reason"] == "expired", ended
    offer2 = second_stream.wait_event("offer.created", cid, timeout=5)
    assert offer2["seq"] > ended["seq"] or offer2["seq"] > offer1["seq"]
    assert time.monotonic() - t0 >= 0.8, "the offer lapsed before its timeout"

    decisions = routing_log(admin, cid)
    arrived = decisions[0]
    assert arrived["trigger"] == "arrived" and arrived["outcome"] == "offered" and arrived["agent_id"] == first_id, arrived
    assert arrived["rule"] == "least-loaded", arrived
    assert arrived["candidates"][0] == {**arrived["candidates"][0], "agent_id": first_id, "eligible": True, "reasons": []}
    runner_up = candidate(arrived, second_id)
    assert runner_up and runner_up["eligible"] and runner_up["reasons"] == ["not chosen by least-loaded"], arrived
    assert isinstance(runner_up["load"], (int, float)), runner_up
    lapsed = next(x for x in decisions if x["trigger"] == "offer_expired")
    assert lapsed["outcome"] == "offered" and lapsed["agent_id"] == second_id, lapsed
    assert lapsed["candidates"][0]["agent_id"] == second_id, lapsed
    passed = candidate(lapsed, first_id)
    assert passed is not None and passed["eligible"] is False, lapsed
    assert any("lapse" in reason for reason in passed["reasons"]), passed
    for dec in decisions:
        assert isinstance(dec["candidates_omitted"], int) and dec["at"], dec


def test_lapses_before_away_sets_the_agent_away(make_daemon, receiver, streams):
    d = router_daemon(make_daemon, receiver, routing={"offer_timeout_seconds": 1, "lapses_before_away": 1})
    a = d.add_agent(role="agent")
    set_presence(d, a, "online")
    s = streams(d, a["token"])
    s.hello()
    cid = inbound(d)
    s.wait_event("offer.created", cid)
    s.wait_event("offer.ended", cid, timeout=5, reason="expired")
    ev = s.wait_event("agent.presence", timeout=5, presence="away")
    assert ev["data"]["agent_id"] == a["agent_id"] and "lapse" in ev["data"]["reason"], ev
    assert d.api(a).get("/me").json()["agent"]["presence"] == "away"
    # Away: nothing new is offered.
    c2 = inbound(d)
    wait_decision(d.api(a), c2, lambda x: x["outcome"] == "queued", "c2 queued")
    assert not s.matching("offer.created", c2)


# --------------------------------------------------------------------------------------------
# 4. decline


def test_decline_goes_to_the_other_agent_and_errors(make_daemon, receiver, streams):
    d = router_daemon(make_daemon, receiver)
    admin = d.api(d.add_agent(role="admin"))
    (x, sx), (y, sy) = two_online_agents(d, streams, "front")

    cid = inbound(d)
    agents = {x["agent_id"]: (x, sx), y["agent_id"]: (y, sy)}
    first_id = wait_until(lambda: next((i for i, (_, s) in agents.items() if s.matching("offer.created", cid)), None),
                          ROUTE_TIMEOUT, 0.02, "first offer")
    second_id = next(i for i in agents if i != first_id)
    first, fs = agents[first_id]
    second, ss = agents[second_id]
    fapi, sapi = d.api(first), d.api(second)

    # The one not offered may neither accept nor decline it (it can see it: unassigned, no team).
    expect_error(sapi.post(f"/conversations/{cid}/decline"), 409, "conflict")
    expect_error(sapi.post(f"/conversations/{cid}/accept"), 409, "conflict")

    r = fapi.post(f"/conversations/{cid}/decline")
    assert r.status_code == 204 and r.content == b"", (r.status_code, r.text)
    assert fs.wait_event("offer.ended", cid)["data"]["reason"] == "declined"
    ss.wait_event("offer.created", cid)
    dec = wait_decision(admin, cid, lambda z: z["trigger"] == "declined", "declined decision")
    assert dec["outcome"] == "offered" and dec["agent_id"] == second_id, dec
    passed = candidate(dec, first_id)
    assert passed and not passed["eligible"] and any("declined" in reason for reason in passed["reasons"]), dec

    # Without a pending offer: 409 with the JSON error, and not offered to the decliner again.
    expect_error(fapi.post(f"/conversations/{cid}/decline"), 409, "conflict")
    expect_error(fapi.post(f"/conversations/{cid}/accept"), 409, "conflict")
    r = sapi.post(f"/conversations/{cid}/accept")
    assert r.status_code == 200 and r.json()["conversation"]["assignee_id"] == second_id, r.text
    # Now assigned to the other agent: for the decliner (role agent) it no longer exists.
    expect_error(fapi.post(f"/conversations/{cid}/decline"), 404, "not_found")
    expect_error(fapi.post(f"/conversations/{cid}/accept"), 404, "not_found")
    assert len(fs.matching("offer.created", cid)) == 1, "offered again to the agent who declined"

    # A conversation of another team: invisible, so 404 -- the same as an unknown id.
    assert admin.put("/teams/elsewhere", {}).status_code == 200
    other = inbound(d)
    wait_decision(admin, other, lambda z: z["trigger"] == "arrived", "other routed")
    r = admin.post(f"/conversations/{other}/transfer", {"to_team": "elsewhere"})
    assert r.status_code == 200, r.text
    before = len(audit_rows(d, "conversation.access_denied", first_id, other))
    expect_error(fapi.post(f"/conversations/{other}/accept"), 404, "not_found")
    expect_error(fapi.post(f"/conversations/{other}/decline"), 404, "not_found")
    assert len(audit_rows(d, "conversation.access_denied", first_id, other)) == before + 2
    for verb in ("accept", "decline"):
        expect_error(fapi.post(f"/conversations/cnv_doesnotexist/{verb}"), 404, "not_found")


# --------------------------------------------------------------------------------------------
# 5. capacity and drain


def test_patch_agent_validation(make_daemon, receiver):
    d = router_daemon(make_daemon, receiver)
    admin = d.api(d.add_agent(role="admin"))
    a = d.add_agent(role="agent")
    api = d.api(a)
    path = f"/agents/{a['agent_id']}"
    # An agent may not change routing attributes; a supervisor only for their own teams' agents.
    expect_error(api.patch(path, {"capacity": {"portal": 3}}), 403, "forbidden", "supervisor")
    expect_error(d.api(d.add_agent(role="supervisor")).patch(path, {"capacity": {"portal": 3}}), 403, "forbidden", "own teams")
    expect_error(admin.patch("/agents/agt_nosuchagent", {"capacity": {"portal": 3}}), 404, "not_found")
    expect_error(admin.patch(path, {"capacity": {"portal": -1}}), 400, "bad_request")
    expect_error(admin.patch(path, {"capacity": {"portal": 1001}}), 400, "bad_request")
    expect_error(admin.patch(path, {"capacity": {"fax": 3}}), 400, "bad_request", "fax")
    expect_error(admin.patch(path, {"capacity": {"portal": "3"}}), 400, "bad_request", "portal")
    expect_error(admin.patch(path, {"capacity": {"portal": True}}), 400, "bad_request", "portal")
    expect_error(admin.patch(path, {"shoe_size": 44}), 400, "bad_request", "shoe_size")
    expect_error(admin.patch(path, {"role": "overlord"}), 400, "bad_request", "role")
    r = admin.patch(path, {"capacity": {"portal": 3, "sms": 2}, "skills": [" Billing "], "languages": ["EN", "es"],
                           "teams": ["patched-team"]})
    assert r.status_code == 200, r.text
    ag = r.json()["agent"]
    assert ag["capacity"] == {"portal": 3, "sms": 2} and ag["skills"] == ["billing"], ag
    assert ag["languages"] == ["en", "es"] and ag["teams"] == ["patched-team"], ag
    assert "patched-team" in [t["name"] for t in admin.get("/teams").json()["teams"]]


@pytest.mark.parametrize("value", [0, 1])
def test_patch_agent_capacity_zero_and_one(make_daemon, receiver, value):
    d = router_daemon(make_daemon, receiver)
    admin = d.api(d.add_agent(role="admin"))
    a = d.add_agent(role="agent")
    r = admin.patch(f"/agents/{a['agent_id']}", {"capacity": {"portal": value}})
    assert r.status_code == 200, r.text
    assert r.json()["agent"]["capacity"] == {"portal": value}, r.json()


@pytest.mark.parametrize("cap", [1, 2])
def test_capacity_queue_position_and_drain_on_resolve(make_daemon, receiver, streams, cap):
    d = router_daemon(make_daemon, receiver)
    admin = d.api(d.add_agent(role="admin"))
    a = d.add_agent(role="agent")
    api = d.api(a)
    r = admin.patch(f"/agents/{a['agent_id']}", {"capacity": {"portal": cap}})
    assert r.status_code == 200, r.text
    assert r.json()["agent"]["capacity"] == {"portal": cap}, r.json()

    set_presence(d, a, "online")
    s = streams(d, a["token"])
    s.hello()
    held = []
    for _ in range(cap):
        c = inbound(d)
        s.wait_event("offer.created", c)
        held.append(c)
    waiting = inbound(d)
    dec = wait_decision(admin, waiting, lambda x: x["outcome"] == "queued", "the extra conversation queued")
    assert dec["rule"] == "nobody eligible", dec
    me = candidate(dec, a["agent_id"])
    assert me and not me["eligible"] and f"at portal capacity ({cap}/{cap})" in me["reasons"], dec
    s.wait_event("conversation.queued", waiting)
    assert not s.matching("offer.created", waiting)

    q = admin.get(f"/conversations/{waiting}/queue")
    assert q.status_code == 200, q.text
    j = q.json()
    assert j["conversation_id"] == waiting and j["queued"] is True and j["position"] == 1, j
    assert "estimated_wait_seconds" in j, j
    assert d.api(a).get(f"/conversations/{waiting}/queue").json()["position"] == 1
    q1 = admin.get(f"/conversations/{held[0]}/queue").json()
    assert q1["queued"] is False and q1["position"] is None and q1["estimated_wait_seconds"] is None, q1

    for c in held:
        assert api.post(f"/conversations/{c}/accept").status_code == 200
    time.sleep(0.3)
    assert not s.matching("offer.created", waiting), "offered above capacity"
    assert admin.get(f"/conversations/{waiting}/queue").json()["queued"] is True
    agent_row = next(x for x in admin.get("/agents").json()["agents"] if x["id"] == a["agent_id"])
    assert agent_row["load"] == {"portal": cap}, agent_row

    t0 = time.monotonic()
    r = api.post(f"/conversations/{held[0]}/resolve")
    assert r.status_code == 200 and r.json()["conversation"]["status"] == "resolved", r.text
    s.wait_event("offer.created", waiting, timeout=2.0)
    elapsed = time.monotonic() - t0
    assert elapsed < 2.0, f"backlog drained only after {elapsed:.2f}s"
    dec = wait_decision(admin, waiting, lambda x: x["outcome"] == "offered", "offered after the resolve")
    assert dec["agent_id"] == a["agent_id"] and dec["trigger"] == "agent_available", dec
    assert admin.get(f"/conversations/{waiting}/queue").json()["queued"] is False


# --------------------------------------------------------------------------------------------
# 6. teams and policies


def test_team_administration(make_daemon, receiver):
    d = router_daemon(make_daemon, receiver)
    admin = d.api(d.add_agent(role="admin"))
    agent = d.api(d.add_agent(role="agent"))
    sup = d.api(d.add_agent(role="supervisor"))

    r = admin.put("/teams/zz-manual", {"policy": "manual"})
    assert r.status_code == 200, r.text
    t = r.json()["team"]
    assert t["name"] == "zz-manual" and t["policy"] == "manual" and t["auto_accept"] is False and t["overflow"] is None, t
    assert t["id"]
    r = admin.put("/teams/aa-rr", {"policy": "round-robin", "auto_accept": True})
    assert r.status_code == 200 and r.json()["team"]["policy"] == "round-robin" and r.json()["team"]["auto_accept"] is True
    # A partial update keeps the rest.
    r = admin.put("/teams/aa-rr", {"auto_accept": False})
    assert r.status_code == 200, r.text
    assert r.json()["team"]["policy"] == "round-robin" and r.json()["team"]["auto_accept"] is False, r.json()
    r = admin.put("/teams/aa-rr", {"overflow": "zz-manual"})
    assert r.status_code == 200 and r.json()["team"]["overflow"] == f"team:{t['id']}", r.json()
    r = admin.put("/teams/aa-rr", {"overflow": None})
    assert r.status_code == 200 and r.json()["team"]["overflow"] is None, r.json()
    r = admin.put("/teams/mm-new", {})
    assert r.status_code == 200 and r.json()["team"]["policy"] == "least-loaded", r.json()

    for who in (agent, sup):
        expect_error(who.put("/teams/zz-manual", {"policy": "round-robin"}), 403, "forbidden", "admin")
    expect_error(admin.put("/teams/zz-manual", {"policy": "fastest"}), 400, "bad_request", "policy")
    expect_error(admin.put("/teams/zz-manual", {"auto_accept": "yes"}), 400, "bad_request", "auto_accept")
    expect_error(admin.put("/teams/zz-manual", {"colour": "red"}), 400, "bad_request", "colour")
    expect_error(admin.put("/teams/zz-manual", {"overflow": "no-such-team"}), 400, "bad_request", "overflow")
    expect_error(admin.put("/teams/zz-manual", {"overflow": "zz-manual"}), 400, "bad_request", "overflow")

    for who in (agent, sup, admin):
        r = who.get("/teams")
        assert r.status_code == 200, r.text
        teams = r.json()["teams"]
        names = [x["name"] for x in teams]
        assert names == sorted(names), names
        assert {"zz-manual", "aa-rr", "mm-new"} <= set(names), names
        zz = next(x for x in teams if x["name"] == "zz-manual")
        assert zz["policy"] == "manual", zz  # the failed updates changed nothing


@pytest.mark.parametrize("value", [1, 0])
def test_team_auto_accept_must_be_a_boolean(make_daemon, receiver, value):
    d = router_daemon(make_daemon, receiver)
    admin = d.api(d.add_agent(role="admin"))
    expect_error(admin.put("/teams/strict", {"auto_accept": value}), 400, "bad_request", "auto_accept")


def test_auto_accept_and_manual_policies(make_daemon, receiver, streams):
    d = router_daemon(make_daemon, receiver)
    admin = d.api(d.add_agent(role="admin"))
    g = d.add_agent(role="agent", team="auto")
    m = d.add_agent(role="agent", team="by-hand")
    assert admin.put("/teams/auto", {"auto_accept": True}).json()["team"]["auto_accept"] is True
    assert admin.put("/teams/by-hand", {"policy": "manual"}).json()["team"]["policy"] == "manual"
    sg, sm = streams(d, g["token"]), streams(d, m["token"])
    sg.hello(), sm.hello()

    # Everyone offline: the conversation waits; moved to the team; the agent comes online -> assigned at once.
    c1 = inbound(d)
    wait_decision(admin, c1, lambda x: x["outcome"] == "queued", "c1 queued")
    assert admin.post(f"/conversations/{c1}/transfer", {"to_team": "auto"}).status_code == 200
    set_presence(d, g, "online")
    ev = sg.wait_event("conversation.assigned", c1)
    assert ev["data"]["agent_id"] == g["agent_id"] and ev["data"]["via"] == "auto-accept", ev
    assert not sg.matching("offer.created", c1)
    assert admin.conversation(c1)["conversation"]["assignee_id"] == g["agent_id"]
    dec = routing_log(admin, c1)[-1]
    assert dec["outcome"] == "assigned" and dec["agent_id"] == g["agent_id"], dec

    # Online: a plain offer (no team) becomes an assignment when moved to the auto-accept team.
    c2 = inbound(d)
    sg.wait_event("offer.created", c2)
    assert admin.post(f"/conversations/{c2}/transfer", {"to_team": "auto"}).status_code == 200
    ev = sg.wait_event("conversation.assigned", c2)
    assert ev["data"] == {"conversation_id": c2, "agent_id": g["agent_id"], "via": "auto-accept"}, ev

    # Manual: nobody is offered anything; the agent claims from the queue.
    set_presence(d, g, "away")
    c3 = inbound(d)
    wait_decision(admin, c3, lambda x: x["outcome"] == "queued", "c3 queued")
    assert admin.post(f"/conversations/{c3}/transfer", {"to_team": "by-hand"}).status_code == 200
    set_presence(d, m, "online")
    dec = wait_decision(admin, c3, lambda x: x["trigger"] == "transferred", "c3 transferred decision")
    assert dec["outcome"] == "queued" and dec["rule"].startswith("manual"), dec
    time.sleep(0.5)
    assert not sm.matching("offer.created", c3)
    q = d.api(m).get(f"/conversations/{c3}/queue")
    assert q.status_code == 200 and q.json()["queued"] is True and q.json()["position"] == 1, q.text
    r = d.api(m).post(f"/conversations/{c3}/claim")
    assert r.status_code == 200 and r.json()["conversation"]["assignee_id"] == m["agent_id"], r.text
    ev = sm.wait_event("conversation.assigned", c3)
    assert ev["data"]["via"] == "claimed", ev


# --------------------------------------------------------------------------------------------
# 7. transfer with a note


def test_transfer_to_agent_with_note(make_daemon, receiver, streams):
    d = router_daemon(make_daemon, receiver)
    admin = d.api(d.add_agent(role="admin"))
    a = d.add_agent(role="agent", team="desk")
    b = d.add_agent(role="agent", team="desk")
    sup = d.add_agent(role="supervisor", team="desk")
    aapi, bapi, sapi = d.api(a), d.api(b), d.api(sup)
    sa, sb = streams(d, a["token"]), streams(d, b["token"])
    sa.hello(), sb.hello()

    cid = inbound(d)
    wait_decision(admin, cid, lambda x: x["outcome"] == "queued", "queued (everyone offline)")
    set_presence(d, a, "online")
    sa.wait_event("offer.created", cid)
    assert aapi.post(f"/conversations/{cid}/accept").status_code == 200

    bad = [({"to_agent": b["agent_id"], "to_team": "desk"}, None), ({}, None), ({"note": "just a note"}, None),
           ({"to_agent": 42}, "to_agent"), ({"to_agent": "agt_nobody"}, "to_agent"), ({"to_team": "no-such-team"}, "to_team")]
    for body, mentions in bad:
        expect_error(aapi.post(f"/conversations/{cid}/transfer", body), 400, "bad_request", mentions)
    assert aapi.conversation(cid)["conversation"]["assignee_id"] == a["agent_id"], "a failed transfer changed the assignee"

    note = "Handing over: she prefers a callback after 4pm about the March invoice"
    r = aapi.post(f"/conversations/{cid}/transfer", {"to_agent": b["agent_id"], "note": note})
    assert r.status_code == 200, r.text
    assert r.json()["conversation"]["assignee_id"] == b["agent_id"], r.json()
    ev = sb.wait_event("conversation.assigned", cid)
    assert ev["data"]["agent_id"] == b["agent_id"] and ev["data"]["via"] == "transfer", ev
    ua = sa.wait_event("conversation.unassigned", cid)
    assert ua["data"]["agent_id"] == a["agent_id"], ua
    tr = sa.wait_event("conversation.transferred", cid)
    assert tr["data"]["from_agent_id"] == a["agent_id"] and tr["data"]["to_agent_id"] == b["agent_id"], tr

    msgs = bapi.conversation(cid)["messages"]
    notes = [x for x in msgs if x["direction"] == "note"]
    assert len(notes) == 1 and notes[0]["text"] == note and notes[0]["sender_agent_id"] == a["agent_id"], msgs
    dec = routing_log(bapi, cid)[-1]
    assert dec["trigger"] == "transferred" and dec["outcome"] == "assigned" and dec["rule"] == "transfer", dec
    assert dec["agent_id"] == b["agent_id"], dec

    # Now b's: invisible to a (role agent); the supervisor of the team may move it on.
    expect_error(aapi.get(f"/conversations/{cid}"), 404, "not_found")
    expect_error(aapi.post(f"/conversations/{cid}/transfer", {"to_agent": a["agent_id"]}), 404, "not_found")
    r = sapi.post(f"/conversations/{cid}/transfer", {"to_team": "desk"})
    assert r.status_code == 200 and r.json()["conversation"]["assignee_id"] is None, r.text

    # Notes: blank is 400; a note goes to the conversation, never to the patient.
    expect_error(bapi.post(f"/conversations/{cid}/notes", {"text": "   "}), 400, "bad_request")
    expect_error(bapi.post(f"/conversations/{cid}/notes", {}), 400, "bad_request", "text")
    r = bapi.post(f"/conversations/{cid}/notes", {"text": "Second internal note"})
    assert r.status_code == 201 and r.json()["message_id"], r.text
    texts = [x["text"] for x in admin.conversation(cid)["messages"] if x["direction"] == "note"]
    assert texts == [note, "Second internal note"], texts

    # A resolved conversation is not transferred.
    assert admin.post(f"/conversations/{cid}/resolve").status_code == 200
    expect_error(admin.post(f"/conversations/{cid}/transfer", {"to_agent": a["agent_id"]}), 409, "conflict")
    time.sleep(0.5)
    assert not [x for x in receiver.snapshot() if x.json and "March invoice" in json.dumps(x.json)], "a note reached the portal"


def test_claim_by_agent_the_router_has_not_seen_is_respected(make_daemon, receiver, streams):
    d = router_daemon(make_daemon, receiver, routing={"offer_timeout_seconds": 1, "lapses_before_away": 1})
    admin = d.api(d.add_agent(role="admin"))
    a = d.add_agent(role="agent")
    b = d.add_agent(role="agent")
    cid = inbound(d)
    wait_decision(admin, cid, lambda x: x["outcome"] == "queued", "queued (everyone offline)")
    assert d.api(a).claim(cid)["assignee_id"] == a["agent_id"]
    n = len(routing_log(admin, cid))
    set_presence(d, b, "online")
    time.sleep(2.5)  # past the 1 s offer timeout
    later = routing_log(admin, cid)[n:]
    assert not [x for x in later if x["outcome"] == "offered"], f"an assigned conversation was offered again: {later}"
    row = next(x for x in admin.get("/agents").json()["agents"] if x["id"] == b["agent_id"])
    assert row["presence"] == "online" and row["load"] == {}, row
    row = next(x for x in admin.get("/agents").json()["agents"] if x["id"] == a["agent_id"])
    assert row["load"] == {"portal": 1}, row


# --------------------------------------------------------------------------------------------
# 8. access-control matrix


class World:
    """One daemon with three callers and conversations in every relation to them."""

    def __init__(self, d: h.Daemon):
        self.d = d
        self.admin = d.add_agent(role="admin")
        self.agent = d.add_agent(role="agent", team="tee")
        self.other = d.add_agent(role="agent", team="tee")
        self.sup = d.add_agent(role="supervisor", team="tee")
        self.stranger = d.add_agent(role="agent", team="you")
        admin = d.api(self.admin)
        self.convs: dict[str, str] = {}

        def conv(key: str, team: Optional[str], assignee: Optional[dict]) -> None:
            cid = inbound(d)
            wait_decision(admin, cid, lambda x: x["outcome"] == "queued", f"{key} queued (everyone offline)")
            if team:
                r = admin.post(f"/conversations/{cid}/transfer", {"to_team": team})
                assert r.status_code == 200, r.text
            if assignee:
                r = admin.post(f"/conversations/{cid}/transfer", {"to_agent": assignee["agent_id"]})
                assert r.status_code == 200, r.text
            c = admin.conversation(cid)["conversation"]
            assert c["assignee_id"] == (assignee["agent_id"] if assignee else None), (key, c)
            assert (c["team_id"] is None) == (team is None), (key, c)
            self.convs[key] = cid

        conv("own", "tee", self.agent)
        conv("other_agent", "tee", self.other)
        conv("supervisor_own", "tee", self.sup)
        conv("unassigned_own_team", "tee", None)
        conv("unassigned_other_team", "you", None)
        conv("assigned_other_team", "you", self.stranger)
        conv("unassigned_no_team", None, None)
        conv("assigned_no_team", None, self.other)

    def caller(self, role: str) -> dict:
        return {"agent": self.agent, "supervisor": self.sup, "admin": self.admin}[role]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    receiver = h.Receiver().start()
    d = h.Daemon(tmp_path_factory.mktemp("acl"), outbound_url=receiver.url, overrides={"triage": {"enabled": False}})
    d.start()
    try:
        yield World(d)
    finally:
        d.cleanup()
        receiver.close()


# role, conversation, visible?  (the rule at the top of SwitchboardStore+Conversations.swift)
ACL = [
    ("agent", "own", True),
    ("agent", "other_agent", False),
    ("agent", "supervisor_own", False),
    ("agent", "unassigned_own_team", True),
    ("agent", "unassigned_other_team", False),
    ("agent", "assigned_other_team", False),
    ("agent", "unassigned_no_team", True),
    ("agent", "assigned_no_team", False),
    ("supervisor", "own", True),
    ("supervisor", "other_agent", True),
    ("supervisor", "supervisor_own", True),
    ("supervisor", "unassigned_own_team", True),
    ("supervisor", "unassigned_other_team", False),
    ("supervisor", "assigned_other_team", False),
    ("supervisor", "unassigned_no_team", True),
    ("supervisor", "assigned_no_team", True),
    ("admin", "own", True),
    ("admin", "other_agent", True),
    ("admin", "supervisor_own", True),
    ("admin", "unassigned_own_team", True),
    ("admin", "unassigned_other_team", True),
    ("admin", "assigned_other_team", True),
    ("admin", "unassigned_no_team", True),
    ("admin", "assigned_no_team", True),
]


@pytest.mark.parametrize("role,conv,visible", ACL, ids=[f"{r}-{c}" for r, c, _ in ACL])
def test_access_matrix(world, role, conv, visible):
    d = world.d
    caller = world.caller(role)
    api = d.api(caller)
    cid = world.convs[conv]
    denied_before = len(audit_rows(d, "conversation.access_denied", caller["agent_id"], cid))
    read_before = len(audit_rows(d, "conversation.read", caller["agent_id"], cid))

    r1 = api.get(f"/conversations/{cid}")
    r2 = api.get(f"/conversations/{cid}/routing")
    r3 = api.post(f"/conversations/{cid}/notes", {"text": f"note by {role}"})
    r4 = api.get(f"/conversations/{cid}/queue")
    if visible:
        assert r1.status_code == 200 and r1.json()["conversation"]["id"] == cid, r1.text
        assert r2.status_code == 200 and r2.json()["decisions"], r2.text
        assert r3.status_code == 201, r3.text
        assert r4.status_code == 200 and r4.json()["conversation_id"] == cid, r4.text
        assert len(audit_rows(d, "conversation.access_denied", caller["agent_id"], cid)) == denied_before
        assert len(audit_rows(d, "conversation.read", caller["agent_id"], cid)) >= read_before + 1
    else:
        for r in (r1, r2, r3, r4):
            expect_error(r, 404, "not_found")
        # Indistinguishable from an unknown id.
        unknown = api.get("/conversations/cnv_doesnotexist")
        assert unknown.status_code == 404 and unknown.json() == r1.json(), (unknown.text, r1.text)
        rows = audit_rows(d, "conversation.access_denied", caller["agent_id"], cid)
        assert len(rows) == denied_before + 4, rows
        assert all(x[0] == "agent" and x[4] for x in rows), rows  # with the source address
        assert len(audit_rows(d, "conversation.read", caller["agent_id"], cid)) == read_before


def test_access_matrix_list_matches(world):
    """The list endpoint applies the same rule as the single reads."""
    for role in ("agent", "supervisor", "admin"):
        listed = {c["id"] for c in world.d.api(world.caller(role)).list(status="any", assignee="any")}
        for r, conv, visible in ACL:
            if r == role:
                assert (world.convs[conv] in listed) == visible, (role, conv, visible)


# --------------------------------------------------------------------------------------------
# 9. presence


def test_presence_set_by_supervisor_not_by_agent(make_daemon, receiver, streams):
    d = router_daemon(make_daemon, receiver)
    sup = d.add_agent(role="supervisor", team="ward")
    a = d.add_agent(role="agent", team="ward")
    b = d.add_agent(role="agent", team="ward")
    sapi, aapi = d.api(sup), d.api(a)
    ss, sa = streams(d, sup["token"]), streams(d, a["token"])
    ss.hello(), sa.hello()

    me = aapi.get("/me")
    assert me.status_code == 200 and me.json()["agent"]["presence"] == "offline", me.text
    assert me.json()["agent"]["id"] == a["agent_id"] and me.json()["agent"]["teams"] == ["ward"], me.json()

    r = sapi.put(f"/agents/{a['agent_id']}/presence", {"presence": "online"})
    assert r.status_code == 200, r.text
    assert r.json()["agent"]["presence"] == "online" and r.json()["agent"]["presence_changed_at"], r.json()
    assert aapi.get("/me").json()["agent"]["presence"] == "online"
    ev = sa.wait_event("agent.presence", agent_id=a["agent_id"], presence="online")
    assert ev["data"]["reason"] == "set by a supervisor", ev
    ss.wait_event("agent.presence", agent_id=a["agent_id"], presence="online")

    expect_error(aapi.put(f"/agents/{b['agent_id']}/presence", {"presence": "online"}), 403, "forbidden", "supervisor")
    expect_error(aapi.put(f"/agents/{a['agent_id']}/presence", {"presence": "away"}), 403, "forbidden", "supervisor")
    expect_error(aapi.get("/agents"), 403, "forbidden", "supervisor")
    assert d.api(b).get("/me").json()["agent"]["presence"] == "offline"
    expect_error(sapi.put("/agents/agt_nosuchagent/presence", {"presence": "online"}), 404, "not_found")
    expect_error(sapi.put(f"/agents/{b['agent_id']}/presence", {"presence": "busy"}), 400, "bad_request", "presence")
    expect_error(aapi.put("/me/presence", {"presence": "busy"}), 400, "bad_request", "presence")
    expect_error(aapi.put("/me/presence", {}), 400, "bad_request", "presence")

    agents = {x["id"]: x for x in sapi.get("/agents").json()["agents"]}
    assert agents[a["agent_id"]]["presence"] == "online" and agents[b["agent_id"]]["presence"] == "offline", agents

    # Going away withdraws a pending offer.
    cid = inbound(d)
    sa.wait_event("offer.created", cid)
    set_presence(d, a, "away")
    ended = sa.wait_event("offer.ended", cid)
    assert ended["data"]["reason"] == "agent_away", ended


def test_idle_agent_goes_away_active_one_stays(make_daemon, receiver, streams):
    d = router_daemon(make_daemon, receiver, routing={"idle_away_seconds": 1})
    sup = d.add_agent(role="supervisor", team="night")
    idle = d.add_agent(role="agent", team="night")
    busy = d.add_agent(role="agent", team="night")
    sapi = d.api(sup)
    ss = streams(d, sup["token"])
    ss.hello()

    def presence_of(agent_id: str) -> str:
        r = sapi.get("/agents")  # the supervisor's calls are not the agents' activity
        assert r.status_code == 200, r.text
        return next(x["presence"] for x in r.json()["agents"] if x["id"] == agent_id)

    t0 = time.monotonic()
    set_presence(d, idle, "online")
    set_presence(d, busy, "online")
    stop = threading.Event()
    errors: list = []

    def keep_busy():
        bapi = d.api(busy)
        while not stop.is_set():
            try:
                assert bapi.get("/me").status_code == 200
            except Exception as e:  # noqa: BLE001
                errors.append(e)
            stop.wait(0.2)
    t = threading.Thread(target=keep_busy, daemon=True)
    t.start()
    try:
        wait_until(lambda: presence_of(idle["agent_id"]) == "away", 6, 0.1, "idle agent set away")
        elapsed = time.monotonic() - t0
        assert elapsed >= 0.9, f"set away after {elapsed:.2f}s, before routing.idle_away_seconds"
        ev = ss.wait_event("agent.presence", agent_id=idle["agent_id"], presence="away")
        assert ev["data"]["reason"] == "idle", ev
        time.sleep(max(0.0, 2.5 - (time.monotonic() - t0)))
        assert presence_of(busy["agent_id"]) == "online", "GET /me did not count as activity"
    finally:
        stop.set()
        t.join(5)
    assert not errors, errors
    assert d.api(idle).get("/me").json()["agent"]["presence"] == "away"


# --------------------------------------------------------------------------------------------
# 10. emergency, triage on


def test_emergency_is_offered_to_clinical_only(daemon, streams):
    d = daemon  # default config: triage enabled
    admin = d.api(d.add_agent(role="admin"))
    clin = d.add_agent(role="agent", team="clinical")
    desk = d.add_agent(role="agent", team="front-desk")
    for ag in (clin, desk):
        set_presence(d, ag, "online")
    sc, sd = streams(d, clin["token"]), streams(d, desk["token"])
    sc.hello(), sd.hello()

    cid = inbound(d, "my father has crushing chest pain and can't breathe")
    offer = sc.wait_event("offer.created", cid, timeout=TRIAGE_TIMEOUT)
    assert offer["data"]["priority"] == "emergency", offer
    conv = admin.conversation(cid)["conversation"]
    assert conv["priority"] == "emergency" and conv["team_id"] == team_id(admin, "clinical"), conv
    dec = routing_log(admin, cid)
    assert dec[0]["outcome"] == "offered" and dec[0]["agent_id"] == clin["agent_id"], dec
    assert all(candidate(x, desk["agent_id"]) is None for x in dec), f"front-desk agent considered: {dec}"

    time.sleep(1.0)
    assert not sd.matching("offer.created", cid), "the front-desk agent was offered the emergency"
    expect_error(d.api(desk).get(f"/conversations/{cid}"), 404, "not_found")
    r = d.api(clin).post(f"/conversations/{cid}/accept")
    assert r.status_code == 200 and r.json()["conversation"]["assignee_id"] == clin["agent_id"], r.text


def test_routine_message_waits_for_triage_then_routes(daemon, streams):
    d = daemon
    a = d.add_agent(role="agent")
    set_presence(d, a, "online")
    s = streams(d, a["token"])
    s.hello()
    cid = inbound(d, "Can I get a refill of my lisinopril sent to the pharmacy?")
    offer = s.wait_event("offer.created", cid, timeout=TRIAGE_TIMEOUT)
    assert offer["data"]["priority"] == "normal", offer
    detail = d.api(a).conversation(cid)
    assert detail["messages"][0].get("triage"), "offered before triage"


# --------------------------------------------------------------------------------------------
# 11. PHI stays out of the log


def test_no_phi_in_daemon_log(daemon, receiver, streams):
    d = daemon
    admin = d.api(d.add_agent(role="admin"))
    a = d.add_agent(role="agent", team="phi-team")
    b = d.add_agent(role="agent", team="phi-team")
    outsider = d.add_agent(role="agent", team="elsewhere")
    set_presence(d, a, "online")
    s = streams(d, a["token"])
    s.hello()

    cid = inbound(d, PHI_TEXT, name=PHI_NAME, phone=PHI_PHONE, email=PHI_EMAIL)
    s.wait_event("offer.created", cid, timeout=TRIAGE_TIMEOUT)
    api = d.api(a)
    assert api.post(f"/conversations/{cid}/accept").status_code == 200
    detail = api.conversation(cid)
    assert detail["contact"]["name"] == PHI_NAME
    assert {"kind": "phone", "value": PHI_PHONE_E164} in detail["contact"]["identities"], detail["contact"]
    note = "Zebulon's pump: Kilimanjaro altitude, call 555-013-4477"
    assert api.post(f"/conversations/{cid}/notes", {"text": note}).status_code == 201
    mid = api.reply(cid, "Hi Zebulon, please remove the insulin pump cannula and call us")
    receiver.wait_accepted([mid])
    r = api.post(f"/conversations/{cid}/transfer", {"to_agent": b["agent_id"], "note": "Zebulon Quimby-Hartwright callback"})
    assert r.status_code == 200, r.text
    expect_error(d.api(outsider).get(f"/conversations/{cid}"), 404)
    assert d.api(b).get(f"/conversations/{cid}/routing").status_code == 200
    assert admin.post(f"/conversations/{cid}/resolve").status_code == 200
    time.sleep(0.5)

    log = d.log_text()
    assert "offer accepted" in log and "conversation transferred" in log, "the scenario did not reach the log"
    assert_no_phi([log], PHI_NEEDLES + [PHI_PHONE_E164, PHI_EMAIL], "the daemon log")
    assert_no_phi(s.raw, PHI_NEEDLES, "event frames")


# --------------------------------------------------------------------------------------------
# more routing behaviour


def test_sticky_routing_and_reply_takes_over_an_offer(make_daemon, receiver, streams):
    d = router_daemon(make_daemon, receiver)
    admin = d.api(d.add_agent(role="admin"))
    x = d.add_agent(role="agent")
    y = d.add_agent(role="agent")
    for ag in (x, y):
        set_presence(d, ag, "online")
    sx, sy = streams(d, x["token"]), streams(d, y["token"])
    sx.hello(), sy.hello()
    agents = {x["agent_id"]: (x, sx), y["agent_id"]: (y, sy)}

    pid = uid("P-")
    c1 = inbound(d, patient_id=pid)
    first = wait_decision(admin, c1, lambda z: z["outcome"] == "offered", "c1 offered")["agent_id"]
    other = next(i for i in agents if i != first)
    fa, fs = agents[first]
    assert d.api(fa).post(f"/conversations/{c1}/accept").status_code == 200
    assert d.api(fa).post(f"/conversations/{c1}/resolve").status_code == 200

    # The same patient writes again (a new thread): the previous agent is preferred, although the
    # other one was assigned less recently.
    c2 = inbound(d, patient_id=pid)
    assert c2 != c1
    dec = wait_decision(admin, c2, lambda z: z["outcome"] == "offered", "c2 offered")
    assert dec["agent_id"] == first and dec["rule"] == "sticky", dec
    assert candidate(dec, other)["reasons"] == ["not chosen by sticky"], dec

    # The other agent answers it meanwhile: the offer ends for the first, the reply takes it over.
    oa, os_ = agents[other]
    fs.wait_event("offer.created", c2)
    d.api(oa).reply(c2, "I can help with that")
    ended = fs.wait_event("offer.ended", c2)
    assert ended["data"]["reason"] == "taken by another agent", ended
    ev = os_.wait_event("conversation.assigned", c2)
    assert ev["data"]["agent_id"] == other and ev["data"]["via"] == "replied", ev
    expect_error(d.api(fa).post(f"/conversations/{c2}/accept"), 404, "not_found")
    assert admin.conversation(c2)["conversation"]["assignee_id"] == other


def test_offline_hands_back_only_unanswered_conversations(make_daemon, receiver, streams):
    d = router_daemon(make_daemon, receiver)
    admin = d.api(d.add_agent(role="admin"))
    a = d.add_agent(role="agent")
    b = d.add_agent(role="agent")
    set_presence(d, a, "online")
    sa, sb = streams(d, a["token"]), streams(d, b["token"])
    sa.hello(), sb.hello()
    api = d.api(a)
    unanswered, answered = inbound(d), inbound(d)
    for cid in (unanswered, answered):
        sa.wait_event("offer.created", cid)
        assert api.post(f"/conversations/{cid}/accept").status_code == 200
    api.reply(answered, "Thanks, looking into it")
    set_presence(d, b, "online")
    time.sleep(0.3)  # let the router take in the reply's signal before the presence change below
    set_presence(d, a, "offline")

    ev = sa.wait_event("conversation.unassigned", unanswered)
    assert ev["data"]["agent_id"] == a["agent_id"] and "first reply" in ev["data"]["reason"], ev
    sb.wait_event("offer.created", unanswered)
    dec = wait_decision(admin, unanswered, lambda z: z["trigger"] == "handed_back", "handed back")
    assert dec["agent_id"] == b["agent_id"] and "offline" in candidate(dec, a["agent_id"])["reasons"], dec
    time.sleep(0.5)
    assert admin.conversation(answered)["conversation"]["assignee_id"] == a["agent_id"]
    assert not sa.matching("conversation.unassigned", answered)


def test_pending_offer_and_assignment_survive_a_restart(make_daemon, receiver, streams):
    d = router_daemon(make_daemon, receiver)
    admin = d.api(d.add_agent(role="admin"))
    a = d.add_agent(role="agent")
    set_presence(d, a, "online")
    s = streams(d, a["token"])
    s.hello()
    held, offered = inbound(d), inbound(d)
    s.wait_event("offer.created", held)
    assert d.api(a).post(f"/conversations/{held}/accept").status_code == 200
    s.wait_event("offer.created", offered)
    last = s.events()[-1]["seq"]
    d.stop()
    assert s.wait_closed() == 1000, (s.close_code, s.close_reason)  # shutdown closes the stream
    d.start()

    row = next(x for x in admin.get("/agents").json()["agents"] if x["id"] == a["agent_id"])
    assert row["presence"] == "online" and row["load"] == {"portal": 2}, row
    r = d.api(a).post(f"/conversations/{offered}/accept")
    assert r.status_code == 200, f"the offer made before the restart is gone: {r.text}"
    s2 = streams(d, a["token"], after=last)
    assert s2.hello()["seq"] == last
    s2.wait_event("conversation.assigned", offered, via="accepted")
    assert not s2.matching("offer.created", held) and not s2.matching("offer.created", offered)


@pytest.mark.slow
def test_first_response_breach_escalates_and_opens_the_overflow(make_daemon, receiver, streams):
    d = router_daemon(make_daemon, receiver, routing={"sla_first_response_normal_seconds": 10})
    admin = d.api(d.add_agent(role="admin"))
    sup = d.add_agent(role="supervisor", team="primary")
    helper = d.add_agent(role="agent", team="overflow")
    plain = d.add_agent(role="agent", team="primary")
    assert admin.put("/teams/overflow", {}).status_code == 200
    r = admin.put("/teams/primary", {"overflow": "overflow"})
    assert r.status_code == 200 and r.json()["team"]["overflow"] == f"team:{team_id(admin, 'overflow')}", r.text
    ss, sh, sp = streams(d, sup["token"]), streams(d, helper["token"]), streams(d, plain["token"])
    for x in (ss, sh, sp):
        x.hello()

    cid = inbound(d)
    wait_decision(admin, cid, lambda z: z["outcome"] == "queued", "queued")
    assert admin.post(f"/conversations/{cid}/transfer", {"to_team": "primary"}).status_code == 200
    set_presence(d, helper, "online")
    time.sleep(1)
    assert not sh.matching("offer.created", cid), "offered outside its team before the breach"

    warn = ss.wait_event("sla.warning", cid, timeout=12, sla="first_response")
    breach = ss.wait_event("sla.breached", cid, timeout=6, sla="first_response")
    assert warn["seq"] < breach["seq"] and warn["data"]["due_at"] == breach["data"]["due_at"]
    esc = ss.wait_event("conversation.escalated", cid, timeout=5)
    assert esc["data"]["priority"] == "urgent" and esc["data"]["widened_to"].startswith("team:"), esc
    offer = sh.wait_event("offer.created", cid, timeout=5)
    assert offer["data"]["priority"] == "urgent", offer
    dec = wait_decision(admin, cid, lambda z: z["trigger"] == "escalated", "escalated decision")
    assert dec["outcome"] == "offered" and dec["agent_id"] == helper["agent_id"], dec
    assert admin.conversation(cid)["conversation"]["priority"] == "urgent"
    # Escalations are for supervisors: the plain agent of the team does not get it.
    assert not sp.matching("conversation.escalated")
    assert audit_rows(d, "sla.first_response.breached", cid=cid)


# --------------------------------------------------------------------------------------------
# agents created and deactivated over the API; supervisors' scope; delivery-status events


def test_admin_creates_and_deactivates_an_agent(make_daemon, receiver, streams):
    d = router_daemon(make_daemon, receiver)
    admin = d.add_agent(role="admin")
    api = d.api(admin)
    expect_error(d.api(d.add_agent(role="supervisor")).post("/agents", {"name": "X", "email": "x@clinic.example"}), 403, "forbidden")
    expect_error(api.post("/agents", {"email": "no.name@clinic.example"}), 400, "bad_request", "name")
    expect_error(api.post("/agents", {"name": "Q", "email": "q@clinic.example", "capacity": {"portal": True}}), 400,
                 "bad_request", "capacity.portal")
    r = api.post("/agents", {"name": "Ana Ruiz", "email": "ana.api@clinic.example", "teams": ["api-team"],
                             "languages": ["en", "es"], "capacity": {"portal": 1}})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["token"].startswith("sbt_") and created["agent"]["presence"] == "offline", created
    assert created["agent"]["teams"] == ["api-team"] and created["agent"]["capacity"] == {"portal": 1}, created
    expect_error(api.post("/agents", {"name": "Again", "email": "ANA.api@clinic.example"}), 409, "conflict")

    # The new token works at once, and the router knows the agent: it gets the next conversation.
    ana = {"token": created["token"], "agent_id": created["agent"]["id"]}
    set_presence(d, ana, "online")
    s = streams(d, ana["token"])
    s.hello()
    cid = inbound(d)
    s.wait_event("offer.created", cid)
    assert d.api(ana).post(f"/conversations/{cid}/accept").status_code == 200

    # Deactivated: token refused, conversation back in the queue, agent gone from the list.
    expect_error(api.delete(f"/agents/{admin['agent_id']}"), 409, "conflict")
    r = api.delete(f"/agents/{ana['agent_id']}")
    assert r.status_code == 204, r.text
    assert d.api(ana).get("/me").status_code == 401
    wait_until(lambda: api.conversation(cid)["conversation"]["assignee_id"] is None, 5, what="conversation handed back")
    assert ana["agent_id"] not in [x["id"] for x in api.get("/agents").json()["agents"]]
    expect_error(api.delete(f"/agents/{ana['agent_id']}"), 404, "not_found")


def test_supervisor_tunes_only_their_teams_agents(make_daemon, receiver):
    d = router_daemon(make_daemon, receiver)
    boss = d.api(d.add_agent(role="supervisor", team="north"))
    mine = d.add_agent(role="agent", team="north")
    other = d.add_agent(role="agent", team="south")
    r = boss.patch(f"/agents/{mine['agent_id']}", {"skills": ["billing"], "capacity": {"sms": 2}})
    assert r.status_code == 200, r.text
    assert r.json()["agent"]["skills"] == ["billing"] and r.json()["agent"]["capacity"] == {"sms": 2}
    expect_error(boss.patch(f"/agents/{mine['agent_id']}", {"role": "admin"}), 403, "forbidden", "admin")
    expect_error(boss.patch(f"/agents/{mine['agent_id']}", {"teams": ["south"]}), 403, "forbidden")
    expect_error(boss.patch(f"/agents/{other['agent_id']}", {"skills": ["x"]}), 403, "forbidden", "own teams")
    expect_error(d.api(mine).patch(f"/agents/{mine['agent_id']}", {"skills": ["x"]}), 403, "forbidden")


def online_agent(d: h.Daemon, streams, role: str = "agent"):
    """A new agent, online, with its API client and an event stream past its hello frame."""
    a = d.add_agent(role=role)
    set_presence(d, a, "online")
    s = streams(d, a["token"])
    s.hello()
    return a, d.api(a), s


def test_delivery_status_reaches_the_agent(make_daemon, receiver, streams):
    d = router_daemon(make_daemon, receiver)
    a, api, s = online_agent(d, streams)
    patient, thread = uid("P-"), uid("T-")
    cid = inbound(d, patient_id=patient, thread_id=thread)
    s.wait_event("offer.created", cid)
    assert api.post(f"/conversations/{cid}/accept").status_code == 200
    r = api.post(f"/conversations/{cid}/messages", {"text": "We can see you Thursday."})
    assert r.status_code == 202, r.text
    message_id = r.json()["message_id"]
    sent = s.wait_event("message.created", cid, direction="outbound")
    assert sent["data"]["message_id"] == message_id, sent
    status = s.wait_event("message.status", cid)  # the loopback portal receiver takes it
    assert status["data"] == {"conversation_id": cid, "message_id": message_id, "status": "delivered"}, status

    # The SLA fields: first reply due (normal: 4 h after the message), then met.
    conv = api.conversation(cid)["conversation"]
    created = parse_time(conv["created_at"])
    due = parse_time(conv["first_response_due_at"])
    assert 4 * 3600 - 5 <= (due - created).total_seconds() <= 4 * 3600 + 5, conv
    assert conv["first_response_at"] is not None and conv["next_response_due_at"] is None, conv
    # The patient writes again in the same thread: the next reply is due (normal: 8 h).
    again = inbound(d, "Thanks, and one more question", patient_id=patient, thread_id=thread)
    assert again == cid
    wait_until(lambda: api.conversation(cid)["conversation"]["next_response_due_at"] is not None, ROUTE_TIMEOUT,
               what="next_response_due_at set")
    conv = api.conversation(cid)["conversation"]
    wait = (parse_time(conv["next_response_due_at"]) - parse_time(conv["last_message_at"])).total_seconds()
    assert 8 * 3600 - 5 <= wait <= 8 * 3600 + 5, conv

