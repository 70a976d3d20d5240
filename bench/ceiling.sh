#!/usr/bin/env bash
# The ceiling of a Go proxy on this machine: the balancer side by side with
# HAProxy, nginx and bench/evloop (a featureless epoll-loop proxy, the least
# a Go proxy can spend per request) with ../shared/bench, same method as
# bench/run.sh. Results: docs/BENCHMARKS.md, "The ceiling of a Go proxy here".
#
#   bench/ceiling.sh                                   # small-c64 and small-c2000, 3 rounds of 5 s
#   ROUNDS=5 SCENARIOS="small-c64:/small:64" bench/ceiling.sh
#
# The defaults are the two scenarios issue 5's unmet targets are about;
# evloop also carries the harness's 16 KiB and chunked responses.
#
# evloop-spin is the same loop with a busy wait added to each request
# (EVLOOP_SPIN, default 2.5us), which brings its CPU per request to about
# ours and HAProxy's: its p99 is the tail of a Go event loop at that cost.
#
#   SYSTEMS="haproxy evloop-spin lb" SCENARIOS="small-c64:/small:64" ROUNDS=5 bench/ceiling.sh
set -euo pipefail
cd "$(dirname "$0")/.."
harness=${BENCH_HARNESS:-$PWD/../shared/bench}
out=${OUT:-$PWD/bench/results/ceiling-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p bin
go build -o bin/load_balancer ./cmd/load_balancer
go build -o bin/evloop ./bench/evloop
"$harness/run.sh" -l "${LAYOUT:-pinned}" -r "${ROUNDS:-3}" -d "${DURATION:-5}" \
  -s "${SYSTEMS:-haproxy nginx evloop lb}" \
  -x "evloop=$PWD/bin/evloop" \
  -x "evloop-spin=env EVLOOP_SPIN=${EVLOOP_SPIN:-2.5us} $PWD/bin/evloop" \
  -x "lb=$PWD/bin/load_balancer --host {host} --port {port} -c {config} -s round-robin --log-level warn --admin-addr off" \
  -S "${SCENARIOS:-small-c64:/small:64 small-c2000:/small:2000}" -o "$out"
(cd "$harness/tools/summarize" && go run . -ref haproxy "$out/results.tsv") | tee "$out/summary.md"
