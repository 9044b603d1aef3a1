package vswitchd

import (
	"fmt"
	"net"
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
	r.Register("dpif/show", "", 0, 0, sw.dpifShow)
	r.Register("dpif/dump-flows", "bridge", 1, 1, sw.dpifDumpFlows)
	r.Register("dpctl/dump-flows", "[dp]", 0, 1, sw.dpctlDumpFlows)
	r.Register("dpctl/del-flows", "[dp]", 0, 1, sw.dpctlDelFlows)
	r.Register("ofproto/trace", "[--ct-next flags]... bridge flow [-generate]", 2, 3+2*maxCtNext, sw.ofprotoTrace)
	r.Register("gvs/trace", "bridge flow [ct-next=FLAGS]...", 2, 2+maxCtNext, sw.gvsTrace)
	r.Register("gvs/conntrack", "[zone=N] [addr=A] [port=P] [proto=NAME] [state=S]", 0, 5, sw.gvsConntrack)
	sw.registerConntrack(r)
	registerTunnelCommands(r)
}

// dpifDumpFlows lists the flow cache entries of a bridge's ports, with
// port names.
func (sw *Switch) dpifDumpFlows(args []string) (string, error) {
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
	names := st.dpPortNames()
	name := func(no uint32) string {
		if n, ok := names[no]; ok {
			return n
		}
		return fmt.Sprint(no)
	}
	return formatFlows(st.dp.Flows(func(no uint32) bool { return ports[no] }), name), nil
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
	if err := checkDP(args); err != nil {
		return "", err
	}
	return formatFlows(sw.state.dp.Flows(nil), nil), nil
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

func (sw *Switch) dpifShow(args []string) (string, error) {
	st := sw.state
	st.mu.Lock()
	defer st.mu.Unlock()
	var sb strings.Builder
	sb.WriteString("netdev@ovs-netdev:\n")
	names := make([]string, 0, len(st.bridges))
	for n := range st.bridges {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
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
