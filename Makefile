# Convenience targets; each is one command you can also run by hand.
.PHONY: build test bench run

build:
	go build -o bin/ ./cmd/...

test:
	go test -race ./...

run:
	./run_all.sh

# Side-by-side benchmark against nginx, HAProxy and Caddy (see docs/BENCHMARKS.md).
bench:
	bench/run.sh
