#!/usr/bin/env bash
# Side-by-side benchmark of load_balancer against nginx, HAProxy and Caddy
# with ../shared/bench, plus a connection sweep, a summary table and a chart.
#
#   bench/run.sh                 # full run: 4 scenarios + 512/2000-connection sweep, 3 rounds
#   ROUNDS=1 DURATION=5 bench/run.sh   # quick look
#   SYSTEMS="haproxy lb" SCENARIOS="small-c64:/small:64 chunked-c64:/chunked:64" \
#     ROUNDS=8 DURATION=5 bench/run.sh  # a closer look at chosen scenarios: no sweep, no chart
#
# Needs wrk, nginx, haproxy, caddy (Debian packages; installed if missing)
# and ../shared/bench beside the repository. Results go to bench/results/<time>/
# (git-ignored); the chart to docs/bench/ when PUBLISH=1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
harness=${BENCH_HARNESS:-$root/../shared/bench}
rounds=${ROUNDS:-3}
duration=${DURATION:-10}
layout=${LAYOUT:-pinned}
systems=${SYSTEMS:-"nginx haproxy caddy lb"}
out=${OUT:-$root/bench/results/$(date -u +%Y%m%dT%H%M%SZ)}

missing=()
for tool in wrk nginx haproxy caddy taskset; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  pkgs=()
  for t in "${missing[@]}"; do
    case $t in nginx) pkgs+=(nginx-light) ;; taskset) pkgs+=(util-linux) ;; *) pkgs+=("$t") ;; esac
  done
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"
fi

mkdir -p "$out" bin
go build -o bin/load_balancer ./cmd/load_balancer
lb="lb=$root/bin/load_balancer --host {host} --port {port} -c {config} -s round-robin --log-level warn --admin-addr off"

echo "== scenarios (layout $layout, $rounds rounds of ${duration}s) -> $out"
if [ -n "${SCENARIOS:-}" ]; then
  # Chosen scenarios only (the harness's -S syntax): a closer look at a few
  # with more rounds, the systems interleaved round by round. Nothing is
  # published from it: the chart and docs/bench need the full run.
  "$harness/run.sh" -l "$layout" -r "$rounds" -d "$duration" -s "$systems" -x "$lb" -o "$out/scenarios" -S "$SCENARIOS"
  (cd "$harness/tools/summarize" && go run . -ref "${REF:-haproxy}" "$out/scenarios/results.tsv") | tee "$out/summary.md"
  echo "summary: $out/summary.md"
  exit 0
fi
"$harness/run.sh" -l "$layout" -r "$rounds" -d "$duration" -s "$systems" -x "$lb" -o "$out/scenarios"

echo "== connection sweep"
"$harness/run.sh" -l "$layout" -r "$rounds" -d "$duration" -s "$systems" -x "$lb" -o "$out/sweep" \
  -S "small-c512:/small:512 small-c2000:/small:2000"

(cd "$harness/tools/summarize" && go run . -ref haproxy "$out/scenarios/results.tsv" "$out/sweep/results.tsv") | tee "$out/summary.md"
go run ./bench/chart -o "$out/chart.svg" "$out/scenarios/results.tsv" "$out/sweep/results.tsv"
if [ "${PUBLISH:-0}" = 1 ]; then
  mkdir -p docs/bench
  cp "$out/chart.svg" docs/bench/chart.svg
  cp "$out/summary.md" docs/bench/summary.md
  cp "$out/scenarios/meta.txt" docs/bench/meta.txt
fi
echo "summary: $out/summary.md  chart: $out/chart.svg"
