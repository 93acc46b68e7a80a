"""The agent console's sign-in and files: password sessions (HttpOnly, SameSite=Strict
cookie), CSRF on unsafe methods, idle expiry, guessing slowed, the event stream over the
cookie only from the daemon's own origin, and the files' security headers."""

from __future__ import annotations

import subprocess
import time

import requests
import websocket

import switchboard_harness as h

PASSWORD = "correct horse battery staple"


def with_password(daemon, role: str = "agent") -> dict:
    agent = daemon.add_agent(role=role)
    cp = subprocess.run([str(h.cli_bin()), "--config", str(daemon.config_path), "agent", "set-password", agent["email"]],
                        input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, env=h.clean_env(),
                        cwd=daemon.workdir)
    assert cp.returncode == 0, cp.stderr
    assert PASSWORD not in cp.stdout + cp.stderr
    return agent


def sign_in(daemon, email: str, password: str = PASSWORD) -> requests.Response:
    return requests.post(daemon.url + "/api/v1/session", json={"email": email, "password": password}, timeout=30)


def test_password_sign_in_gives_a_cookie_session_with_csrf(make_daemon):
    d = make_daemon()
    agent = with_password(d)
    wrong = sign_in(d, agent["email"], "not the password")
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "sign_in_failed"
    unknown = sign_in(d, "nobody@clinic.example")
    assert unknown.status_code == 401 and unknown.json() == wrong.json()  # no hint which was wrong

    r = sign_in(d, agent["email"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["agent"]["id"] == agent["agent_id"] and len(body["csrf_token"]) >= 20
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("sb_session=sbs_") and "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; behind a TLS proxy it is added
    session = requests.Session()
    session.cookies.set("sb_session", r.cookies["sb_session"])

    assert session.get(d.url + "/api/v1/conversations", timeout=10).status_code == 200
    me = session.get(d.url + "/api/v1/session", timeout=10).json()
    assert me["csrf_token"] == body["csrf_token"]
    # An unsafe method with only the cookie (what a forged cross-site form would send) is refused.
    forged = session.put(d.url + "/api/v1/me/presence", json={"presence": "online"}, timeout=10)
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "csrf"
    wrong_token = session.put(d.url + "/api/v1/me/presence", json={"presence": "online"},
                              headers={"X-CSRF-Token": "x" * 32}, timeout=10)
    assert wrong_token.status_code == 403
    ok = session.put(d.url + "/api/v1/me/presence", json={"presence": "online"},
                     headers={"X-CSRF-Token": body["csrf_token"]}, timeout=10)
    assert ok.status_code == 200 and ok.json()["agent"]["presence"] == "online"

    out = session.delete(d.url + "/api/v1/session", headers={"X-CSRF-Token": body["csrf_token"]}, timeout=10)
    assert out.status_code == 204 and "Max-Age=0" in out.headers["Set-Cookie"]
    after = requests.get(d.url + "/api/v1/conversations", cookies={"sb_session": r.cookies["sb_session"]}, timeout=10)
    assert after.status_code == 401 and after.json()["error"]["code"] == "session_expired"
    log = d.log_text()
    assert PASSWORD not in log and r.cookies["sb_session"] not in log and body["csrf_token"] not in log


def test_an_api_token_signs_in_too_and_bearer_requests_need_no_csrf(make_daemon):
    d = make_daemon()
    agent = d.add_agent(role="agent")
    r = requests.post(d.url + "/api/v1/session", json={"token": agent["token"]}, timeout=10)
    assert r.status_code == 201 and "sb_session=" in r.headers["Set-Cookie"]
    bearer = d.api(agent)
    assert bearer.put("/me/presence", {"presence": "away"}).status_code == 200
    assert "csrf_token" not in bearer.get("/session").json()
    assert requests.post(d.url + "/api/v1/session", json={"token": "sbt_forged"}, timeout=10).status_code == 401
    bad = requests.post(d.url + "/api/v1/session", json={"user": "x"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "missing_field"


def test_sessions_end_when_idle(make_daemon):
    d = make_daemon(overrides={"chat": {"console_idle_timeout_seconds": 60}})
    agent = with_password(d)
    r = sign_in(d, agent["email"])
    assert r.status_code == 201
    cookie = {"sb_session": r.cookies["sb_session"]}
    assert requests.get(d.url + "/api/v1/session", cookies=cookie, timeout=10).status_code == 200
    # Move the session's last activity back in time, as if the agent had walked away.
    d.stop()
    import sqlite3
    db = sqlite3.connect(d.config["store"]["path"])
    db.execute("UPDATE console_sessions SET last_seen_at = last_seen_at - 61000")
    db.commit()
    db.close()
    d.start()
    expired = requests.get(d.url + "/api/v1/session", cookies=cookie, timeout=10)
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "session_expired"


def test_guessing_passwords_is_slowed_per_address(make_daemon):
    d = make_daemon()
    agent = with_password(d)
    for _ in range(10):
        assert sign_in(d, agent["email"], "guess").status_code == 401
    blocked = sign_in(d, agent["email"])  # even the right password, for a while
    assert blocked.status_code == 429 and blocked.json()["error"]["code"] == "too_many_attempts"
    assert 0 < int(blocked.headers["Retry-After"]) <= 300


def test_the_event_stream_accepts_the_cookie_only_from_the_daemons_own_pages(make_daemon):
    d = make_daemon()
    agent = with_password(d)
    cookie = "sb_session=" + sign_in(d, agent["email"]).cookies["sb_session"]
    url = f"ws://127.0.0.1:{d.port}/api/v1/events"
    own = websocket.create_connection(url, header=[f"Cookie: {cookie}"], origin=f"http://127.0.0.1:{d.port}", timeout=10)
    import json
    hello = json.loads(own.recv())
    assert hello["type"] == "hello" and hello["agent_id"] == agent["agent_id"]
    own.close()
    foreign = websocket.create_connection(url, header=[f"Cookie: {cookie}"], origin="https://evil.example", timeout=10)
    opcode, data = foreign.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(data[:2], "big") == 4401


def test_the_console_and_widget_files_are_served_with_security_headers(make_daemon):
    d = make_daemon()
    widget = requests.get(d.url + "/widget.js", timeout=10)
    assert widget.status_code == 200 and widget.headers["Content-Type"].startswith("text/javascript")
    assert widget.headers["X-Content-Type-Options"] == "nosniff"
    assert "SwitchboardChat" in widget.text and "innerHTML" not in widget.text
    again = requests.get(d.url + "/widget.js", headers={"If-None-Match": widget.headers["ETag"]}, timeout=10)
    assert again.status_code == 304 and again.content == b""
    console = requests.get(d.url + "/console", timeout=10)
    assert console.status_code == 200 and console.headers["Content-Type"].startswith("text/html")
    policy = console.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert console.headers["X-Frame-Options"] == "DENY"
    script = requests.get(d.url + "/console/console.js", timeout=10)
    assert script.status_code == 200 and "innerHTML" not in script.text
    assert requests.get(d.url + "/console/console.css", timeout=10).headers["Content-Type"].startswith("text/css")
    disabled = make_daemon(name="nochat", overrides={"chat": {"enabled": False}})
    assert requests.get(disabled.url + "/widget.js", timeout=10).status_code == 404
