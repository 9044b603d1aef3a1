package e2e

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// gvpsHex decodes a message written in hex.
func gvpsHex(t *testing.T, h string) []byte {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gvpsUntilEcho sends an echo request on p and returns every message
// before its reply, in hex.
func gvpsUntilEcho(t *testing.T, p *gvofPeer) []string {
	t.Helper()
	if _, err := p.c.Write([]byte{p.version, 2, 0, 8, 0, 0, 0, 0x99}); err != nil {
		t.Fatal(err)
	}
	var out []string
	for range 20 {
		m, err := p.read()
		if err != nil {
			t.Fatalf("reading: %v (so far %v)", err, out)
		}
		if m[1] == 3 && m[7] == 0x99 {
			return out
		}
		out = append(out, fmt.Sprintf("%x", m))
	}
	t.Fatalf("no echo reply among %v", out)
	return nil
}

// gvpsRoleTrace: two OpenFlow 1.4 connections on the management socket
// (each asking for asynchronous messages, as a service connection must
// in OVS), the first becomes master, then the second: what each gets.
// With mask, the first sets its role status masks (both roles) to it
// first (OFPT_SET_ASYNC properties). Generation ids start at gen, above
// the last trace's, which both switches remember.
func gvpsRoleTrace(t *testing.T, mgmt string, mask string, gen uint64) []string {
	var out []string
	a, b := gvofDial(t, mgmt, 5), gvofDial(t, mgmt, 5)
	for _, p := range []*gvofPeer{a, b} {
		if _, err := p.c.Write(gvpsHex(t, "0509000c000000050000ffff")); err != nil {
			t.Fatal(err)
		}
	}
	if mask != "" {
		if _, err := a.c.Write(gvpsHex(t, "051c001800000006000600080000000"+mask+"000700080000000"+mask)); err != nil {
			t.Fatal(err)
		}
	}
	role := func(p *gvofPeer, gen uint64) {
		if _, err := p.c.Write(gvpsHex(t, fmt.Sprintf("05180018000000070000000200000000%016x", gen))); err != nil {
			t.Fatal(err)
		}
	}
	role(a, gen)
	out = append(out, fmt.Sprintf("first after its request: %v", gvpsUntilEcho(t, a)))
	role(b, gen+1)
	out = append(out, fmt.Sprintf("second after its request: %v", gvpsUntilEcho(t, b)))
	out = append(out, fmt.Sprintf("first after the second's: %v", gvpsUntilEcho(t, a)))
	a.c.Close()
	b.c.Close()
	return out
}

// gvpsMasks: the default role status masks, every reason, none.
var gvpsMasks = []string{"", "7", "0"}

// TestRoleStatusDifferential: a 1.4 master that another connection
// replaces gets what OVS 3.1 sends it, byte for byte.
func TestRoleStatusDifferential(t *testing.T) {
	gvsyRequireRoot(t)
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd")
	const br = "gvpsr0"
	var ref [][]string
	func() {
		o := gvsyStartOVS(t)
		defer o.Stop()
		gvsyFreeBridgeName(br)
		o.MustVsctl("add-br", br, "--", "set", "bridge", br, "datapath_type=netdev")
		for i, mask := range gvpsMasks {
			ref = append(ref, gvpsRoleTrace(t, filepath.Join(o.dir, br+".mgmt"), mask, uint64(10*i+1)))
		}
	}()
	g := gvofBridge(t, br, 0)
	for i, mask := range gvpsMasks {
		got := gvpsRoleTrace(t, filepath.Join(g.Rundir, br+".mgmt"), mask, uint64(10*i+1))
		t.Logf("role status mask %q: OVS 3.1:\n%s", mask, strings.Join(ref[i], "\n"))
		if strings.Join(got, "\n") != strings.Join(ref[i], "\n") {
			t.Errorf("role status mask %q: gvsd:\n%s\nOVS 3.1:\n%s", mask, strings.Join(got, "\n"), strings.Join(ref[i], "\n"))
		}
	}
}
