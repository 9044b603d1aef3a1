package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMirrorToPcapFile mirrors a port into a pcap interface with a
// snaplen, and reads the file with tshark: the echo requests are there,
// cut to the snaplen, with their original length. The file is named
// relative to gvsd's capture directory, where it is created with mode 0600.
//
// What it checks is described in docs/GUIDE.md, "Mirror into a capture file".
func TestMirrorToPcapFile(t *testing.T) {
	requireTool(t, "ovs-vsctl", "tshark")
	lab := newNetLab(t)
	g := StartGvsd(t)
	file := filepath.Join(g.Rundir, "capture", "mirror.pcapng")
	g.MustVsctl("add-br", "gvmp0")
	addInternalPorts(lab, g, "gvmp0",
		labPort{"gvmpa", "gvmp-a", nil, []string{"10.78.0.1/24"}},
		labPort{"gvmpb", "gvmp-b", nil, []string{"10.78.0.2/24"}},
	)
	g.MustVsctl("add-port", "gvmp0", "gvmpcap", "--", "set", "interface", "gvmpcap", "type=pcap", "options:file=mirror.pcapng")
	g.MustVsctl("--", "--id=@a", "get", "port", "gvmpa", "--", "--id=@cap", "get", "port", "gvmpcap",
		"--", "--id=@m", "create", "mirror", "name=gvmpm", "select-src-port=@a", "output-port=@cap", "snaplen=64",
		"--", "set", "bridge", "gvmp0", "mirrors=@m")
	lab.mustExec("gvmp-a", "ping", "-c", "3", "-i", "0.2", "-s", "400", "-W", "2", "10.78.0.2")

	deadline := time.Now().Add(10 * time.Second)
	var lines []string
	for {
		out, _, _ := g.Run("tshark", "-r", file, "-Y", "icmp.type == 8", "-T", "fields", "-e", "frame.len", "-e", "frame.cap_len")
		lines = nonEmptyLines(out)
		if len(lines) >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("pcap file %s: %v, %v; want mode 0600", file, st, err)
	}
	if len(lines) != 3 {
		t.Fatalf("tshark found %d echo requests in the mirror's pcap file, want 3: %q", len(lines), lines)
	}
	for _, l := range lines {
		// 400 bytes of ICMP data + 8 ICMP + 20 IP + 14 Ethernet = 442.
		if f := strings.Fields(l); len(f) != 2 || f[0] != "442" || f[1] != "64" {
			t.Errorf("frame length/captured length = %q, want 442 and 64", l)
		}
	}
}
