package e2e

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gvs/internal/openflow"
)

// This file sends the OpenFlow channel what ovs-ofctl never sends:
// malformed, truncated and oversized messages, unknown types, bad table
// ids and invalid NXM lengths, straight to <rundir>/<bridge>.mgmt. Each
// must get the error OVS 3.1 sends, and gvsd must go on serving.

// gvofPeer is a raw OpenFlow connection that has said hello.
type gvofPeer struct {
	t       *testing.T
	c       net.Conn
	version uint8
}

// gvofDial connects to a management socket and says hello in version v.
func gvofDial(t *testing.T, path string, v uint8) *gvofPeer {
	t.Helper()
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		t.Fatalf("connecting to %s: %v", path, err)
	}
	t.Cleanup(func() { c.Close() })
	p := &gvofPeer{t: t, c: c, version: v}
	if _, err := c.Write([]byte{v, 0, 0, 8, 0, 0, 0, 1}); err != nil {
		t.Fatalf("hello to %s: %v", path, err)
	}
	if m, err := p.read(); err != nil || m[1] != 0 {
		t.Fatalf("%s: no hello back: %x %v", path, m, err)
	}
	return p
}

// read reads one message within 5 s.
func (p *gvofPeer) read() ([]byte, error) {
	_ = p.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	h := make([]byte, 8)
	if _, err := io.ReadFull(p.c, h); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(h[2:]))
	if n < 8 {
		return nil, fmt.Errorf("message length %d", n)
	}
	m := make([]byte, n)
	copy(m, h)
	_, err := io.ReadFull(p.c, m[8:])
	return m, err
}

// ask sends req and then a barrier, and returns the messages that answer
// req (by its xid) until the barrier's reply; closed is set when the
// switch closed the connection instead.
func (p *gvofPeer) ask(req []byte) (replies [][]byte, closed bool) {
	p.t.Helper()
	barrier, err := openflow.Encode(p.version, 0x99, &openflow.BarrierRequest{})
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.c.Write(append(append([]byte(nil), req...), barrier...)); err != nil {
		return nil, true
	}
	xid := req[4:8]
	for {
		m, err := p.read()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) {
			return replies, true
		}
		if err != nil {
			p.t.Fatalf("waiting for the reply to %x: %v", req[:min(len(req), 16)], err)
		}
		if bytes.Equal(m[4:8], []byte{0, 0, 0, 0x99}) {
			return replies, false
		}
		if bytes.Equal(m[4:8], xid) {
			replies = append(replies, m)
		}
	}
}

// gvofBadCase is a request and the reply OVS 3.1 gave it.
type gvofBadCase struct {
	name    string
	version uint8
	req     []byte
	want    []byte // OVS's first reply (recorded cases only)
}

// gvofRecordedCases reads the malformed requests recorded against the
// real ovs-vswitchd 3.1 (internal/openflow/testdata/ovs_errors.txt).
func gvofRecordedCases(t *testing.T) []gvofBadCase {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "internal", "openflow", "testdata", "ovs_errors.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cs []gvofBadCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		p := strings.Fields(sc.Text())
		if len(p) != 4 {
			t.Fatalf("bad line %q", sc.Text())
		}
		req, err1 := hex.DecodeString(p[2])
		want, err2 := hex.DecodeString(p[3])
		if err1 != nil || err2 != nil || (p[1] != "1" && p[1] != "4") {
			t.Fatalf("bad line %q", sc.Text())
		}
		cs = append(cs, gvofBadCase{name: p[0], version: p[1][0] - '0', req: req, want: want})
	}
	if len(cs) < 30 {
		t.Fatalf("only %d recorded cases", len(cs))
	}
	return cs
}

// gvofExtraCases are requests whose OVS answer the test learns from a
// running OVS 3.1: bad table ids, unknown commands, an oversized message,
// a header shorter than itself.
func gvofExtraCases(t *testing.T) []gvofBadCase {
	t.Helper()
	enc := func(v uint8, m openflow.Message) []byte {
		b, err := openflow.Encode(v, 0x77, m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	fm := func(table, cmd uint8) *openflow.FlowMod {
		return &openflow.FlowMod{TableID: table, Command: cmd, Priority: 5, BufferID: openflow.NoBuffer,
			OutPort: openflow.PortAny, OutGroup: 0xffffffff}
	}
	withFlags := func(b []byte, at int, flags uint16) []byte {
		binary.BigEndian.PutUint16(b[at:], flags)
		return b
	}
	gotoFrom := func(table, to uint8) *openflow.FlowMod {
		m := fm(table, openflow.FlowAdd)
		m.Instructions = []openflow.Instruction{openflow.GotoTable{Table: to}}
		return m
	}
	toGroup := func(id uint32) *openflow.FlowMod {
		m := fm(0, openflow.FlowAdd)
		m.Instructions = []openflow.Instruction{openflow.ApplyActions{Actions: []openflow.Action{openflow.Group{GroupID: id}}}}
		return m
	}
	// The largest flow mod a message holds: 4091 outputs, in table 5.
	big := fm(5, openflow.FlowAdd)
	outs := make([]openflow.Action, 4091)
	for i := range outs {
		outs[i] = &openflow.Output{Port: 1}
	}
	big.Instructions = []openflow.Instruction{openflow.ApplyActions{Actions: outs}}
	raw := func(h string) []byte {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Clause flows OVS 3.1 refuses: n of 1 and 65, a clause past n, and
	// a conjunction beside an output.
	conj := func(acts ...openflow.Action) []byte {
		m := fm(0, openflow.FlowAdd)
		m.Instructions = []openflow.Instruction{openflow.ApplyActions{Actions: acts}}
		return enc(4, m)
	}
	echo := make([]byte, 0xffff)
	copy(echo, []byte{4, 2, 0xff, 0xff, 0, 0, 0, 0x77})
	return []gvofBadCase{
		{name: "fm13_add_table254", version: 4, req: enc(4, fm(254, openflow.FlowAdd))},
		{name: "fm13_add_table255", version: 4, req: enc(4, fm(255, openflow.FlowAdd))},
		{name: "fm13_modify_table255", version: 4, req: enc(4, fm(255, openflow.FlowModify))},
		{name: "fm13_bad_command", version: 4, req: enc(4, fm(0, 9))},
		{name: "fm13_delete_table254", version: 4, req: enc(4, fm(254, openflow.FlowDeleteStrict))},
		{name: "fm13_modify_table254", version: 4, req: enc(4, fm(254, openflow.FlowModify))},
		{name: "portstats13_no_port", version: 4, req: enc(4, &openflow.PortStatsRequest{PortNo: 77})},
		{name: "tablestats13_req_more", version: 4, req: withFlags(enc(4, &openflow.TableStatsRequest{}), 10, 1)},
		{name: "echo13_max_len", version: 4, req: echo},
		{name: "fm13_max_len", version: 4, req: enc(4, big)},
		{name: "fm13_goto_same_table", version: 4, req: enc(4, gotoFrom(1, 1))},
		{name: "fm13_goto_back", version: 4, req: enc(4, gotoFrom(2, 1))},
		{name: "fm13_goto_table254", version: 4, req: enc(4, gotoFrom(0, 254))},
		{name: "fm13_goto_table255", version: 4, req: enc(4, gotoFrom(0, 255))},
		{name: "header13_len4", version: 4, req: []byte{4, 2, 0, 4, 0, 0, 0, 0x77}},
		{name: "fm13_conjunction_n1", version: 4, req: conj(&openflow.Conjunction{Clause: 0, NClauses: 1, ID: 3})},
		{name: "fm13_conjunction_n65", version: 4, req: conj(&openflow.Conjunction{Clause: 0, NClauses: 65, ID: 3})},
		{name: "fm13_conjunction_clause_past_n", version: 4, req: conj(&openflow.Conjunction{Clause: 2, NClauses: 2, ID: 3})},
		{name: "fm13_conjunction_and_output", version: 4, req: conj(&openflow.Conjunction{Clause: 0, NClauses: 2, ID: 3}, &openflow.Output{Port: 1})},
		// OpenFlow 1.4 and 1.5: bundles misused, the messages whose
		// layout changed cut short, what gvs does not speak yet.
		{name: "bundle_add_no_msg14", version: 5, req: raw("05220010000000770000000100000003")},
		{name: "bundle_add_bad_xid14", version: 5, req: raw("052200180000007700000001000000030514000800000078")},
		{name: "bundle_add_inner_version15", version: 6, req: raw("062200180000007700000001000000030514000800000077")},
		{name: "bundle_add_inner_too_long14", version: 5, req: raw("05220018000000770000000100000003051400c800000077")},
		{name: "bundle_add_echo14", version: 5, req: raw("052200180000007700000001000000030502000800000077")},
		{name: "bundle_ctl_short14", version: 5, req: raw("0521000c0000007700000001")},
		{name: "bundle_ctl_bad_type14", version: 5, req: raw("05210010000000770000000100630003")},
		{name: "bundle_commit_unknown15", version: 6, req: raw("06210010000000770000000500040003")},
		{name: "bundle_close_unknown14", version: 5, req: raw("05210010000000770000000500020003")},
		{name: "bundle_ctl_bad_flags14", version: 5, req: raw("05210010000000770000000100000080")},
		{name: "bundle13", version: 4, req: raw("04210010000000770000000100000003")},
		{name: "port_mod14_bad_prop", version: 5, req: raw("05100028000000770000000100000000000000000000000000000000000000000000000c00000000")},
		{name: "packet_out15_no_match", version: 6, req: raw("060d001000000077ffffffff00000000")},
		{name: "port_desc_req15_empty", version: 6, req: raw("0612001000000077000d000000000000")},
		{name: "port_desc_req14_body", version: 5, req: raw("0512001800000077000d0000000000000000000000000000")},
		{name: "table_desc14", version: 5, req: raw("0512001000000077000e000000000000")},
		// Asynchronous configuration: the defaults, a configuration
		// set and read back on one connection, malformed ones.
		{name: "get_async13", version: 4, req: raw("041a000800000077")},
		{name: "get_async14", version: 5, req: raw("051a000800000077")},
		{name: "get_async15", version: 6, req: raw("061a000800000077")},
		{name: "get_async10", version: 1, req: raw("011a000800000077")},
		{name: "get_async13_body", version: 4, req: raw("041a0010000000770000000000000000")},
		{name: "set_async13_get", version: 4, req: raw("041c002000000077" + "00000001000000ff" + "0000000500000000" + "00000000ffffffff" + "041a000800000077")},
		{name: "set_async13_short", version: 4, req: raw("041c001c00000077" + "0000000100000002" + "0000000500000000" + "00000000")},
		{name: "set_async14_get", version: 5, req: raw("051c001800000077" + "000000080000003f" + "0009000800000018" + "051a000800000077")},
		{name: "set_async15_get", version: 6, req: raw("061c001000000077" + "0005000800000001" + "061a000800000077")},
		{name: "set_async14_bad_mask", version: 5, req: raw("051c001000000077" + "0001000800000040")},
		{name: "set_async14_unknown_prop", version: 5, req: raw("051c001000000077" + "000c000800000001")},
		{name: "set_async14_prop_len", version: 5, req: raw("051c001800000077" + "0001000c00000001" + "0000000000000000")},
		{name: "set_async14_prop_short", version: 5, req: raw("051c000e00000077" + "000100080000")},
		{name: "set_async14_experimenter", version: 5, req: raw("051c001800000077" + "ffff001000002320" + "0000000100000001")},
		{name: "set_async15_experimenter_other", version: 6, req: raw("061c001800000077" + "fffe001000001234" + "0000000100000001")},
		{name: "set_async14_slave_get", version: 5, req: raw("051c001000000077" + "0004000800000007" + "051a000800000077")},
		{name: "nx_set_async13_get", version: 4, req: raw("0404002800000077" + "0000232000000013" + "0000000200000001" + "0000000000000007" + "0000000400000000" + "041a000800000077")},
		{name: "nx_set_async10", version: 1, req: raw("0104002800000077" + "0000232000000013" + "0000000200000001" + "0000000000000007" + "0000000400000000")},
		{name: "nx_set_async10_short", version: 1, req: raw("0104002400000077" + "0000232000000013" + "0000000200000001" + "0000000000000007" + "00000004")},
		// NXT_SET_ASYNC_CONFIG2: the 1.4 properties before 1.4 (from
		// 1.4 OVS 3.1 does not know it).
		{name: "nx_set_async2_13_get", version: 4, req: raw("0404002000000077" + "000023200000001b" + "0002000800000001" + "0001000800000002" + "041a000800000077")},
		{name: "nx_set_async2_10", version: 1, req: raw("0104001800000077" + "000023200000001b" + "0003000800000005")},
		{name: "nx_set_async2_10_bad_mask", version: 1, req: raw("0104001800000077" + "000023200000001b" + "0001000800000008")},
		{name: "nx_set_async2_14_bad_mask", version: 5, req: raw("0504001800000077" + "000023200000001b" + "0001000800000040")},
		{name: "nx_set_async2_13_unknown_prop", version: 4, req: raw("0404001800000077" + "000023200000001b" + "000c000800000001")},
		{name: "nx_set_async2_10_prop_len", version: 1, req: raw("0104002000000077" + "000023200000001b" + "0001000c00000001" + "0000000000000000")},
		{name: "nx_set_async2_15_prop_short", version: 6, req: raw("0604001600000077" + "000023200000001b" + "000100080000")},
		{name: "nx_set_async2_13_experimenter", version: 4, req: raw("0404002000000077" + "000023200000001b" + "ffff001000002320" + "0000000100000001")},
		{name: "nx_set_async2_13_bad_mask", version: 4, req: raw("0404001800000077" + "000023200000001b" + "0001000800000008")},
		{name: "nx_set_async2_10_unknown_prop", version: 1, req: raw("0104001800000077" + "000023200000001b" + "000c000800000001")},
		{name: "nx_set_async2_13_prop_len", version: 4, req: raw("0404002000000077" + "000023200000001b" + "0001000c00000001" + "0000000000000000")},
		{name: "nx_set_async2_10_experimenter", version: 1, req: raw("0104002000000077" + "000023200000001b" + "ffff001000002320" + "0000000100000001")},
		{name: "nx_set_async2_10_prop_short", version: 1, req: raw("0104001600000077" + "000023200000001b" + "000100080000")},
		{name: "nx_set_async2_15_get", version: 6, req: raw("0604002000000077" + "000023200000001b" + "0006000800000007" + "0003000800000000" + "061a000800000077")},
		{name: "flow_mod14_short", version: 5, req: raw("050e001c000000770000000000000000000000000000000000000000")},
		{name: "aggregate15_short", version: 6, req: raw("061200180000007700020000000000000000000000000000")},
		// Groups: malformed and refused group mods, a flow to a missing
		// group, group multipart requests (the bridge keeps the groups
		// from one case to the next, on both switches).
		{name: "group13_bad_type", version: 4, req: raw("040f001000000077" + "0000090000000001")},
		{name: "group13_bad_command", version: 4, req: raw("040f001000000077" + "0009000000000001")},
		{name: "group13_reserved_id", version: 4, req: raw("040f001000000077" + "00000000fffffffc")},
		{name: "group13_bucket_len8", version: 4, req: raw("040f001800000077" + "0000000000000002" + "0008000000000000")},
		{name: "group13_indirect_two", version: 4, req: raw("040f003000000077" + "0000020000000003" +
			"00100000ffffffffffffffff00000000" + "00100000ffffffffffffffff00000000")},
		{name: "group13_add", version: 4, req: raw("040f003000000077" + "0000000000000001" +
			"00200000ffffffffffffffff00000000" + "0000001000000002" + "0000000000000000")},
		{name: "group13_add_exists", version: 4, req: raw("040f003000000077" + "0000000000000001" +
			"00200000ffffffffffffffff00000000" + "0000001000000002" + "0000000000000000")},
		{name: "group13_mod_unknown", version: 4, req: raw("040f001000000077" + "0001000000000042")},
		{name: "group13_stats_unknown", version: 4, req: raw("041200180000007700060000000000000000006300000000")},
		{name: "group13_desc_body", version: 4, req: raw("041200180000007700070000000000000000000100000000")},
		{name: "group15_insert_unknown_group", version: 6, req: raw("060f001800000077" + "0003000000000005" + "00000000fffffffd")},
		{name: "group15_remove_unknown_bucket", version: 6, req: raw("060f001800000077" + "0005000000000001" + "0000000000000063")},
		{name: "group15_bucket_id_reserved", version: 6, req: raw("060f002000000077" + "0000000000000009" + "00080000ffffffff" + "00080000ffffffff")},
		{name: "flow13_to_group99", version: 4, req: enc(4, toGroup(99))},
		{name: "packet_out13_to_group99", version: 4, req: raw("040d002e00000077" + "fffffffffffffffd" + "0008000000000000" +
			"0016000800000063" + "ffffffffffff02000000000188b5")},
		{name: "group13_delete_all", version: 4, req: raw("040f001000000077" + "00020000fffffffc")},
	}
}

// gvofReplay sends each case on its own connection and returns what came
// back, as text to compare.
func gvofReplay(t *testing.T, mgmt string, cs []gvofBadCase) []string {
	t.Helper()
	out := make([]string, len(cs))
	for i, c := range cs {
		p := gvofDial(t, mgmt, c.version)
		replies, closed := p.ask(c.req)
		var first []byte
		if len(replies) > 0 {
			first = replies[0]
		}
		out[i] = fmt.Sprintf("%s: closed=%v replies=%d first=%x", c.name, closed, len(replies), first)
		p.c.Close()
	}
	return out
}

// TestOpenFlowBadInput replays malformed requests on a gvsd bridge's
// management socket and checks each answer against OVS 3.1's: the
// recorded ones against ovs_errors.txt, the others against a running
// OVS. Meanwhile a half-sent message holds a connection open; afterwards
// the bridge, a second bridge and the database still answer, and no
// refused flow mod added anything.
func TestOpenFlowBadInput(t *testing.T) {
	gvsyRequireRoot(t)
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd")
	recorded, extra := gvofRecordedCases(t), gvofExtraCases(t)

	const br, other = "gvofb0", "gvofb1"
	// table 5 after the replay, as ovs-ofctl dumps it in both protocols:
	// the largest flow mod's flow fits a 1.0 reply but not a 1.3 one.
	dump5 := func(run func(...string) (string, string, error)) []string {
		var out []string
		for _, p := range gvofProtocols {
			stdout, stderr, err := run(append(append([]string{"ovs-ofctl"}, p.flags...), "--no-stats", "dump-flows", br, "table=5")...)
			out = append(out, fmt.Sprintf("%s: err=%v %s%s", p.name, err, stderr, strings.Join(gvofCanonFlows(stdout), "\n")))
		}
		return out
	}
	var ref5 []string
	ref := func() []string {
		o := gvsyStartOVS(t)
		defer o.Stop()
		gvsyFreeBridgeName(br)
		o.MustVsctl("add-br", br, "--", "set", "bridge", br, "datapath_type=netdev")
		r := gvofReplay(t, filepath.Join(o.dir, br+".mgmt"), extra)
		ref5 = dump5(o.run)
		return r
	}()
	// Where gvs answers differently on purpose (docs/COMPATIBILITY.md):
	// OVS 3.1 takes goto_table:255 (and prints it as "resubmit(,)" in
	// 1.0); gvs refuses it as a table that does not exist. OVS answers
	// a bundle control of an unknown type with a reply of type 0; gvs
	// with OFPBFC_BAD_TYPE.
	for i, c := range extra {
		refuse := func(typ, code byte) {
			ref[i] = fmt.Sprintf("%s: closed=false replies=1 first=%x", c.name,
				append([]byte{c.version, 1, 0, byte(12 + len(c.req)), 0, 0, 0, 0x77, 0, typ, 0, code}, c.req...))
		}
		switch c.name {
		case "fm13_goto_table255":
			refuse(3, 2)
		case "bundle_ctl_bad_type14":
			refuse(17, 6)
		}
	}

	g := gvofBridge(t, br, 1)
	g.MustVsctl("add-br", other)
	mgmt := filepath.Join(g.Rundir, br+".mgmt")

	// A peer that stops in the middle of a message must not hold up
	// anyone else.
	stuck := gvofDial(t, mgmt, 4)
	if _, err := stuck.c.Write([]byte{4, 14, 0, 200, 0, 0, 0, 0x55, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}

	got := gvofReplay(t, mgmt, recorded)
	for i, c := range recorded {
		want := fmt.Sprintf("%s: closed=false replies=1 first=%x", c.name, c.want)
		if got[i] != want {
			t.Errorf("gvsd answered differently from OVS 3.1:\n got: %s\nwant: %s", got[i], want)
		}
	}
	gotExtra := gvofReplay(t, mgmt, extra)
	for i := range extra {
		if gotExtra[i] != ref[i] {
			t.Errorf("gvsd answered differently from OVS 3.1:\n got: %s\nwant: %s", gotExtra[i], ref[i])
		}
	}

	// The largest flow mod was taken by both, and dumps as in OVS.
	if got := dump5(func(args ...string) (string, string, error) { return g.Run(args[0], args[1:]...) }); strings.Join(got, "\n") != strings.Join(ref5, "\n") {
		t.Errorf("table 5 dumps differently:\n got: %.400s\nwant: %.400s", got, ref5)
	}
	if !strings.Contains(ref5[0], "output:1,output:1") {
		t.Errorf("OVS did not show the largest flow in OpenFlow 1.0: %.300s", ref5[0])
	}
	gvofMust(t, g, nil, "del-flows", br, "table=5")
	// goto_table:254 is taken by both.
	gvofMust(t, g, []string{"-O", "OpenFlow13"}, "--strict", "del-flows", br, "table=0,priority=5")
	// Still serving: both bridges' channels, with only the initial flow,
	// and the database.
	for _, b := range []string{br, other} {
		for _, p := range gvofProtocols {
			flows := gvofCanonFlows(gvofMust(t, g, p.flags, "--no-stats", "dump-flows", b))
			if strings.Join(flows, "\n") != " priority=0 actions=NORMAL" {
				t.Errorf("%s %v: flows after the bad requests:\n%s", b, p.flags, strings.Join(flows, "\n"))
			}
		}
	}
	g.MustVsctl("show")
	_ = stuck.c.Close()
}
