#!/bin/bash
# What mirroring a host interface costs its own traffic, in one run:
# iperf3 over a veth pair, TCP (Gbit/s) and UDP with 64-byte frames
# (18-byte payload, kpps reaching the server), with
#   none      no mirror;
#   mirred    tc mirred of everything the interface sends and receives
#             to a local veth (clsact ingress and egress, u32 match-all:
#             this kernel has neither matchall nor flower);
#   tcpdump   tcpdump -w FILE on the interface;
#   span-all  gvs span of everything to dev: a local veth;
#   span-1pc  gvs span whose filter selects 1 % of the packets, to dev:
#             (the kernel clones them);
#   span-1pc-pcap  the same filter to a pcap: file (the kernel hands the
#             packets to gvsd through a perf event array);
#   span-0    gvs span whose filter selects nothing (a port no flow uses).
#
# Topology: namespace gvbs-a (10.232.0.1, gvbsa0, where gvsd, tcpdump and
# the iperf3 client run) joined by a veth pair to gvbs-b (10.232.0.2,
# gvbsb0, the iperf3 server); the mirrors' destination is veth gvbsm0 in
# gvbs-a, whose peer gvbsm1 in gvbs-m counts the copies that arrive (its
# kernel drops them). Offloads are the kernel's defaults (TSO, GSO, GRO on
# the veths), as a host would have them.
#
# The 1 %: every configuration carries, besides the measured flow, a side
# flow of UDP packets to port 5202 at 1 % of the packet rate the
# interface sees with no mirror, per traffic type: calibrated first (the
# best of two runs), then again from each round's "none" run, so that a
# slow calibration on a busy machine does not leave the side flow at a
# fraction of 1 %; span-1pc's filter is 'udp,tp_dst=5202', so it selects
# exactly that flow. Each row reports the side flow's measured share
# (packets the side iperf3 sent per packet the interface handled).
# Packets are counted as the interface counts them (a TCP super-frame is
# one packet, as it is one copy).
#
# Each cell: median of RUNS runs of SECS s; rounds measure every
# configuration once each, in turn. Besides the rate, each row gives what
# the mirror delivered: copies that reached gvbsm1 (or tcpdump wrote) per
# packet the interface handled, and gvs span's own drop counters.
#
# Everything made here (namespaces, veths, gvsd, the temporary directory)
# is removed on exit, failure or interrupt.
# Environment: RUNS (default 3), SECS (default 5), CONFIGS (the rows, in
# the order each round runs them; "none" first).
# Run as root: bash bench/span.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

runs=${RUNS:-3}
secs=${SECS:-5}
addr_a=10.232.0.1
addr_b=10.232.0.2
port=5201
side_port=5202
configs=${CONFIGS:-"none mirred tcpdump span-all span-1pc span-1pc-pcap span-0"}

log() { echo "span.sh: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
for cmd in go ip tc iperf3 tcpdump timeout ss awk; do
	command -v "$cmd" >/dev/null || die "$cmd not found"
done

work=$(mktemp -d /tmp/gvbs.XXXXXX)
records=$work/records
: >"$records"
pids=()
gvsd_pid=""

# in_a CMD...: a command in gvbs-a. (Not for background jobs: $! would be
# a subshell's.)
in_a() { ip netns exec gvbs-a "$@"; }

# forget PID: a process that ended leaves pids, so that cleanup never
# signals a number the system gave to another process since.
forget() {
	local keep=() p
	for p in "${pids[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	pids=("${keep[@]}")
}

# stop_pid PID: SIGTERM, then SIGKILL after 5 s.
stop_pid() {
	kill "$1" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	forget "$1"
}

cleanup() {
	set +e
	local p
	for p in "${pids[@]}"; do
		stop_pid "$p"
	done
	for n in a b m; do
		ip netns del "gvbs-$n" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/bin"
go build -o "$work/bin/gvsd" ./cmd/gvsd
go build -o "$work/bin/gvs" ./cmd/gvs
go build -o "$work/bin/fwdbench" ./bench/fwdbench

# ---------------------------------------------------------------- topology

for n in a b m; do
	ip netns del "gvbs-$n" 2>/dev/null || true
	ip netns add "gvbs-$n"
	ip netns exec "gvbs-$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip -n "gvbs-$n" link set lo up
done
ip -n gvbs-a link add gvbsa0 type veth peer name gvbsb0 netns gvbs-b
ip -n gvbs-a link add gvbsm0 type veth peer name gvbsm1 netns gvbs-m
ip -n gvbs-a addr add "$addr_a/24" dev gvbsa0
ip -n gvbs-b addr add "$addr_b/24" dev gvbsb0
for l in "gvbs-a gvbsa0" "gvbs-a gvbsm0" "gvbs-b gvbsb0" "gvbs-m gvbsm1"; do
	set -- $l
	ip -n "$1" link set "$2" up
done
in_a ping -c 3 -i 0.2 -q "$addr_b" >/dev/null || die "no ping from a to b"

ip netns exec gvbs-a "$work/bin/gvsd" -rundir "$work/gvsd" -db "$work/gvsd/conf.db" >"$work/gvsd.log" 2>&1 &
gvsd_pid=$!
pids+=("$gvsd_pid")
for _ in $(seq 100); do
	[ -S "$work/gvsd/db.sock" ] && break
	kill -0 "$gvsd_pid" 2>/dev/null || die "gvsd exited; its log: $(cat "$work/gvsd.log")"
	sleep 0.1
done
gvs() { "$work/bin/gvs" --db "unix:$work/gvsd/db.sock" "$@"; }
gvs_ovs() { ovs-vsctl --db="unix:$work/gvsd/db.sock" "$@" 2>/dev/null || true; }
# Statistics every second, for the drop counters.
gvs_ovs set Open_vSwitch . other_config:stats-update-interval=1000

# ---------------------------------------------------------------- mirrors

# mirror_on CONFIG: starts a configuration's mirror; mirror_off stops it.
tcpdump_pid=""
mirror_on() {
	case $1 in
	mirred)
		in_a tc qdisc add dev gvbsa0 clsact
		for dir in ingress egress; do
			in_a tc filter add dev gvbsa0 "$dir" protocol all u32 match u32 0 0 action mirred egress mirror dev gvbsm0
		done
		;;
	tcpdump)
		ip netns exec gvbs-a tcpdump -q -n -i gvbsa0 -w "$work/dump.pcap" 2>"$work/tcpdump.err" &
		tcpdump_pid=$!
		pids+=("$tcpdump_pid")
		for _ in $(seq 50); do
			grep -q "listening on" "$work/tcpdump.err" && break
			sleep 0.1
		done
		;;
	span-all) gvs span add b --source gvbsa0 --to dev:gvbsm0 >/dev/null ;;
	span-1pc) gvs span add b --source gvbsa0 --filter "udp,tp_dst=$side_port" --to dev:gvbsm0 >/dev/null ;;
	span-1pc-pcap) gvs span add b --source gvbsa0 --filter "udp,tp_dst=$side_port" --to pcap:b.pcapng >/dev/null ;;
	span-0) gvs span add b --source gvbsa0 --filter "udp,tp_dst=5299" --to dev:gvbsm0 >/dev/null ;;
	esac
	if [[ $1 == span-* ]]; then
		# Which path gvsd took (eBPF at tc, or AF_PACKET and why), once
		# it said so.
		for _ in $(seq 20); do
			gvs span show b | grep -q "source gvbsa0 (both):" && break
			sleep 0.1
		done
		log "$1: $(gvs span show b | grep -o 'source gvbsa0.*')"
	fi
}

mirror_off() {
	case $1 in
	mirred) in_a tc qdisc del dev gvbsa0 clsact ;;
	tcpdump)
		kill -INT "$tcpdump_pid" 2>/dev/null || true
		wait "$tcpdump_pid" 2>/dev/null || true
		forget "$tcpdump_pid"
		rm -f "$work/dump.pcap"
		;;
	span-*)
		gvs span del b >/dev/null
		rm -f "$work"/gvsd/capture/b*.pcapng
		;;
	esac
}

# copies CONFIG: what the mirror delivered so far: packets that reached
# gvbsm1, or that tcpdump wrote (read once it stopped).
copies() {
	case $1 in
	tcpdump) awk '/packets captured/ {print $1}' "$work/tcpdump.err" ;;
	*) ip netns exec gvbs-m cat /sys/class/net/gvbsm1/statistics/rx_packets ;;
	esac
}

# handled: packets gvbsa0 sent and received.
handled() {
	echo $(($(in_a cat /sys/class/net/gvbsa0/statistics/rx_packets) + $(in_a cat /sys/class/net/gvbsa0/statistics/tx_packets)))
}

# span_stat KEY: a counter of the session's statistics ("dropped": kernel,
# perf ring and queues), or "-".
span_stat() {
	gvs span list --json 2>/dev/null | awk -F"\"$1\":" 'NF > 1 {split($2, a, /[,}]/); gsub(/[ \t]/, "", a[1]); print a[1]; exit}'
}

# side_packets FILE: packets the side iperf3 client sent (its -J output).
side_packets() {
	awk '/"end"/ {e = 1} e && /"sum"/ {s = 1} s && /"packets"/ {gsub(/[^0-9]/, "", $2); print $2; exit}' "$1" 2>/dev/null
}

# ---------------------------------------------------------------- one run

servers=()
start_servers() {
	local p
	servers=()
	for p in $port $side_port; do
		ip netns exec gvbs-b timeout $((secs + 30)) iperf3 -s -1 -p "$p" >/dev/null 2>&1 &
		servers+=("$!")
		pids+=("$!")
	done
	for _ in $(seq 50); do
		[ "$(ip netns exec gvbs-b ss -Hltn "( sport = :$port or sport = :$side_port )" | wc -l)" = 2 ] && return 0
		sleep 0.1
	done
	return 1
}

# side_rate TRAFFIC: iperf3 -b for a side flow of 1 % of the packets the
# interface handled per second with no mirror (18-byte payloads); 0 = no
# side flow (the calibration run).
declare -A side_bps
# one_run CONFIG TRAFFIC: prints "RATE HANDLED_PPS COPIES_PER_PACKET SPAN_DROPS SIDE_SHARE".
one_run() {
	local config=$1 traffic=$2 json=$work/iperf.json args=(-c "$addr_b" -p "$port" -t "$secs" -J)
	if [ "$traffic" = udp ]; then
		args+=(-u -b 0 -l 18)
	else
		args+=(-O 1)
	fi
	start_servers || { echo "iperf3 servers did not start"; return 1; }
	mirror_on "$config"
	sleep 0.5
	local c0 h0 t0 c1 h1 t1 rc=0 side=${side_bps[$traffic]:-0}
	c0=$(copies "$config" 2>/dev/null || echo 0)
	h0=$(handled)
	t0=$(date +%s.%N)
	local side_pid=""
	if [ "$side" != 0 ]; then
		ip netns exec gvbs-a timeout $((secs + 20)) iperf3 -c "$addr_b" -p "$side_port" -u -l 18 -b "$side" -t "$secs" -J >"$work/side.json" 2>&1 &
		side_pid=$!
		pids+=("$side_pid")
	fi
	in_a timeout $((secs + 20)) iperf3 "${args[@]}" >"$json" 2>&1 || rc=$?
	if [ -n "$side_pid" ]; then
		wait "$side_pid" 2>/dev/null || true
		forget "$side_pid"
	fi
	local p
	for p in "${servers[@]}"; do
		stop_pid "$p"
	done
	sleep 0.5 # the last copies in flight
	t1=$(date +%s.%N)
	h1=$(handled)
	local drops=- sent=0
	if [[ $config == span-* ]]; then
		sleep 1.2 # statistics are written back every second
		drops=$(span_stat dropped)
		sent=$(span_stat "sent:pcap:b.pcapng")
	fi
	mirror_off "$config"
	c1=$(copies "$config" 2>/dev/null || echo 0)
	[ "$config" = tcpdump ] && c0=0
	# A pcap: destination's copies are what the session wrote.
	[ "$config" = span-1pc-pcap ] && c0=0 c1=${sent:-0}
	local sidep=0
	[ "$side" != 0 ] && sidep=$(side_packets "$work/side.json")
	local rate flag=()
	[ "$traffic" = udp ] && flag=(-udp)
	[ "$rc" = 0 ] || { echo "iperf3 failed ($rc)"; return 1; }
	rate=$("$work/bin/fwdbench" rate "${flag[@]}" "$json" | awk '{print $1}') || { echo "no rate"; return 1; }
	awk -v r="$rate" -v c=$((c1 - c0)) -v h=$((h1 - h0)) -v t0="$t0" -v t1="$t1" -v d="${drops:--}" -v cfg="$config" -v sp="${sidep:-0}" \
		'BEGIN {cp = "-"; if (cfg != "none" && h > 0) cp = sprintf("%.3f", c / h); sh = h > 0 ? sprintf("%.2f", 100 * sp / h) : "-"
		printf "%s %.0f %s %s %s\n", r, h / (t1 - t0), cp, d, sh}'
}

# ---------------------------------------------------------------- runs

# calibrate TRAFFIC PPS: the side flow is 1 % of PPS packets a second.
calibrate() {
	side_bps[$1]=$(awk -v p="$2" 'BEGIN {printf "%.0f", p * 0.01 * 18 * 8}')
	log "$1: the interface handles $2 packets/s; side flow ${side_bps[$1]} bit/s of 18-byte payloads"
}

log "calibrating the side flow (1 % of the packets, no mirror, best of 2 runs)"
for traffic in tcp udp; do
	best=0
	for _ in 1 2; do
		# Not $(one_run): a subshell's processes would be unknown to cleanup.
		one_run none "$traffic" >"$work/out" || die "calibration $traffic: $(cat "$work/out")"
		best=$(awk -v a="$best" -v b="$(awk '{print $2}' "$work/out")" 'BEGIN {print (b > a ? b : a)}')
	done
	calibrate "$traffic" "$best"
done

for round in $(seq "$runs"); do
	for config in $configs; do
		for traffic in tcp udp; do
			if one_run "$config" "$traffic" >"$work/out"; then
				out=$(cat "$work/out")
				echo "run $config $traffic $out" >>"$records"
				# The side flow follows what the interface handles now.
				if [ "$config" = none ]; then
					calibrate "$traffic" "$(awk '{print $2}' "$work/out")"
				fi
			else
				out=$(cat "$work/out")
				echo "fail $config $traffic $out" >>"$records"
			fi
			log "round $round | $config | $traffic: $out"
		done
	done
done

# ---------------------------------------------------------------- table

echo "bench/span.sh, $(date -u +%Y-%m-%d), kernel $(uname -r), $(nproc) cores (shared with other jobs: noisy)"
echo "each cell: median of $runs runs of $secs s (TCP after 1 s of warm-up); side flow of 1 % of the packets in every row"
awk -v configs="$configs" '
$1 == "run" { k = $2 " " $3; n[k]++; rate[k, n[k]] = $4; pps[k, n[k]] = $5; cp[k, n[k]] = $6; dr[k, n[k]] = $7; sh[k, n[k]] = $8 }
$1 == "fail" { fails[$2 " " $3]++ }
function median(arr, k, cnt,   i, j, v, t) {
	for (i = 1; i <= cnt; i++) v[i] = arr[k, i]
	for (i = 1; i <= cnt; i++) for (j = i + 1; j <= cnt; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
	return v[int((cnt + 1) / 2)]
}
function lo(arr, k, cnt,   i, m) { m = arr[k, 1]; for (i = 2; i <= cnt; i++) if (arr[k, i] + 0 < m + 0) m = arr[k, i]; return m }
function hi(arr, k, cnt,   i, m) { m = arr[k, 1]; for (i = 2; i <= cnt; i++) if (arr[k, i] + 0 > m + 0) m = arr[k, i]; return m }
BEGIN { split(configs, cs, " ") }
END {
	printf "| %-13s | %-22s | %-9s | %-22s | %-9s | %-14s | %-14s | %-13s |\n", "mirror", "TCP Gbit/s (min-max)", "TCP cost", "UDP kpps (min-max)", "UDP cost", "copies/pkt TCP", "copies/pkt UDP", "side % TCP/UDP"
	printf "|---------------|------------------------|-----------|------------------------|-----------|----------------|----------------|---------------|\n"
	for (i = 1; i in cs; i++) {
		c = cs[i]; line = sprintf("| %-13s ", c)
		for (ti = 1; ti <= 2; ti++) {
			tr = ti == 1 ? "tcp" : "udp"; k = c " " tr
			if (!n[k]) { line = line sprintf("| %-22s | %-9s ", "failed", "-"); continue }
			m = median(rate, k, n[k]); med[k] = m
			base = med["none " tr]
			cost = (c == "none" || base == 0) ? "-" : sprintf("%+.1f %%", (base - m) / base * 100)
			line = line sprintf("| %-22s | %-9s ", sprintf("%s (%s-%s)", m, lo(rate, k, n[k]), hi(rate, k, n[k])), cost)
		}
		for (ti = 1; ti <= 2; ti++) {
			tr = ti == 1 ? "tcp" : "udp"; k = c " " tr
			v = n[k] ? median(cp, k, n[k]) : "-"
			if (n[k] && dr[k, 1] != "-") v = v " (drop " median(dr, k, n[k]) ")"
			line = line sprintf("| %-14s ", v)
		}
		st = n[c " tcp"] ? median(sh, c " tcp", n[c " tcp"]) : "-"
		su = n[c " udp"] ? median(sh, c " udp", n[c " udp"]) : "-"
		print line sprintf("| %-13s |", st "/" su)
	}
	for (k in fails) printf "failed runs: %s: %d\n", k, fails[k]
}' "$records"
echo "cost: how much less of the measured flow got through than with no mirror (negative: more)."
echo "copies/pkt: copies delivered (span-1pc-pcap: written to the file) per packet the interface handled (span-1pc selects ~0.01); drop: gvs span's dropped counter at the end of the run."
echo "side %: packets of the side flow (UDP to port $side_port) per 100 packets the interface handled (median)."
