"""`switchboard db backup|restore|check|vacuum`: a backup taken under write load is
consistent and contains everything acknowledged before it started; it restores into a new
installation that serves it; bad backups are refused and change nothing."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import requests

import switchboard_harness as h
from switchboard_harness import portal_event, uid


def cli(d: h.Daemon, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return d.cli(*args, check=check)


def test_backup_under_write_load_is_consistent_and_restores(make_daemon, tmp_path):
    d = make_daemon()
    acked: list[tuple[float, str]] = []  # (time acknowledged, message id)
    stop = threading.Event()

    def writer() -> None:
        session = requests.Session()
        while not stop.is_set():
            r = h.post_webhook(d.url, d.signer, portal_event(uid("P-"), "backup load " + uid()), session=session)
            if r.status_code == 202:
                acked.append((time.monotonic(), r.json()["message_id"]))

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        h.wait_until(lambda: len(acked) >= 60, 30, what="some load before the backup")
        started = time.monotonic()
        backup = tmp_path / "backup.sqlite"
        cp = cli(d, "db", "backup", str(backup), "--json")
        after_backup = len(acked)
    finally:
        stop.set()
        for t in threads:
            t.join()
    report = json.loads(cp.stdout)
    assert report["ok"] is True and report["problems"] == [] and report["foreign_key_violations"] == 0, report
    assert report["bytes"] > 0 and Path(report["backup"]) == backup
    assert after_backup < len(acked) or after_backup > 60  # writes went on around the backup
    assert oct(backup.stat().st_mode & 0o777) == "0o600", "a backup holds PHI: owner-only"

    db = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    stored = {row[0] for row in db.execute("SELECT message_id FROM inbound_journal WHERE outcome = 'stored'")}
    messages = {row[0] for row in db.execute("SELECT id FROM messages WHERE direction = 'inbound'")}
    # A snapshot: every message has its journal row and vice versa (one transaction each).
    assert stored == messages
    # Everything acknowledged before the backup started is in it.
    before = {mid for at, mid in acked if at < started}
    assert before and before <= messages, f"missing {len(before - messages)} acknowledged messages"
    orphans = db.execute("SELECT count(*) FROM messages m LEFT JOIN conversations c ON c.id = m.conversation_id WHERE c.id IS NULL").fetchone()[0]
    assert orphans == 0
    count = len(messages)
    db.close()

    # Check the file on its own.
    assert json.loads(cli(d, "db", "check", "--file", str(backup), "--json").stdout)["ok"] is True

    # Restore into a new installation (daemon stopped there), then serve it.
    fresh = make_daemon(start=False, name="restored")
    cp = fresh.cli("db", "restore", str(backup), check=False)
    assert cp.returncode == 64 and "--force" in cp.stderr
    cp = fresh.cli("db", "restore", str(backup), "--force", "--json")
    restored = json.loads(cp.stdout)
    assert restored["ok"] is True and restored["rows"]["messages"] >= count, restored
    fresh.start()
    admin = fresh.api(fresh.add_agent(role="admin"))
    some = next(iter(before))
    conversation_id = sqlite3.connect(f"file:{backup}?mode=ro", uri=True).execute(
        "SELECT conversation_id FROM messages WHERE id = ?", (some,)).fetchone()[0]
    detail = admin.conversation(conversation_id)
    assert any(m["id"] == some for m in detail["messages"])


def test_bad_backup_is_refused_and_changes_nothing(make_daemon, tmp_path):
    d = make_daemon()
    r = d.webhook(portal_event(uid("P-"), "keep me"))
    assert r.status_code == 202
    good = tmp_path / "good.sqlite"
    cli(d, "db", "backup", str(good))
    corrupt = tmp_path / "corrupt.sqlite"
    data = bytearray(good.read_bytes())
    page = 4096
    for offset in range(2 * page, min(len(data), 6 * page)):
        data[offset] = 0xA5
    corrupt.write_bytes(bytes(data))
    cp = cli(d, "db", "check", "--file", str(corrupt), check=False)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    d.stop()
    cp = d.cli("db", "restore", str(corrupt), "--force", check=False)
    assert cp.returncode == 1 and "nothing was restored" in cp.stderr, cp.stdout + cp.stderr
    d.start()
    admin = d.api(d.add_agent(role="admin"))
    assert admin.conversation(r.json()["conversation_id"])["messages"][0]["text"] == "keep me"
    cp = d.cli("db", "check", "--json")
    assert json.loads(cp.stdout)["ok"] is True


def test_vacuum_and_restore_need_the_daemon_stopped(make_daemon, tmp_path):
    d = make_daemon()
    assert d.webhook(portal_event(uid("P-"), "vacuum me")).status_code == 202
    backup = tmp_path / "b.sqlite"
    cli(d, "db", "backup", str(backup))
    for args in (["db", "vacuum"], ["db", "restore", str(backup), "--force"]):
        cp = d.cli(*args, check=False)
        assert cp.returncode == 1 and "needs the daemon stopped" in cp.stderr, (args, cp.stderr)
    assert requests.get(d.url + "/readyz", timeout=5).status_code == 200
    d.stop()
    out = json.loads(cli(d, "db", "vacuum", "--json").stdout)
    assert out["bytes_after"] > 0


def test_one_daemon_per_store(make_daemon):
    first = make_daemon()
    second = make_daemon(start=False, name="second")
    second.config["store"]["path"] = first.config["store"]["path"]
    second.config_path.write_text(h.to_yaml(second.config))
    second.start(wait=False)
    assert second.proc.wait(timeout=30) == 1
    assert "another switchboardd is using this store" in second.log_text()
    assert requests.get(first.url + "/readyz", timeout=5).status_code == 200
