//go:build linux

package netdev

import (
	"fmt"
	"strings"
	"testing"
)

// TestUDPUnderlaysBounded: every VXLAN or Geneve dst_port opens a UDP
// socket with 12 MiB of receive buffers, so a database client giving
// each port a dst_port of its own grew gvsd by 12 MiB a port. Past
// MaxUDPUnderlays a port on a new dst_port fails with a clear error;
// ports on a dst_port already open still open, and once a socket is
// closed a new dst_port opens again.
func TestUDPUnderlaysBounded(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	open := func(name string, port int, remote string) (Netdev, error) {
		return openIn(t, ns, Config{Name: name, Type: "vxlan", Options: map[string]string{
			"remote_ip": remote, "local_ip": "127.0.0.1", "dst_port": fmt.Sprint(port)}})
	}
	var ports []Netdev
	defer func() {
		for _, p := range ports {
			p.Close()
		}
	}()
	for i := range MaxUDPUnderlays {
		p, err := open(fmt.Sprintf("ul%d", i), 20000+i, "127.0.0.2")
		if err != nil {
			t.Fatalf("port %d of %d: %v", i+1, MaxUDPUnderlays, err)
		}
		ports = append(ports, p)
	}
	if p, err := open("ulmore", 20000+MaxUDPUnderlays, "127.0.0.2"); err == nil || !strings.Contains(err.Error(), "too many tunnel UDP ports") {
		if p != nil {
			p.Close()
		}
		t.Fatalf("a port on UDP port %d of %d: %v, want too many tunnel UDP ports", MaxUDPUnderlays+1, MaxUDPUnderlays, err)
	}
	p, err := open("ulshare", 20000, "127.0.0.3") // shares an open socket
	if err != nil {
		t.Fatalf("a port on a UDP port already open: %v", err)
	}
	ports = append(ports, p)
	ports[1].Close() // 20001's only port
	p, err = open("ulmore", 20000+MaxUDPUnderlays, "127.0.0.2")
	if err != nil {
		t.Fatalf("after a socket closed: %v", err)
	}
	ports = append(ports, p)
}
