#!/bin/bash
# Throughput through tunnels between two hosts (issue 11's
# "Performance"), side by side in one run: gvsd on both hosts, Open
# vSwitch 3.1 on both hosts (userspace datapath with its native
# tunnelling), gvsd with the same native tunnelling, and the kernel's own
# VXLAN device in a Linux bridge (this kernel has no GRE or Geneve
# devices); and a select_all mirror into a GRE port at full speed.
#
# Topology, made afresh for each configuration: hosts gvbt-h1 and gvbt-h2
# (namespaces) joined by a veth underlay (172.21.99.1 and 172.21.99.2);
# VMs gvbt-v1 (10.231.94.1) on host1 and gvbt-v2 (10.231.94.2) on host2,
# each behind a veth into its host's switch. The VMs' MTU is 1400, so
# every tunnel's encapsulated frame fits the 1500-byte underlay. TCP
# iperf3 from v1 to v2 through the tunnel (key/VNI 16).
#   gvsd     a bridge with the VM's port and a tunnel port per host; the
#            underlay address sits on the veth (the host's own routing:
#            gvs sends through the kernel's raw or UDP sockets), as
#            test/e2e/tunnel_test.go builds S4.
#   gvsd-native  gvsd's native tunnelling, the topology of OVS below
#            (bridge gvbt-ul with the underlay veth, the address on its
#            internal port): gvs decapsulates what that bridge delivers to
#            gvbt-ul and sends encapsulated frames into that bridge
#            (internal/netdev/tnl_native_linux.go).
#   gvsd-hw  gvsd with the host's routing exactly as gvsd, plus
#            Open_vSwitch other_config:hw-offload=true on both hosts (the
#            kernel fast path, docs/GUIDE.md section 17): once a flow's
#            first packet has been through gvsd, a GRE port's traffic may
#            be encapsulated and decapsulated by gvsd's tc programs; what
#            they do not take stays in gvsd (the run's log line says how
#            many packets each host's kernel forwarded). Column "gvsd
#            hw-offload".
#   OVS 3.1  OVS's native tunnelling, as test/e2e/tunnel_ovs_test.go:
#            the underlay address on the internal port of bridge gvbt-ul,
#            whose port is the underlay veth.
#   kernel   a Linux bridge with the VM's port and a vxlan device.
# Offloads: "off" = tx checksum and TSO off on the VMs' veths (OVS 3.1's
# netdev datapath needs that, as in forwarding.sh), "on" = the kernel's
# defaults (not OVS).
#
# Mirror: host1 holds v1 and a third VM gvbt-v3 (10.231.94.3); iperf3 v1
# -> v3 through gvsd's bridge, without a mirror and with a select_all
# mirror whose output is a GRE port to host2, where no switch runs (its
# kernel drops the GRE packets: a collector that only counts). The table
# gives the throughput, the GRE port's tx_packets and tx_dropped, and
# the packets that reached host2's underlay.
#
# RUNS rounds measure every configuration once each; tables show the
# median (min-max). Everything made here is removed on exit, failure or
# interrupt; traffic stays between the namespaces made here.
# Environment: RUNS (3), SECS (5), MODES ("off on"), SWITCHES ("gvsd ovs
# kernel mirror"; also gvsd-native and gvsd-hw, off by default), TYPES
# ("gre vxlan geneve"), PROFILE=DIR: CPU profiles
# of gvsd (go tool pprof via --metrics/--pprof) for one more run per
# mode and tunnel type (with gvsd, gvsd-native or gvsd-hw in SWITCHES,
# each; both hosts) and one more
# select_all mirror run per mode (with mirror in SWITCHES), into DIR; CSUM (true): the csum option of the
# VXLAN and Geneve ports of gvsd and OVS, true as the kernel's vxlan
# device (udpcsum) by default; GVSD=PATH: that gvsd binary instead of
# one built from this tree (A/B runs); GVSD_TUNNEL_OPTIONS: more
# settings of gvsd's tunnel ports (e.g. "options:gvs-gro=false"); DIAG=DIR:
# after each run, every device's and gvsd's counters into DIR (diag_snap).
# MIRROR_HW_OFFLOAD=1: the mirror runs with other_config:hw-offload=true
# (the kernel clones to v3 and encapsulates the copy).
# Run as root: bash bench/tunnel.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
me=tunnel.sh
work=$(mktemp -d /tmp/gvbt.XXXXXX)
# shellcheck source=bench/lib.sh
source bench/lib.sh

runs=${RUNS:-3}
secs=${SECS:-5}
modes=${MODES:-off on}
switches=" ${SWITCHES:-gvsd ovs kernel mirror} "
types=${TYPES:-gre vxlan geneve}
profile_dir=${PROFILE:-}
ul1=172.21.99.1
ul2=172.21.99.2
vm1=10.231.94.1
vm2=10.231.94.2
vm3=10.231.94.3
port=5221
records=$work/records
: >"$records"
export OVS_RUNDIR=$work/ovsdefault OVS_LOGDIR=$work/ovsdefault OVS_DBDIR=$work/ovsdefault OVS_SYSCONFDIR=$work/ovsdefault

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
need_tools go ip iperf3 ethtool ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl ovs-appctl timeout ss

remove_topology() {
	local n
	for n in h1 h2 v1 v2 v3; do
		ip netns del "gvbt-$n" 2>/dev/null || true
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
if [ -n "${GVSD:-}" ]; then
	cp "$GVSD" "$work/bin/gvsd" # another build, for an A/B comparison
else
	go build -o "$work/bin/gvsd" ./cmd/gvsd
fi
go build -o "$work/bin/fwdbench" ./bench/fwdbench

# make_topology MODE UNDERLAY_ADDRS(yes|no) [v3]
make_topology() {
	local mode=$1 n
	remove_topology
	for n in h1 h2 v1 v2 ${3:-}; do
		new_ns "gvbt-$n"
	done
	veth gvbt-h1 gvbtu1 gvbt-h2 gvbtu2
	if [ "$2" = yes ]; then
		ip -n gvbt-h1 addr add "$ul1/24" dev gvbtu1
		ip -n gvbt-h2 addr add "$ul2/24" dev gvbtu2
	fi
	veth gvbt-h1 gvbtp1 gvbt-v1 gvbtv1
	veth gvbt-h2 gvbtp2 gvbt-v2 gvbtv2
	ip -n gvbt-v1 addr add "$vm1/24" dev gvbtv1
	ip -n gvbt-v2 addr add "$vm2/24" dev gvbtv2
	local vms=(1 2)
	if [ -n "${3:-}" ]; then
		veth gvbt-h1 gvbtp3 gvbt-v3 gvbtv3
		ip -n gvbt-v3 addr add "$vm3/24" dev gvbtv3
		vms+=(3)
	fi
	for n in "${vms[@]}"; do
		ip -n "gvbt-v$n" link set "gvbtv$n" mtu 1400
		[ "$mode" = off ] && offloads_off "gvbt-v$n" "gvbtv$n"
	done
	return 0
}

# ------------------------------------------------------------- switches

# gvsd_pair TYPE [native|hw]: gvsd on each host, a bridge with the VM's
# port and the tunnel port; with native, the underlay as ovs_pair builds
# it; with hw, the kernel fast path on (other_config:hw-offload=true).
gvsd_pair() {
	local typ=$1 h extra=()
	for h in 1 2; do
		extra=()
		[ -n "${gvsd_metrics:-}" ] && extra=(-metrics "$gvsd_metrics$h" -pprof)
		gvsd_up "gvbt-h$h" "$work/sw$h" "${extra[@]}"
		[ "${2:-}" = native ] && native_underlay "$h"
		[ "${2:-}" = hw ] && vsctl_at "$work/sw$h" set Open_vSwitch . other_config:hw-offload=true
	done
	vsctl_at "$work/sw1" add-br gvbt-br -- add-port gvbt-br gvbtp1 \
		-- add-port gvbt-br gvbtt -- set interface gvbtt type="$typ" options:remote_ip=$ul2 options:key=16 "$(udp_csum "$typ")" ${GVSD_TUNNEL_OPTIONS:-}
	vsctl_at "$work/sw2" add-br gvbt-br -- add-port gvbt-br gvbtp2 \
		-- add-port gvbt-br gvbtt -- set interface gvbtt type="$typ" options:remote_ip=$ul1 options:key=16 "$(udp_csum "$typ")" ${GVSD_TUNNEL_OPTIONS:-}
}

# udp_csum TYPE: the csum option for the UDP tunnels. The kernel's VXLAN
# device computes UDP checksums by default (udpcsum), so the switches do
# too unless CSUM=false; gvsd sends with UDP GSO only when csum=true (the
# kernel's UDP GSO needs checksums; csum=false keeps OVS's zero checksum).
udp_csum() {
	case $1 in vxlan | geneve) echo "options:csum=${CSUM:-true}" ;; *) echo "options:csum=false" ;; esac
}

# native_underlay H: host H's switch gets bridge gvbt-ul with the
# underlay veth as its port and the underlay address on its internal port
# (native tunnelling, the same for OVS and gvsd).
native_underlay() {
	local h=$1 me_addr=$ul1
	[ "$h" = 2 ] && me_addr=$ul2
	vsctl_at "$work/sw$h" add-br gvbt-ul -- set bridge gvbt-ul datapath_type=netdev -- add-port gvbt-ul "gvbtu$h"
	wait_link "gvbt-h$h" gvbt-ul
	ip -n "gvbt-h$h" addr add "$me_addr/24" dev gvbt-ul
	ip -n "gvbt-h$h" link set gvbt-ul up
}

# ovs_pair TYPE: OVS on each host, native tunnelling over bridge gvbt-ul.
ovs_pair() {
	local typ=$1 h remote
	for h in 1 2; do
		remote=$ul2
		[ $h = 2 ] && remote=$ul1
		ovs_up "gvbt-h$h" "$work/sw$h"
		native_underlay "$h"
		vsctl_at "$work/sw$h" add-br gvbt-br -- set bridge gvbt-br datapath_type=netdev -- add-port gvbt-br "gvbtp$h" \
			-- add-port gvbt-br gvbtt -- set interface gvbtt type="$typ" options:remote_ip=$remote options:key=16 "$(udp_csum "$typ")"
	done
}

# kernel_pair: a Linux bridge and a vxlan device on each host.
kernel_pair() {
	local h remote
	for h in 1 2; do
		remote=$ul2
		[ $h = 2 ] && remote=$ul1
		ip -n "gvbt-h$h" link add gvbtvx type vxlan id 16 remote "$remote" dstport 4789 dev "gvbtu$h"
		ip -n "gvbt-h$h" link add gvbt-kbr type bridge
		ip -n "gvbt-h$h" link set "gvbtp$h" master gvbt-kbr
		ip -n "gvbt-h$h" link set gvbtvx master gvbt-kbr
		ip -n "gvbt-h$h" link set gvbtvx up
		ip -n "gvbt-h$h" link set gvbt-kbr up
	done
}

pair_down() {
	switch_down "$work/sw1"
	switch_down "$work/sw2"
}

record() {
	local IFS='|'
	echo "$*" >>"$records"
}

# tunnel_config MODE SWITCH TYPE
tunnel_config() {
	local mode=$1 sw=$2 typ=$3 r key="$1|$2|$3" ul=yes
	case $sw in ovs | gvsd-native) ul=no ;; esac
	make_topology "$mode" "$ul"
	case $sw in
	gvsd) gvsd_pair "$typ" ;;
	gvsd-native) gvsd_pair "$typ" native ;;
	gvsd-hw) gvsd_pair "$typ" hw ;;
	ovs) ovs_pair "$typ" ;;
	kernel) kernel_pair ;;
	esac
	if ! ping_ok gvbt-v1 "$vm2"; then
		record fail "$key" "no ping from v1 to v2"
		log "$key: no ping from v1 to v2"
	elif diag_snap before && r=$(iperf_tcp gvbt-v1 gvbt-v2 "$vm2" "$secs" "$port"); then
		record tcp "$key" "$r"
		log "$key round $round: $r Gbit/s, $(retransmits) TCP retransmits$(tunnel_drops "$sw")$(ring_drops "$sw")$(kernel_forwarded "$sw")"
		diag_snap after "$sw-$typ-$mode-$round"
	else
		record fail "$key" "$r"
		log "$key round $round: failed: $r"
	fi
	pair_down
	remove_topology
}

# retransmits: the TCP retransmissions of the last iperf_tcp run.
retransmits() {
	sed -n 's/.*"retransmits":[[:space:]]*\([0-9]*\).*/\1/p' "$work/iperf.$port.json" | tail -1
}

# is_gvsd SWITCH: whether SWITCH is one of the gvsd configurations.
is_gvsd() { case $1 in gvsd | gvsd-native | gvsd-hw) return 0 ;; esac; return 1; }

# kernel_forwarded SWITCH: for gvsd-hw, the packets each host's kernel
# fast path forwarded (dpctl/offload-stats-show), the run's ping included.
kernel_forwarded() {
	[ "$1" = gvsd-hw ] || return 0
	local h out=""
	for h in 1 2; do
		out+="; host$h kernel forwarded $(appctl_at "$work/sw$h" dpctl/offload-stats-show 2>/dev/null |
			sed -n 's/^ *packets forwarded: //p')"
	done
	echo "$out"
}

# tunnel_drops SWITCH: for gvsd, the tunnel ports' drop counters on both
# hosts (receive queue overflows show as rx_dropped).
tunnel_drops() {
	is_gvsd "$1" || return 0
	local h out=""
	for h in 1 2; do
		out+="; host$h tunnel port $(vsctl_at "$work/sw$h" get interface gvbtt statistics 2>/dev/null |
			tr -d '{}"' | tr ',' '\n' | grep -E 'dropped|errors' | grep -v '=0$' | tr '\n' ' ')"
	done
	echo "$out"
}

# ring_drops SWITCH: for gvsd, every other port whose Interface.statistics
# count drops or errors (the underlay's and the VMs' system ports, the
# native underlay's internal port), on both hosts: a segment TCP had to
# retransmit was lost in one of them, or in no switch at all.
ring_drops() {
	is_gvsd "$1" || return 0
	local h out="" line
	for h in 1 2; do
		while read -r line; do
			out+="; host$h $line"
		done < <(vsctl_at "$work/sw$h" --bare --columns=name,statistics list interface 2>/dev/null |
			awk 'NF == 1 && $1 !~ /=/ {name = $1; next}
			     /=/ {n = split($0, kv, /[ ,]+/); s = ""
			          for (i = 1; i <= n; i++) if (kv[i] ~ /(dropped|errors)=[1-9]/) s = s " " kv[i]
			          if (name != "gvbtt" && s != "") print name s}')
	done
	echo "$out"
}

# diag_snap before|after NAME: with DIAG=DIR, the kernel's counters of
# every device in the four namespaces (ip -s -s link), the VMs' TCP
# counters (nstat: retransmissions, reordering, out-of-order queueing,
# DSACKs), the machine's softnet drops, and each gvsd's coverage/show and
# Interface statistics, at the end of a run into DIR/NAME.txt (the
# namespaces are new for each run, so their counters are the run's).
diag_snap() {
	[ -n "${DIAG:-}" ] || return 0
	local n
	if [ "$1" = before ]; then
		cp /proc/net/softnet_stat "$work/softnet.before"
		for n in h1 h2; do
			ip -n "gvbt-$n" -s link
		done >"$work/links.before" 2>&1
		return 0
	fi
	local f=$DIAG/$2.txt h
	mkdir -p "$DIAG"
	{
		echo "== ip -s link of the hosts before the run (after the ping)"
		cat "$work/links.before"
		for n in h1 h2 v1 v2; do
			echo "== ip -s -s link, gvbt-$n"
			ip -n "gvbt-$n" -s -s link
		done
		for n in v1 v2; do
			echo "== nstat, gvbt-$n"
			ip netns exec "gvbt-$n" nstat -az 2>/dev/null | grep -E 'Retrans|Reorder|OFO|DSACK|SACK|Loss|Lost|Spurious|Prune|Drop|InSegs|OutSegs|Timeout' | grep -v ' 0 '
		done
		echo "== softnet_stat before / after (processed dropped time_squeeze, hex, per CPU)"
		awk '{print $1, $2, $3}' "$work/softnet.before"
		awk '{print $1, $2, $3}' /proc/net/softnet_stat
		for h in 1 2; do
			[ -S "$work/sw$h/db.sock" ] || continue
			echo "== host$h interfaces"
			vsctl_at "$work/sw$h" --columns=name,statistics list interface 2>/dev/null
			echo "== host$h coverage/show"
			appctl_at "$work/sw$h" coverage/show 2>/dev/null | grep -v ' 0\.0/sec .* total: 0$'
		done
	} >"$f" 2>&1
	cp "$work/iperf.$port.json" "$DIAG/$2.iperf.json" 2>/dev/null || true
}

# stat NS DEV NAME: a kernel interface counter.
stat() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"; }
# ifstat KEY: the GRE port's Interface.statistics value.
ifstat() { vsctl_at "$work/sw1" get interface gvbtg "statistics:$1" 2>/dev/null | tr -d '"' || echo 0; }

# mirror_config MODE MIRROR(none|select_all) [PROFILE_OUT]: with
# PROFILE_OUT, a CPU profile of host1's gvsd during the iperf3 run goes to
# PROFILE_OUT.pb.gz and .txt, and nothing is recorded.
mirror_config() {
	local mode=$1 mirror=$2 r key="$1|mirror|$2" tx0 tx1 dr0 dr1 rx0 rx1 pout=${3:-} ppid="" perfpid=""
	local extra=()
	[ -n "$pout" ] && extra=(-metrics 127.0.0.1:9471 -pprof)
	make_topology "$mode" yes v3
	gvsd_up gvbt-h1 "$work/sw1" "${extra[@]}"
	vsctl_at "$work/sw1" set Open_vSwitch . other_config:stats-update-interval=1000
	[ -z "${MIRROR_HW_OFFLOAD:-}" ] || vsctl_at "$work/sw1" set Open_vSwitch . other_config:hw-offload=true
	vsctl_at "$work/sw1" add-br gvbt-br -- add-port gvbt-br gvbtp1 -- add-port gvbt-br gvbtp3 \
		-- add-port gvbt-br gvbtg -- set interface gvbtg type=gre options:remote_ip=$ul2 options:key=16
	if [ "$mirror" = select_all ]; then
		vsctl_at "$work/sw1" -- --id=@g get port gvbtg \
			-- --id=@m create mirror name=m0 select_all=true output_port=@g \
			-- set bridge gvbt-br mirrors=@m >/dev/null
	fi
	if ! ping_ok gvbt-v1 "$vm3"; then
		record fail "$key" "no ping from v1 to v3"
		switch_down "$work/sw1"
		remove_topology
		return
	fi
	sleep 1.2
	tx0=$(ifstat tx_packets) dr0=$(ifstat tx_dropped) rx0=$(stat gvbt-h2 gvbtu2 rx_packets)
	if [ -n "$pout" ]; then
		ip netns exec gvbt-h1 timeout $((secs + 30)) go tool pprof -proto -output "$pout.pb.gz" -seconds "$secs" \
			"http://127.0.0.1:9471/debug/pprof/profile" >/dev/null 2>&1 &
		ppid=$!
		pids+=("$ppid")
		if command -v perf >/dev/null; then
			# The whole machine's kernel too: most of a copy's cost is
			# there (perf's own files go to PROFILE_OUT.perf*).
			(sleep 1 && perf record -q -a -g -o "$pout.perf.data" -- sleep "$((secs - 1))" >/dev/null 2>&1) &
			perfpid=$!
			pids+=("$perfpid")
		fi
	fi
	if ! r=$(iperf_tcp gvbt-v1 gvbt-v3 "$vm3" "$secs" "$port"); then
		[ -n "$pout" ] || record fail "$key" "$r"
	elif [ -z "$pout" ]; then
		record tcp "$key" "$r"
	fi
	sleep 1.5
	tx1=$(ifstat tx_packets) dr1=$(ifstat tx_dropped) rx1=$(stat gvbt-h2 gvbtu2 rx_packets)
	if [ -n "$pout" ]; then
		wait "$ppid" 2>/dev/null || true
		[ -z "$perfpid" ] || wait "$perfpid" 2>/dev/null || true
		go tool pprof -top -cum -nodecount 40 "$work/bin/gvsd" "$pout.pb.gz" >"$pout.txt" 2>/dev/null || true
		if [ -f "$pout.perf.data" ]; then
			perf report -q -i "$pout.perf.data" --no-children --sort comm,sym --percent-limit 0.7 -g none \
				>"$pout.perf.txt" 2>/dev/null || true
			perf report -q -i "$pout.perf.data" --children --sort sym --percent-limit 3 -g none \
				>"$pout.perf-children.txt" 2>/dev/null || true
			rm -f "$pout.perf.data"
		fi
		log "profile: $pout.txt ($r Gbit/s; GRE tx_packets +$((tx1 - tx0)) tx_dropped +$((dr1 - dr0)))"
	elif [ "$mirror" = select_all ]; then
		record gre_tx "$key" "$((tx1 - tx0))"
		record gre_dropped "$key" "$((dr1 - dr0))"
		record collector_rx "$key" "$((rx1 - rx0))"
	fi
	log "$key round $round: $r Gbit/s; GRE port tx_packets +$((tx1 - tx0)) tx_dropped +$((dr1 - dr0)); host2 underlay rx_packets +$((rx1 - rx0))"
	switch_down "$work/sw1"
	remove_topology
}

# profile_gvsd MODE TYPE [native|hw]: CPU profiles of both hosts' gvsd
# (the sender's and the receiver's side of the tunnel) during one iperf3
# run through a TYPE tunnel; with native, over gvsd's native underlay;
# with hw, with the kernel fast path on.
profile_gvsd() {
	local mode=$1 typ=$2 out=$profile_dir/gvsd-tunnel-$2-$1 h ppids=() ul=yes
	[ "${3:-}" = native ] && out=$profile_dir/gvsd-native-tunnel-$2-$1 ul=no
	[ "${3:-}" = hw ] && out=$profile_dir/gvsd-hw-tunnel-$2-$1
	gvsd_metrics=127.0.0.1:947
	make_topology "$mode" "$ul"
	gvsd_pair "$typ" "${3:-}"
	ping_ok gvbt-v1 "$vm2" || true
	for h in 1 2; do
		ip netns exec "gvbt-h$h" timeout $((secs + 30)) go tool pprof -proto -output "$out-host$h.pb.gz" -seconds "$secs" \
			"http://$gvsd_metrics$h/debug/pprof/profile" >/dev/null 2>&1 &
		ppids+=($!)
		pids+=($!)
	done
	if command -v perf >/dev/null; then
		# The whole machine's kernel too (both hosts, the VMs' stacks):
		# most of a tunnelled packet's cost is there.
		(sleep 1 && perf record -q -a -g -o "$out.perf.data" -- sleep "$((secs - 1))" >/dev/null 2>&1) &
		ppids+=($!)
		pids+=($!)
	fi
	iperf_tcp gvbt-v1 gvbt-v2 "$vm2" "$secs" "$port" >/dev/null || true
	for h in "${ppids[@]}"; do
		wait "$h" 2>/dev/null || true
	done
	for h in 1 2; do
		go tool pprof -top -cum -nodecount 40 "$work/bin/gvsd" "$out-host$h.pb.gz" >"$out-host$h.txt" 2>/dev/null || true
		log "profile: $out-host$h.txt"
		# How the segments went: GSO sends, GRO reads, joined frames.
		appctl_at "$work/sw$h" coverage/show 2>/dev/null | grep -E 'tunnel_(udp_gso|udp_gro|gro_|native_|direct)' >"$out-host$h.coverage.txt" || true
	done
	if [ -f "$out.perf.data" ]; then
		perf report -q -i "$out.perf.data" --no-children --sort comm,sym --percent-limit 0.7 -g none \
			>"$out.perf.txt" 2>/dev/null || true
		perf report -q -i "$out.perf.data" --children --comm gvsd --sort sym --percent-limit 2 -g none \
			>"$out.perf-children.txt" 2>/dev/null || true
		perf report -q -i "$out.perf.data" --no-children --sort comm -g none >"$out.perf-comm.txt" 2>/dev/null || true
		rm -f "$out.perf.data"
		log "profile: $out.perf.txt"
	fi
	pair_down
	remove_topology
	gvsd_metrics=""
}

# ------------------------------------------------------------- main

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'), Linux $(uname -r)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: $(iperf3 --version | head -1), $(ovs-vswitchd --version | head -1), $("$work/bin/gvsd" -version)"
echo "each cell: median of $runs runs (min–max); iperf3 ${secs} s after 1 s omitted"
echo

for round in $(seq "$runs"); do
	for mode in $modes; do
		for typ in $types; do
			[[ "$switches" == *" gvsd "* ]] && tunnel_config "$mode" gvsd "$typ"
			[[ "$switches" == *" gvsd-native "* ]] && tunnel_config "$mode" gvsd-native "$typ"
			[[ "$switches" == *" gvsd-hw "* ]] && tunnel_config "$mode" gvsd-hw "$typ"
			[[ "$switches" == *" ovs "* ]] && [ "$mode" = off ] && tunnel_config "$mode" ovs "$typ"
		done
		[[ "$switches" == *" kernel "* ]] && tunnel_config "$mode" kernel vxlan
		if [[ "$switches" == *" mirror "* ]]; then
			mirror_config "$mode" none
			mirror_config "$mode" select_all
		fi
	done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

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
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "-" || b == "-" || b == 0) print "–"; else printf "%.2f×", a / b}'; }

echo "TCP through a tunnel between two hosts, Gbit/s"
echo
echo "gvsd: the host's routing underlay; gvsd native: native tunnelling, OVS's topology;"
echo "gvsd hw-offload: the host's routing underlay with other_config:hw-offload=true"
echo
echo "| offloads | tunnel | gvsd | gvsd native | gvsd hw-offload | OVS 3.1 netdev | kernel vxlan device | gvsd / OVS | gvsd native / OVS | gvsd hw-offload / OVS | gvsd / kernel vxlan | gvsd native / kernel vxlan |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for mode in $modes; do
	k=$(med tcp "$mode|kernel|vxlan")
	for typ in $types; do
		g=$(med tcp "$mode|gvsd|$typ")
		gn=$(med tcp "$mode|gvsd-native|$typ")
		gh=$(med tcp "$mode|gvsd-hw|$typ")
		o=$(med tcp "$mode|ovs|$typ")
		ocell="not run (partial checksums and TSO)"
		[ "$mode" = off ] && ocell=$(cell tcp "$mode|ovs|$typ")
		kcell="no $typ device in this kernel"
		[ "$typ" = vxlan ] && kcell=$(cell tcp "$mode|kernel|vxlan")
		echo "| $mode | $typ | $(cell tcp "$mode|gvsd|$typ") | $(cell tcp "$mode|gvsd-native|$typ") | $(cell tcp "$mode|gvsd-hw|$typ") | $ocell | $kcell | $(ratio "$g" "$o") | $(ratio "$gn" "$o") | $(ratio "$gh" "$o") | $(ratio "$g" "$k") | $(ratio "$gn" "$k") |"
	done
done
echo
echo "select_all mirror into GRE (iperf3 v1 -> v3 on host1), per run of ${secs}+1 s"
echo
echo "| offloads | no mirror, Gbit/s | select_all into GRE, Gbit/s | kept | GRE tx_packets | GRE tx_dropped | packets at the collector |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for mode in $modes; do
	[[ "$switches" == *" mirror "* ]] || continue
	n=$(med tcp "$mode|mirror|none")
	m=$(med tcp "$mode|mirror|select_all")
	kept=$(awk -v n="$n" -v m="$m" 'BEGIN {if (n == "-" || m == "-") print "–"; else printf "%.0f %%", m / n * 100}')
	echo "| $mode | $(cell tcp "$mode|mirror|none") | $(cell tcp "$mode|mirror|select_all") | $kept | $(cell gre_tx "$mode|mirror|select_all") | $(cell gre_dropped "$mode|mirror|select_all") | $(cell collector_rx "$mode|mirror|select_all") |"
done
grep '^fail' "$records" | sed 's/^/failed: /' || true

if [ -n "$profile_dir" ]; then
	mkdir -p "$profile_dir"
	for mode in $modes; do
		if [[ "$switches" == *" mirror "* ]]; then
			mirror_config "$mode" select_all "$profile_dir/gvsd-mirror-gre-$mode"
		fi
		for typ in $types; do
			if [[ "$switches" == *" gvsd "* ]]; then profile_gvsd "$mode" "$typ"; fi
			if [[ "$switches" == *" gvsd-native "* ]]; then profile_gvsd "$mode" "$typ" native; fi
			if [[ "$switches" == *" gvsd-hw "* ]]; then profile_gvsd "$mode" "$typ" hw; fi
		done
	done
fi
