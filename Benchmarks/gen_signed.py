#!/usr/bin/env python3
"""Pre-generate distinct, signed portal webhook requests for the wrk benchmark.

wrk's Lua has no HMAC, so every request is signed here ahead of time. One line per request:

    <webhook-id> \t <webhook-timestamp> \t <webhook-signature> \t <json body>

Every request has its own webhook-id, patient id, thread id and portal message id, and the
timestamp "now", so the daemon must really verify, parse, resolve and store each one (none is an
idempotent replay) as long as wrk does not cycle past the end of the file.

Usage: gen_signed.py --secret whsec_... --count 200000 --out requests.tsv [--threads 2]
With --threads T the lines are dealt round-robin into T files OUT.0 .. OUT.<T-1>, so that each wrk
thread loads only its own share (memory stays ~ one copy of the data in total).
"""

import argparse
import base64
import hashlib
import hmac
import json
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--secret", required=True, help="whsec_<base64> secret the daemon verifies with")
    ap.add_argument("--count", type=int, default=200000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=1, help="split round-robin into OUT.0..OUT.<n-1>")
    ap.add_argument("--run-id", default=str(int(time.time())), help="prefix making ids unique across runs")
    a = ap.parse_args()

    key = base64.b64decode(a.secret[len("whsec_"):] if a.secret.startswith("whsec_") else a.secret)
    ts = str(int(time.time()))
    outs = ([open(f"{a.out}.{i}", "w") for i in range(a.threads)] if a.threads > 1 else [open(a.out, "w")])
    t0 = time.monotonic()
    for n in range(a.count):
        wid = f"msg_bench_{a.run_id}_{n}"
        body = json.dumps({
            "type": "message.created",
            "patient": {"id": f"P-B{a.run_id}-{n}", "phone": f"+1555{n % 10000000:07d}"},
            "thread_id": f"T-B{a.run_id}-{n}",
            "message": {"id": f"M-B{a.run_id}-{n}", "text": f"benchmark message {n}: please call me back",
                        "sent_at": "2026-11-29T10:00:00Z"},
        }, separators=(",", ":"))
        mac = hmac.new(key, f"{wid}.{ts}.{body}".encode(), hashlib.sha256).digest()
        sig = "v1," + base64.b64encode(mac).decode()
        outs[n % len(outs)].write(f"{wid}\t{ts}\t{sig}\t{body}\n")
    for f in outs:
        f.close()
    print(f"generated {a.count} signed requests in {time.monotonic() - t0:.1f}s "
          f"({len(outs)} file(s), timestamp {ts})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
