package conntrack

import (
	"net/netip"
	"testing"

	"gvs/internal/packet"
)

// FuzzTracker runs random packet sequences among a few endpoints (so that
// they meet existing connections) and random frames through the tracker.
// Invariants: no panic; every result is +trk and +inv excludes the other
// states; the dump agrees with the counters; after the longest timeout
// the table, the per-zone and per-protocol counts are empty again.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{0, 2, 0, 0, 1, 0x12, 0, 0, 2, 0x10, 0, 0})
	f.Add([]byte{3, 3, 1, 1, 4, 0, 7, 7, 9, 9, 9, 9, 1, 2, 3, 4, 5, 6})
	f.Add([]byte{0x55, 0x01, 0x02, 0xff, 0xee, 0x40, 0x11, 0x22, 0x33})
	f.Fuzz(func(t *testing.T, data []byte) {
		tr := New(Config{Shards: 4})
		addrs := []netip.Addr{
			netip.MustParseAddr("192.168.0.2"), netip.MustParseAddr("10.0.0.2"),
			netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd01::2"),
		}
		var seqs [4]uint32
		now := int64(sec)
		for len(data) >= 6 {
			op := data[:6]
			data = data[6:]
			now += int64(op[5]&0x0f) * sec / 4
			var frame []byte
			if op[0]&0xe0 == 0xe0 && len(data) > 0 {
				// A raw frame: random bytes after a valid Ethernet header.
				n := min(int(op[1])+1, len(data))
				frame = append(append([]byte{}, macR[:]...), macL[:]...)
				frame = append(frame, 0x08, 0x00)
				if op[2]&1 == 1 {
					frame[12], frame[13] = 0x86, 0xdd
				}
				frame = append(frame, data[:n]...)
				data = data[n:]
			} else {
				frame = fuzzSeg(op, addrs, &seqs)
			}
			var key packet.Key
			var off packet.Offsets
			if packet.Parse(frame, 1, &key, &off) != nil {
				continue
			}
			a := Action{Zone: uint16(op[4] >> 6), Commit: op[4]&1 == 1, Force: op[4]&2 == 2,
				SetMark: op[4]&4 == 4, Mark: uint32(op[3]), MarkMask: 0xff}
			fuzzNAT(&a, op[4], key.DlType == packet.EtherTypeIPv6)
			a.ALG = ALG(op[5] % 3)
			frame = roomy(frame) // an ALG may lengthen it
			r := tr.Execute(frame, &key, &off, &a, now)
			checkResult(t, r)
			if r.Len != 0 {
				if r.Len > cap(frame) || r.Len < int(off.L4) {
					t.Fatalf("new length %d outside the frame (%d)", r.Len, cap(frame))
				}
				frame = frame[:r.Len]
			}
			if op[4]&8 == 8 && r.State&StateInv == 0 {
				// The recirculated packet's second ct(), as the S7 flows do.
				if r.Rewrote && packet.Parse(frame, 1, &key, &off) != nil {
					t.Fatalf("rewritten frame does not parse")
				}
				setKeyCt(&key, &r)
				a.Commit = true
				checkResult(t, tr.Execute(frame, &key, &off, &a, now))
			}
			if op[5]&0xf0 == 0xf0 {
				tr.Sweep(now)
			}
		}
		n := 0
		tr.DumpAt(nil, true, 0, func(e Entry) {
			n++
			_ = FormatEntry(e, true)
		})
		if st := tr.Stats(); uint64(n) != st.Conns {
			t.Fatalf("dump has %d entries, stats %d", n, st.Conns)
		}
		tr.Sweep(now + 6*24*3600*sec)
		st := tr.Stats()
		if st.Conns != 0 || len(st.ByProto) != 0 || tr.Expectations() != 0 {
			t.Fatalf("after every timeout: %+v, %d expectations", st, tr.Expectations())
		}
		for z := range 4 {
			if c := tr.ZoneCount(uint16(z)); c != 0 {
				t.Fatalf("zone %d count %d", z, c)
			}
		}
		for i := range tr.shards {
			s := &tr.shards[i]
			if s.n != 0 || s.used != 0 {
				t.Fatalf("shard %d: %d conns, %d index slots used", i, s.n, s.used)
			}
		}
	})
}

func checkResult(t *testing.T, r Result) {
	t.Helper()
	if r.State&StateTrk == 0 {
		t.Fatalf("result without +trk: %s", stateString(r.State))
	}
	if r.State&StateInv != 0 && r.State&(StateNew|StateEst|StateRel|StateRpl) != 0 {
		t.Fatalf("+inv with other states: %s", stateString(r.State))
	}
	if r.State&StateRpl != 0 && r.State&(StateEst|StateRel) == 0 {
		t.Fatalf("+rpl without +est or +rel: %s", stateString(r.State))
	}
	if r.State&StateInv == 0 && !r.OrigValid {
		t.Fatalf("tracked packet without its connection's tuple: %+v", r)
	}
}

// fuzzSeg builds a TCP, UDP or ICMP packet between two of the endpoints.
func fuzzSeg(op []byte, addrs []netip.Addr, seqs *[4]uint32) []byte {
	fam := int(op[0]>>4&1) * 2
	dir := int(op[0] >> 5 & 1)
	src, dst := addrs[fam+dir], addrs[fam+1-dir]
	s := seg{src: src, dst: dst, sport: 1000 + uint16(op[0]&1), dport: 2000, srcMAC: macL, dstMAC: macR}
	if dir == 1 {
		s.sport, s.dport = s.dport, s.sport
	}
	switch op[0] >> 1 & 3 {
	case 0, 1:
		s.proto = packet.ProtoTCP
		k := fam + dir
		s.flags = uint16(op[1]) & 0x3f
		s.seq = seqs[k] + uint32(int8(op[2]))*int32to(op[3])
		s.ack = seqs[k^1] + uint32(int8(op[3]))
		s.win = uint16(op[2]) << 4
		s.payload = make([]byte, op[1]>>6)
		if op[2]&0x80 == 0 {
			seqs[k] = s.seq + uint32(len(s.payload))
			if s.flags&(fSYN|fFIN) != 0 {
				seqs[k]++
			}
		}
		if op[3]&0x40 != 0 {
			s.opts = []byte{2, 4, 5, 0xb4, 4, 2, 3, 3, op[2] & 15, 1}
		}
	case 2:
		s.proto = packet.ProtoUDP
	default:
		s.proto = packet.ProtoICMPv4
		if fam == 2 {
			s.proto = packet.ProtoICMPv6
		}
		s.icmpType, s.icmpCode, s.icmpID = op[1], op[2]&3, uint16(op[3]&3)
		if op[2]&0x80 != 0 {
			// An error quoting a packet of the other direction.
			q := seg{src: dst, dst: src, sport: 2000, dport: 1000 + uint16(op[0]&1), proto: packet.ProtoUDP}
			s.icmpQuote = q.ip()
			if fam == 0 {
				s.icmpType = 3
			} else {
				s.icmpType = 1
			}
		}
	}
	return s.frame()
}

func int32to(b byte) uint32 { return uint32(b&7) * 1000 }

// fuzzNAT adds a NAT to the action: bare nat, nat(src) or nat(dst) with
// a port range.
func fuzzNAT(a *Action, b byte, v6 bool) {
	switch b & 0x30 {
	case 0x10:
		a.HasNAT = true
	case 0x20, 0x30:
		a.HasNAT = true
		a.NAT = NAT{Kind: NATSrc, AddrMin: netip.MustParseAddr("172.16.0.1"), AddrMax: netip.MustParseAddr("172.16.0.2")}
		if v6 {
			a.NAT.AddrMin, a.NAT.AddrMax = netip.MustParseAddr("fd02::1"), netip.MustParseAddr("fd02::1")
		}
		if b&0x30 == 0x30 {
			a.NAT.Kind = NATDst
			a.NAT.PortMin, a.NAT.PortMax = 8000, 8002
		}
	}
}

// setKeyCt copies a result into the flow key, as the datapath does
// before a recirculation.
func setKeyCt(key *packet.Key, r *Result) {
	key.CtState, key.CtZone, key.CtMark, key.CtLabel = r.State, r.Zone, r.Mark, r.Label
	key.CtNwProto = r.OrigProto
	key.CtTpSrc, key.CtTpDst = r.OrigSport, r.OrigDport
	if r.OrigSrc.Is4() {
		key.CtNwSrc, key.CtNwDst = r.OrigSrc.As4(), r.OrigDst.As4()
	} else if r.OrigSrc.IsValid() {
		key.CtIPv6Src, key.CtIPv6Dst = r.OrigSrc.As16(), r.OrigDst.As16()
	}
}
