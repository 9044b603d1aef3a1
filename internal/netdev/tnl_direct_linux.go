//go:build linux

package netdev

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"gvs/internal/coverage"
)

// Direct sending on the host's routing (GRE, ERSPAN, and VXLAN or Geneve
// frames that UDP GSO does not carry).
//
// A frame sent through the raw IP socket costs a route lookup, the
// netfilter hooks and the neighbour layer each time, one packet at a
// time: raw sockets have no GSO. When the kernel's route to the remote
// leaves through an Ethernet device and the kernel's neighbour entry for
// its next hop is resolved, the port writes the whole frame, Ethernet
// header included, to that device through an AF_PACKET socket instead
// (BenchmarkTunnelGRESend: about 40 % less per frame). What it sends is
// what the raw socket would have made of it: the same outer headers (the
// IPv4 ID is 0 with DF either way; ports with df_default=false keep the
// raw socket, where the kernel picks IDs), the route's device and next
// hop's MAC, the device's transmit path (qdisc, tc) and its counters.
//
// What it skips: the kernel's netfilter (iptables/nftables OUTPUT and
// POSTROUTING do not see the packets, as with OVS's native tunnelling)
// and per-packet routing. So a port does not send directly
//   - when any IPsec (XFRM) policy exists: GRE over IPsec must stay
//     encrypted;
//   - with options:gvs-direct=false, for hosts whose firewall must see
//     the tunnel's packets;
//   - from a TunnelSender with a fwmark, which is for the host's policy
//     routing and firewall;
//   - for a flow-based remote or source (one lookup per remote would not
//     pay).
//
// The route, device and neighbour are asked again every directRecheck,
// so a change of route, MTU or the neighbour's MAC is followed within
// that time. Only a neighbour in state REACHABLE, PERMANENT or NOARP is
// used: a stale one sends through the raw socket, which makes the kernel
// confirm it (a unicast ARP probe or neighbor solicitation), and direct
// sending resumes when it is confirmed; a missing one is resolved the
// same way.

// tunnelDirectTx counts frames sent directly.
var tunnelDirectTx = coverage.New("tunnel_direct_tx")

// xfrmMsgGetPolicy is XFRM_MSG_GETPOLICY (linux/xfrm.h): a dump of it
// lists the IPsec policies.
const xfrmMsgGetPolicy = 0x15

// directRecheck is how often the route and neighbour are asked again.
const directRecheck = time.Second

// directTx is a tunnel port's direct sending state; it belongs to the
// sending thread.
type directTx struct {
	nl     int // NETLINK_ROUTE socket, opened in the port's namespace; -1: never direct
	xfrm   int // NETLINK_XFRM socket, to see whether IPsec policies exist
	seq    uint32
	next   time.Time  // the next lookup
	remote netip.Addr // what the state below was looked up for
	src    netip.Addr
	ok     bool        // send directly
	dev    nativeState // the route's device: ifindex, MAC, MTU
	mac    [6]byte     // the next hop's
	buf    []byte      // netlink answers
}

// init opens the netlink sockets (in the calling thread's namespace,
// the port's) unless the port never sends directly.
func (d *directTx) init(o *tunnelOptions) {
	d.nl, d.xfrm = -1, -1
	if !o.direct || !o.encap.DF || o.flowBased() {
		return
	}
	nl, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return
	}
	xf, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_XFRM)
	if err != nil {
		unix.Close(nl)
		return
	}
	tv := unix.Timeval{Usec: 200000} // the kernel answers at once; never hang a port thread
	for _, fd := range []int{nl, xf} {
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	}
	d.nl, d.xfrm, d.buf = nl, xf, make([]byte, 32<<10)
}

// initDirect readies direct sending at init, in the port's namespace:
// the packet socket too, which a sending thread elsewhere would open in
// its own.
func (w *tunnelWriter) initDirect() {
	w.direct.init(w.opts)
	if w.direct.nl >= 0 && !w.openPacketSocket() {
		w.direct.close()
	}
}

// close closes the sockets: the port never sends directly again.
func (d *directTx) close() {
	for _, fd := range []*int{&d.nl, &d.xfrm} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	d.ok = false
}

// ready reports whether frames to remote from src go directly now,
// asking the kernel again when the last answer is old or was for
// another remote or source.
func (d *directTx) ready(remote, src netip.Addr, now time.Time) bool {
	if d.nl < 0 {
		return false
	}
	if now.Before(d.next) && remote == d.remote && src == d.src {
		return d.ok
	}
	d.next, d.remote, d.src = now.Add(directRecheck), remote, src
	d.ok = d.lookup(remote, src)
	return d.ok
}

// lookup asks the kernel for the route to remote, its device and the
// next hop's neighbour entry.
func (d *directTx) lookup(remote, src netip.Addr) bool {
	if !remote.IsValid() || d.policies() {
		return false
	}
	oif, gw, mtu, ok := d.route(remote, src)
	if !ok {
		return false
	}
	if !d.link(oif) {
		return false
	}
	if mtu > 0 && mtu < d.dev.mtu {
		d.dev.mtu = mtu
	}
	nh := remote
	if gw.IsValid() {
		nh = gw
	}
	return d.neighbour(oif, nh)
}

// routeDev asks the kernel for the route to remote and its device (in
// d.dev), as lookup does, without the next hop's neighbour entry.
func (d *directTx) routeDev(remote, src netip.Addr) bool {
	if d.nl < 0 || !remote.IsValid() || d.policies() {
		return false
	}
	oif, _, mtu, ok := d.route(remote, src)
	if !ok || !d.link(oif) {
		return false
	}
	if mtu > 0 && mtu < d.dev.mtu {
		d.dev.mtu = mtu
	}
	return true
}

// request sends one netlink request on fd and returns its answer's
// payload.
func (d *directTx) request(fd int, typ, flags uint16, body []byte, attrs ...rtAttr) ([]byte, uint16, error) {
	d.seq++
	b := make([]byte, unix.NLMSG_HDRLEN, 128)
	b = append(b, body...)
	for _, a := range attrs {
		b = appendAttr(b, a.typ, a.data)
	}
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], typ)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST|flags)
	ne.PutUint32(b[8:], d.seq)
	if err := unix.Sendto(fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, 0, err
	}
	for range 16 { // skip stale answers to requests that timed out
		n, _, err := unix.Recvfrom(fd, d.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		if n < unix.NLMSG_HDRLEN || ne.Uint32(d.buf[8:]) != d.seq {
			continue
		}
		mtyp := ne.Uint16(d.buf[4:])
		data, done, err := rtnlAnswer(d.buf[:n], d.seq)
		if done {
			return data, mtyp, err
		}
	}
	return nil, 0, errors.New("no answer")
}

// policies reports whether any IPsec policy exists (or whether that
// cannot be told): then the kernel's routing must see every packet.
func (d *directTx) policies() bool {
	data, typ, err := d.request(d.xfrm, xfrmMsgGetPolicy, unix.NLM_F_DUMP, nil)
	if err != nil {
		return true
	}
	// The first answer is a policy, or the dump's end when there is none;
	// drain the rest of a dump so the next request finds its own answer.
	if typ == unix.NLMSG_DONE {
		return false
	}
	_ = data // a policy: its contents do not matter
	for range 64 {
		n, _, err := unix.Recvfrom(d.xfrm, d.buf, unix.MSG_DONTWAIT)
		if err != nil || n == 0 {
			break
		}
	}
	return true
}

// route asks for the route to remote (from src, if set): its device,
// gateway and MTU (0 if the route sets none).
func (d *directTx) route(remote, src netip.Addr) (oif int, gw netip.Addr, mtu int, ok bool) {
	family, alen := byte(unix.AF_INET), byte(32)
	if remote.Is6() {
		family, alen = unix.AF_INET6, 128
	}
	rtm := make([]byte, unix.SizeofRtMsg)
	rtm[0], rtm[1] = family, alen
	attrs := []rtAttr{{unix.RTA_DST, remote.AsSlice()}}
	if src.IsValid() && !src.IsUnspecified() {
		rtm[2] = alen
		attrs = append(attrs, rtAttr{unix.RTA_SRC, src.AsSlice()})
	}
	data, typ, err := d.request(d.nl, unix.RTM_GETROUTE, 0, rtm, attrs...)
	if err != nil || typ != unix.RTM_NEWROUTE || len(data) < unix.SizeofRtMsg || data[7] != unix.RTN_UNICAST {
		return 0, gw, 0, false
	}
	ne := binary.NativeEndian
	eachAttr(data[unix.SizeofRtMsg:], func(t uint16, v []byte) {
		switch t {
		case unix.RTA_OIF:
			if len(v) >= 4 {
				oif = int(ne.Uint32(v))
			}
		case unix.RTA_GATEWAY:
			gw, _ = netip.AddrFromSlice(v)
		case unix.RTA_VIA, unix.RTA_MULTIPATH, unix.RTA_ENCAP:
			oif = -1 // a next hop of another family, several, or a lightweight tunnel: the kernel's
		case unix.RTA_METRICS:
			eachAttr(v, func(m uint16, mv []byte) {
				if m == unix.RTAX_MTU && len(mv) >= 4 {
					mtu = int(ne.Uint32(mv))
				}
			})
		}
	})
	return oif, gw.Unmap(), mtu, oif > 0
}

// link reads the route's device: an Ethernet device that is up.
func (d *directTx) link(oif int) bool {
	ifi := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(ifi[4:], uint32(oif))
	data, typ, err := d.request(d.nl, unix.RTM_GETLINK, 0, ifi)
	if err != nil || typ != unix.RTM_NEWLINK || len(data) < unix.SizeofIfInfomsg {
		return false
	}
	ne := binary.NativeEndian
	if ne.Uint16(data[2:]) != unix.ARPHRD_ETHER || ne.Uint32(data[8:])&unix.IFF_UP == 0 || ne.Uint32(data[8:])&unix.IFF_NOARP != 0 {
		return false
	}
	l, ok := parseLink(data)
	if !ok || len(l.mac) != 6 || l.mtu <= 0 {
		return false
	}
	d.dev = nativeState{ifindex: oif, mac: [6]byte(l.mac), mtu: l.mtu}
	return true
}

// neighbour reads the kernel's neighbour entry for nh on device oif:
// usable only when confirmed (or permanent).
func (d *directTx) neighbour(oif int, nh netip.Addr) bool {
	ndm := make([]byte, unix.SizeofNdMsg)
	ndm[0] = unix.AF_INET
	if nh.Is6() {
		ndm[0] = unix.AF_INET6
	}
	binary.NativeEndian.PutUint32(ndm[4:], uint32(oif))
	data, typ, err := d.request(d.nl, unix.RTM_GETNEIGH, 0, ndm, rtAttr{unix.NDA_DST, nh.AsSlice()})
	if err != nil || typ != unix.RTM_NEWNEIGH || len(data) < unix.SizeofNdMsg {
		return false
	}
	state := binary.NativeEndian.Uint16(data[8:])
	if state&(unix.NUD_REACHABLE|unix.NUD_PERMANENT) == 0 {
		return false
	}
	var mac []byte
	eachAttr(data[unix.SizeofNdMsg:], func(t uint16, v []byte) {
		if t == unix.NDA_LLADDR {
			mac = v
		}
	})
	if len(mac) != 6 {
		return false
	}
	d.mac = [6]byte(mac)
	return true
}

// sendDirect sends frames directly when the kernel's route and
// neighbour allow it (see above); false means they go through the raw
// socket.
func (w *tunnelWriter) sendDirect(frames [][]byte, ts uint32) bool {
	d := &w.direct
	if d.nl < 0 || w.nat.fd < 0 || !d.ready(w.remote, w.fixedSrc, time.Now()) {
		return false
	}
	w.setNames(true)
	w.nat.sll.Ifindex = int32(d.dev.ifindex)
	w.nat.sll.Addr = [8]byte{d.mac[0], d.mac[1], d.mac[2], d.mac[3], d.mac[4], d.mac[5]}
	for start := 0; start < len(frames); start += tunnelBatch {
		chunk := frames[start:min(len(frames), start+tunnelBatch)]
		k := w.stageNative(chunk, ts, d.mac, &d.dev)
		tunnelDirectTx.Add(uint64(k))
		w.sendChunk(uintptr(w.nat.fd), k)
	}
	w.setNames(false)
	return true
}
