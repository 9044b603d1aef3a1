#!/bin/bash
# Builds the Debian package of gvs with dpkg-deb:
#   scripts/build-deb.sh [OUTDIR]        (default: dist/)
# It holds gvsd (/usr/sbin), gvs (/usr/bin), their man pages (generated
# from their own --help by packaging/genman), the systemd unit and the
# logrotate snippet. Install it with `apt install ./dist/gvs_*.deb`, then
# `systemctl enable --now gvsd` (the unit conflicts with Open vSwitch's
# own units, which it replaces).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-dist}")
export PATH="$PATH:/usr/local/go/bin"

arch=$(dpkg --print-architecture)
release=$(sed -n 's/^const Release = "\(.*\)"$/\1/p' internal/version/version.go)
# The binaries carry the commit they were built from (gvsd --version),
# whatever GOFLAGS says, when there is one.
vcs=-buildvcs=false
if rev=$(git rev-parse --short=12 HEAD 2>/dev/null); then
	vcs=-buildvcs=true
	day=$(git log -1 --format=%cd --date=format:%Y%m%d)
	version="$release+git$day.$rev"
	date=$(git log -1 --format=%cd --date=format:%Y-%m-%d)
else
	version="$release"
	date=$(date -u +%F)
fi

root=$(mktemp -d)
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT
install -d "$root/DEBIAN" "$root/usr/sbin" "$root/usr/bin" "$root/lib/systemd/system" \
	"$root/etc/logrotate.d" "$root/usr/share/man/man8" "$root/usr/share/doc/gvs"

CGO_ENABLED=0 go build -trimpath "$vcs" -o "$root/usr/sbin/gvsd" ./cmd/gvsd
CGO_ENABLED=0 go build -trimpath "$vcs" -o "$root/usr/bin/gvs" ./cmd/gvs
go run ./packaging/genman -out "$root/usr/share/man/man8" -version "$version" -date "$date" \
	"$root/usr/sbin/gvsd" "$root/usr/bin/gvs"
gzip -9n "$root"/usr/share/man/man8/*.8
install -m 0644 packaging/gvsd.service "$root/lib/systemd/system/gvsd.service"
install -m 0644 packaging/gvsd.logrotate "$root/etc/logrotate.d/gvsd"
for doc in README.md docs/GUIDE.md docs/COMPATIBILITY.md docs/PERFORMANCE.md; do
	gzip -9nc "$doc" >"$root/usr/share/doc/gvs/$(basename "$doc").gz"
done

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: gvs
Version: $version
Architecture: $arch
Maintainer: gvs developers <gvs@example.invalid>
Section: net
Priority: optional
Installed-Size: $size
Recommends: openvswitch-common
Suggests: tcpdump, tshark
Description: virtual switch with port mirroring, a drop-in for ovs-vswitchd
 gvsd is a virtual switch daemon with its own OVSDB server, driven by the
 Open vSwitch clients (ovs-vsctl, ovs-ofctl, ovs-appctl) and by gvs, its
 own command line. Its strengths are port mirroring (SPAN, VLAN mirrors,
 RSPAN, pcap, filters) and OpenFlow flows with a flow cache.
CONTROL
echo "/etc/logrotate.d/gvsd" >"$root/DEBIAN/conffiles"
for script in postinst postrm; do
	cat >"$root/DEBIAN/$script" <<'SCRIPT'
#!/bin/sh
set -e
# Let systemd see the unit (or forget it); enabling is the operator's call.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
SCRIPT
	chmod 0755 "$root/DEBIAN/$script"
done

mkdir -p "$out"
deb="$out/gvs_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
