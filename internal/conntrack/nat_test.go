package conntrack

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"gvs/internal/packet"
)

// checkSums fails unless the frame's IPv4 header and transport checksums
// are right.
func checkSums(t *testing.T, frame []byte) {
	t.Helper()
	var key packet.Key
	var off packet.Offsets
	if err := packet.Parse(frame, 1, &key, &off); err != nil {
		t.Fatal(err)
	}
	l3, l4 := frame[off.L3:off.L3End], frame[off.L4:off.L3End]
	var src, dst netip.Addr
	if key.DlType == packet.EtherTypeIPv4 {
		if c := csum(l3[:20], 0); c != 0 {
			t.Fatalf("IPv4 header checksum wrong (%#x)", c)
		}
		src, dst = netip.AddrFrom4(key.NwSrc), netip.AddrFrom4(key.NwDst)
	} else {
		src, dst = netip.AddrFrom16(key.IPv6Src), netip.AddrFrom16(key.IPv6Dst)
	}
	var init uint32
	if key.NwProto != packet.ProtoICMPv4 {
		init = pseudo(src, dst, key.NwProto, len(l4))
	}
	if c := csum(l4, init); c != 0 {
		t.Fatalf("transport checksum wrong (%#x)", c)
	}
}

func natAction(kind NATKind, lo, hi string, plo, phi uint16) Action {
	a := Action{Commit: true, HasNAT: true, NAT: NAT{Kind: kind, AddrMin: netip.MustParseAddr(lo), PortMin: plo, PortMax: phi}}
	a.NAT.AddrMax = a.NAT.AddrMin
	if hi != "" {
		a.NAT.AddrMax = netip.MustParseAddr(hi)
	}
	return a
}

func tuple4(t *testing.T, frame []byte) string {
	t.Helper()
	var key packet.Key
	var off packet.Offsets
	if err := packet.Parse(frame, 1, &key, &off); err != nil {
		t.Fatal(err)
	}
	if key.DlType == packet.EtherTypeIPv6 {
		return fmt.Sprintf("%v:%d>%v:%d", netip.AddrFrom16(key.IPv6Src), key.TpSrc, netip.AddrFrom16(key.IPv6Dst), key.TpDst)
	}
	return fmt.Sprintf("%v:%d>%v:%d", netip.AddrFrom4(key.NwSrc), key.TpSrc, netip.AddrFrom4(key.NwDst), key.TpDst)
}

// TestSNAT: the source of the original direction is translated, answers
// are translated back, both with correct checksums, and the dump shows
// the translated reply tuple.
func TestSNAT(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		tr := New(Config{})
		c := newConv()
		natTo := "172.16.0.1"
		if v6 {
			c.l, c.r = netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd01::2")
			natTo = "fd02::1"
		}
		a := natAction(NATSrc, natTo, "", 0, 0)
		syn := c.fromL(fSYN, nil, true)
		r := exec(t, tr, syn, a, sec)
		if r.State != StateTrk|StateNew|StateSNAT || !r.Rewrote {
			t.Fatalf("syn: %s rewrote %v", stateString(r.State), r.Rewrote)
		}
		checkSums(t, syn)
		if got, want := tuple4(t, syn), fmt.Sprintf("%s:1024>%v:2048", natTo, c.r); got != want {
			t.Fatalf("translated syn %s, want %s", got, want)
		}
		// The answer comes to the translated address.
		back := seg{src: c.r, dst: netip.MustParseAddr(natTo), sport: 2048, dport: 1024, seq: c.rseq, ack: c.lseq, flags: fSYN | fACK, srcMAC: macR, dstMAC: macL}
		c.rseq++
		bf := back.frame()
		r = exec(t, tr, bf, Action{HasNAT: true}, sec)
		if r.State != StateTrk|StateEst|StateRpl|StateDNAT || !r.Rewrote {
			t.Fatalf("syn-ack: %s", stateString(r.State))
		}
		checkSums(t, bf)
		if got, want := tuple4(t, bf), fmt.Sprintf("%v:2048>%v:1024", c.r, c.l); got != want {
			t.Fatalf("translated syn-ack %s, want %s", got, want)
		}
		ack := c.fromL(fACK, nil, true)
		if r := exec(t, tr, ack, Action{HasNAT: true}, sec); r.State != StateTrk|StateEst|StateSNAT {
			t.Fatalf("ack: %s", stateString(r.State))
		}
		checkSums(t, ack)
		// Without nat in the action the packet is left alone.
		plain := c.fromL(fACK, nil, false)
		if r := exec(t, tr, plain, Action{}, sec); r.Rewrote || r.State != StateTrk|StateEst {
			t.Fatalf("no nat: %s rewrote %v", stateString(r.State), r.Rewrote)
		}
		lines := dumpLines(tr, sec)
		want := fmt.Sprintf("tcp,orig=(src=%v,dst=%v,sport=1024,dport=2048),reply=(src=%v,dst=%s,sport=2048,dport=1024),protoinfo=(state=ESTABLISHED)", c.l, c.r, c.r, natTo)
		if len(lines) != 1 || lines[0] != want {
			t.Fatalf("dump %q, want %q", lines, want)
		}
		if st := tr.Stats(); st.Conns != 1 {
			t.Fatalf("stats %+v", st)
		}
		if n := tr.Flush(nil, nil); n != 1 {
			t.Fatalf("flush removed %d", n)
		}
		for i := range tr.shards {
			if s := &tr.shards[i]; s.used != 0 || s.n != 0 {
				t.Fatalf("shard %d not empty after flush", i)
			}
		}
	}
}

// TestSNATPortClash: two clients with the same source port behind one
// address get distinct ports; the second keeps its port class.
func TestSNATPortClash(t *testing.T) {
	tr := New(Config{})
	a := natAction(NATSrc, "172.16.0.1", "", 0, 0)
	var ports []string
	for _, cl := range []string{"192.168.0.2", "192.168.0.3", "192.168.0.4"} {
		c := newConv()
		c.l = netip.MustParseAddr(cl)
		f := c.fromL(fSYN, nil, true)
		if r := exec(t, tr, f, a, sec); r.State&StateSNAT == 0 || r.Drop {
			t.Fatalf("%s: %s", cl, stateString(r.State))
		}
		checkSums(t, f)
		ports = append(ports, tuple4(t, f))
	}
	if ports[0] != "172.16.0.1:1024>10.0.0.2:2048" || ports[1] == ports[0] || ports[2] == ports[1] || ports[2] == ports[0] {
		t.Fatalf("translated tuples %q", ports)
	}
	// A range of one port: the second client finds none free.
	tr2 := New(Config{})
	b := natAction(NATSrc, "172.16.0.1", "", 3000, 3000)
	for i, cl := range []string{"192.168.0.2", "192.168.0.3"} {
		c := newConv()
		c.l = netip.MustParseAddr(cl)
		r := exec(t, tr2, c.fromL(fSYN, nil, true), b, sec)
		if r.Drop != (i == 1) {
			t.Fatalf("client %d: drop %v", i, r.Drop)
		}
	}
	if st := tr2.Stats(); st.NATFailed != 1 || st.Conns != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestDNAT: the destination goes to a backend picked from a range and a
// port range; answers come back from the original destination.
func TestDNAT(t *testing.T) {
	tr := New(Config{})
	a := natAction(NATDst, "10.1.0.10", "10.1.0.12", 8080, 8081)
	u := udpFrame("192.168.0.2", "10.0.0.100", 5000, 80)
	r := exec(t, tr, u, a, sec)
	if r.State != StateTrk|StateNew|StateDNAT || r.OrigDst != netip.MustParseAddr("10.0.0.100") || r.OrigDport != 80 {
		t.Fatalf("first: %+v", r)
	}
	checkSums(t, u)
	fwd := tuple4(t, u)
	var backend string
	var bport int
	if _, err := fmt.Sscanf(strings.Split(fwd, ">")[1], "%s", &backend); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(backend, ":")
	fmt.Sscan(port, &bport)
	if !strings.HasPrefix(host, "10.1.0.1") || host < "10.1.0.10" || host > "10.1.0.12" || bport < 8080 || bport > 8081 {
		t.Fatalf("translated to %s", fwd)
	}
	back := udpFrame(host, "192.168.0.2", uint16(bport), 5000)
	r = exec(t, tr, back, Action{HasNAT: true}, sec)
	if r.State != StateTrk|StateEst|StateRpl|StateSNAT {
		t.Fatalf("answer: %s", stateString(r.State))
	}
	checkSums(t, back)
	if got := tuple4(t, back); got != "10.0.0.100:80>192.168.0.2:5000" {
		t.Fatalf("answer translated to %s", got)
	}
}

// TestICMPSNAT: an echo's id may change under SNAT; the reply gets the
// original id back.
func TestICMPSNAT(t *testing.T) {
	tr := New(Config{})
	a := natAction(NATSrc, "172.16.0.1", "", 0, 0)
	for i, cl := range []string{"192.168.0.2", "192.168.0.3"} {
		f := icmpFrame(cl, "10.0.0.2", 8, 0, 7, nil)
		r := exec(t, tr, f, a, sec)
		if r.State != StateTrk|StateNew|StateSNAT {
			t.Fatalf("%s: %s", cl, stateString(r.State))
		}
		checkSums(t, f)
		id := binary.BigEndian.Uint16(f[14+20+4:])
		if (i == 0) != (id == 7) {
			t.Fatalf("client %d: id %d", i, id)
		}
		rep := icmpFrame("10.0.0.2", "172.16.0.1", 0, 0, id, nil)
		r = exec(t, tr, rep, Action{HasNAT: true}, sec)
		if r.State != StateTrk|StateEst|StateRpl|StateDNAT {
			t.Fatalf("reply %d: %s", i, stateString(r.State))
		}
		checkSums(t, rep)
		if got := binary.BigEndian.Uint16(rep[14+20+4:]); got != 7 || tuple4(t, rep) != "10.0.0.2:0>"+cl+":0" {
			t.Fatalf("reply %d translated to %s id %d", i, tuple4(t, rep), got)
		}
	}
}

// TestConcurrent runs port threads on shared connections, NATed and not,
// with a sweeper and flushes, for the race detector (go test -race).
func TestConcurrent(t *testing.T) {
	tr := New(Config{Shards: 4})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				cl := fmt.Sprintf("192.168.%d.%d", g, i%20)
				f := udpFrame(cl, "10.0.0.2", uint16(1000+i%7), 53)
				a := Action{Commit: true}
				if i%3 == 0 {
					a = natAction(NATSrc, "172.16.0.1", "172.16.0.4", 0, 0)
				}
				var key packet.Key
				var off packet.Offsets
				if packet.Parse(f, 1, &key, &off) != nil {
					t.Error("parse")
					return
				}
				r := tr.Execute(f, &key, &off, &a, int64(i)*sec/10)
				if r.State&StateTrk == 0 {
					t.Error("untracked")
					return
				}
				back := udpFrame("10.0.0.2", cl, 53, uint16(1000+i%7))
				exec(t, tr, back, Action{HasNAT: true}, int64(i)*sec/10)
				if i%50 == 0 {
					tr.Sweep(int64(i) * sec / 10)
					tr.Dump(nil, true, func(Entry) {})
				}
			}
		}()
	}
	wg.Wait()
	tr.Flush(nil, nil)
	if st := tr.Stats(); st.Conns != 0 {
		t.Fatalf("after flush: %+v", st)
	}
}

// TestNATRecirculated: a packet translated by ct(nat,table=N) meets a
// second ct(commit,nat) after recirculation: it is found by the original
// tuple the first pass reported, and not translated twice.
func TestNATRecirculated(t *testing.T) {
	tr := New(Config{})
	c := newConv()
	exec(t, tr, c.fromL(fSYN, nil, true), natAction(NATSrc, "172.16.0.1", "", 0, 0), sec)
	f := c.fromL(fSYN, nil, false) // retransmitted SYN
	var key packet.Key
	var off packet.Offsets
	if err := packet.Parse(f, 1, &key, &off); err != nil {
		t.Fatal(err)
	}
	r := tr.Execute(f, &key, &off, &Action{HasNAT: true}, sec)
	if r.State != StateTrk|StateNew|StateSNAT || !r.Rewrote {
		t.Fatalf("first pass: %s", stateString(r.State))
	}
	if err := packet.Parse(f, 1, &key, &off); err != nil {
		t.Fatal(err)
	}
	setKeyCt(&key, &r)
	r2 := tr.Execute(f, &key, &off, &Action{Commit: true, HasNAT: true, NAT: NAT{Kind: NATSrc, AddrMin: netip.MustParseAddr("172.16.0.1"), AddrMax: netip.MustParseAddr("172.16.0.1")}, SetMark: true, Mark: 3, MarkMask: 3}, sec)
	if r2.State != r.State || r2.Rewrote || r2.Mark != 3 {
		t.Fatalf("second pass: %s rewrote %v mark %d", stateString(r2.State), r2.Rewrote, r2.Mark)
	}
	if got := tuple4(t, f); got != "172.16.0.1:1024>10.0.0.2:2048" {
		t.Fatalf("packet now %s", got)
	}
	if n := len(dumpLines(tr, sec)); n != 1 {
		t.Fatalf("%d entries", n)
	}
}

// TestNATICMPError: a port unreachable about an SNATed UDP packet goes
// back to the client with the quote translated back: the quote equals the
// packet the client sent, byte for byte, and the checksums are right.
func TestNATICMPError(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		tr := New(Config{})
		cl, srv, nat, hl := "192.168.0.2", "10.0.0.2", "172.16.0.1", 20
		if v6 {
			cl, srv, nat, hl = "fd00::2", "fd01::2", "fd02::1", 40
		}
		out := udpFrame(cl, srv, 5000, 53)
		sent := append([]byte(nil), out[14:14+hl+8]...)
		r := exec(t, tr, out, natAction(NATSrc, nat, "", 0, 0), sec)
		if r.State&StateSNAT == 0 {
			t.Fatalf("v6=%v: not translated: %s", v6, stateString(r.State))
		}
		typ := uint8(3)
		if v6 {
			typ = 1
		}
		errf := icmpFrame(srv, nat, typ, 3, 0, out[14:14+hl+8])
		r = exec(t, tr, errf, Action{HasNAT: true}, sec)
		if r.State != StateTrk|StateRel|StateRpl|StateDNAT || !r.Rewrote {
			t.Fatalf("v6=%v: error: %s", v6, stateString(r.State))
		}
		checkSums(t, errf)
		if got := tuple4(t, errf); !strings.Contains(got, ">"+cl+":") {
			t.Fatalf("v6=%v: error sent to %s", v6, got)
		}
		quote := errf[14+hl+8:]
		if string(quote) != string(sent) {
			t.Fatalf("v6=%v: quote\n%x, want\n%x", v6, quote, sent)
		}
	}
}
