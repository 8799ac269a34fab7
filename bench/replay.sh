#!/usr/bin/env bash
# Replay rate of the click journal after a crash: the tracker answers clicks while its SQLite
# database is locked (so they pile up in the journal), is killed with SIGKILL, and is started
# again on an unlocked database; the script reports how many journal records the new start
# wrote and how long that took (from the start command to an empty backlog).
#
#   bash bench/replay.sh       # uses the release binaries (builds them unless BUILD=0)
#
# Loopback only (127.0.0.1); bounded in time. Knobs: LOAD_SECONDS (8), CONNECTIONS (16),
# DURABILITY (process), BUILD (1), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
LOAD_SECONDS=${LOAD_SECONDS:-8}
CONNECTIONS=${CONNECTIONS:-16}
DURABILITY=${DURABILITY:-process}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/switchyard-target-bench}
say() { echo "== $*" >&2; }

command -v wrk >/dev/null 2>&1 || apt-get install -y wrk >/dev/null
if [ "${BUILD:-1}" != 0 ]; then
  cargo build --release -p switchyard -p switchyard-bench # as load.sh: the same features, one build
fi
bin="$CARGO_TARGET_DIR/release/switchyard"
work=$(mktemp -d)
pids=""
cleanup() {
  for pid in $pids; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/config.toml" <<EOF
[server]
listen = "127.0.0.1:0"
data_dir = "data"

[database]
url = "sqlite://$work/db/switchyard.db"

[recorder]
durability = "$DURABILITY"

[log]
level = "info"
EOF

start() { # -> address; the process id in $work/pid.N
  "$bin" --config "$work/config.toml" serve >"$work/out.$1" 2>"$work/err.$1" &
  echo $! >"$work/pid.$1"
  for _ in $(seq 1 100); do
    addr=$(sed -n 's|.*listening on http://||p' "$work/out.$1" | head -n 1)
    [ -n "$addr" ] && { echo "$addr"; return 0; }
    sleep 0.1
  done
  cat "$work/err.$1" >&2
  return 1
}
backlog() { curl -s "http://$1/health" | sed -n 's/.*"backlog":\([0-9]*\).*/\1/p'; }

addr=$(start 1)
pids="$pids $(cat "$work/pid.1")"
say "locking the database, then $LOAD_SECONDS s of clicks"
python3 - "$work/db/switchyard.db" "$((LOAD_SECONDS + 5))" <<'EOF' &
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
connection.execute("BEGIN IMMEDIATE")
time.sleep(float(sys.argv[2]))
EOF
lock_pid=$!
pids="$pids $lock_pid"
sleep 1
wrk -t2 -c"$CONNECTIONS" -d"${LOAD_SECONDS}s" "http://$addr/demo" | grep -E "requests in|Requests/sec" >&2
pending=$(backlog "$addr")
kill -9 "$(cat "$work/pid.1")"
kill -9 "$lock_pid"
wait "$lock_pid" 2>/dev/null || true
say "killed with $pending clicks not yet in the database; journal: $(du -sh "$work/data/journal" | cut -f1)"

started=$(date +%s.%N)
addr=$(start 2)
pids="$pids $(cat "$work/pid.2")"
while :; do
  left=$(backlog "$addr")
  [ "${left:-1}" = 0 ] && break
  sleep 0.02
done
finished=$(date +%s.%N)
replayed=$(curl -s "http://$addr/health" | sed -n 's/.*"replayed":\([0-9]*\).*/\1/p')
seconds=$(echo "$finished - $started" | bc -l)
printf 'replayed %s records in %.2f s (start included): %.0f records/s\n' \
  "$replayed" "$seconds" "$(echo "$replayed / $seconds" | bc -l)"
grep -E "Click journal opened|previous run" "$work/err.2" | sed 's/^/  /' >&2
