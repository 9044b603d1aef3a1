package packet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Tunnel encapsulation: the outer headers that carry an Ethernet frame
// to a remote tunnel endpoint (GRE, ERSPAN type II and III, VXLAN and
// Geneve, over IPv4 or IPv6), built as Open vSwitch's userspace datapath
// builds them, and the parsers that take them off again.
//
// A port's outer headers are the same for every frame but for a few
// fields (lengths, checksums, the GRE sequence number, the ERSPAN
// timestamp, the UDP source port), so an Encap prepares them once as a
// template and Build copies it and fills those fields in: no allocation,
// a few dozen nanoseconds per frame.

// TunnelType is the kind of tunnel.
type TunnelType uint8

// Tunnel types.
const (
	TunnelGRE TunnelType = iota + 1
	TunnelERSPAN
	TunnelVXLAN
	TunnelGeneve
)

func (t TunnelType) String() string {
	switch t {
	case TunnelGRE:
		return "gre"
	case TunnelERSPAN:
		return "erspan"
	case TunnelVXLAN:
		return "vxlan"
	case TunnelGeneve:
		return "geneve"
	}
	return fmt.Sprintf("tunnel(%d)", uint8(t))
}

// Wire constants of the tunnel headers.
const (
	GREFlagChecksum = 0x8000
	GREFlagKey      = 0x2000
	GREFlagSeq      = 0x1000
	greVersionMask  = 0x0007
	greRoutingFlag  = 0x4000
	greMinLen       = 4

	// GRE protocol types: transparent Ethernet bridging (an Ethernet
	// frame), ERSPAN type II and ERSPAN type III.
	EtherTypeTEB      = 0x6558
	EtherTypeERSPAN2  = 0x88be
	EtherTypeERSPAN3  = 0x22eb
	erspan2Len        = 8  // base header + index
	erspan3Len        = 12 // base header + timestamp, SGT, flags
	erspan3SubLen     = 8  // optional platform-specific subheader (O bit)
	ERSPANMaxSession  = 1<<10 - 1
	ERSPANMaxIndex    = 1<<20 - 1
	ERSPANMaxHWID     = 1<<6 - 1
	ERSPANGra100Micro = 0 // timestamp granularity 00: 100 microseconds

	VXLANLen      = 8
	vxlanFlagVNI  = 0x08
	GeneveMinLen  = 8
	genevePortEth = EtherTypeTEB
	geneveFlagOAM = 0x80 // the O bit, in the header's second byte
	MaxVNI        = 1<<24 - 1

	VXLANPort  = 4789
	GenevePort = 6081

	// Source ports of UDP tunnels are picked from this range by a hash of
	// the inner flow, as OVS does, so that receivers can spread flows.
	tunnelSrcPortMin = 32768
	tunnelSrcPortMax = 61000

	// MaxTunnelHeader is the longest outer header stack Build writes:
	// IPv6, GRE with checksum, key and sequence number, ERSPAN type III.
	MaxTunnelHeader = IPv6Len + 16 + erspan3Len

	// DefaultTunnelTTL is the outer TTL when options:ttl is unset.
	DefaultTunnelTTL = 64
)

// TunnelConfig is what a tunnel port's options say about its outer
// headers.
type TunnelConfig struct {
	Type     TunnelType
	Src, Dst netip.Addr // both IPv4 or both IPv6; Src may be unspecified
	TTL      uint8      // 0 means DefaultTunnelTTL
	TOS      uint8      // DSCP and ECN byte
	DF       bool       // set Don't Fragment (IPv4)
	Key      uint32     // GRE key, VNI, or ERSPAN session ID
	HasKey   bool       // GRE: send the key field
	Csum     bool       // GRE checksum or UDP checksum
	OAM      bool       // Geneve: the O bit (an OAM frame), from tun_flags=+oam
	Seq      bool       // GRE sequence number (always on for ERSPAN)
	DstPort  uint16     // UDP destination port, 0 for the default

	ERSPANVer  uint8  // 1: type II, 2: type III
	ERSPANIdx  uint32 // type II index (20 bits)
	ERSPANDir  uint8  // type III direction: 0 ingress, 1 egress
	ERSPANHWID uint8  // type III hardware ID (6 bits)
}

// Encap builds the outer headers of one tunnel port.
//
// Build is called by one goroutine at a time (a port's transmit path): it
// advances the GRE sequence number without synchronisation.
type Encap struct {
	cfg  TunnelConfig
	tmpl [MaxTunnelHeader]byte
	n    int // header length
	l4   int // where GRE or UDP starts
	tun  int // where the GRE options, VXLAN, Geneve or ERSPAN fields start
	csum int // GRE checksum field, or -1
	seq  int // GRE sequence field, or -1
	ts   int // ERSPAN III timestamp field, or -1
	next uint32
	// pseudo is the sum of the UDP pseudo-header without the length, for
	// UDP checksums.
	pseudo uint16
}

// NewEncap checks cfg and prepares the header template.
func NewEncap(cfg TunnelConfig) (*Encap, error) {
	if err := checkTunnelConfig(&cfg); err != nil {
		return nil, err
	}
	e := &Encap{cfg: cfg, csum: -1, seq: -1, ts: -1}
	e.l4 = e.writeIP()
	switch cfg.Type {
	case TunnelGRE, TunnelERSPAN:
		e.n = e.writeGRE(e.l4)
	default:
		e.n = e.writeUDP(e.l4)
	}
	return e, nil
}

// checkTunnelConfig fills defaults and refuses what cannot be encoded.
func checkTunnelConfig(c *TunnelConfig) error {
	if !c.Dst.IsValid() || c.Dst.IsUnspecified() {
		return errors.New("tunnel: no remote address")
	}
	c.Dst = c.Dst.Unmap()
	if !c.Src.IsValid() {
		c.Src = netip.IPv4Unspecified()
		if c.Dst.Is6() {
			c.Src = netip.IPv6Unspecified()
		}
	}
	c.Src = c.Src.Unmap()
	if c.Src.Is4() != c.Dst.Is4() {
		return fmt.Errorf("tunnel: local address %s and remote address %s are not the same IP version", c.Src, c.Dst)
	}
	if c.TTL == 0 {
		c.TTL = DefaultTunnelTTL
	}
	switch c.Type {
	case TunnelVXLAN, TunnelGeneve:
		if c.Key > MaxVNI {
			return fmt.Errorf("tunnel: VNI %d is more than 24 bits", c.Key)
		}
	case TunnelERSPAN:
		return checkERSPAN(c)
	case TunnelGRE:
	default:
		return fmt.Errorf("tunnel: unknown type %d", c.Type)
	}
	return nil
}

func checkERSPAN(c *TunnelConfig) error {
	switch {
	case c.ERSPANVer != 1 && c.ERSPANVer != 2:
		return fmt.Errorf("tunnel: erspan_ver %d is neither 1 (type II) nor 2 (type III)", c.ERSPANVer)
	case c.Key > ERSPANMaxSession:
		return fmt.Errorf("tunnel: ERSPAN session ID (key) %d is more than 10 bits", c.Key)
	case c.ERSPANIdx > ERSPANMaxIndex:
		return fmt.Errorf("tunnel: erspan_idx %#x is more than 20 bits", c.ERSPANIdx)
	case c.ERSPANDir > 1:
		return fmt.Errorf("tunnel: erspan_dir %d is neither 0 (ingress) nor 1 (egress)", c.ERSPANDir)
	case c.ERSPANHWID > ERSPANMaxHWID:
		return fmt.Errorf("tunnel: erspan_hwid %#x is more than 6 bits", c.ERSPANHWID)
	}
	c.Seq, c.HasKey, c.Csum = true, false, false // as OVS's ERSPAN: sequence only
	return nil
}

// Len is the length of the outer headers Build writes.
func (e *Encap) Len() int { return e.n }

// Config is the configuration the template was built from, defaults
// filled in.
func (e *Encap) Config() TunnelConfig { return e.cfg }

// writeIP writes the outer IP header (lengths and checksum left for
// Build) and returns its length.
func (e *Encap) writeIP() int {
	proto := ProtoUDP
	if e.cfg.Type == TunnelGRE || e.cfg.Type == TunnelERSPAN {
		proto = ProtoGRE
	}
	b := e.tmpl[:]
	if e.cfg.Dst.Is6() {
		ip := IPv6(b)
		ip[0] = 6 << 4
		ip.SetTrafficClass(e.cfg.TOS)
		ip[6] = proto
		ip.SetHopLimit(e.cfg.TTL)
		ip.SetSrc(e.cfg.Src.As16())
		ip.SetDst(e.cfg.Dst.As16())
		e.pseudo = PseudoHeaderChecksum(ProtoUDP, ip[8:24], ip[24:40], 0)
		return IPv6Len
	}
	ip := IPv4(b)
	ip[0] = 4<<4 | 5
	ip.SetTOS(e.cfg.TOS)
	if e.cfg.DF {
		binary.BigEndian.PutUint16(ip[6:8], ipv4FlagDontFragment)
	}
	ip.SetTTL(e.cfg.TTL)
	ip[9] = proto
	ip.SetSrc(e.cfg.Src.As4())
	ip.SetDst(e.cfg.Dst.As4())
	e.pseudo = PseudoHeaderChecksum(ProtoUDP, ip[12:16], ip[16:20], 0)
	return IPv4MinLen
}

// writeGRE writes the GRE header (and ERSPAN's) at off; it returns the
// end of the headers.
func (e *Encap) writeGRE(off int) int {
	b := e.tmpl[off:]
	var flags uint16
	proto := uint16(EtherTypeTEB)
	if e.cfg.Type == TunnelERSPAN {
		proto = EtherTypeERSPAN2
		if e.cfg.ERSPANVer == 2 {
			proto = EtherTypeERSPAN3
		}
	}
	pos := greMinLen
	if e.cfg.Csum {
		flags |= GREFlagChecksum
		e.csum = off + pos
		pos += 4
	}
	if e.cfg.HasKey {
		flags |= GREFlagKey
		binary.BigEndian.PutUint32(b[pos:], e.cfg.Key)
		pos += 4
	}
	if e.cfg.Seq {
		flags |= GREFlagSeq
		e.seq = off + pos
		pos += 4
	}
	binary.BigEndian.PutUint16(b[0:], flags)
	binary.BigEndian.PutUint16(b[2:], proto)
	e.tun = off + pos
	if e.cfg.Type == TunnelERSPAN {
		pos += e.writeERSPAN(b[pos:], off+pos)
	}
	return off + pos
}

// writeERSPAN writes the ERSPAN header into b, which sits at offset off
// of the template, and returns its length.
func (e *Encap) writeERSPAN(b []byte, off int) int {
	// Base header: version, VLAN (0), COS (0), encapsulation type (0: the
	// frame as it was, tags included), truncated (0), session ID.
	binary.BigEndian.PutUint16(b[0:], uint16(e.cfg.ERSPANVer)<<12)
	binary.BigEndian.PutUint16(b[2:], uint16(e.cfg.Key&ERSPANMaxSession))
	if e.cfg.ERSPANVer == 1 {
		binary.BigEndian.PutUint32(b[4:], e.cfg.ERSPANIdx&ERSPANMaxIndex)
		return erspan2Len
	}
	e.ts = off + 4
	// b[8:10] is the security group tag (0); then P(1) FT(5) HWID(6)
	// D(1) Gra(2) O(1).
	hw := uint16(e.cfg.ERSPANHWID & ERSPANMaxHWID)
	binary.BigEndian.PutUint16(b[10:], hw<<4|uint16(e.cfg.ERSPANDir&1)<<3|ERSPANGra100Micro<<1)
	return erspan3Len
}

// writeUDP writes the UDP header and the VXLAN or Geneve header at off
// and returns the end of the headers.
func (e *Encap) writeUDP(off int) int {
	b := e.tmpl[off:]
	port := e.cfg.DstPort
	if port == 0 {
		port = VXLANPort
		if e.cfg.Type == TunnelGeneve {
			port = GenevePort
		}
		e.cfg.DstPort = port
	}
	binary.BigEndian.PutUint16(b[2:], port)
	e.tun = off + UDPLen
	t := b[UDPLen:]
	if e.cfg.Type == TunnelVXLAN {
		t[0] = vxlanFlagVNI
		binary.BigEndian.PutUint32(t[4:], e.cfg.Key<<8)
		return off + UDPLen + VXLANLen
	}
	if e.cfg.OAM {
		t[1] = geneveFlagOAM
	}
	binary.BigEndian.PutUint16(t[2:], genevePortEth)
	binary.BigEndian.PutUint32(t[4:], e.cfg.Key<<8)
	return off + UDPLen + GeneveMinLen
}

// SetOAM sets or clears a Geneve port's O bit, which OVS takes from the
// frame's tun_flags (oam): the frames built next are OAM frames or not.
// Other types have no such bit and ignore it. It does not allocate.
func (e *Encap) SetOAM(on bool) {
	if e.cfg.Type != TunnelGeneve || e.cfg.OAM == on {
		return
	}
	e.cfg.OAM = on
	e.tmpl[e.tun+1] ^= geneveFlagOAM
}

// SetSource changes the outer source address (a route's preferred source
// changed, for a port without local_ip). The sequence number carries on.
func (e *Encap) SetSource(src netip.Addr) error {
	src = src.Unmap()
	if !src.IsValid() || src.Is4() != e.cfg.Dst.Is4() {
		return fmt.Errorf("tunnel: source %s is not of the remote's IP version", src)
	}
	e.cfg.Src = src
	e.writeIP()
	return nil
}

// ErrTooBig reports a frame that does not fit in an IP packet once
// encapsulated.
var ErrTooBig = errors.New("tunnel: frame too big to encapsulate")

// Build writes the outer headers for the Ethernet frame inner into hdr
// (at least Len bytes) and returns their length; the packet on the wire
// is hdr[:n] followed by inner. ts is the ERSPAN type III timestamp (in
// units of 100 microseconds); other types ignore it.
func (e *Encap) Build(hdr, inner []byte, ts uint32) (int, error) {
	total := e.n + len(inner)
	if len(hdr) < e.n {
		return 0, fmt.Errorf("tunnel: header buffer of %d bytes, need %d", len(hdr), e.n)
	}
	limit := 0xffff // IPv4 total length
	if e.l4 == IPv6Len {
		limit += IPv6Len // IPv6 payload length
	}
	if total > limit {
		return 0, ErrTooBig
	}
	h := hdr[:e.n]
	copy(h, e.tmpl[:e.n])
	if e.l4 == IPv6Len {
		IPv6(h).SetPayloadLen(uint16(total - IPv6Len))
	} else {
		ip := IPv4(h)
		ip.SetTotalLen(uint16(total))
		ip.SetChecksum(^Checksum(h[:IPv4MinLen], 0))
	}
	switch e.cfg.Type {
	case TunnelGRE, TunnelERSPAN:
		e.finishGRE(h, inner, ts)
	default:
		e.finishUDP(h, inner)
	}
	return e.n, nil
}

func (e *Encap) finishGRE(h, inner []byte, ts uint32) {
	if e.seq >= 0 {
		binary.BigEndian.PutUint32(h[e.seq:], e.next)
		e.next++
	}
	if e.ts >= 0 {
		binary.BigEndian.PutUint32(h[e.ts:], ts)
	}
	if e.csum >= 0 {
		sum := Checksum(h[e.l4:], 0)
		binary.BigEndian.PutUint16(h[e.csum:], ^Checksum(inner, sum))
	}
}

func (e *Encap) finishUDP(h, inner []byte) {
	u := h[e.l4:]
	ulen := len(u) + len(inner)
	binary.BigEndian.PutUint16(u[0:], TunnelSourcePort(inner))
	binary.BigEndian.PutUint16(u[4:], uint16(ulen))
	if !e.cfg.Csum && !e.cfg.Dst.Is6() {
		return
	}
	// IPv6 forbids a zero UDP checksum (RFC 6935 aside), so it is always
	// computed there, as OVS does by default.
	sum := ChecksumCombine(e.pseudo, lengthSum(uint32(ulen)))
	sum = Checksum(u, sum)
	binary.BigEndian.PutUint16(u[6:], nonZero(^Checksum(inner, sum)))
}

// lengthSum is the checksum contribution of a 32-bit length.
func lengthSum(n uint32) uint16 { return ChecksumCombine(uint16(n>>16), uint16(n)) }

// Encapsulate writes the whole outer packet (headers and inner) into dst
// and returns it; dst needs Len()+len(inner) bytes. It is Build for
// callers that need one contiguous packet (tests, an Ethernet underlay).
func (e *Encap) Encapsulate(dst, inner []byte, ts uint32) ([]byte, error) {
	if len(dst) < e.n+len(inner) {
		return nil, fmt.Errorf("tunnel: buffer of %d bytes, need %d", len(dst), e.n+len(inner))
	}
	n, err := e.Build(dst, inner, ts)
	if err != nil {
		return nil, err
	}
	return dst[:n+copy(dst[n:], inner)], nil
}

// TunnelSourcePort picks a UDP source port for an inner frame from a hash
// of its addresses (Ethernet, and IPv4 addresses and ports when present),
// so one flow keeps one port.
func TunnelSourcePort(inner []byte) uint16 {
	h := uint32(2166136261)
	mix := func(b []byte) {
		for _, c := range b {
			h = (h ^ uint32(c)) * 16777619
		}
	}
	if len(inner) >= EthernetLen {
		mix(inner[:12])
		if Ethernet(inner).Type() == EtherTypeIPv4 && len(inner) >= EthernetLen+IPv4MinLen {
			ip := inner[EthernetLen:]
			mix(ip[9:10])
			mix(ip[12:20])
			if l4 := IPv4(ip).HeaderLen(); l4 >= IPv4MinLen && len(ip) >= l4+4 && !IPv4(ip).IsFragment() {
				mix(ip[l4 : l4+4])
			}
		}
	}
	return uint16(tunnelSrcPortMin + h%(tunnelSrcPortMax-tunnelSrcPortMin+1))
}
