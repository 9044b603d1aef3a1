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
}

// FromKey reads m from k's tun_* fields.
func (m *TunnelMeta) FromKey(k *Key) {
	m.ID = k.TunID
	m.Src, m.Dst = k.TunSrc, k.TunDst
	m.IPv6Src, m.IPv6Dst = k.TunIPv6Src, k.TunIPv6Dst
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
