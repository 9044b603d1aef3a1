//go:build linux

package netdev

import (
	"os"
	"os/exec"
	"testing"
)

// TestReadLinkModeVeth reads a veth, which the kernel always reports as
// 10 Gb/s full duplex twisted pair, even while it is down, and a missing
// device, which is an error.
func TestReadLinkModeVeth(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a veth")
	}
	const dev = "gvnlm0"
	_ = exec.Command("ip", "link", "del", dev).Run()
	if out, err := exec.Command("ip", "link", "add", dev, "type", "veth", "peer", "name", "gvnlm1").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v: %s", err, out)
	}
	defer exec.Command("ip", "link", "del", dev).Run()
	m, err := ReadLinkMode(dev)
	if err != nil {
		t.Fatal(err)
	}
	if m != (LinkMode{SpeedMbps: 10000, FullDuplex: true}) {
		t.Errorf("veth: %+v, want 10000 Mb/s full duplex copper", m)
	}
	if _, err := ReadLinkMode("gvnlm-missing"); err == nil {
		t.Errorf("ReadLinkMode of a missing device succeeded")
	}
}
