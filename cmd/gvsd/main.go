// Command gvsd is the gvs virtual switch daemon: one process that serves
// its configuration database to ovs-vsctl and other OVSDB clients and runs
// the switch that database describes.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"gvs/internal/netdev"
	"gvs/internal/ovsdb"
	"gvs/internal/unixctl"
	"gvs/internal/vswitchd"
)

// version is gvs's own version.
const version = "0.1.0"

type options struct {
	rundir  string
	dbPath  string
	remotes []string
	metrics string // --metrics: Prometheus listener address, "" for none
	pprof   bool   // --pprof: profiler on the metrics listener
}

func main() {
	opts := parseFlags()
	if err := run(opts); err != nil {
		fmt.Fprintln(os.Stderr, "gvsd:", err)
		os.Exit(1)
	}
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func parseFlags() options {
	var o options
	var remotes listFlag
	flag.StringVar(&o.rundir, "rundir", envOr("OVS_RUNDIR", "/var/run/openvswitch"), "directory for db.sock, the pidfile, control sockets and capture/ (the only place pcap ports write)")
	flag.StringVar(&o.dbPath, "db", filepath.Join(envOr("OVS_DBDIR", "/var/lib/gvs"), "conf.db"), "database file (created if missing)")
	flag.Var(&remotes, "remote", "extra OVSDB listener, punix:PATH or ptcp:PORT[:IP] (repeatable);\n"+
		"ptcp:PORT without IP listens on every address of the host, IPv4 and IPv6")
	flag.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics on ADDR (host:port, e.g. 127.0.0.1:9475) at /metrics; off by default")
	flag.BoolVar(&o.pprof, "pprof", false, "with -metrics, also serve Go's profiler at /debug/pprof/ on the same listener")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Printf("gvsd (gvs) %s, Open vSwitch %s compatible\n", version, vswitchd.Version)
		os.Exit(0)
	}
	o.remotes = remotes
	return o
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func run(o options) error {
	if err := os.MkdirAll(o.rundir, 0o755); err != nil {
		return err
	}
	// The pidfile comes first: a second gvsd on the same run directory
	// stops here, before it touches the first one's sockets.
	pid, err := unixctl.CreatePidfile(filepath.Join(o.rundir, "ovs-vswitchd.pid"))
	if err != nil {
		return err
	}
	defer pid.Remove()
	schema, err := ovsdb.ParseSchema(vswitchd.SchemaJSON)
	if err != nil {
		return err
	}
	db, err := ovsdb.OpenDB(o.dbPath, schema)
	if err != nil {
		return err
	}
	sw := vswitchd.New(db)
	captureDir, err := netdev.PrepareCaptureDir(filepath.Join(o.rundir, "capture"))
	if err != nil {
		return err
	}
	sw.SetCaptureDir(captureDir)
	sw.SetRunDir(o.rundir)
	if err := sw.Init(); err != nil {
		return err
	}
	srv, err := ovsdb.NewServer(db)
	if err != nil {
		return err
	}
	defer srv.Close()
	for _, spec := range append([]string{"punix:" + filepath.Join(o.rundir, "db.sock")}, o.remotes...) {
		if _, err := srv.Listen(spec); err != nil {
			return fmt.Errorf("listen %s: %w", spec, err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctl, err := startControl(o.rundir, sw, stop)
	if err != nil {
		return err
	}
	defer ctl.Close()
	mon, err := startMetrics(o.metrics, o.pprof, sw, db, srv)
	if err != nil {
		return err
	}
	if mon != nil {
		defer mon.Close()
	}
	slog.Info("gvsd started", "version", version, "db", o.dbPath, "rundir", o.rundir)
	sw.Run(ctx)
	slog.Info("gvsd exiting")
	return nil
}

// startControl opens <rundir>/ovs-vswitchd.<pid>.ctl, which ovs-appctl
// finds through the pidfile, with the switch's commands.
func startControl(rundir string, sw *vswitchd.Switch, stop func()) (*unixctl.Server, error) {
	srv, err := unixctl.NewServer(unixctl.ControlPath(rundir, "ovs-vswitchd"),
		unixctl.WithVersion(unixctl.VersionText("ovs-vswitchd", version)))
	if err != nil {
		return nil, err
	}
	sw.RegisterCommands(srv)
	srv.RegisterExit(func(cleanup bool) {
		sw.SetExitCleanup(cleanup)
		stop()
	})
	go func() {
		if err := srv.Serve(); err != nil {
			slog.Error("control socket stopped", "error", err)
		}
	}()
	return srv, nil
}
