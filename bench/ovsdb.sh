#!/bin/bash
# Compares gvsd's embedded OVSDB server with the real ovsdb-server (Debian
# openvswitch-switch) under the same client workload, bench/ovsdbbench:
# transactions per second (durable or not, 1 or 8 clients), then memory
# and time for 100k rows. Each phase gets freshly started servers in a
# temporary directory, never the default paths; everything is stopped and
# removed on exit, failure or interrupt. Prints a markdown table.
# Extra arguments go to ovsdbbench (e.g. -duration 5s, -rows 20000).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

for cmd in go ovsdb-server ovsdb-tool; do
	command -v "$cmd" >/dev/null || { echo "ovsdb.sh: $cmd not found" >&2; exit 1; }
done
schema=/usr/share/openvswitch/vswitch.ovsschema

# /var/tmp rather than /tmp: the journals must live on a real disk (not a
# tmpfs) for fsync to cost what it costs in production.
work=$(mktemp -d /var/tmp/gvs-ovsdb-bench.XXXXXX)
pids=()

cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/bin"
go build -o "$work/bin/gvsd" ./cmd/gvsd
go build -o "$work/bin/ovsdbbench" ./bench/ovsdbbench

# wait_for_socket PATH PID: until the server listens, or fail if it died.
wait_for_socket() {
	local i
	for i in $(seq 100); do
		[ -S "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || { echo "ovsdb.sh: server $2 exited; log in $(dirname "$1")" >&2; return 1; }
		sleep 0.05
	done
	echo "ovsdb.sh: no socket $1 after 5 s" >&2
	return 1
}

# start_servers NAME: both servers on empty databases under $work/NAME;
# sets gvsd_pid, ovs_pid and targets.
start_servers() {
	local dir="$work/$1"
	mkdir -p "$dir/gvsd" "$dir/ovs"
	"$work/bin/gvsd" -db "$dir/gvsd/conf.db" -rundir "$dir/gvsd" >"$dir/gvsd/log" 2>&1 &
	gvsd_pid=$!
	pids+=("$gvsd_pid")
	ovsdb-tool create "$dir/ovs/conf.db" "$schema"
	ovsdb-server --remote="punix:$dir/ovs/db.sock" --pidfile="$dir/ovs/ovsdb-server.pid" \
		--unixctl="$dir/ovs/ovsdb-server.ctl" --log-file="$dir/ovs/log" \
		"$dir/ovs/conf.db" >/dev/null 2>&1 &
	ovs_pid=$!
	pids+=("$ovs_pid")
	wait_for_socket "$dir/gvsd/db.sock" "$gvsd_pid"
	wait_for_socket "$dir/ovs/db.sock" "$ovs_pid"
	targets=(-target "gvsd,$dir/gvsd/db.sock,$gvsd_pid" -target "ovsdb-server,$dir/ovs/db.sock,$ovs_pid")
}

stop_servers() {
	kill "$gvsd_pid" "$ovs_pid"
	wait "$gvsd_pid" "$ovs_pid" 2>/dev/null || true
	pids=()
}

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'), $(uname -r)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "journal filesystem: $(df --output=fstype "$work" | tail -1)"
echo "servers: gvsd $("$work/bin/gvsd" -version | awk '{print $3}' | tr -d ,) ($(go version | awk '{print $3}')), $(ovsdb-server --version | head -1)"
echo

# bench ARGS...: runs ovsdbbench in the background and waits for it, so
# that a signal interrupts the wait and the exit trap stops everything now.
bench() {
	"$work/bin/ovsdbbench" "$@" &
	pids+=("$!")
	wait "$!"
}

start_servers txn
bench -phase txn -header "${targets[@]}" "$@"
stop_servers

start_servers mem
bench -phase mem "${targets[@]}" "$@"
stop_servers
