package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"gvs/internal/connmgr"
	"gvs/internal/flow"
	"gvs/internal/openflow"
)

// flowsTimeout bounds one gvs flows command's exchange with gvsd.
const flowsTimeout = 30 * time.Second

func init() { register(newFlowsCmd) }

func newFlowsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "flows",
		Short: "add, delete and dump a bridge's OpenFlow flows",
		Long: `flows talks to a bridge's OpenFlow channel (<rundir>/BRIDGE.mgmt, in
OpenFlow 1.3) with ovs-ofctl's flow syntax (ovs-fields(7), ovs-actions(7)),
and also accepts the tutorials' ct_state=+trk,+new. A flow gvs cannot read
is shown with the offending word marked.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown flows command %q", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageErrorf("missing flows command (add, del or dump)")
		},
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	var strict bool
	del := &cobra.Command{
		Use:   "del BRIDGE [MATCH]",
		Short: "delete the flows MATCH selects (every flow without MATCH)",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return flowsDel(a, args[0], strings.Join(args[1:], ""), strict)
		},
	}
	del.Flags().BoolVar(&strict, "strict", false, "delete only the flow with exactly this match and priority")
	cmd.AddCommand(&cobra.Command{
		Use:   "add BRIDGE FLOW...",
		Short: "add flows (table=0, priority=50, tcp, in_port=p1, actions=p2)",
		Args:  rangeArgs(2, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return flowsAdd(a, args[0], args[1:])
		},
	}, del, &cobra.Command{
		Use:   "dump BRIDGE [MATCH]",
		Short: "print the flows MATCH selects, as ovs-ofctl --no-stats dump-flows",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return flowsDump(a, args[0], strings.Join(args[1:], ""))
		},
	})
	return cmd
}

// rangeArgs accepts between lo and hi arguments (hi < 0: no limit).
func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo {
			return usageErrorf("missing argument: %s", cmd.Use)
		}
		if hi >= 0 && len(args) > hi {
			return usageErrorf("unexpected argument %q", args[hi])
		}
		return nil
	}
}

// mgmtPath is the bridge's OpenFlow socket: in the directory of gvsd's
// database socket, or $OVS_RUNDIR (/var/run/openvswitch) for a remote
// that is no socket.
func mgmtPath(a *app, bridge string) string {
	return filepath.Join(gvsdRundir(a.remote, a.getenv), bridge+".mgmt")
}

func gvsdRundir(remote string, getenv func(string) string) string {
	if sock, ok := strings.CutPrefix(remote, "unix:"); ok {
		return filepath.Dir(sock)
	}
	return rundir(getenv)
}

func flowsAdd(a *app, bridge string, texts []string) error {
	c, err := dialOpenFlow(mgmtPath(a, bridge))
	if err != nil {
		return err
	}
	defer c.close()
	opts, err := c.parseOptions()
	if err != nil {
		return err
	}
	var mods []openflow.Message
	for _, text := range texts {
		f, err := flow.ParseFlow(text, opts)
		if err != nil {
			return pointAt(text, err)
		}
		m, err := connmgr.FlowMod13(f, openflow.FlowAdd, f.Table)
		if err != nil {
			return err
		}
		mods = append(mods, m)
	}
	_, err = c.request(mods...)
	return err
}

// tableWordRE finds a table=N word in a selector: without one, del and
// dump cover every table, as in ovs-ofctl.
var tableWordRE = regexp.MustCompile(`(^|[\s,])table\s*[=:]`)

// parseSelector reads a del or dump MATCH (table, priority, cookie and
// match fields) and the table it names (TableAll when none).
func (c *ofClient) parseSelector(text string) (*flow.Flow, uint8, error) {
	opts, err := c.parseOptions()
	if err != nil {
		return nil, 0, err
	}
	f, err := flow.ParseFlow(text+",actions=drop", opts)
	if err != nil {
		return nil, 0, pointAt(text, err)
	}
	table := f.Table
	if !tableWordRE.MatchString(text) {
		table = 0xff
	}
	return f, table, nil
}

func flowsDel(a *app, bridge, text string, strict bool) error {
	c, err := dialOpenFlow(mgmtPath(a, bridge))
	if err != nil {
		return err
	}
	defer c.close()
	f, table, err := c.parseSelector(text)
	if err != nil {
		return err
	}
	f.Actions = nil
	cmd := uint8(openflow.FlowDelete)
	if strict {
		cmd = openflow.FlowDeleteStrict
	}
	m, err := connmgr.FlowMod13(f, cmd, table)
	if err != nil {
		return err
	}
	_, err = c.request(m)
	return err
}

func flowsDump(a *app, bridge, text string) error {
	c, err := dialOpenFlow(mgmtPath(a, bridge))
	if err != nil {
		return err
	}
	defer c.close()
	f, table, err := c.parseSelector(text)
	if err != nil {
		return err
	}
	replies, err := c.request(&openflow.FlowStatsRequest{TableID: table, OutPort: openflow.PortAny,
		OutGroup: 0xffffffff, Cookie: f.Cookie, CookieMask: f.CookieMask, Match: connmgr.Match13(f.Match)})
	if err != nil {
		return err
	}
	names := flow.FormatOptions{PortName: c.portName}
	for _, r := range replies {
		fr, ok := r.(*openflow.FlowStatsReply)
		if !ok {
			continue
		}
		for i := range fr.Flows {
			fl, err := connmgr.FlowFromStats13(&fr.Flows[i])
			if err != nil {
				return fmt.Errorf("bridge %s: a flow gvs cannot print: %w", bridge, err)
			}
			fmt.Fprintf(a.stdout, " %s\n", fl.Format(names))
		}
	}
	return nil
}

// pointAt explains a flow error with the flow and a mark under the word
// it is about (flow.PointAt).
func pointAt(text string, err error) error { return flow.PointAt(text, err) }

// ofClient is an OpenFlow 1.3 connection to one bridge.
type ofClient struct {
	nc    net.Conn
	buf   []byte
	xid   uint32
	ports map[string]uint32 // port name to the model's number
}

// dialOpenFlow connects and negotiates OpenFlow 1.3.
func dialOpenFlow(path string) (*ofClient, error) {
	nc, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("OpenFlow channel %s: %w (is gvsd running, and the bridge there?)", path, err)
	}
	_ = nc.SetDeadline(time.Now().Add(flowsTimeout))
	c := &ofClient{nc: nc, buf: make([]byte, openflow.MaxMessageLen)}
	if err := c.send(&openflow.Hello{Versions: openflow.VersionBitmap(openflow.Version13)}); err != nil {
		nc.Close()
		return nil, err
	}
	msg, err := openflow.ReadMessage(nc, c.buf)
	if err == nil {
		var h openflow.Header
		var m openflow.Message
		h, m, err = openflow.Decode(msg)
		if hello, ok := m.(*openflow.Hello); err == nil && ok {
			_, err = openflow.Negotiate(openflow.VersionBitmap(openflow.Version13), h, hello)
		}
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("OpenFlow channel %s: %w (gvs flows speaks OpenFlow 1.3: does Bridge.protocols allow it?)", path, err)
	}
	return c, nil
}

func (c *ofClient) close() { c.nc.Close() }

func (c *ofClient) send(m openflow.Message) error {
	c.xid++
	b, err := openflow.Encode(openflow.Version13, c.xid, m)
	if err != nil {
		return err
	}
	_, err = c.nc.Write(b)
	return err
}

// request sends messages and a barrier and returns the replies that came
// before the barrier's; an OpenFlow error is the request's error.
func (c *ofClient) request(ms ...openflow.Message) ([]openflow.Message, error) {
	for _, m := range ms {
		if err := c.send(m); err != nil {
			return nil, err
		}
	}
	if err := c.send(&openflow.BarrierRequest{}); err != nil {
		return nil, err
	}
	barrier := c.xid
	var out []openflow.Message
	for {
		msg, err := openflow.ReadMessage(c.nc, c.buf)
		if err == io.EOF {
			return nil, errors.New("gvsd closed the OpenFlow connection")
		} else if err != nil {
			return nil, err
		}
		h, m, err := openflow.Decode(msg)
		if err != nil {
			return nil, fmt.Errorf("a reply gvs cannot read: %w", err)
		}
		switch m := m.(type) {
		case *openflow.ErrorMsg:
			return nil, fmt.Errorf("gvsd refused it: %w", &m.Err)
		case *openflow.BarrierReply:
			if h.Xid == barrier {
				return out, nil
			}
		default:
			out = append(out, m)
		}
	}
}

// parseOptions resolves port names through the bridge's port list.
func (c *ofClient) parseOptions() (flow.ParseOptions, error) {
	if c.ports == nil {
		replies, err := c.request(&openflow.PortDescRequest{})
		if err != nil {
			return flow.ParseOptions{}, err
		}
		c.ports = map[string]uint32{}
		for _, r := range replies {
			if pd, ok := r.(*openflow.PortDescReply); ok {
				for _, p := range pd.Ports {
					c.ports[p.Name] = connmgr.FlowPort(p.PortNo)
				}
			}
		}
	}
	return flow.ParseOptions{LenientCtState: true, PortByName: func(name string) (uint32, bool) {
		n, ok := c.ports[name]
		return n, ok
	}}, nil
}

func (c *ofClient) portName(no uint32) (string, bool) {
	for name, n := range c.ports {
		if n == no {
			return name, true
		}
	}
	return "", false
}
