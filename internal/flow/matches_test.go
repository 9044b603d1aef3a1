package flow

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"unsafe"

	"gvs/internal/packet"
)

// Frame builders: headers written byte by byte, checksums left zero (the
// flow key does not look at them).

var (
	macA = []byte{0x02, 0, 0, 0, 0, 0x01}
	macB = []byte{0x02, 0, 0, 0, 0, 0x02}
)

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func eth(typ uint16) []byte { return cat(macB, macA, be16(typ)) }

func vlanEth(tci, typ uint16) []byte { return cat(macB, macA, be16(0x8100), be16(tci), be16(typ)) }

// ip4 builds an IPv4 header from src to dst with tos and the flags and
// fragment offset word frag.
func ip4(proto, tos byte, src, dst [4]byte, frag uint16, payload []byte) []byte {
	h := make([]byte, 20)
	h[0], h[1] = 0x45, tos
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(h[6:], frag)
	h[8], h[9] = 64, proto
	copy(h[12:], src[:])
	copy(h[16:], dst[:])
	return cat(h, payload)
}

func ip6(nh byte, src, dst [16]byte, payload []byte) []byte {
	h := make([]byte, 40)
	binary.BigEndian.PutUint32(h, 6<<28|0x12345)
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6], h[7] = nh, 64
	copy(h[8:], src[:])
	copy(h[24:], dst[:])
	return cat(h, payload)
}

func tcpSeg(sport, dport, flags uint16) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h, sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[12:], 5<<12|flags)
	return h
}

func udpDgram(sport, dport uint16) []byte {
	return cat(be16(sport), be16(dport), be16(8), be16(0))
}

func icmp(typ, code byte) []byte { return []byte{typ, code, 0, 0, 0, 0, 0, 0} }

func neighborSolicit(target [16]byte, sll []byte) []byte {
	return cat([]byte{135, 0, 0, 0, 0, 0, 0, 0}, target[:], []byte{1, 1}, sll)
}

func arpFrame(op uint16, spa, tpa [4]byte) []byte {
	return cat(eth(0x0806), be16(1), be16(0x0800), []byte{6, 4}, be16(op), macA, spa[:], make([]byte, 6), tpa[:])
}

var (
	hostA = [4]byte{10, 0, 0, 1}
	hostB = [4]byte{10, 0, 0, 2}
	far   = [4]byte{192, 0, 2, 7}
	v6A   = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	v6B   = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
)

// frames used by the match tests, by name.
var testFrames = map[string][]byte{
	"tcp80":      cat(eth(0x0800), ip4(6, 0xb8, hostA, hostB, 0, tcpSeg(40000, 80, 0x02))),
	"tcp83":      cat(eth(0x0800), ip4(6, 0, hostA, hostB, 0, tcpSeg(40000, 83, 0x12))),
	"tcp443":     cat(eth(0x0800), ip4(6, 0, far, hostB, 0, tcpSeg(40000, 443, 0x10))),
	"udp53":      cat(eth(0x0800), ip4(17, 0, hostA, hostB, 0, udpDgram(5353, 53))),
	"icmpEcho":   cat(eth(0x0800), ip4(1, 0, hostA, hostB, 0, icmp(8, 0))),
	"fragLater":  cat(eth(0x0800), ip4(17, 0, hostA, hostB, 0x0010, make([]byte, 8))),
	"fragFirst":  cat(eth(0x0800), ip4(17, 0, hostA, hostB, 0x2000, udpDgram(1, 2))),
	"vlan10tcp":  cat(vlanEth(0xa00a, 0x0800), ip4(6, 0, hostA, hostB, 0, tcpSeg(1, 80, 0x02))),
	"tcp6":       cat(eth(0x86dd), ip6(6, v6A, v6B, tcpSeg(40000, 443, 0x02))),
	"ns":         cat(eth(0x86dd), ip6(58, v6A, v6B, neighborSolicit(v6B, macA))),
	"arpRequest": arpFrame(1, hostA, hostB),
	"arpReply":   arpFrame(2, hostB, hostA),
}

func frameKey(t testing.TB, name string, inPort uint32) packet.Key {
	t.Helper()
	var k packet.Key
	if err := packet.Parse(testFrames[name], inPort, &k, nil); err != nil {
		t.Fatalf("frame %s: %v", name, err)
	}
	return k
}

func TestMatchesFrames(t *testing.T) {
	cases := []struct {
		match string
		yes   []string // frames it must match
		no    []string // frames it must not
	}{
		{"", []string{"tcp80", "arpRequest", "ns"}, nil},
		{"tcp", []string{"tcp80", "tcp443", "vlan10tcp"}, []string{"udp53", "tcp6", "arpRequest"}},
		{"tcp,nw_src=10.0.0.0/24,tp_dst=0x50/0xfff0", []string{"tcp80", "tcp83", "vlan10tcp"}, []string{"tcp443", "udp53"}},
		{"ip,nw_dst=10.0.0.2", []string{"tcp80", "udp53", "icmpEcho"}, []string{"tcp6", "arpRequest"}},
		{"udp,tp_dst=53", []string{"udp53"}, []string{"tcp80", "fragLater"}},
		{"tcp,tcp_flags=+syn-ack", []string{"tcp80", "vlan10tcp"}, []string{"tcp83", "tcp443"}},
		{"tcp,tcp_flags=syn|ack", []string{"tcp83"}, []string{"tcp80"}},
		{"icmp,icmp_type=8", []string{"icmpEcho"}, []string{"tcp80"}},
		{"ip,ip_frag=later", []string{"fragLater"}, []string{"fragFirst", "udp53"}},
		{"ip,ip_frag=first", []string{"fragFirst"}, []string{"fragLater", "udp53"}},
		{"ip,ip_frag=no", []string{"udp53"}, []string{"fragFirst", "fragLater"}},
		{"ip,ip_frag=not_later", []string{"udp53", "fragFirst"}, []string{"fragLater"}},
		{"ip,ip_dscp=46", []string{"tcp80"}, []string{"tcp83"}},
		{"dl_vlan=10", []string{"vlan10tcp"}, []string{"tcp80"}},
		{"dl_vlan=10,dl_vlan_pcp=5", []string{"vlan10tcp"}, nil},
		{"dl_vlan_pcp=4", nil, []string{"vlan10tcp", "tcp80"}},
		{"dl_vlan=0xffff", []string{"tcp80", "arpRequest"}, []string{"vlan10tcp"}},
		{"vlan_tci=0x1000/0x1000", []string{"vlan10tcp"}, []string{"tcp80"}},
		{"vlan_vid=0x100a", []string{"vlan10tcp"}, []string{"tcp80"}},
		{"tcp6,ipv6_dst=2001:db8::/64,tp_dst=443", []string{"tcp6"}, []string{"tcp443", "ns"}},
		{"ipv6,ipv6_label=0x12345", []string{"tcp6", "ns"}, nil},
		{"icmp6,icmp_type=135,nd_target=2001:db8::2,nd_sll=02:00:00:00:00:01", []string{"ns"}, []string{"tcp6"}},
		{"icmp6,icmp_type=135,nd_sll=02:00:00:00:00:09", nil, []string{"ns"}},
		{"arp,arp_op=1", []string{"arpRequest"}, []string{"arpReply", "tcp80"}},
		{"arp,nw_src=10.0.0.1", []string{"arpRequest"}, []string{"arpReply"}},
		{"arp,arp_tpa=10.0.0.0/8,arp_sha=02:00:00:00:00:01", []string{"arpRequest", "arpReply"}, nil},
		{"dl_src=02:00:00:00:00:01", []string{"tcp80", "arpRequest"}, nil},
		{"dl_dst=01:00:00:00:00:00/01:00:00:00:00:00", nil, []string{"tcp80"}},
		{"in_port=3", []string{"tcp80"}, nil},
		{"in_port=4", nil, []string{"tcp80"}},
		{"in_port=3,udp", []string{"udp53"}, []string{"tcp80"}},
	}
	for _, c := range cases {
		m, err := ParseMatch(c.match)
		if err != nil {
			t.Fatalf("ParseMatch(%q): %v", c.match, err)
		}
		for _, want := range []bool{true, false} {
			names := c.yes
			if !want {
				names = c.no
			}
			for _, name := range names {
				k := frameKey(t, name, 3)
				if got := m.Matches(&k); got != want {
					t.Errorf("%q matches frame %s = %v, want %v", c.match, name, got, want)
				}
				if got := slowMatches(m, &k); got != want {
					t.Errorf("reference: %q matches frame %s = %v, want %v", c.match, name, got, want)
				}
			}
		}
	}
}

// TestMatchesMetadata covers fields the packet parser leaves to later
// stages: conntrack, tunnel, marks.
func TestMatchesMetadata(t *testing.T) {
	k := frameKey(t, "tcp80", 1)
	k.CtState, k.CtZone, k.CtMark = csTrk|csEst, 5, 0x1234
	k.CtLabel = [16]byte{0: 0x80, 15: 1}
	k.CtNwSrc, k.CtNwProto, k.CtTpDst = hostA, 6, 80
	k.TunID, k.PktMark, k.RecircID = 0x64, 7, 2
	cases := map[string]bool{
		"ct_state=+trk+est": true,
		"ct_state=+trk+new": false,
		"ct_state=-new":     true,
		"ct_state=est|trk":  true,
		"ct_state=trk":      false,
		"ct_zone=5":         true,
		"ct_zone=6":         false,
		"ct_mark=0x34/0xff": true,
		"ct_mark=0x35/0xff": false,
		"ct_label=0x80000000000000000000000000000001":  true,
		"ct_label=0x1/0x1":                             true,
		"ct_label=0x2/0x2":                             false,
		"ct_state=+est+trk,ip,ct_nw_src=10.0.0.1":      true,
		"ct_state=+est+trk,ct_nw_proto=6,ct_tp_dst=80": true,
		"ct_state=+est+trk,ct_nw_proto=17":             false,
		"tun_id=0x64":                                  true,
		"tun_id=0x65":                                  false,
		"pkt_mark=7":                                   true,
		"recirc_id=2":                                  true,
		"recirc_id=0":                                  false,
	}
	for text, want := range cases {
		m, err := ParseMatch(text)
		if err != nil {
			t.Errorf("ParseMatch(%q): %v", text, err)
			continue
		}
		if got := m.Matches(&k); got != want {
			t.Errorf("%q matches = %v, want %v", text, got, want)
		}
	}
}

// slowMatches is the definition Matches must agree with: every key byte,
// masked, equals the value byte.
func slowMatches(m *Match, k *packet.Key) bool {
	kb := keyBytes(k)
	vb, mb := keyBytes(&m.value), keyBytes(&m.mask)
	for i := range kb {
		if kb[i]&mb[i] != vb[i] {
			return false
		}
	}
	return true
}

func keyBytes(k *packet.Key) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(k)), unsafe.Sizeof(*k))
}

// TestMatchesAgreesWithBytes compares the word-wise Matches with the
// byte-wise definition on random keys and random sparse matches, built
// so that about half of the keys match.
func TestMatchesAgreesWithBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var key, value, mask packet.Key
	for range 20000 {
		fill(r, keyBytes(&key), 255)
		vb, mb, kb := keyBytes(&value), keyBytes(&mask), keyBytes(&key)
		clear(mb)
		for range r.IntN(6) {
			i := r.IntN(len(mb))
			mb[i] = byte(r.Uint32())
		}
		for i := range vb {
			vb[i] = kb[i]
		}
		if r.IntN(2) == 0 {
			i := r.IntN(len(vb))
			vb[i] ^= byte(r.Uint32())
		}
		m := NewMatch(value, mask)
		if got, want := m.Matches(&key), slowMatches(m, &key); got != want {
			t.Fatalf("Matches = %v, byte-wise = %v\nvalue %+v\nmask %+v\nkey %+v", got, want, value, mask, key)
		}
	}
}

func fill(r *rand.Rand, b []byte, max uint32) {
	for i := range b {
		b[i] = byte(r.Uint32() % (max + 1))
	}
}

func TestMatchesDoesNotAllocate(t *testing.T) {
	m, err := ParseMatch("tcp,nw_src=10.0.0.0/24,tp_dst=0x50/0xfff0,dl_vlan=10")
	if err != nil {
		t.Fatal(err)
	}
	k := frameKey(t, "vlan10tcp", 1)
	if !m.Matches(&k) {
		t.Fatal("match misses its frame")
	}
	if n := testing.AllocsPerRun(1000, func() { m.Matches(&k) }); n != 0 {
		t.Errorf("Matches allocates %v times per call", n)
	}
}

func BenchmarkMatches(b *testing.B) {
	for _, c := range []struct{ name, match, frame string }{
		{"mirror-filter-hit", "tcp,nw_src=10.0.0.0/24,tp_dst=0x50/0xfff0", "tcp80"},
		{"mirror-filter-miss", "tcp,nw_src=10.0.0.0/24,tp_dst=0x50/0xfff0", "udp53"},
		{"five-tuple", "tcp,nw_src=10.0.0.1,nw_dst=10.0.0.2,tp_src=40000,tp_dst=80", "tcp80"},
		{"ipv6-ct", "ct_state=+trk+est,tcp6,ipv6_dst=2001:db8::/64,tp_dst=443", "tcp6"},
		{"catch-all", "", "tcp80"},
	} {
		m, err := ParseMatch(c.match)
		if err != nil {
			b.Fatal(err)
		}
		k := frameKey(b, c.frame, 1)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.Matches(&k)
			}
		})
	}
}

func BenchmarkParseMatch(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseMatch("tcp,nw_src=10.0.0.0/24,tp_dst=0x50/0xfff0"); err != nil {
			b.Fatal(err)
		}
	}
}
