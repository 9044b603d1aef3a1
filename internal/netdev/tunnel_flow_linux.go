//go:build linux

package netdev

import (
	"net/netip"
	"time"

	"gvs/internal/coverage"
	"gvs/internal/packet"
)

// tunnelFlowNoRemote counts frames for a port with remote_ip=flow that
// carried no tun_dst (or one of the other IP version): there is nowhere
// to send them.
var tunnelFlowNoRemote = coverage.New("tunnel_flow_no_remote")

// tunnelFlowToSelf counts frames for a port with remote_ip=flow whose
// tun_dst is the address the frames would leave from: a frame received
// from a tunnel keeps its metadata, whose tun_dst is this host, so a
// mirror or an output of it into a flow-based port would tunnel to
// itself. OVS 3.1 drops those too ("Not tunneling to our own address").
var tunnelFlowToSelf = coverage.New("tunnel_flow_to_self")

// TunnelFlow says which outer values p takes from the flow.
func (p *tunnelPort) TunnelFlow() TunnelFlow {
	o := p.opts
	return TunnelFlow{Remote: o.remoteFlow, Local: o.localFlow, Key: o.outKeyFlow, OAM: o.encap.Type == packet.TunnelGeneve}
}

// sendFlows sends frames of a flow-based port, or of a Geneve port: each
// run of frames with the same tunnel metadata (a batch is mostly one
// run) goes out with the remote, source and key it gives, and Geneve's
// O bit from its tun_flags.
func (w *tunnelWriter) sendFlows(frames [][]byte, meta []FrameMeta, now time.Time, ts uint32) {
	for start := 0; start < len(frames); {
		md := tunOf(meta, start)
		end := start + 1
		for end < len(frames) && sameTun(tunOf(meta, end), md) {
			end++
		}
		switch {
		case !w.applyFlow(md):
			w.count.dropped += uint64(end - start)
			tunnelFlowNoRemote.Add(uint64(end - start))
		case w.opts.remoteFlow && w.toSelf(now):
			w.count.dropped += uint64(end - start)
			tunnelFlowToSelf.Add(uint64(end - start))
		default:
			w.sendRun(frames[start:end], now, ts)
		}
		start = end
	}
}

func tunOf(meta []FrameMeta, i int) *packet.TunnelMeta {
	if i < len(meta) {
		return meta[i].Tun
	}
	return nil
}

// sameTun compares two frames' metadata; most frames of a batch share
// one pointer.
func sameTun(a, b *packet.TunnelMeta) bool {
	return a == b || (a != nil && b != nil && *a == *b)
}

// applyFlow points the writer at md's remote, source and key where the
// options say "flow"; false when the frames have nowhere to go. The
// header template is rebuilt only when something changed.
func (w *tunnelWriter) applyFlow(md *packet.TunnelMeta) bool {
	o := w.opts
	var zero packet.TunnelMeta
	if md == nil {
		md = &zero
	}
	w.encap.SetOAM(md.Flags&packet.TunFlagOAM != 0) // Geneve only
	remote, src, auto, key := w.remote, o.local, o.autoSrc, o.encap.Key
	if o.remoteFlow {
		remote = md.Remote()
		if !remote.IsValid() || remote.Is6() != o.v6 {
			return false
		}
	}
	if o.localFlow {
		if l := md.Local(); l.IsValid() && l.Is6() == o.v6 {
			src, auto = l, false
		}
	}
	if o.outKeyFlow {
		key = uint32(md.ID)
	}
	if remote == w.remote && src == w.fixedSrc && auto == w.autoSrc && key == w.key {
		return true
	}
	encSrc := src
	if auto {
		encSrc = w.encap.Config().Src // the route's, until looked up again below
		if remote != w.remote {
			w.checked = time.Time{}
		}
	}
	if w.encap.SetFlow(encSrc, remote, key) != nil {
		return false
	}
	w.setRemote(remote)
	w.fixedSrc, w.autoSrc, w.key = src, auto, key
	return true
}

// toSelf reports whether the remote is the frames' own source address:
// local_ip's, or the one the route to the remote picks (the remote
// itself when it is this host's).
func (w *tunnelWriter) toSelf(now time.Time) bool {
	if !w.autoSrc {
		return w.remote == w.fixedSrc
	}
	if r, ok := tunnelRouter.Lookup(w.remote, 0); ok && r.Local {
		return true
	}
	if _, _, ok := w.nativeRoute(); ok {
		return false
	}
	w.refreshSource(now) // sendRun would do it next: no extra lookup
	return w.source == w.remote
}

// setRemote makes remote the destination of the raw socket's messages.
func (w *tunnelWriter) setRemote(remote netip.Addr) {
	w.remote = remote
	if remote.Is6() {
		w.sa6 = unixSockaddr6(remote)
	} else {
		w.sa4 = unixSockaddr4(remote)
	}
}
