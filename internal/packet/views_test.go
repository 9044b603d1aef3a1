package packet

import (
	"bytes"
	"testing"
)

func TestEthernetView(t *testing.T) {
	eth := Ethernet(bytes.Clone(frameTCP4))
	if eth.Dst() != macB || eth.Src() != macA || eth.Type() != EtherTypeIPv4 || eth.IsMulticast() {
		t.Fatalf("read dst %x src %x type %#x", eth.Dst(), eth.Src(), eth.Type())
	}
	eth.SetDst([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	eth.SetSrc(macB)
	eth.SetType(EtherTypeIPv6)
	want := cat(ethHdr([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, macB, EtherTypeIPv6), frameTCP4[14:])
	if !bytes.Equal(eth, want) || !eth.IsMulticast() {
		t.Errorf("after sets %x", eth[:14])
	}
}

func TestVLANTagView(t *testing.T) {
	tag := VLANTag(bytes.Clone(frameVLANUDP4[12:16]))
	if tag.TPID() != EtherTypeVLAN || tag.TCI() != 0xa005 || tag.VID() != 5 || tag.PCP() != 5 {
		t.Fatalf("tpid %#x tci %#x vid %d pcp %d", tag.TPID(), tag.TCI(), tag.VID(), tag.PCP())
	}
	tag.SetTPID(EtherTypeQinQ)
	tag.SetTCI(0xe00a)
	if !bytes.Equal(tag, []byte{0x88, 0xa8, 0xe0, 0x0a}) {
		t.Errorf("after sets %x", []byte(tag))
	}
	if KeyTCI(0x0005) != 0x1005 || WireTCI(0x1005) != 0x0005 || WireTCI(KeyTCI(0xe00a)) != 0xe00a {
		t.Error("KeyTCI/WireTCI do not convert between the forms")
	}
}

func TestIPv4View(t *testing.T) {
	ip := IPv4(bytes.Clone(frameTCP4[14:]))
	if !ip.IsValid() || ip.Version() != 4 || ip.HeaderLen() != 20 || ip.TOS() != 0xb9 ||
		ip.TotalLen() != 45 || ip.ID() != 0x1234 || ip.TTL() != 64 || ip.Protocol() != ProtoTCP ||
		ip.Src() != ip4A || ip.Dst() != ip4B || ip.IsFragment() || ip.DontFragment() {
		t.Fatalf("read %x", []byte(ip[:20]))
	}
	ip.SetTOS(0x10)
	ip.SetTTL(3)
	ip.SetSrc(ip4B)
	ip.SetDst(ip4A)
	ip.SetTotalLen(44)
	SetIPv4Checksum(ip)
	if ip.TOS() != 0x10 || ip.TTL() != 3 || ip.Src() != ip4B || ip.Dst() != ip4A || ip.TotalLen() != 44 {
		t.Errorf("after sets %x", []byte(ip[:20]))
	}
	if refChecksum(ip[:20], 0) != 0xffff {
		t.Error("header checksum does not verify after SetIPv4Checksum")
	}
	frag := IPv4(ipv4(ProtoUDP, ip4Opts{flagsFrag: 0x2000 | 0x00b9}, nil))
	if !frag.IsFragment() || !frag.MoreFragments() || frag.FragmentOffset() != 0xb9*8 {
		t.Errorf("fragment fields: more %v offset %d", frag.MoreFragments(), frag.FragmentOffset())
	}
	if IPv4(frameTCP4[14:30]).IsValid() || IPv4(ipv4(ProtoUDP, ip4Opts{ihl: 4}, nil)).IsValid() {
		t.Error("IsValid accepted a short or bad header")
	}
}

func TestIPv6View(t *testing.T) {
	ip := IPv6(bytes.Clone(frameTCP6[14:]))
	if ip.Version() != 6 || ip.TrafficClass() != 0xa8 || ip.FlowLabel() != 0xcdef1 ||
		ip.PayloadLen() != 24 || ip.NextHeader() != ProtoTCP || ip.HopLimit() != 64 ||
		ip.Src() != ip6A || ip.Dst() != ip6B {
		t.Fatalf("read %x", []byte(ip[:40]))
	}
	ip.SetTrafficClass(0x3f)
	ip.SetFlowLabel(0xfff12345) // bits above 20 are dropped
	ip.SetHopLimit(1)
	ip.SetSrc(ip6B)
	ip.SetDst(ip6A)
	ip.SetPayloadLen(10)
	if ip.Version() != 6 || ip.TrafficClass() != 0x3f || ip.FlowLabel() != 0x12345 || ip.HopLimit() != 1 ||
		ip.Src() != ip6B || ip.Dst() != ip6A || ip.PayloadLen() != 10 {
		t.Errorf("after sets %x", []byte(ip[:40]))
	}
	frag := IPv6Fragment([]byte{ProtoUDP, 0, 0x05, 0xa9, 0, 0, 0, 42})
	if frag.NextHeader() != ProtoUDP || frag.FragmentOffset() != 0x5a8 || !frag.MoreFragments() || frag.ID() != 42 {
		t.Errorf("fragment header: next %d offset %d more %v id %d",
			frag.NextHeader(), frag.FragmentOffset(), frag.MoreFragments(), frag.ID())
	}
}

func TestTransportViews(t *testing.T) {
	tcp := TCP(tcpSeg(1, 2, TCPFlagFIN|TCPFlagNS, nil))
	if tcp.SrcPort() != 1 || tcp.DstPort() != 2 || tcp.Seq() != 1000 || tcp.Ack() != 0 ||
		tcp.HeaderLen() != 20 || tcp.Flags() != TCPFlagFIN|TCPFlagNS || tcp.Window() != 65535 {
		t.Fatalf("tcp read %x", []byte(tcp))
	}
	tcp.SetSrcPort(3)
	tcp.SetDstPort(4)
	tcp.SetChecksum(0xabcd)
	if tcp.SrcPort() != 3 || tcp.DstPort() != 4 || tcp.Checksum() != 0xabcd {
		t.Errorf("tcp after sets %x", []byte(tcp))
	}
	udp := UDP(udpDgram(5, 6, []byte("ab")))
	udp.SetSrcPort(7)
	udp.SetDstPort(8)
	udp.SetLength(9)
	udp.SetChecksum(1)
	if udp.SrcPort() != 7 || udp.DstPort() != 8 || udp.Length() != 9 || udp.Checksum() != 1 {
		t.Errorf("udp after sets %x", []byte(udp))
	}
	sctp := SCTP(sctpPkt(9, 10))
	sctp.SetSrcPort(11)
	sctp.SetDstPort(12)
	if sctp.SrcPort() != 11 || sctp.DstPort() != 12 || sctp.Checksum() != 0 {
		t.Errorf("sctp after sets %x", []byte(sctp))
	}
	icmp := ICMP(icmpMsg(8, 0, nil))
	if icmp.Type() != 8 || icmp.Code() != 0 || icmp.ID() != 1 || icmp.Seq() != 1 {
		t.Errorf("icmp read %x", []byte(icmp))
	}
	icmp.SetType(0)
	icmp.SetCode(3)
	icmp.SetChecksum(0x1111)
	if icmp.Type() != 0 || icmp.Code() != 3 || icmp.Checksum() != 0x1111 {
		t.Errorf("icmp after sets %x", []byte(icmp))
	}
	target := [16]byte{0xfe, 0x80, 15: 9}
	nd := NDMessage(ndMsg(ICMPv6NeighborAdvert, target, ndLLOpt(NDOptTargetLLAddr, macA)))
	if nd.Target() != target || nd.Reserved() != 0x60000000 || len(nd.Options()) != 8 {
		t.Errorf("nd read %x", []byte(nd))
	}
}

func TestARPView(t *testing.T) {
	arp := ARP(arpPkt(1, ARPOpRequest, macA, ip4A, [6]byte{}, ip4B))
	if !arp.IsEthernetIPv4() || arp.HardwareType() != 1 || arp.ProtocolType() != EtherTypeIPv4 ||
		arp.HardwareLen() != 6 || arp.ProtocolLen() != 4 || arp.Op() != ARPOpRequest ||
		arp.SHA() != macA || arp.SPA() != ip4A || arp.THA() != ([6]byte{}) || arp.TPA() != ip4B {
		t.Fatalf("read %x", []byte(arp))
	}
	arp.SetOp(ARPOpReply)
	arp.SetSHA(macB)
	arp.SetSPA(ip4B)
	arp.SetTHA(macA)
	arp.SetTPA(ip4A)
	if !bytes.Equal(arp, arpPkt(1, ARPOpReply, macB, ip4B, macA, ip4A)) {
		t.Errorf("after sets %x", []byte(arp))
	}
	if ARP(arpPkt(6, 1, macA, ip4A, macB, ip4B)).IsEthernetIPv4() {
		t.Error("IsEthernetIPv4 accepted hardware type 6")
	}
}
