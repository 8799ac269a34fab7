#!/usr/bin/env bash
# Isolation of user code: campaign B (one redirect stream, no user code) under wrk, alone and
# beside campaign A running one hostile kind at a fixed rate (bench loadgen, open loop),
# interleaved in one run: B alone, B + A(kind 1), B alone, B + A(kind 2), ...
#
#   bash bench/isolation.sh        # ~3 minutes of load after the build; prints a summary
#
# Hostile kinds (the gate filter of A's forced stream, a default stream behind it):
#   spin       Rhai `loop {}`: stopped at the 5 ms budget on every call
#   heavy      Rhai `map` over a 4,000-item array twice: single heavy operations
#   slow_half  Rhai spinning on every other call (the intermittent slow script; stopped at 5 ms)
#   sleep20    native filter sleeping 20 ms per call (returns, past the budget)
#   hang       native filter that never returns
#   flaky      native filter failing one call in 2
# The guard's ratio switch is turned off for the run ([user_code] min_calls = 1000000), so
# what contains each kind is the pool, the deadline and the time budget, not the kind being
# disabled after its first calls (the hang is still disabled after hang_after, by design).
#
# Goal (issue #19): B keeps >= 80% of its alone throughput and its p99 stays under 2x, for
# every kind. Loopback only. Knobs: ROUNDS (2), RUN_SECONDS (8), A_RATE (200 req/s),
# THREADS (2), CONNECTIONS (32), BUILD (1; 0 reuses release binaries), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

ROUNDS=${ROUNDS:-2}
RUN_SECONDS=${RUN_SECONDS:-8}
A_RATE=${A_RATE:-200}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/switchyard-target-bench}
KEY="isolation-bench-admin-key-0123"

say() { echo "== $*" >&2; }
command -v wrk >/dev/null 2>&1 || apt-get install -y wrk >/dev/null

if [ "${BUILD:-1}" != 0 ]; then
  say "building (release, once)"
  cargo build --release -p switchyard -p switchyard-bench -p switchyard-misbehaving
fi
bin="$CARGO_TARGET_DIR/release"

work=$(mktemp -d)
sy_pid=""
cleanup() {
  [ -n "$sy_pid" ] && { kill "$sy_pid" 2>/dev/null || true; wait "$sy_pid" 2>/dev/null || true; }
  if [ -z "${KEEP_WORK:-}" ]; then rm -rf "$work"; else say "kept $work"; fi
}
trap cleanup EXIT

mkdir -p "$work/db" "$work/scripts/filters" "$work/plugins"
cp "$bin/libswitchyard_misbehaving.so" "$work/plugins/"
cat >"$work/scripts/filters/spin.rhai" <<'RHAI'
fn filter(click, params) { loop { } }
RHAI
cat >"$work/scripts/filters/heavy.rhai" <<'RHAI'
fn filter(click, params) { let a = []; a.pad(4000, 1); let b = a.map(|x| x + 1); b.map(|x| x * 2).len() == 0 }
RHAI
cat >"$work/scripts/filters/slow_half.rhai" <<'RHAI'
fn filter(click, params) {
  if hash(click.sub_id) % 2 == 0 { loop { } }
  false
}
RHAI

cat >"$work/config.toml" <<TOML
[server]
listen = "127.0.0.1:0"
data_dir = "data"

[database]
url = "sqlite://$work/db/switchyard.db"

[admin]
api_key = "$KEY"

[demo]
seed = false

[recorder]
durability = "memory"

[log]
level = "error"

[scripts]
dir = "scripts"

[plugins]
dir = "plugins"

[user_code]
min_calls = 1000000
TOML

"$bin/switchyard" --config "$work/config.toml" serve >"$work/switchyard.out" 2>"$work/switchyard.err" &
sy_pid=$!
for _ in $(seq 1 100); do
  addr=$(sed -n 's|.*listening on http://||p' "$work/switchyard.out" | head -n 1)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/switchyard.err" >&2; exit 1; }
say "switchyard pid $sy_pid on $addr"

api() { curl -sf -H "Api-Key: $KEY" -H 'Content-Type: application/json' "$@"; }
id_of() { sed 's/.*"id":\([0-9]*\).*/\1/'; }
campaign() { # alias -> id
  api -X POST "http://$addr/admin_api/v1/campaigns" -d "{\"alias\":\"$1\",\"name\":\"$1\"}" | id_of
}
stream() { # campaign_id type url [filter payload]
  local filters="[]"
  [ -n "${4:-}" ] && filters="[{\"name\":\"$4\",\"mode\":\"accept\",\"payload\":$5}]"
  api -X POST "http://$addr/admin_api/v1/streams" -d "{\"campaign_id\":$1,\"type\":\"$2\",\"name\":\"s\",\"schema\":\"redirect\",\"action_type\":\"http\",\"action_payload\":\"$3\",\"filters\":$filters}" >/dev/null
}

b=$(campaign plain)
stream "$b" regular "https://plain.test/"
kinds="spin heavy slow_half sleep20 hang flaky"
for kind in $kinds; do
  case $kind in
    spin|heavy|slow_half) filter="script:$kind" payload='{}' ;;
    sleep20) filter="native:misbehaving_sleep" payload='{"sleep_ms":20}' ;;
    hang) filter="native:misbehaving_hang" payload='null' ;;
    flaky) filter="native:misbehaving_flaky" payload='{"fail_every":2}' ;;
  esac
  a=$(campaign "a-$kind")
  stream "$a" forced "https://gate.test/" "$filter" "$payload"
  stream "$a" default "https://default.test/"
done
sleep 1
for alias in plain $(for k in $kinds; do echo "a-$k"; done); do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$addr/$alias")
  [ "$code" = 302 ] || { echo "GET /$alias answered $code" >&2; exit 1; }
done

b_run() { # label -> "rps p99_ms"
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${RUN_SECONDS}s" --latency "http://$addr/plain")
  echo "$out" >>"$work/wrk.log"
  local rps p99
  rps=$(echo "$out" | awk '/Requests\/sec/ { print int($2) }')
  p99=$(echo "$out" | awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 }; print v }')
  echo "$rps $p99"
}

echo "round kind b_rps b_p99_ms a_result" >"$work/rounds.txt"
for round in $(seq 1 "$ROUNDS"); do
  for kind in $kinds; do
    say "round $round: B alone"
    echo "$round alone $(b_run) -" | tee -a "$work/rounds.txt" >&2
    say "round $round: B beside A($kind) at $A_RATE req/s"
    "$bin/loadgen" --addr "$addr" --alias "a-$kind" --rate "$A_RATE" --duration $((RUN_SECONDS + 2)) \
      --connections 8 --data bench/data --offset $((round * 1000000)) >"$work/a.out" 2>&1 &
    a_pid=$!
    sleep 1
    line=$(b_run)
    wait "$a_pid" || true
    a_line=$(grep '^RESULT' "$work/a.out" | tr ' ' ',' || echo "-")
    echo "$round $kind $line $a_line" | tee -a "$work/rounds.txt" >&2
  done
done

curl -s "http://$addr/health" >"$work/health.json"
echo
echo "Isolation: B alone vs B beside A(kind) at $A_RATE req/s; wrk $THREADS threads, $CONNECTIONS connections, ${RUN_SECONDS}s"
awk '
  NR == 1 { next }
  $2 == "alone" { alone_rps += $3; alone_p99[++n] = $4; next }
  { rps[$2] += $3; p99[$2] = ($4 > p99[$2]) ? $4 : p99[$2]; runs[$2]++ }
  END {
    base = alone_rps / n; worst = 0
    for (i = 1; i <= n; i++) if (alone_p99[i] > worst) worst = alone_p99[i]
    printf "B alone: %d req/s (mean of %d runs), p99 worst %.2f ms\n", base, n, worst
    for (k in rps) printf "%-8s B %6d req/s (%.2fx alone), p99 worst %6.2f ms (%.2fx)\n", k, rps[k] / runs[k], rps[k] / runs[k] / base, p99[k], p99[k] / worst
  }' "$work/rounds.txt"
echo
echo "user-code pool and kinds at the end:"
sed 's/.*"user_code":\({[^}]*}\).*/\1/' "$work/health.json"
grep -o '"disabled":\[[^]]*\]' "$work/health.json" || true
