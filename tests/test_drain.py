"""SIGTERM stops intake first: during http.drain_seconds the listener stays open, /readyz says
"draining" and intake is answered 503 with Retry-After (nothing stored), then the daemon
finishes in-flight work and exits 0."""
from __future__ import annotations

import signal
import sqlite3
import time

import requests

import switchboard_harness as h
from switchboard_harness import portal_event, uid


def test_sigterm_drains_before_closing(make_daemon):
    d = make_daemon(overrides={"http": {"drain_seconds": 3}})
    assert requests.get(d.url + "/readyz", timeout=5).json()["status"] == "ready"
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    h.wait_until(lambda: requests.get(d.url + "/readyz", timeout=5).status_code == 503, 5, what="readyz 503")
    assert requests.get(d.url + "/readyz", timeout=5).json()["status"] == "draining"
    assert requests.get(d.url + "/healthz", timeout=5).status_code == 200
    event = portal_event(uid("P-"), "sent while draining")
    r = d.webhook(event)
    assert r.status_code == 503 and r.headers.get("Retry-After") == "5", (r.status_code, r.headers, r.text)
    assert h.error_shape_ok(r) and "shutting down" in r.json()["error"]["message"]
    assert 'msg="shutdown requested; draining"' in d.log_text()
    rc = d.proc.wait(timeout=20)
    took = time.monotonic() - t0
    assert rc == 0 and 2.5 <= took < 15, (rc, took)
    # Nothing of the refused webhook was stored: the sender's retry will be the first copy.
    db = sqlite3.connect(f"file:{d.config['store']['path']}?mode=ro", uri=True)
    assert db.execute("SELECT count(*) FROM messages WHERE external_id = ?", (event["message"]["id"],)).fetchone()[0] == 0
    db.close()


def test_second_signal_skips_the_drain(make_daemon):
    d = make_daemon(overrides={"http": {"drain_seconds": 30}})
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    h.wait_until(lambda: requests.get(d.url + "/readyz", timeout=5).status_code == 503, 5, what="draining")
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=15) == 0
    assert time.monotonic() - t0 < 12
