"""systemd integration: the sd_notify protocol against a local NOTIFY_SOCKET listener
(READY=1 only when ready, STATUS=, WATCHDOG=1 that stops while the store is stalled,
STOPPING=1), the unit file's checks (systemd-analyze verify and security), and install.sh
into a throwaway root."""
from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

import pytest
import requests

import switchboard_harness as h

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "switchboard.service"


class NotifyListener:
    """A datagram socket standing in for systemd's notify socket; records every message
    with its arrival time."""

    def __init__(self, path: Optional[str] = None, abstract: Optional[str] = None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract is not None:
            self.sock.bind("\0" + abstract)
            self.address = "@" + abstract
        else:
            self.sock.bind(path)
            self.address = path
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self.stop.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append((time.monotonic(), data.decode()))

    def snapshot(self) -> list[tuple[float, str]]:
        with self.lock:
            return list(self.messages)

    def assignments(self, name: str) -> list[tuple[float, str]]:
        """(time, value) for each `NAME=value` line received."""
        out = []
        for at, message in self.snapshot():
            for line in message.split("\n"):
                if line.startswith(name + "="):
                    out.append((at, line[len(name) + 1:]))
        return out

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def listener(tmp_path):
    made: list[NotifyListener] = []

    def make(**kw) -> NotifyListener:
        n = NotifyListener(**kw)
        made.append(n)
        return n

    yield make
    for n in made:
        n.close()


def test_ready_status_watchdog_and_stopping(make_daemon, listener, tmp_path):
    n = listener(path=str(tmp_path / "notify.sock"))
    d = make_daemon(env={"NOTIFY_SOCKET": n.address, "WATCHDOG_USEC": "400000"}, start=False)
    d.start(wait=False)
    ready = h.wait_until(lambda: n.assignments("READY"), 30, what="READY=1")
    # READY=1 means ready: the listener answers and /readyz agrees at once.
    assert ready[0][1] == "1"
    assert requests.get(d.url + "/readyz", timeout=5).status_code == 200
    statuses = h.wait_until(lambda: n.assignments("STATUS"), 10, what="STATUS=")
    assert any("outbox" in value for _, value in statuses) or h.wait_until(
        lambda: any("outbox" in v for _, v in n.assignments("STATUS")), 15, what="STATUS with the outbox backlog")
    # Keep-alives every WATCHDOG_USEC/2 (0.2 s): several within a second or two.
    h.wait_until(lambda: len(n.assignments("WATCHDOG")) >= 5, 10, what="5 WATCHDOG=1")
    assert all(v == "1" for _, v in n.assignments("WATCHDOG"))
    assert d.stop() == 0
    stopping = n.assignments("STOPPING")
    assert stopping and stopping[0][1] == "1", n.snapshot()
    assert stopping[0][0] > ready[0][0]


def started_with_notify(make_daemon, n: NotifyListener, **env: str) -> h.Daemon:
    """A daemon started with NOTIFY_SOCKET (and `env`), once it has sent READY=1."""
    d = make_daemon(env={"NOTIFY_SOCKET": n.address, **env}, start=False)
    d.start(wait=False)
    h.wait_until(lambda: n.assignments("READY"), 30, what="READY=1")
    return d


def test_abstract_notify_socket(make_daemon, listener):
    n = listener(abstract=f"switchboard-test-{os.getpid()}-{time.monotonic_ns()}")
    started_with_notify(make_daemon, n)
    # No WATCHDOG_USEC: no keep-alives.
    time.sleep(0.5)
    assert n.assignments("WATCHDOG") == []


def test_watchdog_for_another_pid_is_ignored(make_daemon, listener, tmp_path):
    n = listener(path=str(tmp_path / "notify.sock"))
    started_with_notify(make_daemon, n, WATCHDOG_USEC="200000", WATCHDOG_PID="1")
    time.sleep(0.6)
    assert n.assignments("WATCHDOG") == []


def test_a_stalled_store_stops_the_keepalives(make_daemon, listener, tmp_path):
    n = listener(path=str(tmp_path / "notify.sock"))
    d = make_daemon(env={"NOTIFY_SOCKET": n.address, "WATCHDOG_USEC": "400000"}, start=False)
    d.start(wait=False)
    h.wait_until(lambda: len(n.assignments("WATCHDOG")) >= 3, 30, what="keep-alives before the stall")
    # Hold the store's write lock from outside, as a stuck writer would.
    db = sqlite3.connect(d.config["store"]["path"], timeout=5, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    held_at = time.monotonic()
    time.sleep(6.5)  # longer than the daemon's 5 s probe timeout
    during = [at for at, _ in n.assignments("WATCHDOG") if at > held_at + 0.5]
    db.execute("ROLLBACK")
    released_at = time.monotonic()
    db.close()
    assert during == [], f"WATCHDOG=1 kept coming while the store was stalled: {len(during)}"
    # The daemon logs why it withholds them (no PHI in that line: the kind of stall only).
    h.wait_until(lambda: "withholding the systemd watchdog keep-alive" in d.log_text(), 15, what="stall logged")
    # Once the store answers again, keep-alives resume.
    h.wait_until(lambda: any(at > released_at for at, _ in n.assignments("WATCHDOG")), 20, what="keep-alives resume")


def test_without_notify_socket_nothing_is_sent(make_daemon):
    d = make_daemon()
    assert requests.get(d.url + "/readyz", timeout=5).status_code == 200
    assert "systemd notified" not in d.log_text()


# --------------------------------------------------------------------------------------------
# the unit file


def test_unit_verifies(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is installed by `make test` (package systemd)"
    # verify needs the ExecStart binary to exist: check a copy pointing at the built one.
    unit = tmp_path / "switchboard.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/switchboardd", str(h.daemon_bin())))
    cp = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0 and cp.stderr.strip() == "", cp.stderr


def test_unit_security_exposure_at_most_1_5():
    cp = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(UNIT)], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    line = next(l for l in cp.stdout.splitlines() if "Overall exposure level" in l)
    score = float(line.split(":")[1].split()[0])
    assert score <= 1.5, line


def test_unit_declares_notify_watchdog_and_reload():
    text = UNIT.read_text()
    for directive in ["Type=notify", "NotifyAccess=main", "WatchdogSec=", "Restart=on-failure", "User=switchboard",
                      "StateDirectory=switchboard", "ConfigurationDirectory=switchboard", "LoadCredential=",
                      "ExecReload=/bin/kill -HUP $MAINPID"]:
        assert directive in text, directive
    stop = int(next(l for l in text.splitlines() if l.startswith("TimeoutStopSec=")).split("=")[1].rstrip("s"))
    assert stop > 8, "TimeoutStopSec must exceed http.shutdown_grace_seconds (8)"


# --------------------------------------------------------------------------------------------
# install.sh


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def run_install(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DESTDIR=str(root))
    return subprocess.run(["sh", str(REPO / "deploy" / "install.sh"), "--bin-dir", str(h.bin_dir()), *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_install_into_a_root_is_complete_and_idempotent(tmp_path):
    root = tmp_path / "root"
    cp = run_install(root)
    assert cp.returncode == 0, cp.stderr
    etc = root / "etc" / "switchboard"
    assert mode(etc) == 0o755 and mode(etc / "credentials") == 0o700
    assert mode(etc / "switchboard.yaml") == 0o640
    installed = (etc / "switchboard.yaml").read_text()
    example = (REPO / "deploy" / "switchboard.example.yaml").read_text()
    assert "  path: /var/lib/switchboard/switchboard.sqlite\n" in installed  # the CLI finds the daemon's store
    assert installed == example.replace("  path: ./var/switchboard.sqlite\n", "  path: /var/lib/switchboard/switchboard.sqlite\n")
    secret = etc / "credentials" / "portal_webhook_secret"
    assert mode(secret) == 0o600 and secret.read_text().startswith("whsec_")
    audit_key = etc / "credentials" / "audit_chain_key"
    assert mode(audit_key) == 0o600 and len(audit_key.read_text().strip()) == 44
    for binary in ("switchboardd", "switchboard"):
        assert mode(root / "usr" / "local" / "bin" / binary) == 0o755
    unit = root / "etc" / "systemd" / "system" / "switchboard.service"
    assert unit.read_text() == UNIT.read_text()
    assert "u switchboard" in (root / "usr" / "lib" / "sysusers.d" / "switchboard.conf").read_text()
    assert mode(root / "var" / "lib" / "switchboard") == 0o700
    # The installed configuration is valid as shipped (with the generated secret).
    check = subprocess.run([str(root / "usr/local/bin/switchboardd"), "--config", str(etc / "switchboard.yaml"), "--check-config"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path,
                           env=h.clean_env({"SWITCHBOARD_PORTAL_WEBHOOK_SECRET_FILE": str(secret),
                                            "SWITCHBOARD_AUDIT_CHAIN_KEY_FILE": str(audit_key)}))
    assert check.returncode == 0, check.stdout + check.stderr

    # Again: nothing changes; local edits and the secret survive.
    (etc / "switchboard.yaml").write_text("# edited by the operator\n")
    first_secret = secret.read_text()
    cp = run_install(root)
    assert cp.returncode == 0, cp.stderr
    assert (etc / "switchboard.yaml").read_text() == "# edited by the operator\n"
    assert secret.read_text() == first_secret
    assert "generated" not in cp.stdout and "from the example" not in cp.stdout


def test_install_prefix_rewrites_execstart(tmp_path):
    root = tmp_path / "root"
    assert run_install(root, "--prefix", "/opt/switchboard").returncode == 0
    unit = (root / "etc/systemd/system/switchboard.service").read_text()
    assert "ExecStart=/opt/switchboard/bin/switchboardd " in unit
    assert (root / "opt/switchboard/bin/switchboardd").exists()


def test_uninstall_keeps_data_unless_purged(tmp_path):
    root = tmp_path / "root"
    assert run_install(root).returncode == 0
    (root / "var/lib/switchboard/switchboard.sqlite").write_text("data")
    cp = run_install(root, "--uninstall")
    assert cp.returncode == 0, cp.stderr
    assert not (root / "usr/local/bin/switchboardd").exists()
    assert not (root / "etc/systemd/system/switchboard.service").exists()
    assert (root / "etc/switchboard/switchboard.yaml").exists()
    assert (root / "var/lib/switchboard/switchboard.sqlite").read_text() == "data"
    refused = run_install(root, "--uninstall", "--purge")
    assert refused.returncode == 64 and "--yes" in refused.stderr
    assert (root / "var/lib/switchboard/switchboard.sqlite").exists()
    assert run_install(root, "--uninstall", "--purge", "--yes").returncode == 0
    assert not (root / "etc/switchboard").exists() and not (root / "var/lib/switchboard").exists()


def test_install_refuses_without_binaries(tmp_path):
    env = dict(os.environ, DESTDIR=str(tmp_path / "root"))
    cp = subprocess.run(["sh", str(REPO / "deploy" / "install.sh"), "--bin-dir", str(tmp_path / "nothing")],
                        capture_output=True, text=True, env=env, timeout=60)
    assert cp.returncode == 66 and "build first" in cp.stderr
    assert not (tmp_path / "root" / "etc").exists()


def test_a_long_watchdog_interval_does_not_delay_shutdown(make_daemon, listener, tmp_path):
    """The keep-alive loop sleeps WatchdogSec/2 (15 s with the shipped unit); shutdown must
    not wait for it, or the other services' drain would be cut short."""
    n = listener(path=str(tmp_path / "notify.sock"))
    d = started_with_notify(make_daemon, n, WATCHDOG_USEC="30000000")
    h.wait_until(lambda: n.assignments("WATCHDOG"), 10, what="the first keep-alive")
    t0 = time.monotonic()
    assert d.stop(timeout=20) == 0
    assert time.monotonic() - t0 < 6, "shutdown waited for the watchdog loop's sleep"
