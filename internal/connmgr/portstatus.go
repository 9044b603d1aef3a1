package connmgr

import (
	"slices"
	"time"

	"gvs/internal/guard"
	"gvs/internal/netdev"
	"gvs/internal/openflow"
)

// Port status messages (OFPT_PORT_STATUS): the channel keeps what it
// last reported of each port and, when the bridge's ports change
// (SetInfo: ports added, deleted, renamed, with the state the switch
// read for them), a port mod changes one, or once a second while a
// connection listens (link and admin state, read from the devices),
// tells every connection that gets them of each port added, deleted or
// modified. A reconfiguration reads no device (TestReconcileReadsEach
// DeviceInfoOnce), and nobody listening, nothing is polled. They are
// queued as the other asynchronous messages are: a connection too far
// behind loses them (ofconn_async_drop), nobody waits.

// portPollInterval is how often the ports' link and admin state are
// read while a connection may get port status messages.
const portPollInterval = time.Second

// portView is what a port status message says of a port, in no
// version in particular.
type portView struct {
	no        uint32 // the flow model's numbering
	name      string
	hwAddr    [6]byte
	hasDev    bool
	adminDown bool
	linkDown  bool
	mode      netdev.LinkMode
	modeOK    bool
	config    uint32 // the bridge's config bits for the port (ofproto.PortConfig)
}

// viewOf describes p. live reads its device now: from links (one dump
// of the namespace's devices) when its device is there with the
// ifindex the switch saw, else by its Info (a few system calls); not
// live, a port prev knew keeps prev's state (the poll reads it, so a
// reconfiguration's older reading does not undo it) and a new one
// takes what the switch read at its reconfiguration (DevInfo).
func viewOf(p *Port, live bool, prev *portView, links map[string]netdev.Info) portView {
	v := portView{no: p.OFPort, name: p.Name, hwAddr: p.HWAddr}
	if p.Dev == nil {
		return v
	}
	if !live && prev != nil && prev.hasDev {
		v.hasDev, v.adminDown, v.linkDown, v.mode, v.modeOK = true, prev.adminDown, prev.linkDown, prev.mode, prev.modeOK
		return v
	}
	di := p.DevInfo
	if live {
		if l, ok := links[p.Dev.Name()]; ok && l.Ifindex != 0 && l.Ifindex == p.DevInfo.Ifindex {
			di = l
		} else {
			di = p.Dev.Info()
		}
	}
	v.hasDev, v.adminDown, v.linkDown = true, !di.AdminUp, !di.LinkUp
	if prev != nil && prev.hasDev && prev.adminDown == v.adminDown && prev.linkDown == v.linkDown {
		// The speed changes with the link: an ethtool call less a
		// port and a poll.
		v.mode, v.modeOK = prev.mode, prev.modeOK
		return v
	}
	if !di.Stale {
		if m, err := netdev.ReadLinkMode(p.Dev.Name()); err == nil {
			v.mode, v.modeOK = m, true
		}
	}
	return v
}

// desc is the port's description in version ver.
func (p *portView) desc(ver uint8) openflow.PortDesc {
	d := openflow.PortDesc{PortNo: toWirePort(p.no), HWAddr: p.hwAddr, Name: p.name}
	d.Config = p.config & portConfigBits(ver)
	if !p.hasDev {
		return d
	}
	if p.adminDown {
		d.Config |= portConfigDown
	}
	if p.linkDown {
		d.State |= portStateDown
	}
	if !p.adminDown && !p.linkDown && ver != openflow.Version10 {
		d.State |= portStateLive
	}
	if p.modeOK {
		d.Curr, d.CurrSpeed = portFeatures(p.mode, ver), p.mode.SpeedMbps*1000
	}
	return d
}

// portChange is one port status to report; old is the view before a
// modification.
type portChange struct {
	reason   uint8
	old, new portView
}

// Port status reasons (OFPPR_*).
const (
	portAdded    = 0
	portDeleted  = 1
	portModified = 2
)

// pokePorts asks the port goroutine to compare the ports with what it
// last reported; it never waits.
func (s *Service) pokePorts() {
	select {
	case s.portsPoke <- struct{}{}:
	default:
	}
}

// watchPorts reports the ports' changes as SetInfo pokes it, and polls
// their state while a connection may get port status messages.
func (s *Service) watchPorts() {
	defer s.wg.Done()
	t := time.NewTicker(portPollInterval)
	defer t.Stop()
	s.syncPorts(nil, true, false)
	for {
		select {
		case <-s.stop:
			return
		case <-s.portsPoke:
			guard.Call(connLog, connPanics, "bridge "+s.name+": port status", func() { s.syncPorts(nil, false, false) })
		case <-t.C:
			if conns := s.async.Load(); conns != nil && len(*conns) > 0 {
				guard.Call(connLog, connPanics, "bridge "+s.name+": port status", func() { s.syncPorts(nil, false, true) })
			}
		}
	}
}

// syncPorts compares the bridge's ports with what was last reported,
// and reports the differences unless quiet (a connection that starts
// listening learns nothing of what changed before); live reads the
// devices' state (viewOf). A port mod's own
// connection (source) below 1.5 gets no message of the change it made,
// as OpenFlow before 1.5 asks and OVS does.
func (s *Service) syncPorts(source *conn, quiet, live bool) {
	s.portsMu.Lock()
	defer s.portsMu.Unlock()
	info := s.info.Load()
	var links map[string]netdev.Info
	if live && len(info.Ports) > 1 {
		links, _ = netdev.LinkStates() // on failure, each port's Info
	}
	now := make(map[uint32]portView, len(info.Ports))
	var changes []portChange
	for i := range info.Ports {
		var prev *portView
		if old, ok := s.ports[info.Ports[i].OFPort]; ok {
			prev = &old
		}
		v := viewOf(&info.Ports[i], live, prev, links)
		v.config = s.bridge.PortConfig(v.no)
		now[v.no] = v
		switch old, ok := s.ports[v.no]; {
		case !ok:
			changes = append(changes, portChange{reason: portAdded, new: v})
		case old != v:
			changes = append(changes, portChange{reason: portModified, old: old, new: v})
		}
	}
	for no, old := range s.ports {
		if _, ok := now[no]; !ok {
			changes = append(changes, portChange{reason: portDeleted, new: old})
		}
	}
	s.ports = now
	if quiet || len(changes) == 0 {
		return
	}
	// Deletions first, then by port number: a stable order to read.
	slices.SortStableFunc(changes, func(a, b portChange) int {
		if (a.reason == portDeleted) != (b.reason == portDeleted) {
			if a.reason == portDeleted {
				return -1
			}
			return 1
		}
		return int(int64(a.new.no) - int64(b.new.no))
	})
	conns := s.async.Load()
	if conns == nil {
		return
	}
	for _, ch := range changes {
		for _, c := range *conns {
			c.sendPortStatus(ch, source)
		}
	}
}

// sendPortStatus queues ch for c if its configuration asks for it. A
// modification that does not show in c's version (LIVE in 1.0) is not
// sent, as in OVS.
func (c *conn) sendPortStatus(ch portChange, source *conn) {
	if c == source && c.version < openflow.Version15 || !c.receives(openflow.AsyncPortStatus, uint(ch.reason)) {
		return
	}
	d := ch.new.desc(c.version)
	if ch.reason == portModified && ch.old.desc(c.version) == d {
		return
	}
	c.sendAsync(&openflow.PortStatus{Reason: ch.reason, Desc: d})
}
