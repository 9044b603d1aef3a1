package main

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestSynPacket: gopacket decodes the flood's SYN with valid checksums.
func TestSynPacket(t *testing.T) {
	pkt := make([]byte, 40)
	src, dst := net.IPv4(10, 231, 97, 1).To4(), net.IPv4(10, 231, 97, 2).To4()
	synPacket(pkt, src, dst, 40000, 5299, 12345)
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if ip == nil || tcp == nil {
		t.Fatalf("not IPv4+TCP: %v", p)
	}
	if !ip.SrcIP.Equal(src) || !ip.DstIP.Equal(dst) || tcp.SrcPort != 40000 || tcp.DstPort != 5299 || !tcp.SYN || tcp.ACK || tcp.Seq != 12345 {
		t.Fatalf("wrong fields: %v %v", ip, tcp)
	}
	if checksum(pkt[:20], 0) != 0 {
		t.Error("IPv4 header checksum does not verify")
	}
	want := tcp.Checksum
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, tcp); err != nil {
		t.Fatal(err)
	}
	got := uint16(buf.Bytes()[16])<<8 | uint16(buf.Bytes()[17])
	if got != want {
		t.Errorf("TCP checksum %#04x, gopacket computes %#04x", want, got)
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{{}, {"nope"}, {"serve", "-secs", "0"}, {"connrate", "-workers", "0"},
		{"synflood", "-pps", "0"}, {"synflood", "-src", "x", "-dst", "y"}} {
		if err := run(args); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
