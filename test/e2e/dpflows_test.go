package e2e

import (
	"regexp"
	"strings"
	"testing"
)

// TestDatapathFlowDump checks the flow cache through the real ovs-appctl:
// after a ping, dpif/dump-flows shows the cached flow of the echo request
// (ports by name, its masked match, counters, actions), dpctl/dump-flows
// the same with port numbers, coverage/show counts hits, and
// dpctl/del-flows removes it.
func TestDatapathFlowDump(t *testing.T) {
	lab := newNetLab(t)
	g := StartGvsd(t)
	g.MustVsctl("add-br", "gvdf")
	addInternalPorts(lab, g, "gvdf",
		labPort{"gvdf1", "gvdf-n1", []string{"tag=10"}, []string{"192.168.31.1/24"}},
		labPort{"gvdf2", "gvdf-n2", []string{"tag=10"}, []string{"192.168.31.2/24"}},
	)
	lab.pingOK("gvdf-n1", "192.168.31.2")
	lab.mustExec("gvdf-n1", "ping", "-c", "3", "-i", "0.2", "-W", "2", "192.168.31.2")
	dst := lab.mac("gvdf-n2", "gvdf2")

	request := regexp.MustCompile(`(?m)^recirc_id\(0\),in_port\(gvdf1\),.*dl_dst=` + regexp.QuoteMeta(dst) +
		`.*, packets:[1-9][0-9]*, bytes:[1-9][0-9]*, used:[0-9]+\.[0-9]{3}s, actions:gvdf2$`)
	out := appctl(t, g, "dpif/dump-flows", "gvdf")
	if !request.MatchString(out) {
		t.Fatalf("dpif/dump-flows gvdf has no flow for the echo requests to %s:\n%s", dst, out)
	}
	numbered := regexp.MustCompile(`(?m)^recirc_id\(0\),in_port\([0-9]+\),.*dl_dst=` + regexp.QuoteMeta(dst) + `.*actions:[0-9]+$`)
	if out := appctl(t, g, "dpctl/dump-flows"); !numbered.MatchString(out) {
		t.Errorf("dpctl/dump-flows has no flow to %s with port numbers:\n%s", dst, out)
	}
	if out := appctl(t, g, "coverage/show"); !strings.Contains(out, "datapath_flow_hit") || !strings.Contains(out, "datapath_flow_miss") {
		t.Errorf("coverage/show lacks the flow cache counters:\n%s", out)
	}
	appctl(t, g, "dpctl/del-flows")
	if out := appctl(t, g, "dpif/dump-flows", "gvdf"); request.MatchString(out) {
		t.Errorf("the flow is still there after dpctl/del-flows:\n%s", out)
	}
	if _, errOut, err := g.Run("ovs-appctl", "dpif/dump-flows", "gvdfnone"); err == nil || !strings.Contains(errOut, "no such bridge") {
		t.Errorf("dpif/dump-flows of a missing bridge: err=%v stderr=%q", err, errOut)
	}
}
