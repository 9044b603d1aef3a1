package vswitchd

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"gvs/internal/connmgr"
	"gvs/internal/conntrack"
	"gvs/internal/datapath"
	"gvs/internal/guard"
	"gvs/internal/netdev"
	"gvs/internal/ofproto"
	"gvs/internal/ovsdb"
)

// iface is an interface that the switch has set up (or tried to).
type iface struct {
	want   *wantPort
	key    string
	dev    netdev.Netdev // nil for patch ports and for failures
	dpPort *datapath.Port
	dpNo   uint32
	ofport int64 // -1 when the interface could not be set up
	err    string
}

// datapathState is what the reconciler has built from the database.
type datapathState struct {
	mu      sync.Mutex // held while applying, and by runtime commands
	dp      *datapath.Datapath
	bridges map[string]*ofproto.Bridge
	ifaces  map[string]*iface // by interface (device) name
	nextDP  uint32

	// captureDir is where pcap ports may write (netdev.Config.CaptureDir).
	captureDir string

	// rundir is where bridges' <name>.mgmt sockets go; channels are
	// their OpenFlow channels, by bridge name.
	rundir   string
	channels map[string]*connmgr.Service
	// onControllerStatus is given to each channel (OnStatusChange).
	onControllerStatus func()

	mirrorStat  map[ovsdb.UUID]*ofproto.MirrorStats // by Mirror row
	liveMirrors map[ovsdb.UUID]bool                 // mirrors of the last apply

	// ct is the datapath's connection tracker (one, as the datapath);
	// stopSweep ends the goroutine that removes its expired connections.
	ct        *conntrack.Tracker
	stopSweep func()
	// zoneTimeouts are the zones' timeout policies last given to ct.
	zoneTimeouts map[uint16]conntrack.Timeouts

	// violations are the Interface rows that fail a row check, by UUID,
	// when a remote server (which cannot run the checks) serves the
	// database; their text goes to Interface.error.
	violations map[ovsdb.UUID]string

	// infos are the devices' Info read during this reconciliation, by
	// interface (devInfo); nil outside one.
	infos map[*iface]netdev.Info

	// bonds are the bonds, by Port row; liveBonds those of the last
	// apply (see bondFor); stopBonds ends their link monitoring.
	bonds     map[ovsdb.UUID]*ofproto.Bond
	liveBonds map[ovsdb.UUID]bool
	stopBonds func()

	// spans are the running span sessions, by name; spanChanged asks
	// for their status to be written back soon.
	spans          map[string]*liveSpan
	spanChanged    func()
	spanCaptureDir atomic.Pointer[string] // captureDir, for the commit check
}

// setViolations records the Interface rows that fail a row check.
func (st *datapathState) setViolations(v map[ovsdb.UUID]string) {
	st.mu.Lock()
	st.violations = v
	st.mu.Unlock()
}

// ctSweepInterval is how often expired connections are removed from the
// tracker; the packet path drops those it meets itself.
const ctSweepInterval = time.Second

func newDatapathState() *datapathState {
	st := &datapathState{dp: datapath.New(), bridges: map[string]*ofproto.Bridge{},
		ifaces: map[string]*iface{}, nextDP: 1, mirrorStat: map[ovsdb.UUID]*ofproto.MirrorStats{}}
	st.ct = conntrack.New(conntrack.Config{Clock: datapath.Monotime})
	st.dp.SetTracker(st.ct)
	st.stopSweep = st.ct.StartSweeper(ctSweepInterval, datapath.Monotime)
	st.bonds = map[ovsdb.UUID]*ofproto.Bond{}
	st.stopBonds = st.startBondMonitor()
	return st
}

// apply makes the datapath match the snapshot, touching only what changed:
// an interface whose bridge, type and options are unchanged keeps its
// device and its port thread.
func (st *datapathState) apply(snap *ovsdb.Snapshot) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.infos = map[*iface]netdev.Info{}
	bridges := desiredBridges(snap)
	_ = st.dp.SetFlowLimit(readFlowLimit(snap)) // the commit check keeps it in range
	_ = st.dp.SetBusyPoll(readBusyPoll(snap))   // and this one
	wanted := st.wantedIfaces(bridges)
	st.closeUnwanted(wanted)
	st.openWanted(wanted)
	st.syncBridges(bridges)
	st.assignOfports(bridges)
	st.liveMirrors = map[ovsdb.UUID]bool{}
	st.liveBonds = map[ovsdb.UUID]bool{}
	st.configureBridges(bridges)
	st.forgetBonds()
	st.configureDatapath()
	st.syncChannels(bridges)
	st.applySpans(snap)
	st.applyZoneTimeouts(snap)
	if err := st.dp.SetOffload(readHWOffload(snap)); err != nil {
		vswitchdLog.WarnRL(statusRL, "other_config:hw-offload: %v", err)
	}
	for u, s := range st.mirrorStat {
		if !st.liveMirrors[u] {
			st.dp.ForgetCopyStats(&s.Copy) // its held copies' drops are charged to no row
			delete(st.mirrorStat, u)
		}
	}
}

// devInfo is the Info of ifc's device, read once a reconciliation: the
// OpenFlow channels' port lists (syncChannels) and the status written
// back (statusOps) both need every port's, and each read is a few system
// calls and an rtnetlink request (a third of a reconciliation's time with
// 1,024 internal ports). The caller holds st.mu.
func (st *datapathState) devInfo(ifc *iface) netdev.Info {
	if info, ok := st.infos[ifc]; ok {
		return info
	}
	info := ifc.dev.Info()
	if st.infos != nil {
		st.infos[ifc] = info
	}
	return info
}

// wantedIfaces maps interface names to their desired state. A name used by
// two ports keeps the first and reports an error on the other.
func (st *datapathState) wantedIfaces(bridges []*wantBridge) map[string]*wantPort {
	out := map[string]*wantPort{}
	for _, b := range bridges {
		for _, p := range b.ports {
			if _, dup := out[p.name]; dup {
				p.vlanErr = fmt.Sprintf("could not add network device %s: an interface with this name is already on a bridge", p.name)
				continue
			}
			out[p.name] = p
		}
	}
	return out
}

func (st *datapathState) closeUnwanted(wanted map[string]*wantPort) {
	for name, ifc := range st.ifaces {
		w, ok := wanted[name]
		if ok && w.key() == ifc.key && ifc.err == "" {
			continue
		}
		if ifc.dev != nil {
			if err := ifc.dev.Close(); err != nil {
				vswitchdLog.Warn("interface %s: closing: %v", name, err)
			}
		}
		if b := st.bridges[ifc.want.bridge]; b != nil {
			b.MACs.FlushPort(ifc.dpNo)
		}
		delete(st.ifaces, name)
	}
}

// maxInterfaces bounds the interfaces gvsd sets up at once, over every
// bridge: each costs a port thread with its buffers (about 3.5 MiB), and
// most a file descriptor or a kernel device. A variable for tests.
var maxInterfaces = MaxInterfaces

// MaxInterfaces is the default of maxInterfaces.
const MaxInterfaces = 4096

func (st *datapathState) openWanted(wanted map[string]*wantPort) {
	names := make([]string, 0, len(wanted))
	for n := range wanted {
		names = append(names, n)
	}
	sort.Strings(names)
	working := 0
	for _, ifc := range st.ifaces {
		if ifc.err == "" {
			working++
		}
	}
	for _, name := range names {
		w := wanted[name]
		if ifc, ok := st.ifaces[name]; ok {
			ifc.want = w
			continue
		}
		ifc := &iface{want: w, key: w.key(), dpNo: st.nextDP}
		st.nextDP++
		if working >= maxInterfaces {
			// Not opened; tried again at every reconfiguration, so
			// it opens once others are deleted.
			ifc.err = fmt.Sprintf("could not open network device %s (too many interfaces: gvsd sets up at most %d)", w.name, maxInterfaces)
		} else if ifc.err = st.open(ifc); ifc.err == "" {
			working++
		}
		st.ifaces[name] = ifc
	}
}

// open sets up the interface's device, returning the Interface.error text.
func (st *datapathState) open(ifc *iface) string {
	w := ifc.want
	if w.bondErr != "" {
		return w.bondErr
	}
	if w.typ == "patch" {
		if w.options["peer"] == "" {
			return fmt.Sprintf("%s: patch port requires options:peer", w.name)
		}
		return ""
	}
	var dev netdev.Netdev
	var err error
	// A driver bug fails this interface, with the reason in its row, not
	// every reconfiguration after it.
	if perr := guard.Call(vswitchdLog, bridgePanics, "interface "+w.name+": opening", func() {
		dev, err = netdev.Open(netdev.Config{Name: w.name, Type: w.typ, Options: w.options, Bridge: w.bridge, MTU: int(w.mtuReq), CaptureDir: st.captureDir})
	}); perr != nil {
		return perr.Error()
	}
	if err != nil {
		ifaceOpenError.Inc()
		// A failed interface is tried again at every reconfiguration,
		// and its error may quote megabytes a client wrote: the log
		// gets it cut, and not every time (Interface.error has it).
		text := cutError(err.Error())
		vswitchdLog.WarnRL(openFailRL, "bridge %s: cannot open interface %s: %s", w.bridge, w.name, text)
		return text
	}
	ifc.dev = dev
	return ""
}

// syncBridges creates and deletes ofproto bridges.
func (st *datapathState) syncBridges(bridges []*wantBridge) {
	live := map[string]bool{}
	for _, b := range bridges {
		live[b.name] = true
		br, ok := st.bridges[b.name]
		if !ok {
			br = ofproto.NewBridge(b.name, b.macTableMax, b.macAging)
			st.bridges[b.name] = br
		}
		br.MACs.SetAging(b.macAging)
		br.MACs.SetLimit(b.macTableMax) // a live bridge takes a new size too
	}
	for name := range st.bridges {
		if !live[name] {
			ofproto.ForgetBridge(st.bridges[name])
			delete(st.bridges, name)
		}
	}
}

// assignOfports gives each working interface an OpenFlow port number:
// the one it has, the requested one, 65534 for the bridge's own port, or
// the lowest free number. Interfaces that failed get -1.
func (st *datapathState) assignOfports(bridges []*wantBridge) {
	for _, b := range bridges {
		used := map[int64]bool{}
		var pending []*iface
		for _, p := range b.ports {
			ifc := st.ifaces[p.name]
			if ifc == nil || ifc.want != p {
				continue
			}
			if ifc.err != "" {
				ifc.ofport = -1
				continue
			}
			if ifc.ofport > 0 && !used[ifc.ofport] && (p.ofportReq <= 0 || p.ofportReq == ifc.ofport) {
				used[ifc.ofport] = true
				continue
			}
			ifc.ofport = 0
			pending = append(pending, ifc)
		}
		st.numberPending(b, pending, used)
	}
}

func (st *datapathState) numberPending(b *wantBridge, pending []*iface, used map[int64]bool) {
	// Requests and previous numbers first, so that they win over the
	// lowest-free choice of others.
	for _, ifc := range pending {
		w := ifc.want
		switch {
		case w.name == b.name:
			ifc.ofport = ofproto.LocalPort
		case w.ofportReq > 0 && !used[w.ofportReq]:
			ifc.ofport = w.ofportReq
		case w.ofportReq <= 0 && w.ofport > 0 && !used[w.ofport]:
			ifc.ofport = w.ofport
		default:
			continue
		}
		used[ifc.ofport] = true
	}
	next := int64(1)
	for _, ifc := range pending {
		if ifc.ofport != 0 {
			continue
		}
		for used[next] {
			next++
		}
		ifc.ofport = next
		used[next] = true
	}
}

// configureBridges builds each bridge's translation config, patch peers
// included.
func (st *datapathState) configureBridges(bridges []*wantBridge) {
	for _, b := range bridges {
		br := st.bridges[b.name]
		cfg := &ofproto.Config{Ports: map[uint32]*ofproto.Port{}, ForwardBPDU: b.forwardBPDU, VLANLimit: b.vlanLimit}
		byPortRow := map[ovsdb.UUID]*ofproto.Port{}
		bondPorts := map[ovsdb.UUID][]*ofproto.Port{}
		for _, v := range b.floodVLANs {
			cfg.FloodVLANs.Add(uint16(v))
		}
		for _, p := range b.ports {
			ifc := st.ifaces[p.name]
			if ifc == nil || ifc.want != p || ifc.err != "" {
				continue
			}
			port := &ofproto.Port{Name: p.name, OFPort: uint32(ifc.ofport), DPPort: ifc.dpNo, VLAN: p.vlan}
			if p.typ != "patch" {
				port.Dev = ifc.dev
			}
			if p.typ == "patch" {
				st.linkPatch(port, p)
			}
			if t, ok := ifc.dev.(netdev.TunnelFlowPort); ok {
				port.TunnelFlow = t.TunnelFlow()
			}
			if p.bond != nil {
				port.Bond = st.bondFor(p.portUUID, p.port)
				bondPorts[p.portUUID] = append(bondPorts[p.portUUID], port)
			}
			cfg.Ports[ifc.dpNo] = port
			cfg.Flood = append(cfg.Flood, port)
			byPortRow[p.portUUID] = port
		}
		sort.Slice(cfg.Flood, func(i, j int) bool { return cfg.Flood[i].OFPort < cfg.Flood[j].OFPort })
		for _, ports := range bondPorts {
			ports[0].Bond.Configure(ports, st.wantBondOf(b, ports[0]))
		}
		cfg.Mirrors = st.buildMirrors(b, byPortRow)
		mirrorBondMembers(cfg.Mirrors, byPortRow, bondPorts)
		br.SetConfig(cfg)
	}
}

// linkPatch points a patch port at its peer, if the peer exists and is a
// patch port pointing back.
func (st *datapathState) linkPatch(port *ofproto.Port, p *wantPort) {
	peer := st.ifaces[p.options["peer"]]
	if peer == nil || peer.want.typ != "patch" || peer.want.options["peer"] != p.name {
		return
	}
	port.PeerBridge = st.bridges[peer.want.bridge]
	port.PeerDPPort = peer.dpNo
}

// configureDatapath installs the ports that have devices.
func (st *datapathState) configureDatapath() {
	cfg := &datapath.Config{Ports: map[uint32]*datapath.Port{}}
	for name, ifc := range st.ifaces {
		if ifc.dev == nil {
			continue
		}
		br := st.bridges[ifc.want.bridge]
		if ifc.dpPort == nil || ifc.dpPort.Translator != br {
			ifc.dpPort = &datapath.Port{No: ifc.dpNo, Name: name, Dev: ifc.dev, Translator: br}
		}
		cfg.Ports[ifc.dpNo] = ifc.dpPort
	}
	st.dp.SetConfig(cfg)
}

// close shuts every device down at exit. Without cleanup, devices that
// can outlive gvsd (internal ports) are detached, not deleted.
// The devices go first: that releases the port threads blocked reading
// them, which the datapath's Close then waits for.
func (st *datapathState) close(cleanup bool) {
	// Before st.mu: the monitor takes it.
	if st.stopBonds != nil {
		st.stopBonds()
		st.stopBonds = nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.closeChannels()
	if st.stopSweep != nil {
		st.stopSweep()
		st.stopSweep = nil
	}
	st.closeSpans()
	for _, ifc := range st.ifaces {
		if d, ok := ifc.dev.(netdev.Detacher); ok && !cleanup {
			d.Detach()
		} else if ifc.dev != nil {
			if err := ifc.dev.Close(); err != nil {
				vswitchdLog.Err("exit: %v", err)
			}
		}
	}
	st.dp.Close()
}
