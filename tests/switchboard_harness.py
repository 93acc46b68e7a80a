"""Test harness for the Switchboard black-box integration tests.

Everything here talks to the real binaries over real sockets on 127.0.0.1:

* ``Daemon``      -- writes a config YAML into a fresh directory, starts ``switchboardd``,
                     captures stdout/stderr to files there, waits for ``/readyz``;
                     ``stop()`` (SIGTERM), ``kill9()``, ``start()`` (same DB, same port).
* ``Signer``      -- Standard Webhooks signing/verification, written here with hmac/hashlib/base64.
* ``Receiver``    -- a local HTTP server (http.server in a thread) standing in for the portal's
                     outbound endpoint; records every request, verifies its signature, can answer
                     with failures on demand, and can be stopped/started on the same port.
* ``Api``         -- a thin client for the agent REST API.
* helpers         -- ``free_port``, ``wait_until``, ``portal_event``, ``post_webhook``, ``add_agent``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import requests

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent

HTTP_TIMEOUT = 10.0  # seconds, for every single HTTP request the tests make
READY_TIMEOUT = 30.0  # seconds for the daemon to answer /readyz
CLI_TIMEOUT = 30.0


def answer_close_best_effort(ws: Any) -> None:
    """Makes a websocket-client connection's reply to the server's close frame best-effort.

    websocket-client answers a close frame from inside ``recv``, before it returns the frame.
    When the server has already closed the socket by then (seen once while the daemon was
    stopping), the send raises and the frame, with the close code the test checks, never
    reaches the caller. The reply is a courtesy; the code is what the server said."""
    import websocket  # websocket-client; imported here so that tests without it still load

    send_close = ws.send_close

    def send_close_best_effort(*args: Any, **kwargs: Any) -> None:
        try:
            send_close(*args, **kwargs)
        except (OSError, websocket.WebSocketException):
            pass

    ws.send_close = send_close_best_effort


# --------------------------------------------------------------------------------------------
# binaries


_BIN_SNAPSHOT: Optional[Path] = None  # set by conftest: a private copy taken at session start


def source_bin_dir() -> Path:
    return Path(os.environ.get("SWITCHBOARD_BIN_DIR") or (REPO_DIR / ".build" / "debug")).resolve()


def bin_dir() -> Path:
    return _BIN_SNAPSHOT or source_bin_dir()


def snapshot_binaries(dest: Path) -> Path:
    """Copy both binaries into ``dest`` so that a rebuild during the run (relinking gives
    'Text file busy' or a half-written file) cannot affect it, and every test runs the same build."""
    global _BIN_SNAPSHOT
    import shutil
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("switchboardd", "switchboard"):
        shutil.copy2(source_bin_dir() / name, dest / name)
    _BIN_SNAPSHOT = dest
    return dest


def daemon_bin() -> Path:
    return bin_dir() / "switchboardd"


def cli_bin() -> Path:
    return bin_dir() / "switchboard"


def clean_env(extra: Optional[dict] = None) -> dict:
    """The inherited environment minus any SWITCHBOARD_* override (they would silently change
    the test config), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


# --------------------------------------------------------------------------------------------
# small utilities


def free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(fn: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll ``fn`` until it returns a truthy value; return that value. AssertionError after
    ``timeout`` seconds, naming ``what`` and the last value/exception seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - keep polling, remember the error
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last={last!r}")
        time.sleep(interval)


def parse_time(s: str) -> "datetime.datetime":
    """An API timestamp (RFC 3339, `Z`, milliseconds left out when zero) as a datetime: compare
    these, never the strings ("…38Z" sorts after "…38.007Z")."""
    import datetime
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def uid(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def yaml_scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if v is None:
        return '""'
    return json.dumps(str(v))  # a JSON string is a valid double-quoted YAML scalar


def to_yaml(cfg: dict) -> str:
    out = []
    for section, kv in cfg.items():
        out.append(f"{section}:")
        for k, v in kv.items():
            out.append(f"  {k}: {yaml_scalar(v)}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# Standard Webhooks signing (https://www.standardwebhooks.com/), our own implementation


def make_secret(raw: Optional[bytes] = None) -> str:
    raw = raw if raw is not None else os.urandom(32)
    return "whsec_" + base64.b64encode(raw).decode()


def secret_key(secret: str) -> bytes:
    s = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    return base64.b64decode(s)


class Signer:
    def __init__(self, secret: str):
        self.secret = secret
        self.key = secret_key(secret)

    def signature(self, msg_id: str, ts: int | str, body: bytes) -> str:
        if isinstance(body, str):
            body = body.encode()
        signed = f"{msg_id}.{ts}.".encode() + body
        mac = hmac.new(self.key, signed, hashlib.sha256).digest()
        return "v1," + base64.b64encode(mac).decode()

    def headers(self, body: bytes, msg_id: Optional[str] = None, ts: Optional[int] = None,
                content_type: str = "application/json") -> dict:
        msg_id = msg_id or uid("msg_")
        ts = int(time.time()) if ts is None else ts
        h = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": self.signature(msg_id, ts, body),
        }
        if content_type is not None:
            h["Content-Type"] = content_type
        return h

    def verify(self, headers: dict, body: bytes, tolerance: Optional[int] = None) -> bool:
        """Verify a request the daemon sent us. ``headers`` keys are compared case-insensitively."""
        h = {k.lower(): v for k, v in headers.items()}
        msg_id, ts, sigs = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
        if not (msg_id and ts and sigs):
            return False
        try:
            its = int(ts)
        except ValueError:
            return False
        if tolerance is not None and abs(time.time() - its) > tolerance:
            return False
        expected = self.signature(msg_id, ts, body).split(",", 1)[1]
        for part in sigs.split(" "):
            if "," not in part:
                continue
            version, sig = part.split(",", 1)
            if version == "v1" and hmac.compare_digest(sig, expected):
                return True
        return False


# --------------------------------------------------------------------------------------------
# portal events


def portal_event(patient_id: Optional[str] = None, text: str = "hello", message_id: Optional[str] = None,
                 thread_id: Optional[str] = None, name: Optional[str] = None, phone: Optional[str] = None,
                 email: Optional[str] = None, sent_at: str = "2026-11-29T10:00:00Z") -> dict:
    patient: dict = {"id": patient_id or uid("P-")}
    if name is not None:
        patient["name"] = name
    if phone is not None:
        patient["phone"] = phone
    if email is not None:
        patient["email"] = email
    ev: dict = {"type": "message.created", "patient": patient}
    if thread_id is not None:
        ev["thread_id"] = thread_id
    ev["message"] = {"id": message_id or uid("M-"), "text": text, "sent_at": sent_at}
    return ev


def encode(ev: Any) -> bytes:
    return json.dumps(ev, separators=(",", ":")).encode()


def post_webhook(base_url: str, signer: Signer, event: Any = None, *, body: Optional[bytes] = None,
                 msg_id: Optional[str] = None, ts: Optional[int] = None,
                 content_type: str = "application/json", headers: Optional[dict] = None,
                 drop: tuple = (), session: Optional[requests.Session] = None) -> requests.Response:
    """POST a (by default correctly) signed portal webhook. ``body`` overrides the encoded
    ``event``; ``headers`` overrides/adds headers after signing; ``drop`` removes headers."""
    if body is None:
        body = encode(event)
    h = signer.headers(body, msg_id=msg_id, ts=ts, content_type=content_type)
    if headers:
        h.update(headers)
    for k in drop:
        h.pop(k, None)
    poster = session or requests
    return poster.post(f"{base_url}/webhooks/portal", data=body, headers=h, timeout=HTTP_TIMEOUT)


def error_shape_ok(resp: requests.Response) -> bool:
    try:
        j = resp.json()
    except ValueError:
        return False
    e = j.get("error") if isinstance(j, dict) else None
    return isinstance(e, dict) and isinstance(e.get("code"), str) and isinstance(e.get("message"), str)


# --------------------------------------------------------------------------------------------
# the daemon


DEFAULT_SECRET = make_secret(b"switchboard-integration-tests-k1")  # 32 bytes
OUTBOUND_SECRET = make_secret(b"switchboard-integration-outbound")  # 32 bytes


def default_config(workdir: Path, port: int, outbound_url: str = "") -> dict:
    return {
        "http": {"host": "127.0.0.1", "port": port},
        "store": {"path": str(workdir / "var" / "switchboard.sqlite")},
        "log": {"level": "info", "format": "logfmt"},
        "portal": {
            "webhook_secret": DEFAULT_SECRET,
            "timestamp_tolerance_seconds": 300,
            "max_body_bytes": 262144,
            "outbound_url": outbound_url,
            "outbound_secret": OUTBOUND_SECRET,
            "outbound_timeout_ms": 2000,
        },
        "outbox": {
            "poll_interval_ms": 100,
            "initial_backoff_ms": 100,
            "max_backoff_ms": 500,
            "horizon_seconds": 86400,
            "concurrency": 4,
        },
        "phone": {"default_country_code": "1"},
    }


def merge(cfg: dict, overrides: Optional[dict]) -> dict:
    out = {k: dict(v) for k, v in cfg.items()}
    for section, kv in (overrides or {}).items():
        out.setdefault(section, {}).update(kv)
    return out


class Daemon:
    """One switchboardd process on a fixed loopback port and a fixed work directory."""

    def __init__(self, workdir: Path, port: Optional[int] = None, outbound_url: str = "",
                 overrides: Optional[dict] = None, env: Optional[dict] = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "var").mkdir(exist_ok=True)
        self.port = port or free_port()
        self.config = merge(default_config(self.workdir, self.port, outbound_url), overrides)
        self.config_path = self.workdir / "switchboard.yaml"
        self.config_path.write_text(to_yaml(self.config))
        self.stdout_path = self.workdir / "daemon.stdout.log"
        self.stderr_path = self.workdir / "daemon.stderr.log"
        self.extra_env = env or {}
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0

    # -- addresses
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def secret(self) -> str:
        return self.config["portal"]["webhook_secret"]

    @property
    def signer(self) -> Signer:
        return Signer(self.secret)

    # -- lifecycle
    def start(self, wait: bool = True) -> "Daemon":
        assert self.proc is None or self.proc.poll() is not None, "daemon already running"
        self.starts += 1
        marker = f"\n# ---- harness: start #{self.starts} at {time.time():.3f} ----\n".encode()
        for p in (self.stdout_path, self.stderr_path):
            with open(p, "ab") as f:
                f.write(marker)
        out = open(self.stdout_path, "ab")
        err = open(self.stderr_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [str(daemon_bin()), "--config", str(self.config_path)],
                cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                env=clean_env(self.extra_env), start_new_session=True,
            )
        finally:
            out.close()
            err.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"switchboardd exited with {self.proc.returncode} before ready\n{self.log_tail()}")
            try:
                r = requests.get(f"{self.url}/readyz", timeout=2)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}: {r.text[:200]}"
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.05)
        raise AssertionError(f"switchboardd not ready after {timeout}s (last: {last})\n{self.log_tail()}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """SIGTERM, wait up to ``timeout`` s; returns the exit code (SIGKILL + AssertionError if it
        did not exit in time)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                raise AssertionError(f"switchboardd did not exit within {timeout}s of SIGTERM")
        return self.proc.returncode

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def cleanup(self) -> None:
        """Used by fixtures: make sure nothing is left running."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.stop(timeout=10)
            except AssertionError:
                pass

    # -- logs
    def stdout_text(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def log_text(self) -> str:
        """Everything the daemon wrote (stdout + stderr) across all its starts."""
        return self.stdout_text() + self.stderr_text()

    def log_tail(self, n: int = 40) -> str:
        lines = self.log_text().splitlines()
        return "---- daemon log tail ----\n" + "\n".join(lines[-n:])

    # -- admin CLI
    def cli(self, *args: str, check: bool = True, config_first: Optional[bool] = None) -> subprocess.CompletedProcess:
        """Run ``switchboard --config PATH <args>`` (the documented form). If that binary only takes
        ``--config`` after the subcommand (exit 64, "Unknown option '--config'"), retry as
        ``switchboard <sub> <cmd> --config PATH ...`` so the rest of the suite still runs;
        test_cli_config_before_subcommand reports the deviation itself."""
        def run(cmd):
            return subprocess.run(cmd, cwd=self.workdir, capture_output=True, text=True,
                                  timeout=CLI_TIMEOUT, env=clean_env(self.extra_env), stdin=subprocess.DEVNULL)
        first = [str(cli_bin()), "--config", str(self.config_path), *args]
        after = [str(cli_bin()), *args[:2], "--config", str(self.config_path), *args[2:]]
        if config_first is False:
            cmd = after
            cp = run(cmd)
        else:
            cmd = first
            cp = run(cmd)
            if config_first is None and cp.returncode == 64 and "--config" in cp.stderr:
                cmd = after
                cp = run(cmd)
        if check and cp.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} -> exit {cp.returncode}\nstdout: {cp.stdout}\nstderr: {cp.stderr}")
        return cp

    def add_agent(self, name: Optional[str] = None, email: Optional[str] = None, role: str = "agent",
                  team: Optional[str] = None) -> dict:
        name = name or uid("Agent ")
        email = email or f"{uid('agent.')}@clinic.example"
        args = ["agent", "add", "--name", name, "--email", email, "--role", role]
        if team:
            args += ["--team", team]
        cp = self.cli(*args, "--json")
        try:
            obj = json.loads(cp.stdout)
        except ValueError:
            raise AssertionError(f"agent add --json printed no JSON object: {cp.stdout!r} / {cp.stderr!r}")
        assert isinstance(obj.get("token"), str) and obj["token"].startswith("sbt_"), obj
        return obj

    def api(self, agent_or_token: dict | str | None) -> "Api":
        token = agent_or_token["token"] if isinstance(agent_or_token, dict) else agent_or_token
        return Api(self.url, token)

    # -- convenience
    def webhook(self, event: Any = None, **kw) -> requests.Response:
        return post_webhook(self.url, self.signer, event, **kw)


def check_config(config_path: Path, env: Optional[dict] = None, cwd: Optional[Path] = None
                 ) -> subprocess.CompletedProcess:
    return subprocess.run([str(daemon_bin()), "--config", str(config_path), "--check-config"],
                          cwd=cwd or config_path.parent, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT, env=clean_env(env), stdin=subprocess.DEVNULL)


# --------------------------------------------------------------------------------------------
# agent API client


class Api:
    def __init__(self, base_url: str, token: Optional[str]):
        self.base = base_url + "/api/v1"
        self.token = token
        self.s = requests.Session()

    def _h(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token is not None else {}

    def get(self, path: str, **params) -> requests.Response:
        return self.s.get(self.base + path, headers=self._h(), params=params or None, timeout=HTTP_TIMEOUT)

    def post(self, path: str, body: Any = None) -> requests.Response:
        if body is None:
            return self.s.post(self.base + path, headers=self._h(), timeout=HTTP_TIMEOUT)
        return self.s.post(self.base + path, headers=self._h(), json=body, timeout=HTTP_TIMEOUT)

    def put(self, path: str, body: Any = None) -> requests.Response:
        return self.s.put(self.base + path, headers=self._h(), json=body, timeout=HTTP_TIMEOUT)

    def patch(self, path: str, body: Any = None) -> requests.Response:
        return self.s.patch(self.base + path, headers=self._h(), json=body, timeout=HTTP_TIMEOUT)

    def delete(self, path: str) -> requests.Response:
        return self.s.delete(self.base + path, headers=self._h(), timeout=HTTP_TIMEOUT)

    # typed helpers (assert the status they expect)
    def list(self, status: Optional[str] = "open", assignee: Optional[str] = "any") -> list:
        params = {}
        if status is not None:
            params["status"] = status
        if assignee is not None:
            params["assignee"] = assignee
        r = self.get("/conversations", **params)
        assert r.status_code == 200, f"list -> {r.status_code} {r.text[:500]}"
        return r.json()["conversations"]

    def conversation(self, cid: str) -> dict:
        r = self.get(f"/conversations/{cid}")
        assert r.status_code == 200, f"GET conversation {cid} -> {r.status_code} {r.text[:500]}"
        return r.json()

    def claim(self, cid: str) -> dict:
        r = self.post(f"/conversations/{cid}/claim")
        assert r.status_code == 200, f"claim {cid} -> {r.status_code} {r.text[:500]}"
        return r.json()["conversation"]

    def reply(self, cid: str, text: str) -> str:
        r = self.post(f"/conversations/{cid}/messages", {"text": text})
        assert r.status_code == 202, f"reply {cid} -> {r.status_code} {r.text[:500]}"
        j = r.json()
        assert j.get("delivery_status") == "queued", j
        return j["message_id"]

    def message(self, cid: str, message_id: str) -> Optional[dict]:
        for m in self.conversation(cid)["messages"]:
            if m["id"] == message_id:
                return m
        return None

    def wait_delivery(self, cid: str, message_id: str, status: str = "delivered", timeout: float = 20.0) -> dict:
        def check():
            m = self.message(cid, message_id)
            return m if m and m.get("delivery_status") == status else None
        return wait_until(check, timeout, 0.1, f"message {message_id} delivery_status={status}")


# --------------------------------------------------------------------------------------------
# the portal's outbound endpoint, simulated


@dataclass
class Recorded:
    t: float
    method: str
    path: str
    headers: dict
    body: bytes
    json: Any
    signature_valid: bool
    status: int = 0  # what we answered

    @property
    def webhook_id(self) -> Optional[str]:
        return self.headers.get("webhook-id")

    @property
    def message_id(self) -> Optional[str]:
        try:
            return self.json["message"]["id"]
        except (TypeError, KeyError):
            return None


class _LoopbackServer(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 64


class ServerThread:
    """Serves one BaseHTTPRequestHandler class on 127.0.0.1:self.port from a background thread."""

    _server = None
    _thread = None

    def _serve(self, handler) -> None:
        self._server = _LoopbackServer(("127.0.0.1", self.port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class Receiver(ServerThread):
    """Records outbound portal webhooks. ``behavior(rec, previous_attempts_for_same_message)``
    returns the status to answer, or ``(status, delay_seconds)``, or ``(status, delay, body_bytes)``,
    or ``(status, delay, body_bytes, extra_headers)``; default 200.

    ``reserve()`` holds the port with a bound, non-listening socket so connections are refused
    (the receiver is "down") until ``start()``."""

    PATH = "/portal/inbound"

    def __init__(self, secret: str = OUTBOUND_SECRET, port: Optional[int] = None):
        self.signer = Signer(secret)
        self.port = port or free_port()
        self.records: list[Recorded] = []
        self.lock = threading.Lock()
        self.behavior: Optional[Callable[[Recorded, list], Any]] = None
        self._server: Optional[http.server.ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._reserved: Optional[socket.socket] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.PATH}"

    def reserve(self) -> "Receiver":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))  # bound, never listen(): connect() gets ECONNREFUSED
        self._reserved = s
        return self

    def _release(self) -> None:
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None

    def start(self) -> "Receiver":
        self._release()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    j = json.loads(body)
                except ValueError:
                    j = None
                rec = Recorded(time.monotonic(), "POST", self.path, headers, body, j,
                               receiver.signer.verify(headers, body, tolerance=300))
                with receiver.lock:
                    prior = [r for r in receiver.records
                             if rec.message_id is not None and r.message_id == rec.message_id]
                    decision = receiver.behavior(rec, prior) if receiver.behavior else 200
                    if not isinstance(decision, tuple):
                        decision = (decision,)
                    status = decision[0]
                    delay = decision[1] if len(decision) > 1 else 0
                    payload = decision[2] if len(decision) > 2 else (
                        b'{"ok":true}' if 200 <= status < 300 else b'{"ok":false}')
                    extra_headers = decision[3] if len(decision) > 3 else {}
                    rec.status = status
                    receiver.records.append(rec)
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in extra_headers.items():
                        self.send_header(name, value)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass
                self.close_connection = True

            def log_message(self, *a):  # quiet
                pass

        self._serve(Handler)
        return self


    def close(self) -> None:
        self.stop()
        self._release()

    # -- queries
    def snapshot(self) -> list[Recorded]:
        with self.lock:
            return list(self.records)

    def for_message(self, message_id: str) -> list[Recorded]:
        return [r for r in self.snapshot() if r.message_id == message_id]

    def accepted(self) -> list[Recorded]:
        return [r for r in self.snapshot() if 200 <= r.status < 300]

    def wait_accepted(self, message_ids: list[str], timeout: float = 20.0) -> list[Recorded]:
        def check():
            got = {r.message_id for r in self.accepted()}
            return all(m in got for m in message_ids)
        wait_until(check, timeout, 0.05, f"receiver to accept {message_ids} "
                                         f"(seen: {[(r.message_id, r.status) for r in self.snapshot()]})")
        return self.accepted()
