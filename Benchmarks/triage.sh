#!/usr/bin/env bash
# Triage speed: messages classified per second on one core, through `switchboard triage classify`
# (JSON in, JSON with evidence out), over N messages drawn from the training corpus.
#
#   Benchmarks/triage.sh            N=20000 by default; SWITCHBOARD_BIN_DIR picks the build
#
# The classifier is single-threaded, so the figure is per core. Training time (at start) is
# reported separately from the classification rate.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BIN=${SWITCHBOARD_BIN_DIR:-$REPO/.build/release}
[ -x "$BIN/switchboard" ] || BIN=$REPO/.build/debug
N=${N:-20000}
WORK=$(mktemp -d /tmp/switchboard-triage.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
python3 - "$N" "$WORK/in.jsonl" "$REPO/triage/corpus" <<'PY'
import json, pathlib, sys
n, out, corpus = int(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
rows = [json.loads(l) for p in sorted(corpus.glob("*.jsonl")) for l in p.read_text().splitlines() if l.strip()]
with open(out, "w") as f:
    for i in range(n):
        r = rows[i % len(rows)]
        f.write(json.dumps({"channel": r["channel"], "subject": r["subject"], "text": r["text"]}) + "\n")
PY
echo '{"text":"warm up"}' > "$WORK/one.jsonl"
t0=$(date +%s.%N); "$BIN/switchboard" triage classify < "$WORK/one.jsonl" > /dev/null; t1=$(date +%s.%N)
"$BIN/switchboard" triage classify < "$WORK/in.jsonl" > "$WORK/out.jsonl"; t2=$(date +%s.%N)
python3 - "$t0" "$t1" "$t2" "$N" "$WORK/out.jsonl" <<'PY'
import sys
t0, t1, t2, n = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
lines = sum(1 for _ in open(sys.argv[5]))
start = t1 - t0                      # process start + training + one message
rate = n / max((t2 - t1) - start, 1e-9)
print(f"TRIAGE-BENCH messages={lines} training_and_start_s={start:.2f} messages_per_second_one_core={rate:.0f}")
PY
