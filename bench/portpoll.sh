#!/bin/bash
# gvsd's CPU with N internal ports on one bridge, idle, without and with
# a port status listener (ovs-ofctl monitor BR 65534), which makes gvsd
# poll the ports' link and admin state once a second.
# Usage (as root, under the shared lock):
#   flock /tmp/gvs-e2e.lock bash bench/portpoll.sh GVSD [N]
set -e
GVSD=${1:?usage: portpoll.sh GVSD [N]}
N=${2:-1024}
D=$(mktemp -d /tmp/gvpm.XXXX)
export OVS_RUNDIR=$D
"$GVSD" -rundir "$D" -db "$D/conf.db" >"$D/log" 2>&1 &
G=$!
M=
cleanup() {
	[ -n "$M" ] && kill "$M" 2>/dev/null
	ovs-vsctl --db=unix:$D/db.sock --timeout=120 --if-exists del-br gvpm0 || true
	kill "$G" 2>/dev/null; wait "$G" 2>/dev/null || true
	rm -rf "$D"
}
trap cleanup EXIT
for _ in $(seq 50); do [ -S "$D/db.sock" ] && break; sleep 0.2; done
VS="ovs-vsctl --db=unix:$D/db.sock --timeout=120"
$VS add-br gvpm0
args=()
for i in $(seq 1 "$N"); do args+=(-- add-port gvpm0 gvpm$i -- set interface gvpm$i type=internal); done
$VS "${args[@]}"
sleep 5
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$G/stat; }
measure() { a=$(cpu); sleep 20; b=$(cpu); echo "$1: $(( (b-a)*1000/tck )) ms CPU in 20 s"; }
for round in 1 2; do
	measure "no listener ($round)"
	ovs-ofctl monitor gvpm0 65534 >/dev/null 2>&1 &
	M=$!
	sleep 3
	measure "listening ($round)"
	kill "$M"; wait "$M" 2>/dev/null || true
	M=
	sleep 2
done
uptime
