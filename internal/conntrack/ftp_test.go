package conntrack

import (
	"net/netip"
	"testing"
)

func TestParseFTP(t *testing.T) {
	cases := []struct {
		in         string
		fromClient bool
		ok         bool
		kind       ftpKind
		addr       string
		port       uint16
		span       string
	}{
		{"PORT 10,1,1,1,156,65\r\n", true, true, ftpPORT, "10.1.1.1", 40001, "10,1,1,1,156,65"},
		{"port 192,168,0,2,0,21\n", true, true, ftpPORT, "192.168.0.2", 21, "192,168,0,2,0,21"},
		{"EPRT |1|10.1.1.1|40001|\r\n", true, true, ftpEPRT, "10.1.1.1", 40001, "|1|10.1.1.1|40001|"},
		{"EPRT |2|fd00::1|6446|\r\n", true, true, ftpEPRT, "fd00::1", 6446, "|2|fd00::1|6446|"},
		{"EPRT !2!fd00::1!6446!\r\n", true, true, ftpEPRT, "fd00::1", 6446, "!2!fd00::1!6446!"},
		{"227 Entering Passive Mode (10,0,0,2,200,10).\r\n", false, true, ftpPASV, "10.0.0.2", 51210, "10,0,0,2,200,10"},
		{"227 =10,0,0,2,200,10\r\n", false, true, ftpPASV, "10.0.0.2", 51210, "10,0,0,2,200,10"},
		{"229 Entering Extended Passive Mode (|||51210|)\r\n", false, true, ftpEPSV, "", 51210, "51210"},
		// Refused: not a complete line, wrong side, bad numbers, bad families.
		{"PORT 10,1,1,1,156,65", true, false, 0, "", 0, ""},
		{"PORT 10,1,1,1,156,65\r\n", false, false, 0, "", 0, ""},
		{"227 Entering Passive Mode (10,0,0,2,200,10).\r\n", true, false, 0, "", 0, ""},
		{"PORT 10,1,1,256,156,65\r\n", true, false, 0, "", 0, ""},
		{"PORT 10,1,1,1,156\r\n", true, false, 0, "", 0, ""},
		{"PORT 10,1,1,1,156,65000\r\n", true, false, 0, "", 0, ""},
		{"PORT 0010,1,1,1,1,1\r\n", true, false, 0, "", 0, ""},
		{"EPRT |1|fd00::1|21|\r\n", true, false, 0, "", 0, ""},
		{"EPRT |2|10.0.0.1|21|\r\n", true, false, 0, "", 0, ""},
		{"EPRT |3|10.0.0.1|21|\r\n", true, false, 0, "", 0, ""},
		{"EPRT |1|10.0.0.1|70000|\r\n", true, false, 0, "", 0, ""},
		{"EPRT |2|fe80::1%eth0|21|\r\n", true, false, 0, "", 0, ""},
		{"229 Entering Extended Passive Mode (|||51210)\r\n", false, false, 0, "", 0, ""},
		{"USER anonymous\r\n", true, false, 0, "", 0, ""},
		{"", true, false, 0, "", 0, ""},
	}
	for _, c := range cases {
		cmd, ok := parseFTP([]byte(c.in), c.fromClient)
		if ok != c.ok {
			t.Errorf("%q: ok %v, want %v", c.in, ok, c.ok)
			continue
		}
		if !ok {
			continue
		}
		if cmd.kind != c.kind || cmd.port != c.port || c.in[cmd.start:cmd.end] != c.span {
			t.Errorf("%q: kind %d port %d span %q, want %d %d %q", c.in, cmd.kind, cmd.port, c.in[cmd.start:cmd.end], c.kind, c.port, c.span)
		}
		if c.addr != "" && cmd.addr != netip.MustParseAddr(c.addr) {
			t.Errorf("%q: address %v, want %s", c.in, cmd.addr, c.addr)
		}
	}
}

func TestFormatFTP(t *testing.T) {
	cases := []struct {
		in, addr string
		port     uint16
		want     string
	}{
		{"PORT 10,1,1,1,156,65\r\n", "10.1.1.240", 40001, "PORT 10,1,1,240,156,65\r\n"},
		{"227 Entering Passive Mode (10,0,0,2,200,10).\r\n", "10.0.0.100", 51210, "227 Entering Passive Mode (10,0,0,100,200,10).\r\n"},
		{"EPRT |2|fd00::1|6446|\r\n", "fd00:1::f0", 6446, "EPRT |2|fd00:1::f0|6446|\r\n"},
		{"229 Entering Extended Passive Mode (|||51210|)\r\n", "", 1021, "229 Entering Extended Passive Mode (|||1021|)\r\n"},
	}
	for _, c := range cases {
		cmd, ok := parseFTP([]byte(c.in), c.in[0] != '2')
		if !ok {
			t.Fatalf("%q not parsed", c.in)
		}
		var a netip.Addr
		if c.addr != "" {
			a = netip.MustParseAddr(c.addr)
		}
		var buf [64]byte
		got := c.in[:cmd.start] + string(formatFTP(buf[:], &cmd, a, c.port)) + c.in[cmd.end:]
		if got != c.want {
			t.Errorf("%q: rewritten %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSeqAdjRecord(t *testing.T) {
	var s seqAdj
	s.record(1000, 2)
	if s.offset(1000) != 0 || s.offset(1001) != 2 {
		t.Fatalf("after one resize: offsets %d %d, want 0 2", s.offset(1000), s.offset(1001))
	}
	s.record(1000, 2) // a retransmission of the same segment
	if s.after != 2 {
		t.Fatalf("a retransmission counted again: after %d", s.after)
	}
	s.record(2000, -3)
	if s.offset(1500) != 2 || s.offset(2001) != -1 || s.before != 2 {
		t.Fatalf("after a second resize: %+v", s)
	}
	// Acks are in the adjusted numbers: 2001-1 acks up to 2000 as sent.
	if s.ackOffset(2001) != 2 || s.ackOffset(2010) != -1 {
		t.Fatalf("ack offsets %d %d, want 2 -1", s.ackOffset(2001), s.ackOffset(2010))
	}
}

// FuzzFTPParse: no input makes the parser fail; what it accepts, written
// back with the same address and port, reads the same.
func FuzzFTPParse(f *testing.F) {
	for _, s := range []string{
		"PORT 10,1,1,1,156,65\r\n", "EPRT |2|fd00::1|6446|\r\n", "EPRT |1|1.2.3.4|5|\n",
		"227 Entering Passive Mode (10,0,0,2,200,10).\r\n", "229 Entering Extended Passive Mode (|||51210|)\r\n",
		"PORT 1,2,3\r\n", "229 (|||)\r\n",
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, fromClient bool) {
		cmd, ok := parseFTP(b, fromClient)
		if !ok {
			return
		}
		if cmd.start < 0 || cmd.start > cmd.end || cmd.end > len(b) {
			t.Fatalf("span [%d,%d) outside %d bytes", cmd.start, cmd.end, len(b))
		}
		var buf [64]byte
		text := formatFTP(buf[:], &cmd, cmd.addr, cmd.port)
		out := append(append(append([]byte{}, b[:cmd.start]...), text...), b[cmd.end:]...)
		again, ok := parseFTP(out, fromClient)
		if !ok || again.kind != cmd.kind || again.port != cmd.port || again.addr != cmd.addr {
			t.Fatalf("%q rewritten as %q reads %+v, want %+v", b, out, again, cmd)
		}
	})
}
