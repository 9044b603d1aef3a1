package e2e

import (
	"strings"
	"testing"
	"time"
)

// setMirrorFilter writes Mirror.filter with ovsdb-client (OVS 3.1's
// ovs-vsctl predates the column) and returns the transaction's output.
func setMirrorFilter(t *testing.T, g *Gvsd, mirror, filter string) string {
	t.Helper()
	txn := `["Open_vSwitch",{"op":"update","table":"Mirror","where":[["name","==","` + mirror +
		`"]],"row":{"filter":"` + filter + `"}}]`
	out, errOut, err := g.Run("ovsdb-client", "transact", "unix:"+g.Socket(), txn)
	if err != nil && !strings.Contains(out+errOut, "error") {
		t.Fatalf("ovsdb-client transact: %v %s", err, errOut)
	}
	return out + errOut
}

func mirrorFilter(t *testing.T, g *Gvsd, mirror string) string {
	t.Helper()
	out, _, err := g.Run("ovsdb-client", "transact", "unix:"+g.Socket(),
		`["Open_vSwitch",{"op":"select","table":"Mirror","where":[["name","==","`+mirror+`"]],"columns":["filter"]}]`)
	if err != nil {
		t.Fatalf("reading the filter: %v", err)
	}
	return out
}

// TestMirrorFilter checks that a filter with a CIDR and a port mask copies
// only the frames it matches, and that an invalid filter is refused when
// the transaction commits, leaving the database as it was.
//
// What it checks is described in docs/GUIDE.md, "Mirror filters".
func TestMirrorFilter(t *testing.T) {
	requireTool(t, "ovs-vsctl", "ovsdb-client", "tcpdump")
	lab := newNetLab(t)
	g := StartGvsd(t)
	g.MustVsctl("add-br", "gvmf0")
	addInternalPorts(lab, g, "gvmf0",
		labPort{"gvmfa", "gvmf-a", nil, []string{"10.77.1.1/24", "10.77.2.1/24"}},
		labPort{"gvmfb", "gvmf-b", nil, []string{"10.77.1.2/24", "10.77.2.2/24"}},
		labPort{"gvmfm", "gvmf-m", nil, nil},
	)
	g.MustVsctl("--", "--id=@m", "get", "port", "gvmfm", "--", "--id=@mir", "create", "mirror", "name=gvmfmir",
		"select_all=true", "output-port=@m", "--", "set", "bridge", "gvmf0", "mirrors=@mir")
	out := setMirrorFilter(t, g, "gvmfmir", "udp,nw_dst=10.77.2.0/24,tp_dst=0x1000/0xff00")
	if strings.Contains(out, "error") {
		t.Fatalf("a valid filter was refused: %s", out)
	}
	lab.pingOK("gvmf-a", "10.77.1.2")
	lab.pingOK("gvmf-a", "10.77.2.2")

	capture := lab.capture("gvmf-m", "gvmfm", "udp")
	send := func(addr, port string) {
		lab.mustExec("gvmf-a", "bash", "-c", "echo probe > /dev/udp/"+addr+"/"+port)
	}
	send("10.77.2.2", "4100") // matches: subnet and port range 4096-4351
	send("10.77.1.2", "4100") // other subnet
	send("10.77.2.2", "5000") // port outside the mask
	send("10.77.2.2", "4351") // matches, last port of the range
	if !capture.waitFor(5*time.Second, "10.77.2.2.4351") {
		t.Fatalf("the matching datagram to port 4351 was not mirrored; captured:\n%s", strings.Join(capture.stop(), "\n"))
	}
	time.Sleep(300 * time.Millisecond)
	lines := capture.stop()
	got := linesWith(lines, "UDP")
	if len(got) != 2 || len(linesWith(got, "10.77.2.2.4100")) != 1 || len(linesWith(got, "10.77.2.2.4351")) != 1 {
		t.Errorf("mirror copies: want exactly the datagrams to 10.77.2.2:4100 and :4351, got:\n%s", strings.Join(lines, "\n"))
	}

	// An invalid filter fails the transaction with a readable message,
	// and the filter in the database stays what it was.
	before := mirrorFilter(t, g, "gvmfmir")
	out = setMirrorFilter(t, g, "gvmfmir", "udp,tp_dst=notaport")
	if !strings.Contains(out, "constraint violation") || !strings.Contains(out, "tp_dst") {
		t.Errorf("invalid filter: want a constraint violation naming tp_dst, got: %s", out)
	}
	if after := mirrorFilter(t, g, "gvmfmir"); after != before {
		t.Errorf("the invalid filter changed the database: before %s after %s", before, after)
	}
}
