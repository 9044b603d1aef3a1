package span

import (
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// loadEBPF loads the tc program of rules with no destination, or skips
// the test where this process may not load eBPF programs.
func loadEBPF(t testing.TB, rules []Rule) *tcProg {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load eBPF programs")
	}
	insns, err := EBPFProgram(rules, EBPFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := newTCProg([2]asm.Instructions{insns, insns}, false)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Fatalf("verifier: %+v\n%v", ve, insns)
		}
		t.Fatalf("%v\n%v", err, insns)
	}
	return p
}

// loadSampling loads the tc program of rules that hands the selected
// packets to gvsd (the perf event array), or skips as loadEBPF does.
func loadSampling(t testing.TB, rules []Rule) *tcProg {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load eBPF programs")
	}
	var insns [2]asm.Instructions
	for i, d := range []Direction{In, Out} {
		var err error
		if insns[i], err = EBPFProgram(rules, EBPFOptions{Sample: true, Snap: MaxSample, Dir: d}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := newTCProg(insns, true)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runEBPF runs the program over frame with BPF_PROG_TEST_RUN and reports
// whether it selected it (its counter moved), checking that it returned
// TC_ACT_UNSPEC and left the frame alone.
func runEBPF(t testing.TB, p *tcProg, frame []byte) bool {
	t.Helper()
	before := p.counters()
	in := frame
	if len(in) < 14 {
		in = append(append([]byte{}, frame...), make([]byte, 14-len(frame))...)
	}
	ret, out, err := p.progs[0].Test(in)
	if err != nil {
		t.Fatalf("test run: %v", err)
	}
	if int32(ret) != tcActUnspec {
		t.Fatalf("program returned %d, want TC_ACT_UNSPEC (-1)", int32(ret))
	}
	if string(out) != string(in) {
		t.Fatalf("program changed the packet:\n% x\nwant\n% x", out, in)
	}
	after := p.counters()
	if after[ctrSeen] != before[ctrSeen]+1 {
		t.Fatalf("seen went from %d to %d over one packet", before[ctrSeen], after[ctrSeen])
	}
	return after[ctrSelected] != before[ctrSelected]
}

// TestEBPFEveryRuleAlone runs each rule text, translated to eBPF and run
// by the kernel, over generated frames (tags inline) and compares every
// decision with internal/flow's matcher over packet.Parse's key.
func TestEBPFEveryRuleAlone(t *testing.T) {
	g := frameGen{rand.New(rand.NewPCG(3, 4))}
	frames := make([][]byte, 300)
	for i := range frames {
		frames[i] = g.frame()
	}
	for _, text := range ruleTexts {
		rules := mustRules(t, "accept "+text)
		p := loadEBPF(t, rules)
		for _, f := range frames {
			if got, want := runEBPF(t, p, f), decide(rules, f); got != want {
				t.Fatalf("rule %q, frame %x: eBPF selects %v, matcher %v", text, f, got, want)
			}
		}
		p.close()
	}
}

// TestEBPFDifferential does the same with random ordered sets of accept
// and reject rules.
func TestEBPFDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	g := frameGen{r}
	frames := make([][]byte, 1000)
	for i := range frames {
		frames[i] = g.frame()
	}
	for set := range 60 {
		var texts []string
		for range 1 + r.IntN(4) {
			verb := []string{"accept ", "reject "}[r.IntN(2)]
			texts = append(texts, verb+ruleTexts[r.IntN(len(ruleTexts))])
		}
		rules := mustRules(t, texts...)
		p := loadEBPF(t, rules)
		for _, f := range frames[set%10*100 : set%10*100+100] {
			if got, want := runEBPF(t, p, f), decide(rules, f); got != want {
				t.Fatalf("rules %q, frame %x: eBPF selects %v, matcher says %v", texts, f, got, want)
			}
		}
		p.close()
	}
}

// TestEBPFOrderCIDRPortsIPv6VLAN names the cases the issue lists, so
// that a failure says which.
func TestEBPFOrderCIDRPortsIPv6VLAN(t *testing.T) {
	g := frameGen{rand.New(rand.NewPCG(9, 10))}
	for _, c := range []struct {
		rules []string
		what  string
	}{
		{[]string{"accept tcp,tp_dst=5201", "reject ip,nw_src=10.0.0.0/8"}, "order, accept first"},
		{[]string{"reject ip,nw_src=10.0.0.0/8", "accept tcp,tp_dst=5201"}, "order, reject first"},
		{[]string{"accept ip,nw_src=10.0.0.0/255.255.255.254"}, "CIDR"},
		{[]string{"accept tcp,tp_dst=0x1400/0xff00"}, "port mask"},
		{[]string{"accept ipv6,ipv6_src=2001:db8:0:1::/64", "accept tcp6,tp_dst=5201"}, "IPv6"},
		{[]string{"accept dl_vlan=10,tcp,tp_dst=80", "accept vlan_tci=0x1000/0x1000"}, "VLAN"},
		{nil, "no rules"},
	} {
		rules := mustRules(t, c.rules...)
		p := loadEBPF(t, rules)
		hits := 0
		for range 2000 {
			f := g.frame()
			got, want := runEBPF(t, p, f), decide(rules, f)
			if got != want {
				t.Fatalf("%s %q, frame %x: eBPF selects %v, matcher says %v", c.what, c.rules, f, got, want)
			}
			if want {
				hits++
			}
		}
		p.close()
		if hits == 0 {
			t.Errorf("%s: no frame selected: the case tests nothing", c.what)
		}
	}
}

// The clones carry --mark, and the original packet keeps its own: the
// program sets skb->mark around the clones and puts it back. With its
// destination absent the copy is counted lost.
func TestEBPFMarkRestored(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to load eBPF programs")
	}
	insns, err := EBPFProgram(nil, EBPFOptions{Clone: []int{0}, Mark: 7, HasMark: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := newTCProg([2]asm.Instructions{insns, insns}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	var ctxIn, ctxOut [48]uint32 // struct __sk_buff
	ctxIn[skbMark/4] = 5
	ret, err := p.progs[0].Run(&ebpf.RunOptions{Data: ipFrame4UDP(1), Context: ctxIn[:], ContextOut: ctxOut[:]})
	if err != nil {
		t.Fatal(err)
	}
	if int32(ret) != tcActUnspec || ctxOut[skbMark/4] != 5 {
		t.Fatalf("returned %d with mark %d: want -1 and the packet's own mark 5", int32(ret), ctxOut[skbMark/4])
	}
	if c := p.counters(); c[ctrSelected] != 1 || c[ctrDropped(0)] != 1 || c[ctrSent(0)] != 0 {
		t.Fatalf("counters %v: want 1 selected and 1 lost for the absent destination", c)
	}
	dump := insns.String()
	for _, want := range []string{"FnCloneRedirect", "MovImm32 dst: r1 imm: 7"} {
		if !strings.Contains(dump, want) {
			t.Errorf("program has no %q:\n%s", want, dump)
		}
	}
}

// BenchmarkEBPFProgram measures what the program costs a packet, in the
// kernel (BPF_PROG_TEST_RUN, the kernel's own clock, ns per run): the
// 64-byte UDP frame of bench/span.sh's measured flow, which a filter
// that selects the 1 % side flow (udp,tp_dst=5202) leaves; "trivial" is
// a program that only returns, the floor of the measurement; "reject
// tcp,tp_dst=..." shows a longer rule list. The clones of selected
// packets are not in it (the destination's cost, as tc mirred's).
func BenchmarkEBPFProgram(b *testing.B) {
	frame := ipFrame4UDP(5201)
	frame = append(frame, make([]byte, 60-len(frame))...) // 64 bytes with the FCS
	for _, c := range []struct {
		name  string
		rules []string
	}{
		{"trivial", nil},
		{"filter-1pc-not-selected", []string{"accept udp,tp_dst=5202"}},
		{"four-rules-not-selected", []string{"reject tcp,tp_dst=22", "reject ip,nw_src=10.0.0.0/8", "accept udp,tp_dst=0x2000/0xff00,nw_dst=192.0.2.0/25", "accept icmp"}},
		// The program of span-1pc-pcap: sampling after the filter.
		{"filter-1pc-sampling-not-selected", []string{"accept udp,tp_dst=5202"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var p *tcProg
			if c.name == "trivial" {
				if os.Geteuid() != 0 {
					b.Skip("needs root")
				}
				var err error
				trivial := asm.Instructions{asm.Mov.Imm(asm.R0, tcActUnspec), asm.Return()}
				p, err = newTCProg([2]asm.Instructions{trivial, trivial}, false)
				if err != nil {
					b.Fatal(err)
				}
			} else if strings.Contains(c.name, "sampling") {
				p = loadSampling(b, mustRules(b, c.rules...))
			} else {
				p = loadEBPF(b, mustRules(b, c.rules...))
				if runEBPF(b, p, frame) {
					b.Fatal("the frame is selected: the benchmark wants one that is not")
				}
			}
			defer p.close()
			b.ResetTimer()
			_, d, err := p.progs[0].Benchmark(frame, b.N, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(d.Nanoseconds()), "kernel-ns/pkt")
		})
	}
}

// TestEBPFLoadBytesPath checks the loads of bytes outside the packet's
// linear part (bpf_skb_load_bytes), which test runs never need: every
// rule again with direct loads left out.
func TestEBPFLoadBytesPath(t *testing.T) {
	directLoads = false
	defer func() { directLoads = true }()
	insns, err := EBPFProgram(mustRules(t, "accept tcp,tp_dst=80"), EBPFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(insns.String(), "LdXMemW dst: r1 src: r6 off: 76") {
		t.Fatal("directLoads off, and the program still reads skb->data")
	}
	TestEBPFEveryRuleAlone(t)
}
