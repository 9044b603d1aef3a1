//go:build linux

package netdev

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// LinkMode is a kernel device's link as ethtool reports it, for the
// OpenFlow port description (OVS's netdev_get_features).
type LinkMode struct {
	SpeedMbps  uint32 // 0 when unknown
	FullDuplex bool
	Fibre      bool // the port is fibre, else twisted pair (copper)
	Autoneg    bool
}

// ethtoolCmd is struct ethtool_cmd (ETHTOOL_GSET), the legacy query that
// every driver answers; 44 bytes.
type ethtoolCmd struct {
	cmd, supported, advertising uint32
	speed                       uint16
	duplex, port, phyAddr       uint8
	transceiver, autoneg, mdio  uint8
	maxTxPkt, maxRxPkt          uint32
	speedHi                     uint16
	mdix, mdixCtrl              uint8
	lpAdvertising               uint32
	reserved                    [2]uint32
}

const (
	ethtoolGSet  = 0x1
	duplexFull   = 1
	portFibre    = 3
	speedUnknown = 0xffffffff
)

// ReadLinkMode asks the kernel for device name's speed and duplex. The
// device must be in gvsd's network namespace.
func ReadLinkMode(name string) (LinkMode, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return LinkMode{}, fmt.Errorf("ethtool %s: %w", name, err)
	}
	defer unix.Close(fd)
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data uintptr
		_    [16]byte
	}
	if len(name) >= unix.IFNAMSIZ {
		return LinkMode{}, fmt.Errorf("ethtool %s: name too long", name)
	}
	copy(ifr.name[:], name)
	cmd := ethtoolCmd{cmd: ethtoolGSet}
	ifr.data = uintptr(unsafe.Pointer(&cmd))
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	if errno != 0 {
		return LinkMode{}, fmt.Errorf("ethtool %s: %w", name, errno)
	}
	m := LinkMode{FullDuplex: cmd.duplex == duplexFull, Fibre: cmd.port == portFibre, Autoneg: cmd.autoneg != 0}
	if s := uint32(cmd.speedHi)<<16 | uint32(cmd.speed); s != speedUnknown && s != 0xffff {
		m.SpeedMbps = s
	}
	return m, nil
}
