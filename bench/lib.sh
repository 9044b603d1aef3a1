# Helpers shared by bench/conntrack.sh and bench/tunnel.sh (sourced, not
# run). bench/forwarding.sh keeps its own copies of the same ideas.
#
# The sourcing script sets, before sourcing:
#   me      its name, for messages
#   work    its temporary directory (mktemp -d)
# and calls lib_cleanup from its EXIT trap after removing its namespaces.
# Daemons and servers started here go into pids; stop_pid forgets them.

pids=()

log() { echo "$me: $*" >&2; }
die() { log "$*"; exit 1; }

need_tools() {
	local cmd
	for cmd in "$@"; do
		command -v "$cmd" >/dev/null || die "$cmd not found"
	done
}

# stop_pid PID: SIGTERM, then SIGKILL after 5 s; forgets the pid.
stop_pid() {
	local pid=$1 p keep=()
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	for p in "${pids[@]}"; do
		[ "$p" = "$pid" ] || keep+=("$p")
	done
	pids=("${keep[@]}")
}

# lib_cleanup: every OVS told to exit --cleanup, every remembered process
# stopped, the temporary directory removed.
lib_cleanup() {
	local ctl pid
	for ctl in "$work"/*/ovs-vswitchd.ctl; do
		[ -S "$ctl" ] && timeout 10 ovs-appctl -t "$ctl" exit --cleanup >/dev/null 2>&1
	done
	for pid in "${pids[@]}"; do
		stop_pid "$pid"
	done
	rm -rf "$work"
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

# wait_link NS DEV: until DEV exists in NS (internal ports appear later).
wait_link() {
	for _ in $(seq 100); do
		ip -n "$1" link show "$2" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "no interface $2 in $1 after 10 s"
}

# new_ns NAME: a namespace with lo up and IPv6 off, so kernels stay quiet.
new_ns() {
	ip netns add "$1"
	ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
	ip -n "$1" link set lo up
}

# veth NS1 DEV1 NS2 DEV2: a veth pair between two namespaces, both ends up.
veth() {
	ip -n "$1" link add "$2" type veth peer name "$4" netns "$3"
	ip -n "$1" link set "$2" up
	ip -n "$3" link set "$4" up
}

# offloads_off NS DEV: the "off" setting of forwarding.sh: transmit
# checksum offload and TSO off, so frames leave MTU-sized with complete
# checksums (OVS 3.1's netdev datapath needs that).
offloads_off() { ip netns exec "$1" ethtool -K "$2" tx off tso off >/dev/null; }

# gvsd_up NS DIR [ARGS...]: gvsd in NS on DIR; sets up_pid.
gvsd_up() {
	local ns=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	ip netns exec "$ns" "$work/bin/gvsd" -rundir "$dir" -db "$dir/conf.db" "$@" >"$dir/log" 2>&1 &
	up_pid=$!
	pids+=("$up_pid")
	echo "$up_pid" >"$dir/daemon.pid"
	wait_for_socket "$dir/db.sock" "$up_pid"
}

# ovs_up NS DIR: ovsdb-server (in the root namespace: it needs no
# network) and ovs-vswitchd in NS on DIR; sets up_pid to ovs-vswitchd's.
ovs_up() {
	local ns=$1 dir=$2 db_pid
	mkdir -p "$dir"
	ovsdb-tool create "$dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
	ovsdb-server --remote="punix:$dir/db.sock" --pidfile="$dir/ovsdb-server.pid" \
		--unixctl="$dir/ovsdb-server.ctl" --log-file="$dir/ovsdb-server.log" \
		"$dir/conf.db" >/dev/null 2>&1 &
	db_pid=$!
	pids+=("$db_pid")
	wait_for_socket "$dir/db.sock" "$db_pid"
	vsctl_at "$dir" --no-wait init
	# OVS_RUNDIR is where ovs-vswitchd puts its bridges' .mgmt sockets.
	OVS_RUNDIR=$dir ip netns exec "$ns" ovs-vswitchd "unix:$dir/db.sock" --pidfile="$dir/ovs-vswitchd.pid" \
		--unixctl="$dir/ovs-vswitchd.ctl" --log-file="$dir/ovs-vswitchd.log" >/dev/null 2>&1 &
	up_pid=$!
	pids+=("$up_pid")
	echo "$up_pid" >"$dir/daemon.pid"
	echo "$db_pid" >"$dir/db.pid"
	wait_for_socket "$dir/ovs-vswitchd.ctl" "$up_pid"
}

# switch_down DIR: stops the daemons on DIR (gvsd, or OVS's pair) and
# removes DIR.
switch_down() {
	local dir=$1 f
	[ -S "$dir/ovs-vswitchd.ctl" ] && [ -f "$dir/db.pid" ] &&
		timeout 10 ovs-appctl -t "$dir/ovs-vswitchd.ctl" exit --cleanup >/dev/null 2>&1
	for f in "$dir/daemon.pid" "$dir/db.pid"; do
		[ -f "$f" ] && stop_pid "$(cat "$f")"
	done
	rm -rf "$dir"
}

vsctl_at() {
	local dir=$1
	shift
	timeout 30 ovs-vsctl --db="unix:$dir/db.sock" --timeout=20 "$@"
}
# appctl_at DIR ARGS...: OVS's control socket is named by ovs_up; gvsd's
# is found as ovs-appctl finds ovs-vswitchd's, through its pidfile.
appctl_at() {
	local dir=$1
	shift
	if [ -S "$dir/ovs-vswitchd.ctl" ]; then
		timeout 30 ovs-appctl -t "$dir/ovs-vswitchd.ctl" "$@"
	else
		OVS_RUNDIR=$dir timeout 30 ovs-appctl "$@"
	fi
}

# rss_kib PID: resident set size in KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# median VALUES...: the median of numbers ("-" when none); the lower
# middle one for an even count.
median() {
	[ $# -gt 0 ] || { echo -; return; }
	printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

# range VALUES...: "min–max".
range() {
	[ $# -gt 0 ] || { echo -; return; }
	printf '%s\n' "$@" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%s–%s", lo, hi}'
}

# iperf_tcp NS_CLIENT NS_SERVER ADDR SECS PORT [IPERF_ARGS...]: one TCP
# iperf3 run (1 s omitted), bounded; prints Gbit/s or fails with a reason.
iperf_tcp() {
	local c=$1 s=$2 addr=$3 secs=$4 port=$5 spid rc=0 json
	shift 5
	json=$work/iperf.$port.json
	ip netns exec "$s" timeout $((secs + 30)) iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
	spid=$!
	pids+=("$spid")
	for _ in $(seq 50); do
		ip netns exec "$s" ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && break
		sleep 0.1
	done
	ip netns exec "$c" timeout $((secs + 20)) iperf3 -c "$addr" -p "$port" -t "$secs" -O 1 -J "$@" >"$json" 2>&1 || rc=$?
	stop_pid "$spid"
	if [ "$rc" = 124 ]; then
		echo "iperf3 timed out"
		return 1
	fi
	"$work/bin/fwdbench" rate "$json" 2>&1
}

# ping_ok NS ADDR: a few pings until one is answered (learning, ARP).
ping_ok() {
	for _ in $(seq 20); do
		ip netns exec "$1" ping -c 1 -W 1 -q "$2" >/dev/null 2>&1 && return 0
		sleep 0.25
	done
	return 1
}
