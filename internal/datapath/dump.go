package datapath

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"gvs/internal/conntrack"
	"gvs/internal/flow"
	"gvs/internal/netdev"
	"gvs/internal/packet"
)

// SetFlowLimit bounds each port thread's flow cache to n flows (the
// oldest are evicted to make room); 0 turns caching off.
func (dp *Datapath) SetFlowLimit(n int) error {
	if n < 0 || n > MaxFlowLimit {
		return fmt.Errorf("flow-limit %d: must be 0 to %d", n, MaxFlowLimit)
	}
	if int64(n) != dp.flowLimit.Swap(int64(n)) {
		Invalidate()
	}
	return nil
}

// SetBusyPoll sets how long the port threads whose devices can spin
// (netdev.BusyPoller: system ports) watch their idle rings, one thread
// at a time for them all, before they sleep; 0, the default, never
// spins. Spinning saves a thread wake-up per crossing, at the cost of a
// core kept busy while traffic comes at least that often.
func (dp *Datapath) SetBusyPoll(d time.Duration) error {
	if d < 0 || d > netdev.MaxBusyPoll {
		return fmt.Errorf("busy-poll time %v: must be 0 to %v", d, netdev.MaxBusyPoll)
	}
	dp.poll.SetSpin(d)
	return nil
}

// BusyPoll returns the busy-poll time.
func (dp *Datapath) BusyPoll() time.Duration { return dp.poll.Spin() }

// FlowLimit returns the per-thread flow limit.
func (dp *Datapath) FlowLimit() int { return int(dp.flowLimit.Load()) }

// CachedFlow is one flow of a port thread's cache, as dumps show it.
type CachedFlow struct {
	InPort  uint32
	Key     Key // masked
	Mask    Key
	Packets uint64
	Bytes   uint64
	// Used is how long ago the flow last matched a packet; negative if
	// it never did.
	Used    time.Duration
	Actions []Action
	// Offloaded says the kernel fast path forwards its packets too.
	Offloaded bool
}

// Flows returns the current flows of the caches of the ports that want
// selects (nil: every port), sorted by input port then installation.
// Stale flows (made before the last change) are left out.
func (dp *Datapath) Flows(want func(port uint32) bool) []CachedFlow {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	gen, now := generation.Load(), monotime()
	var out []CachedFlow
	for p, t := range dp.threads {
		if want != nil && !want(p.No) {
			continue
		}
		out = t.cache.appendFlows(out, p.No, gen, now)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].InPort < out[j].InPort })
	return out
}

// appendFlows appends c's live flows.
func (c *flowCache) appendFlows(out []CachedFlow, port uint32, gen uint64, now int64) []CachedFlow {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.order[c.head:] {
		f := e.f
		if !e.live() || f.gen != gen || (f.expires != 0 && now >= f.expires) {
			continue
		}
		if f.kf.Valid() {
			c.pullFlow(f)
			c.accountFlow(f)
			c.wall = time.Time{}
		}
		used := time.Duration(-1)
		if u := f.used; u != 0 {
			used = time.Duration(now - u)
		}
		out = append(out, CachedFlow{InPort: port, Key: f.key(), Mask: f.st.mask,
			Packets: f.packets, Bytes: f.bytes, Used: used, Offloaded: f.kf.Valid(),
			Actions: append([]Action(nil), f.actions...)})
	}
	return out
}

// DelFlows empties every port thread's flow cache.
func (dp *Datapath) DelFlows() {
	Invalidate()
	dp.mu.Lock()
	defer dp.mu.Unlock()
	for _, t := range dp.threads {
		t.cache.mu.Lock()
		t.cache.flush()
		t.cache.mu.Unlock()
	}
}

// String prints the flow in the style of OVS's datapath flow dumps:
// the input port, the masked match (in ovs-ofctl's match syntax, without
// in_port), the counters, the time since last use and the actions.
// portName names datapath ports; nil prints numbers.
func (f *CachedFlow) String(portName func(uint32) string) string {
	if portName == nil {
		portName = func(p uint32) string { return fmt.Sprint(p) }
	}
	var b strings.Builder
	recirc := "0" // OVS prints recirc_id(0), and other ids in hex
	if f.Key.RecircID != 0 {
		recirc = fmt.Sprintf("%#x", f.Key.RecircID)
	}
	key, mask := f.Key.Key, f.Mask.Key
	if t := formatTunnelKey(&key, &mask); t != "" { // first, as in OVS's dumps
		b.WriteString(t + ",")
	}
	clearTunnelKey(&key)
	clearTunnelKey(&mask)
	fmt.Fprintf(&b, "recirc_id(%s),in_port(%s)", recirc, portName(f.InPort))
	key.InPort, mask.InPort = 0, 0
	key.RecircID, mask.RecircID = 0, 0
	if m := flow.NewMatch(key, mask).String(); m != "" {
		b.WriteString(",")
		b.WriteString(m)
	}
	for i, tp := range f.Mask.VLANTPID {
		if tp != 0 && f.Key.VLANTPID[i] != 0 && f.Key.VLANTPID[i] != packet.EtherTypeVLAN {
			fmt.Fprintf(&b, ",vlan_tpid%d(0x%04x)", i, f.Key.VLANTPID[i])
		}
	}
	used := "never"
	if f.Used >= 0 {
		used = fmt.Sprintf("%.3fs", f.Used.Seconds())
	}
	fmt.Fprintf(&b, ", packets:%d, bytes:%d, used:%s", f.Packets, f.Bytes, used)
	if f.Offloaded {
		b.WriteString(", offloaded:yes, dp:tc")
	}
	fmt.Fprintf(&b, ", actions:%s", FormatActions(f.Actions, portName))
	return b.String()
}

// FormatActions prints actions as OVS's datapath flow dumps do: output
// ports by number (or portName), push_vlan, pop_vlan, set, trunc; "drop"
// for none.
func FormatActions(acts []Action, portName func(uint32) string) string {
	if len(acts) == 0 {
		return "drop"
	}
	if portName == nil {
		portName = func(p uint32) string { return fmt.Sprint(p) }
	}
	parts := make([]string, 0, len(acts))
	for i := 0; i < len(acts); i++ {
		if acts[i].Kind == ActClone {
			n := min(int(acts[i].Len), len(acts)-i-1)
			parts = append(parts, "clone("+FormatActions(acts[i+1:i+1+n], portName)+")")
			i += n
			continue
		}
		parts = append(parts, formatAction(&acts[i], portName))
	}
	return strings.Join(parts, ",")
}

func formatAction(a *Action, portName func(uint32) string) string {
	switch a.Kind {
	case ActOutput:
		return portName(a.Port)
	case ActPushVLAN:
		tci := a.TCI
		s := fmt.Sprintf("vid=%d,pcp=%d)", tci&packet.VLANVIDMask, tci>>13)
		if a.TPID != packet.EtherTypeVLAN {
			return fmt.Sprintf("push_vlan(tpid=0x%04x,", a.TPID) + s
		}
		return "push_vlan(" + s
	case ActPopVLAN:
		return "pop_vlan"
	case ActTruncate:
		return fmt.Sprintf("trunc(%d)", a.Len)
	case ActSetField:
		return "set(" + formatSet(a) + ")"
	case ActUserspace:
		return "userspace(controller)"
	case ActCT:
		return formatCT(a.CT)
	case ActRecirc:
		return fmt.Sprintf("recirc(%#x)", a.Value)
	case ActCTClear:
		return "ct_clear"
	case ActSetTunnel:
		return formatTunnel(a.Tun)
	}
	return fmt.Sprintf("unknown(%d)", a.Kind)
}

func formatSet(a *Action) string {
	v := a.Value
	mac := func() string {
		var m [6]byte
		for i := range m {
			m[i] = byte(v >> (40 - 8*i))
		}
		return net.HardwareAddr(m[:]).String()
	}
	ip := func() string { return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).String() }
	switch a.Field {
	case FieldEthSrc:
		return "eth(src=" + mac() + ")"
	case FieldEthDst:
		return "eth(dst=" + mac() + ")"
	case FieldIPv4Src:
		return "ipv4(src=" + ip() + ")"
	case FieldIPv4Dst:
		return "ipv4(dst=" + ip() + ")"
	case FieldIPv4TOS:
		return fmt.Sprintf("ipv4(tos=0x%x)", v)
	case FieldIPv4TTL:
		return fmt.Sprintf("ipv4(ttl=%d)", v)
	case FieldTpSrc:
		return fmt.Sprintf("l4(src=%d)", v)
	case FieldTpDst:
		return fmt.Sprintf("l4(dst=%d)", v)
	}
	return fmt.Sprintf("field%d(%d)", a.Field, v)
}

// formatCT prints a ct action as OVS's datapath flow dumps do.
func formatCT(a *conntrack.Action) string {
	if a == nil {
		return "ct"
	}
	var parts []string
	if a.Commit {
		parts = append(parts, "commit")
	}
	if a.Force {
		parts = append(parts, "force")
	}
	if a.Zone != 0 {
		parts = append(parts, fmt.Sprintf("zone=%d", a.Zone))
	}
	if a.SetMark {
		parts = append(parts, fmt.Sprintf("mark=%#x/%#x", a.Mark, a.MarkMask))
	}
	if a.SetLabel {
		parts = append(parts, fmt.Sprintf("label=0x%x/0x%x", a.Label, a.LabelMask))
	}
	switch a.ALG {
	case conntrack.ALGFTP:
		parts = append(parts, "helper=ftp")
	case conntrack.ALGTFTP:
		parts = append(parts, "helper=tftp")
	}
	if a.HasNAT {
		parts = append(parts, formatNAT(&a.NAT))
	}
	if len(parts) == 0 {
		return "ct"
	}
	return "ct(" + strings.Join(parts, ",") + ")"
}

func formatNAT(n *conntrack.NAT) string {
	kind := map[conntrack.NATKind]string{conntrack.NATSrc: "src", conntrack.NATDst: "dst"}[n.Kind]
	if kind == "" {
		return "nat"
	}
	s := kind
	if n.AddrMin.IsValid() {
		s += "=" + n.AddrMin.String()
		if n.AddrMax.IsValid() && n.AddrMax != n.AddrMin {
			s += "-" + n.AddrMax.String()
		}
		if n.PortMin != 0 {
			s += fmt.Sprintf(":%d", n.PortMin)
			if n.PortMax > n.PortMin {
				s += fmt.Sprintf("-%d", n.PortMax)
			}
		}
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{n.Persistent, "persistent"}, {n.Hash, "hash"}, {n.Random, "random"}} {
		if f.on {
			s += "," + f.name
		}
	}
	return "nat(" + s + ")"
}

// formatTunnel prints a set-tunnel as OVS prints set(tunnel(...)):
// the id, and the endpoints that are set.
func formatTunnel(m *packet.TunnelMeta) string {
	if m == nil {
		return "set(tunnel())"
	}
	s := fmt.Sprintf("set(tunnel(tun_id=%#x", m.ID)
	if a := m.Local(); a.IsValid() {
		s += fmt.Sprintf(",%s=%s", pickStr(a.Is6(), "ipv6_src", "src"), a)
	}
	if a := m.Remote(); a.IsValid() {
		s += fmt.Sprintf(",%s=%s", pickStr(a.Is6(), "ipv6_dst", "dst"), a)
	}
	if m.Flags&packet.TunFlagOAM != 0 { // as OVS prints a set(tunnel()): flags(oam|...)
		s += ",flags(oam)"
	}
	return s + "))"
}

func pickStr(cond bool, yes, no string) string {
	if cond {
		return yes
	}
	return no
}
