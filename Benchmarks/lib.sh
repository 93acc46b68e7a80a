# Shared by the shell benchmarks (source it): where the binaries are, free ports, and
# stopping the daemon they started.
#   BIN      SWITCHBOARD_BIN_DIR, else <repo>/.build/release if it has switchboardd, else .build/debug
#   PY       python3 (or $PYTHON)
#   DPID     the daemon's pid, set by the script once it starts one

HERE=$(cd "$(dirname "${BASH_SOURCE[1]:-$0}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
if [ -n "${SWITCHBOARD_BIN_DIR:-}" ]; then BIN=$SWITCHBOARD_BIN_DIR
elif [ -x "$REPO/.build/release/switchboardd" ]; then BIN=$REPO/.build/release
else BIN=$REPO/.build/debug; fi
PY=${PYTHON:-python3}
# the inline Python reads /metrics with Benchmarks/metrics.py
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}"
DPID=""

# A free TCP port on 127.0.0.1.
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# Returns 0 once 127.0.0.1:PORT accepts a connection (30 s at most).
wait_port() { for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# TERM the daemon, give it 10 s, then KILL it.
stop_daemon() {
  if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
    kill -TERM "$DPID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DPID" 2>/dev/null || true
  fi
}
