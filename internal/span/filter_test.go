package span

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/net/bpf"

	"gvs/internal/packet"
)

// run executes a compiled program over frame as the kernel would for an
// AF_PACKET socket: pkttype is the packet type, and accel says the kernel
// took the outer VLAN tag out of the frame into the socket buffer (VLAN
// offload), where the program reads it with the VLAN extensions. x/net/bpf's
// VM knows no extension but the length, so the extension loads are
// replaced by the constants the kernel would give.
func run(t testing.TB, ins []bpf.Instruction, frame []byte, pkttype uint32, accel bool) uint32 {
	t.Helper()
	present, tag := uint32(0), uint32(0)
	if accel && len(frame) >= 18 && packet.IsVLANTPID(binary.BigEndian.Uint16(frame[12:])) {
		present, tag = 1, uint32(binary.BigEndian.Uint16(frame[14:]))
		frame = append(append([]byte{}, frame[:12]...), frame[16:]...)
	}
	sub := make([]bpf.Instruction, len(ins))
	for i, in := range ins {
		sub[i] = in
		if e, ok := in.(bpf.LoadExtension); ok {
			switch e.Num {
			case bpf.ExtType:
				sub[i] = bpf.LoadConstant{Dst: bpf.RegA, Val: pkttype}
			case bpf.ExtVLANTagPresent:
				sub[i] = bpf.LoadConstant{Dst: bpf.RegA, Val: present}
			case bpf.ExtVLANTag:
				sub[i] = bpf.LoadConstant{Dst: bpf.RegA, Val: tag}
			}
		}
	}
	vm, err := bpf.NewVM(sub)
	if err != nil {
		t.Fatalf("program refused by the VM: %v\n%s", err, Disassemble(ins))
	}
	n, err := vm.Run(frame)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return uint32(n)
}

// decide is the reference: the rules evaluated with internal/flow's own
// matcher over packet.Parse's key.
func decide(rules []Rule, frame []byte) bool {
	if len(rules) == 0 {
		return true
	}
	var k packet.Key
	_ = packet.Parse(frame, 0, &k, nil)
	for _, r := range rules {
		if r.Match.Matches(&k) {
			return r.Accept
		}
	}
	return false
}

func mustRules(t testing.TB, texts ...string) []Rule {
	t.Helper()
	rs, err := ParseRules(texts)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// frameGen builds well-formed frames whose fields come from small sets,
// so that random rules hit them often.
type frameGen struct{ r *rand.Rand }

func (g frameGen) pick(n int) int { return g.r.IntN(n) }

var (
	genMACs = [][]byte{{0, 1, 2, 3, 4, 5}, {0xaa, 0, 0, 0, 0, 1}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {2, 0, 0, 0, 0, 2}}
	genIPv4 = [][]byte{{10, 0, 0, 1}, {10, 0, 0, 2}, {10, 1, 2, 3}, {192, 168, 1, 1}, {172, 16, 0, 9}}
	genIPv6 = [][]byte{
		{0x20, 0x01, 0x0d, 0xb8, 15: 1}, {0x20, 0x01, 0x0d, 0xb8, 15: 2},
		{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 15: 3}, {0xfe, 0x80, 15: 9},
	}
	genPorts = []uint16{22, 53, 80, 443, 5201, 5202, 8080, 0x1234, 1024}
)

func (g frameGen) frame() []byte {
	f := append([]byte{}, genMACs[g.pick(len(genMACs))]...)
	f = append(f, genMACs[g.pick(len(genMACs))]...)
	for range g.pick(4) / 2 { // 0, 0, 1 or 1 tags; 2 below
		f = g.tag(f)
	}
	if g.pick(8) == 0 {
		f = g.tag(g.tag(f))
	}
	switch g.pick(10) {
	case 0, 1, 2, 3:
		return g.ipv4(f)
	case 4, 5, 6:
		return g.ipv6(f)
	case 7:
		return g.arp(f)
	case 8:
		// 802.3 with or without SNAP.
		f = binary.BigEndian.AppendUint16(f, 40)
		if g.pick(2) == 0 {
			f = append(f, 0xaa, 0xaa, 3, 0, 0, 0)
			f = binary.BigEndian.AppendUint16(f, []uint16{0x0800, 0x88cc, 0x0200}[g.pick(3)])
		} else {
			f = append(f, 0x42, 0x42, 3)
		}
		return append(f, make([]byte, 40)...)
	}
	f = binary.BigEndian.AppendUint16(f, []uint16{0x88cc, 0x8847, 0x9000}[g.pick(3)])
	return append(f, make([]byte, 46)...)
}

func (g frameGen) tag(f []byte) []byte {
	tpid := []uint16{0x8100, 0x88a8}[g.pick(2)]
	tci := uint16(g.pick(8))<<13 | uint16(g.pick(2))<<12 | uint16([]int{0, 1, 10, 100, 4095}[g.pick(5)])
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(f, tpid), tci)
}

func (g frameGen) l4(proto uint8) []byte {
	switch proto {
	case packet.ProtoTCP:
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h, genPorts[g.pick(len(genPorts))])
		binary.BigEndian.PutUint16(h[2:], genPorts[g.pick(len(genPorts))])
		binary.BigEndian.PutUint16(h[12:], 5<<12|uint16(g.r.IntN(0x1000)))
		return h
	case packet.ProtoUDP, packet.ProtoSCTP:
		h := make([]byte, 12)
		binary.BigEndian.PutUint16(h, genPorts[g.pick(len(genPorts))])
		binary.BigEndian.PutUint16(h[2:], genPorts[g.pick(len(genPorts))])
		return h
	case packet.ProtoICMPv4, packet.ProtoICMPv6, packet.ProtoIGMP:
		return []byte{[]byte{0, 3, 8, 128, 129}[g.pick(5)], byte(g.pick(4)), 0, 0, 0, 0, 0, 0}
	}
	return make([]byte, 8)
}

func (g frameGen) ipv4(f []byte) []byte {
	f = binary.BigEndian.AppendUint16(f, 0x0800)
	proto := []uint8{packet.ProtoTCP, packet.ProtoUDP, packet.ProtoSCTP, packet.ProtoICMPv4, packet.ProtoIGMP, 47}[g.pick(6)]
	opts := g.pick(3) * 4
	l4 := g.l4(proto)
	h := make([]byte, 20+opts)
	h[0] = 0x40 | byte(5+opts/4)
	h[1] = byte(g.r.IntN(256))
	binary.BigEndian.PutUint16(h[2:], uint16(len(h)+len(l4)))
	frag := []uint16{0, 0, 0x4000, 0x2000, 0x2010, 0x0020}[g.pick(6)]
	binary.BigEndian.PutUint16(h[6:], frag)
	h[8], h[9] = byte([]int{1, 64, 255}[g.pick(3)]), proto
	copy(h[12:], genIPv4[g.pick(len(genIPv4))])
	copy(h[16:], genIPv4[g.pick(len(genIPv4))])
	return append(append(f, h...), l4...)
}

func (g frameGen) ipv6(f []byte) []byte {
	f = binary.BigEndian.AppendUint16(f, 0x86dd)
	proto := []uint8{packet.ProtoTCP, packet.ProtoUDP, packet.ProtoICMPv6, packet.ProtoICMPv4, 47}[g.pick(5)]
	l4 := g.l4(proto)
	if proto == packet.ProtoICMPv6 && (l4[0] == 135 || l4[0] == 136) {
		l4[0] = 128
	}
	h := make([]byte, 40)
	binary.BigEndian.PutUint32(h, 6<<28|uint32(g.r.IntN(256))<<20|uint32([]int{0, 1, 0x12345}[g.pick(3)]))
	binary.BigEndian.PutUint16(h[4:], uint16(len(l4)))
	h[6], h[7] = proto, byte([]int{1, 64, 255}[g.pick(3)])
	copy(h[8:], genIPv6[g.pick(len(genIPv6))])
	copy(h[24:], genIPv6[g.pick(len(genIPv6))])
	return append(append(f, h...), l4...)
}

func (g frameGen) arp(f []byte) []byte {
	f = binary.BigEndian.AppendUint16(f, []uint16{0x0806, 0x0806, 0x8035}[g.pick(3)])
	h := []byte{0, 1, 8, 0, 6, 4, 0, byte(1 + g.pick(2))}
	if g.pick(8) == 0 {
		h[2] = 0x86 // not Ethernet/IPv4: no fields in the key
	}
	if g.pick(8) == 0 {
		h[6] = 1 // opcode above 255 reads as 0
	}
	h = append(h, genMACs[g.pick(len(genMACs))]...)
	h = append(h, genIPv4[g.pick(len(genIPv4))]...)
	h = append(h, genMACs[g.pick(len(genMACs))]...)
	h = append(h, genIPv4[g.pick(len(genIPv4))]...)
	return append(append(f, h...), make([]byte, 18)...)
}

// ruleTexts are the matches the random rule sets draw from: every field
// the filter tests, with masks, prefixes and each protocol.
var ruleTexts = []string{
	"", "ip", "ipv6", "arp", "rarp", "tcp", "udp", "sctp", "icmp", "icmp6", "tcp6", "udp6",
	"dl_vlan=10", "dl_vlan=0", "vlan_tci=0", "vlan_tci=0x1000/0x1000", "dl_vlan_pcp=3", "vlan_tci=0x0064/0x0fff",
	"dl_src=00:01:02:03:04:05", "dl_dst=ff:ff:ff:ff:ff:ff", "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00",
	"dl_type=0x88cc", "dl_type=0x05ff", "dl_type=0x0800",
	"ip,nw_src=10.0.0.0/8", "ip,nw_dst=10.0.0.2", "ip,nw_src=10.0.0.0/255.255.255.254", "ip,nw_dst=192.168.0.0/16",
	"ip,nw_tos=0x20", "ip,nw_ecn=1", "ip,nw_ttl=64", "ip,ip_frag=no", "ip,ip_frag=first", "ip,ip_frag=later", "ip,ip_frag=not_later", "ip,ip_frag=yes",
	"ip,nw_proto=47", "ip,nw_proto=2", "tcp,tp_dst=5201", "tcp,tp_src=80", "udp,tp_dst=53", "tcp,tp_dst=0x1400/0xff00",
	"tcp,tcp_flags=+syn-ack", "tcp,tcp_flags=+ack", "tcp,tcp_flags=0x010/0x010", "udp,tp_src=0x1000/0xf000",
	"sctp,tp_dst=443", "icmp,icmp_type=8", "icmp,icmp_type=3,icmp_code=1", "icmp6,icmp_type=128",
	"ipv6,ipv6_src=2001:db8::/32", "ipv6,ipv6_dst=2001:db8::2", "ipv6,ipv6_src=2001:db8:0:1::/64", "ipv6,ipv6_label=0x12345",
	"ipv6,nw_ttl=255", "ipv6,nw_tos=0x10", "tcp6,tp_dst=5201", "udp6,tp_src=53",
	"arp,arp_op=1", "arp,arp_op=0", "arp,arp_spa=10.0.0.1", "arp,arp_tpa=10.0.0.0/24", "arp,arp_sha=00:01:02:03:04:05",
	"arp,arp_tha=aa:00:00:00:00:01", "arp,nw_src=10.0.0.1", "rarp,arp_op=2",
	"dl_vlan=10,tcp,tp_dst=80", "ip,dl_vlan=100,nw_src=10.1.2.3",
}

// TestFilterDifferential runs random rule sets, compiled, over random
// frames in x/net/bpf's VM (outer tags inline and offloaded), and compares
// every decision with internal/flow's matcher over packet.Parse's key.
func TestFilterDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	g := frameGen{r}
	frames := make([][]byte, 3000)
	for i := range frames {
		frames[i] = g.frame()
	}
	for set := range 400 {
		var texts []string
		for range 1 + r.IntN(4) {
			verb := []string{"accept ", "reject "}[r.IntN(2)]
			texts = append(texts, verb+ruleTexts[r.IntN(len(ruleTexts))])
		}
		rules := mustRules(t, texts...)
		ins, err := Compile(rules, Both, 0)
		if err != nil {
			t.Fatalf("%q: %v", texts, err)
		}
		for i, f := range frames[set%10*300 : set%10*300+300] {
			want := decide(rules, f)
			accel := i%2 == 0
			got := run(t, ins, f, 0, accel) != 0
			if got != want {
				t.Fatalf("rules %q, frame %x (accel %v): filter copies %v, matcher says %v\n%s", texts, f, accel, got, want, Disassemble(ins))
			}
		}
	}
}

// TestFilterEveryRuleAlone checks each rule text alone over every frame, so
// no rule's behaviour depends on the random sets reaching it.
func TestFilterEveryRuleAlone(t *testing.T) {
	g := frameGen{rand.New(rand.NewPCG(3, 4))}
	frames := make([][]byte, 2000)
	for i := range frames {
		frames[i] = g.frame()
	}
	for _, text := range ruleTexts {
		rules := mustRules(t, "accept "+text)
		ins, err := Compile(rules, Both, 0)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		hits := 0
		for i, f := range frames {
			want := decide(rules, f)
			if got := run(t, ins, f, 0, i%3 == 0) != 0; got != want {
				t.Fatalf("rule %q, frame %x: filter %v, matcher %v\n%s", text, f, got, want, Disassemble(ins))
			}
			if want {
				hits++
			}
		}
		if hits == 0 && text != "rarp,arp_op=2" && text != "dl_type=0x05ff" {
			t.Errorf("rule %q selected none of the frames: the generator does not exercise it", text)
		}
	}
}

func TestFilterDirection(t *testing.T) {
	f := frameGen{rand.New(rand.NewPCG(5, 6))}.ipv4(append(append([]byte{}, genMACs[0]...), genMACs[1]...))
	for _, c := range []struct {
		dir      Direction
		rules    []string
		pkttype  uint32
		want     bool
		snapWant uint32
	}{
		{Both, nil, 0, true, DefaultSnap}, {Both, nil, packetOutgoing, true, DefaultSnap},
		{In, nil, 0, true, DefaultSnap}, {In, nil, packetOutgoing, false, 0},
		{Out, nil, 0, false, 0}, {Out, nil, packetOutgoing, true, DefaultSnap},
		{In, []string{"accept ip"}, 0, true, DefaultSnap}, {In, []string{"accept ip"}, packetOutgoing, false, 0},
		{Out, []string{"accept ip"}, 3, false, 0}, {Out, []string{"accept ip"}, packetOutgoing, true, DefaultSnap},
	} {
		ins, err := Compile(mustRules(t, c.rules...), c.dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := run(t, ins, f, c.pkttype, false); got != c.snapWant {
			t.Errorf("dir %v rules %q pkttype %d: returned %d, want %d", c.dir, c.rules, c.pkttype, got, c.snapWant)
		}
	}
}

func TestFilterSnaplen(t *testing.T) {
	ins, err := Compile(nil, Both, 96)
	if err != nil {
		t.Fatal(err)
	}
	if got := run(t, ins, make([]byte, 200), 0, false); got != 96 {
		t.Errorf("snaplen 96: filter keeps %d bytes", got)
	}
}

func TestFilterOrderFirstMatchDecides(t *testing.T) {
	g := frameGen{rand.New(rand.NewPCG(7, 8))}
	var tcp5201, other []byte
	for tcp5201 == nil || other == nil {
		f := g.frame()
		var k packet.Key
		_ = packet.Parse(f, 0, &k, nil)
		switch {
		case k.DlType == 0x0800 && k.NwProto == 6 && k.TpDst == 5201 && k.NwSrc == [4]byte{10, 0, 0, 1}:
			tcp5201 = f
		case k.DlType == 0x0800 && k.NwProto == 6 && k.NwSrc == [4]byte{10, 0, 0, 1}:
			other = f
		}
	}
	for _, c := range []struct {
		rules               []string
		want5201, wantOther bool
	}{
		{[]string{"accept tcp,tp_dst=5201", "reject ip,nw_src=10.0.0.0/8"}, true, false},
		{[]string{"reject ip,nw_src=10.0.0.0/8", "accept tcp,tp_dst=5201"}, false, false},
		{[]string{"reject tcp,tp_dst=5201", "accept"}, false, true},
		{[]string{"accept tcp,tp_dst=5201"}, true, false},
		{nil, true, true},
	} {
		ins, err := Compile(mustRules(t, c.rules...), Both, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := run(t, ins, tcp5201, 0, false) != 0; got != c.want5201 {
			t.Errorf("%q: tcp 5201 copied %v, want %v", c.rules, got, c.want5201)
		}
		if got := run(t, ins, other, 0, false) != 0; got != c.wantOther {
			t.Errorf("%q: other tcp copied %v, want %v", c.rules, got, c.wantOther)
		}
	}
}

func TestRuleErrors(t *testing.T) {
	for _, c := range []struct{ rule, word, msg string }{
		{"allow tcp", "allow", "accept or reject"},
		{"accept tcp,tp_dst=http", "tp_dst=http", ""},
		{"accept tcp,ct_state=+est", "ct_state", "conntrack"},
		{"accept reg0=1", "reg0", "inside a bridge"},
		{"accept in_port=1", "in_port", "--source"},
		{"accept tun_id=5", "tun_id", "tunnel"},
		{"accept nw_src=10.0.0.1", "nw_src=10.0.0.1", "prerequisites"},
		{"reject ipv6,nd_target=::1,icmp6,icmp_type=135", "nd_target", "neighbor"},
	} {
		_, err := ParseRule(c.rule)
		if err == nil {
			t.Errorf("%q accepted", c.rule)
			continue
		}
		re, ok := err.(*RuleError)
		if !ok {
			t.Errorf("%q: %T %v", c.rule, err, err)
			continue
		}
		if re.Word != c.word || !strings.Contains(re.Error(), c.msg) {
			t.Errorf("%q: marks %q (want %q): %v", c.rule, re.Word, c.word, err)
		}
		if re.Word != "" && c.rule[re.At:re.At+len(re.Word)] != re.Word {
			t.Errorf("%q: mark at %d is not on %q", c.rule, re.At, re.Word)
		}
	}
}

func TestCompileLimits(t *testing.T) {
	texts := make([]string, MaxRules+1)
	for i := range texts {
		texts[i] = "accept tcp"
	}
	if _, err := ParseRules(texts); err == nil {
		t.Error("65 rules accepted")
	}
	// The largest rules at the limit still compile under the kernel's limit.
	big := "accept tcp6,ipv6_src=2001:db8::1/120,ipv6_dst=2001:db8::2/120,tp_src=0x1000/0xf000,tp_dst=5201,tcp_flags=+syn,dl_vlan=5,dl_src=00:01:02:03:04:05/ff:ff:ff:00:00:00,dl_dst=00:01:02:03:04:05,nw_ttl=64,ipv6_label=5"
	for i := range texts[:MaxRules] {
		texts[i] = big
	}
	rules := mustRules(t, texts[:MaxRules]...)
	ins, err := Compile(rules, In, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) > maxInstructions {
		t.Fatalf("%d instructions", len(ins))
	}
	if _, err := bpf.Assemble(ins); err != nil {
		t.Fatal(err)
	}
}

func FuzzFilter(f *testing.F) {
	g := frameGen{rand.New(rand.NewPCG(9, 10))}
	for i := range 20 {
		f.Add(g.frame(), uint8(i))
	}
	f.Fuzz(func(t *testing.T, frame []byte, ri uint8) {
		if len(frame) < 64 {
			return
		}
		rules := mustRules(t, "reject "+ruleTexts[int(ri)%len(ruleTexts)], "accept "+ruleTexts[int(ri/2)%len(ruleTexts)])
		ins, err := Compile(rules, Both, 0)
		if err != nil {
			t.Fatal(err)
		}
		// Arbitrary bytes can be truncated or malformed, where the filter
		// and the parser may differ (the filter leaves what it cannot
		// read); it must never fail to run.
		_ = run(t, ins, frame, 0, ri%2 == 0)
	})
}
