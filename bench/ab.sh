#!/usr/bin/env bash
# A/B of two load_balancer binaries with ../shared/bench: same machine, same
# backends, systems interleaved round by round, medians and per-round ratios.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY                 # small-c64, 3 rounds of 5 s
#   SCENARIOS="small-c64:/small:64 small-c2000:/small:2000" ROUNDS=5 bench/ab.sh old new
#
# Build the two binaries first, e.g. from two worktrees:
#   git worktree add /tmp/old HEAD~1 && (cd /tmp/old && go build -o /tmp/lb-old ./cmd/load_balancer)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY" >&2; exit 2; }
harness=${BENCH_HARNESS:-$PWD/../shared/bench}
out=${OUT:-$PWD/bench/results/ab-$(date -u +%Y%m%dT%H%M%SZ)}
args="--host {host} --port {port} -c {config} -s round-robin --log-level warn --admin-addr off"
"$harness/run.sh" -l "${LAYOUT:-pinned}" -r "${ROUNDS:-3}" -d "${DURATION:-5}" -s "old new" \
  -x "old=$(realpath "$1") $args" -x "new=$(realpath "$2") $args" \
  -S "${SCENARIOS:-small-c64:/small:64}" -o "$out"
(cd "$harness/tools/summarize" && go run . -ref old "$out/results.tsv") | tee "$out/summary.md"
