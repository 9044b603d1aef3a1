//go:build linux

package netdev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// deleteLinkAtCleanup removes device name from each namespace at the end
// of the test, even when it fails: persistent TAP devices outlive their
// fds. It must be registered after the namespaces, so it runs before
// they go.
func deleteLinkAtCleanup(t *testing.T, name string, namespaces ...string) {
	t.Cleanup(func() {
		for _, ns := range namespaces {
			runErr("ip", "-n", ns, "link", "del", name)
		}
	})
}

// linkIn asks rtnetlink about device name inside namespace ns.
func linkIn(t *testing.T, ns, name string) (link *kernelLink) {
	t.Helper()
	var err error
	inNetns(t, ns, func() { link, err = lookupLink(name) })
	if err != nil {
		t.Fatalf("look up %s in %s: %v", name, ns, err)
	}
	return link
}

// netnsIDOf identifies namespace ns as its threads see it.
func netnsIDOf(t *testing.T, ns string) (id netnsID) {
	t.Helper()
	var err error
	inNetns(t, ns, func() { id, err = threadNetns() })
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func detach(t *testing.T, dev Netdev) {
	t.Helper()
	d, ok := dev.(Detacher)
	if !ok {
		t.Fatalf("%T does not implement Detacher", dev)
	}
	if err := d.Detach(); err != nil {
		t.Fatalf("Detach: %v", err)
	}
}

// A new internal port is a persistent TAP device, labelled with the
// namespace of the gvsd that made it, with one queue: ours.
func TestInternalDeviceIsPersistentAndLabelled(t *testing.T) {
	needRoot(t)
	sw, name := newSwitchNetns(t), uniqueName(t, "t")
	deleteLinkAtCleanup(t, name, sw)
	openTapIn(t, sw, name)
	link := linkIn(t, sw, name)
	if link == nil {
		t.Fatal("device not found")
	}
	want := tapAlias(netnsIDOf(t, sw))
	if link.kind != "tun" || link.tun != unix.IFF_TAP || link.alias != want || !link.carrier {
		t.Errorf("link %+v: want a TAP with alias %q and carrier (our fd attached)", link, want)
	}
	if out := run(t, "ip", "-d", "-n", sw, "link", "show", name); !strings.Contains(out, "persist on") {
		t.Errorf("device not persistent:\n%s", out)
	}
}

// The crash scenario: a port moved into a namespace, with an address,
// loses its gvsd (detached: the fd closes, as when the process dies); the
// device stays there with its address; opening the port again by name
// attaches to that same device, creates nothing in the switch namespace,
// and frames flow again. Close then removes the device from where it is.
func TestInternalReattachAfterCrashInOtherNetns(t *testing.T) {
	needRoot(t)
	sw, ns, name := newSwitchNetns(t), newNetns(t), uniqueName(t, "t")
	deleteLinkAtCleanup(t, name, sw, ns)
	dev := openTapIn(t, sw, name)
	mac := infoIn(t, sw, dev).MAC
	run(t, "ip", "-n", sw, "link", "set", "dev", name, "netns", ns)
	run(t, "ip", "-n", ns, "addr", "add", "198.51.100.1/24", "dev", name)
	run(t, "ip", "-n", ns, "link", "set", name, "up")
	hostIP := net.IPv4(198, 51, 100, 2)
	startFakeHost(t, dev, macB, hostIP)
	pingFrom(t, ns, "198.51.100.2", 2)
	before := linkIn(t, ns, name)

	detach(t, dev)
	after := linkIn(t, ns, name)
	if after == nil || after.index != before.index || after.carrier {
		t.Fatalf("after detach: %+v, want the same device (index %d) without carrier (no fd attached)", after, before.index)
	}
	if out := run(t, "ip", "-n", ns, "-4", "addr", "show", "dev", name); !strings.Contains(out, "198.51.100.1/24") {
		t.Fatalf("address lost with the fd:\n%s", out)
	}

	again := openTapIn(t, sw, name)
	if _, err := interfaceIn(t, sw, name); err == nil {
		t.Fatal("a new device was created in the switch namespace instead of re-attaching")
	}
	if now := linkIn(t, ns, name); now == nil || now.index != before.index || !now.carrier {
		t.Fatalf("after re-open: %+v, want device index %d with carrier (attached)", now, before.index)
	}
	if info := infoIn(t, sw, again); !info.Stale || info.MAC.String() != mac.String() || info.Ifindex != before.index {
		t.Errorf("Info after re-attach = %+v, want the device's (MAC %s, index %d) marked Stale", info, mac, before.index)
	}
	startFakeHost(t, again, macB, hostIP)
	pingFrom(t, ns, "198.51.100.2", 3)
	if st := again.Stats(); st.RxPackets < 3 || st.TxPackets < 3 {
		t.Errorf("stats of the re-attached port %+v: want >= 3 frames each way", st)
	}

	if err := again.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if out, err := runErr("ip", "-n", ns, "link", "show", name); err == nil {
		t.Errorf("device still in %s after Close:\n%s", ns, out)
	}
}

// A device left in gvsd's own namespace is re-attached too, and a frame
// written to it reaches that namespace's stack (its ARP reply comes back).
func TestInternalReattachInOwnNetns(t *testing.T) {
	needRoot(t)
	sw, name := newSwitchNetns(t), uniqueName(t, "t")
	deleteLinkAtCleanup(t, name, sw)
	dev := openTapIn(t, sw, name)
	run(t, "ip", "-n", sw, "addr", "add", "198.51.100.1/24", "dev", name)
	run(t, "ip", "-n", sw, "link", "set", name, "up")
	runErr("ip", "netns", "exec", sw, "sysctl", "-qw", "net.ipv6.conf."+name+".disable_ipv6=1")
	before := linkIn(t, sw, name)
	detach(t, dev)
	if err := dev.WriteBatch([][]byte{make([]byte, 60)}); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteBatch after Detach = %v, want ErrClosed", err)
	}
	if err := dev.Close(); err != nil {
		t.Errorf("Close after Detach = %v, want nil", err)
	}
	if linkIn(t, sw, name) == nil {
		t.Fatal("Close after Detach deleted the device")
	}

	again := openTapIn(t, sw, name)
	info := infoIn(t, sw, again)
	if info.Stale || info.Ifindex != before.index || !info.AdminUp {
		t.Errorf("Info after re-attach = %+v, want the same device (index %d), up, not stale", info, before.index)
	}
	h := startFakeHost(t, again, macB, net.IPv4(198, 51, 100, 2))
	h.send(arpPacket(1, macB, net.IPv4(198, 51, 100, 2), make(net.HardwareAddr, 6), net.IPv4(198, 51, 100, 1)))
	h.waitFrame(t, "ARP reply through the re-attached device", 3*time.Second, func(f []byte) bool {
		return binary.BigEndian.Uint16(f[12:]) == 0x0806 && binary.BigEndian.Uint16(f[20:]) == 2 && bytes.Equal(f[0:6], macB)
	})
}

// A TAP device that gvsd did not make (no label: `ip tuntap add`) is never
// taken over: in gvsd's namespace its name is taken; in another namespace
// it is left alone and a new device is made.
func TestInternalLeavesForeignTapsAlone(t *testing.T) {
	needRoot(t)
	sw, ns := newSwitchNetns(t), newNetns(t)
	here, there := uniqueName(t, "a"), uniqueName(t, "b")
	deleteLinkAtCleanup(t, here, sw)
	deleteLinkAtCleanup(t, there, sw, ns)
	run(t, "ip", "-n", sw, "tuntap", "add", "mode", "tap", "name", here)
	run(t, "ip", "-n", ns, "tuntap", "add", "mode", "tap", "name", there)

	_, err := openIn(t, sw, Config{Name: here, Type: "internal"})
	want := "could not open network device " + here + " (File exists)"
	if err == nil || err.Error() != want || !errors.Is(err, unix.EEXIST) {
		t.Errorf("Open over a foreign TAP = %v, want %q", err, want)
	}
	if l := linkIn(t, sw, here); l == nil || l.carrier {
		t.Errorf("foreign TAP after the refused open: %+v, want it untouched, without carrier", l)
	}

	openTapIn(t, sw, there)
	if l := linkIn(t, sw, there); l == nil || !l.carrier {
		t.Errorf("no new device in the switch namespace: %+v", l)
	}
	if l := linkIn(t, ns, there); l == nil || l.carrier || l.alias != "" {
		t.Errorf("foreign TAP in %s: %+v, want it untouched", ns, l)
	}
}

// A device left by a gvsd of another namespace (another "host") is not
// taken either, nor is a device of ours that is still attached.
func TestInternalLeavesOtherSwitchesDevices(t *testing.T) {
	needRoot(t)
	sw1, sw2, ns, name := newSwitchNetns(t), newSwitchNetns(t), newNetns(t), uniqueName(t, "t")
	deleteLinkAtCleanup(t, name, sw1, sw2, ns)
	dev := openTapIn(t, sw1, name)
	run(t, "ip", "-n", sw1, "link", "set", "dev", name, "netns", ns)
	detach(t, dev)

	openTapIn(t, sw2, name)
	if l := linkIn(t, sw2, name); l == nil || l.alias != tapAlias(netnsIDOf(t, sw2)) {
		t.Errorf("gvsd of %s did not make its own device: %+v", sw2, l)
	}
	if l := linkIn(t, ns, name); l == nil || l.carrier {
		t.Errorf("the device of %s's gvsd was touched: %+v", sw1, l)
	}

	_, err := openIn(t, sw2, Config{Name: name, Type: "internal"})
	if !errors.Is(err, unix.EEXIST) {
		t.Errorf("second open of an attached port = %v, want File exists", err)
	}
}

func TestParseLinkMalformed(t *testing.T) {
	ifi := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(ifi[4:], 7)
	good := appendAttr(append([]byte(nil), ifi...), unix.IFLA_IFALIAS, []byte("x"))
	good = appendAttr(good, unix.IFLA_CARRIER, []byte{1})
	linkInfo := appendAttr(nil, unix.IFLA_INFO_KIND, cstring("tun"))
	linkInfo = appendAttr(linkInfo, unix.IFLA_INFO_DATA|0x8000,
		appendAttr(appendAttr(nil, unix.IFLA_TUN_TYPE, []byte{unix.IFF_TAP}), unix.IFLA_TUN_NUM_QUEUES, []byte{0, 0, 0, 0}))
	good = appendAttr(good, unix.IFLA_LINKINFO|0x8000, linkInfo)
	l, ok := parseLink(good)
	if !ok || l.index != 7 || l.alias != "x" || !l.isTapOf("x") || !l.carrier {
		t.Fatalf("parseLink = %+v, %v", l, ok)
	}
	if _, ok := parseLink(ifi[:10]); ok {
		t.Error("short ifinfomsg accepted")
	}
	for cut := range len(good) {
		parseLink(good[:cut]) // must not panic
	}
	bad := append(append([]byte(nil), ifi...), 0xff, 0xff, 0x14, 0x00)
	if l, ok := parseLink(bad); !ok || l.alias != "" {
		t.Errorf("attribute longer than the message: %+v, %v", l, ok)
	}
}

func FuzzParseLink(f *testing.F) {
	ifi := make([]byte, unix.SizeofIfInfomsg)
	f.Add(appendAttr(ifi, unix.IFLA_LINKINFO, appendAttr(nil, unix.IFLA_INFO_KIND, cstring("tun"))))
	f.Fuzz(func(t *testing.T, b []byte) {
		if l, ok := parseLink(b); ok {
			_ = l.info()
		}
	})
}
