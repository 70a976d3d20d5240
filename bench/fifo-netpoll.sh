#!/usr/bin/env bash
# An experiment, not a build to ship: the balancer built with Go's runtime
# patched so that its network poller hands out the goroutines of a batch in
# the order epoll reported their sockets ready (first in, first out) rather
# than the reverse. Go's netpoll pushes each ready goroutine onto the front
# of a list, so the socket that became ready first is served last; at 64
# busy connections that is what makes the body of our latency
# distribution twice as wide as HAProxy's (docs/BENCHMARKS.md, "The shape
# of the tail at 64 connections").
#
#   bench/fifo-netpoll.sh [OUTPUT]     # default bin/load_balancer-fifo
#
# The patch reverses the loop over epoll's events in
# $GOROOT/src/runtime/netpoll_epoll.go, through `go build -overlay` (no copy
# of the Go tree). It stops if that loop is not found: a Go release that
# rewrote netpoll needs the experiment redone. Compare with bench/ab.sh:
#   go build -o bin/load_balancer ./cmd/load_balancer
#   bench/fifo-netpoll.sh && bench/ab.sh bin/load_balancer bin/load_balancer-fifo
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bin/load_balancer-fifo}
src="$(go env GOROOT)/src/runtime/netpoll_epoll.go"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
loop='for i := int32(0); i < n; i++ {'
[ "$(grep -cF "$loop" "$src")" = 1 ] || { echo "$0: the loop over epoll's events is not in $src as expected" >&2; exit 1; }
sed "s/for i := int32(0); i < n; i++ {/for i := n - 1; i >= 0; i-- { \/\/ bench\/fifo-netpoll.sh/" "$src" > "$work/netpoll_epoll.go"
printf '{"Replace": {"%s": "%s"}}\n' "$src" "$work/netpoll_epoll.go" > "$work/overlay.json"
mkdir -p "$(dirname "$out")"
go build -overlay "$work/overlay.json" -o "$out" ./cmd/load_balancer
echo "built $out (netpoll in epoll's order, $(go env GOVERSION))"
