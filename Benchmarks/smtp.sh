#!/usr/bin/env bash
# SMTP intake benchmark: Postfix's own load generator (smtp-source) against switchboardd's
# SMTP listener and, in the same run, against a private local Postfix whose queue is on the
# same disk (the same temp dir as the daemon's store). Both acknowledge a message only after
# it is on disk (switchboardd: the SQLite commit with synchronous=FULL; Postfix: the fsynced
# queue file); Postfix then hands its copy to the discard transport.
#
#   Benchmarks/smtp.sh
#
# Environment knobs (defaults):
#   SWITCHBOARD_BIN_DIR  binaries (default: <repo>/.build/release if it has switchboardd, else .build/debug)
#   MESSAGES=4000 SESSIONS=20 SIZE=5120   smtp-source -m, -s and -l (payload bytes, headers extra)
#   KEEP=0               1 keeps the temp dir (configs, DB, logs) for inspection
#
# Prints one SMTP-BENCH line per target: messages, seconds, messages per second. Needs root
# (Postfix's queue belongs to its own user) and the postfix package (smtp-source is in it).
set -euo pipefail

# shellcheck source=lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
MESSAGES=${MESSAGES:-4000}; SESSIONS=${SESSIONS:-20}; SIZE=${SIZE:-5120}

command -v smtp-source >/dev/null || { echo "smtp-source not installed (apt-get install -y postfix)" >&2; exit 2; }
command -v postfix >/dev/null || { echo "postfix not installed" >&2; exit 2; }
[ -x "$BIN/switchboardd" ] || { echo "no switchboardd in $BIN" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root (a private Postfix instance needs it)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/switchboard-smtp-bench.XXXXXX)
chmod 755 "$WORK"
PF="$WORK/postfix"
cleanup() {
  stop_daemon
  [ -f "$PF/queue/pid/master.pid" ] && postfix -c "$PF/etc" stop >/dev/null 2>&1 || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT INT TERM


HTTP_PORT=$(free_port); SB_PORT=$(free_port); PF_PORT=$(free_port)

# ---- switchboardd
mkdir -p "$WORK/var"
cat > "$WORK/switchboard.yaml" <<YAML
http:
  host: "127.0.0.1"
  port: $HTTP_PORT
store:
  path: "$WORK/var/switchboard.sqlite"
log:
  level: "warning"
  format: "logfmt"
email:
  smtp_host: "127.0.0.1"
  smtp_port: $SB_PORT
  hostname: "mx.clinic.example"
  accepted_domains: "clinic.example"
  max_connections: 200
YAML
timeout -s TERM 600 "$BIN/switchboardd" --config "$WORK/switchboard.yaml" \
  > "$WORK/daemon.stdout.log" 2> "$WORK/daemon.stderr.log" < /dev/null &
DPID=$!
wait_port "$SB_PORT" || { echo "switchboardd did not listen"; tail -20 "$WORK/daemon.stderr.log"; exit 1; }

# ---- private Postfix: accepts for clinic.example, queues, then discards
mkdir -p "$PF/etc" "$PF/queue" "$PF/data"; chown postfix "$PF/data"
cat > "$PF/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
maillog_file = $PF/maillog
maillog_file_prefixes = $WORK
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.example.test
mydomain = example.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
relay_domains = clinic.example
relay_recipient_maps =
default_transport = discard
relay_transport = discard
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject
smtpd_tls_security_level = none
smtp_host_lookup = native
default_process_limit = 100
CF
sed "s/__PORT__/$PF_PORT/" "$(cd "$(dirname "$0")/.." && pwd)/tests/postfix-master.cf" > "$PF/etc/master.cf"
postfix -c "$PF/etc" start >/dev/null 2>&1 || { script -qec "postfix -c $PF/etc start" /dev/null; exit 1; }
wait_port "$PF_PORT" || { echo "postfix did not listen"; cat "$PF/maillog" 2>/dev/null | tail; exit 1; }

run() {  # name port
  local start end
  smtp-source -s "$SESSIONS" -l "$SIZE" -m 200 -M bench.example.net -f patient@example.net -t support@clinic.example \
    "127.0.0.1:$2" >/dev/null   # warm-up (connections, caches, page cache)
  start=$(date +%s.%N)
  smtp-source -s "$SESSIONS" -l "$SIZE" -m "$MESSAGES" -M bench.example.net -f patient@example.net \
    -t support@clinic.example "127.0.0.1:$2"
  end=$(date +%s.%N)
  $PY -c "import sys; m=$MESSAGES; s=$end-$start; print(f'SMTP-BENCH target=$1 messages={m} sessions=$SESSIONS payload_bytes=$SIZE seconds={s:.2f} msgs_per_sec={m/s:.0f}')"
}

echo "binaries: $BIN; $(nproc) cores; $MESSAGES messages of $SIZE bytes over $SESSIONS sessions" >&2
run switchboardd "$SB_PORT"
run postfix "$PF_PORT"
metrics=$(curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics")
for outcome in stored duplicate; do
  n=$(echo "$metrics" | awk -v o="outcome=\"$outcome\"" '/^switchboard_mail_in_total/ && index($0, o) {s+=$2} END {print s+0}')
  echo "switchboardd switchboard_mail_in_total{outcome=\"$outcome\"} = $n" >&2
done
