#!/usr/bin/env bash
# Build and run the whole demo: Backend 1 on 127.0.0.1:9001, Backend 2 on
# 127.0.0.1:9002, and the load balancer in the foreground. Arguments go to the
# load balancer unchanged:
#
#   ./run_all.sh                                   # balancer on :9000
#   ./run_all.sh --port 8080 -c config/backends.yaml
#
# Ctrl-C (or SIGTERM to this script) stops all three. Backend logs go to
# logs/backend-<port>.log. Environment: RUN_ALL_NO_BUILD=1 skips the build
# and uses the binaries already in bin/.
# shellcheck disable=SC2317 # cleanup and alive run from traps
set -euo pipefail

cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")"

BACKEND_HOST=127.0.0.1
BACKEND_PORTS=(9001 9002)
BACKEND_NAMES=("Backend 1" "Backend 2")
HEALTH_WAIT_SECONDS=10
STOP_WAIT_SECONDS=15

say() { printf 'run_all: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# port_in_use PORT [HOST]: something accepts connections there.
port_in_use() {
	(exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null
}

# healthy PORT: GET /health answers 200.
healthy() {
	if command -v curl >/dev/null 2>&1; then
		curl -fsS -o /dev/null --max-time 1 "http://${BACKEND_HOST}:$1/health" 2>/dev/null
		return
	fi
	(
		exec 3<>"/dev/tcp/${BACKEND_HOST}/$1" || exit 1
		printf 'GET /health HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "$BACKEND_HOST" "$1" >&3
		IFS= read -r -t 1 status <&3 || exit 1
		[[ $status == "HTTP/1."?" 200"* ]]
	) 2>/dev/null
}

# alive PID...: at least one of them is still running.
alive() {
	local pid
	for pid in "$@"; do
		kill -0 "$pid" 2>/dev/null && return 0
	done
	return 1
}

pids=()
cleanup() {
	local status=$?
	trap - EXIT INT TERM
	((${#pids[@]})) || exit "$status"
	say "stopping (pids ${pids[*]})"
	local i pid
	# After Ctrl-C the terminal has sent SIGINT to every process already:
	# give them a moment to finish on their own before the SIGTERM.
	if ((status == 130)); then
		for ((i = 0; i < 30; i++)); do
			alive "${pids[@]}" || break
			sleep 0.1
		done
	fi
	# The balancer first, so that it stops sending to the backends.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[i]}" 2>/dev/null || true
	done
	for ((i = 0; i < STOP_WAIT_SECONDS * 10; i++)); do
		alive "${pids[@]}" || break
		sleep 0.1
	done
	for pid in "${pids[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			say "pid $pid did not stop in ${STOP_WAIT_SECONDS}s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build --------------------------------------------------------------------
if [[ ${RUN_ALL_NO_BUILD:-} != 1 ]]; then
	command -v go >/dev/null 2>&1 || die "go is not installed (or set RUN_ALL_NO_BUILD=1 to use bin/ as it is)"
	say "building bin/load_balancer and bin/lb_backend"
	mkdir -p bin
	go build -o bin/ ./cmd/... || die "build failed"
fi
for bin in bin/load_balancer bin/lb_backend; do
	[[ -x $bin ]] || die "$bin was not built (is cmd/${bin#bin/} complete?)"
done

# Help, version and subcommands (check, version, ...) need no backends.
for arg in "$@"; do
	case $arg in
	-h | --help) exec bin/load_balancer "$@" ;;
	--) break ;;
	esac
done
if (($#)) && [[ $1 != -* ]]; then
	exec bin/load_balancer "$@"
fi

# --- where the balancer will listen (to check the port and print the URL) ------
lb_host=0.0.0.0 lb_port=9000
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	a=${args[i]} next=${args[i + 1]:-}
	case $a in
	--) break ;;
	-p | --port) lb_port=$next ;;
	--port=*) lb_port=${a#--port=} ;;
	-p?*) lb_port=${a#-p} ;;
	-H | --host) lb_host=$next ;;
	--host=*) lb_host=${a#--host=} ;;
	-H?*) lb_host=${a#-H} ;;
	esac
done
case $lb_host in
0.0.0.0 | "" | "::" | "[::]") url_host=localhost check_host=127.0.0.1 ;;
*:*) url_host="[$lb_host]" check_host=$lb_host ;;
*) url_host=$lb_host check_host=$lb_host ;;
esac

# --- ports must be free ---------------------------------------------------------
for port in "${BACKEND_PORTS[@]}"; do
	if port_in_use "$port" "$BACKEND_HOST"; then
		die "port $port is already in use (an earlier run_all.sh or lb_backend? see: ss -ltnp 'sport = :$port')"
	fi
done
if [[ $lb_port =~ ^[0-9]+$ ]] && ((lb_port > 0)) && port_in_use "$lb_port" "$check_host"; then
	die "port $lb_port (load balancer) is already in use (see: ss -ltnp 'sport = :$lb_port')"
fi

# --- backends -----------------------------------------------------------------
mkdir -p logs
for i in "${!BACKEND_PORTS[@]}"; do
	port=${BACKEND_PORTS[i]}
	log=logs/backend-$port.log
	bin/lb_backend --host "$BACKEND_HOST" --port "$port" --name "${BACKEND_NAMES[i]}" >>"$log" 2>&1 &
	pids+=($!)
	say "started ${BACKEND_NAMES[i]} on $BACKEND_HOST:$port (pid $!, log $log)"
done

for i in "${!BACKEND_PORTS[@]}"; do
	port=${BACKEND_PORTS[i]} pid=${pids[i]}
	for ((t = 0; ; t++)); do
		healthy "$port" && break
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 5 "logs/backend-$port.log" >&2 || true
			die "${BACKEND_NAMES[i]} exited before answering /health on port $port"
		fi
		((t < HEALTH_WAIT_SECONDS * 10)) || die "${BACKEND_NAMES[i]} did not answer /health on port $port within ${HEALTH_WAIT_SECONDS}s"
		sleep 0.1
	done
done
say "backends are up"

# --- balancer -----------------------------------------------------------------
say "starting bin/load_balancer $*"
say "try: curl http://$url_host:$lb_port/   (or open it in a browser and refresh; Ctrl-C stops everything)"
# Started in the background and waited for, so that SIGTERM to this script
# reaches the trap at once; it still owns the terminal's output like a
# foreground process, and Ctrl-C reaches it directly too.
bin/load_balancer "$@" &
lb_pid=$!
pids+=("$lb_pid")
status=0
wait "$lb_pid" || status=$?
say "load balancer exited with status $status"
exit "$status"
