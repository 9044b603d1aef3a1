package packet

import (
	"encoding/binary"
	"errors"
)

// MaxVLANs is how many VLAN tags Parse reads into the key (outer and
// inner); further tags are payload, and DlType is then the TPID of the
// first tag not read.
const MaxVLANs = 2

// maxParsedLen bounds the part of a frame Parse looks at, so every offset
// fits in Offsets' 16-bit fields. No IP datagram is longer.
const maxParsedLen = 0xffff

// Parse errors. Parse returns them as they are (never wrapped) so that the
// packet path does not allocate; they say why the key stops short, not that
// it is unusable.
var (
	// ErrTruncated means the frame ended inside a header, or before the
	// end an IP header announced.
	ErrTruncated = errors.New("packet: frame truncated")
	// ErrMalformed means a header's fields contradict each other: an IPv4
	// IHL below 5, a TCP data offset past the segment, a bad ND option, an
	// IPv6 extension header chain longer than MaxIPv6ExtHeaders.
	ErrMalformed = errors.New("packet: malformed header")
)

// Parse extracts the flow key of an Ethernet frame that arrived on inPort,
// reading up to MaxVLANs VLAN tags, and records where its headers start in
// off (which may be nil). It overwrites all of *key.
//
// Parse never allocates and never panics. On a truncated or malformed
// frame it returns ErrTruncated or ErrMalformed, and key still holds what
// could be read, with the fields of the offending header left zero: this
// is the key such a frame is matched with, as in OVS.
func Parse(frame []byte, inPort uint32, key *Key, off *Offsets) error {
	return ParseVLANLimit(frame, inPort, MaxVLANs, key, off)
}

// ParseVLANLimit is Parse reading at most vlanLimit VLAN tags (the
// Open_vSwitch table's other_config:vlan-limit); 0 or more than MaxVLANs
// mean MaxVLANs.
func ParseVLANLimit(frame []byte, inPort uint32, vlanLimit int, key *Key, off *Offsets) error {
	if vlanLimit <= 0 || vlanLimit > MaxVLANs {
		vlanLimit = MaxVLANs
	}
	if len(frame) > maxParsedLen {
		frame = frame[:maxParsedLen]
	}
	*key = Key{InPort: inPort}
	p := parser{b: frame, key: key}
	err := p.parse(vlanLimit)
	if off != nil {
		*off = p.off
	}
	return err
}

// parser holds one Parse call's state on the stack.
type parser struct {
	b   []byte
	key *Key
	off Offsets
}

func (p *parser) be16(pos int) uint16 { return binary.BigEndian.Uint16(p.b[pos:]) }

func (p *parser) parse(vlanLimit int) error {
	if len(p.b) < EthernetLen {
		return ErrTruncated
	}
	eth := Ethernet(p.b)
	p.key.DlDst, p.key.DlSrc = eth.Dst(), eth.Src()
	l3, err := p.parseL2(vlanLimit)
	if err != nil || l3 == 0 {
		return err
	}
	switch p.key.DlType {
	case EtherTypeIPv4:
		return p.parseIPv4(l3)
	case EtherTypeIPv6:
		return p.parseIPv6(l3)
	case EtherTypeARP, EtherTypeRARP:
		return p.parseARP(l3)
	case EtherTypeMPLS, EtherTypeMPLSMcast:
		return p.parseMPLS(l3)
	}
	return nil
}

// parseL2 reads the VLAN tags and the ethertype, sets DlType and returns
// the offset of what follows, or 0 if nothing does that Parse can read.
func (p *parser) parseL2(vlanLimit int) (int, error) {
	k := p.key
	pos := 2 * MACLen
	for tags := 0; ; tags++ {
		typ := p.be16(pos)
		if !IsVLANTPID(typ) || tags == vlanLimit {
			break
		}
		if pos+VLANTagLen+2 > len(p.b) {
			// A tag without a complete type after it is not a tag:
			// the frame is just of type typ, with a short payload.
			k.DlType = typ
			return 0, ErrTruncated
		}
		tci := KeyTCI(VLANTag(p.b[pos:]).TCI())
		if tags == 0 {
			k.VLANTCI = tci
			p.off.VLAN = uint16(pos)
		} else {
			k.InnerVLANTCI = tci
		}
		p.off.NumVLANs++
		pos += VLANTagLen
	}
	typ := p.be16(pos)
	pos += 2
	if typ < EtherTypeMin {
		typ, pos = p.parseLLCSNAP(pos)
		if typ == EtherTypeNone {
			k.DlType = typ
			return 0, nil
		}
	}
	k.DlType = typ
	p.off.L3 = uint16(pos)
	return pos, nil
}

// parseLLCSNAP reads the 802.2 LLC and SNAP headers of an 802.3 frame whose
// payload starts at pos. Only the form that carries an ethertype (DSAP and
// SSAP 0xaa, control 3, organisation 0) yields one; anything else is
// EtherTypeNone.
func (p *parser) parseLLCSNAP(pos int) (uint16, int) {
	if pos+llcSNAPLen > len(p.b) {
		return EtherTypeNone, pos
	}
	h := p.b[pos : pos+llcSNAPLen]
	if h[0] != 0xaa || h[1] != 0xaa || h[2] != 0x03 || h[3]|h[4]|h[5] != 0 {
		return EtherTypeNone, pos
	}
	typ := binary.BigEndian.Uint16(h[6:8])
	if typ < EtherTypeMin {
		return EtherTypeNone, pos
	}
	return typ, pos + llcSNAPLen
}

func (p *parser) parseIPv4(pos int) error {
	b := p.b[pos:]
	if len(b) < IPv4MinLen {
		return ErrTruncated
	}
	ip := IPv4(b)
	hl, tl := ip.HeaderLen(), int(ip.TotalLen())
	if hl < IPv4MinLen || tl < hl {
		return ErrMalformed
	}
	if tl > len(b) {
		return ErrTruncated
	}
	k := p.key
	k.NwSrc, k.NwDst = ip.Src(), ip.Dst()
	k.NwProto, k.NwTOS, k.NwTTL = ip.Protocol(), ip.TOS(), ip.TTL()
	p.off.L3End = uint16(pos + tl)
	if ip.IsFragment() {
		k.NwFrag = FragAny
		p.off.Fragment = true
		if ip.FragmentOffset() != 0 {
			k.NwFrag |= FragLater
			return nil
		}
	}
	return p.parseL4(pos+hl, pos+tl, k.NwProto, false)
}

func (p *parser) parseIPv6(pos int) error {
	b := p.b[pos:]
	if len(b) < IPv6Len {
		return ErrTruncated
	}
	ip := IPv6(b)
	end := pos + IPv6Len + int(ip.PayloadLen())
	if end > len(p.b) {
		return ErrTruncated
	}
	k := p.key
	k.IPv6Src, k.IPv6Dst = ip.Src(), ip.Dst()
	p.off.L3End = uint16(end)
	up, err := p.walkIPv6ExtHeaders(pos+IPv6Len, end, ip.NextHeader())
	if err != nil {
		// As in OVS, a broken extension header chain leaves only the
		// addresses: the rest of the IP fields stay zero.
		return err
	}
	k.IPv6Label, k.NwProto, k.NwTOS, k.NwTTL = ip.FlowLabel(), up.proto, ip.TrafficClass(), ip.HopLimit()
	k.NwFrag, p.off.Fragment = up.frag, up.frag != 0
	if up.frag&FragLater != 0 {
		return nil
	}
	return p.parseL4(up.pos, end, up.proto, true)
}

// ipv6Upper is where an IPv6 extension header chain leads.
type ipv6Upper struct {
	pos   int   // offset of the upper-layer header
	proto uint8 // its protocol; ProtoFragment for a later fragment
	frag  uint8 // NwFrag bits
}

// walkIPv6ExtHeaders follows the extension header chain that starts at pos
// with type nh, up to end, to the upper-layer header. A later fragment
// stops the walk: what follows is not a header.
func (p *parser) walkIPv6ExtHeaders(pos, end int, nh uint8) (ipv6Upper, error) {
	var frag uint8
	for range MaxIPv6ExtHeaders {
		if !isIPv6ExtHeader(nh) {
			return ipv6Upper{pos: pos, proto: nh, frag: frag}, nil
		}
		if pos+2 > end {
			return ipv6Upper{}, ErrTruncated
		}
		n := ipv6ExtHeaderLen(nh, p.b[pos:])
		if pos+n > end {
			return ipv6Upper{}, ErrTruncated
		}
		if nh == ProtoFragment {
			frag |= ipv6FragBits(IPv6Fragment(p.b[pos:]))
			if frag&FragLater != 0 {
				return ipv6Upper{proto: ProtoFragment, frag: frag}, nil
			}
		}
		nh = p.b[pos]
		pos += n
	}
	if isIPv6ExtHeader(nh) {
		return ipv6Upper{}, ErrMalformed
	}
	return ipv6Upper{pos: pos, proto: nh, frag: frag}, nil
}

// ipv6FragBits returns the NwFrag bits a fragment header stands for. Like
// OVS, it counts any non-zero offset/flags word as a fragment, reserved
// bits included; only the atomic fragment (all zero) is a whole datagram.
func ipv6FragBits(frag IPv6Fragment) uint8 {
	switch {
	case frag.offsetFlags() == 0:
		return 0
	case frag.FragmentOffset() != 0:
		return FragAny | FragLater
	}
	return FragAny
}

// parseL4 reads the transport header at pos of an IP datagram ending at
// end. Only the protocols that have match fields are read; neighbor
// discovery only in IPv6.
func (p *parser) parseL4(pos, end int, proto uint8, v6 bool) error {
	b := p.b[pos:end]
	k := p.key
	hl := 0
	switch {
	case proto == ProtoTCP:
		if len(b) < TCPMinLen {
			return ErrTruncated
		}
		tcp := TCP(b)
		hl = tcp.HeaderLen()
		if hl < TCPMinLen || hl > len(b) {
			return ErrMalformed
		}
		k.TpSrc, k.TpDst, k.TCPFlags = tcp.SrcPort(), tcp.DstPort(), tcp.Flags()
	case proto == ProtoUDP, proto == ProtoSCTP:
		hl = UDPLen
		if proto == ProtoSCTP {
			hl = SCTPLen
		}
		if len(b) < hl {
			return ErrTruncated
		}
		// UDP and SCTP both start with the two ports.
		k.TpSrc, k.TpDst = UDP(b).SrcPort(), UDP(b).DstPort()
	case proto == ProtoICMPv4, proto == ProtoICMPv6, proto == ProtoIGMP:
		// ICMP, ICMPv6 and IGMP all start with a type and a code. OVS
		// reads them whatever the IP version, and so does gvs, so that
		// both datapaths key such odd frames alike.
		if len(b) < ICMPv4Len {
			return ErrTruncated
		}
		icmp := ICMP(b)
		k.TpSrc, k.TpDst = uint16(icmp.Type()), uint16(icmp.Code())
		hl = ICMPv4Len
	default:
		return nil
	}
	p.off.L4, p.off.L4Proto, p.off.Payload = uint16(pos), proto, uint16(pos+hl)
	if v6 && proto == ProtoICMPv6 {
		return p.parseND(b)
	}
	return nil
}

// parseND reads the target and link-layer address options of a neighbor
// solicitation or advertisement b (the whole ICMPv6 message).
func (p *parser) parseND(b []byte) error {
	icmp := ICMP(b)
	if icmp.Code() != 0 || (icmp.Type() != ICMPv6NeighborSolicit && icmp.Type() != ICMPv6NeighborAdvert) {
		return nil
	}
	if len(b) < ICMPv6Len+16 {
		return ErrTruncated
	}
	k := p.key
	nd := NDMessage(b)
	k.NdTarget = nd.Target()
	ok, conflict := p.parseNDOptions(nd.Options())
	if conflict {
		k.NdTarget, k.NdSll, k.NdTll = [16]byte{}, [6]byte{}, [6]byte{}
	}
	if !ok {
		return ErrMalformed
	}
	return nil
}

// parseNDOptions reads Ethernet link-layer address options into the key. A
// list that runs short (an option of length 0 or past the message) ends the
// walk, keeping what was read; an address given twice contradicts itself,
// and voids the ND fields. Either way the list is malformed.
func (p *parser) parseNDOptions(opts []byte) (ok, conflict bool) {
	k := p.key
	for len(opts) >= ndOptUnit {
		n := int(opts[1]) * ndOptUnit
		if n == 0 || n > len(opts) {
			return false, false
		}
		if n == ndOptLLLen {
			var addr *[6]byte
			switch opts[0] {
			case NDOptSourceLLAddr:
				addr = &k.NdSll
			case NDOptTargetLLAddr:
				addr = &k.NdTll
			}
			if addr != nil {
				if *addr != ([6]byte{}) {
					return false, true
				}
				*addr = [6]byte(opts[2:8])
			}
		}
		opts = opts[n:]
	}
	return true, false
}

func (p *parser) parseARP(pos int) error {
	b := p.b[pos:]
	if len(b) < ARPLen {
		return ErrTruncated
	}
	arp := ARP(b)
	if !arp.IsEthernetIPv4() {
		return nil
	}
	k := p.key
	if op := arp.Op(); op <= 0xff {
		k.ArpOp = op
	}
	k.ArpSha, k.ArpSpa = arp.SHA(), arp.SPA()
	k.ArpTha, k.ArpTpa = arp.THA(), arp.TPA()
	return nil
}

// MaxMPLSLabels is how many MPLS label stack entries the key holds.
const MaxMPLSLabels = 3

const mplsBottomOfStack = 0x100

func (p *parser) parseMPLS(pos int) error {
	for i := range MaxMPLSLabels {
		if pos+4 > len(p.b) {
			return ErrTruncated
		}
		lse := binary.BigEndian.Uint32(p.b[pos:])
		p.key.MPLSLSE[i] = lse
		pos += 4
		if lse&mplsBottomOfStack != 0 {
			break
		}
	}
	return nil
}
