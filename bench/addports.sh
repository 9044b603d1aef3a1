#!/bin/bash
# usage: bench/addports.sh GVSD N [profile]
# One gvsd (the binary GVSD) in a network namespace of its own, `ovs-vsctl
# add-br br0`, then ONE ovs-vsctl transaction adding N internal ports
# (`-- add-port br0 mK -- set interface mK type=internal`, K = 0..N-1).
# Prints the transaction's time (ovs-vsctl returns once gvsd has applied
# it), the TAPs present then, and the longest answer to another client
# reading the database every 0.1 s meanwhile (how long the database kept
# others waiting). With "profile", a CPU profile of gvsd during the
# transaction goes to /tmp/addports-cpu-N.prof (PROFSECS, default 10).
# Run it under /tmp/gvs-e2e.lock. Everything is removed on exit.
set -u
GVSD=$1; N=$2; PROF=${3:-}
NS=gvsaddports$$
RUN=$(mktemp -d /tmp/gvsaddports.XXXX)
ip netns add "$NS"; ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" "$GVSD" -rundir "$RUN" -db "$RUN/conf.db" -metrics 127.0.0.1:9476 -pprof >"$RUN/log" 2>&1 &
PID=$!
cleanup() { kill -9 $PID 2>/dev/null; wait $PID 2>/dev/null; ip netns del "$NS"; rm -rf "$RUN"; }
trap cleanup EXIT
for _ in $(seq 100); do [ -S "$RUN/db.sock" ] && break; sleep 0.1; done
vs() { ovs-vsctl --db=unix:"$RUN/db.sock" --timeout=600 "$@"; }
vs add-br br0; sleep 1
args=()
for n in $(seq 0 $((N-1))); do args+=(-- add-port br0 "m$n" -- set interface "m$n" type=internal); done
CURLPID=
if [ -n "$PROF" ]; then
	ip netns exec "$NS" curl -s -o "/tmp/addports-cpu-$N.prof" \
		"http://127.0.0.1:9476/debug/pprof/profile?seconds=${PROFSECS:-10}" &
	CURLPID=$!
	sleep 0.2
fi
(
	worst=0; end=$((SECONDS+600))
	while [ $SECONDS -lt $end ] && [ ! -e "$RUN/done" ]; do
		a=$(date +%s%N); vs get Open_vSwitch . cur_cfg >/dev/null 2>&1; b=$(date +%s%N)
		d=$(( (b-a)/1000000 )); [ $d -gt $worst ] && worst=$d; sleep 0.1
	done
	echo $worst >"$RUN/worst"
) &
READER=$!
t0=$(date +%s.%N)
vs "${args[@]}" >/dev/null || echo "ovs-vsctl failed"
t1=$(date +%s.%N)
touch "$RUN/done"; wait $READER
c=$(ip netns exec "$NS" ip -o link | grep -c ': m[0-9]')
echo "$(date +%T) ports=$N vsctl=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')s taps=$c worst_read=$(cat "$RUN/worst")ms load=$(cut -d' ' -f1-3 /proc/loadavg)"
[ -n "$CURLPID" ] && wait $CURLPID
true
