package vswitchd

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"gvs/internal/flow"
	"gvs/internal/packet"
)

// udpFrame is an IPv4/UDP frame from 10.0.0.1:sport to 10.0.0.2:53.
func udpFrame(t *testing.T, sport uint16) []byte {
	b := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
		0x45, 0, 0, 36, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	udp := make([]byte, 16)
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], 53)
	binary.BigEndian.PutUint16(udp[4:], 16)
	b = append(b, udp...)
	var k packet.Key
	var off packet.Offsets
	if err := packet.Parse(b, 1, &k, &off); err != nil {
		t.Fatal(err)
	}
	if err := packet.RecomputeChecksums(b, &off); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConntrackCommands drives the dpctl conntrack commands on a switch
// whose bridge commits UDP into zone 5: dump (all, by zone), stats,
// limits (a zone at its limit commits no more, its connection stays),
// maxconns, flush by tuple and zone, and the errors they reply with.
func TestConntrackCommands(t *testing.T) {
	sw, p1, p2 := flowSwitch(t)
	b := sw.state.bridges["br0"]
	f, err := flow.ParseFlow("priority=100,udp,in_port=fl1,actions=ct(commit,zone=5),output:fl2",
		flow.ParseOptions{PortByName: func(n string) (uint32, bool) {
			p := sw.state.ifaces[n]
			return uint32(map[string]int{"fl1": 1, "fl2": 2}[n]), p != nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Tables.Add(f); err != nil {
		t.Fatal(err)
	}
	sendUDP := func(sport uint16) {
		t.Helper()
		if err := p1.Inject(udpFrame(t, sport)); err != nil {
			t.Fatal(err)
		}
		if _, ok := p2.Next(2 * time.Second); !ok {
			t.Fatal("UDP frame not forwarded")
		}
	}
	run := func(cmd func([]string) (string, error), args ...string) string {
		t.Helper()
		out, err := cmd(args)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out
	}
	sendUDP(1000)
	want := "udp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=1000,dport=53),reply=(src=10.0.0.2,dst=10.0.0.1,sport=53,dport=1000),zone=5\n"
	if got := run(sw.dpctlDumpConntrack); got != want {
		t.Fatalf("dump-conntrack:\n%s\nwant\n%s", got, want)
	}
	if got := run(sw.dpctlDumpConntrack, "zone=6"); got != "" {
		t.Errorf("dump-conntrack zone=6: %q", got)
	}
	if got := run(sw.dpctlCTStatsShow); !strings.HasPrefix(got, "Connections Stats:\n    Total: 1\n  UDP: 1\n") {
		t.Errorf("ct-stats-show:\n%s", got)
	}

	run(sw.dpctlCTSetLimits, "default=100", "zone=5,limit=1")
	if got := run(sw.dpctlCTGetLimits); got != "default limit=100\nzone=5,limit=1,count=1\n" {
		t.Errorf("ct-get-limits:\n%s", got)
	}
	// Zone 5 is full: a new connection is not committed and its packet is
	// dropped, as the kernel datapath drops it; the first one goes on.
	if err := p1.Inject(udpFrame(t, 1001)); err != nil {
		t.Fatal(err)
	}
	sendUDP(1000)
	if f, ok := p2.Next(200 * time.Millisecond); ok {
		t.Errorf("a packet past the zone limit was forwarded: %x", f)
	}
	if got := run(sw.dpctlDumpConntrack, "zone=5"); got != want {
		t.Errorf("at the zone's limit:\n%s\nwant only\n%s", got, want)
	}
	if got := run(sw.dpctlCTStatsShow); !strings.Contains(got, "Commits refused by limits: 1\n") {
		t.Errorf("ct-stats-show does not count the refused commit:\n%s", got)
	}
	if got := run(sw.dpctlCTGetLimits, "zone=5,7"); got != "default limit=100\nzone=5,limit=1,count=1\nzone=7,limit=100,count=0\n" {
		t.Errorf("ct-get-limits zone=5,7:\n%s", got)
	}
	run(sw.dpctlCTDelLimits, "zone=5")
	if got := run(sw.dpctlCTGetLimits); got != "default limit=100\n" {
		t.Errorf("after ct-del-limits:\n%s", got)
	}

	if got := run(sw.dpctlCTSetMaxconns, "1234"); got != "setting maxconns successful" {
		t.Errorf("ct-set-maxconns: %q", got)
	}
	if got := run(sw.dpctlCTGetMaxconns); got != "1234\n" {
		t.Errorf("ct-get-maxconns: %q", got)
	}
	if got := run(sw.dpctlCTSeqChk(false)); got != "disabling TCP sequence checking successful" {
		t.Errorf("ct-disable-tcp-seq-chk: %q", got)
	}
	if got := run(sw.dpctlCTGetSeqChk); got != "TCP sequence checking: disabled\n" {
		t.Errorf("ct-get-tcp-seq-chk: %q", got)
	}
	run(sw.dpctlCTSeqChk(true))
	if got := run(sw.dpctlCTGetSeqChk, "netdev@ovs-netdev"); got != "TCP sequence checking: enabled\n" {
		t.Errorf("ct-get-tcp-seq-chk after enabling: %q", got)
	}

	run(sw.dpctlFlushConntrack, "zone=5", "ct_nw_src=10.0.0.1,ct_nw_dst=10.0.0.2,ct_nw_proto=17,ct_tp_src=1000,ct_tp_dst=53")
	if got := run(sw.dpctlDumpConntrack); got != "" {
		t.Errorf("after flushing the tuple: %q", got)
	}
	// As OVS 3.1: a whole tuple that names no connection is an error; a
	// partial one flushes what it matches, in every zone, and matching
	// nothing is fine.
	if _, err := sw.dpctlFlushConntrack([]string{"zone=5", "ct_nw_src=10.0.0.1,ct_nw_dst=10.0.0.2,ct_nw_proto=17,ct_tp_src=1000,ct_tp_dst=53"}); err == nil ||
		err.Error() != "failed to flush conntrack (No such file or directory)" {
		t.Errorf("flushing a tuple that is not there: %v", err)
	}
	sendUDP(1002)
	if got := run(sw.dpctlCTGetNconns); got != "1\n" {
		t.Errorf("ct-get-nconns: %q", got)
	}
	run(sw.dpctlFlushConntrack, "ct_nw_src=10.0.0.9")
	run(sw.dpctlFlushConntrack, "ct_nw_src=10.0.0.1,ct_nw_dst=10.0.0.2,ct_nw_proto=17,ct_tp_src=1002,ct_tp_dst=53", "ct_nw_src=10.0.0.2,ct_tp_src=54")
	if got := run(sw.dpctlCTGetNconns); got != "1\n" {
		t.Errorf("partial flushes that match nothing left %q connections", got)
	}
	run(sw.dpctlFlushConntrack, "ct_nw_dst=10.0.0.2,ct_nw_proto=17")
	if got := run(sw.dpctlDumpConntrack); got != "" {
		t.Errorf("after flushing a partial tuple: %q", got)
	}
	sendUDP(1003)
	run(sw.dpctlFlushConntrack, "netdev@ovs-netdev", "zone=5")
	if got := run(sw.dpctlDumpConntrack); got != "" {
		t.Errorf("after flushing zone 5: %q", got)
	}

	for _, bad := range []struct {
		cmd  func([]string) (string, error)
		args []string
		want string
	}{
		{sw.dpctlDumpConntrack, []string{"zone=70000"}, "zone=70000"},
		{sw.dpctlDumpConntrack, []string{"-x"}, "unknown option"},
		{sw.dpctlDumpConntrack, []string{"system@other"}, "no such datapath"},
		{sw.dpctlFlushConntrack, []string{"ct_nw_src=10.0.0.1,ct_ipv6_dst=fd00::1"}, "the L3 protocol does not match"},
		{sw.dpctlFlushConntrack, []string{"bogus=1"}, "unknown field"},
		{sw.dpctlFlushConntrack, []string{"ct_nw_src=::1,ct_nw_dst=10.0.0.2,ct_nw_proto=17"}, "ct_nw_src"},
		{sw.dpctlCTSetLimits, []string{"zone=5"}, "expected default=LIMIT"},
		{sw.dpctlCTSetLimits, []string{"zone=5,limit=-1"}, "a limit is a number"},
		{sw.dpctlCTSetMaxconns, []string{"lots"}, "maxconns"},
		{sw.dpctlCTDelLimits, []string{"zone=x"}, "zone=x"},
	} {
		if _, err := bad.cmd(bad.args); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: error %v, want one mentioning %q", bad.args, err, bad.want)
		}
	}
}
