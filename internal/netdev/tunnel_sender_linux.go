//go:build linux

package netdev

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"gvs/internal/packet"
)

// TunnelSender is the sending half of a tunnel port on its own: it
// encapsulates frames as a tunnel port with the same outer headers does
// and hands them to the host's routing through the same raw IP socket,
// and receives nothing (so it takes no underlay and conflicts with no
// port). gvs span's tunnel destinations use it.
type TunnelSender struct {
	w   tunnelWriter
	cut Sender // cuts super-frames: a tunnel carries wire-size frames
}

// TunnelSenderConfig is what a TunnelSender sends.
type TunnelSenderConfig struct {
	Name  string              // for messages
	Encap packet.TunnelConfig // outer headers; Src unset: the route's source
	// Mark, if HasMark, is the fwmark (SO_MARK) of the encapsulated
	// packets, for the host's policy routing and firewall, and of the
	// route lookups that pick their source address.
	Mark    uint32
	HasMark bool
}

// tunnelSenderBuf is the socket buffer of a TunnelSender: copies come
// in bursts (a super-frame is 44 segments), which should wait there
// rather than be dropped while the kernel keeps up.
const tunnelSenderBuf = 4 << 20

// NewTunnelSender opens the sockets of a TunnelSender.
func NewTunnelSender(cfg TunnelSenderConfig) (*TunnelSender, error) {
	if !cfg.Encap.Dst.IsValid() {
		return nil, fmt.Errorf("%s: no remote address", cfg.Name)
	}
	o := &tunnelOptions{encap: cfg.Encap, remote: cfg.Encap.Dst.Unmap(), local: cfg.Encap.Src, v6: cfg.Encap.Dst.Unmap().Is6(),
		autoSrc: !cfg.Encap.Src.IsValid() || cfg.Encap.Src.IsUnspecified(),
		direct:  !cfg.HasMark} // a mark is for the host's routing and firewall: every frame goes through them
	if o.autoSrc {
		o.local, o.encap.Src = netip.Addr{}, netip.Addr{}
	}
	s := &TunnelSender{}
	if err := s.w.init(cfg.Name, o); err != nil {
		return nil, err
	}
	if err := s.w.setup(cfg.HasMark, cfg.Mark); err != nil {
		err = fmt.Errorf("SO_MARK: %w", err)
		s.w.close()
		return nil, fmt.Errorf("%s: %w", cfg.Name, err)
	}
	return s, nil
}

// Send encapsulates and sends b's frames: super-frames are cut first and
// unfinished checksums completed, as for any port that takes no
// super-frames. It belongs to one goroutine at a time.
func (s *TunnelSender) Send(b *Batch) TxResult {
	r, _ := s.cut.SendTo(s, b)
	return r
}

// Transmit sends wire-size frames; it is Send's Transmitter.
func (s *TunnelSender) Transmit(b *Batch) (TxResult, error) {
	for i, f := range b.Frames {
		if !b.Meta[i].Off.h.finish(f) {
			b.Frames[i] = f[:0] // its checksum offsets lie: sent as an error
		}
	}
	return s.w.send(b.Frames, nil).result(), nil
}

// Close closes the sockets.
func (s *TunnelSender) Close() error { return s.w.close() }

// setup gives a TunnelSender's sockets its mark and a larger send buffer.
// The route lookup socket carries the mark too, so that the source
// address comes from the route the marked packets take.
func (w *tunnelWriter) setup(hasMark bool, mark uint32) error {
	var err error
	ctl := w.rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, tunnelSenderBuf)
		if hasMark {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
		}
	})
	if err = errors.Join(err, ctl); err != nil || !hasMark {
		return err
	}
	if err = w.gso.setMark(mark); err != nil {
		return err
	}
	w.routeMu.Lock()
	if w.route >= 0 {
		err = unix.SetsockoptInt(w.route, unix.SOL_SOCKET, unix.SO_MARK, int(mark))
	}
	w.routeMu.Unlock()
	if err != nil {
		return err
	}
	w.checked = time.Time{} // look the source up again, marked
	w.refreshSource(time.Now())
	return nil
}
