#!/bin/bash
# Builds gvsd and runs it in the foreground with the default paths:
# database /var/lib/gvs/conf.db, sockets in /var/run/openvswitch, so that
# ovs-vsctl, ovs-ofctl and ovs-appctl work with no flags. Extra arguments
# go to gvsd (see `gvsd -help`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
mkdir -p bin
# -buildvcs=auto: gvsd --version names the commit even where GOFLAGS says
# -buildvcs=false (it still builds outside a git checkout).
go build -buildvcs=auto -o bin/ ./cmd/...
exec bin/gvsd "$@"
