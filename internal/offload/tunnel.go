package offload

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// GRE tunnel ports in the fast path. A flow whose last action is an
// output to a GRE port is encapsulated by the tc program and sent
// straight to the device the tunnel's route leaves through, with the
// headers gvsd's own direct sending writes (netdev's tnl_direct_linux.go
// finds the route, the device and the next hop; the datapath hands them
// here with SetTunnel). The same device gets a second program that
// decapsulates the GRE packets of the tunnel's cached flows and runs
// their actions; it leaves every other packet to the kernel, and so the
// tunnel's other packets to gvsd's raw socket.

// TunnelPath is how a GRE tunnel port's packets leave and arrive now.
type TunnelPath struct {
	// Header is the Ethernet, IPv4 and GRE headers put in front of a
	// frame: the next hop's and the device's MAC addresses, the outer
	// IPv4 header with its total length and checksum left zero (the
	// program fills them), the GRE header with the key if any.
	Header []byte
	// Ifindex is the route's device; MTU the longest outer IPv4 packet
	// it carries.
	Ifindex, MTU int
	// What a received packet carries to be the port's: the remote (outer
	// source), the local address it was sent to, and the key (0: none,
	// or 0).
	Remote, Local netip.Addr
	Key           uint32
	// Receive: gvsd gives such packets to this port (no other port
	// matches them better), so the kernel may decapsulate them for it.
	Receive bool
}

// decapLink is the decapsulation program on one device, shared by the
// tunnel ports whose routes use it.
type decapLink struct {
	l    link.Link
	refs int
}

// NewTunnel gives tunnel port inport (a datapath port number) a slot:
// an output of flows at once (packets then go to gvsd until SetTunnel
// gives it a route), an input of flows once it has one.
func (k *Kernel) NewTunnel(inport uint32) (*Port, error) {
	return k.newPort(0, inport, true)
}

// SetTunnel gives tunnel port p its route (a zero TunnelPath: none, gvsd
// sends and receives everything), or a new one.
func (p *Port) SetTunnel(tp TunnelPath) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tunnel {
		return errors.New("offload: not a tunnel port")
	}
	if p.closed {
		return nil // the port went meanwhile: nothing to send by
	}
	if tp.Ifindex == 0 {
		p.clearTunnel()
		return nil
	}
	if p.sending && tp.same(&p.path) {
		return nil
	}
	if len(tp.Header) < 14+20+4 || len(tp.Header) > tunnelHdr || !tp.Remote.Is4() || !tp.Local.Is4() || tp.MTU <= 0 {
		p.clearTunnel()
		return fmt.Errorf("offload: a tunnel path the kernel cannot send by (%d header bytes, remote %s, local %s)", len(tp.Header), tp.Remote, tp.Local)
	}
	rec := tunnelRec{Ifindex: uint32(tp.Ifindex), HdrLen: uint32(len(tp.Header)), MTU: uint32(tp.MTU)}
	copy(rec.Hdr[:], tp.Header)
	if err := p.k.tunnels.Update(uint32(p.slot), rec, ebpf.UpdateAny); err != nil {
		p.clearTunnel()
		return fmt.Errorf("offload: tunnel record: %w", err)
	}
	p.sending, p.path = true, tp
	p.path.Header = bytes.Clone(tp.Header)
	if err := p.setReceive(tp); err != nil {
		p.clearTunnel()
		return err
	}
	return nil
}

// setReceive puts the decapsulation of p's packets in the kernel, on
// the route's device, if tp says p receives them (p.mu held); otherwise
// takes it out.
func (p *Port) setReceive(tp TunnelPath) error {
	rx := tunRxKey{Src: ne32(tp.Remote.As4()), Dst: ne32(tp.Local.As4()), Key: tp.Key}
	if !tp.Receive {
		p.stopReceive()
		return nil
	}
	if p.ul == tp.Ifindex && p.rx == rx {
		return nil
	}
	p.stopReceive()
	if !p.k.ownRx(rx, p) {
		return nil // another port's packets, as gvsd matches them: gvsd decides
	}
	if err := p.k.holdDecap(tp.Ifindex); err != nil {
		p.k.disownRx(rx, p)
		return err
	}
	p.ul, p.rx = tp.Ifindex, rx
	return p.writeRec(p.nm)
}

// stopReceive takes p's decapsulation out of the kernel (p.mu held).
func (p *Port) stopReceive() {
	if p.ul == 0 {
		return
	}
	if p.k.disownRx(p.rx, p) {
		_ = p.k.tunRx.Delete(p.rx)
	}
	p.k.releaseDecap(p.ul)
	p.ul, p.rx = 0, tunRxKey{}
}

// clearTunnel takes p's route out of the kernel (p.mu held).
func (p *Port) clearTunnel() {
	p.stopReceive()
	if p.sending {
		_ = p.k.tunnels.Update(uint32(p.slot), tunnelRec{}, ebpf.UpdateAny)
	}
	p.sending, p.path = false, TunnelPath{}
}

// ownRx makes p the owner of what key rx receives, unless another port
// is.
func (k *Kernel) ownRx(rx tunRxKey, p *Port) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if o := k.rxOwners[rx]; o != nil && o != p {
		return false
	}
	k.rxOwners[rx] = p
	return true
}

// disownRx gives up p's ownership of rx; false if p did not own it.
func (k *Kernel) disownRx(rx tunRxKey, p *Port) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.rxOwners[rx] != p {
		return false
	}
	delete(k.rxOwners, rx)
	return true
}

// same reports whether tp and o are the same path.
func (tp *TunnelPath) same(o *TunnelPath) bool {
	return bytes.Equal(tp.Header, o.Header) && tp.Ifindex == o.Ifindex && tp.MTU == o.MTU &&
		tp.Remote == o.Remote && tp.Local == o.Local && tp.Key == o.Key && tp.Receive == o.Receive
}

// OrderEncap returns ops in an order the kernel can run them in as far
// as tunnels go, or false: at most one encapsulation, the last output,
// with no VLAN tag pushed before it (the tag would be left on the outer
// frame). A list of outputs alone with the encapsulation anywhere gets
// it moved last: outputs to different ports happen in no order anyone
// can see, and the kernel sends the others as clones before it changes
// the packet itself. ops is reordered in place.
func OrderEncap(ops []Op) ([]Op, bool) {
	enc := -1
	outputsOnly, tagBefore, outputAfter := true, false, false
	for i, o := range ops {
		switch o.kind {
		case opEncap:
			if enc >= 0 {
				return nil, false
			}
			enc = i
		case opOutput:
			outputAfter = outputAfter || enc >= 0
		case opPushVLAN, opUndoPop:
			tagBefore = tagBefore || enc < 0
			outputsOnly = false
		default:
			outputsOnly = false
		}
	}
	switch {
	case enc < 0 || !tagBefore && !outputAfter:
		return ops, true
	case !outputsOnly:
		return nil, false
	}
	e := ops[enc]
	copy(ops[enc:], ops[enc+1:])
	ops[len(ops)-1] = e
	return ops, true
}

// holdDecap puts the decapsulation program on device ifindex, or counts
// one more user of it there.
func (k *Kernel) holdDecap(ifindex int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if d := k.decaps[ifindex]; d != nil {
		d.refs++
		return nil
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: k.decap, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		return fmt.Errorf("offload: attaching the decapsulation program to tc ingress of device %d: %w", ifindex, err)
	}
	k.decaps[ifindex] = &decapLink{l: l, refs: 1}
	return nil
}

// releaseDecap takes the program off device ifindex with its last user.
func (k *Kernel) releaseDecap(ifindex int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	d := k.decaps[ifindex]
	if d == nil {
		return
	}
	if d.refs--; d.refs == 0 {
		d.l.Close()
		delete(k.decaps, ifindex)
	}
}

// ne32 is an IPv4 address as the program reads it: wire order bytes in
// a native integer.
func ne32(a [4]byte) uint32 {
	return uint32(a[0]) | uint32(a[1])<<8 | uint32(a[2])<<16 | uint32(a[3])<<24
}
