"""Disk full: never a 2xx or a 250 for what was not stored, and back to work once there is room.

The store lives on its own small tmpfs, filled up by a file until only a little room is left.
Large portal messages and mail are sent until the disk runs out. Then:

- every 202 / 250 answered is a message in the store; every message refused (503, 451) is not;
- the daemon stays up, and says so in its log without patient data;
- once the filler is removed, the refused messages sent again are accepted and stored once,
  without a restart, and `PRAGMA integrity_check` is `ok`.

Needs to mount a tmpfs (root, as `make test` runs here); skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import smtplib
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest

import mail_harness as mh
import switchboard_harness as h

DISK_BYTES = 12 * 1024 * 1024
TEXT_BYTES = 120_000


@pytest.fixture
def small_disk(tmp_path):
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mountpoint)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'not root'}): the disk-full test needs one")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)


def fill(mountpoint: Path, leave: int) -> Path:
    filler = mountpoint / "filler"
    free = os.statvfs(mountpoint).f_bavail * os.statvfs(mountpoint).f_frsize
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


def test_a_full_disk_gets_no_acknowledgement_and_the_daemon_recovers(make_daemon, small_disk):
    overrides = {"store": {"path": str(small_disk / "switchboard.sqlite")}}
    overrides.update(mh.email_overrides())
    d = make_daemon(overrides=overrides)
    filler = fill(small_disk, leave=1_500_000)

    texts: dict[str, str] = {}
    answers: dict[str, int] = {}
    for i in range(200):
        message_id = f"m-{uuid.uuid4().hex}"
        texts[message_id] = f"disk full note {i} " + "x" * TEXT_BYTES
        r = h.post_webhook(d.url, d.signer, h.portal_event("P-disk", texts[message_id], message_id=message_id))
        answers[message_id] = r.status_code
        assert r.status_code in (202, 503), r.text[:300]
        if r.status_code == 503:
            assert r.headers.get("Retry-After"), r.headers
            assert r.json()["error"]["code"] in ("store_unavailable", "overloaded"), r.text
        if list(answers.values())[-5:] == [503] * 5:
            break
    assert 503 in answers.values(), "the disk never filled up: the test proved nothing"
    assert 202 in answers.values(), "nothing fit at all: the test proved nothing"

    # Mail while the disk is full: 451, never 250.
    smtp = smtplib.SMTP("127.0.0.1", mh.smtp_port_of(d), timeout=30)
    raw = mh.build_mail(from_addr="patient.disk@example.net", text="disk full mail " + "y" * TEXT_BYTES,
                        message_id=f"<{uuid.uuid4().hex}@example.net>")
    with pytest.raises(smtplib.SMTPDataError) as refused_mail:
        smtp.sendmail("patient.disk@example.net", [mh.SUPPORT_ADDRESS], raw)
    assert refused_mail.value.smtp_code == 451

    assert d.running(), "the daemon died of a full disk"
    accepted = {m for m, status in answers.items() if status == 202}
    refused = [m for m, status in answers.items() if status == 503]
    with sqlite3.connect(d.config["store"]["path"], timeout=10) as db:
        stored = {row[0] for row in db.execute("SELECT external_id FROM messages WHERE channel = 'portal'")}
    assert stored == accepted, f"{len(accepted - stored)} acknowledged but not stored, {len(stored - accepted)} stored but refused"

    # Room again: the same daemon takes the refused messages and the mail.
    filler.unlink()
    for message_id in refused:
        r = h.wait_until(lambda m=message_id: (lambda r: r if r.status_code == 202 else None)(
            h.post_webhook(d.url, d.signer, h.portal_event("P-disk", texts[m], message_id=m))), 20, 0.5,
            what="the store accepting again")
        assert r.status_code == 202
    smtp.sendmail("patient.disk@example.net", [mh.SUPPORT_ADDRESS], raw)
    smtp.quit()
    with sqlite3.connect(d.config["store"]["path"], timeout=10) as db:
        rows = dict(db.execute("SELECT external_id, count(*) FROM messages WHERE channel = 'portal' GROUP BY external_id").fetchall())
        assert set(rows) == set(answers) and set(rows.values()) == {1}
        assert db.execute("SELECT count(*) FROM messages WHERE channel = 'email'").fetchone()[0] == 1
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    log = d.log_text()
    assert "portal message not stored" in log and "mail could not be stored; answered 451" in log
    assert "disk full note" not in log and "patient.disk" not in log
