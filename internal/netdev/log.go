package netdev

import (
	"time"

	"gvs/internal/vlog"
)

var (
	// netdevLog is the port drivers' module, as OVS's netdev modules.
	netdevLog = vlog.New("netdev")
	// pcapRL limits a pcap port whose disk or reader keeps failing.
	pcapRL = vlog.NewRateLimit(5, time.Minute)
)
