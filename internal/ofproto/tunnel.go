package ofproto

import (
	"encoding/binary"

	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/packet"
)

// Tunnel metadata in translation. A frame that a tunnel port received
// carries tun_id, tun_src and tun_dst (or tun_ipv6_*) in its key, which
// OpenFlow matches read like any field. Actions (set_tunnel, set_field,
// load, move) rewrite them in the working key; they are no header
// field, so nothing is emitted for them until an output to a tunnel
// port whose options say "flow", which gets the metadata as the actions
// left it (ActSetTunnel) and sends by it, as ovs-vswitchd.conf.db(5)
// describes remote_ip=flow, local_ip=flow and key=flow.

// tunSet bits: which tunnel fields an action wrote.
const (
	tunSetID uint8 = 1 << iota
	tunSetSrc
	tunSetDst
	tunSetFlags
)

// emitTunnel gives the output to p that follows the metadata of key, if
// p takes values from the flow. The fields p reads join the mask unless
// an action wrote them (then the value does not depend on the packet).
//
// A Geneve port (TunnelFlow.OAM) takes tun_flags' oam bit, its O bit,
// from the flow whatever its options, as OVS does. It gets metadata only
// when the bit is set, or when an earlier output got some (which the
// datapath would otherwise carry on to it): most translations emit
// nothing more than they did.
func (x *xlate) emitTunnel(p *Port, key *packet.Key) {
	tf := p.TunnelFlow
	m := &x.out.Mask.Key
	var flags uint16
	if tf.OAM {
		flags = key.TunFlags & packet.TunFlagOAM
		fromTunnel := key.TunDst != [4]byte{} || key.TunIPv6Dst != [16]byte{}
		if x.tunSet&tunSetFlags == 0 && fromTunnel { // others have no flags to tell apart
			m.TunFlags |= packet.TunFlagOAM
		}
	}
	if !tf.Any() && flags == 0 && !x.tunEmitted {
		return
	}
	md := &packet.TunnelMeta{Flags: flags}
	if tf.Key {
		md.ID = key.TunID
		if x.tunSet&tunSetID == 0 {
			m.TunID = ^uint64(0)
		}
	}
	if tf.Remote {
		md.Dst, md.IPv6Dst = key.TunDst, key.TunIPv6Dst
		if x.tunSet&tunSetDst == 0 {
			m.TunDst, m.TunIPv6Dst = allOnes4, allOnes16
		}
	}
	if tf.Local {
		md.Src, md.IPv6Src = key.TunSrc, key.TunIPv6Src
		if x.tunSet&tunSetSrc == 0 {
			m.TunSrc, m.TunIPv6Src = allOnes4, allOnes16
		}
	}
	x.out.Actions = append(x.out.Actions, datapath.SetTunnel(md))
	x.tunEmitted = true
}

// maskTunnelRx makes a frame that came out of a tunnel depend on its
// tunnel metadata, as OVS's translation does for every such frame: the
// key, the endpoints, the df, csum and key flags and the TOS (not the
// TTL), so that datapath flows of different tunnels stay apart and dump
// as OVS dumps them, tunnel(tun_id=..,src=..,dst=..,flags(-df-csum+key)).
func maskTunnelRx(m, k *packet.Key) {
	if k.TunDst == [4]byte{} && k.TunIPv6Dst == [16]byte{} {
		return
	}
	m.TunID = ^uint64(0)
	if k.TunDst != [4]byte{} {
		m.TunSrc, m.TunDst = allOnes4, allOnes4
	} else {
		m.TunIPv6Src, m.TunIPv6Dst = allOnes16, allOnes16
	}
	m.TunFlags |= packet.TunFlagDF | packet.TunFlagCsum | packet.TunFlagKey
	m.TunTOS = 0xff
}

var (
	allOnes4  = [4]byte{0xff, 0xff, 0xff, 0xff}
	allOnes16 = [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

// The tunnel fields actions write and read: metadata only (dp 0).
var (
	fieldTunID = keyField{0, 64, func(k *packet.Key) uint64 { return k.TunID },
		func(k *packet.Key, v uint64) { k.TunID = v }, nil}
	fieldTunSrc = keyField{0, 32, func(k *packet.Key) uint64 { return uint64(binary.BigEndian.Uint32(k.TunSrc[:])) },
		func(k *packet.Key, v uint64) { binary.BigEndian.PutUint32(k.TunSrc[:], uint32(v)) }, nil}
	fieldTunDst = keyField{0, 32, func(k *packet.Key) uint64 { return uint64(binary.BigEndian.Uint32(k.TunDst[:])) },
		func(k *packet.Key, v uint64) { binary.BigEndian.PutUint32(k.TunDst[:], uint32(v)) }, nil}
)

// Metadata that actions may write (OVS 3.1 takes them): later tables
// match them, and a Geneve output sends tun_flags' oam as its O bit (no
// output of gvs uses the others). tun_flags is its OpenFlow bit (oam)
// only, so the datapath's df, csum and key bits stay.
var (
	fieldTunFlags = keyField{0, 1, func(k *packet.Key) uint64 { return uint64(k.TunFlags & packet.TunFlagsOpenFlow) },
		func(k *packet.Key, v uint64) {
			k.TunFlags = k.TunFlags&^packet.TunFlagsOpenFlow | uint16(v)&packet.TunFlagsOpenFlow
		}, nil}
	fieldTunErspanVer = keyField{0, 4, func(k *packet.Key) uint64 { return uint64(k.TunErspanVer) },
		func(k *packet.Key, v uint64) { k.TunErspanVer = uint8(v) }, nil}
	fieldTunErspanIdx = keyField{0, 20, func(k *packet.Key) uint64 { return uint64(k.TunErspanIdx) },
		func(k *packet.Key, v uint64) { k.TunErspanIdx = uint32(v) }, nil}
	fieldTunErspanDir = keyField{0, 1, func(k *packet.Key) uint64 { return uint64(k.TunErspanDir) },
		func(k *packet.Key, v uint64) { k.TunErspanDir = uint8(v) }, nil}
	fieldTunErspanHWID = keyField{0, 6, func(k *packet.Key) uint64 { return uint64(k.TunErspanHWID) },
		func(k *packet.Key, v uint64) { k.TunErspanHWID = uint8(v) }, nil}
)

// tunnelField returns the tunnel field set_field, load and move can
// write (the 128-bit IPv6 ones through readTunIPv6 and writeTunIPv6),
// and its tunSet bit (0: no output reads it).
func tunnelField(name string) (*keyField, uint8, bool) {
	switch name {
	case "tun_flags":
		return &fieldTunFlags, tunSetFlags, true
	case "tun_erspan_ver":
		return &fieldTunErspanVer, 0, true
	case "tun_erspan_idx":
		return &fieldTunErspanIdx, 0, true
	case "tun_erspan_dir":
		return &fieldTunErspanDir, 0, true
	case "tun_erspan_hwid":
		return &fieldTunErspanHWID, 0, true
	case "tun_id":
		return &fieldTunID, tunSetID, true
	case "tun_src":
		return &fieldTunSrc, tunSetSrc, true
	case "tun_dst":
		return &fieldTunDst, tunSetDst, true
	}
	return nil, 0, false
}

// tunIPv6 reports whether name is an IPv6 tunnel endpoint field (128
// bits: see readTunIPv6).
func tunIPv6(name string) bool { return name == "tun_ipv6_src" || name == "tun_ipv6_dst" }

// setTunIPv6 executes set_field:IP6[/MASK]->tun_ipv6_src or _dst.
func (c *ofctx) setTunIPv6(x *xlate, a flow.SetField) {
	dst, bit := &c.key.TunIPv6Dst, tunSetDst
	if a.Field == "tun_ipv6_src" {
		dst, bit = &c.key.TunIPv6Src, tunSetSrc
	}
	for i := range dst {
		dst[i] = dst[i]&^a.Mask[i] | a.Value[i]&a.Mask[i]
	}
	x.tunSet |= bit
}

// setTunnel executes set_tunnel and set_tunnel64: tun_id becomes id.
func (c *ofctx) setTunnel(x *xlate, id uint64) {
	c.key.TunID = id
	x.tunSet |= tunSetID
}

// The 128-bit tunnel fields (tun_ipv6_src, tun_ipv6_dst) are wider than
// keyField's 64 bits: load and move reach their bit ranges here, on the
// address as a big-endian 128-bit number (hi, lo).

// tunIPv6Bytes returns the tun_ipv6_* field name in k and its tunSet bit.
func tunIPv6Bytes(k *packet.Key, name string) (*[16]byte, uint8) {
	if name == "tun_ipv6_src" {
		return &k.TunIPv6Src, tunSetSrc
	}
	return &k.TunIPv6Dst, tunSetDst
}

func get128(b *[16]byte) (hi, lo uint64) {
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

func put128(b *[16]byte, hi, lo uint64) {
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
}

func shl128(hi, lo uint64, n uint16) (uint64, uint64) {
	switch {
	case n == 0:
		return hi, lo
	case n >= 128:
		return 0, 0
	case n >= 64:
		return lo << (n - 64), 0
	}
	return hi<<n | lo>>(64-n), lo << n
}

func shr128(hi, lo uint64, n uint16) (uint64, uint64) {
	switch {
	case n == 0:
		return hi, lo
	case n >= 128:
		return 0, 0
	case n >= 64:
		return 0, hi >> (n - 64)
	}
	return hi >> n, lo>>n | hi<<(64-n)
}

// lowOnes128 is a mask of the low n bits.
func lowOnes128(n uint16) (uint64, uint64) {
	if n >= 128 {
		return ^uint64(0), ^uint64(0)
	}
	if n >= 64 {
		return bitsMask(n - 64), ^uint64(0)
	}
	return 0, bitsMask(n)
}

// readTunIPv6 reads bits [start, start+bits) of a tun_ipv6_* field, for
// a move from it; the field joins the flow mask.
func (c *ofctx) readTunIPv6(x *xlate, sf flow.Subfield) (hi, lo uint64) {
	b, _ := tunIPv6Bytes(&c.key, sf.Field)
	mb, _ := tunIPv6Bytes(&x.out.Mask.Key, sf.Field)
	*mb = allOnes16
	hi, lo = get128(b)
	hi, lo = shr128(hi, lo, sf.Start)
	mh, ml := lowOnes128(sf.Bits)
	return hi & mh, lo & ml
}

// writeTunIPv6 executes a load or move of (hi, lo) into bits [start,
// start+bits) of a tun_ipv6_* field.
func (c *ofctx) writeTunIPv6(x *xlate, sf flow.Subfield, hi, lo uint64) {
	b, bit := tunIPv6Bytes(&c.key, sf.Field)
	mh, ml := lowOnes128(sf.Bits)
	mh, ml = shl128(mh, ml, sf.Start)
	vh, vl := shl128(hi, lo, sf.Start)
	oh, ol := get128(b)
	put128(b, oh&^mh|vh&mh, ol&^ml|vl&ml)
	x.tunSet |= bit
}
