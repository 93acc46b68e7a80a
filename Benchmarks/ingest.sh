#!/usr/bin/env bash
# Ingest benchmark: distinct signed webhooks into a running daemon with wrk, then the same
# at half the measured rate for the latency under normal load.
#
#   Benchmarks/ingest.sh [portal|twilio]      (default portal)
#
# Environment knobs (defaults):
#   SWITCHBOARD_BIN_DIR  binaries (default: <repo>/.build/release if it has switchboardd, else .build/debug)
#   N=200000             distinct pre-signed requests to generate
#   THREADS=2 CONNS=16 DURATION=10s   wrk parameters
#   HALF=1               also run at half the measured rate (per-connection delay) and report p99
#   COMPARE=1            in the same run, measure the yardsticks: SQLite's own durable rates on the
#                        same disk (sqlite_baseline.py), and a minimal Hummingbird server (hello-bench)
#                        under the same wrk load right before each round; print each round's ratio
#                        (ROUND lines) and the medians (COMPARE line)
#   ROUNDS=3             rounds of yardstick-then-daemon, each daemon fresh on an empty store (the
#                        machine's speed drifts between minutes: a ratio is taken within a round)
#   KEEP=0               1 keeps the temp dir (config, DB, daemon log) for inspection
#   ACK=stored           portal.acknowledge: stored (202 once the message is in its conversation)
#                        or received (202 once the delivery is in the inbound queue); with
#                        received the script also waits for the backlog to be stored and
#                        triaged and prints DRAIN (seconds, and the end-to-end rate)
#   MAX_BACKLOG=20000    store.max_backlog: acknowledged deliveries that may wait (ACK=received)
#   STEADY=              a rate (req/s): instead of maximum rate, each round offers about that
#                        many requests a second for DURATION, and prints a STEADY line with the
#                        largest inbound backlog and unstored count seen (sampled every 0.25 s):
#                        whether storing keeps up with a load it should manage (use COMPARE=0 HALF=0),
#                        and per message stored meanwhile the daemon's CPU (daemon_cpu_us_per_msg),
#                        the store's commits (commits_per_msg) and the writes they carried (writes_per_msg)
#
# Everything binds 127.0.0.1; the daemon and wrk are bounded by `timeout`; the daemon is stopped
# by its PID on exit. Prints wrk's own report and one PORTAL-BENCH line (req/s, latency
# percentiles, 2xx / non-2xx counts), then the daemon's stored message count from /metrics if any.
set -euo pipefail

# shellcheck source=lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
KIND=${1:-portal}
case "$KIND" in portal) ROUTE=/webhooks/portal ;; twilio) ROUTE=/webhooks/sms/twilio ;; *) echo "usage: $0 [portal|twilio]" >&2; exit 2 ;; esac
N=${N:-200000}; THREADS=${THREADS:-2}; CONNS=${CONNS:-16}; DURATION=${DURATION:-10s}

command -v wrk >/dev/null || { echo "wrk not installed (apt-get install -y wrk)" >&2; exit 2; }
[ -x "$BIN/switchboardd" ] || { echo "no switchboardd in $BIN" >&2; exit 2; }

WORK=$(mktemp -d /tmp/switchboard-bench.XXXXXX)
cleanup() {
  stop_daemon
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT INT TERM

PORT=$(free_port)
SECRET="whsec_$($PY -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')"
TOKEN=$($PY -c 'import os; print(os.urandom(16).hex())')
mkdir -p "$WORK/var"
cat > "$WORK/switchboard.yaml" <<YAML
http:
  host: "127.0.0.1"
  port: $PORT
store:
  path: "$WORK/var/switchboard.sqlite"
  max_backlog: ${MAX_BACKLOG:-20000}
log:
  level: "warning"
  format: "logfmt"
portal:
  webhook_secret: "$SECRET"
  timestamp_tolerance_seconds: 300
  max_body_bytes: 262144
  outbound_url: ""
  acknowledge: "${ACK:-stored}"
twilio:
  auth_token: "$TOKEN"
  public_url: "http://127.0.0.1:$PORT"
outbox:
  poll_interval_ms: 1000
YAML

echo "binaries: $BIN" >&2
echo "generating $N signed requests..." >&2
if [ "$KIND" = portal ]; then
  $PY "$HERE/gen_signed.py" --kind portal --secret "$SECRET" --count "$N" --out "$WORK/requests.tsv" --threads "$THREADS"
else
  $PY "$HERE/gen_signed.py" --kind twilio --secret "$TOKEN" --url "http://127.0.0.1:$PORT$ROUTE" --count "$N" \
    --out "$WORK/requests.tsv" --threads "$THREADS"
fi

DUR_S=${DURATION%s}
run_wrk() {  # $1 = per-connection delay in ms (0 = as fast as possible), $2 = base URL, $3 = output tag
  timeout -s INT $((DUR_S + 60)) wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 5s --latency \
    -s "$HERE/signed_requests.lua" "$2$ROUTE" -- "$WORK/requests.tsv" "$THREADS" "$1" | tee "$WORK/wrk.$3.out"
}
# The per-connection delay (ms) at which CONNS connections offer about $1 requests a second
# ($1 may be an arithmetic expression, such as "$RATE / 2").
delay_for() { $PY -c "print(max(1, round($CONNS * 1000 / ($1))))"; }
rate_of() { sed -n 's/.*req_per_s=\([0-9.]*\).*/\1/p' "$WORK/wrk.$1.out"; }

if [ "${COMPARE:-1}" = 1 ]; then
  echo "== yardstick: SQLite on this disk (WAL, synchronous=FULL)" >&2
  $PY "$HERE/sqlite_baseline.py" "$WORK" 5 | tee "$WORK/sqlite.out"
  [ -x "$BIN/hello-bench" ] || echo "no hello-bench in $BIN (swift build -c release --product hello-bench); skipping that yardstick" >&2
fi

hello_round() {  # $1 = round
  HELLO_PORT=$(free_port)
  timeout -s TERM 120 "$BIN/hello-bench" "$HELLO_PORT" > /dev/null 2>&1 &
  HELLO_PID=$!
  wait_port "$HELLO_PORT" || { echo "hello-bench did not start" >&2; exit 1; }
  echo "== round $1: yardstick, minimal Hummingbird server (hello-bench), same requests" >&2
  run_wrk 0 "http://127.0.0.1:$HELLO_PORT" "hello.$1"
  kill -TERM "$HELLO_PID" 2>/dev/null || true; wait "$HELLO_PID" 2>/dev/null || true
}

start_daemon() {
  rm -rf "$WORK/var"; mkdir -p "$WORK/var"
  # the previous round's writes (tens of MB of WAL and database) go to disk now, not under
  # this round's fsyncs
  sync
  # bounded: the daemon can never outlive the benchmark by more than this
  timeout -s TERM 300 "$BIN/switchboardd" --config "$WORK/switchboard.yaml" \
    >> "$WORK/daemon.stdout.log" 2>> "$WORK/daemon.stderr.log" < /dev/null &
  DPID=$!
  for i in $(seq 300); do
    if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/readyz" 2>/dev/null; then break; fi
    kill -0 "$DPID" 2>/dev/null || { echo "switchboardd exited early:" >&2; tail -20 "$WORK/daemon.stderr.log" >&2; exit 1; }
    [ "$i" = 300 ] && { echo "switchboardd not ready after 30 s" >&2; tail -20 "$WORK/daemon.stderr.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "switchboardd pid=$DPID ready on 127.0.0.1:$PORT" >&2
  # The triage classifier trains for a few seconds after start while intake already runs (one
  # core's worth): measure the daemon as it runs for the rest of its life, not while it trains.
  for i in $(seq 600); do
    curl -fsS --max-time 1 "http://127.0.0.1:$PORT/metrics" 2>/dev/null | grep -q '^switchboard_triage_ready 1' && break
    [ "$i" = 600 ] && echo "triage not ready after 60 s; measuring anyway" >&2
    sleep 0.1
  done
  # smoke: the first pre-generated request must be accepted, otherwise the numbers mean nothing
  # (use the last line of thread 0's file so wrk's first requests are still fresh)
  SMOKE=$( (if [ "$THREADS" -gt 1 ]; then tail -1 "$WORK/requests.tsv.0"; else tail -1 "$WORK/requests.tsv"; fi) )
  # the line's header fields become curl -H arguments; the last field is the body
  SMOKE_ARGS=(); IFS=$'\t' read -r -a FIELDS <<< "$SMOKE"
  for ((k = 0; k < ${#FIELDS[@]} - 1; k++)); do SMOKE_ARGS+=(-H "${FIELDS[k]}"); done
  CODE=$(curl -sS -o "$WORK/smoke.out" -w '%{http_code}' --max-time 10 -X POST "http://127.0.0.1:$PORT$ROUTE" \
    "${SMOKE_ARGS[@]}" --data-binary "${FIELDS[${#FIELDS[@]}-1]}")
  echo "smoke request -> HTTP $CODE $(head -c 200 "$WORK/smoke.out")" >&2
  case "$CODE" in 200|202) ;; *) echo "smoke request not accepted; aborting" >&2; exit 1 ;; esac
}

# Rounds, each the yardstick then the daemon (fresh, on an empty store) under the same load:
# this machine's speed drifts by ±15% from one minute to the next, so the ratio is taken within
# each round and the median reported. The last round's daemon stays up for what follows.
ROUNDS=${ROUNDS:-3}
for ROUND in $(seq "$ROUNDS"); do
  if [ "${COMPARE:-1}" = 1 ] && [ -x "$BIN/hello-bench" ]; then hello_round "$ROUND"; fi
  start_daemon
  if [ -n "${STEADY:-}" ]; then
    DELAY=$(delay_for "$STEADY")
    echo "== round $ROUND: $KIND, steady ~$STEADY req/s (delay $DELAY ms per connection; portal.acknowledge: ${ACK:-stored})" >&2
    # the daemon itself (DPID is the `timeout` around it), for its CPU time; if it cannot be
    # found the figure is reported as nan rather than read from the wrapper
    DAEMON_PID=$(pgrep -P "$DPID" -x switchboardd || true)
    $PY - "http://127.0.0.1:$PORT/metrics" "$WORK/steady.stop" "$DAEMON_PID" > "$WORK/steady.$ROUND.out" <<'PYEOF' &
import os, sys, time
from metrics import scrape, total
url, stop, pid = sys.argv[1], sys.argv[2], sys.argv[3]
def cpu_seconds():
    # utime + stime, fields 14 and 15 of /proc/PID/stat (counted after the command's ")")
    if not pid:
        return float("nan")
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
peak_backlog = peak_untriaged = 0
first = last = None  # (cpu seconds, messages stored, store commits, writes committed)
while not os.path.exists(stop):
    text = scrape(url)
    stored = total(text, "switchboard_messages_in_total")
    peak_backlog = max(peak_backlog, total(text, "switchboard_inbound_backlog"))
    peak_untriaged = max(peak_untriaged, stored - total(text, "switchboard_triage_total"))
    last = (cpu_seconds(), stored, total(text, "switchboard_store_commits_total"), total(text, "switchboard_store_writes_total"))
    first = first or last
    time.sleep(0.25)
# Per message stored while the load ran: the daemon's CPU (all its threads: HTTP, storing,
# triage, routing), comparable between builds where rates, on this machine, are not; and the
# store's commits (each one a WAL append and an fsync) and the writes they carried.
def per_message(index, scale=1.0):
    if not first or last[1] <= first[1]:
        return float("nan")
    return (last[index] - first[index]) * scale / (last[1] - first[1])
print(f"backlog_max={peak_backlog:.0f} stored_not_triaged_max={peak_untriaged:.0f} "
      f"daemon_cpu_us_per_msg={per_message(0, 1e6):.0f} commits_per_msg={per_message(2):.2f} writes_per_msg={per_message(3):.2f}")
PYEOF
    SAMPLER=$!
    rm -f "$WORK/steady.stop"
    run_wrk "$DELAY" "http://127.0.0.1:$PORT" "$ROUND"
    touch "$WORK/steady.stop"; wait "$SAMPLER" || true; rm -f "$WORK/steady.stop"
    echo "STEADY round=$ROUND offered=$STEADY achieved=$(rate_of "$ROUND") $(cat "$WORK/steady.$ROUND.out")"
  else
    echo "== round $ROUND: $KIND, maximum rate (portal.acknowledge: ${ACK:-stored})" >&2
    run_wrk 0 "http://127.0.0.1:$PORT" "$ROUND"
  fi
  LOAD_END=$(date +%s.%N)
  [ "$ROUND" = "$ROUNDS" ] || stop_daemon
done
cp "$WORK/wrk.$ROUNDS.out" "$WORK/wrk.0.out"
LOAD_S=$(sed -n 's/.*duration_s=\([0-9.]*\).*/\1/p' "$WORK/wrk.0.out")
# Everything acknowledged must also be stored and triaged: wait until nothing is waiting
# (inbound backlog 0, stored == triaged) and report how long that took after the load, and
# the end-to-end rate: stored / (load seconds + seconds to drain).
$PY - "http://127.0.0.1:$PORT/metrics" "$LOAD_S" "$LOAD_END" <<'PYEOF'
import sys, time
from metrics import scrape, total
url, load_s, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
def totals():
    text = scrape(url)
    return total(text, "switchboard_inbound_backlog"), total(text, "switchboard_messages_in_total"), \
        total(text, "switchboard_triage_total")
deadline = time.time() + 600
while True:
    backlog, stored, triaged = totals()
    if (backlog == 0 and stored == triaged) or time.time() > deadline:
        break
    time.sleep(0.2)
done = time.time()
print(f"DRAIN after_load_s={done - end:.1f} stored={stored:.0f} triaged={triaged:.0f} backlog={backlog:.0f} "
      f"end_to_end_msg_per_s={stored / (load_s + done - end):.0f}")
PYEOF
# The median of the rounds' rates (the middle one; the lower middle with an even count).
median_rate() {  # $1 = tag prefix ("" for the daemon, "hello." for the yardstick)
  for r in $(seq "$ROUNDS"); do [ -f "$WORK/wrk.$1$r.out" ] && rate_of "$1$r"; done | sort -g \
    | awk '{v[NR]=$1} END{print (NR ? v[int((NR+1)/2)] : 0)}'
}
if [ "${HALF:-1}" = 1 ]; then
  RATE=$(median_rate "")
  # each connection waits so that CONNS connections offer about RATE/2 requests per second
  DELAY=$(delay_for "$RATE / 2")
  echo "== $KIND: half rate (~$($PY -c "print(round($RATE / 2))") req/s offered, delay ${DELAY} ms per connection)" >&2
  run_wrk "$DELAY" "http://127.0.0.1:$PORT" half
fi
if [ "${COMPARE:-1}" = 1 ]; then
  PER_ROW=$(sed -n 's/.*per_row_rows_per_s=\([0-9]*\).*/\1/p' "$WORK/sqlite.out")
  BATCH=$(sed -n 's/.*batch100_rows_per_s=\([0-9]*\).*/\1/p' "$WORK/sqlite.out")
  PAIRS=""
  for r in $(seq "$ROUNDS"); do
    PAIRS="$PAIRS $(rate_of "$r"):$( [ -f "$WORK/wrk.hello.$r.out" ] && rate_of "hello.$r" || echo 0)"
  done
  $PY - "$KIND" "$PER_ROW" "$BATCH" $PAIRS <<'PYEOF'
import statistics, sys
kind, per_row, batch = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rounds = [tuple(map(float, pair.split(":"))) for pair in sys.argv[4:]]
for n, (ingest, hello) in enumerate(rounds, 1):
    print(f"ROUND {n} ingest_req_per_s={ingest:.0f} hello_req_per_s={hello:.0f} "
          f"ingest_vs_hello={ingest / hello if hello else float('nan'):.2f}")
ratios = [i / h for i, h in rounds if h]
ingest = statistics.median_low([i for i, _ in rounds])
hello = statistics.median_low([h for _, h in rounds])
ratio = f"{statistics.median_low(ratios):.2f}" if ratios else "n/a"
print(f"COMPARE kind={kind} rounds={len(rounds)} ingest_req_per_s={ingest:.0f} hello_req_per_s={hello:.0f} "
      f"sqlite_per_row={per_row:.0f} sqlite_batch100={batch:.0f} ingest_vs_hello={ratio} (median of the rounds' ratios; goal >= 0.3) "
      f"ingest_vs_sqlite_per_row={ingest / per_row if per_row else float('nan'):.2f} (median rate; goal >= 3)")
PYEOF
fi

# Triage must keep up with ingest, or emergencies wait behind the backlog: how many stored
# messages were still untriaged when the load stopped.
curl -fsS --max-time 5 "http://127.0.0.1:$PORT/metrics" 2>/dev/null | $PY -c '
import sys
from metrics import total
text = sys.stdin.read()
stored, triaged = total(text, "switchboard_messages_in_total"), total(text, "switchboard_triage_total")
print(f"TRIAGE-LAG stored={stored:.0f} triaged={triaged:.0f} untriaged_at_end={stored - triaged:.0f}")' || true
echo "--- daemon after the run:" >&2
curl -fsS --max-time 5 "http://127.0.0.1:$PORT/metrics" 2>/dev/null \
  | grep -Ei '^(switchboard_)?[a-z_]*(portal|webhook|message|ingest|store_commits|store_writes)[a-z_]*(\{[^}]*\})? ' | head -20 || true
echo "daemon stderr lines: $(wc -l < "$WORK/daemon.stderr.log")" >&2
