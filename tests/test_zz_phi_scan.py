"""The whole run's logs, searched for every patient datum the run stored.

Runs last (files run in name order). Every daemon this pytest session started kept its store
and its logs in its own directory; for each one, everything patients gave it — phone
numbers, email addresses, portal ids, names, and the text of every inbound message — is
read back from its store and searched for in everything that daemon wrote to stdout and
stderr, at whatever level the test ran it. Any hit fails, naming the daemon directory and
the kind of datum (never the datum itself).

By construction this covers what the tests actually sent, including data no test author
thought to list. Values too short or too generic to mean anything in a log line (under 8
characters, or without a letter or digit run of 5) are skipped, and so are the few values
the daemon legitimately logs because they are not patient data (its own addresses).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

# Addresses and names that belong to the clinic or the test rig, not to a patient.
NOT_PATIENT_DATA = {"support@clinic.example", "mailer-daemon@clinic.example", "postmaster@clinic.example"}
MIN_LENGTH = 8


def patient_values(db_path: Path) -> list[tuple[str, str]]:
    """(kind, value) for everything patients gave this store."""
    out: list[tuple[str, str]] = []
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return out
    try:
        queries = {
            "identity": "SELECT kind || ':' || value FROM contact_identities",
            "name": "SELECT display_name FROM contacts WHERE display_name IS NOT NULL",
            "inbound text": "SELECT body_text FROM messages WHERE direction = 'inbound' AND body_text IS NOT NULL",
        }
        for kind, sql in queries.items():
            try:
                rows = db.execute(sql).fetchall()
            except sqlite3.Error:
                continue  # a store that never finished migrating
            for (value,) in rows:
                if kind == "identity":
                    kind_name, _, value = value.partition(":")
                    if kind_name == "chat":
                        continue  # visitor ids are the daemon's own identifiers
                    kind = f"identity ({kind_name})"
                out.append((kind, value))
    finally:
        db.close()
    return [(k, v) for k, v in out if meaningful(v)]


def meaningful(value: str) -> bool:
    value = value.strip()
    if len(value) < MIN_LENGTH or value.lower() in NOT_PATIENT_DATA:
        return False
    return re.search(r"[A-Za-z0-9]{5}", value) is not None


def scan(log_text: str, values: list[tuple[str, str]]) -> list[str]:
    """Kinds of datum found in the log (each kind once)."""
    found: list[str] = []
    for kind, value in values:
        for candidate in {value.strip(), value.strip().lower()}:
            if candidate in log_text and kind not in found:
                found.append(kind)
    return found


def test_the_scan_finds_what_it_is_given():
    """The scanner itself: a datum planted in a log line is found, a clean log passes."""
    values = [("identity (phone)", "+15550107788"), ("inbound text", "my knee still hurts after the fall")]
    assert scan('level=info msg="stored" conversation.id=cnv_1', values) == []
    assert scan('level=info msg="stored" from=+15550107788', values) == ["identity (phone)"]
    assert scan("... MY KNEE STILL HURTS after the fall".lower(), values) == ["inbound text"]
    assert not meaningful("hello") and not meaningful("support@clinic.example") and meaningful("+15550100000")


def test_no_patient_datum_in_any_daemon_log_of_this_run(tmp_path_factory):
    base = Path(tmp_path_factory.getbasetemp())
    logs_by_daemon = {}
    for stderr_log in base.rglob("daemon.stderr.log"):
        directory = stderr_log.parent
        logs_by_daemon[directory] = "".join(p.read_text(errors="replace") for p in directory.glob("daemon.*.log"))
    if not logs_by_daemon:
        pytest.skip("no daemon ran in this session (run the whole suite)")
    findings = []
    stores = 0
    values_checked = 0
    for directory, log_text in logs_by_daemon.items():
        for db_path in directory.rglob("*.sqlite"):
            if db_path.name.startswith("backup") or ".partial-" in db_path.name:
                continue
            values = patient_values(db_path)
            if values:
                stores += 1
            values_checked += len(values)
            for kind in scan(log_text, values):
                findings.append(f"{directory.relative_to(base)}: {kind}")
    print(f"PHI scan: {len(logs_by_daemon)} daemon logs, {stores} stores with patient data, "
          f"{values_checked} values searched")
    assert not findings, "patient data in daemon logs:\n" + "\n".join(findings)
