"""The audit log is hash-chained: `switchboard audit verify` passes on a real history and
names the first row that was changed or deleted; `audit export` writes JSON lines or CSV
without any patient data."""
from __future__ import annotations

import csv
import io
import json
import sqlite3

import switchboard_harness as h
from switchboard_harness import portal_event, uid

PATIENT_TEXT = "Zebulon needs his insulin refill before Friday"
PATIENT_PHONE = "+15558675309"


def history(d: h.Daemon) -> None:
    admin = d.api(d.add_agent(role="admin"))
    for i in range(3):
        r = d.webhook(portal_event(uid("P-"), f"{PATIENT_TEXT} {i}", phone=PATIENT_PHONE, name="Zebulon Quixote"))
        assert r.status_code == 202
        cid = r.json()["conversation_id"]
        admin.conversation(cid)  # an audited read
        admin.claim(cid)


def tamper(d: h.Daemon, *statements: tuple[str, tuple]) -> None:
    """Stops the daemon and changes its store behind its back, as an intruder with the file would."""
    d.stop()
    db = sqlite3.connect(d.config["store"]["path"])
    # The store refuses changes to audit rows; an intruder with the file drops the guards first.
    db.executescript("DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;")
    for sql, args in statements:
        db.execute(sql, args)
    db.commit()
    db.close()


def audit_ids(d: h.Daemon, where: str = "1 = 1") -> list[int]:
    db = sqlite3.connect(d.config["store"]["path"])
    try:
        return [r[0] for r in db.execute(f"SELECT id FROM audit_events WHERE {where} ORDER BY id")]
    finally:
        db.close()


def verify(d: h.Daemon) -> tuple[int, dict]:
    cp = d.cli("audit", "verify", "--json", check=False)
    return cp.returncode, json.loads(cp.stdout)


def test_verify_passes_then_detects_a_changed_row(make_daemon):
    d = make_daemon()
    history(d)
    rc, result = verify(d)
    assert rc == 0 and result["ok"] is True and result["rows"] >= 7, result
    assert len(result["head_hash"]) == 64
    victim = audit_ids(d, "action = 'conversation.read'")[0]
    tamper(d, ("UPDATE audit_events SET actor_id = 'someone-else' WHERE id = ?", (victim,)))
    rc, result = verify(d)
    assert rc == 1 and result["ok"] is False and result["broken_at"] == victim, result
    assert "changed" in result["problem"]


def test_verify_detects_a_deleted_row(make_daemon):
    d = make_daemon()
    history(d)
    ids = audit_ids(d)
    tamper(d, ("DELETE FROM audit_events WHERE id = ?", (ids[len(ids) // 2],)))
    rc, result = verify(d)
    assert rc == 1 and result["broken_at"] == ids[len(ids) // 2 + 1], result
    assert "previous row" in result["problem"]


def test_verify_detects_a_rewritten_chain_from_a_forged_row(make_daemon):
    """Changing a row and recomputing only its own hash still breaks the next link."""
    d = make_daemon()
    history(d)
    first = audit_ids(d)[0]
    tamper(d, ("UPDATE audit_events SET action = 'nothing.happened', hash = randomblob(32) WHERE id = ?", (first,)))
    rc, result = verify(d)
    assert rc == 1 and result["broken_at"] == first, result


def test_export_jsonl_and_csv_without_phi(make_daemon):
    d = make_daemon()
    history(d)
    lines = d.cli("audit", "export").stdout.strip().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) >= 7 and [r["id"] for r in records] == sorted(r["id"] for r in records)
    assert {"message.received", "conversation.read", "conversation.claimed"} <= {r["action"] for r in records}
    assert all(len(r["hash"]) == 64 and r["at"].endswith("Z") for r in records)
    text = d.cli("audit", "export", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(records) and rows[0]["id"] == str(records[0]["id"])
    later = d.cli("audit", "export", "--since", records[-1]["at"]).stdout.strip().splitlines()
    assert 1 <= len(later) < len(records)
    for blob in (text, "\n".join(lines)):
        for needle in (PATIENT_TEXT, PATIENT_PHONE, "Zebulon", "Quixote"):
            assert needle not in blob
    assert d.cli("audit", "export", "--format", "xml", check=False).returncode == 64


def test_audit_rows_cannot_be_changed_through_sqlite(make_daemon):
    d = make_daemon()
    history(d)
    d.stop()
    db = sqlite3.connect(d.config["store"]["path"])
    for sql in ("UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"):
        try:
            db.execute(sql)
            raise AssertionError(f"{sql} was allowed")
        except sqlite3.IntegrityError as error:
            assert "append-only" in str(error)
    db.close()
    rc, result = verify(d)
    assert rc == 0 and result["ok"] is True


def test_backup_and_restore_are_audited(make_daemon, tmp_path):
    d = make_daemon()
    backup = tmp_path / "b.sqlite"
    d.cli("db", "backup", str(backup))
    lines = [json.loads(l) for l in d.cli("audit", "export").stdout.splitlines()]
    row = next(r for r in lines if r["action"] == "db.backup")
    assert row["actor_id"].startswith("cli:") and "$" not in row["actor_id"]


def recompute_chain(d: h.Daemon) -> None:
    """What an intruder with the file and this source can do: rewrite every hash after a
    change, so that the plain chain verifies again (the v1 canonical form of AuditChain)."""
    import hashlib
    db = sqlite3.connect(d.config["store"]["path"])
    previous = bytes(32)
    for row in db.execute("SELECT id, at, actor_kind, actor_id, action, conversation_id, message_id, source_address "
                          "FROM audit_events ORDER BY id").fetchall():
        text = "v1" + "".join(f"|{len(str(v).encode())}:{v}" if v is not None else "|-" for v in row)
        digest = hashlib.sha256(previous + text.encode()).digest()
        db.execute("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE id = ?", (previous, digest, row[0]))
        previous = digest
    db.commit()
    db.close()


def test_with_a_chain_key_a_recomputed_chain_is_detected(make_daemon, tmp_path):
    key_file = tmp_path / "audit_chain_key"
    key_file.write_text("k" * 44 + "\n")
    d = make_daemon(env={"SWITCHBOARD_AUDIT_CHAIN_KEY_FILE": str(key_file)})
    d.extra_env = {"SWITCHBOARD_AUDIT_CHAIN_KEY_FILE": str(key_file)}  # the CLI verifies with the same key
    history(d)
    rc, result = verify(d)
    assert rc == 0 and result["macs_checked"] is True and result["keyed_rows"] == result["rows"], result
    victim = audit_ids(d, "action = 'conversation.read'")[0]
    tamper(d, ("UPDATE audit_events SET actor_id = 'someone-else' WHERE id = ?", (victim,)))
    recompute_chain(d)
    # Without the key the rewritten chain passes; with it, the forged row is named.
    d.extra_env = {}
    rc, result = verify(d)
    assert rc == 0 and result["macs_checked"] is False, result
    d.extra_env = {"SWITCHBOARD_AUDIT_CHAIN_KEY_FILE": str(key_file)}
    rc, result = verify(d)
    assert rc == 1 and result["broken_at"] == victim and "MAC" in result["problem"], result
