package ofproto

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gvs/internal/flow"
	"gvs/internal/packet"
)

// aclRules builds an ACL-style rule set of n rules ahead of a catch-all:
// a tenth L2 (in_port and exact dl_src), half L3 (nw_src and/or nw_dst
// under /8 to /32 prefixes), the rest L4 (tcp or udp, a destination
// prefix, an exact or masked destination port). Priorities fall with the
// rule's position, as an ordered ACL's do (in groups once n exceeds the
// 16-bit range).
func aclRules(n int, r *rand.Rand) []*flow.Flow {
	prefixes := []int{8, 16, 20, 24, 28, 32}
	portMasks := []uint16{0xffff, 0xfff0, 0xff00}
	ip := func(bits int) ([4]byte, [4]byte) {
		m := uint32(0xffffffff) << (32 - bits)
		v := (0x0a000000 | r.Uint32()&0x00ffffff) & m
		return be32(v), be32(m)
	}
	out := make([]*flow.Flow, 0, n+1)
	for i := range n {
		var v, m packet.Key
		switch x := r.IntN(10); {
		case x == 0:
			v.InPort, m.InPort = uint32(1+r.IntN(16)), ^uint32(0)
			v.DlSrc = [6]byte{0x02, 0, byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}
			m.DlSrc = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		case x <= 5:
			v.DlType, m.DlType = 0x0800, 0xffff
			switch r.IntN(3) {
			case 0:
				v.NwSrc, m.NwSrc = ip(prefixes[r.IntN(len(prefixes))])
			case 1:
				v.NwDst, m.NwDst = ip(prefixes[r.IntN(len(prefixes))])
			default:
				v.NwSrc, m.NwSrc = ip(prefixes[r.IntN(len(prefixes))])
				v.NwDst, m.NwDst = ip(prefixes[r.IntN(len(prefixes))])
			}
		default:
			v.DlType, m.DlType = 0x0800, 0xffff
			v.NwProto, m.NwProto = []uint8{6, 17}[r.IntN(2)], 0xff
			v.NwDst, m.NwDst = ip(prefixes[r.IntN(len(prefixes))])
			m.TpDst = portMasks[r.IntN(len(portMasks))]
			v.TpDst = uint16(r.IntN(65536)) & m.TpDst
		}
		prio := uint16(1 + (n-i)*60000/n)
		out = append(out, &flow.Flow{Priority: prio, Match: flow.NewMatch(v, m), Actions: []flow.Action{}})
	}
	out = append(out, &flow.Flow{Priority: 0, Match: flow.NewMatch(packet.Key{}, packet.Key{}),
		Actions: []flow.Action{flow.Output{Port: flow.PortNormal}}})
	return out
}

func be32(v uint32) [4]byte { return [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

// aclKeys builds traffic for an ACL: half the keys aimed at a random rule
// (its wildcarded bits random), half random TCP/UDP packets in 10/8,
// which mostly fall through to the catch-all.
func aclKeys(flows []*flow.Flow, n int, r *rand.Rand) []packet.Key {
	keys := make([]packet.Key, n)
	for i := range keys {
		k := &keys[i]
		k.InPort = uint32(1 + r.IntN(16))
		k.DlType = 0x0800
		k.NwProto = []uint8{6, 17}[r.IntN(2)]
		k.NwSrc = be32(0x0a000000 | r.Uint32()&0x00ffffff)
		k.NwDst = be32(0x0a000000 | r.Uint32()&0x00ffffff)
		k.TpSrc, k.TpDst = uint16(1024+r.IntN(60000)), uint16(r.IntN(65536))
		if i%2 == 0 {
			f := flows[r.IntN(len(flows)-1)]
			v, m := f.Match.Value(), f.Match.Mask()
			kw, vw, mw := words(k), words(&v), words(&m)
			for j := range kw {
				kw[j] = kw[j]&^mw[j] | vw[j]
			}
		}
	}
	return keys
}

func newACLTables(b *testing.B, n int) (*Tables, []packet.Key) {
	r := rand.New(rand.NewPCG(uint64(n), 42))
	flows := aclRules(n, r)
	tb := NewTables(TablesOptions{})
	for _, f := range flows {
		if err := tb.Add(f); err != nil {
			b.Fatal(err)
		}
	}
	return tb, aclKeys(flows, 4096, r)
}

// BenchmarkClassifierLookup is one table lookup, with the wildcards a
// flow cache needs, in an ACL of 1k, 10k or 100k rules.
func BenchmarkClassifierLookup(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			tb, keys := newACLTables(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			var wc packet.Key
			for i := 0; b.Loop(); i++ {
				wc = packet.Key{}
				if tb.Lookup(0, &keys[i&4095], &wc) == nil {
					b.Fatal("miss")
				}
			}
			b.ReportMetric(float64(len(*tb.tables[0].order.Load())), "subtables")
		})
	}
}

// BenchmarkFlowSetup is what a flow cache miss costs in the tables: a
// new 5-tuple looked up with its wildcards, and the masked key a cache
// would install, through a 10k-rule ACL. setups/s is the rate.
func BenchmarkFlowSetup(b *testing.B) {
	tb, keys := newACLTables(b, 10_000)
	b.ReportAllocs()
	b.ResetTimer()
	var sink packet.Key
	for i := 0; b.Loop(); i++ {
		k := keys[i&4095]
		k.TpSrc = uint16(i) // a new 5-tuple each time
		var wc packet.Key
		tb.Lookup(0, &k, &wc)
		kw, ww, sw := words(&k), words(&wc), words(&sink)
		for j := range kw {
			sw[j] = kw[j] & ww[j]
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "setups/s")
}

// BenchmarkTablesAdd is the flow_mod rate: adding one rule of an ACL to
// tables that already hold 10k.
func BenchmarkTablesAdd(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 42))
	flows := aclRules(10_000, r)
	extra := aclRules(100_000, r)
	tb := NewTables(TablesOptions{})
	for _, f := range flows {
		if err := tb.Add(f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		f := extra[i%len(extra)]
		if err := tb.Add(f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTablesAddAdversarial fills a table with 10,000 flows that
// each have a mask of their own, or that all share one match at
// different priorities, in rising priority (each flow a new highest):
// the shapes that made adding flows quadratic with a large constant.
func BenchmarkTablesAddAdversarial(b *testing.B) {
	for _, shape := range []struct{ name, format string }{
		{"masks", "priority=%[1]d,tcp,tp_dst=0/0x%[1]x,actions=drop"},
		{"same-match", "priority=%d,ip,nw_dst=10.0.0.1,actions=drop"},
	} {
		flows := make([]*flow.Flow, 10_000)
		for i := range flows {
			f, err := flow.ParseFlow(fmt.Sprintf(shape.format, i+1), flow.ParseOptions{})
			if err != nil {
				b.Fatal(err)
			}
			flows[i] = f
		}
		b.Run(shape.name, func(b *testing.B) {
			for b.Loop() {
				tb := NewTables(TablesOptions{})
				for _, f := range flows {
					if err := tb.Add(f); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
