package procinfo

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	self := Describe(os.Getpid())
	comm, _ := os.ReadFile("/proc/self/comm")
	want := strings.TrimSpace(string(comm)) + " (pid "
	if !strings.HasPrefix(self, want) {
		t.Fatalf("Describe(self) = %q, want prefix %q", self, want)
	}
	if got := Describe(0); got != "an unknown process" {
		t.Errorf("Describe(0) = %q", got)
	}
	// pid_max is at most 2^22: this pid cannot exist.
	if got := Describe(1 << 23); got != "pid 8388608" {
		t.Errorf("Describe(gone) = %q", got)
	}
}

func TestPeer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			buf := make([]byte, 1)
			c.Read(buf)
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := Peer(c); got != os.Getpid() {
		t.Fatalf("Peer = %d, want %d", got, os.Getpid())
	}
}
