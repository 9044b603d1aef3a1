package netdev

import (
	"time"

	"gvs/internal/coverage"
	"gvs/internal/vlog"
)

var (
	// netdevLog is the port drivers' module, as OVS's netdev modules.
	netdevLog = vlog.New("netdev")
	// pcapRL limits a pcap port whose disk or reader keeps failing.
	pcapRL = vlog.NewRateLimit(5, time.Minute)

	pcapStartError    = coverage.New("netdev_pcap_start_error")
	pcapWriteError    = coverage.New("netdev_pcap_write_error") // frames dropped until it works again
	pcapRotateError   = coverage.New("netdev_pcap_rotate_error")
	ringSetupFailed   = coverage.New("netdev_afpacket_no_ring") // system port reading with recvmmsg
	ringReplaced      = coverage.New("netdev_afpacket_ring_replaced")
	ringGrown         = coverage.New("netdev_afpacket_ring_grown") // after frames were dropped for want of a slot
	txRingSetupFailed = coverage.New("netdev_afpacket_no_tx_ring") // system port sending with sendmmsg
	// A busy-polling receive ring (BusyPoller) that saw a frame come
	// while it spun, or spun out and slept.
	busyPollHit   = coverage.New("netdev_afpacket_busy_poll_hit")
	busyPollSleep = coverage.New("netdev_afpacket_busy_poll_sleep")
)
