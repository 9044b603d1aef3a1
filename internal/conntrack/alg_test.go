package conntrack

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gvs/internal/packet"
)

// An FTP conversation through the NAT tutorial's flows: packets from the
// inside run ct(commit,nat(...),alg=ftp) (the tracker commits only the
// first), packets from the outside ct(nat).

type ftpNet struct {
	t   *testing.T
	tr  *Tracker
	out Action // the inside's action
	now int64
}

// roomy copies a frame into a buffer with room to grow, as the
// datapath's buffers have.
func roomy(f []byte) []byte { return append(make([]byte, 0, len(f)+256), f...) }

// run runs ct a on a fresh copy of frame and returns the result and the
// frame as it leaves (resized when the tracker says so).
func (n *ftpNet) run(frame []byte, a Action) (Result, []byte) {
	n.t.Helper()
	f := roomy(frame)
	var key packet.Key
	var off packet.Offsets
	if err := packet.Parse(f, 1, &key, &off); err != nil {
		n.t.Fatalf("parse: %v", err)
	}
	r := n.tr.Execute(f, &key, &off, &a, n.now)
	if r.Len != 0 {
		f = f[:r.Len]
	}
	if r.Rewrote {
		checkSums(n.t, f)
	}
	return r, f
}

// tcpParts returns a frame's addresses, ports, seq, ack and payload.
func tcpParts(t *testing.T, f []byte) (src, dst netip.AddrPort, seq, ack uint32, payload string) {
	t.Helper()
	var key packet.Key
	var off packet.Offsets
	if err := packet.Parse(f, 1, &key, &off); err != nil {
		t.Fatal(err)
	}
	l4 := f[off.L4:off.L3End]
	var s, d netip.Addr
	if key.DlType == packet.EtherTypeIPv4 {
		s, d = netip.AddrFrom4(key.NwSrc), netip.AddrFrom4(key.NwDst)
	} else {
		s, d = netip.AddrFrom16(key.IPv6Src), netip.AddrFrom16(key.IPv6Dst)
	}
	src, dst = netip.AddrPortFrom(s, key.TpSrc), netip.AddrPortFrom(d, key.TpDst)
	if key.NwProto != packet.ProtoTCP {
		return src, dst, 0, 0, string(l4[8:])
	}
	doff := int(l4[12]>>4) * 4
	return src, dst, binary.BigEndian.Uint32(l4[4:]), binary.BigEndian.Uint32(l4[8:]), string(l4[doff:])
}

// handshake opens the control connection c (client on the left) through
// the flows and returns the NATed address the server sees.
func (n *ftpNet) handshake(c *tcpConv) {
	n.t.Helper()
	if r, _ := n.run(c.fromL(fSYN, nil, true), n.out); r.State&StateNew == 0 || r.Drop {
		n.t.Fatalf("SYN: %s", stateString(r.State))
	}
	if r, _ := n.run(n.fromR(c, fSYN|fACK, "", true), Action{HasNAT: true}); r.State&StateEst == 0 {
		n.t.Fatalf("SYN-ACK: %s", stateString(r.State))
	}
	if r, _ := n.run(c.fromL(fACK, nil, false), n.out); r.State&StateEst == 0 {
		n.t.Fatalf("ACK: %s", stateString(r.State))
	}
}

// fromR is c.fromR sent to the client's address as the server sees it.
func (n *ftpNet) fromR(c *tcpConv, flags uint16, payload string, advance bool) []byte {
	dst := c.l
	if n.out.HasNAT && n.out.NAT.Kind == NATSrc {
		dst = n.out.NAT.AddrMin
	}
	s := seg{src: c.r, dst: dst, sport: c.rp, dport: c.lp, seq: c.rseq, ack: c.lseq, flags: flags, payload: []byte(payload), srcMAC: macR, dstMAC: macL}
	if advance {
		c.rseq += uint32(len(payload))
		if flags&fSYN != 0 {
			c.rseq++
		}
	}
	return s.frame()
}

func newFTPNet(t *testing.T, alg ALG, nat Action) *ftpNet {
	nat.ALG = alg
	return &ftpNet{t: t, tr: New(Config{Shards: 4}), out: nat, now: int64(time.Second)}
}

// TestFTPActiveSNAT: the client behind SNAT announces its own address
// with PORT; the server sees the NATed one, the length change is carried
// by the sequence numbers both ways, and the server's data connection is
// +rel and reaches the client.
func TestFTPActiveSNAT(t *testing.T) {
	n := newFTPNet(t, ALGFTP, natAction(NATSrc, "10.1.1.240", "", 0, 0))
	c := &tcpConv{l: netip.MustParseAddr("10.1.1.1"), r: netip.MustParseAddr("10.1.1.2"), lp: 40000, rp: 21, lseq: 1000, rseq: 5000}
	n.handshake(c)
	cmd := "PORT 10,1,1,1,156,65\r\n"
	seq0 := c.lseq
	r, f := n.run(c.fromL(fACK|fPSH, []byte(cmd), true), n.out)
	src, _, seq, _, payload := tcpParts(t, f)
	if payload != "PORT 10,1,1,240,156,65\r\n" || src.Addr().String() != "10.1.1.240" || seq != seq0 {
		t.Fatalf("PORT left as %s seq %d %q, state %s", src, seq, payload, stateString(r.State))
	}
	if n.tr.Expectations() != 1 {
		t.Fatalf("%d expectations, want 1", n.tr.Expectations())
	}
	// The server acks the 24 bytes it got: the client must see 22.
	sr := seg{src: c.r, dst: netip.MustParseAddr("10.1.1.240"), sport: 21, dport: 40000, seq: c.rseq, ack: seq0 + 24, flags: fACK, srcMAC: macR, dstMAC: macL}
	r, f = n.run(sr.frame(), Action{HasNAT: true})
	_, dst, _, ack, _ := tcpParts(t, f)
	if r.State&StateInv != 0 || ack != seq0+22 || dst.Addr() != c.l {
		t.Fatalf("server's ack: %s ack %d (want %d) to %s", stateString(r.State), ack, seq0+22, dst)
	}
	// The client's next segment is 2 bytes further on for the server.
	r, f = n.run(c.fromL(fACK|fPSH, []byte("LIST\r\n"), true), n.out)
	if _, _, seq, _, _ = tcpParts(t, f); r.State&StateInv != 0 || seq != seq0+22+2 {
		t.Fatalf("next segment: %s seq %d, want %d", stateString(r.State), seq, seq0+24)
	}
	// The data connection, from the server's port 20 to the announced one.
	d := seg{src: c.r, dst: netip.MustParseAddr("10.1.1.240"), sport: 20, dport: 40001, seq: 9000, flags: fSYN, srcMAC: macR, dstMAC: macL}
	if r, _ = n.run(d.frame(), Action{}); r.State != StateTrk|StateNew|StateRel {
		t.Fatalf("data SYN before commit: %s, want +new+rel+trk", stateString(r.State))
	}
	r, f = n.run(d.frame(), Action{Commit: true, HasNAT: true})
	if _, dst, _, _, _ = tcpParts(t, f); r.State&(StateRel|StateDNAT) != StateRel|StateDNAT || dst.String() != "10.1.1.1:40001" {
		t.Fatalf("data SYN committed: %s to %s, want +rel+dnat to 10.1.1.1:40001", stateString(r.State), dst)
	}
	back := seg{src: c.l, dst: c.r, sport: 40001, dport: 20, seq: 7000, ack: 9001, flags: fSYN | fACK, srcMAC: macL, dstMAC: macR}
	r, f = n.run(back.frame(), Action{HasNAT: true})
	if src, _, _, _, _ = tcpParts(t, f); r.State&(StateRel|StateEst|StateRpl) != StateRel|StateEst|StateRpl || src.String() != "10.1.1.240:40001" {
		t.Fatalf("data SYN-ACK: %s from %s, want +est+rel+rpl from 10.1.1.240:40001", stateString(r.State), src)
	}
	if n.tr.Expectations() != 0 {
		t.Fatalf("the expectation was not used up: %d left", n.tr.Expectations())
	}
}

// TestFTPWithoutALG: the same PORT without alg=ftp sets up nothing.
func TestFTPWithoutALG(t *testing.T) {
	n := newFTPNet(t, ALGNone, natAction(NATSrc, "10.1.1.240", "", 0, 0))
	c := &tcpConv{l: netip.MustParseAddr("10.1.1.1"), r: netip.MustParseAddr("10.1.1.2"), lp: 40000, rp: 21, lseq: 1000, rseq: 5000}
	n.handshake(c)
	_, f := n.run(c.fromL(fACK|fPSH, []byte("PORT 10,1,1,1,156,65\r\n"), true), n.out)
	if _, _, _, _, p := tcpParts(t, f); p != "PORT 10,1,1,1,156,65\r\n" {
		t.Fatalf("payload rewritten without an ALG: %q", p)
	}
	d := seg{src: c.r, dst: netip.MustParseAddr("10.1.1.240"), sport: 20, dport: 40001, seq: 9000, flags: fSYN, srcMAC: macR, dstMAC: macL}
	if r, _ := n.run(d.frame(), Action{}); r.State != StateTrk|StateNew {
		t.Fatalf("data SYN: %s, want +new+trk", stateString(r.State))
	}
}

// TestFTPPassiveDNAT: the server behind DNAT announces its address in a
// 227 reply; the client sees the virtual one and its data connection to
// it reaches the server.
func TestFTPPassiveDNAT(t *testing.T) {
	n := newFTPNet(t, ALGFTP, natAction(NATDst, "10.0.0.2", "", 0, 0))
	vip := netip.MustParseAddr("10.0.0.100")
	c := &tcpConv{l: netip.MustParseAddr("192.168.0.2"), r: vip, lp: 40000, rp: 21, lseq: 1000, rseq: 5000}
	if r, _ := n.run(c.fromL(fSYN, nil, true), n.out); r.State&StateDNAT == 0 {
		t.Fatalf("SYN: %s", stateString(r.State))
	}
	// The server's packets come from its real address.
	fromS := func(flags uint16, payload string) []byte {
		s := seg{src: netip.MustParseAddr("10.0.0.2"), dst: c.l, sport: 21, dport: 40000, seq: c.rseq, ack: c.lseq, flags: flags, payload: []byte(payload), srcMAC: macR, dstMAC: macL}
		c.rseq += uint32(len(payload))
		if flags&fSYN != 0 {
			c.rseq++
		}
		return s.frame()
	}
	n.run(fromS(fSYN|fACK, ""), Action{HasNAT: true})
	n.run(c.fromL(fACK, nil, false), n.out)
	pasv := "227 Entering Passive Mode (10,0,0,2,200,10).\r\n"
	seq0 := c.rseq
	r, f := n.run(fromS(fACK|fPSH, pasv), Action{HasNAT: true})
	src, _, _, _, payload := tcpParts(t, f)
	if payload != "227 Entering Passive Mode (10,0,0,100,200,10).\r\n" || src.Addr() != vip {
		t.Fatalf("227 left as %q from %s (%s)", payload, src, stateString(r.State))
	}
	// The client acks the longer reply; the server gets its own count.
	cl := seg{src: c.l, dst: vip, sport: 40000, dport: 21, seq: c.lseq, ack: seq0 + uint32(len(pasv)) + 2, flags: fACK, srcMAC: macL, dstMAC: macR}
	r, f = n.run(cl.frame(), n.out)
	if _, _, _, ack, _ := tcpParts(t, f); r.State&StateInv != 0 || ack != seq0+uint32(len(pasv)) {
		t.Fatalf("client's ack: %s ack %d, want %d", stateString(r.State), ack, seq0+uint32(len(pasv)))
	}
	d := seg{src: c.l, dst: vip, sport: 40002, dport: 51210, seq: 100, flags: fSYN, srcMAC: macL, dstMAC: macR}
	r, f = n.run(d.frame(), Action{Commit: true, HasNAT: true})
	if _, dst, _, _, _ := tcpParts(t, f); r.State&(StateNew|StateRel|StateDNAT) != StateNew|StateRel|StateDNAT || dst.String() != "10.0.0.2:51210" {
		t.Fatalf("data SYN: %s to %s, want +new+rel+dnat to 10.0.0.2:51210", stateString(r.State), dst)
	}
}

// TestFTPv6EPRTAndEPSV: IPv6 announcements, rewritten to the NATed
// address (a different length), and EPSV, which names only a port.
func TestFTPv6EPRTAndEPSV(t *testing.T) {
	n := newFTPNet(t, ALGFTP, natAction(NATSrc, "fd00:1::f0", "", 0, 0))
	c := &tcpConv{l: netip.MustParseAddr("fd00::1"), r: netip.MustParseAddr("fd00::2"), lp: 40000, rp: 21, lseq: 1000, rseq: 5000}
	n.handshake(c)
	_, f := n.run(c.fromL(fACK|fPSH, []byte("EPRT |2|fd00::1|40001|\r\n"), true), n.out)
	if _, _, _, _, p := tcpParts(t, f); p != "EPRT |2|fd00:1::f0|40001|\r\n" {
		t.Fatalf("EPRT left as %q", p)
	}
	n.run(n.fromR(c, fACK|fPSH, "229 Entering Extended Passive Mode (|||51210|)\r\n", true), Action{HasNAT: true})
	if n.tr.Expectations() != 2 {
		t.Fatalf("%d expectations, want 2 (EPRT and EPSV)", n.tr.Expectations())
	}
	// Passive: the client connects to the server's own address.
	d := seg{src: c.l, dst: c.r, sport: 40002, dport: 51210, seq: 100, flags: fSYN, srcMAC: macL, dstMAC: macR}
	r, f := n.run(d.frame(), Action{Commit: true, HasNAT: true})
	if src, _, _, _, _ := tcpParts(t, f); r.State&(StateRel|StateSNAT) != StateRel|StateSNAT || src.Addr().String() != "fd00:1::f0" {
		t.Fatalf("passive data SYN: %s from %s, want +rel+snat from fd00:1::f0", stateString(r.State), src)
	}
}

// TestTFTPSNAT: the server answers a read request from a new port; that
// answer is +rel and reaches the client behind SNAT.
func TestTFTPSNAT(t *testing.T) {
	n := newFTPNet(t, ALGTFTP, natAction(NATSrc, "10.1.1.240", "", 0, 0))
	cl, sv := netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("10.1.1.2")
	rrq := seg{src: cl, dst: sv, sport: 5000, dport: 69, proto: packet.ProtoUDP, payload: []byte("\x00\x01file\x00octet\x00"), srcMAC: macL, dstMAC: macR}
	if r, _ := n.run(rrq.frame(), n.out); r.State&StateSNAT == 0 {
		t.Fatalf("RRQ: %s", stateString(r.State))
	}
	data := seg{src: sv, dst: netip.MustParseAddr("10.1.1.240"), sport: 6000, dport: 5000, proto: packet.ProtoUDP, payload: []byte("\x00\x03\x00\x01hello"), srcMAC: macR, dstMAC: macL}
	if r, _ := n.run(data.frame(), Action{}); r.State != StateTrk|StateNew|StateRel {
		t.Fatalf("DATA before commit: %s, want +new+rel+trk", stateString(r.State))
	}
	r, f := n.run(data.frame(), Action{Commit: true, HasNAT: true})
	if _, dst, _, _, _ := tcpParts(t, f); r.State&StateRel == 0 || dst.String() != "10.1.1.1:5000" {
		t.Fatalf("DATA committed: %s to %s, want +rel to 10.1.1.1:5000", stateString(r.State), dst)
	}
	ack := seg{src: cl, dst: sv, sport: 5000, dport: 6000, proto: packet.ProtoUDP, payload: []byte("\x00\x04\x00\x01"), srcMAC: macL, dstMAC: macR}
	r, f = n.run(ack.frame(), Action{HasNAT: true})
	if src, _, _, _, _ := tcpParts(t, f); r.State&(StateRel|StateRpl) != StateRel|StateRpl || src.String() != "10.1.1.240:5000" {
		t.Fatalf("ACK: %s from %s", stateString(r.State), src)
	}
	// Later packets of the data connection stay +rel.
	r, _ = n.run(data.frame(), Action{HasNAT: true})
	if r.State&(StateRel|StateEst) != StateRel|StateEst || r.State&StateNew != 0 {
		t.Fatalf("next DATA: %s, want +est+rel", stateString(r.State))
	}
}

// TestExpectationBounds: expectations go with their master, expire, are
// bounded per master, and a third party's address sets up none.
func TestExpectationBounds(t *testing.T) {
	n := newFTPNet(t, ALGFTP, Action{Commit: true})
	c := &tcpConv{l: netip.MustParseAddr("10.1.1.1"), r: netip.MustParseAddr("10.1.1.2"), lp: 40000, rp: 21, lseq: 1000, rseq: 5000}
	n.handshake(c)
	n.run(c.fromL(fACK|fPSH, []byte("PORT 10,9,9,9,156,65\r\n"), true), n.out)
	if n.tr.Expectations() != 0 {
		t.Fatal("a third party's address set up an expectation")
	}
	for p := range 6 {
		n.run(c.fromL(fACK|fPSH, []byte("PORT 10,1,1,1,156,"+string(rune('0'+p))+"\r\n"), true), n.out)
	}
	if got := n.tr.Expectations(); got != maxExpectPerMaster {
		t.Fatalf("%d expectations for one master, want %d", got, maxExpectPerMaster)
	}
	n.tr.Sweep(n.now + expectTimeout + 1)
	if got := n.tr.Expectations(); got != 0 {
		t.Fatalf("%d expectations after their timeout", got)
	}
	n.run(c.fromL(fACK|fPSH, []byte("PORT 10,1,1,1,156,65\r\n"), true), n.out)
	if n.tr.Expectations() != 1 {
		t.Fatal("no expectation")
	}
	n.tr.Flush(nil, nil)
	if got := n.tr.Expectations(); got != 0 {
		t.Fatalf("%d expectations after their master was flushed", got)
	}
}

// TestFTPRewriteNeedsRoom: a frame without room to grow is left as it is.
func TestFTPRewriteNeedsRoom(t *testing.T) {
	n := newFTPNet(t, ALGFTP, natAction(NATSrc, "10.1.1.240", "", 0, 0))
	c := &tcpConv{l: netip.MustParseAddr("10.1.1.1"), r: netip.MustParseAddr("10.1.1.2"), lp: 40000, rp: 21, lseq: 1000, rseq: 5000}
	n.handshake(c)
	f := c.fromL(fACK|fPSH, []byte("PORT 10,1,1,1,156,65\r\n"), true)
	f = f[:len(f):len(f)]
	var key packet.Key
	var off packet.Offsets
	_ = packet.Parse(f, 1, &key, &off)
	r := n.tr.Execute(f, &key, &off, &n.out, n.now)
	if r.Len != 0 || !strings.HasSuffix(string(f), "PORT 10,1,1,1,156,65\r\n") {
		t.Fatalf("frame without room: Len %d, %q", r.Len, f[len(f)-24:])
	}
	checkSums(t, f)
}
