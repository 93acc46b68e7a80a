#!/usr/bin/env python3
"""Pre-generate distinct, signed webhook requests for the wrk benchmarks.

wrk's Lua has no HMAC, so every request is signed here ahead of time. One line per request:
header fields "Name: value" separated by tabs, then a tab and the body (see signed_requests.lua).

  --kind portal   Standard Webhooks: webhook-id / webhook-timestamp / webhook-signature
                  (HMAC-SHA256 of "id.timestamp.body"), JSON body; --secret whsec_...
  --kind twilio   Twilio Messaging webhook: form body, X-Twilio-Signature = base64(HMAC-SHA1(
                  auth token, URL + sorted name/value pairs)) — the algorithm of Twilio's
                  RequestValidator; --secret <auth token> --url <the URL the daemon verifies>

Every request has its own ids and sender, so the daemon must verify, parse, resolve and store
each one (none is an idempotent replay) as long as wrk does not cycle past the end of the file.

Usage: gen_signed.py --kind portal --secret whsec_... --count 200000 --out requests.tsv [--threads 2]
With --threads T the lines are dealt round-robin into T files OUT.0 .. OUT.<T-1>.
"""

import argparse
import base64
import hashlib
import hmac
import json
import sys
import time
from urllib.parse import urlencode


def portal(a, n, key, ts):
    wid = f"msg_bench_{a.run_id}_{n}"
    body = json.dumps({
        "type": "message.created",
        "patient": {"id": f"P-B{a.run_id}-{n}", "phone": f"+1555{n % 10000000:07d}"},
        "thread_id": f"T-B{a.run_id}-{n}",
        "message": {"id": f"M-B{a.run_id}-{n}", "text": f"benchmark message {n}: please call me back",
                    "sent_at": "2026-11-29T10:00:00Z"},
    }, separators=(",", ":"))
    sig = "v1," + base64.b64encode(hmac.new(key, f"{wid}.{ts}.{body}".encode(), hashlib.sha256).digest()).decode()
    return ["Content-Type: application/json", f"webhook-id: {wid}", f"webhook-timestamp: {ts}",
            f"webhook-signature: {sig}"], body


def twilio(a, n, token, _ts):
    params = {
        "AccountSid": "AC" + "0" * 32, "ApiVersion": "2010-04-01", "Body": f"benchmark message {n}: please call me back",
        "From": f"+1555{n % 10000000:07d}", "To": "+15559990000", "MessageSid": f"SM{a.run_id}{n:020d}"[:34],
        "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received",
    }
    data = a.url + "".join(k + params[k] for k in sorted(params))
    sig = base64.b64encode(hmac.new(token, data.encode(), hashlib.sha1).digest()).decode()
    return ["Content-Type: application/x-www-form-urlencoded", f"X-Twilio-Signature: {sig}"], urlencode(params)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=["portal", "twilio"], default="portal")
    ap.add_argument("--secret", required=True, help="portal: whsec_<base64>; twilio: the auth token")
    ap.add_argument("--url", default="", help="twilio: the URL the daemon computes the signature over")
    ap.add_argument("--count", type=int, default=200000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=1, help="split round-robin into OUT.0..OUT.<n-1>")
    ap.add_argument("--run-id", default=str(int(time.time())), help="prefix making ids unique across runs")
    a = ap.parse_args()

    if a.kind == "portal":
        key = base64.b64decode(a.secret[len("whsec_"):] if a.secret.startswith("whsec_") else a.secret)
        make = portal
    else:
        key = a.secret.encode()
        make = twilio
    ts = str(int(time.time()))
    outs = ([open(f"{a.out}.{i}", "w") for i in range(a.threads)] if a.threads > 1 else [open(a.out, "w")])
    t0 = time.monotonic()
    for n in range(a.count):
        headers, body = make(a, n, key, ts)
        outs[n % len(outs)].write("\t".join(headers) + "\t" + body + "\n")
    for f in outs:
        f.close()
    print(f"generated {a.count} signed {a.kind} requests in {time.monotonic() - t0:.1f}s "
          f"({len(outs)} file(s), timestamp {ts})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
