#!/usr/bin/env bash
# Instruction counts per request of the click path, repeatable whatever the machine's load:
# runs bench click-cost (an in-process server and client, single-threaded runtime) under
# callgrind with WARM and WARM+N requests for each target, and prints
# (Ir(WARM+N) - Ir(WARM)) / N and the ratio to the bare axum handler. The warm-up requests
# leave out one-time costs (statements prepared on each pooled connection, caches filling). User-space instructions only: the kernel's TCP work and
# time spent waiting are not counted, so this complements, not replaces, bench/load.sh.
#
#   bash bench/callgrind.sh   # N=5000 WARM=2000 TARGETS="switchyard switchyard-nc bare"
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
WARM=${WARM:-2000}
TARGETS=${TARGETS:-"switchyard switchyard-nc bare"}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/switchyard-target-bench}
cargo build --release -p switchyard-bench --bin click-cost >&2
bin="$CARGO_TARGET_DIR/release/click-cost"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ir() { # target requests -> total instructions
  valgrind --tool=callgrind --callgrind-out-file="$out/cg.$1.$2" "$bin" --target "$1" --requests "$2" \
    >/dev/null 2>"$out/log.$1.$2"
  grep -E '^(summary|totals):' "$out/cg.$1.$2" | head -1 | awk '{print $2}'
}
declare -A per
for target in $TARGETS; do
  base=$(ir "$target" "$WARM")
  full=$(ir "$target" $((WARM + N)))
  per[$target]=$(( (full - base) / N ))
  echo "$target: $(( per[$target] )) instructions per request (Ir $base at $WARM, $full at $((WARM + N)))"
  if [ -n "${KEEP_PROFILES:-}" ]; then cp "$out/cg.$target.$((WARM + N))" "$KEEP_PROFILES/"; fi
done
if [ -n "${per[bare]:-}" ]; then
  for target in $TARGETS; do
    [ "$target" = bare ] && continue
    awk -v a="${per[$target]}" -v b="${per[bare]}" -v t="$target" 'BEGIN { printf "%s / bare: %.2fx\n", t, a / b }'
  done
fi
