// Command gvsd is the gvs virtual switch daemon: one process that serves
// its configuration database to ovs-vsctl and other OVSDB clients and runs
// the switch that database describes. It takes ovs-vswitchd's command
// line, so ovs-ctl and its service units can start it.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gvs/internal/daemon"
	"gvs/internal/netdev"
	"gvs/internal/ovsdb"
	"gvs/internal/ovsdb/idl"
	"gvs/internal/unixctl"
	"gvs/internal/unixsock"
	"gvs/internal/version"
	"gvs/internal/vlog"
	"gvs/internal/vswitchd"
)

// log is the daemon's own module, named as ovs-vswitchd's main module is.
var log = vlog.New("vswitchd")

func main() {
	// A console (stderr) whose reader went away must cost gvsd its log
	// lines, not its life: writes to it fail with EPIPE instead of a
	// SIGPIPE that ends the process without cleanup, as ovs-vswitchd
	// ignores SIGPIPE. Caught rather than ignored, so that programs gvsd
	// starts get the default action back.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	o, err := parseOptions(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gvsd: %v\n\n%s", err, usage())
		os.Exit(1)
	}
	switch {
	case o.help:
		fmt.Print(usage())
		return
	case o.version:
		fmt.Printf("gvsd (gvs) %s, Open vSwitch %s compatible\n", version.String(), vswitchd.Version)
		return
	}
	notes, err := setupLogging(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gvsd: %v\n", err)
		os.Exit(1)
	}
	proc, err := daemon.Start(daemon.Config{Detach: o.detach, Monitor: o.monitor, NoChdir: o.noChdir, OnHangup: reopenLog})
	if err == nil {
		for _, n := range notes {
			log.Info("%s", n)
		}
		err = run(o, proc)
	}
	if err != nil {
		log.Err("%v", err)
	}
	// Console and log file lines are written by goroutines of their own
	// (a stopped reader must not hang gvsd): give them a moment to get
	// out.
	vlog.Default.Flush(time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gvsd:", err)
		os.Exit(1)
	}
}

// setupLogging applies -v and --log-file, and sends what the packages
// log through slog to the vswitchd module, so everything lands in the
// log file in OVS's line format. It returns notes for -v options naming
// ovs-vswitchd modules gvsd does not have.
func setupLogging(o *options) (notes []string, err error) {
	slog.SetDefault(slog.New(log.Handler()))
	// Modules that packages create when they start, named here so -v
	// finds them before that.
	for _, name := range []string{"unixctl", "daemon"} {
		vlog.New(name)
	}
	for _, spec := range o.verbose {
		err := vlog.Default.Set(spec)
		var uw *vlog.UnknownWordError
		if errors.As(err, &uw) && isOVSModule(uw.Word) {
			notes = append(notes, fmt.Sprintf("-v%s: gvsd has no log module %q; ignored", spec, uw.Word))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("processing \"%s\": %w", spec, err)
		}
	}
	o.notes = append(o.notes, notes...)
	if o.logFile != "" {
		if err := vlog.Default.OpenFile(o.logFile); err != nil {
			return nil, err
		}
	}
	return o.notes, nil
}

// reopenLog reopens the log file for logrotate (SIGHUP, as
// `ovs-appctl vlog/reopen` does).
func reopenLog() {
	if err := vlog.Default.ReopenFile(); err != nil {
		log.Err("SIGHUP: %v", err)
	}
}

func run(o *options, proc *daemon.Process) error {
	// SIGHUP reopens the log file, and must not end gvsd even while it
	// starts.
	hangups := make(chan os.Signal, 1)
	signal.Notify(hangups, syscall.SIGHUP)
	defer signal.Stop(hangups)
	remotes, err := o.clientRemotes(serving)
	if err != nil {
		return err
	}
	if o.mlockall {
		lockMemory()
	}
	if err := os.MkdirAll(o.rundir, 0o755); err != nil {
		return err
	}
	// The pidfile comes first: a second gvsd on the same run directory
	// stops here, before it touches the first one's sockets.
	pid, err := unixctl.CreatePidfile(o.pidfile)
	if err != nil {
		return err
	}
	defer pid.Remove()
	for _, p := range unixctl.RemoveStaleControls(o.rundir, "ovs-vswitchd") {
		log.Info("removed stale control socket %s", p)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var (
		sw  *vswitchd.Switch
		db  *ovsdb.DB
		srv *ovsdb.Server
	)
	if remotes == nil {
		// Refuse a db.sock that a live ovsdb-server (or ovs-vswitchd)
		// serves before changing anything on the host.
		if err := unixsock.CheckStale(o.dbSock()); err != nil {
			return err
		}
		if sw, db, srv, err = openSwitch(o); err != nil {
			return err
		}
		defer srv.Close()
	} else if sw, err = openClient(ctx, o, remotes); err != nil {
		return err
	}
	// exit's reply waits until the switch has closed (exit --cleanup:
	// every device it created deleted), and gvsd until that reply is out.
	ex := &exitState{switchClosed: make(chan struct{})}
	if o.unixctl != "none" {
		ctl, err := startControl(o, sw, stop, ex)
		if err != nil {
			return err
		}
		defer ctl.Close()
	}
	mon, err := startMetrics(o.metrics, o.pprof, sw, db, srv)
	if err != nil {
		return err
	}
	if mon != nil {
		defer mon.Close()
	}
	go signalReady(ctx, sw, proc, hangups)
	where := o.dbPath
	if remotes != nil {
		where = strings.Join(remotes, ",")
	}
	log.Info("gvsd %s started, database %s, run directory %s", version.String(), where, o.rundir)
	sw.Run(ctx)
	close(ex.switchClosed)
	ex.waitReplied()
	log.Info("gvsd exiting")
	return nil
}

// serving reports whether a process answers on the unix socket path.
func serving(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// openClient readies the switch on a replica of the Open_vSwitch
// database that the OVSDB servers at remotes serve, kept until ctx ends.
// The switch applies it once the replica holds the ovs_vswitchd lock.
func openClient(ctx context.Context, o *options, remotes []string) (*vswitchd.Switch, error) {
	schema, err := ovsdb.ParseSchema(vswitchd.SchemaJSON)
	if err != nil {
		return nil, err
	}
	var sw *vswitchd.Switch
	rep, err := idl.New(idl.Config{Remotes: remotes, Schema: schema, Lock: "ovs_vswitchd",
		OnSync: func() { sw.Reconfigure() }})
	if err != nil {
		return nil, err
	}
	sw = vswitchd.New(rep)
	captureDir, err := netdev.PrepareCaptureDir(filepath.Join(o.rundir, "capture"))
	if err != nil {
		return nil, err
	}
	sw.SetCaptureDir(captureDir)
	sw.SetRunDir(o.rundir)
	go rep.Run(ctx)
	return sw, nil
}

// openSwitch opens the database, readies the switch and serves the
// database on db.sock and the -remote listeners.
func openSwitch(o *options) (*vswitchd.Switch, *ovsdb.DB, *ovsdb.Server, error) {
	schema, err := ovsdb.ParseSchema(vswitchd.SchemaJSON)
	if err != nil {
		return nil, nil, nil, err
	}
	db, err := ovsdb.OpenDB(o.dbPath, schema)
	if err != nil {
		return nil, nil, nil, err
	}
	sw := vswitchd.New(db)
	captureDir, err := netdev.PrepareCaptureDir(filepath.Join(o.rundir, "capture"))
	if err != nil {
		return nil, nil, nil, err
	}
	sw.SetCaptureDir(captureDir)
	sw.SetRunDir(o.rundir)
	if err := sw.Init(); err != nil {
		return nil, nil, nil, err
	}
	srv, err := ovsdb.NewServer(db)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, spec := range append([]string{"punix:" + o.dbSock()}, o.remotes...) {
		if _, err := srv.Listen(spec); err != nil {
			srv.Close()
			return nil, nil, nil, fmt.Errorf("listen %s: %w", spec, err)
		}
	}
	return sw, db, srv, nil
}

// signalReady tells the --detach parent, the monitor and systemd that
// gvsd serves, once the first configuration is applied; then it reopens
// the log file on every SIGHUP.
func signalReady(ctx context.Context, sw *vswitchd.Switch, proc *daemon.Process, hangups <-chan os.Signal) {
	select {
	case <-sw.Applied():
		if err := proc.Ready(); err != nil {
			log.Err("telling that gvsd is ready: %v", err)
		}
	case <-ctx.Done():
		return
	}
	for {
		select {
		case <-hangups:
			reopenLog()
		case <-ctx.Done():
			return
		}
	}
}

// lockMemory is --mlockall. MCL_ONFAULT locks pages as they are used
// rather than all of the address space Go reserves up front.
func lockMemory() {
	err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT)
	if errors.Is(err, unix.EINVAL) { // a kernel before 4.4
		err = unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE)
	}
	if err != nil {
		log.Warn("--mlockall: %v", err)
	}
}

// startControl opens the control socket (by default
// <rundir>/ovs-vswitchd.<pid>.ctl, which ovs-appctl finds through the
// pidfile) with the switch's commands.
func startControl(o *options, sw *vswitchd.Switch, stop func(), ex *exitState) (*unixctl.Server, error) {
	path := o.unixctl
	if path == "" {
		path = unixctl.ControlPath(o.rundir, "ovs-vswitchd")
	}
	srv, err := unixctl.NewServer(path, unixctl.WithVersion(unixctl.VersionText("ovs-vswitchd", version.String())))
	if err != nil {
		return nil, err
	}
	sw.RegisterCommands(srv)
	ex.replied = srv.RegisterExitWaiting(func(cleanup bool) <-chan struct{} {
		ex.requested.Store(true)
		sw.SetExitCleanup(cleanup)
		stop()
		return ex.switchClosed
	})
	go func() {
		if err := srv.Serve(); err != nil {
			log.Err("control socket stopped: %v", err)
		}
	}()
	return srv, nil
}

// exitState is what `ovs-appctl exit` and the end of run share.
type exitState struct {
	switchClosed chan struct{}   // closed once the switch has closed
	replied      <-chan struct{} // closed once exit's reply is sent
	requested    atomic.Bool     // an exit command ended gvsd
}

// waitReplied gives a pending exit reply a moment to go out before the
// control socket closes.
func (ex *exitState) waitReplied() {
	if !ex.requested.Load() || ex.replied == nil {
		return
	}
	select {
	case <-ex.replied:
	case <-time.After(5 * time.Second):
	}
}
