package packet

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The reference switch's own flow extraction is the oracle: `ovs-ofctl
// parse-pcap` prints the flow OVS extracts from each frame of a capture.
// TestParseMatchesOVS writes a corpus of frames (well-formed ones, every
// truncation of them, and random corruptions of their headers) to a pcap
// file and checks that Parse yields the same flow for every one.

func TestParseMatchesOVS(t *testing.T) {
	ofctl, err := exec.LookPath("ovs-ofctl")
	if err != nil {
		t.Skip("ovs-ofctl (openvswitch-common) not installed: no reference to compare with")
	}
	frames := oracleCorpus()
	path := filepath.Join(t.TempDir(), "corpus.pcap")
	if err := writePcap(path, frames); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ofctl, "parse-pcap", path).Output()
	if err != nil {
		t.Fatalf("ovs-ofctl parse-pcap: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(frames) {
		t.Fatalf("ovs-ofctl printed %d flows for %d frames", len(lines), len(frames))
	}
	mismatches := 0
	for i, frame := range frames {
		var key Key
		_ = Parse(frame, 0, &key, nil)
		if key.DlType == etherTypeNSH {
			continue // OVS reads NSH headers; gvs does not (yet)
		}
		got := ovsFlowString(&key)
		want := strings.Replace(lines[i], "in_port=ANY,", "", 1)
		if got != want {
			mismatches++
			if mismatches <= 10 {
				t.Errorf("frame %d %x:\n got %s\nwant %s", i, frame, got, want)
			}
		}
	}
	if mismatches > 0 {
		t.Errorf("%d of %d frames differ from OVS", mismatches, len(frames))
	}
	t.Logf("%d frames compared with OVS", len(frames))
}

// oracleSeeds are well-formed and deliberately odd frames.
const etherTypeNSH = 0x894f

func oracleSeeds() [][]byte {
	tcp := tcpSeg(1234, 80, TCPFlagSYN|TCPFlagACK, nil)
	udp := udpDgram(53, 5353, []byte("q"))
	target := [16]byte{0xfe, 0x80, 15: 5}
	return [][]byte{
		frameTCP4, frameVLANUDP4, frameTCP6,
		cat(ethHdr(macB, macA, EtherTypeQinQ), be16(0x3005), be16(EtherTypeVLAN), be16(0xe007),
			be16(EtherTypeIPv4), ipv4(ProtoICMPv4, ip4Opts{}, icmpMsg(8, 0, nil))),
		cat(ethHdr(macB, macA, EtherTypeVLAN), be16(0x3005), be16(EtherTypeVLAN), be16(0xe007),
			be16(EtherTypeVLAN), be16(9), be16(EtherTypeIPv4), ipv4(ProtoUDP, ip4Opts{}, udp)),
		cat(ethHdr(macB, macA, EtherTypeVLAN), be16(0x1fff), be16(EtherTypeIPv6), ipv6(ProtoUDP, 0, 0, udp)),
		cat(ethHdr(macB, macA, EtherTypeIPv4), ipv4(ProtoTCP, ip4Opts{flagsFrag: 0x2000}, tcp)),
		cat(ethHdr(macB, macA, EtherTypeIPv4), ipv4(ProtoTCP, ip4Opts{flagsFrag: 0x0010}, tcp)),
		cat(ethHdr(macB, macA, EtherTypeIPv4), ipv4(ProtoTCP, ip4Opts{options: []byte{1, 1, 1, 0}}, tcp), make([]byte, 10)),
		cat(ethHdr(macB, macA, EtherTypeIPv4), ipv4(ProtoSCTP, ip4Opts{}, sctpPkt(7, 9))),
		cat(ethHdr(macB, macA, EtherTypeIPv4), ipv4(ProtoGRE, ip4Opts{}, make([]byte, 8))),
		cat(ethHdr(macB, macA, EtherTypeIPv4), ipv4(ProtoICMPv4, ip4Opts{}, icmpMsg(3, 1, make([]byte, 28)))),
		cat(ethHdr(macB, macA, 0x0030), []byte{0xaa, 0xaa, 3, 0, 0, 0}, be16(EtherTypeIPv4), ipv4(ProtoUDP, ip4Opts{}, udp)),
		cat(ethHdr(macB, macA, 0x0030), []byte{0x42, 0x42, 3, 0, 0, 0}, make([]byte, 40)),
		cat(ethHdr(macB, macA, EtherTypeMPLS), []byte{0, 1, 0x41, 0xff}, make([]byte, 20)),
		cat(ethHdr(macB, macA, EtherTypeMPLSMcast), []byte{0, 1, 0x40, 0x3f}, []byte{0, 2, 0x41, 0x3f}),
		cat(ethHdr(macB, macA, 0x88cc), make([]byte, 30)),
		cat(ethHdr(macB, macA, EtherTypeARP), arpPkt(1, ARPOpRequest, macA, ip4A, [6]byte{}, ip4B)),
		cat(ethHdr(macB, macA, EtherTypeARP), arpPkt(1, 0x0101, macA, ip4A, [6]byte{}, ip4B)),
		cat(ethHdr(macB, macA, EtherTypeRARP), arpPkt(1, 3, macA, ip4A, macB, ip4B)),
		cat(ethHdr(macB, macA, EtherTypeARP), arpPkt(6, 2, macA, ip4A, macB, ip4B)),
		cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoICMPv6, 0, 0,
			ndMsg(ICMPv6NeighborSolicit, target, ndLLOpt(NDOptSourceLLAddr, macA)))),
		cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoICMPv6, 0, 0,
			ndMsg(ICMPv6NeighborAdvert, target, ndLLOpt(NDOptTargetLLAddr, macA), []byte{14, 2}, make([]byte, 14)))),
		cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoICMPv6, 0, 0,
			ndMsg(ICMPv6NeighborAdvert, target, ndLLOpt(NDOptTargetLLAddr, macA), ndLLOpt(NDOptTargetLLAddr, macB)))),
		cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoICMPv6, 0, 0, icmpMsg(128, 0, []byte("ping")))),
		cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoHopOpts, 0, 0,
			cat([]byte{ProtoDstOpts, 0, 1, 4, 0, 0, 0, 0}, []byte{ProtoRouting, 1}, make([]byte, 14),
				[]byte{ProtoTCP, 0, 0, 0, 0, 0, 0, 0}, tcp))),
		cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoFragment, 0, 0, cat([]byte{ProtoTCP, 0, 0, 1, 0, 0, 0, 1}, tcp))),
		cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoFragment, 0, 0, cat([]byte{ProtoTCP, 0, 0, 0x10, 0, 0, 0, 1}, tcp))),
		cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoFragment, 0, 0, cat([]byte{ProtoTCP, 0, 0, 0, 0, 0, 0, 1}, tcp))),
		cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoAH, 0, 0, cat([]byte{ProtoUDP, 1}, make([]byte, 10), udp))),
		cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoESP, 0, 0, make([]byte, 16))),
		cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoNoNext, 0, 0, nil)),
		cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoSCTP, 0, 0, sctpPkt(5, 6))),
		cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoICMPv4, 0, 0, icmpMsg(8, 0, nil))),
		cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoIGMP, 0, 0, icmpMsg(0x11, 0, nil))),
		cat(ethHdr(macB, macA, EtherTypeIPv4), ipv4(ProtoICMPv6, ip4Opts{}, ndMsg(ICMPv6NeighborSolicit, target, ndLLOpt(NDOptSourceLLAddr, macA)))),
		cat(ethHdr(macB, macA, EtherTypeIPv4), ipv4(ProtoIGMP, ip4Opts{}, icmpMsg(0x16, 0, nil))),
		cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoICMPv6, 0, 0,
			ndMsg(ICMPv6NeighborSolicit, target, ndLLOpt(NDOptTargetLLAddr, macB), []byte{3, 0}, make([]byte, 6), ndLLOpt(NDOptSourceLLAddr, macA)))),
		cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoICMPv6, 0, 0,
			ndMsg(ICMPv6NeighborSolicit, target, ndLLOpt(NDOptSourceLLAddr, macB), ndLLOpt(NDOptSourceLLAddr, [6]byte{})))),
		cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoICMPv6, 0, 0,
			ndMsg(ICMPv6NeighborSolicit, target, ndLLOpt(NDOptSourceLLAddr, [6]byte{}), ndLLOpt(NDOptSourceLLAddr, macB)))),
	}
}

// oracleCorpus is the seeds, every truncation of each, and corruptions.
func oracleCorpus() [][]byte {
	seeds := oracleSeeds()
	rng := rand.New(rand.NewPCG(1, 2))
	var out [][]byte
	for _, s := range seeds {
		out = append(out, s)
		for n := 1; n < len(s); n++ {
			out = append(out, s[:n])
		}
		for range 150 {
			out = append(out, corrupt(rng, s))
		}
	}
	return out
}

// corrupt returns a copy of s with a few bytes of its first 100 changed,
// mostly to small or boundary values that reach the parser's checks.
func corrupt(rng *rand.Rand, s []byte) []byte {
	c := bytes.Clone(s)
	span := min(len(c), 100)
	for range 1 + rng.IntN(3) {
		i := 12 + rng.IntN(span-12)
		switch rng.IntN(4) {
		case 0:
			c[i] = byte(rng.IntN(256))
		case 1:
			c[i] ^= 1 << rng.IntN(8)
		case 2:
			c[i] = []byte{0, 1, 2, 4, 5, 6, 0x0f, 0x3f, 0x40, 0x45, 0x60, 0x86, 0xff}[rng.IntN(13)]
		case 3:
			c[i]++
		}
	}
	if rng.IntN(4) == 0 {
		c = c[:len(c)-rng.IntN(len(c)/2)]
	}
	return c
}

func writePcap(path string, frames [][]byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], 1) // Ethernet
	w.Write(hdr)
	for _, fr := range frames {
		rec := make([]byte, 16)
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(fr)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(fr)))
		w.Write(rec)
		w.Write(fr)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ovsFlowString formats a key the way ovs-ofctl prints an exact-match flow
// (without in_port), for the fields Parse fills.
func ovsFlowString(k *Key) string {
	var parts []string
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	proto := protoName(k)
	if proto != "" {
		add("%s", proto)
	}
	if k.VLANTCI == 0 {
		add("vlan_tci=0x0000")
	} else {
		add("dl_vlan=%d,dl_vlan_pcp=%d", k.VLANTCI&VLANVIDMask, k.VLANTCI>>VLANPCPShift)
		if k.InnerVLANTCI == 0 {
			add("vlan_tci1=0x0000")
		} else {
			add("dl_vlan1=%d,dl_vlan_pcp1=%d", k.InnerVLANTCI&VLANVIDMask, k.InnerVLANTCI>>VLANPCPShift)
		}
	}
	add("dl_src=%s,dl_dst=%s", macString(k.DlSrc), macString(k.DlDst))
	if proto == "" {
		add("dl_type=0x%04x", k.DlType)
	}
	switch k.DlType {
	case EtherTypeIPv4, EtherTypeIPv6:
		parts = append(parts, ipFields(k, proto)...)
	case EtherTypeARP, EtherTypeRARP:
		add("arp_spa=%s,arp_tpa=%s,arp_op=%d,arp_sha=%s,arp_tha=%s",
			netip.AddrFrom4(k.ArpSpa), netip.AddrFrom4(k.ArpTpa), k.ArpOp, macString(k.ArpSha), macString(k.ArpTha))
	case EtherTypeMPLS, EtherTypeMPLSMcast:
		lse := k.MPLSLSE[0]
		add("mpls_label=%d,mpls_tc=%d,mpls_ttl=%d,mpls_bos=%d", lse>>12, lse>>9&7, lse&0xff, lse>>8&1)
		for i := 1; i < MaxMPLSLabels && k.MPLSLSE[i-1]&0x100 == 0; i++ {
			add("mpls_lse%d=%d", i, k.MPLSLSE[i])
		}
	}
	return strings.Join(parts, ",")
}

func protoName(k *Key) string {
	names4 := map[uint8]string{ProtoTCP: "tcp", ProtoUDP: "udp", ProtoICMPv4: "icmp", ProtoSCTP: "sctp"}
	names6 := map[uint8]string{ProtoTCP: "tcp6", ProtoUDP: "udp6", ProtoICMPv6: "icmp6", ProtoSCTP: "sctp6"}
	switch k.DlType {
	case EtherTypeIPv4:
		if n, ok := names4[k.NwProto]; ok {
			return n
		}
		return "ip"
	case EtherTypeIPv6:
		if n, ok := names6[k.NwProto]; ok {
			return n
		}
		return "ipv6"
	case EtherTypeARP:
		return "arp"
	case EtherTypeRARP:
		return "rarp"
	case EtherTypeMPLS:
		return "mpls"
	case EtherTypeMPLSMcast:
		return "mplsm"
	}
	return ""
}

func ipFields(k *Key, proto string) []string {
	var parts []string
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	if k.DlType == EtherTypeIPv4 {
		add("nw_src=%s,nw_dst=%s", netip.AddrFrom4(k.NwSrc), netip.AddrFrom4(k.NwDst))
	} else {
		add("ipv6_src=%s,ipv6_dst=%s,ipv6_label=0x%05x", netip.AddrFrom16(k.IPv6Src), netip.AddrFrom16(k.IPv6Dst), k.IPv6Label)
	}
	if proto == "ip" || proto == "ipv6" {
		add("nw_proto=%d", k.NwProto)
	}
	add("nw_tos=%d,nw_ecn=%d,nw_ttl=%d,nw_frag=%s", k.NwTOS&0xfc, k.NwTOS&3, k.NwTTL,
		map[uint8]string{0: "no", FragAny: "first", FragAny | FragLater: "later"}[k.NwFrag])
	if k.NwFrag&FragLater != 0 {
		return parts
	}
	switch proto {
	case "tcp", "tcp6":
		add("tp_src=%d,tp_dst=%d,tcp_flags=%s", k.TpSrc, k.TpDst, tcpFlagsString(k.TCPFlags))
	case "udp", "udp6", "sctp", "sctp6":
		add("tp_src=%d,tp_dst=%d", k.TpSrc, k.TpDst)
	case "ip", "ipv6":
		if k.NwProto == ProtoIGMP || k.NwProto == ProtoICMPv4 || k.NwProto == ProtoICMPv6 {
			add("tp_src=%d,tp_dst=%d", k.TpSrc, k.TpDst)
		}
	case "icmp", "icmp6":
		add("icmp_type=%d,icmp_code=%d", k.TpSrc, k.TpDst)
		if proto == "icmp6" && k.TpDst == 0 && (k.TpSrc == 135 || k.TpSrc == 136) {
			add("nd_target=%s,nd_sll=%s,nd_tll=%s", netip.AddrFrom16(k.NdTarget), macString(k.NdSll), macString(k.NdTll))
		}
	}
	return parts
}

func tcpFlagsString(f uint16) string {
	if f == 0 {
		return "0"
	}
	names := []string{"fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr", "ns", "[200]", "[400]", "[800]"}
	var set []string
	for i, n := range names {
		if f&(1<<i) != 0 {
			set = append(set, n)
		}
	}
	return strings.Join(set, "|")
}

func macString(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}
