package main

// gvs capture: the traffic of one port, as a pcapng stream, in one
// command. It adds a pcap port that writes into a FIFO and a mirror that
// copies the port's traffic to it, copies the FIFO to a file or to stdout
// (for tcpdump or Wireshark), and removes both rows when it ends.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"gvs/internal/ovsdb"
)

const captureUsage = `usage: gvs capture BRIDGE --port PORT [--direction in|out|both] [--vlan V[,V...]]
                   [--filter MATCH] [--snaplen N] [-w FILE|-] [-c COUNT]
Copies the traffic of PORT on BRIDGE as pcapng to FILE, or to stdout with
-w - (the default when stdout is not a terminal):
  gvs capture br-int --port tap0 | tcpdump -nr -
  --direction  in: frames PORT receives, out: frames sent to it (default both)
  --vlan       only frames of these VLANs
  --filter     only frames matching an OpenFlow match (ovs-fields syntax)
  --snaplen    keep only the first N bytes of each frame (14-65535)
  -c           stop after COUNT frames
The mirror and port it adds are removed when it stops (Ctrl-C, -c, or the
reader of stdout going away). It runs as gvsd's user (root): gvsd reads its
FIFO in its capture directory, <rundir>/capture (mode 0700).
`

// captureOptions is a parsed gvs capture command line.
type captureOptions struct {
	bridge    string
	port      string
	direction string // in, out or both
	vlans     []int
	filter    string
	snaplen   int    // 0: whole frames
	output    string // a file name, "-" for stdout, "" when not given
	count     int64  // 0: no limit
}

// parseCaptureArgs reads the command line after "capture". The bridge
// may come before or after the options.
func parseCaptureArgs(args []string) (captureOptions, error) {
	o := captureOptions{direction: "both"}
	fs := flag.NewFlagSet("capture", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.port, "port", "", "")
	fs.StringVar(&o.direction, "direction", "both", "")
	vlans := fs.String("vlan", "", "")
	fs.StringVar(&o.filter, "filter", "", "")
	fs.IntVar(&o.snaplen, "snaplen", 0, "")
	fs.StringVar(&o.output, "w", "", "")
	fs.Int64Var(&o.count, "c", 0, "")
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return o, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != 1 {
		return o, fmt.Errorf("expected one BRIDGE argument, got %d", len(positional))
	}
	o.bridge = positional[0]
	var err error
	if o.vlans, err = parseVLANList(*vlans); err != nil {
		return o, err
	}
	return o, o.check()
}

func (o captureOptions) check() error {
	switch {
	case o.port == "":
		return errors.New("--port PORT is required: the port whose traffic to capture")
	case o.direction != "in" && o.direction != "out" && o.direction != "both":
		return fmt.Errorf("--direction %q: want in, out or both", o.direction)
	case o.snaplen != 0 && (o.snaplen < 14 || o.snaplen > 65535):
		return fmt.Errorf("--snaplen %d: want 14 to 65535", o.snaplen)
	case o.count < 0:
		return fmt.Errorf("-c %d: want a positive count", o.count)
	}
	return nil
}

func parseVLANList(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || v < 0 || v > 4095 {
			return nil, fmt.Errorf("--vlan %q: want VLAN ids 0 to 4095, comma separated", s)
		}
		out = append(out, v)
	}
	return out, nil
}

// resolveOutput picks where the capture goes: binary pcapng goes to
// stdout only when asked with -w -, or by default when stdout is not a
// terminal.
func resolveOutput(o captureOptions, stdoutIsTerminal bool) (string, error) {
	if o.output != "" {
		return o.output, nil
	}
	if stdoutIsTerminal {
		return "", errors.New("not writing a binary capture to the terminal: use -w FILE, or pipe it (gvs capture BRIDGE --port PORT | tcpdump -nr -)")
	}
	return "-", nil
}

// captureTarget is what the command line names, as database rows.
type captureTarget struct {
	bridgeUUID string
	portUUID   string
}

// captureNames are the names of the rows one capture adds.
type captureNames struct {
	iface  string // Interface and Port name (a device name: <= 15 chars)
	mirror string
	pid    int
}

func namesForPID(pid int) captureNames {
	return captureNames{iface: fmt.Sprintf("gvscap%d", pid), mirror: fmt.Sprintf("gvs-capture-%d", pid), pid: pid}
}

// OVSDB JSON values.

func uuidRef(u string) []any      { return []any{"uuid", u} }
func namedRef(name string) []any  { return []any{"named-uuid", name} }
func ovsSet(elems ...any) []any   { return []any{"set", elems} }
func ovsPair(k, v string) []any   { return []any{k, v} }
func ovsMap(pairs ...[]any) []any { return []any{"map", pairsAsAny(pairs)} }

func pairsAsAny(pairs [][]any) []any {
	out := make([]any, len(pairs))
	for i, p := range pairs {
		out[i] = p
	}
	return out
}

// Named UUIDs inside the insert transaction.
const (
	capIfaceRef  = "gvscapiface"
	capPortRef   = "gvscapport"
	capMirrorRef = "gvscapmirror"
)

// Positions of the inserts in captureInsertOps, to find their UUIDs.
const (
	capPortOp   = 3
	capMirrorOp = 4
)

// captureInsertOps is the one transaction that starts a capture: two
// waits that make it fail if the port left the bridge since it was looked
// up, the Interface, Port and Mirror rows, and the bridge mutation that
// makes them live.
func captureInsertOps(o captureOptions, t captureTarget, n captureNames, fifo string) []any {
	srcPort := uuidRef(t.portUUID)
	bridge := []any{[]any{"_uuid", "==", uuidRef(t.bridgeUUID)}}
	mirror := map[string]any{
		"name":         n.mirror,
		"output_port":  namedRef(capPortRef),
		"external_ids": ovsMap(ovsPair("gvs-capture-pid", strconv.Itoa(n.pid))),
	}
	if o.direction != "out" {
		mirror["select_src_port"] = ovsSet(srcPort)
	}
	if o.direction != "in" {
		mirror["select_dst_port"] = ovsSet(srcPort)
	}
	if len(o.vlans) > 0 {
		vl := make([]any, len(o.vlans))
		for i, v := range o.vlans {
			vl[i] = v
		}
		mirror["select_vlan"] = ovsSet(vl...)
	}
	if o.filter != "" {
		mirror["filter"] = o.filter
	}
	if o.snaplen != 0 {
		mirror["snaplen"] = o.snaplen
	}
	return []any{
		map[string]any{"op": "wait", "table": "Port", "timeout": 0, "until": "==",
			"where":   []any{[]any{"_uuid", "==", srcPort}},
			"columns": []any{"name"}, "rows": []any{map[string]any{"name": o.port}}},
		map[string]any{"op": "wait", "table": "Bridge", "timeout": 0, "until": "==",
			"where":   append(slices.Clone(bridge), []any{"ports", "includes", srcPort}),
			"columns": []any{"name"}, "rows": []any{map[string]any{"name": o.bridge}}},
		map[string]any{"op": "insert", "table": "Interface", "uuid-name": capIfaceRef,
			"row": map[string]any{"name": n.iface, "type": "pcap", "options": ovsMap(ovsPair("file", fifo))}},
		map[string]any{"op": "insert", "table": "Port", "uuid-name": capPortRef,
			"row": map[string]any{"name": n.iface, "interfaces": namedRef(capIfaceRef)}},
		map[string]any{"op": "insert", "table": "Mirror", "uuid-name": capMirrorRef, "row": mirror},
		map[string]any{"op": "mutate", "table": "Bridge", "where": bridge, "mutations": []any{
			[]any{"ports", "insert", ovsSet(namedRef(capPortRef))},
			[]any{"mirrors", "insert", ovsSet(namedRef(capMirrorRef))},
		}},
		map[string]any{"op": "comment", "comment": fmt.Sprintf("gvs capture: mirror port %s of bridge %s", o.port, o.bridge)},
	}
}

// captureCleanupOps takes the capture's mirror and port off the bridge;
// with nothing referring to them, the database removes the Mirror, Port
// and Interface rows.
func captureCleanupOps(bridgeUUID, portUUID, mirrorUUID string) []any {
	return []any{
		map[string]any{"op": "mutate", "table": "Bridge",
			"where": []any{[]any{"_uuid", "==", uuidRef(bridgeUUID)}},
			"mutations": []any{
				[]any{"mirrors", "delete", ovsSet(uuidRef(mirrorUUID))},
				[]any{"ports", "delete", ovsSet(uuidRef(portUUID))},
			}},
		map[string]any{"op": "comment", "comment": "gvs capture: done"},
	}
}

// transact runs ops in the Open_vSwitch database and returns the result
// of each, or the first error readably.
func transact(c *ovsdb.Client, ops []any) ([]map[string]any, error) {
	res, err := c.Call("transact", append([]any{"Open_vSwitch"}, ops...)...)
	if err != nil {
		return nil, err
	}
	return transactResults(res, ops)
}

// transactResults checks a transact reply: a failed operation carries an
// "error" (the ones after it are null); an extra last result is an error
// found when the transaction committed.
func transactResults(res any, ops []any) ([]map[string]any, error) {
	list, ok := res.([]any)
	if !ok {
		return nil, fmt.Errorf("unexpected transact reply %v", res)
	}
	out := make([]map[string]any, len(list))
	for i, r := range list {
		obj, _ := r.(map[string]any)
		out[i] = obj
		if obj == nil || obj["error"] == nil {
			continue
		}
		msg := fmt.Sprint(obj["error"])
		if d, ok := obj["details"].(string); ok && d != "" {
			msg += ": " + d
		}
		if i < len(ops) {
			if op, ok := ops[i].(map[string]any); ok {
				return nil, fmt.Errorf("%s %v failed: %s", op["op"], op["table"], msg)
			}
		}
		return nil, errors.New(msg)
	}
	if len(out) < len(ops) {
		return nil, fmt.Errorf("transact reply has %d results for %d operations", len(out), len(ops))
	}
	return out, nil
}

// selectRows selects the columns of the rows of table matching where.
func selectRows(c *ovsdb.Client, table string, where []any, columns ...string) ([]map[string]any, error) {
	op := map[string]any{"op": "select", "table": table, "where": where, "columns": columns}
	res, err := transact(c, []any{op})
	if err != nil {
		return nil, err
	}
	rows, _ := res[0]["rows"].([]any)
	out := make([]map[string]any, 0, len(rows))
	for _, r := range rows {
		if m, ok := r.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// lookupTarget finds the bridge and the port, with errors that say which
// one is missing.
func lookupTarget(c *ovsdb.Client, bridge, port string) (captureTarget, error) {
	byName := func(name string) []any { return []any{[]any{"name", "==", name}} }
	bridges, err := selectRows(c, "Bridge", byName(bridge), "_uuid", "ports")
	if err != nil {
		return captureTarget{}, err
	}
	if len(bridges) == 0 {
		return captureTarget{}, fmt.Errorf("no bridge named %q", bridge)
	}
	ports, err := selectRows(c, "Port", byName(port), "_uuid")
	if err != nil {
		return captureTarget{}, err
	}
	if len(ports) == 0 {
		return captureTarget{}, fmt.Errorf("bridge %q: no port named %q", bridge, port)
	}
	t := captureTarget{bridgeUUID: uuidOf(bridges[0]["_uuid"]), portUUID: uuidOf(ports[0]["_uuid"])}
	for _, p := range elems(bridges[0]["ports"]) {
		if uuidOf(p) == t.portUUID {
			return t, nil
		}
	}
	return captureTarget{}, fmt.Errorf("bridge %q: port %q belongs to another bridge", bridge, port)
}

// captureSession is a running capture: what it added and must remove.
type captureSession struct {
	remote     string
	c          *ovsdb.Client
	names      captureNames
	bridge     string
	fifoPath   string   // the FIFO, in gvsd's capture directory
	fifo       *os.File // our end of the FIFO, read and write
	target     captureTarget
	portUUID   string // the rows added, once the insert committed
	mirrorUUID string
}

// captureDir is gvsd's capture directory, the only place where its pcap
// ports write: <rundir>/capture, where rundir is the directory of the
// database socket gvsd listens on (gvsd keeps db.sock in its rundir), or
// $OVS_RUNDIR or /var/run/openvswitch for a remote that is no socket.
func captureDir(remote string) string {
	return filepath.Join(gvsdRundir(remote, os.Getenv), "capture")
}

// makeFIFO creates the FIFO gvsd writes into, in gvsd's capture
// directory, and opens it. Opening it read-write never blocks and keeps
// the FIFO open for gvsd's non-blocking open, whatever order things
// happen in; Close wakes a pending Read.
func (s *captureSession) makeFIFO(dir string) error {
	if st, err := os.Lstat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("gvsd's capture directory %s: not a directory (%v): is gvsd running, with this rundir?", dir, err)
	}
	// Only gvsd's user may open the FIFO (the directory is 0700 too):
	// nobody else can read the capture or write into it.
	path := filepath.Join(dir, s.names.iface+".pcapng")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		return fmt.Errorf("mkfifo %s: %w", path, err)
	}
	s.fifoPath = path
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	s.fifo = f
	return nil
}

// insert adds the capture's rows in one transaction.
func (s *captureSession) insert(o captureOptions) error {
	ops := captureInsertOps(o, s.target, s.names, s.fifoPath)
	res, err := transact(s.c, ops)
	if err != nil {
		if strings.Contains(err.Error(), "timed out") {
			return fmt.Errorf("bridge %q: port %q left the bridge while the capture started", o.bridge, o.port)
		}
		return fmt.Errorf("cannot add the capture mirror: %w", err)
	}
	s.portUUID = uuidOf(res[capPortOp]["uuid"])
	s.mirrorUUID = uuidOf(res[capMirrorOp]["uuid"])
	return nil
}

// waitReady waits a little for gvsd to open the pcap port, so that a
// port gvsd cannot open is reported instead of a capture that stays
// empty.
func (s *captureSession) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		rows, err := selectRows(s.c, "Interface", []any{[]any{"name", "==", s.names.iface}}, "ofport", "error")
		if err != nil {
			return err
		}
		if len(rows) == 1 {
			if e := str(rows[0]["error"]); e != "" {
				return fmt.Errorf("gvsd cannot open the capture port: %s", e)
			}
			if ofp, _ := strconv.Atoi(str(rows[0]["ofport"])); ofp > 0 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil // gvsd is slow to report; the capture may still work
}

// end undoes everything the session did: it closes the FIFO (so a gvsd
// write cannot block on it), removes the rows, then the FIFO itself.
func (s *captureSession) end(stderr io.Writer) {
	if s.fifo != nil {
		s.fifo.Close()
	}
	if s.mirrorUUID != "" {
		if err := s.removeRows(); err != nil {
			fmt.Fprintf(stderr, "gvs capture: could not remove mirror %s and port %s: %v\n", s.names.mirror, s.names.iface, err)
			fmt.Fprintf(stderr, "  remove them with: ovs-vsctl -- --id=@m get Mirror %s -- remove Bridge %s mirrors @m -- del-port %s %s\n", s.names.mirror, s.bridge, s.bridge, s.names.iface)
		}
	}
	if s.fifoPath != "" {
		os.Remove(s.fifoPath)
	}
}

// removeRows runs the cleanup transaction, reconnecting once if the
// connection broke (gvsd restarted while we captured).
func (s *captureSession) removeRows() error {
	ops := captureCleanupOps(s.target.bridgeUUID, s.portUUID, s.mirrorUUID)
	_, err := transact(s.c, ops)
	if err == nil {
		return nil
	}
	c, derr := ovsdb.Dial(s.remote)
	if derr != nil {
		return err
	}
	defer c.Close()
	_, err = transact(c, ops)
	return err
}

func init() { register(newCaptureCmd) }

// newCaptureCmd is gvs capture. It parses its own options
// (parseCaptureArgs, Go's flag syntax: -port and --port alike), so cobra
// passes it the arguments as they are.
func newCaptureCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:                "capture BRIDGE --port PORT [-w FILE|-]",
		Short:              "a port's traffic as pcapng (gvs capture -h)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			args, err := takeGlobalFlags(cmd, args)
			if err != nil {
				return err
			}
			return capture(a, args)
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			return completeCapture(a, cmd, args, toComplete)
		},
	}
	cmd.SetUsageTemplate(captureUsage)
	cmd.SetHelpTemplate(captureUsage)
	return cmd
}

// completeCapture completes capture's options, and bridge and port names
// from the database when gvsd answers.
func completeCapture(a *app, cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	nofiles := cobra.ShellCompDirectiveNoFileComp
	if strings.HasPrefix(toComplete, "-") {
		return []string{"--port", "--direction", "--vlan", "--filter", "--snaplen", "-w", "-c", "--db", "--color"}, nofiles
	}
	args, err := takeGlobalFlags(cmd, args)
	if err != nil {
		return nil, nofiles
	}
	prev := ""
	if len(args) > 0 {
		prev = strings.TrimLeft(args[len(args)-1], "-")
	}
	switch prev {
	case "w":
		return nil, cobra.ShellCompDirectiveDefault
	case "direction":
		return []string{"in", "out", "both"}, nofiles
	case "port":
		o, _ := parseCaptureArgs(args[:len(args)-1])
		return databaseNames(a.remote, "Port", o.bridge), nofiles
	case "vlan", "filter", "snaplen", "c":
		return nil, nofiles
	}
	return databaseNames(a.remote, "Bridge", ""), nofiles
}

// databaseNames lists the names in a table, for completion; with bridge,
// only the ports of that bridge. Errors give no names.
func databaseNames(remote, table, bridge string) []string {
	c, err := ovsdb.Dial(remote)
	if err != nil {
		return nil
	}
	defer c.Close()
	rows, err := c.Select("Open_vSwitch", table)
	if err != nil {
		return nil
	}
	var names []string
	if bridge == "" {
		for _, r := range rows {
			names = append(names, str(r["name"]))
		}
		return names
	}
	bridges, err := c.Select("Open_vSwitch", "Bridge")
	if err != nil {
		return nil
	}
	ports := map[string]string{}
	for _, r := range rows {
		ports[uuidOf(r["_uuid"])] = str(r["name"])
	}
	for _, b := range bridges {
		if str(b["name"]) == bridge {
			for _, p := range elems(b["ports"]) {
				names = append(names, ports[uuidOf(p)])
			}
		}
	}
	return names
}

// capture runs `gvs capture`.
func capture(a *app, args []string) error {
	remote := a.remote
	o, err := parseCaptureArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(a.stdout, captureUsage)
		return nil
	}
	if err != nil {
		return usageError{err}
	}
	dest, err := resolveOutput(o, a.stdoutTTY)
	if err != nil {
		return err
	}
	c, err := ovsdb.Dial(remote)
	if err != nil {
		return err
	}
	defer c.Close()
	s := &captureSession{remote: remote, c: c, names: namesForPID(os.Getpid()), bridge: o.bridge}
	if s.target, err = lookupTarget(c, o.bridge, o.port); err != nil {
		return err
	}
	out, closeOut, err := openCaptureOutput(dest)
	if err != nil {
		return err
	}
	defer closeOut()
	// Signals are caught before anything is added, so that whatever
	// stops us from here on goes through the cleanup.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(stop)
	// A write to a closed stdout pipe returns EPIPE instead of killing us.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	defer s.end(os.Stderr)
	if err := s.makeFIFO(captureDir(remote)); err != nil {
		return err
	}
	if err := s.insert(o); err != nil {
		return err
	}
	if err := s.waitReady(5 * time.Second); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "gvs capture: port %s of bridge %s (%s), to %s; stop with Ctrl-C\n", o.port, o.bridge, o.direction, outputName(dest))
	return s.run(o, out, dest == "-", stop)
}

func outputName(dest string) string {
	if dest == "-" {
		return "stdout"
	}
	return dest
}

// openCaptureOutput opens where the capture goes.
func openCaptureOutput(dest string) (io.Writer, func(), error) {
	if dest == "-" {
		return os.Stdout, func() {}, nil
	}
	f, err := createCaptureFile(dest)
	if err != nil {
		return nil, nil, fmt.Errorf("-w %s: %w", dest, err)
	}
	return f, func() { f.Close() }, nil
}

// createCaptureFile opens dest for a capture that runs as root: a new
// file is 0600 (it holds a port's traffic), and nothing another user may
// have put at that name in a shared directory such as /tmp is written
// through: a symbolic link, a second name (hard link) of another file,
// another user's file. A FIFO or a device (/dev/null) is fine.
func createCaptureFile(dest string) (*os.File, error) {
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if errors.Is(err, unix.ELOOP) {
		return nil, errors.New("is a symbolic link; gvs capture does not write through one")
	}
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	err = unix.Fstat(int(f.Fd()), &st)
	if err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
		switch {
		case st.Nlink != 1:
			err = fmt.Errorf("has %d links: it is also another file's name", st.Nlink)
		case int(st.Uid) != os.Geteuid():
			err = fmt.Errorf("owned by uid %d, not by this user (uid %d)", st.Uid, os.Geteuid())
		default:
			err = f.Truncate(0)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// run copies the capture until -c, a signal, or the end of the reader of
// stdout, showing progress on a terminal stderr when stdout is free.
func (s *captureSession) run(o captureOptions, out io.Writer, toStdout bool, stop <-chan os.Signal) error {
	var count captureCount
	copied := make(chan error, 1)
	go func() { copied <- copyPcapng(out, s.fifo, o.count, &count) }()
	readerGone := make(chan struct{})
	if toStdout {
		go watchReaderGone(os.Stdout, readerGone)
	}
	showProgress := !toStdout && isTerminal(os.Stderr)
	finished, err := waitCaptureEnd(copied, stop, readerGone, &count, showProgress)
	if !finished {
		s.fifo.Close() // wakes the copy, which flushes what it holds
		select {
		case err = <-copied:
		case <-time.After(time.Second): // stuck writing to a stalled stdout
		}
	}
	if showProgress {
		fmt.Fprintf(os.Stderr, "\r%s\n", count.String())
	} else {
		fmt.Fprintf(os.Stderr, "gvs capture: %s\n", count.String())
	}
	if err == nil || errors.Is(err, os.ErrClosed) || errors.Is(err, syscall.EPIPE) {
		return nil // a normal end: -c, a signal, or the reader of stdout left
	}
	return err
}

// waitCaptureEnd waits for the copy to finish or for a reason to stop it,
// updating the progress line at most four times a second. finished says
// whether the copy itself ended, and err how.
func waitCaptureEnd(copied <-chan error, stop <-chan os.Signal, readerGone <-chan struct{}, count *captureCount, showProgress bool) (finished bool, err error) {
	var progress <-chan time.Time
	if showProgress {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		progress = t.C
	}
	shown := ""
	for {
		select {
		case err := <-copied:
			return true, err
		case <-stop:
			return false, nil
		case <-readerGone:
			return false, nil
		case <-progress:
			if line := count.String(); line != shown {
				fmt.Fprintf(os.Stderr, "\r%s", line)
				shown = line
			}
		}
	}
}

// watchReaderGone closes gone when the pipe f writes to loses its
// reader (tcpdump -c exited), even if no packet comes to show it.
func watchReaderGone(f *os.File, gone chan<- struct{}) {
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	fds := []unix.PollFd{{Fd: int32(f.Fd())}}
	for {
		n, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil || (n > 0 && fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0) {
			close(gone)
			return
		}
	}
}

// captureCount is the running total of a capture.
type captureCount struct {
	packets, bytes atomic.Int64
}

func (c *captureCount) String() string {
	return fmt.Sprintf("%d packets captured (%d bytes)", c.packets.Load(), c.bytes.Load())
}

// pcapng block types that carry a packet.
const (
	ngSHB = 0x0A0D0D0A
	ngEPB = 6
	ngSPB = 3
	ngPB  = 2 // obsolete Packet Block
)

// maxBlock bounds a block we accept, against a corrupt length.
const maxBlock = 16 << 20

// copyPcapng copies whole pcapng blocks from src to dst, counting
// packets, until limit packets (0: no limit) or an error. Output is
// flushed whenever the input has nothing more ready, so a reader sees
// packets promptly without a write per packet.
func copyPcapng(dst io.Writer, src io.Reader, limit int64, count *captureCount) error {
	br := bufio.NewReaderSize(src, 256<<10)
	bw := bufio.NewWriterSize(dst, 256<<10)
	var rd pcapngBlockReader
	for {
		block, err := rd.next(br)
		if err != nil {
			if ferr := bw.Flush(); ferr != nil {
				return ferr
			}
			return err
		}
		if _, err := bw.Write(block); err != nil {
			return err
		}
		if rd.countPacket(count) && limit > 0 && count.packets.Load() >= limit {
			return bw.Flush()
		}
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
	}
}

// pcapngBlockReader splits a pcapng stream into blocks, following the
// byte order each Section Header Block announces.
type pcapngBlockReader struct {
	order binary.ByteOrder
	buf   []byte
	block []byte
}

func (r *pcapngBlockReader) next(br *bufio.Reader) ([]byte, error) {
	head, err := br.Peek(12)
	if err != nil {
		if errors.Is(err, io.EOF) && len(head) == 0 {
			return nil, io.EOF
		}
		return nil, err
	}
	if binary.LittleEndian.Uint32(head) == ngSHB {
		switch binary.LittleEndian.Uint32(head[8:]) {
		case 0x1A2B3C4D:
			r.order = binary.LittleEndian
		case 0x4D3C2B1A:
			r.order = binary.BigEndian
		default:
			return nil, errors.New("pcapng: bad byte-order magic")
		}
	}
	if r.order == nil {
		return nil, errors.New("pcapng: stream does not start with a section header")
	}
	n := int(r.order.Uint32(head[4:]))
	if n < 12 || n%4 != 0 || n > maxBlock {
		return nil, fmt.Errorf("pcapng: bad block length %d", n)
	}
	if cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	r.block = r.buf[:n]
	if _, err := io.ReadFull(br, r.block); err != nil {
		return nil, err
	}
	return r.block, nil
}

// countPacket adds the last block to count if it holds a packet, and
// says whether it did.
func (r *pcapngBlockReader) countPacket(count *captureCount) bool {
	b := r.block
	switch r.order.Uint32(b) {
	case ngEPB, ngPB:
		if len(b) >= 28 {
			count.packets.Add(1)
			count.bytes.Add(int64(r.order.Uint32(b[24:])))
			return true
		}
	case ngSPB:
		if len(b) >= 12 {
			count.packets.Add(1)
			count.bytes.Add(int64(r.order.Uint32(b[8:])))
			return true
		}
	}
	return false
}
