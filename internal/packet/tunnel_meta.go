package packet

import (
	"errors"
	"net/netip"
)

// errTunnelFamily refuses a remote of the other IP version than the
// port's underlay.
var errTunnelFamily = errors.New("tunnel: the remote address is not of the port's IP version")

// TunnelMeta is the tunnel metadata that travels with a frame: what a
// tunnel port read from the outer headers of a frame it decapsulated,
// and what a tunnel port whose options say "flow" takes its remote
// address, local address and key from when it encapsulates one. Its
// fields are the flow key's tun_* fields (ovs-fields(7), "Tunnel
// fields"); IPv4 and IPv6 endpoints live apart as in the key, and only
// one pair is ever set.
type TunnelMeta struct {
	ID               uint64
	Src, Dst         [4]byte
	IPv6Src, IPv6Dst [16]byte
	// ErspanIdx, ErspanVer, ErspanDir and ErspanHWID are the ERSPAN
	// header's fields (tun_erspan_*): version 1 (type II) has the
	// index, version 2 (type III) the direction and hardware id.
	ErspanIdx  uint32
	Flags      uint16 // TunFlag* bits
	TOS, TTL   uint8  // the outer IP header's TOS (traffic class) and TTL (hop limit)
	ErspanVer  uint8
	ErspanDir  uint8
	ErspanHWID uint8
}

// Tunnel flags, as OVS's datapath keeps them with a tunnel's metadata.
// Only TunFlagOAM is OpenFlow's (tun_flags=+oam, ovs-fields(7)); the
// others show in datapath flows only, as flags(+df+csum+key).
const (
	TunFlagOAM  uint16 = 1 << 0 // an OAM frame (Geneve's O bit)
	TunFlagDF   uint16 = 1 << 1 // the outer IPv4 header said don't fragment
	TunFlagCsum uint16 = 1 << 2 // the tunnel header carried a checksum (GRE, UDP)
	TunFlagKey  uint16 = 1 << 3 // the tunnel header carried a key (GRE key, VNI)

	// TunFlagsOpenFlow are the bits OpenFlow's tun_flags can see.
	TunFlagsOpenFlow = TunFlagOAM
)

// OuterMeta is what the outer IP (and UDP) header says of a received
// tunnel packet besides its addresses.
type OuterMeta struct {
	TOS, TTL uint8
	UDPCsum  bool // a non-zero UDP checksum (VXLAN, Geneve)
}

// SetReceived fills m from a decapsulated packet: the endpoints, the
// outer IP header's TOS and TTL, and the tunnel header's key, flags and
// ERSPAN fields, as OVS 3.1's userspace datapath does. Like it, gvs
// leaves TunFlagDF unset whatever the outer header says (OVS 3.1 dumps
// flags(-df-csum+key) for GRE that its own peer sent with DF).
func (m *TunnelMeta) SetReceived(info *TunnelInfo, src, dst netip.Addr, outer OuterMeta) {
	*m = TunnelMeta{ID: uint64(info.Key), TOS: outer.TOS, TTL: outer.TTL}
	m.SetAddrs(src, dst)
	if info.HasCsum || outer.UDPCsum {
		m.Flags |= TunFlagCsum
	}
	if info.OAM {
		m.Flags |= TunFlagOAM
	}
	switch info.Type {
	case TunnelVXLAN, TunnelGeneve:
		m.Flags |= TunFlagKey
	case TunnelGRE:
		if info.HasKey {
			m.Flags |= TunFlagKey
		}
	case TunnelERSPAN:
		m.Flags |= TunFlagKey // the session id is the key
		m.ErspanVer = info.ERSPANVer
		if info.ERSPANVer == 1 {
			m.ErspanIdx = info.ERSPANIdx
		} else {
			m.ErspanDir, m.ErspanHWID = info.ERSPANDir, info.ERSPANHWID
		}
	}
}

// SetAddrs sets the endpoints: src is the outer source (the remote end
// for a received frame), dst the outer destination.
func (m *TunnelMeta) SetAddrs(src, dst netip.Addr) {
	m.Src, m.Dst, m.IPv6Src, m.IPv6Dst = [4]byte{}, [4]byte{}, [16]byte{}, [16]byte{}
	src, dst = src.Unmap(), dst.Unmap()
	if dst.Is6() || src.Is6() {
		if src.Is6() {
			m.IPv6Src = src.As16()
		}
		if dst.Is6() {
			m.IPv6Dst = dst.As16()
		}
		return
	}
	if src.Is4() {
		m.Src = src.As4()
	}
	if dst.Is4() {
		m.Dst = dst.As4()
	}
}

// Remote is the outer destination (tun_dst, or tun_ipv6_dst when
// tun_dst is unset); invalid when neither is set.
func (m *TunnelMeta) Remote() netip.Addr { return metaAddr(m.Dst, m.IPv6Dst) }

// Local is the outer source (tun_src, or tun_ipv6_src); invalid when
// neither is set.
func (m *TunnelMeta) Local() netip.Addr { return metaAddr(m.Src, m.IPv6Src) }

func metaAddr(v4 [4]byte, v6 [16]byte) netip.Addr {
	switch {
	case v4 != [4]byte{}:
		return netip.AddrFrom4(v4)
	case v6 != [16]byte{}:
		return netip.AddrFrom16(v6)
	}
	return netip.Addr{}
}

// ToKey writes m into k's tun_* fields.
func (m *TunnelMeta) ToKey(k *Key) {
	k.TunID = m.ID
	k.TunSrc, k.TunDst = m.Src, m.Dst
	k.TunIPv6Src, k.TunIPv6Dst = m.IPv6Src, m.IPv6Dst
	k.TunFlags, k.TunTOS, k.TunTTL = m.Flags, m.TOS, m.TTL
	k.TunErspanIdx, k.TunErspanVer, k.TunErspanDir, k.TunErspanHWID = m.ErspanIdx, m.ErspanVer, m.ErspanDir, m.ErspanHWID
}

// FromKey reads m from k's tun_* fields.
func (m *TunnelMeta) FromKey(k *Key) {
	m.ID = k.TunID
	m.Src, m.Dst = k.TunSrc, k.TunDst
	m.IPv6Src, m.IPv6Dst = k.TunIPv6Src, k.TunIPv6Dst
	m.Flags, m.TOS, m.TTL = k.TunFlags, k.TunTOS, k.TunTTL
	m.ErspanIdx, m.ErspanVer, m.ErspanDir, m.ErspanHWID = k.TunErspanIdx, k.TunErspanVer, k.TunErspanDir, k.TunErspanHWID
}

// SetFlow changes the remote address, the local address (invalid: the
// unspecified address, for a route's source to fill in with SetSource)
// and the key of e, for a tunnel port that takes them from the flow.
// The IP version cannot change, and the key is cut to the type's width
// (24 bits of VNI, 10 of ERSPAN session), as the wire has no room for
// more. The GRE sequence number carries on. It does not allocate.
func (e *Encap) SetFlow(src, dst netip.Addr, key uint32) error {
	cfg := e.cfg
	cfg.Dst, cfg.Src = dst, src
	switch cfg.Type {
	case TunnelVXLAN, TunnelGeneve:
		key &= MaxVNI
	case TunnelERSPAN:
		key &= ERSPANMaxSession
	}
	cfg.Key = key
	if err := checkTunnelConfig(&cfg); err != nil {
		return err
	}
	if cfg.Dst.Is6() != e.cfg.Dst.Is6() {
		return errTunnelFamily
	}
	e.cfg = cfg
	e.rebuild()
	return nil
}

// rebuild writes the header template again from e.cfg.
func (e *Encap) rebuild() {
	e.tmpl = [MaxTunnelHeader]byte{}
	e.csum, e.seq, e.ts = -1, -1, -1
	e.l4 = e.writeIP()
	switch e.cfg.Type {
	case TunnelGRE, TunnelERSPAN:
		e.n = e.writeGRE(e.l4)
	default:
		e.n = e.writeUDP(e.l4)
	}
}
