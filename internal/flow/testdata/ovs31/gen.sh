#!/bin/sh
# Regenerates the golden dump-flows outputs in this directory from the real
# Open vSwitch 3.1: a private ovsdb-server and ovs-vswitchd (netdev
# datapath; --enable-dummy=override so that no tap or veth is created on
# the host) under a temporary OVS_RUNDIR, one bridge, the ports the flows
# name, then for each *.flows file: del-flows, add-flows, dump-flows.
# Usage: sh gen.sh   (as root, from this directory)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/gvs-flowgold.XXXXXX)
export OVS_RUNDIR=$tmp OVS_LOGDIR=$tmp OVS_DBDIR=$tmp OVS_SYSCONFDIR=$tmp
cleanup() {
	[ -f "$tmp/ovs-vswitchd.pid" ] && kill "$(cat "$tmp/ovs-vswitchd.pid")" 2>/dev/null
	[ -f "$tmp/ovsdb-server.pid" ] && kill "$(cat "$tmp/ovsdb-server.pid")" 2>/dev/null
	sleep 0.5
	rm -rf "$tmp"
}
trap cleanup EXIT
ovsdb-tool create "$tmp/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server "$tmp/conf.db" --remote=punix:"$tmp/db.sock" --pidfile="$tmp/ovsdb-server.pid" \
	--detach --log-file="$tmp/ovsdb-server.log"
vsctl="ovs-vsctl --db=unix:$tmp/db.sock --no-wait"
$vsctl init
ovs-vswitchd unix:"$tmp/db.sock" --enable-dummy=override --disable-system \
	--pidfile="$tmp/ovs-vswitchd.pid" --detach --log-file="$tmp/ovs-vswitchd.log"
br=gvsgold0
ovs-vsctl --db=unix:"$tmp/db.sock" add-br $br -- set bridge $br datapath_type=netdev
n=1
for p in veth_l0 veth_r0 p3 p4 p5 p_6 p-7 p.8 P9 9x; do
	ovs-vsctl --db=unix:"$tmp/db.sock" add-port $br $p -- set interface $p ofport_request=$n
	n=$((n + 1))
done
for f in "$here"/*.flows; do
	base=${f%.flows}
	o=
	case $f in *of13.flows) o="-O OpenFlow13" ;; *of14.flows) o="-O OpenFlow14" ;; esac
	ovs-ofctl $o del-flows $br
	ovs-ofctl $o add-flows $br "$f"
	ovs-ofctl $o dump-flows $br | sed 1d >"$base.dump"
	ovs-ofctl $o --names --no-stats dump-flows $br >"$base.names"
done
