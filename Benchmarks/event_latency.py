"""Benchmark (not a test): time from a signed portal webhook to the agent's WebSocket event.

Starts switchboardd (SWITCHBOARD_BIN_DIR, release build by `make bench`), puts agents online,
then sends signed webhooks — each a new patient, so a new conversation — at a steady rate
and measures, per webhook, the time from sending it to the agent receiving
`message.created` (committed and pushed) and `offer.created` (triaged, routed and pushed).

    SWITCHBOARD_BIN_DIR=.build/release .venv/bin/python Benchmarks/event_latency.py [rate] [seconds]
"""
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import requests  # noqa: E402
import websocket  # noqa: E402
from switchboard_harness import Daemon, portal_event, post_webhook  # noqa: E402

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
RATE = float(ARGS[0]) if ARGS else 50.0
SECONDS = float(ARGS[1]) if len(ARGS) > 1 else 20.0
AGENTS = 4


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        daemon = Daemon(Path(tmp), overrides={"log": {"level": "warning"}, **({"triage": {"enabled": False}} if "--no-triage" in sys.argv else {})})
        daemon.start()
        try:
            sent: dict[str, float] = {}
            received: dict[str, dict[str, float]] = {"message.created": {}, "offer.created": {}}
            lock = threading.Lock()
            sockets = []
            for _ in range(AGENTS):
                agent = daemon.add_agent(role="agent")
                auth = {"Authorization": "Bearer " + agent["token"]}
                online = requests.put(f"{daemon.url}/api/v1/me/presence", json={"presence": "online"}, headers=auth, timeout=5)
                assert online.status_code == 200, online.text
                ws = websocket.create_connection(daemon.url.replace("http", "ws") + "/api/v1/events", header=auth, timeout=60)
                ws.recv()  # hello
                sockets.append((ws, auth))
            # Raise capacity so that offers never stop for lack of it (offers are not accepted here).
            admin = daemon.add_agent(role="admin")
            for _, auth in sockets:
                me = requests.get(f"{daemon.url}/api/v1/me", headers=auth, timeout=5).json()["agent"]
                r = requests.patch(f"{daemon.url}/api/v1/agents/{me['id']}", json={"capacity": {"portal": 1000}},
                                   headers={"Authorization": "Bearer " + admin["token"]}, timeout=5)
                assert r.status_code == 200, r.text

            def reader(ws):
                while True:
                    try:
                        frame = ws.recv()
                    except Exception:
                        return
                    now = time.perf_counter()
                    if not frame:
                        return  # closed
                    event = json.loads(frame)
                    kind = event.get("kind")
                    if kind in received:
                        with lock:
                            received[kind].setdefault(event["data"]["conversation_id"], now)

            threads = [threading.Thread(target=reader, args=(ws,), daemon=True) for ws, _ in sockets]
            for t in threads:
                t.start()
            session = requests.Session()
            signer = daemon.signer
            # Warm-up (excluded): the triage classifier trains for ~0.5 s after start, and the
            # first webhooks would measure that instead of the steady state.
            for _ in range(int(RATE)):
                post_webhook(daemon.url, signer, portal_event(text="warm-up"), session=session)
                time.sleep(1 / RATE)
            time.sleep(1)
            total = int(RATE * SECONDS)
            start = time.perf_counter()
            for i in range(total):
                due = start + i / RATE
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                t0 = time.perf_counter()
                r = post_webhook(daemon.url, signer, portal_event(text="I need to reschedule my appointment next week"),
                                 session=session)
                assert r.status_code == 202, r.text
                sent[r.json()["conversation_id"]] = t0
            time.sleep(3)
            print(f"rate {RATE:.0f}/s for {SECONDS:.0f} s: {len(sent)} webhooks, {AGENTS} agents online")
            for kind, times in received.items():
                lat = [(times[c] - t0) * 1000 for c, t0 in sent.items() if c in times]
                missing = len(sent) - len(lat)
                if lat and "--detail" in sys.argv:
                    order = sorted(sent, key=sent.get)
                    slow = sorted(((times[c] - sent[c]) * 1000, order.index(c)) for c in sent if c in times)[-8:]
                    print(f"  slowest ({kind}): " + ", ".join(f"#{i}: {ms:.0f} ms" for ms, i in slow))
                if lat:
                    print(f"  webhook → {kind}: p50 {percentile(lat, 0.5):.1f} ms, p99 {percentile(lat, 0.99):.1f} ms, "
                          f"max {max(lat):.1f} ms; missing {missing}")
                else:
                    print(f"  webhook → {kind}: none received")
            for ws, _ in sockets:
                ws.close()
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
