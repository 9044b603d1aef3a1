package vswitchd

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strings"

	"gvs/internal/datapath"
	"gvs/internal/ofproto"
)

// Registrar is where the switch registers its runtime commands (the
// unixctl server, reached with ovs-appctl).
type Registrar interface {
	Register(name, usage string, minArgs, maxArgs int, handler func(args []string) (string, error))
}

// RegisterCommands adds the switch's ovs-appctl commands.
func (sw *Switch) RegisterCommands(r Registrar) {
	r.Register("fdb/show", "bridge", 1, 1, sw.fdbShow)
	r.Register("fdb/flush", "[bridge]", 0, 1, sw.fdbFlush)
	r.Register("mdb/show", "bridge", 1, 1, sw.mdbDisabled)
	r.Register("mdb/flush", "[bridge]", 0, 1, sw.mdbDisabled)
	r.Register("ofproto/list", "", 0, 0, sw.ofprotoList)
	r.Register("dpif/dump-dps", "", 0, 0, sw.dpifDumpDPs)
	r.Register("dpctl/dump-dps", "", 0, 0, func([]string) (string, error) { return "netdev@ovs-netdev\n", nil })
	r.Register("revalidator/purge", "", 0, 0, func([]string) (string, error) { sw.state.dp.DelFlows(); return "", nil })
	// The cache checks each flow's generation when it is used, so there
	// is no revalidation round to wait for.
	r.Register("revalidator/wait", "", 0, 0, func([]string) (string, error) { return "", nil })
	r.Register("memory/show", "", 0, 0, sw.memoryShow)
	r.Register("qos/show", "interface", 1, 1, sw.qosShow)
	sw.registerBondCommands(r)
	// gvs has no CFM, BFD, STP or RSTP: listing them all prints
	// nothing and naming one is an error, in OVS's words.
	for _, c := range []struct{ name, usage, missing string }{
		{"cfm/show", "[interface]", "no such CFM object"},
		{"bfd/show", "[interface]", "no such bfd object"},
		{"stp/show", "[bridge]", "no such stp object"},
		{"rstp/show", "[bridge]", "No such RSTP object"},
	} {
		r.Register(c.name, c.usage, 0, 1, func(args []string) (string, error) {
			if len(args) == 1 {
				return "", errors.New(c.missing)
			}
			return "", nil
		})
	}
	r.Register("dpif/show", "", 0, 0, sw.dpifShow)
	r.Register("dpif/dump-flows", "[-m] [--names | --no-names] bridge", 1, 4, sw.dpifDumpFlows)
	r.Register("dpctl/dump-flows", "[-m] [--names | --no-names] [dp]", 0, 4, sw.dpctlDumpFlows)
	r.Register("dpctl/del-flows", "[dp]", 0, 1, sw.dpctlDelFlows)
	r.Register("dpctl/offload-stats-show", "", 0, 0, sw.offloadStatsShow)
	r.Register("ofproto/trace", "[--ct-next flags]... bridge flow [-generate]", 2, 3+2*maxCtNext, sw.ofprotoTrace)
	r.Register("gvs/trace", "bridge flow [ct-next=FLAGS]...", 2, 2+maxCtNext, sw.gvsTrace)
	r.Register("gvs/conntrack", "[zone=N] [addr=A] [port=P] [proto=NAME] [state=S]", 0, 5, sw.gvsConntrack)
	sw.registerConntrack(r)
	registerTunnelCommands(r)
}

// dpifDumpFlows lists the flow cache entries of a bridge's ports, with
// port names.
func (sw *Switch) dpifDumpFlows(args []string) (string, error) {
	names, args, err := dumpFlowsOptions(args, true)
	if err != nil {
		return "", err
	}
	if len(args) != 1 {
		return "", fmt.Errorf("dpif/dump-flows: expected one bridge (got %d arguments besides options)", len(args))
	}
	st := sw.state
	st.mu.Lock()
	defer st.mu.Unlock()
	b, err := st.bridge(args[0])
	if err != nil {
		return "", err
	}
	ports := map[uint32]bool{}
	for no, p := range b.Config().Ports {
		if !p.IsPatch() {
			ports[no] = true
		}
	}
	return formatFlows(st.dp.Flows(func(no uint32) bool { return ports[no] }), st.portNamer(names)), nil
}

// dumpFlowsOptions takes the options of OVS's dump-flows commands off
// args: --names and --no-names say how ports print (names: the default
// given), -m (--more) is accepted and changes nothing, since gvs's cache
// entries have no more to show.
func dumpFlowsOptions(args []string, names bool) (bool, []string, error) {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-m", "--more":
		case "--names":
			names = true
		case "--no-names":
			names = false
		default:
			return names, args, fmt.Errorf("%s: unknown option", args[0])
		}
		args = args[1:]
	}
	return names, args, nil
}

// portNamer prints datapath ports by device name, or by number (nil)
// when names is false.
func (st *datapathState) portNamer(names bool) func(uint32) string {
	if !names {
		return nil
	}
	byNo := st.dpPortNames()
	return func(no uint32) string {
		if n, ok := byNo[no]; ok {
			return n
		}
		return fmt.Sprint(no)
	}
}

// dpPortNames maps datapath port numbers to device names.
func (st *datapathState) dpPortNames() map[uint32]string {
	names := map[uint32]string{}
	for no, p := range st.dp.Config().Ports {
		names[no] = p.Name
	}
	return names
}

// checkDP accepts the names OVS gives its datapaths; gvs has one.
func checkDP(args []string) error {
	if len(args) == 0 {
		return nil
	}
	switch args[0] {
	case "ovs-netdev", "netdev@ovs-netdev", "ovs-system", "system@ovs-system":
		return nil
	}
	return fmt.Errorf("datapath %q: no such datapath (gvs has one: netdev@ovs-netdev)", args[0])
}

// dpctlDumpFlows lists every flow cache entry, ports by number.
func (sw *Switch) dpctlDumpFlows(args []string) (string, error) {
	names, args, err := dumpFlowsOptions(args, false)
	if err != nil {
		return "", err
	}
	if len(args) > 1 {
		return "", fmt.Errorf("dpctl/dump-flows: expected at most a datapath (got %d arguments besides options)", len(args))
	}
	if err := checkDP(args); err != nil {
		return "", err
	}
	st := sw.state
	st.mu.Lock()
	namer := st.portNamer(names)
	st.mu.Unlock()
	return formatFlows(st.dp.Flows(nil), namer), nil
}

// offloadStatsShow says whether the kernel fast path
// (other_config:hw-offload) is on, how many cached flows it holds, and
// what its programs did with the packets they saw.
func (sw *Switch) offloadStatsShow([]string) (string, error) {
	on, counters, portErrs := sw.state.dp.OffloadStatus()
	var b strings.Builder
	state := "off"
	if on {
		state = "on"
	}
	fmt.Fprintf(&b, "Kernel fast path (other_config:hw-offload): %s\n", state)
	n := 0
	for _, f := range sw.state.dp.Flows(nil) {
		if f.Offloaded {
			n++
		}
	}
	fmt.Fprintf(&b, "  flows offloaded: %d\n", n)
	names := []string{"packets forwarded", "packets looked up, no flow", "packets not keyed (to gvsd)",
		"packets of stale flows (to gvsd)", "verdicts without their packet", "actions refused by the kernel",
		"tunnel packets gvsd sends (no route, too long, tagged, partial checksum)"}
	for i, v := range counters {
		if i < len(names) {
			fmt.Fprintf(&b, "  %s: %d\n", names[i], v)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(portErrs)) {
		fmt.Fprintf(&b, "  port %s: no fast path for what it receives: %s\n", name, portErrs[name])
	}
	return b.String(), nil
}

// dpctlDelFlows empties the flow caches; the next packet of each flow is
// translated again.
func (sw *Switch) dpctlDelFlows(args []string) (string, error) {
	if err := checkDP(args); err != nil {
		return "", err
	}
	sw.state.dp.DelFlows()
	return "", nil
}

func formatFlows(flows []datapath.CachedFlow, name func(uint32) string) string {
	var sb strings.Builder
	for i := range flows {
		sb.WriteString(flows[i].String(name))
		sb.WriteByte('\n')
	}
	return sb.String()
}

// bridge finds a bridge by name for a command.
func (st *datapathState) bridge(name string) (*ofproto.Bridge, error) {
	b, ok := st.bridges[name]
	if !ok {
		return nil, fmt.Errorf("no such bridge")
	}
	return b, nil
}

func (sw *Switch) fdbShow(args []string) (string, error) {
	st := sw.state
	st.mu.Lock()
	defer st.mu.Unlock()
	b, err := st.bridge(args[0])
	if err != nil {
		return "", err
	}
	ofports := map[uint32]string{}
	for _, p := range b.Config().Ports {
		ofports[p.DPPort] = ofportName(p.OFPort)
	}
	var sb strings.Builder
	sb.WriteString(" port  VLAN  MAC                Age\n")
	entries := b.MACs.Entries()
	for _, e := range entries {
		port, ok := ofports[e.Port]
		if !ok {
			continue
		}
		fmt.Fprintf(&sb, "%5s  %4d  %s  %3d\n", port, e.VLAN, net.HardwareAddr(e.MAC[:]), e.Age)
	}
	return sb.String(), nil
}

func ofportName(n uint32) string {
	if n == ofproto.LocalPort {
		return "LOCAL"
	}
	return fmt.Sprint(n)
}

func (sw *Switch) fdbFlush(args []string) (string, error) {
	st := sw.state
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(args) == 1 {
		b, err := st.bridge(args[0])
		if err != nil {
			return "", err
		}
		b.MACs.Flush()
	} else {
		for _, b := range st.bridges {
			b.MACs.Flush()
		}
	}
	return "table successfully flushed\n", nil
}

// mdbDisabled answers the multicast snooping commands: gvs does no IGMP
// or MLD snooping, so every bridge is one where OVS would say it is off.
func (sw *Switch) mdbDisabled(args []string) (string, error) {
	st := sw.state
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(args) == 1 {
		if _, err := st.bridge(args[0]); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("multicast snooping is disabled")
}

// ofprotoList names the bridges, one a line, sorted.
func (sw *Switch) ofprotoList([]string) (string, error) {
	st := sw.state
	st.mu.Lock()
	defer st.mu.Unlock()
	var sb strings.Builder
	for _, name := range st.bridgeNames() {
		sb.WriteString(name + "\n")
	}
	return sb.String(), nil
}

// dpifDumpDPs names each bridge's datapath as OVS does: type@bridge.
func (sw *Switch) dpifDumpDPs([]string) (string, error) {
	st := sw.state
	st.mu.Lock()
	defer st.mu.Unlock()
	var sb strings.Builder
	for _, name := range st.bridgeNames() {
		sb.WriteString("netdev@" + name + "\n")
	}
	return sb.String(), nil
}

// memoryShow prints the counts OVS's memory/show has that gvs keeps:
// ports and OpenFlow rules, over all bridges.
func (sw *Switch) memoryShow([]string) (string, error) {
	ports, rules := 0, 0
	for _, br := range sw.bridgeList() {
		ports += len(br.Config().Ports)
		rules += br.Tables.NumFlows()
	}
	return fmt.Sprintf("ports:%d rules:%d\n", ports, rules), nil
}

// qosShow: gvs configures no QoS, so an interface has none.
func (sw *Switch) qosShow(args []string) (string, error) {
	st := sw.state
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ifaces[args[0]] == nil {
		return "", errors.New("no such interface")
	}
	return fmt.Sprintf("QoS not configured on %s\n", args[0]), nil
}

// bridgeNames lists the bridges by name, sorted.
func (st *datapathState) bridgeNames() []string {
	names := make([]string, 0, len(st.bridges))
	for n := range st.bridges {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (sw *Switch) dpifShow(args []string) (string, error) {
	st := sw.state
	st.mu.Lock()
	defer st.mu.Unlock()
	var sb strings.Builder
	sb.WriteString("netdev@ovs-netdev:\n")
	for _, name := range st.bridgeNames() {
		fmt.Fprintf(&sb, "  %s:\n", name)
		ports := make([]*ofproto.Port, 0)
		for _, p := range st.bridges[name].Config().Ports {
			ports = append(ports, p)
		}
		sort.Slice(ports, func(i, j int) bool { return ports[i].OFPort < ports[j].OFPort })
		for _, p := range ports {
			fmt.Fprintf(&sb, "    %s %d/%d: (%s)\n", p.Name, p.OFPort, p.DPPort, st.ifaceType(p.Name))
		}
	}
	return sb.String(), nil
}

func (st *datapathState) ifaceType(name string) string {
	ifc := st.ifaces[name]
	if ifc == nil {
		return "?"
	}
	switch ifc.want.typ {
	case "", "system":
		return "system"
	case "internal":
		return "tap"
	}
	return ifc.want.typ
}
