#!/bin/bash
# Forwarding throughput of three switches on this machine, with and
# without a port mirror, in one run: the Linux bridge (mirror by tc
# mirred), Open vSwitch 3.1's userspace datapath (ovs-vswitchd with
# datapath_type=netdev) and gvsd.
#
# Topology, made afresh for each measurement: the switch runs in namespace
# gvbf-s (so that it cannot meet another OVS userspace datapath's
# "ovs-netdev" device, nor anything else in the root namespace), joined
# by veth pairs to namespaces gvbf-a (10.231.98.1) and gvbf-b
# (10.231.98.2), and to gvbf-m, the mirror's sink: its kernel drops what
# arrives there.
# Traffic: iperf3 from gvbf-a to gvbf-b, TCP (Gbit/s) and UDP with 64-byte
# frames (18-byte payload, packets per second reaching the server); and,
# without a mirror, TCP request/response round trips (one byte each way,
# the next request when the reply is in: p50 and p99 in µs) between
# bench/fwdbench's rr-client and rr-server. The UDP row also gives the
# switch process's CPU time per delivered packet, and the rate at which
# b's interface received frames (its rx_packets over the run) with the
# switch's CPU time per such frame: iperf3's receiver, on a shared CPU,
# tops out below what a switch delivers, so these two judge the switch.
#
# Offloads (the table's first column):
#   off      transmit checksum offload and TSO off on the namespace ends
#            (ethtool -K DEV tx off tso off), so frames reach the switch
#            MTU-sized with complete checksums; GSO stays, i.e. the
#            sender's kernel segments in software before the veth. OVS
#            3.1's netdev datapath needs that: it forwards veth frames with
#            partial checksums and TSO super-frames as they are, and TCP
#            stalls.
#   on       the kernel's defaults; OVS is not run there.
#   alloff   TSO, GSO, GRO and checksum offloads off on EVERY interface
#            (both ends of every veth, internal ports too), so each frame
#            crosses the switch at MTU size. Two more rows here: each
#            switch with an ACL of 1,000 L3/L4 rules ahead of NORMAL, the
#            same ovs-ofctl add-flows file for both (generated below).
#   int-on, int-alloff
#            gvbf-a and gvbf-b sit behind internal ports (TAP devices the
#            switch makes, moved into the namespaces) instead of veths,
#            with the offloads each switch gives them (gvsd: checksum,
#            TSO; OVS 3.1: none), or with all of them off as in alloff.
#            The Linux bridge has no internal ports.
#
# Every measurement is bounded by timeouts. RUNS rounds measure every
# configuration once each; the table shows the median. Everything made
# here (namespaces, veths, bridges, daemons, the temporary directory) is
# removed on exit, failure or interrupt; the OVS daemons run on a
# temporary directory, never the default paths.
#
# Environment: RUNS (default 3), SECS (seconds per measurement, default
# 5), PROFILE=DIR to also record perf profiles of gvsd into DIR (extra
# runs, not in the table; PROFILE_SCOPE=system records every CPU, for
# every switch, the kernel's share included; PROFILE_EVENT="-e EVENT" records EVENT instead
# of perf's clock at 499 Hz, say "-e sched:sched_switch" for the
# switch's thread sleeps), MODES (default "off on alloff int-on
# int-alloff"), SWITCHES (default "lbr ovs gvsd ovsacl gvsdacl": which
# switches to measure, for quick checks of one), TRAFFIC (default "tcp
# udp rr"), GVSD_B=PATH to measure a second gvsd binary (say, the
# code before a change) in the same rounds, as "gvsd B" rows after each
# gvsd row; BUSY_POLL=US to measure gvsd with Open_vSwitch
# other_config:gvs-busy-poll-us=US as well, as "gvsd busy-poll" rows
# after each gvsd row (and "gvsd B busy-poll" rows with GVSD_B);
# HW_OFFLOAD=1 to measure gvsd with Open_vSwitch other_config:hw-offload=true
# (the kernel fast path: flows of system ports forwarded by its tc
# program) as well, as "gvsd hw-offload" rows after each gvsd row (and
# "gvsd B hw-offload" rows with GVSD_B).
# Run as root: bash bench/forwarding.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

runs=${RUNS:-3}
secs=${SECS:-5}
modes=${MODES:-off on alloff int-on int-alloff}
switches=" ${SWITCHES:-lbr ovs gvsd ovsacl gvsdacl} "
gvsd_b=${GVSD_B:-}
busy_poll=${BUSY_POLL:-}
hw_offload=${HW_OFFLOAD:-}
traffics=${TRAFFIC:-tcp udp rr}
profile_dir=${PROFILE:-}
profile_scope=${PROFILE_SCOPE:-gvsd}

addr_a=10.231.98.1
addr_b=10.231.98.2
port=5201

log() { echo "forwarding.sh: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
for cmd in go ip tc iperf3 ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl ovs-appctl ovs-ofctl ovsdb-client timeout ss; do
	command -v "$cmd" >/dev/null || die "$cmd not found"
done
if ! command -v ethtool >/dev/null; then
	log "installing ethtool (apt-get)"
	{ apt-get install -y -qq ethtool || { apt-get update -qq && apt-get install -y -qq ethtool; }; } >/dev/null 2>&1 || true
fi
have_ethtool=false
command -v ethtool >/dev/null && have_ethtool=true

work=$(mktemp -d /tmp/gvbf.XXXXXX)
records=$work/records
: >"$records"
# Any OVS tool that falls back to a default path finds the temporary one.
export OVS_RUNDIR=$work/ovs OVS_LOGDIR=$work/ovs OVS_DBDIR=$work/ovs OVS_SYSCONFDIR=$work/ovs
pids=()
swpid=""
swdir=""

# Deleting a namespace deletes the veths, bridges and TAP devices in it.
remove_topology() {
	local n
	for n in a b m s; do
		ip netns del "gvbf-$n" 2>/dev/null || true
	done
}

# stop_pid PID: SIGTERM, then SIGKILL after 5 s; forgets the pid.
stop_pid() {
	local pid=$1
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	local keep=() p
	for p in "${pids[@]}"; do
		[ "$p" = "$pid" ] || keep+=("$p")
	done
	pids=("${keep[@]}")
}

cleanup() {
	set +e
	if [ -S "$work/ovs/ovs-vswitchd.ctl" ]; then
		timeout 10 ovs-appctl -t "$work/ovs/ovs-vswitchd.ctl" exit --cleanup >/dev/null 2>&1
	fi
	local pid
	# one_run runs in a command substitution, so the processes it has
	# running are in files rather than in pids.
	local f
	for f in "$work/server.pid" "$work/perf.pid"; do
		[ -f "$f" ] && pids+=("$(cat "$f")")
	done
	for pid in "${pids[@]}"; do
		stop_pid "$pid"
	done
	remove_topology
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/bin"
go build -o "$work/bin/gvsd" ./cmd/gvsd
go build -o "$work/bin/fwdbench" ./bench/fwdbench
if [ -n "$gvsd_b" ]; then
	cp "$gvsd_b" "$work/bin/gvsd-b"
	switches="$switches gvsdb "
fi
if [ -n "$busy_poll" ]; then
	switches="$switches gvsdbp gvsdbbp "
fi
if [ -n "$hw_offload" ]; then
	switches="$switches gvsdhw "
	[ -n "$gvsd_b" ] && switches="$switches gvsdbhw "
fi

# ---------------------------------------------------------------- topology

# in_sw CMD...: runs a command in the switch's namespace. (Not for
# daemons: "in_sw daemon &" would make $! a subshell's pid.)
in_sw() { ip netns exec gvbf-s "$@"; }

# make_topology MODE: the four namespaces and the veth pairs, switch
# ends (gvbfX0, in gvbf-s) up and unattached, IPv6 off everywhere so the
# kernels stay quiet. In the int-* modes only the mirror's sink is a veth:
# a and b get internal ports once the switch has made them
# (place_internal). Sets dev_a and dev_b, the hosts' interfaces.
make_topology() {
	local mode=$1 n peers="a b m"
	remove_topology
	for n in s a b m; do
		ip netns add "gvbf-$n"
		ip netns exec "gvbf-$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
		ip -n "gvbf-$n" link set lo up
	done
	internal=false
	dev_a=gvbfa1 dev_b=gvbfb1
	case $mode in int-*)
		internal=true peers=m
		dev_a=gvbfa0 dev_b=gvbfb0
		;;
	esac
	for n in $peers; do
		ip -n gvbf-s link add "gvbf${n}0" type veth peer name "gvbf${n}1" netns "gvbf-$n"
		ip -n gvbf-s link set "gvbf${n}0" up
		ip -n "gvbf-$n" link set "gvbf${n}1" up
	done
	if ! $internal; then
		ip -n gvbf-a addr add "$addr_a/24" dev gvbfa1
		ip -n gvbf-b addr add "$addr_b/24" dev gvbfb1
	fi
	case $mode in
	off)
		for n in a b; do
			ip netns exec "gvbf-$n" ethtool -K "gvbf${n}1" tx off tso off >/dev/null
		done
		;;
	*alloff)
		for n in $peers; do
			all_offloads_off "gvbf-$n" "gvbf${n}1"
			all_offloads_off gvbf-s "gvbf${n}0"
		done
		;;
	esac
}

# all_offloads_off NS DEV: TSO, GSO, GRO and checksum offloads off. Each
# feature on its own: a device that cannot change one (fixed) still
# changes the others.
all_offloads_off() {
	local f
	for f in tso gso gro tx rx; do
		ip netns exec "$1" ethtool -K "$2" "$f" off >/dev/null 2>&1 || true
	done
}

# place_internal MODE: moves the internal ports gvbfa0 and gvbfb0, which
# the switch made in gvbf-s, into gvbf-a and gvbf-b with their addresses.
place_internal() {
	local n dev addr
	for n in a b; do
		dev=gvbf${n}0
		addr=$addr_a
		[ "$n" = b ] && addr=$addr_b
		for _ in $(seq 100); do
			ip -n gvbf-s link show "$dev" >/dev/null 2>&1 && break
			sleep 0.1
		done
		ip -n gvbf-s link set "$dev" netns "gvbf-$n"
		ip -n "gvbf-$n" addr add "$addr/24" dev "$dev"
		ip -n "gvbf-$n" link set "$dev" up
		[ "$1" = int-alloff ] && all_offloads_off "gvbf-$n" "$dev"
	done
	return 0
}

# offload_state: one line saying what the sender's interface does.
offload_state() {
	ip netns exec gvbf-a ethtool -k "$dev_a" |
		awk -F': ' '/^(tx-checksumming|tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload):/ {printf "%s%s=%s", sep, $1, $2; sep=", "}'
}

# rx_packets NS DEV
rx_packets() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/rx_packets"; }

# cpu_ticks PID: user+system clock ticks of a process, or "-".
cpu_ticks() {
	if [ -n "$1" ] && [ -r "/proc/$1/stat" ]; then
		awk '{print $14 + $15}' "/proc/$1/stat"
	else
		echo -
	fi
}

# ctx_switches PID: context switches (voluntary and not) of every thread
# of a process so far, or "-": a switch's wake-ups, near enough.
ctx_switches() {
	if [ -n "$1" ] && [ -d "/proc/$1/task" ]; then
		cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {n += $2} END {print n + 0}'
	else
		echo -
	fi
}

# wait_until_up: a few pings until a reaches b (MAC learning, flows).
wait_until_up() {
	for _ in $(seq 20); do
		ip netns exec gvbf-a ping -c 1 -W 1 -q "$addr_b" >/dev/null 2>&1 && return 0
		sleep 0.25
	done
	return 1
}

# wait_for_socket PATH PID
wait_for_socket() {
	for _ in $(seq 100); do
		[ -S "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || die "process $2 exited before $1 appeared; see its log"
		sleep 0.1
	done
	die "no socket $1 after 10 s"
}

# ---------------------------------------------------------------- one run

# start_server: iperf3 in gvbf-b for one test, bounded; sets server_pid.
start_server() {
	ip netns exec gvbf-b timeout $((secs + 30)) iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
	server_pid=$!
	pids+=("$server_pid")
	echo "$server_pid" >"$work/server.pid"
	for _ in $(seq 50); do
		ip netns exec gvbf-b ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	return 1
}

# one_run TRAFFIC [PERF_OUT]: one iperf3 test; prints the record fields
# RATE OFFERED COPIES DELIVERED CPU RECV WALL, or fails with a reason on
# stdout. RECV is what b's interface received (the frames the switch
# delivered, whether iperf3 read them or not) and WALL the seconds
# between the two reads of the counters, which CPU covers too; the
# interval includes iperf3's start (a tenth of a second or so), so
# RECV/WALL is a slight underestimate, alike for every switch.
one_run() {
	local traffic=$1 perf_out=${2:-} json=$work/iperf.json
	if [ "$traffic" = rr ]; then
		rr_run
		return
	fi
	local args=(-c "$addr_b" -p "$port" -t "$secs" -J)
	# -O (omit the first second) is for TCP only: iperf3 3.12 miscounts
	# UDP losses with it.
	if [ "$traffic" = udp ]; then
		args+=(-u -b 0 -l 18)
	else
		args+=(-O 1)
	fi
	if ! start_server; then
		stop_pid "$server_pid"
		rm -f "$work/server.pid"
		echo "iperf3 server did not start"
		return 1
	fi
	local ctx0 ctx1 copies0 deliv0 recv0 cpu0 t0 copies1 deliv1 recv1 cpu1 t1 perf_pid="" rc=0
	copies0=$(rx_packets gvbf-m gvbfm1)
	recv0=$(rx_packets gvbf-b "$dev_b")
	deliv0=$(($(rx_packets gvbf-a "$dev_a") + recv0))
	cpu0=$(cpu_ticks "$swpid")
	ctx0=$(ctx_switches "$swpid")
	t0=$(date +%s.%N)
	if [ -n "$perf_out" ]; then
		# shellcheck disable=SC2086 # PROFILE_EVENT is words for perf
		local target=(-p "$swpid")
		[ "$profile_scope" = system ] && target=(-a)
		perf record -q ${PROFILE_EVENT:--F 499} -g "${target[@]}" -o "$perf_out" -- sleep "$secs" >/dev/null 2>&1 &
		perf_pid=$!
		pids+=("$perf_pid")
		echo "$perf_pid" >"$work/perf.pid"
	fi
	ip netns exec gvbf-a timeout $((secs + 20)) iperf3 "${args[@]}" >"$json" 2>&1 || rc=$?
	t1=$(date +%s.%N)
	cpu1=$(cpu_ticks "$swpid")
	ctx1=$(ctx_switches "$swpid")
	copies1=$(rx_packets gvbf-m gvbfm1)
	recv1=$(rx_packets gvbf-b "$dev_b")
	deliv1=$(($(rx_packets gvbf-a "$dev_a") + recv1))
	if [ -n "$perf_pid" ]; then
		wait "$perf_pid" 2>/dev/null || true
		rm -f "$work/perf.pid"
	fi
	stop_pid "$server_pid"
	rm -f "$work/server.pid"
	local rate
	if [ "$rc" = 124 ]; then
		echo "iperf3 timed out"
		return 1
	fi
	local flag=()
	[ "$traffic" = udp ] && flag=(-udp)
	if ! rate=$("$work/bin/fwdbench" rate "${flag[@]}" "$json" 2>&1); then
		echo "${rate#fwdbench: }" | tr '\t\n' '  '
		return 1
	fi
	[ "$traffic" = tcp ] && rate="$rate -"
	local cpu=-
	if [ "$cpu0" != - ] && [ "$cpu1" != - ]; then
		cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" \
			'BEGIN {printf "%.0f", (b - a) / hz / (t1 - t0) * 100}')
	fi
	if [ "$ctx0" != - ] && [ "$ctx1" != - ] && [ $((deliv1 - deliv0)) -gt 0 ]; then
		log "switch context switches: $((ctx1 - ctx0)), $(awk -v c=$((ctx1 - ctx0)) -v d=$((deliv1 - deliv0)) 'BEGIN {printf "%.2f", d / c}') delivered frames per switch"
	fi
	local wall
	wall=$(awk -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.3f", t1 - t0}')
	echo "$rate $((copies1 - copies0)) $((deliv1 - deliv0)) $cpu $((recv1 - recv0)) $wall"
}

# rr_run: TCP request/response latency, one byte each way on one
# connection (fwdbench rr-server in gvbf-b, rr-client in gvbf-a, the
# 5201 port); prints the record fields P50 P99 COUNT - CPU (µs, µs,
# round trips, -, % of a CPU), or fails with a reason on stdout.
rr_run() {
	local out=$work/rr.out cpu0 cpu1 t0 t1 res rc=0
	ip netns exec gvbf-b timeout $((secs + 40)) "$work/bin/fwdbench" rr-server -t "$secs" "$addr_b:$port" >"$out" 2>&1 &
	server_pid=$!
	pids+=("$server_pid")
	echo "$server_pid" >"$work/server.pid"
	for _ in $(seq 50); do
		grep -q listening "$out" 2>/dev/null && break
		sleep 0.1
	done
	cpu0=$(cpu_ticks "$swpid")
	t0=$(date +%s.%N)
	res=$(ip netns exec gvbf-a timeout $((secs + 20)) "$work/bin/fwdbench" rr-client -t "$secs" "$addr_b:$port" 2>&1) || rc=$?
	t1=$(date +%s.%N)
	cpu1=$(cpu_ticks "$swpid")
	stop_pid "$server_pid"
	rm -f "$work/server.pid"
	if [ "$rc" != 0 ]; then
		echo "rr-client failed: $res" | tr '\t\n' '  '
		return 1
	fi
	local cpu=-
	if [ "$cpu0" != - ] && [ "$cpu1" != - ]; then
		cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" \
			'BEGIN {printf "%.0f", (b - a) / hz / (t1 - t0) * 100}')
	fi
	# shellcheck disable=SC2086 # three fields
	echo $res - "$cpu"
}

# record KIND MODE SWITCH MIRROR TRAFFIC FIELDS...
record() {
	local IFS=$'\t'
	echo "$*" >>"$records"
}

# measure MODE SWITCH MIRROR TRAFFIC: one run, recorded.
measure() {
	local mode=$1 sw=$2 mirror=$3 traffic=$4 out
	if ! wait_until_up; then
		record fail "$mode" "$sw" "$mirror" "$traffic" "no ping from a to b"
		log "$mode | $sw | $mirror | $traffic: no ping from a to b"
		return
	fi
	if out=$(one_run "$traffic"); then
		# shellcheck disable=SC2086 # five or seven fields
		record run "$mode" "$sw" "$mirror" "$traffic" $out
	else
		record fail "$mode" "$sw" "$mirror" "$traffic" "$out"
	fi
	log "$mode | $sw | $mirror | $traffic | round $round: $out"
}

# maybe_profile PREFIX MODE MIRROR TRAFFIC: one extra run under perf,
# of gvsd, or of any switch with PROFILE_SCOPE=system.
maybe_profile() {
	[ -n "$profile_dir" ] || return 0
	[ "$1" = gvsd ] || [ "$profile_scope" = system ] || return 0
	command -v perf >/dev/null || { log "perf not found: no profile"; return 0; }
	mkdir -p "$profile_dir"
	local base=$profile_dir/$1-offloads-$2-$3-$4
	shift
	one_run "$3" "$base.data" >/dev/null || true
	# Where the time goes: kernel or gvsd, then inclusive time per
	# function (a Go binary keeps frame pointers, so callers are known).
	{
		perf report -i "$base.data" --stdio --no-children -g none --sort dso
		perf report -i "$base.data" --stdio --children -g none --sort symbol --percent-limit 1
	} >"$base.txt" 2>/dev/null || true
	log "profile: $base.txt"
}

# filter_for TRAFFIC: the mirror filter, as an OpenFlow match.
filter_for() { echo "$1,tp_dst=$port"; }

# ---------------------------------------------------------------- switches

lbr_start() {
	ip -n gvbf-s link add gvbf-lbr type bridge
	ip -n gvbf-s link set gvbfa0 master gvbf-lbr
	ip -n gvbf-s link set gvbfb0 master gvbf-lbr
	ip -n gvbf-s link set gvbf-lbr up
	swpid=""
}

lbr_stop() { ip -n gvbf-s link del gvbf-lbr 2>/dev/null || true; }

# lbr_mirror MIRROR TRAFFIC: tc mirred on both switch ends' ingress, so
# both directions are copied to gvbfm0. The u32 classifier, because this
# kernel has neither matchall nor flower: "match u32 0 0" matches every
# frame; the filtered one matches the IP protocol (byte 9) and, for an IP
# header without options, the destination port (bytes 22-23).
lbr_mirror() {
	local dev proto=6 match
	[ "$2" = udp ] && proto=17
	for dev in gvbfa0 gvbfb0; do
		in_sw tc qdisc del dev "$dev" clsact 2>/dev/null || true
		[ "$1" = none ] && continue
		in_sw tc qdisc add dev "$dev" clsact || return 1
		case $1 in
		select_all) match=(protocol all u32 match u32 0 0) ;;
		filtered) match=(protocol ip u32 match u8 "$proto" 0xff at 9 match u16 "$port" 0xffff at 22) ;;
		esac
		in_sw tc filter add dev "$dev" ingress "${match[@]}" action mirred egress mirror dev gvbfm0 || return 1
	done
}

vsctl() { timeout 30 ovs-vsctl --db="unix:$swdir/db.sock" --timeout=20 "$@"; }

# attach_ports BRIDGE [SETTINGS...]: the bridge and the three host ends;
# in the int-* modes, a and b as internal ports, moved into place.
attach_ports() {
	local br=$1
	shift
	if $internal; then
		vsctl add-br "$br" "$@" -- add-port "$br" gvbfa0 -- set interface gvbfa0 type=internal \
			-- add-port "$br" gvbfb0 -- set interface gvbfb0 type=internal -- add-port "$br" gvbfm0
		place_internal "$mode"
		return
	fi
	vsctl add-br "$br" "$@" -- add-port "$br" gvbfa0 -- add-port "$br" gvbfb0 -- add-port "$br" gvbfm0
}

ovs_start() {
	swdir=$work/ovs
	mkdir -p "$swdir"
	ovsdb-tool create "$swdir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
	ovsdb-server --remote="punix:$swdir/db.sock" --pidfile="$swdir/ovsdb-server.pid" \
		--unixctl="$swdir/ovsdb-server.ctl" --log-file="$swdir/ovsdb-server.log" \
		"$swdir/conf.db" >/dev/null 2>&1 &
	ovsdb_pid=$!
	pids+=("$ovsdb_pid")
	wait_for_socket "$swdir/db.sock" "$ovsdb_pid"
	vsctl --no-wait init
	ip netns exec gvbf-s ovs-vswitchd "unix:$swdir/db.sock" --pidfile="$swdir/ovs-vswitchd.pid" \
		--unixctl="$swdir/ovs-vswitchd.ctl" --log-file="$swdir/ovs-vswitchd.log" >/dev/null 2>&1 &
	swpid=$!
	pids+=("$swpid")
	wait_for_socket "$swdir/ovs-vswitchd.ctl" "$swpid"
	attach_ports gvbf-obr -- set bridge gvbf-obr datapath_type=netdev
}

ovs_stop() {
	timeout 10 ovs-appctl -t "$swdir/ovs-vswitchd.ctl" exit --cleanup >/dev/null 2>&1 || true
	stop_pid "$swpid"
	stop_pid "$ovsdb_pid"
	rm -rf "$swdir"
	swpid=""
}

gvsd_start() {
	swdir=$work/gvsd
	mkdir -p "$swdir"
	ip netns exec gvbf-s "${gvsd_bin:-$work/bin/gvsd}" -rundir "$swdir" -db "$swdir/conf.db" >"$swdir/log" 2>&1 &
	swpid=$!
	pids+=("$swpid")
	wait_for_socket "$swdir/db.sock" "$swpid"
	attach_ports gvbf-gbr
}

gvsd_stop() {
	stop_pid "$swpid"
	rm -rf "$swdir"
	swpid=""
}

# The ACL rows: 1,000 L3/L4 rules of four shapes (so the classifier has
# several masks to search), none matching the test's traffic, ahead of
# NORMAL at priority 0; half drop, half allow (NORMAL). The same file
# goes to both switches with ovs-ofctl add-flows.
acl_flows=$work/acl.flows
make_acl() {
	local i a b
	for i in $(seq 0 999); do
		a=$((i / 250)) b=$((i % 250 + 1))
		local act=drop
		[ $((i % 2)) = 1 ] && act=NORMAL
		case $((i % 4)) in
		0) echo "priority=$((2000 + i)),tcp,nw_src=172.16.$a.$b,tp_dst=$((1024 + i)),actions=$act" ;;
		1) echo "priority=$((2000 + i)),udp,nw_dst=10.232.$a.$b/32,tp_dst=$((1024 + i)),actions=$act" ;;
		2) echo "priority=$((2000 + i)),tcp,nw_src=172.$((17 + a)).$b.0/24,nw_dst=10.233.$b.0/24,actions=$act" ;;
		3) echo "priority=$((2000 + i)),ip,nw_src=192.0.$a.$b,nw_dst=198.18.$b.$a,actions=$act" ;;
		esac
	done
	echo "priority=0,actions=NORMAL"
}
make_acl >"$acl_flows"

# load_acl MGMT: the ACL in place of the default NORMAL flow.
load_acl() {
	timeout 30 ovs-ofctl del-flows "$1" || die "del-flows $1 failed"
	timeout 120 ovs-ofctl add-flows "$1" "$acl_flows" || die "add-flows $1 failed"
	local n
	n=$(timeout 60 ovs-ofctl dump-aggregate "$1" | sed -n 's/.*flow_count=\([0-9]*\).*/\1/p')
	[ "$n" = 1001 ] || die "$1 holds $n flows after add-flows, want 1001"
}

ovsacl_start() { ovs_start && load_acl "unix:$swdir/gvbf-obr.mgmt"; }
ovsacl_stop() { ovs_stop; }
ovsacl_mirror() { ovs_mirror "$@"; }
gvsdb_start() { gvsd_bin=$work/bin/gvsd-b gvsd_start; }
gvsdb_stop() { gvsd_stop; }
gvsdb_mirror() { gvsd_mirror "$@"; }
gvsdbp_start() { gvsd_start && vsctl set Open_vSwitch . "other_config:gvs-busy-poll-us=$busy_poll"; }
gvsdbp_stop() { gvsd_stop; }
gvsdbbp_start() { gvsd_bin=$work/bin/gvsd-b gvsdbp_start; }
gvsdbbp_stop() { gvsd_stop; }
gvsdbbp_mirror() { gvsd_mirror "$@"; }
gvsdbp_mirror() { gvsd_mirror "$@"; }
gvsdhw_start() { gvsd_start && vsctl set Open_vSwitch . other_config:hw-offload=true; }
gvsdhw_stop() { gvsd_stop; }
gvsdhw_mirror() { gvsd_mirror "$@"; }
gvsdbhw_start() { gvsd_bin=$work/bin/gvsd-b gvsdhw_start; }
gvsdbhw_stop() { gvsd_stop; }
gvsdbhw_mirror() { gvsd_mirror "$@"; }
gvsdacl_start() { gvsd_start && load_acl "unix:$swdir/gvbf-gbr.mgmt"; }
gvsdacl_stop() { gvsd_stop; }
gvsdacl_mirror() { gvsd_mirror "$@"; }

# select_all_mirror BRIDGE: mirror m0, every packet to gvbfm0.
select_all_mirror() {
	vsctl -- --id=@m get port gvbfm0 \
		-- --id=@mir create mirror name=m0 select_all=true output_port=@m \
		-- set bridge "$1" mirrors=@mir >/dev/null
}

clear_mirrors() { vsctl -- --if-exists clear bridge "$1" mirrors; }

# ovs_mirror MIRROR TRAFFIC: OVS 3.1 has no Mirror.filter; the "OpenFlow
# copy" configuration does what a filtered mirror would with a flow that
# outputs to the sink port and then switches normally.
ovs_mirror() {
	local mgmt=unix:$swdir/gvbf-obr.mgmt
	clear_mirrors gvbf-obr || return 1
	timeout 10 ovs-ofctl --strict del-flows "$mgmt" "priority=100,$(filter_for tcp)" || return 1
	timeout 10 ovs-ofctl --strict del-flows "$mgmt" "priority=100,$(filter_for udp)" || return 1
	case $1 in
	select_all) select_all_mirror gvbf-obr || return 1 ;;
	"OpenFlow copy")
		timeout 10 ovs-ofctl add-flow "$mgmt" "priority=100,$(filter_for "$2"),actions=output:gvbfm0,NORMAL" || return 1
		;;
	esac
	sleep 0.5
}

# gvsd_mirror MIRROR TRAFFIC: a filtered mirror is select_all plus
# Mirror.filter, which ovs-vsctl does not know, so it is set with
# ovsdb-client. Returns 1 with the reason in na_reason if gvsd refuses.
gvsd_mirror() {
	clear_mirrors gvbf-gbr || return 1
	case $1 in
	select_all) select_all_mirror gvbf-gbr || return 1 ;;
	filtered)
		select_all_mirror gvbf-gbr || return 1
		local txn reply
		txn=$(printf '["Open_vSwitch",{"op":"update","table":"Mirror","where":[["name","==","m0"]],"row":{"filter":"%s"}}]' "$(filter_for "$2")")
		reply=$(timeout 10 ovsdb-client transact "unix:$swdir/db.sock" "$txn" 2>&1) || true
		if [[ $reply == *error* ]] || [[ $reply != *'"count":1'* ]]; then
			na_reason="gvsd refused the filter: $(echo "$reply" | sed -n 's/.*"details":"\(.*\)","error".*/\1/p' | sed 's/\\"/"/g')"
			clear_mirrors gvbf-gbr
			return 1
		fi
		;;
	esac
	sleep 0.5
}

# The PREFIX_mirror functions run in a condition, where set -e does not
# act: they return 1 themselves when a step fails.

# run_config MODE LABEL PREFIX MIRROR TRAFFIC: one measurement on a fresh
# topology and a freshly started switch, configured before the first
# packet. (OVS 3.1 kept forwarding on its cached datapath flows, without
# the copies, when a mirror was added under traffic; a fresh start also
# keeps one measurement's state out of the next.) PREFIX "na:REASON"
# records a configuration that is not measured, once.
declare -A not_available
run_config() {
	local mode=$1 sw=$2 prefix=$3 mirror=$4 traffic=$5 key="$1|$2|$4|$5"
	if [[ $prefix == na:* ]]; then
		if [ "$round" = 1 ]; then
			record na "$mode" "$sw" "$mirror" "$traffic" "${prefix#na:}"
		fi
		return 0
	fi
	if [ -n "${not_available[$key]:-}" ]; then
		return 0
	fi
	make_topology "$mode"
	"${prefix}_start"
	na_reason=""
	if ! "${prefix}_mirror" "$mirror" "$traffic"; then
		not_available[$key]=1
		record na "$mode" "$sw" "$mirror" "$traffic" "${na_reason:-could not configure the mirror}"
		log "$mode | $sw | $mirror | $traffic: n/a: $na_reason"
	else
		if [ "$round" = 1 ]; then
			log "$mode | $sw | $mirror | $traffic: sender veth: $(offload_state)"
		fi
		measure "$mode" "$sw" "$mirror" "$traffic"
		if [ "$mirror" != filtered ] && [ "$traffic" != rr ] && [ "$round" = "$runs" ]; then
			maybe_profile "$prefix" "$mode" "$mirror" "$traffic"
		fi
	fi
	"${prefix}_stop"
	remove_topology
}

# ---------------------------------------------------------------- main

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'), Linux $(uname -r)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: $(iperf3 --version | head -1), $(ovs-vswitchd --version | head -1), $("$work/bin/gvsd" -version) built with $(go version | awk '{print $3}')"
if [ -r /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
	echo "br_netfilter loaded: bridge-nf-call-iptables=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables) in the root namespace"
fi
echo "each cell: median of $runs runs of ${secs} s (TCP after 1 s of omitted warm-up), (min–max)"
echo

# The plan: one "MODE;LABEL;PREFIX;MIRROR" per table row, in order.
plan=()
for mode in $modes; do
	if [ "$mode" != on ] && [ "$mode" != int-on ] && ! $have_ethtool; then
		plan+=("$mode;all switches;na:no ethtool to turn offloads off;none")
		continue
	fi
	case $mode in
	alloff)
		for sw in "Linux bridge;lbr" "OVS 3.1 netdev;ovs" "gvsd;gvsd"; do
			for mirror in none select_all; do
				plan+=("$mode;${sw%;*};${sw#*;};$mirror")
			done
		done
		plan+=("$mode;OVS 3.1 netdev + ACL 1k;ovsacl;none" "$mode;gvsd + ACL 1k;gvsdacl;none")
		continue
		;;
	int-*)
		plan+=("$mode;Linux bridge;na:no internal ports;none")
		for sw in "OVS 3.1 netdev;ovs" "gvsd;gvsd"; do
			for mirror in none select_all; do
				plan+=("$mode;${sw%;*};${sw#*;};$mirror")
			done
		done
		continue
		;;
	esac
	for mirror in none select_all filtered; do
		plan+=("$mode;Linux bridge;lbr;$mirror")
	done
	if [ "$mode" = off ]; then
		for mirror in none select_all "OpenFlow copy"; do
			plan+=("$mode;OVS 3.1 netdev;ovs;$mirror")
		done
		plan+=("$mode;OVS 3.1 netdev;na:no Mirror.filter in OVS 3.1;filtered")
	else
		plan+=("$mode;OVS 3.1 netdev;na:partial checksums and TSO break it: not run;none")
	fi
	for mirror in none select_all filtered; do
		plan+=("$mode;gvsd;gvsd;$mirror")
	done
done

# add_variant OF NAME PREFIX: after each plan entry of switch prefix OF,
# the same measurement of switch NAME (prefix PREFIX).
add_variant() {
	local of=$1 name=$2 variant=$3 entry mode sw prefix mirror
	local -a with=()
	for entry in "${plan[@]}"; do
		with+=("$entry")
		IFS=';' read -r mode sw prefix mirror <<<"$entry"
		[ "$prefix" = "$of" ] && with+=("$mode;$name;$variant;$mirror")
	done
	plan=("${with[@]}")
}
if [ -n "$gvsd_b" ]; then
	add_variant gvsd "gvsd B" gvsdb
fi
if [ -n "$busy_poll" ]; then
	add_variant gvsdb "gvsd B busy-poll $busy_poll µs" gvsdbbp
	add_variant gvsd "gvsd busy-poll $busy_poll µs" gvsdbp
fi
if [ -n "$hw_offload" ]; then
	add_variant gvsd "gvsd hw-offload" gvsdhw
	[ -n "$gvsd_b" ] && add_variant gvsdhw "gvsd B hw-offload" gvsdbhw
fi

# Rounds: every configuration once per round, so that the load of a
# shared machine, which drifts, falls on all of them alike.
for round in $(seq "$runs"); do
	for entry in "${plan[@]}"; do
		IFS=';' read -r mode sw prefix mirror <<<"$entry"
		case "$prefix" in
		na:*) ;;
		*) [[ "$switches" == *" $prefix "* ]] || continue ;;
		esac
		for traffic in $traffics; do
			# Latency without a mirror only: a copy adds work to the
			# round trip, no wait.
			[ "$traffic" = rr ] && [ "$mirror" != none ] && continue
			run_config "$mode" "$sw" "$prefix" "$mirror" "$traffic"
		done
	done
done

"$work/bin/fwdbench" table "$records"
if [ -n "${RECORDS:-}" ]; then
	cp "$records" "$RECORDS"
fi
