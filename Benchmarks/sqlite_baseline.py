#!/usr/bin/env python3
"""SQLite's own durable-write rates on this disk, the yardstick for Switchboard's ingest.

Same settings as the store (WAL, synchronous=FULL), rows about the size of a stored webhook
(a 400-byte payload plus a short key), in a fresh database beside the one the benchmark uses:

  one-per-transaction   INSERT; COMMIT        (one fsync of the WAL per row)
  100-per-transaction   100 × INSERT; COMMIT  (one fsync per hundred rows)

    python3 Benchmarks/sqlite_baseline.py [DIR] [SECONDS]     (defaults: /tmp, 5)

Prints one SQLITE-BASELINE line: per_row_rows_per_s=… batch100_rows_per_s=…
"""
import os
import sqlite3
import sys
import tempfile
import time


def rate(path: str, rows_per_tx: int, seconds: float) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, k TEXT UNIQUE, payload BLOB)")
    payload = os.urandom(400)
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        db.execute("BEGIN IMMEDIATE")
        for _ in range(rows_per_tx):
            db.execute("INSERT INTO t (k, payload) VALUES (?, ?)", (f"{rows_per_tx}-{n}", payload))
            n += 1
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return n / elapsed


def main() -> None:
    directory = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    with tempfile.TemporaryDirectory(dir=directory, prefix="sqlite-baseline.") as work:
        per_row = rate(os.path.join(work, "per-row.sqlite"), 1, seconds)
        batch = rate(os.path.join(work, "batch.sqlite"), 100, seconds)
    print(f"SQLITE-BASELINE sqlite={sqlite3.sqlite_version} dir={directory} "
          f"per_row_rows_per_s={per_row:.0f} batch100_rows_per_s={batch:.0f}")


if __name__ == "__main__":
    main()
