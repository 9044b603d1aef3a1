package netdev

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gvs/internal/packet"
)

func TestParseReservedPorts(t *testing.T) {
	set := parseReservedPorts("8080, 51820-51822,bad,9-3,65535\n")
	in := func(p uint16) bool { return set[p/64]&(1<<(p%64)) != 0 }
	for _, p := range []uint16{8080, 51820, 51821, 51822, 65535} {
		if !in(p) {
			t.Errorf("port %d not reserved", p)
		}
	}
	for _, p := range []uint16{0, 3, 9, 8081, 51819, 51823} {
		if in(p) {
			t.Errorf("port %d reserved", p)
		}
	}
	if parseReservedPorts("") != ([1024]uint64{}) {
		t.Error("an empty list reserves ports")
	}
}

// useReservedPorts makes the kernel's list of reserved ports text.
func useReservedPorts(t *testing.T, text string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "reserved")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	old := reservedPortsFile
	reservedPortsFile = f
	reservedPorts.read = time.Time{}
	t.Cleanup(func() { reservedPortsFile = old; reservedPorts.read = time.Time{} })
}

// A flow whose UDP source port the administrator reserved is sent
// through the raw socket, with the same datagrams: gvsd binds no socket
// to a reserved port (a VM must not keep a service's port taken).
func TestTunnelUDPGSOSkipsReservedPorts(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	local, remote := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	fd := listenUDP(t, ns, remote, packet.VXLANPort)
	newSender := func() *TunnelSender {
		var tx *TunnelSender
		var err error
		inNetns(t, ns, func() {
			tx, err = NewTunnelSender(TunnelSenderConfig{Name: "gso", Encap: packet.TunnelConfig{
				Type: packet.TunnelVXLAN, Src: local, Dst: remote, Key: 100, TTL: 64, Csum: true}})
		})
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	tx := newSender()
	t.Cleanup(func() { tx.Close() })
	super, off := testSuperFrame(t, 2500, 1000)
	send := func() (gso, reserved uint64, got []datagram) {
		gsoBefore, resBefore := tunnelGSOSends.Total(), tunnelGSOReserved.Total()
		b := NewBatch(1)
		b.Add(super, off, len(super), 0)
		var r TxResult
		inNetns(t, ns, func() { r = tx.Send(b) })
		if r != (TxResult{Sent: 3}) {
			t.Fatalf("Send = %+v, want 3 segments sent", r)
		}
		return tunnelGSOSends.Total() - gsoBefore, tunnelGSOReserved.Total() - resBefore, recvDatagrams(t, fd, 3)
	}
	useReservedPorts(t, "")
	gso, _, got := send()
	if gso != 1 {
		t.Fatalf("%d GSO sends with no port reserved, want 1", gso)
	}
	port := got[0].port
	tx.Close() // the socket bound to port goes; a new sender looks again
	tx = newSender()
	useReservedPorts(t, fmt.Sprintf("1000,%d", port))
	gso, reserved, got := send()
	if gso != 0 || reserved != 1 {
		t.Fatalf("source port %d reserved: %d GSO sends, %d counted reserved; want 0 and 1", port, gso, reserved)
	}
	for i, d := range got {
		if d.port != port {
			t.Errorf("datagram %d from port %d, want %d", i, d.port, port)
		}
	}
}
