package packet

import (
	"errors"
	"testing"
)

// baseKey is the key of a frame from macA to macB on port 7 of type t.
func baseKey(t uint16) Key {
	return Key{InPort: 7, DlSrc: macA, DlDst: macB, DlType: t}
}

func ip4Key(proto uint8, tos uint8) Key {
	k := baseKey(EtherTypeIPv4)
	k.NwSrc, k.NwDst, k.NwProto, k.NwTOS, k.NwTTL = ip4A, ip4B, proto, tos, 64
	return k
}

func ip6Key(proto uint8, tos uint8, label uint32) Key {
	k := baseKey(EtherTypeIPv6)
	k.IPv6Src, k.IPv6Dst, k.NwProto, k.NwTOS, k.NwTTL, k.IPv6Label = ip6A, ip6B, proto, tos, 64, label
	return k
}

// with applies edits to a copy of k, to write expected keys compactly.
func with(k Key, edits ...func(*Key)) Key {
	for _, e := range edits {
		e(&k)
	}
	return k
}

func ports(src, dst, flags uint16) func(*Key) {
	return func(k *Key) { k.TpSrc, k.TpDst, k.TCPFlags = src, dst, flags }
}

type parseCase struct {
	name      string
	frame     []byte
	vlanLimit int
	wantKey   Key
	wantOff   Offsets
	wantErr   error
}

func parseCases() []parseCase {
	tcp := tcpSeg(1234, 80, TCPFlagSYN, nil)
	udp := udpDgram(53, 5353, []byte("q"))
	target := [16]byte{0xfe, 0x80, 15: 5}
	qinq := cat(ethHdr(macB, macA, EtherTypeQinQ), be16(0x3005), be16(EtherTypeVLAN), be16(0xe007),
		be16(EtherTypeIPv4), ipv4(ProtoICMPv4, ip4Opts{}, icmpMsg(8, 0, nil)))
	var dstOpts []byte
	for range MaxIPv6ExtHeaders + 1 {
		dstOpts = append(dstOpts, ProtoDstOpts, 0, 0, 0, 0, 0, 0, 0)
	}
	badTCP := tcpSeg(1, 2, 0, nil)
	badTCP[12] = 0xf0 // 60-byte header in a 20-byte segment
	return []parseCase{{
		name:    "tcp over ipv4",
		frame:   frameTCP4,
		wantKey: with(ip4Key(ProtoTCP, 0xb9), ports(1234, 80, TCPFlagSYN|TCPFlagACK)),
		wantOff: Offsets{L3: 14, L4: 34, Payload: 54, L3End: 59, L4Proto: ProtoTCP},
	}, {
		name:  "udp over ipv4 in a vlan",
		frame: frameVLANUDP4,
		wantKey: with(ip4Key(ProtoUDP, 0), ports(53, 5353, 0),
			func(k *Key) { k.VLANTCI = 0xb005 }),
		wantOff: Offsets{VLAN: 12, NumVLANs: 1, L3: 18, L4: 38, Payload: 46, L3End: 51, L4Proto: ProtoUDP},
	}, {
		name:  "qinq: 802.1ad outer, 802.1q inner",
		frame: qinq,
		wantKey: with(ip4Key(ProtoICMPv4, 0), ports(8, 0, 0),
			func(k *Key) { k.VLANTCI, k.InnerVLANTCI = 0x3005, 0xf007 }),
		wantOff: Offsets{VLAN: 12, NumVLANs: 2, L3: 22, L4: 42, Payload: 50, L3End: 50, L4Proto: ProtoICMPv4},
	}, {
		name:      "qinq with vlan-limit 1: the inner tag is payload",
		frame:     qinq,
		vlanLimit: 1,
		wantKey:   with(baseKey(EtherTypeVLAN), func(k *Key) { k.VLANTCI = 0x3005 }),
		wantOff:   Offsets{VLAN: 12, NumVLANs: 1, L3: 18},
	}, {
		name: "three tags: the third is payload",
		frame: cat(ethHdr(macB, macA, EtherTypeVLAN), be16(5), be16(EtherTypeVLAN), be16(6),
			be16(EtherTypeVLAN), be16(7), be16(EtherTypeIPv4), ipv4(ProtoUDP, ip4Opts{}, udp)),
		wantKey: with(baseKey(EtherTypeVLAN), func(k *Key) { k.VLANTCI, k.InnerVLANTCI = 0x1005, 0x1006 }),
		wantOff: Offsets{VLAN: 12, NumVLANs: 2, L3: 22},
	}, {
		name:    "tcp over ipv6",
		frame:   frameTCP6,
		wantKey: with(ip6Key(ProtoTCP, 0xa8, 0xcdef1), ports(40000, 443, TCPFlagACK|TCPFlagPSH)),
		wantOff: Offsets{L3: 14, L4: 54, Payload: 74, L3End: 78, L4Proto: ProtoTCP},
	}, {
		name: "ipv6 extension headers before tcp",
		frame: cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoHopOpts, 0, 0,
			cat([]byte{ProtoDstOpts, 0, 1, 4, 0, 0, 0, 0}, []byte{ProtoTCP, 1}, make([]byte, 14), tcp))),
		wantKey: with(ip6Key(ProtoTCP, 0, 0), ports(1234, 80, TCPFlagSYN)),
		wantOff: Offsets{L3: 14, L4: 78, Payload: 98, L3End: 98, L4Proto: ProtoTCP},
	}, {
		name:    "ipv6 extension header chain too long",
		frame:   cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoDstOpts, 0, 0, cat(dstOpts, tcp))),
		wantKey: with(baseKey(EtherTypeIPv6), func(k *Key) { k.IPv6Src, k.IPv6Dst = ip6A, ip6B }),
		wantOff: Offsets{L3: 14, L3End: uint16(54 + len(dstOpts) + len(tcp))},
		wantErr: ErrMalformed,
	}, {
		name:  "ipv6 first fragment",
		frame: cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoFragment, 0, 0, cat([]byte{ProtoTCP, 0, 0, 1, 0, 0, 0, 9}, tcp))),
		wantKey: with(ip6Key(ProtoTCP, 0, 0), ports(1234, 80, TCPFlagSYN),
			func(k *Key) { k.NwFrag = FragAny }),
		wantOff: Offsets{L3: 14, L4: 62, Payload: 82, L3End: 82, L4Proto: ProtoTCP, Fragment: true},
	}, {
		name:    "ipv6 later fragment",
		frame:   cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoFragment, 0, 0, cat([]byte{ProtoTCP, 0, 0x05, 0xa8, 0, 0, 0, 9}, tcp))),
		wantKey: with(ip6Key(ProtoFragment, 0, 0), func(k *Key) { k.NwFrag = FragAny | FragLater }),
		wantOff: Offsets{L3: 14, L3End: 82, Fragment: true},
	}, {
		name:  "ipv4 first fragment",
		frame: cat(ethHdr(macB, macA, EtherTypeIPv4), ipv4(ProtoTCP, ip4Opts{flagsFrag: 0x2000}, tcp)),
		wantKey: with(ip4Key(ProtoTCP, 0), ports(1234, 80, TCPFlagSYN),
			func(k *Key) { k.NwFrag = FragAny }),
		wantOff: Offsets{L3: 14, L4: 34, Payload: 54, L3End: 54, L4Proto: ProtoTCP, Fragment: true},
	}, {
		name:    "ipv4 later fragment",
		frame:   cat(ethHdr(macB, macA, EtherTypeIPv4), ipv4(ProtoTCP, ip4Opts{flagsFrag: 0x00b9}, tcp)),
		wantKey: with(ip4Key(ProtoTCP, 0), func(k *Key) { k.NwFrag = FragAny | FragLater }),
		wantOff: Offsets{L3: 14, L3End: 54, Fragment: true},
	}, {
		name:    "ipv4 options and ethernet padding",
		frame:   cat(ethHdr(macB, macA, EtherTypeIPv4), ipv4(ProtoUDP, ip4Opts{options: []byte{1, 1, 1, 0}}, udp), make([]byte, 12)),
		wantKey: with(ip4Key(ProtoUDP, 0), ports(53, 5353, 0)),
		wantOff: Offsets{L3: 14, L4: 38, Payload: 46, L3End: 47, L4Proto: ProtoUDP},
	}, {
		name:    "ipv4 ihl below 5",
		frame:   cat(ethHdr(macB, macA, EtherTypeIPv4), ipv4(ProtoUDP, ip4Opts{ihl: 4}, udp)),
		wantKey: baseKey(EtherTypeIPv4),
		wantOff: Offsets{L3: 14},
		wantErr: ErrMalformed,
	}, {
		name:    "ipv4 total length past the frame",
		frame:   cat(ethHdr(macB, macA, EtherTypeIPv4), ipv4(ProtoUDP, ip4Opts{totalLen: 100}, udp)),
		wantKey: baseKey(EtherTypeIPv4),
		wantOff: Offsets{L3: 14},
		wantErr: ErrTruncated,
	}, {
		name:    "tcp data offset past the segment",
		frame:   cat(ethHdr(macB, macA, EtherTypeIPv4), ipv4(ProtoTCP, ip4Opts{}, badTCP)),
		wantKey: ip4Key(ProtoTCP, 0),
		wantOff: Offsets{L3: 14, L3End: 54},
		wantErr: ErrMalformed,
	}, {
		name:    "udp header cut short",
		frame:   cat(ethHdr(macB, macA, EtherTypeIPv4), ipv4(ProtoUDP, ip4Opts{}, udp[:6])),
		wantKey: ip4Key(ProtoUDP, 0),
		wantOff: Offsets{L3: 14, L3End: 40},
		wantErr: ErrTruncated,
	}, {
		name:    "sctp",
		frame:   cat(ethHdr(macB, macA, EtherTypeIPv4), ipv4(ProtoSCTP, ip4Opts{}, sctpPkt(7, 9))),
		wantKey: with(ip4Key(ProtoSCTP, 0), ports(7, 9, 0)),
		wantOff: Offsets{L3: 14, L4: 34, Payload: 46, L3End: 50, L4Proto: ProtoSCTP},
	}, {
		name:  "arp request",
		frame: cat(ethHdr(macB, macA, EtherTypeARP), arpPkt(1, ARPOpRequest, macA, ip4A, [6]byte{}, ip4B)),
		wantKey: with(baseKey(EtherTypeARP), func(k *Key) {
			k.ArpOp, k.ArpSha, k.ArpSpa, k.ArpTpa = ARPOpRequest, macA, ip4A, ip4B
		}),
		wantOff: Offsets{L3: 14},
	}, {
		name:  "arp opcode above 255 reads as 0",
		frame: cat(ethHdr(macB, macA, EtherTypeARP), arpPkt(1, 0x0102, macA, ip4A, macB, ip4B)),
		wantKey: with(baseKey(EtherTypeARP), func(k *Key) {
			k.ArpSha, k.ArpSpa, k.ArpTha, k.ArpTpa = macA, ip4A, macB, ip4B
		}),
		wantOff: Offsets{L3: 14},
	}, {
		name:    "arp for another hardware type",
		frame:   cat(ethHdr(macB, macA, EtherTypeARP), arpPkt(6, ARPOpReply, macA, ip4A, macB, ip4B)),
		wantKey: baseKey(EtherTypeARP),
		wantOff: Offsets{L3: 14},
	}, {
		name: "neighbor solicitation",
		frame: cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoICMPv6, 0, 0,
			ndMsg(ICMPv6NeighborSolicit, target, ndLLOpt(NDOptSourceLLAddr, macA)))),
		wantKey: with(ip6Key(ProtoICMPv6, 0, 0), ports(135, 0, 0),
			func(k *Key) { k.NdTarget, k.NdSll = target, macA }),
		wantOff: Offsets{L3: 14, L4: 54, Payload: 62, L3End: 86, L4Proto: ProtoICMPv6},
	}, {
		name: "neighbor advertisement",
		frame: cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoICMPv6, 0, 0,
			ndMsg(ICMPv6NeighborAdvert, target, ndLLOpt(NDOptTargetLLAddr, macB)))),
		wantKey: with(ip6Key(ProtoICMPv6, 0, 0), ports(136, 0, 0),
			func(k *Key) { k.NdTarget, k.NdTll = target, macB }),
		wantOff: Offsets{L3: 14, L4: 54, Payload: 62, L3End: 86, L4Proto: ProtoICMPv6},
	}, {
		name: "neighbor advertisement giving two addresses",
		frame: cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoICMPv6, 0, 0,
			ndMsg(ICMPv6NeighborAdvert, target, ndLLOpt(NDOptTargetLLAddr, macB), ndLLOpt(NDOptTargetLLAddr, macA)))),
		wantKey: with(ip6Key(ProtoICMPv6, 0, 0), ports(136, 0, 0)),
		wantOff: Offsets{L3: 14, L4: 54, Payload: 62, L3End: 94, L4Proto: ProtoICMPv6},
		wantErr: ErrMalformed,
	}, {
		name: "neighbor solicitation with an option running past the end",
		frame: cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoICMPv6, 0, 0,
			ndMsg(ICMPv6NeighborSolicit, target, ndLLOpt(NDOptSourceLLAddr, macA), []byte{14, 9, 0, 0, 0, 0, 0, 0}))),
		wantKey: with(ip6Key(ProtoICMPv6, 0, 0), ports(135, 0, 0),
			func(k *Key) { k.NdTarget, k.NdSll = target, macA }),
		wantOff: Offsets{L3: 14, L4: 54, Payload: 62, L3End: 94, L4Proto: ProtoICMPv6},
		wantErr: ErrMalformed,
	}, {
		name:    "llc/snap carrying ipv4",
		frame:   cat(ethHdr(macB, macA, 46), []byte{0xaa, 0xaa, 3, 0, 0, 0}, be16(EtherTypeIPv4), ipv4(ProtoUDP, ip4Opts{}, udp)),
		wantKey: with(ip4Key(ProtoUDP, 0), ports(53, 5353, 0)),
		wantOff: Offsets{L3: 22, L4: 42, Payload: 50, L3End: 51, L4Proto: ProtoUDP},
	}, {
		name:    "802.3 frame without snap",
		frame:   cat(ethHdr(macB, macA, 38), []byte{0x42, 0x42, 3}, make([]byte, 35)),
		wantKey: baseKey(EtherTypeNone),
	}, {
		name:  "mpls stack of two",
		frame: cat(ethHdr(macB, macA, EtherTypeMPLS), []byte{0, 1, 0x40, 0x3f, 0, 2, 0x41, 0x3f}, make([]byte, 20)),
		wantKey: with(baseKey(EtherTypeMPLS), func(k *Key) {
			k.MPLSLSE = [3]uint32{0x0001403f, 0x0002413f, 0}
		}),
		wantOff: Offsets{L3: 14},
	}, {
		name:    "lldp",
		frame:   cat(ethHdr(macB, macA, 0x88cc), make([]byte, 30)),
		wantKey: baseKey(0x88cc),
		wantOff: Offsets{L3: 14},
	}, {
		name:    "shorter than an ethernet header",
		frame:   frameTCP4[:13],
		wantKey: Key{InPort: 7},
		wantErr: ErrTruncated,
	}, {
		name:    "vlan tag cut short",
		frame:   frameVLANUDP4[:17],
		wantKey: baseKey(EtherTypeVLAN),
		wantErr: ErrTruncated,
	}, {
		name:    "ipv4 header cut short",
		frame:   frameTCP4[:30],
		wantKey: baseKey(EtherTypeIPv4),
		wantOff: Offsets{L3: 14},
		wantErr: ErrTruncated,
	}}
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases() {
		t.Run(tc.name, func(t *testing.T) {
			key := Key{RecircID: 99, TunID: 5} // Parse must overwrite everything
			var off Offsets
			err := ParseVLANLimit(tc.frame, 7, tc.vlanLimit, &key, &off)
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if key != tc.wantKey {
				t.Errorf("key\n got %+v\nwant %+v", key, tc.wantKey)
			}
			if off != tc.wantOff {
				t.Errorf("offsets %+v, want %+v", off, tc.wantOff)
			}
		})
	}
}

func TestParseAcceptsNilOffsets(t *testing.T) {
	var key Key
	if err := Parse(frameTCP4, 1, &key, nil); err != nil {
		t.Fatal(err)
	}
	if key.TpDst != 80 {
		t.Errorf("TpDst %d, want 80", key.TpDst)
	}
}

// TestParseOffsetsPointAtHeaders checks the offsets against the views: the
// header at each offset says what the key says.
func TestParseOffsetsPointAtHeaders(t *testing.T) {
	for _, frame := range [][]byte{frameTCP4, frameVLANUDP4, frameTCP6} {
		var key Key
		var off Offsets
		if err := Parse(frame, 0, &key, &off); err != nil {
			t.Fatal(err)
		}
		if key.DlType == EtherTypeIPv4 && IPv4(frame[off.L3:]).Src() != key.NwSrc {
			t.Errorf("IPv4 at L3 %d does not hold the key's source", off.L3)
		}
		if key.DlType == EtherTypeIPv6 && IPv6(frame[off.L3:]).Dst() != key.IPv6Dst {
			t.Errorf("IPv6 at L3 %d does not hold the key's destination", off.L3)
		}
		if UDP(frame[off.L4:]).DstPort() != key.TpDst {
			t.Errorf("port at L4 %d is not the key's", off.L4)
		}
		if off.VLAN != 0 && KeyTCI(VLANTag(frame[off.VLAN:]).TCI()) != key.VLANTCI {
			t.Errorf("tag at %d is not the key's", off.VLAN)
		}
	}
}

func TestParseLongFrameDoesNotOverflowOffsets(t *testing.T) {
	frame := make([]byte, 70000)
	copy(frame, ethHdr(macB, macA, EtherTypeIPv6))
	hdr := ipv6(ProtoUDP, 0, 0, nil)
	hdr[4], hdr[5] = 0xff, 0xff
	copy(frame[EthernetLen:], hdr)
	var key Key
	var off Offsets
	err := Parse(frame, 0, &key, &off)
	if !errors.Is(err, ErrTruncated) {
		t.Errorf("error %v, want ErrTruncated: the datagram ends past the parsed part", err)
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	frames := [][]byte{frameTCP4, frameVLANUDP4, frameTCP6}
	for _, tc := range parseCases() {
		frames = append(frames, tc.frame)
	}
	var key Key
	var off Offsets
	allocs := testing.AllocsPerRun(100, func() {
		for _, f := range frames {
			_ = Parse(f, 1, &key, &off)
		}
	})
	if allocs != 0 {
		t.Errorf("Parse allocated %v times per run, want 0", allocs)
	}
}
