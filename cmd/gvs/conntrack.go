package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"gvs/internal/conntrack"
	"gvs/internal/unixctl"
)

// controlTimeout bounds an exchange with gvsd's control socket.
const controlTimeout = 30 * time.Second

func init() { register(newConntrackCmd) }

// conntrackFlags are gvs conntrack's filters, as given.
type conntrackFlags struct {
	zone, port         int
	addr, proto, state string
	asJSON             bool
}

func newConntrackCmd(a *app) *cobra.Command {
	var f conntrackFlags
	cmd := &cobra.Command{
		Use:   "conntrack [--zone N] [--addr A] [--port P] [--proto NAME] [--state S] [--json]",
		Short: "list the tracked connections, filtered (dpctl/dump-conntrack made readable)",
		Long: `conntrack lists the connections gvsd's connection tracker holds, one a
line: zone, protocol, the original direction (who opened it), the reply
direction when it differs (NAT), the state (the kernel's TCP state names;
UNREPLIED or REPLIED for other protocols), mark, label and the seconds
left. Filters combine: --addr and --port match either end of either
direction. At most 10000 connections are listed; the total is said.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConntrack(a, cmd, &f)
		},
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	fl := cmd.Flags()
	fl.IntVar(&f.zone, "zone", -1, "only connections of zone `N` (0-65535)")
	fl.StringVar(&f.addr, "addr", "", "only connections with address `A` (IPv4 or IPv6) at either end")
	fl.IntVar(&f.port, "port", 0, "only connections with TCP/UDP/SCTP port `P` at either end")
	fl.StringVar(&f.proto, "proto", "", "only connections of protocol `NAME` (tcp, udp, icmp, icmpv6, sctp, or a number)")
	fl.StringVar(&f.state, "state", "", "only connections in state `S` (ESTABLISHED, SYN_SENT, TIME_WAIT, UNREPLIED, REPLIED, ...)")
	fl.BoolVar(&f.asJSON, "json", false, "print one JSON document instead of text")
	_ = cmd.RegisterFlagCompletionFunc("state", cobra.FixedCompletions([]string{"SYN_SENT", "SYN_RECV", "ESTABLISHED",
		"FIN_WAIT_1", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSING", "UNREPLIED", "REPLIED"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// filterArgs turns the flags into gvs/conntrack's arguments; the values
// themselves are checked by gvsd (conntrack.ParseFilter), and the range
// of the numbers here, so that a usage error says which flag.
func (f *conntrackFlags) filterArgs(cmd *cobra.Command) ([]string, error) {
	var args []string
	if cmd.Flags().Changed("zone") {
		if f.zone < 0 || f.zone > 65535 {
			return nil, usageErrorf("--zone %d: a zone is a number from 0 to 65535", f.zone)
		}
		args = append(args, "zone="+strconv.Itoa(f.zone))
	}
	if cmd.Flags().Changed("port") {
		if f.port < 1 || f.port > 65535 {
			return nil, usageErrorf("--port %d: a port is a number from 1 to 65535", f.port)
		}
		args = append(args, "port="+strconv.Itoa(f.port))
	}
	for _, kv := range [][2]string{{"addr", f.addr}, {"proto", f.proto}, {"state", f.state}} {
		if cmd.Flags().Changed(kv[0]) {
			args = append(args, kv[0]+"="+kv[1])
		}
	}
	return args, nil
}

func runConntrack(a *app, cmd *cobra.Command, f *conntrackFlags) error {
	args, err := f.filterArgs(cmd)
	if err != nil {
		return err
	}
	reply, err := callGvsd(a, "gvs/conntrack", args...)
	if err != nil {
		return err
	}
	var rep conntrack.Report
	if err := json.Unmarshal([]byte(reply), &rep); err != nil {
		return fmt.Errorf("gvsd's connection table: %w", err)
	}
	if f.asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	writeConntrack(a.stdout, &rep)
	return nil
}

// callGvsd runs one control command of gvsd and returns its reply; an
// error reply is returned as the error, as gvsd wrote it.
func callGvsd(a *app, command string, args ...string) (string, error) {
	path, err := unixctl.TargetPath(gvsdRundir(a.remote, a.getenv), "ovs-vswitchd")
	if err != nil {
		return "", fmt.Errorf("gvsd's control socket: %w (is gvsd running?)", err)
	}
	c, err := unixctl.Dial(path)
	if err != nil {
		return "", fmt.Errorf("gvsd's control socket: %w (is gvsd running?)", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(controlTimeout))
	reply, err := c.Call(command, args...)
	if err != nil {
		var re *unixctl.RemoteError
		if errors.As(err, &re) {
			return "", errors.New(strings.TrimRight(re.Message, "\n"))
		}
		return "", err
	}
	return reply, nil
}

// writeConntrack prints the connections as a table.
func writeConntrack(w io.Writer, rep *conntrack.Report) {
	if rep.Matched == 0 {
		fmt.Fprintln(w, "No connections.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ZONE\tPROTO\tCONNECTION\tSTATE\tMARK\tLABEL\tTIMEOUT")
	for i := range rep.Connections {
		c := &rep.Connections[i]
		mark, label := "-", "-"
		if c.Mark != 0 {
			mark = strconv.FormatUint(uint64(c.Mark), 10)
		}
		if c.Label != "" {
			label = c.Label
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%ds\n", c.Zone, c.Proto, connText(c), c.State, mark, label, c.Timeout)
	}
	_ = tw.Flush()
	if rep.Truncated {
		fmt.Fprintf(w, "%d connections match; the first %d are listed (narrow the filters).\n", rep.Matched, len(rep.Connections))
	} else if rep.Matched == 1 {
		fmt.Fprintln(w, "1 connection.")
	} else {
		fmt.Fprintf(w, "%d connections.\n", rep.Matched)
	}
}

// connText is "A:P -> B:Q", then the reply direction when NAT makes it
// other than the original reversed.
func connText(c *conntrack.View) string {
	s := endpoint(c.Orig.Src, c.Orig.Sport, c) + " -> " + endpoint(c.Orig.Dst, c.Orig.Dport, c)
	if c.Proto == "icmp" || c.Proto == "icmpv6" {
		s += fmt.Sprintf(" id %d type %d", c.Orig.ID, c.Orig.Type)
	}
	if c.Reply.Src != c.Orig.Dst || c.Reply.Dst != c.Orig.Src || c.Reply.Sport != c.Orig.Dport || c.Reply.Dport != c.Orig.Sport {
		s += ", reply " + endpoint(c.Reply.Src, c.Reply.Sport, c) + " -> " + endpoint(c.Reply.Dst, c.Reply.Dport, c)
	}
	return s
}

func endpoint(addr string, port uint16, c *conntrack.View) string {
	if c.Proto == "icmp" || c.Proto == "icmpv6" || (port == 0 && c.Proto != "tcp" && c.Proto != "udp") {
		return addr
	}
	if strings.Contains(addr, ":") {
		return "[" + addr + "]:" + strconv.Itoa(int(port))
	}
	return addr + ":" + strconv.Itoa(int(port))
}
