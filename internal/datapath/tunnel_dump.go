package datapath

import (
	"fmt"
	"net/netip"
	"strings"

	"gvs/internal/packet"
)

// formatTunnelKey prints the tunnel metadata a datapath flow matches as
// OVS's flow dumps do, tunnel(tun_id=..,src=..,dst=..,flags(..)), or ""
// when the flow looks at none. Masked fields carry /MASK; fields whose
// mask is zero are left out, and so are a zero tos (OVS's key has no
// tos attribute then).
func formatTunnelKey(k, m *packet.Key) string {
	var p []string
	if m.TunID != 0 {
		p = append(p, "tun_id="+maskedHex(k.TunID, m.TunID, ^uint64(0)))
	}
	p = appendTunAddr(p, "src", netip.AddrFrom4(k.TunSrc), m.TunSrc[:])
	p = appendTunAddr(p, "dst", netip.AddrFrom4(k.TunDst), m.TunDst[:])
	p = appendTunAddr(p, "ipv6_src", netip.AddrFrom16(k.TunIPv6Src), m.TunIPv6Src[:])
	p = appendTunAddr(p, "ipv6_dst", netip.AddrFrom16(k.TunIPv6Dst), m.TunIPv6Dst[:])
	if m.TunTOS != 0 && k.TunTOS != 0 {
		p = append(p, "tos="+maskedHex(uint64(k.TunTOS), uint64(m.TunTOS), 0xff))
	}
	if m.TunTTL != 0 {
		s := fmt.Sprintf("ttl=%d", k.TunTTL)
		if m.TunTTL != 0xff {
			s += fmt.Sprintf("/%#x", m.TunTTL)
		}
		p = append(p, s)
	}
	if e := formatErspan(k, m); e != "" {
		p = append(p, e)
	}
	if m.TunFlags != 0 {
		p = append(p, "flags("+formatTunFlags(k.TunFlags, m.TunFlags)+")")
	}
	if len(p) == 0 {
		return ""
	}
	return "tunnel(" + strings.Join(p, ",") + ")"
}

func maskedHex(v, m, all uint64) string {
	if m == all {
		return fmt.Sprintf("%#x", v)
	}
	return fmt.Sprintf("%#x/%#x", v, m)
}

// appendTunAddr adds name=ADDR[/MASK] when mask is not zero.
func appendTunAddr(p []string, name string, a netip.Addr, mask []byte) []string {
	zero, ones := true, true
	for _, b := range mask {
		zero, ones = zero && b == 0, ones && b == 0xff
	}
	switch {
	case zero:
		return p
	case ones:
		return append(p, name+"="+a.String())
	}
	mk, _ := netip.AddrFromSlice(mask)
	return append(p, name+"="+a.String()+"/"+mk.String())
}

// formatErspan prints the ERSPAN fields the flow matches as OVS does:
// erspan(ver=1,idx=..) or erspan(ver=2,dir=..,hwid=..).
func formatErspan(k, m *packet.Key) string {
	if m.TunErspanVer == 0 && m.TunErspanIdx == 0 && m.TunErspanDir == 0 && m.TunErspanHWID == 0 {
		return ""
	}
	s := fmt.Sprintf("erspan(ver=%d", k.TunErspanVer)
	if k.TunErspanVer == 1 {
		s += ",idx=" + maskedHex(uint64(k.TunErspanIdx), uint64(m.TunErspanIdx), packet.ERSPANMaxIndex)
	} else if k.TunErspanVer == 2 {
		s += fmt.Sprintf(",dir=%d,hwid=", k.TunErspanDir) + maskedHex(uint64(k.TunErspanHWID), uint64(m.TunErspanHWID), packet.ERSPANMaxHWID)
	}
	return s + ")"
}

// tunFlagNames name the packet.TunFlag* bits, lowest first.
var tunFlagNames = []string{"oam", "df", "csum", "key"}

// formatTunFlags prints +name or -name for each flag in the mask.
func formatTunFlags(v, m uint16) string {
	var b strings.Builder
	for i, name := range tunFlagNames {
		bit := uint16(1) << i
		if m&bit == 0 {
			continue
		}
		if v&bit != 0 {
			b.WriteString("+")
		} else {
			b.WriteString("-")
		}
		b.WriteString(name)
	}
	return b.String()
}

// clearTunnelKey zeroes the tunnel fields, which formatTunnelKey prints.
func clearTunnelKey(k *packet.Key) {
	k.TunID, k.TunSrc, k.TunDst, k.TunIPv6Src, k.TunIPv6Dst = 0, [4]byte{}, [4]byte{}, [16]byte{}, [16]byte{}
	k.TunTOS, k.TunTTL, k.TunFlags = 0, 0, 0
	k.TunErspanVer, k.TunErspanIdx, k.TunErspanDir, k.TunErspanHWID = 0, 0, 0, 0
}
