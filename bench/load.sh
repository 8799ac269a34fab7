#!/usr/bin/env bash
# Load test of the click path: Switchyard's GET /{alias} on the benchmark campaign
# (bench/campaign.json: 10 streams x 5 filters, GeoIP City test DB, UA parsing, uniqueness)
# against a bare axum 302 handler (bare302), measured in the same run, interleaved.
#
#   bash bench/load.sh            # ~4 minutes of load after the build; prints a summary
#
# Three targets per round, in alternating order (A B C, then C B A, ...):
#   A  switchyard /bench     clicks recorded (SQLite)
#   B  bare302               axum, one handler answering 302
#   C  switchyard /bench-nc  the same streams with collect_clicks off
# For each run: wrk throughput and the server's CPU time per request (utime+stime from
# /proc/PID/stat, after the click queue has drained, divided by requests served). Then a
# fixed-rate latency run (bench loadgen, open loop) at half of A's median throughput against
# A and B, interleaved.
#
# Loopback only (127.0.0.1). Every run is bounded in time. Environment knobs:
#   ROUNDS (4), RUN_SECONDS (10), THREADS (2), CONNECTIONS (32), LATENCY_SECONDS (10),
#   LATENCY_ROUNDS (2), KEEP_WORK (unset: the temp dir is removed), CARGO_TARGET_DIR,
#   DATABASE (sqlite; or postgres: a fresh database switchyard_bench on 127.0.0.1:5432, and
#   the CPU per request of that PostgreSQL cluster's processes is reported beside the server's,
#   db_cpu_us/req: every process of the cluster counts, so other work on it counts too, and a
#   backend that exits during a run is left out), DURABILITY (process; or fsync, memory: the
#   recorder's durability level, so the click journal's cost shows against bare302),
#   BUILD (1; 0: use the release binaries already in CARGO_TARGET_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

ROUNDS=${ROUNDS:-4}
RUN_SECONDS=${RUN_SECONDS:-10}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
LATENCY_SECONDS=${LATENCY_SECONDS:-10}
LATENCY_ROUNDS=${LATENCY_ROUNDS:-2}
DATABASE=${DATABASE:-sqlite}
DURABILITY=${DURABILITY:-process}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/switchyard-target-bench}

say() { echo "== $*" >&2; }

if ! command -v wrk >/dev/null 2>&1; then
  say "installing wrk"
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi

if [ "${BUILD:-1}" != 0 ]; then
  say "building (release, once)"
  cargo build --release -p switchyard -p switchyard-bench
fi
bin="$CARGO_TARGET_DIR/release"

work=$(mktemp -d)
# The database in its own directory, as by default (data/): config.toml's directory is watched.
mkdir -p "$work/db"
sy_pid=""
bare_pid=""
cleanup() {
  for pid in $sy_pid $bare_pid; do kill "$pid" 2>/dev/null || true; done
  for pid in $sy_pid $bare_pid; do wait "$pid" 2>/dev/null || true; done
  if [ -z "${KEEP_WORK:-}" ]; then rm -rf "$work"; else say "kept $work"; fi
}
trap cleanup EXIT

case $DATABASE in
  sqlite) db_url="sqlite://$work/db/switchyard.db" ;;
  postgres)
    command -v psql >/dev/null 2>&1 || { echo "DATABASE=postgres needs psql" >&2; exit 1; }
    db_url="postgres://postgres@127.0.0.1:5432/switchyard_bench"
    pg() { psql -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres "$@"; }
    pg -d postgres -c 'DROP DATABASE IF EXISTS switchyard_bench WITH (FORCE)' \
      -c 'CREATE DATABASE switchyard_bench' >&2
    # The cluster's postmaster, whose children are the processes db_ticks adds up.
    postmaster=$(head -n 1 "$(pg -d postgres -c 'SHOW data_directory')/postmaster.pid")
    ;;
  *) echo "DATABASE is sqlite or postgres, not $DATABASE" >&2; exit 1 ;;
esac

cat >"$work/config.toml" <<EOF
[server]
listen = "127.0.0.1:0"
data_dir = "data"

[database]
url = "$db_url"

[demo]
seed = false

[recorder]
durability = "$DURABILITY"

[log]
level = "warn"

[geoip]
city_db = "$repo/tests/data/geoip/GeoIP2-City-Test.mmdb"
EOF

say "creating the benchmark campaigns"
"$bin/bench-setup" --config "$work/config.toml" --campaign bench/campaign.json >&2

# Forwarded IPs are honoured from loopback only (core/src/api/client.rs).
SWITCHYARD_SERVER_TRUSTED_PROXIES='["127.0.0.1/32"]' \
  "$bin/switchyard" --config "$work/config.toml" serve >"$work/switchyard.out" 2>"$work/switchyard.err" &
sy_pid=$!
"$bin/bare302" --listen 127.0.0.1:0 >"$work/bare302.out" 2>"$work/bare302.err" &
bare_pid=$!

listening() { # file -> host:port from "... listening on http://HOST:PORT"
  for _ in $(seq 1 100); do
    addr=$(sed -n 's|.*listening on http://||p' "$1" | head -n 1)
    if [ -n "$addr" ]; then echo "$addr"; return 0; fi
    sleep 0.1
  done
  echo "no address in $1:" >&2; cat "$1" "${1%.out}.err" >&2; return 1
}
sy_addr=$(listening "$work/switchyard.out")
bare_addr=$(listening "$work/bare302.out")
say "switchyard pid $sy_pid on $sy_addr; bare302 pid $bare_pid on $bare_addr"
for probe in "$sy_addr/bench" "$sy_addr/bench-nc" "$bare_addr/bench"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Forwarded-For: 81.2.69.160' "http://$probe")
  [ "$code" = 302 ] || { echo "GET http://$probe answered $code, not 302" >&2; exit 1; }
done

clk_tck=$(getconf CLK_TCK)
cpu_ticks() { # utime + stime of a process, in clock ticks (fields 14, 15 of /proc/PID/stat)
  sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
db_ticks() { # CPU ticks of the PostgreSQL cluster's processes (0 with SQLite: it runs inside the server)
  [ "$DATABASE" = postgres ] || { echo 0; return; }
  local total=0 pid ticks
  for pid in "$postmaster" $(pgrep -P "$postmaster"); do
    ticks=$(cpu_ticks "$pid" 2>/dev/null || true) # empty when the process has just exited
    total=$((total + ${ticks:-0}))
  done
  echo "$total"
}
health() { curl -s "http://$sy_addr/health"; }
drain() { # waits (at most 30 s) until the click queue is empty
  for _ in $(seq 1 300); do
    health | grep -q '"backlog":0' && { sleep 0.2; return 0; }
    sleep 0.1
  done
  echo "the click queue did not drain" >&2
}

run=0
# wrk_run LABEL PID ADDR ALIAS ROUND: one wrk run, one line appended to rounds.txt
wrk_run() {
  local label=$1 pid=$2 addr=$3 alias=$4 round=$5
  run=$((run + 1))
  local before after out db_before db_after
  [ "$pid" = "$sy_pid" ] && drain
  before=$(cpu_ticks "$pid")
  db_before=$(db_ticks)
  out=$(BENCH_DATA="$repo/bench/data" BENCH_ALIAS="$alias" BENCH_OFFSET=$((run * 100000000)) \
    WRK_THREADS="$THREADS" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${RUN_SECONDS}s" --latency \
    -s bench/load.lua "http://$addr/$alias")
  [ "$pid" = "$sy_pid" ] && drain
  after=$(cpu_ticks "$pid")
  db_after=$(db_ticks)
  echo "$out" >>"$work/wrk.log"
  echo "$out" | awk -v label="$label" -v round="$round" -v ticks=$((after - before)) -v hz="$clk_tck" \
    -v dbticks=$((db_after - db_before)) '
    /requests in/ { requests = $1 }
    /Requests\/sec/ { rps = $2 }
    /Non-2xx or 3xx/ { bad = $NF }
    /Socket errors/ { errors = $0 }
    $1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 }
    END {
      printf "%s %d %.0f %d %.2f %.2f %d %s %s %.2f\n", label, round, rps, requests, ticks / hz,
        ticks / hz * 1e6 / requests, bad + 0, p50, p99, dbticks / hz * 1e6 / requests
      if (errors != "") print "   " label " round " round ": " errors > "/dev/stderr"
    }' | tee -a "$work/rounds.txt" >&2
}

say "warm-up (3 s each, not counted)"
for target in "$sy_addr bench" "$bare_addr bench" "$sy_addr bench-nc"; do
  set -- $target
  BENCH_DATA="$repo/bench/data" BENCH_ALIAS=$2 WRK_THREADS="$THREADS" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -s bench/load.lua "http://$1/$2" >/dev/null
done

say "throughput: $ROUNDS rounds x 3 targets x ${RUN_SECONDS}s, $THREADS threads, $CONNECTIONS connections"
echo "target round rps requests cpu_s cpu_us_per_req non_3xx wrk_p50 wrk_p99 db_cpu_us_per_req" >&2
: >"$work/rounds.txt"
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="A B C"; else order="C B A"; fi
  for t in $order; do
    case $t in
      A) wrk_run A "$sy_pid" "$sy_addr" bench "$round" ;;
      B) wrk_run B "$bare_pid" "$bare_addr" bench "$round" ;;
      C) wrk_run C "$sy_pid" "$sy_addr" bench-nc "$round" ;;
    esac
  done
done

# Medians and spreads per target, and per-round ratios against B (same round, adjacent runs).
summary=$(awk '
  { rps[$1, $2] = $3; cpu[$1, $2] = $6; rounds = ($2 > rounds ? $2 : rounds) }
  function median(a, k,   i, j, t) {
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
  }
  function spread(v, fmt,   i, lo, hi, m) {
    lo = 1e18; hi = -1e18
    for (i = 1; i <= rounds; i++) { if (v[i] < lo) lo = v[i]; if (v[i] > hi) hi = v[i] }
    m = median(v, rounds)
    return sprintf("median " fmt " (min " fmt ", max " fmt ")", m, lo, hi)
  }
  END {
    label["A"] = "A switchyard, recording"; label["B"] = "B bare302"; label["C"] = "C switchyard, collect_clicks off"
    split("A B C", ts, " ")
    for (k = 1; k <= 3; k++) {
      t = ts[k]
      for (i = 1; i <= rounds; i++) { r[i] = rps[t, i]; c[i] = cpu[t, i] }
      printf "%-33s req/s %s; CPU us/req %s\n", label[t], spread(r, "%.0f"), spread(c, "%.2f")
    }
    for (k = 1; k <= 3; k += 2) {
      t = ts[k]
      for (i = 1; i <= rounds; i++) { r[i] = rps[t, i] / rps["B", i]; c[i] = cpu[t, i] / cpu["B", i] }
      printf "%s/B throughput ratio %s; CPU/request ratio %s\n", t, spread(r, "%.2f"), spread(c, "%.2f")
    }
  }' "$work/rounds.txt")

a_median=$(awk '$1 == "A" { print $3 }' "$work/rounds.txt" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }')
half=$((a_median / 2))

say "latency: open loop at $half req/s (half of A's median), ${LATENCY_SECONDS}s, A and B interleaved x $LATENCY_ROUNDS"
: >"$work/latency.txt"
for round in $(seq 1 "$LATENCY_ROUNDS"); do
  for t in A B; do
    if [ "$t" = A ]; then addr=$sy_addr; pid=$sy_pid; else addr=$bare_addr; pid=$bare_pid; fi
    run=$((run + 1))
    [ "$t" = A ] && drain
    before=$(cpu_ticks "$pid")
    line=$("$bin/loadgen" --addr "$addr" --alias bench --rate "$half" --duration "$LATENCY_SECONDS" \
      --connections "$CONNECTIONS" --data bench/data --offset $((run * 100000000)) | grep '^RESULT')
    [ "$t" = A ] && drain
    after=$(cpu_ticks "$pid")
    echo "$t $round $line cpu_s=$(awk -v t=$((after - before)) -v hz="$clk_tck" 'BEGIN { printf "%.2f", t / hz }')" |
      tee -a "$work/latency.txt" >&2
  done
done

recorder=$(health | sed 's/.*"recorder":\({[^}]*}\).*/\1/')
count='SELECT count(*), sum(is_unique_campaign::int), count(DISTINCT stream_id) FROM clicks'
if [ "$DATABASE" = postgres ]; then
  clicks=$(pg -d switchyard_bench -c "$count" 2>/dev/null || echo "n/a")
else
  clicks=$(sqlite3 "$work/db/switchyard.db" "${count/::int/}" 2>/dev/null || echo "n/a")
fi

cat <<EOF

Switchyard click path vs bare axum 302 — $(date -u '+%Y-%m-%d %H:%M UTC')
machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), load average now: $(cut -d' ' -f1-3 /proc/loadavg)
wrk: $THREADS threads, $CONNECTIONS connections, ${RUN_SECONDS}s per run, $ROUNDS rounds (A B C / C B A)

database: $DATABASE
per run (target round req/s requests cpu_s cpu_us/req non-3xx wrk_p50 wrk_p99 db_cpu_us/req):
$(sed 's/^/  /' "$work/rounds.txt")

$summary

latency at $half req/s (open loop, $CONNECTIONS connections, ${LATENCY_SECONDS}s):
$(sed 's/RESULT //; s/^/  /' "$work/latency.txt")

recorder after the run: $recorder
clicks table (rows, unique in campaign, distinct streams): $clicks
EOF
