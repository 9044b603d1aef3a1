package netdev

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"gvs/internal/packet"
)

var (
	ndLocal  = netip.MustParseAddr("2001:db8:5::1")
	ndRemote = netip.MustParseAddr("2001:db8:5::2")
	ndMAC    = [6]byte{0x02, 0, 0, 0, 0, 0x1}
)

// ndFrame builds an ND message with gopacket, an independent encoder:
// typ is an advertisement or a solicitation, from src (IPv6 and MAC),
// about target, with a link-layer option of optType carrying optMAC (no
// option if optType is 0).
func ndFrame(t testing.TB, typ uint8, src netip.Addr, srcMAC [6]byte, target netip.Addr, optType uint8, optMAC [6]byte, hopLimit uint8) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(srcMAC[:]), DstMAC: net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: hopLimit,
		SrcIP: net.IP(src.AsSlice()), DstIP: net.ParseIP("ff02::1")}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	var opts layers.ICMPv6Options
	if optType != 0 {
		opts = layers.ICMPv6Options{{Type: layers.ICMPv6Opt(optType), Data: optMAC[:]}}
	}
	var body gopacket.SerializableLayer
	if typ == packet.ICMPv6NeighborAdvert {
		body = &layers.ICMPv6NeighborAdvertisement{Flags: 0x60, TargetAddress: net.IP(target.AsSlice()), Options: opts}
	} else {
		body = &layers.ICMPv6NeighborSolicitation{TargetAddress: net.IP(target.AsSlice()), Options: opts}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, icmp, body); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParseNDNeighbour(t *testing.T) {
	na := ndFrame(t, packet.ICMPv6NeighborAdvert, ndRemote, nbMAC, ndRemote, packet.NDOptTargetLLAddr, nbMAC, 255)
	if ip, mac, ok := ParseNDNeighbour(na); !ok || ip != ndRemote || mac != nbMAC {
		t.Fatalf("advertisement: %v %v %v", ip, mac, ok)
	}
	// A proxy's advertisement teaches the target with the option's MAC.
	other := [6]byte{0x02, 0, 0, 0, 0, 0xb}
	if ip, mac, ok := ParseNDNeighbour(ndFrame(t, packet.ICMPv6NeighborAdvert, ndLocal, nbMAC, ndRemote, packet.NDOptTargetLLAddr, other, 255)); !ok || ip != ndRemote || mac != other {
		t.Errorf("advertisement of another target: %v %v %v", ip, mac, ok)
	}
	linkLocal := netip.MustParseAddr("fe80::2")
	if ip, _, ok := ParseNDNeighbour(ndFrame(t, packet.ICMPv6NeighborAdvert, linkLocal, nbMAC, linkLocal, packet.NDOptTargetLLAddr, nbMAC, 255)); !ok || ip != linkLocal {
		t.Errorf("a link-local advertisement taught nothing (a router's next hop is link-local)")
	}

	bad := map[string][]byte{
		"advertisement without target option":            ndFrame(t, packet.ICMPv6NeighborAdvert, ndRemote, nbMAC, ndRemote, 0, [6]byte{}, 255),
		"advertisement with source option":               ndFrame(t, packet.ICMPv6NeighborAdvert, ndRemote, nbMAC, ndRemote, packet.NDOptSourceLLAddr, nbMAC, 255),
		"solicitation (OVS 3.1 learns nothing from one)": ndFrame(t, packet.ICMPv6NeighborSolicit, ndRemote, nbMAC, ndLocal, packet.NDOptSourceLLAddr, nbMAC, 255),
		"routed (hop limit 64)":                          ndFrame(t, packet.ICMPv6NeighborAdvert, ndRemote, nbMAC, ndRemote, packet.NDOptTargetLLAddr, nbMAC, 64),
		"multicast MAC":                                  ndFrame(t, packet.ICMPv6NeighborAdvert, ndRemote, nbMAC, ndRemote, packet.NDOptTargetLLAddr, [6]byte{0x33, 0x33, 0, 0, 0, 1}, 255),
		"zero MAC":                                       ndFrame(t, packet.ICMPv6NeighborAdvert, ndRemote, nbMAC, ndRemote, packet.NDOptTargetLLAddr, [6]byte{}, 255),
		"multicast target":                               ndFrame(t, packet.ICMPv6NeighborAdvert, ndRemote, nbMAC, netip.MustParseAddr("ff02::1"), packet.NDOptTargetLLAddr, nbMAC, 255),
		"truncated":                                      na[:len(na)-9],
	}
	badSum := append([]byte(nil), na...)
	badSum[len(badSum)-1] ^= 1
	bad["bad checksum"] = badSum
	for name, f := range bad {
		if ip, mac, ok := ParseNDNeighbour(f); ok {
			t.Errorf("%s taught %v at %v", name, ip, mac)
		}
	}
	if n := testing.AllocsPerRun(100, func() { ParseNDNeighbour(na) }); n != 0 {
		t.Errorf("ParseNDNeighbour allocates %v times", n)
	}
}

// TestBuildNeighborSolicitation decodes the solicitation with gopacket
// and checks every field, the checksum included (gopacket computes it
// again on re-serialising).
func TestBuildNeighborSolicitation(t *testing.T) {
	b := make([]byte, NSFrameLen+10)
	n := BuildNeighborSolicitation(b, ndMAC, ndLocal, ndRemote)
	if n != NSFrameLen {
		t.Fatalf("length %d, want %d", n, NSFrameLen)
	}
	p := gopacket.NewPacket(b[:n], layers.LayerTypeEthernet, gopacket.Default)
	if e := p.ErrorLayer(); e != nil {
		t.Fatalf("gopacket: %v", e.Error())
	}
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	icmp, _ := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	ns, _ := p.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation)
	if eth == nil || ip == nil || icmp == nil || ns == nil {
		t.Fatalf("gopacket did not decode a neighbor solicitation:\n%s", p.Dump())
	}
	if eth.DstMAC.String() != "33:33:ff:00:00:02" || eth.SrcMAC.String() != "02:00:00:00:00:01" {
		t.Errorf("Ethernet %v -> %v", eth.SrcMAC, eth.DstMAC)
	}
	if ip.SrcIP.String() != "2001:db8:5::1" || ip.DstIP.String() != "ff02::1:ff00:2" || ip.HopLimit != 255 || ip.Length != ndMsgLen {
		t.Errorf("IPv6 %v -> %v hop limit %d length %d", ip.SrcIP, ip.DstIP, ip.HopLimit, ip.Length)
	}
	if ns.TargetAddress.String() != "2001:db8:5::2" || len(ns.Options) != 1 || ns.Options[0].Type != layers.ICMPv6OptSourceAddress ||
		!bytes.Equal(ns.Options[0].Data, ndMAC[:]) {
		t.Errorf("solicitation target %v options %v", ns.TargetAddress, ns.Options)
	}
	// Serialise gopacket's view again with its own checksum: the bytes
	// must not change.
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, icmp, ns); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), b[:n]) {
		t.Errorf("gopacket re-encodes the solicitation differently:\n got %x\nwant %x", b[:n], buf.Bytes())
	}
	for _, c := range []struct{ src, dst netip.Addr }{
		{netip.MustParseAddr("172.21.12.8"), ndRemote}, {ndLocal, netip.MustParseAddr("172.21.12.9")},
	} {
		if BuildNeighborSolicitation(b, ndMAC, c.src, c.dst) != 0 {
			t.Errorf("built a solicitation from %v for %v", c.src, c.dst)
		}
	}
	if BuildNeighborSolicitation(b[:NSFrameLen-1], ndMAC, ndLocal, ndRemote) != 0 {
		t.Error("built a solicitation into a short buffer")
	}
}

// FuzzParseNDNeighbour: no input panics, and whatever is learned is a
// unicast IPv6 address with a unicast MAC from a well-formed message.
func FuzzParseNDNeighbour(f *testing.F) {
	f.Add(ndFrame(f, packet.ICMPv6NeighborAdvert, ndRemote, nbMAC, ndRemote, packet.NDOptTargetLLAddr, nbMAC, 255))
	f.Add(ndFrame(f, packet.ICMPv6NeighborSolicit, ndRemote, nbMAC, ndLocal, packet.NDOptSourceLLAddr, nbMAC, 255))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ip, mac, ok := ParseNDNeighbour(b)
		if !ok {
			return
		}
		if len(b) < packet.EthernetLen+packet.IPv6Len+ndMsgLen || mac[0]&1 != 0 || mac == [6]byte{} ||
			!ip.Is6() || ip.Is4In6() || ip.IsUnspecified() || ip.IsMulticast() {
			t.Fatalf("learned %v %v from %x", ip, mac, b)
		}
	})
}
