#!/bin/bash
# Connection tracking cost of three switches, side by side in one run
# (issue 12's "Performance"): gvsd and Open vSwitch 3.1's userspace
# datapath (datapath_type=netdev) with S7's five conntrack flows
# (docs/SCENARIOS S7: ct(table=0) on every TCP packet, ct(commit) and
# forward on +new from a, forward +est both ways; the default NORMAL flow
# stays for ARP), and the Linux bridge with br_netfilter and an nftables
# forward chain that does the same with "ct state" rules; each next to
# the same switch without them (NORMAL only, or no rules).
#
# Topology, made afresh for each configuration: the switch in namespace
# gvbc-s, joined by veths to gvbc-a (10.231.97.1) and gvbc-b
# (10.231.97.2).
#
# Per configuration (offloads x switch x flows):
#   tcp      iperf3 a -> b, Gbit/s (offloads "off": tx checksum and TSO
#            off on a's and b's veth, as forwarding.sh's "off"; "on": the
#            kernel's defaults, without OVS, which cannot run there).
#   conn/s   short TCP connections a -> b for CONN_SECS (bench/ctbench
#            connrate: connect, 1 byte, close; 4 clients), offloads off.
#   bytes per connection
#            (ct rows, offloads off) the switch's RSS growth over the
#            connections the conn/s test left tracked (TIME_WAIT), divided
#            by their number; for the kernel, the nf_conntrack slab
#            object size.
#   flood    (ct rows, offloads off) a zone limit of LIMIT connections
#            (dpctl/ct-set-limits zone=0,limit=N; nftables "ct count over
#            N drop"), then iperf3 once alone and once while a SYN flood
#            of FLOOD_PPS SYNs/s from random source ports runs from a to
#            a closed port of b (ctbench synflood, a raw socket in a).
#
# RUNS rounds measure every configuration once each; tables show the
# median (min-max). Everything made here is removed on exit, failure or
# interrupt; traffic stays between the namespaces made here.
#
# Environment: RUNS (3), SECS (iperf3 seconds, 5), CONN_SECS (3), LIMIT
# (1000), FLOOD_PPS (10000), SWITCHES ("lbr ovs gvsd"), MODES ("off on"),
# PROFILE=DIR: also a CPU profile of gvsd (go tool pprof through
# --metrics/--pprof) during one more ct iperf3 run per mode, into DIR.
# Run as root: bash bench/conntrack.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
me=conntrack.sh
work=$(mktemp -d /tmp/gvbc.XXXXXX)
# shellcheck source=bench/lib.sh
source bench/lib.sh

runs=${RUNS:-3}
secs=${SECS:-5}
conn_secs=${CONN_SECS:-3}
limit=${LIMIT:-1000}
flood_pps=${FLOOD_PPS:-10000}
switches=" ${SWITCHES:-lbr ovs gvsd} "
modes=${MODES:-off on}
profile_dir=${PROFILE:-}
addr_a=10.231.97.1
addr_b=10.231.97.2
port=5211
conn_port=5212
flood_port=5213
records=$work/records
: >"$records"
export OVS_RUNDIR=$work/ovsdefault OVS_LOGDIR=$work/ovsdefault OVS_DBDIR=$work/ovsdefault OVS_SYSCONFDIR=$work/ovsdefault

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
need_tools go ip iperf3 ethtool nft conntrack ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl ovs-appctl ovs-ofctl timeout ss

remove_topology() {
	local n
	for n in a b s; do
		ip netns del "gvbc-$n" 2>/dev/null || true
	done
}
cleanup() {
	set +e
	lib_cleanup
	remove_topology
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/bin"
go build -o "$work/bin/gvsd" ./cmd/gvsd
go build -o "$work/bin/fwdbench" ./bench/fwdbench
go build -o "$work/bin/ctbench" ./bench/ctbench

make_topology() {
	local mode=$1 n
	remove_topology
	for n in s a b; do
		new_ns "gvbc-$n"
	done
	veth gvbc-s gvbca0 gvbc-a gvbca1
	veth gvbc-s gvbcb0 gvbc-b gvbcb1
	ip -n gvbc-a addr add "$addr_a/24" dev gvbca1
	ip -n gvbc-b addr add "$addr_b/24" dev gvbcb1
	# Many short connections: every ephemeral port, and a server backlog
	# that does not drop SYNs.
	ip netns exec gvbc-a sysctl -qw net.ipv4.ip_local_port_range="1024 65000"
	ip netns exec gvbc-b sysctl -qw net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096
	# The flood's SYNs get no answer (b's kernel drops them), so each one
	# leaves a connection in SYN_SENT, as a real flood does.
	ip netns exec gvbc-b nft -f - <<-NFT
	table inet gvbcb {
		chain in {
			type filter hook input priority 0; policy accept;
			tcp dport $flood_port drop
		}
	}
	NFT
	if [ "$mode" = off ]; then
		offloads_off gvbc-a gvbca1
		offloads_off gvbc-b gvbcb1
	fi
}

# ------------------------------------------------------------- switches
# PREFIX_start FLOWS (normal|ct), PREFIX_limit N|none, PREFIX_tracked,
# PREFIX_stop; swpid is the process whose RSS and CPU count ("" for the
# kernel).

lbr_start() {
	ip -n gvbc-s link add gvbc-br type bridge
	ip -n gvbc-s link set gvbca0 master gvbc-br
	ip -n gvbc-s link set gvbcb0 master gvbc-br
	ip -n gvbc-s link set gvbc-br up
	swpid=""
	# br_netfilter passes bridged IPv4 through the inet hooks (and so
	# conntrack) only with this on, in this namespace.
	ip netns exec gvbc-s sysctl -qw net.bridge.bridge-nf-call-iptables=1
	[ "$1" = ct ] && lbr_rules none
	return 0
}
# lbr_rules LIMIT|none: S7's policy as nftables rules.
lbr_rules() {
	local count=""
	[ "$1" != none ] && count="ip saddr $addr_a ct state new ct count over $1 counter drop"
	ip netns exec gvbc-s nft delete table inet gvbc 2>/dev/null || true
	ip netns exec gvbc-s nft -f - <<-NFT
	table inet gvbc {
		chain fw {
			type filter hook forward priority 0; policy drop;
			ct state established accept
			$count
			ip saddr $addr_a ct state new accept
			counter
		}
	}
	NFT
}
lbr_limit() { lbr_rules "$1"; }
lbr_tracked() { ip netns exec gvbc-s conntrack -C 2>/dev/null || echo 0; }
lbr_stop() { ip -n gvbc-s link del gvbc-br 2>/dev/null || true; }

# S7's five flows, verbatim but for the port names.
s7_flows() {
	local mgmt=$1 f
	for f in "table=0, priority=50, ct_state=-trk, tcp, in_port=gvbca0, actions=ct(table=0)" \
		"table=0, priority=50, ct_state=+trk+new, tcp, in_port=gvbca0, actions=ct(commit),gvbcb0" \
		"table=0, priority=50, ct_state=-trk, tcp, in_port=gvbcb0, actions=ct(table=0)" \
		"table=0, priority=50, ct_state=+trk+est, tcp, in_port=gvbcb0, actions=gvbca0" \
		"table=0, priority=50, ct_state=+trk+est, tcp, in_port=gvbca0, actions=gvbcb0"; do
		timeout 10 ovs-ofctl add-flow "$mgmt" "$f" || die "add-flow $f: failed"
	done
}

ovs_start() {
	swdir=$work/ovs
	ovs_up gvbc-s "$swdir"
	swpid=$up_pid
	vsctl_at "$swdir" add-br gvbc-obr -- set bridge gvbc-obr datapath_type=netdev \
		-- add-port gvbc-obr gvbca0 -- add-port gvbc-obr gvbcb0
	[ "$1" = ct ] && s7_flows "unix:$swdir/gvbc-obr.mgmt"
	return 0
}
gvsd_start() {
	swdir=$work/gvsd
	local extra=()
	[ -n "${gvsd_metrics:-}" ] && extra=(-metrics "$gvsd_metrics" -pprof)
	gvsd_up gvbc-s "$swdir" "${extra[@]}"
	swpid=$up_pid
	vsctl_at "$swdir" add-br gvbc-gbr -- add-port gvbc-gbr gvbca0 -- add-port gvbc-gbr gvbcb0
	[ "$1" = ct ] && s7_flows "unix:$swdir/gvbc-gbr.mgmt"
	return 0
}
dp_limit() {
	if [ "$1" = none ]; then
		appctl_at "$swdir" dpctl/ct-del-limits zone=0 >/dev/null
	else
		appctl_at "$swdir" dpctl/ct-set-limits "zone=0,limit=$1" >/dev/null
	fi
}
dp_tracked() { appctl_at "$swdir" dpctl/dump-conntrack | grep -c . || true; }
ovs_limit() { dp_limit "$@"; }
gvsd_limit() { dp_limit "$@"; }
ovs_tracked() { dp_tracked; }
gvsd_tracked() { dp_tracked; }
ovs_stop() { switch_down "$swdir"; }
gvsd_stop() { switch_down "$swdir"; }

# ------------------------------------------------------------- measures

record() {
	local IFS='|'
	echo "$*" >>"$records"
}

# tcp_run [IPERF_ARGS...]: prints Gbit/s, or fails.
tcp_run() { iperf_tcp gvbc-a gvbc-b "$addr_b" "$secs" "$port" "$@"; }

# conn_run: prints "CONNS_PER_S CONNS FAILED".
conn_run() {
	local spid out
	ip netns exec gvbc-b timeout $((conn_secs + 15)) "$work/bin/ctbench" serve -addr "$addr_b:$conn_port" -secs $((conn_secs + 5)) &
	spid=$!
	pids+=("$spid")
	for _ in $(seq 50); do
		ip netns exec gvbc-b ss -Hltn "sport = :$conn_port" 2>/dev/null | grep -q . && break
		sleep 0.1
	done
	out=$(ip netns exec gvbc-a timeout $((conn_secs + 15)) "$work/bin/ctbench" connrate -addr "$addr_b:$conn_port" -secs "$conn_secs") || out="- - -"
	stop_pid "$spid"
	echo "$out"
}

# flood_run: iperf3 while a SYN flood runs from 1 s after its start.
flood_run() {
	local fpid rate
	(
		sleep 1
		exec ip netns exec gvbc-a timeout $((secs + 10)) "$work/bin/ctbench" synflood -src "$addr_a" -dst "$addr_b" \
			-dport "$flood_port" -pps "$flood_pps" -secs $((secs + 3))
	) >"$work/flood.out" 2>&1 &
	fpid=$!
	pids+=("$fpid")
	rate=$(tcp_run -O 2) || rate=""
	stop_pid "$fpid"
	echo "$rate"
}

# one_config MODE SWITCH FLOWS
one_config() {
	local mode=$1 sw=$2 flows=$3 r c rss0 rss1 n0 n1 key="$1|$2|$3"
	make_topology "$mode"
	"${sw}_start" "$flows"
	if ! ping_ok gvbc-a "$addr_b"; then
		log "$key: no ping from a to b"
		record fail "$key" "no ping"
		"${sw}_stop"
		return
	fi
	if r=$(tcp_run); then
		record tcp "$key" "$r"
	else
		record fail "$key" "tcp: $r"
	fi
	log "$key round $round: tcp $r Gbit/s"
	[ "$mode" = off ] || { "${sw}_stop"; return; }
	if [ "$flows" = ct ]; then
		"${sw}_limit" "$limit"
		if r=$(tcp_run); then record unloaded "$key" "$r"; fi
		local f
		f=$(flood_run)
		[ -n "$f" ] && record flooded "$key" "$f"
		log "$key round $round: limit $limit: tcp $r alone, $f under $(cat "$work/flood.out" 2>/dev/null | tr '\n' ' ')SYNs; tracked after: $("${sw}_tracked")"
		"${sw}_limit" none
	fi
	[ -n "$swpid" ] && rss0=$(rss_kib "$swpid")
	n0=$("${sw}_tracked")
	c=$(conn_run)
	n1=$("${sw}_tracked")
	[ -n "$swpid" ] && rss1=$(rss_kib "$swpid")
	record conn "$key" "${c%% *}"
	log "$key round $round: conn/s, conns, failed: $c; tracked $n0 -> $n1"
	if [ "$flows" = ct ]; then
		if [ -n "$swpid" ] && [ "$n1" -gt "$((n0 + 100))" ]; then
			record bpc "$key" "$(((rss1 - rss0) * 1024 / (n1 - n0)))"
		fi
		record tracked "$key" "$((n1 - n0))"
	fi
	"${sw}_stop"
}

# profile_gvsd MODE tcp|flood: a CPU profile of gvsd with the ct flows
# during one iperf3 run, alone or under the SYN flood past the limit.
profile_gvsd() {
	local mode=$1 what=$2 out=$profile_dir/gvsd-ct-$1-$2
	gvsd_metrics=127.0.0.1:9479
	make_topology "$mode"
	gvsd_start ct
	ping_ok gvbc-a "$addr_b" || true
	[ "$what" = flood ] && gvsd_limit "$limit"
	ip netns exec gvbc-s timeout $((secs + 30)) go tool pprof -proto -output "$out.pb.gz" -seconds "$secs" \
		"http://$gvsd_metrics/debug/pprof/profile" >/dev/null 2>&1 &
	local ppid=$!
	pids+=("$ppid")
	if [ "$what" = flood ]; then
		flood_run >/dev/null
	else
		tcp_run >/dev/null || true
	fi
	wait "$ppid" 2>/dev/null || true
	go tool pprof -top -nodecount 40 "$work/bin/gvsd" "$out.pb.gz" >"$out.txt" 2>/dev/null || true
	log "profile: $out.txt"
	gvsd_stop
	gvsd_metrics=""
}

# ------------------------------------------------------------- main

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'), Linux $(uname -r)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: $(iperf3 --version | head -1), $(ovs-vswitchd --version | head -1), $("$work/bin/gvsd" -version)"
echo "each cell: median of $runs runs (min–max); iperf3 ${secs} s after 1 s omitted; conn/s over ${conn_secs} s"
echo

declare -A label=([lbr]="Linux bridge" [ovs]="OVS 3.1 netdev" [gvsd]="gvsd")
declare -A flowname=([normal]="NORMAL / no rules" [ct]="S7 ct flows / nft ct state")
for round in $(seq "$runs"); do
	for mode in $modes; do
		for sw in lbr ovs gvsd; do
			[[ "$switches" == *" $sw "* ]] || continue
			[ "$mode" = on ] && [ "$sw" = ovs ] && continue
			for flows in normal ct; do
				one_config "$mode" "$sw" "$flows"
				remove_topology
			done
		done
	done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# values KIND KEY: the recorded values.
values() { awk -F'|' -v k="$1" -v key="$2" '$1 == k && $2"|"$3"|"$4 == key {print $5}' "$records"; }
cell() {
	local v
	mapfile -t v < <(values "$1" "$2")
	[ ${#v[@]} -gt 0 ] || { echo "–"; return; }
	echo "$(median "${v[@]}") ($(range "${v[@]}"))"
}
med() {
	local v
	mapfile -t v < <(values "$1" "$2")
	median "${v[@]}"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "-" || b == "-" || b == 0) print "–"; else printf "%.2f", a / b}'; }

echo "TCP throughput, Gbit/s, and the ct rules' cost against the same switch without them"
echo
echo "| offloads | switch | NORMAL / no rules | S7 ct flows / nft ct state | ct cost | ct vs OVS 3.1 ct with offloads off |"
echo "|---|---|---:|---:|---:|---:|"
for mode in $modes; do
	for sw in lbr ovs gvsd; do
		[[ "$switches" == *" $sw "* ]] || continue
		[ "$mode" = on ] && [ "$sw" = ovs ] && continue
		n=$(med tcp "$mode|$sw|normal")
		c=$(med tcp "$mode|$sw|ct")
		o=$(med tcp "off|ovs|ct")
		cost=$(awk -v n="$n" -v c="$c" 'BEGIN {if (n == "-" || c == "-") print "–"; else printf "%.0f %%", (1 - c / n) * 100}')
		vs=–
		[ "$sw" != ovs ] && vs="$(ratio "$c" "$o")×"
		echo "| $mode | ${label[$sw]} | $(cell tcp "$mode|$sw|normal") | $(cell tcp "$mode|$sw|ct") | $cost | $vs |"
	done
done
echo
echo "New TCP connections per second (offloads off), tracked connections' memory, SYN flood beyond a zone limit of $limit at $flood_pps SYN/s"
echo
echo "| switch | conn/s, no rules | conn/s, ct | ct conn/s vs OVS | bytes per tracked connection | connections tracked by the conn/s test | TCP alone, Gbit/s | TCP under the flood | flood cost |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
slab=$(awk '$1 == "nf_conntrack" {print $4}' /proc/slabinfo 2>/dev/null || true)
for sw in lbr ovs gvsd; do
	[[ "$switches" == *" $sw "* ]] || continue
	k="off|$sw|ct"
	bpc=$(cell bpc "$k")
	[ "$sw" = lbr ] && bpc="${slab:-?} (nf_conntrack slab object)"
	u=$(med unloaded "$k")
	f=$(med flooded "$k")
	fc=$(awk -v u="$u" -v f="$f" 'BEGIN {if (u == "-" || f == "-") print "–"; else printf "%.0f %%", (1 - f / u) * 100}')
	echo "| ${label[$sw]} | $(cell conn "off|$sw|normal") | $(cell conn "$k") | $(ratio "$(med conn "$k")" "$(med conn "off|ovs|ct")")× | $bpc | $(cell tracked "$k") | $(cell unloaded "$k") | $(cell flooded "$k") | $fc |"
done
grep '^fail' "$records" | sed 's/^/failed: /' || true

if [ -n "$profile_dir" ] && [[ "$switches" == *" gvsd "* ]]; then
	mkdir -p "$profile_dir"
	for mode in $modes; do
		profile_gvsd "$mode" tcp
		remove_topology
	done
	profile_gvsd off flood
	remove_topology
fi
