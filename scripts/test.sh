#!/bin/bash
# Runs the whole gvs test suite: unit tests, and end-to-end tests that
# drive gvsd with the real Open vSwitch clients and real packets in network
# namespaces. Needs root (namespaces, TAP devices) and installs the Debian
# packages the tests use when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg_cmd in openvswitch-common:ovs-vsctl openvswitch-switch:ovsdb-server \
	iproute2:ip procps:sysctl iputils-ping:ping tcpdump:tcpdump netcat-openbsd:nc iperf3:iperf3 \
	tshark:tshark python3:python3 prometheus:promtool systemd:systemd-analyze man-db:man \
	ethtool:ethtool openvswitch-testcontroller:ovs-testcontroller tftpd-hpa:in.tftpd tftp-hpa:tftp \
	conntrack:conntrack nftables:nft dpkg:dpkg-deb clang:clang; do
	command -v "${pkg_cmd#*:}" >/dev/null 2>&1 || need+=("${pkg_cmd%%:*}")
done
# scapy is a Python module (the conntrack tests send TCP segments with it).
/usr/bin/python3 -c 'import scapy' >/dev/null 2>&1 || need+=(python3-scapy)
# pyftpdlib is the FTP server of the ALG tests (Python's ftplib the client).
/usr/bin/python3 -c 'import pyftpdlib' >/dev/null 2>&1 || need+=(python3-pyftpdlib)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

export PATH="$PATH:/usr/local/go/bin"
go vet ./...
# staticcheck, pinned, through the module proxy (cached after the first run).
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
# -p 1: end-to-end tests share the machine's network stack and its 2 cores.
go test -p 1 -count=1 -timeout 40m "$@" ./...
# Every fuzz target, briefly, from its checked-in corpus.
FUZZTIME="${FUZZTIME:-10s}" ./scripts/fuzz.sh
