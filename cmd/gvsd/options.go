package main

import (
	"fmt"
	"os/user"
	"path/filepath"
	"slices"
	"strings"

	"gvs/internal/ovsdb/idl"
)

// options is gvsd's command line: ovs-vswitchd's, with the meanings of
// ovs-vswitchd(8), plus gvsd's own -rundir, -db and -remote.
type options struct {
	rundir   string
	dbPath   string
	remotes  []string
	database string // DATABASE argument; "" when absent
	metrics  string // --metrics: Prometheus listener address, "" for none
	pprof    bool   // --pprof: profiler on the metrics listener

	pidfile string // absolute; the default is <rundir>/ovs-vswitchd.pid
	unixctl string // absolute, or "none"; "" for <rundir>/ovs-vswitchd.<pid>.ctl
	logFile string // absolute; "" for no log file
	verbose []string

	detach, noChdir, monitor, mlockall bool
	help, version                      bool

	// notes are options accepted for features gvsd does not have; they
	// are logged at INFO (never WARN: operators grep logs for |WARN|).
	notes []string

	// Raw values resolved once every option is known (-rundir may
	// follow --pidfile).
	rawPidfile, rawUnixctl, rawLogFile string
	pidfileGiven, logFileGiven         bool
}

type argKind int

const (
	noArg argKind = iota
	requiredArg
	optionalArg // only as --name=VALUE (or -vVALUE), as getopt_long does
)

// option is one command-line option. set gets the value and whether one
// was given.
type option struct {
	long  string
	short byte
	kind  argKind
	set   func(o *options, val string, given bool) error
}

// unsupported returns a setter that accepts the option and notes why it
// changes nothing.
func unsupported(why string) func(*options, string, bool) error {
	return func(o *options, val string, given bool) error {
		o.notes = append(o.notes, why)
		return nil
	}
}

func flagSetter(field func(*options) *bool) func(*options, string, bool) error {
	return func(o *options, _ string, _ bool) error { *field(o) = true; return nil }
}

var optionTable = []option{
	// gvsd's own.
	{long: "rundir", kind: requiredArg, set: func(o *options, v string, _ bool) error { o.rundir = v; return nil }},
	{long: "db", kind: requiredArg, set: func(o *options, v string, _ bool) error { o.dbPath = v; return nil }},
	{long: "remote", kind: requiredArg, set: func(o *options, v string, _ bool) error { o.remotes = append(o.remotes, v); return nil }},
	{long: "metrics", kind: requiredArg, set: func(o *options, v string, _ bool) error { o.metrics = v; return nil }},
	{long: "pprof", kind: noArg, set: func(o *options, _ string, _ bool) error { o.pprof = true; return nil }},

	// ovs-vswitchd's.
	{long: "help", short: 'h', set: flagSetter(func(o *options) *bool { return &o.help })},
	{long: "version", short: 'V', set: flagSetter(func(o *options) *bool { return &o.version })},
	{long: "mlockall", set: flagSetter(func(o *options) *bool { return &o.mlockall })},
	{long: "unixctl", kind: requiredArg, set: func(o *options, v string, _ bool) error { o.rawUnixctl = v; return nil }},
	{long: "detach", set: flagSetter(func(o *options) *bool { return &o.detach })},
	{long: "no-chdir", set: flagSetter(func(o *options) *bool { return &o.noChdir })},
	{long: "monitor", set: flagSetter(func(o *options) *bool { return &o.monitor })},
	{long: "pidfile", kind: optionalArg, set: func(o *options, v string, given bool) error {
		o.pidfileGiven, o.rawPidfile = true, v
		return nil
	}},
	{long: "overwrite-pidfile", set: unsupported("--overwrite-pidfile: gvsd never takes over a pidfile that a live process holds")},
	{long: "no-self-confinement", set: unsupported("--no-self-confinement: gvsd does not confine itself")},
	{long: "user", kind: requiredArg, set: setUser},
	{long: "verbose", short: 'v', kind: optionalArg, set: func(o *options, v string, _ bool) error {
		o.verbose = append(o.verbose, v)
		return nil
	}},
	{long: "log-file", kind: optionalArg, set: func(o *options, v string, _ bool) error {
		o.logFileGiven, o.rawLogFile = true, v
		return nil
	}},
	{long: "syslog-method", kind: requiredArg, set: unsupported("--syslog-method: gvsd always sends syslog messages to /dev/log")},
	{long: "syslog-target", kind: requiredArg, set: unsupported("--syslog-target: gvsd sends no syslog messages over UDP")},
	{long: "disable-system", set: unsupported("--disable-system: gvsd has only its userspace datapath")},
	{long: "disable-system-route", set: unsupported("--disable-system-route: gvsd keeps no copy of the system routing table")},
	{long: "enable-dummy", kind: optionalArg, set: unsupported("--enable-dummy: gvsd has no dummy netdev classes")},
	{long: "dummy-numa", kind: requiredArg, set: unsupported("--dummy-numa: gvsd has no NUMA emulation")},
	{long: "hw-rawio-access", set: unsupported("--hw-rawio-access: gvsd needs no raw I/O capability")},
	{long: "dpdk", kind: optionalArg, set: func(*options, string, bool) error {
		return fmt.Errorf("using --dpdk to configure DPDK is not supported")
	}},
	{long: "private-key", short: 'p', kind: requiredArg, set: noSSL},
	{long: "certificate", short: 'c', kind: requiredArg, set: noSSL},
	{long: "ca-cert", short: 'C', kind: requiredArg, set: noSSL},
	{long: "bootstrap-ca-cert", kind: requiredArg, set: noSSL},
	{long: "peer-ca-cert", kind: requiredArg, set: noSSL},
	{long: "ssl-protocols", kind: requiredArg, set: noSSL},
	{long: "ssl-ciphers", kind: requiredArg, set: noSSL},
}

func noSSL(o *options, _ string, _ bool) error {
	o.notes = append(o.notes, "SSL options: gvsd makes no SSL connections; ignored")
	return nil
}

// setUser accepts --user only for the user gvsd already runs as: it
// cannot drop privileges yet, and running with more of them than the
// operator asked for would be worse than refusing.
func setUser(o *options, v string, _ bool) error {
	name, group, _ := strings.Cut(v, ":")
	me, err := user.Current()
	if err != nil {
		return fmt.Errorf("--user %s: %w", v, err)
	}
	okName := name == "" || name == me.Username
	okGroup := group == ""
	if g, err := user.LookupGroupId(me.Gid); err == nil && group == g.Name {
		okGroup = true
	}
	if !okName || !okGroup {
		return fmt.Errorf("--user %s: gvsd cannot change its user yet; start it as that user or leave out --user", v)
	}
	o.notes = append(o.notes, fmt.Sprintf("--user %s: gvsd already runs as that user", v))
	return nil
}

func findLong(name string) *option {
	for i := range optionTable {
		if optionTable[i].long == name {
			return &optionTable[i]
		}
	}
	return nil
}

func findShort(c byte) *option {
	for i := range optionTable {
		if optionTable[i].short == c {
			return &optionTable[i]
		}
	}
	return nil
}

// parseOptions reads the arguments after the program name. getenv gives
// OVS_RUNDIR, OVS_DBDIR and OVS_LOGDIR. Options and the DATABASE
// argument may come in any order; "--" ends the options. Long options
// take one dash or two ("-rundir DIR", "--pidfile=FILE").
func parseOptions(args []string, getenv func(string) string) (*options, error) {
	o := &options{
		rundir: envOr(getenv, "OVS_RUNDIR", "/var/run/openvswitch"),
		dbPath: filepath.Join(envOr(getenv, "OVS_DBDIR", "/var/lib/gvs"), "conf.db"),
	}
	var positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = append(positional, args[i+1:]...)
			i = len(args)
			continue
		case a == "-" || !strings.HasPrefix(a, "-"):
			positional = append(positional, a)
			continue
		}
		next, err := parseOne(o, args, i)
		if err != nil {
			return nil, err
		}
		i = next
	}
	if len(positional) > 1 {
		return nil, fmt.Errorf("at most one non-option argument accepted (DATABASE), got %q", positional)
	}
	if len(positional) == 1 {
		o.database = positional[0]
	}
	if err := o.resolvePaths(getenv); err != nil {
		return nil, err
	}
	return o, nil
}

// parseOne handles the option at args[i] and returns the index of the
// last argument it used.
func parseOne(o *options, args []string, i int) (int, error) {
	a := args[i]
	body := strings.TrimPrefix(a, "-")
	long := strings.HasPrefix(body, "-")
	body = strings.TrimPrefix(body, "-")
	name, val, hasVal := strings.Cut(body, "=")
	opt := findLong(name)
	if !long && (opt == nil || len(name) == 1) {
		return parseShort(o, args, i)
	}
	if opt == nil {
		return 0, fmt.Errorf("unrecognized option '%s'", a)
	}
	switch {
	case opt.kind == noArg && hasVal:
		return 0, fmt.Errorf("option '--%s' doesn't allow an argument", name)
	case opt.kind == requiredArg && !hasVal:
		if i+1 >= len(args) {
			return 0, fmt.Errorf("option '--%s' requires an argument", name)
		}
		i++
		val, hasVal = args[i], true
	}
	return i, opt.set(o, val, hasVal)
}

// parseShort handles -h, -V, -v[SPEC] and -p/-c/-C FILE.
func parseShort(o *options, args []string, i int) (int, error) {
	a := args[i]
	c, rest := a[1], a[2:]
	opt := findShort(c)
	if opt == nil {
		return 0, fmt.Errorf("invalid option -- '%c' (in %q)", c, a)
	}
	switch opt.kind {
	case noArg:
		if rest != "" {
			return 0, fmt.Errorf("invalid option %q", a)
		}
		return i, opt.set(o, "", false)
	case optionalArg:
		return i, opt.set(o, rest, rest != "")
	}
	if rest == "" {
		if i+1 >= len(args) {
			return 0, fmt.Errorf("option requires an argument -- '%c'", c)
		}
		i++
		rest = args[i]
	}
	return i, opt.set(o, rest, true)
}

// resolvePaths makes every path absolute, as ovs-vswitchd(8) says:
// pidfile and control socket relative to the run directory, log file
// relative to the log directory, the rest to the current directory (a
// detached daemon changes to /).
func (o *options) resolvePaths(getenv func(string) string) error {
	var err error
	if o.rundir, err = filepath.Abs(o.rundir); err != nil {
		return fmt.Errorf("-rundir %q: %w", o.rundir, err)
	}
	if o.dbPath, err = filepath.Abs(o.dbPath); err != nil {
		return fmt.Errorf("-db %q: %w", o.dbPath, err)
	}
	o.pidfile = filepath.Join(o.rundir, "ovs-vswitchd.pid")
	if o.pidfileGiven && o.rawPidfile != "" {
		o.pidfile = under(o.rundir, o.rawPidfile)
	}
	switch o.rawUnixctl {
	case "", "none":
		o.unixctl = o.rawUnixctl
	default:
		o.unixctl = under(o.rundir, o.rawUnixctl)
	}
	if o.logFileGiven {
		logdir, err := filepath.Abs(envOr(getenv, "OVS_LOGDIR", "/var/log/openvswitch"))
		if err != nil {
			return err
		}
		o.logFile = filepath.Join(logdir, "ovs-vswitchd.log")
		if o.rawLogFile != "" {
			o.logFile = under(logdir, o.rawLogFile)
		}
	}
	return nil
}

func under(dir, path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(dir, path)
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// dbSock is where gvsd serves its database.
func (o *options) dbSock() string { return filepath.Join(o.rundir, "db.sock") }

// clientRemotes says what DATABASE makes of gvsd: nil remotes when gvsd
// serves its own database on db.sock (no DATABASE; or unix: naming that
// socket, which is what ovs-ctl passes, while nothing answers on it), or
// the OVSDB servers gvsd is a client of (unix:PATH elsewhere, tcp:IP:PORT
// with more remotes after commas; or its own db.sock when a live server,
// such as the ovsdb-server that `ovs-ctl --no-ovs-vswitchd start`
// started, already serves it). serving reports whether a process
// answers on a unix socket.
func (o *options) clientRemotes(serving func(path string) bool) ([]string, error) {
	if o.database == "" {
		return nil, nil
	}
	if path, ok := strings.CutPrefix(o.database, "unix:"); ok && !strings.Contains(path, ",") {
		if abs, err := filepath.Abs(path); err == nil && abs == o.dbSock() && !serving(abs) {
			return nil, nil
		}
	}
	remotes, err := idl.ParseRemotes(o.database)
	if err != nil {
		return nil, fmt.Errorf("DATABASE %q: %w", o.database, err)
	}
	return remotes, nil
}

// usage is the --help text, also printed after a command-line error.
func usage() string {
	return `gvsd: the gvs virtual switch daemon, a drop-in for ovs-vswitchd with its own OVSDB server
usage: gvsd [OPTIONS] [DATABASE]
Without DATABASE, gvsd serves its own database on RUNDIR/db.sock. With
DATABASE = unix:PATH or tcp:IP:PORT[,tcp:IP:PORT]..., gvsd is a client of
that OVSDB server (ovsdb-server, standalone or the members of a cluster)
and serves no database; unix:RUNDIR/db.sock means gvsd's own database
unless a live server already answers there.

gvsd options:
  -rundir DIR             directory for db.sock, the pidfile, control sockets
                          and capture/ (default: $OVS_RUNDIR or /var/run/openvswitch)
  -db FILE                database file, created if missing
                          (default: $OVS_DBDIR/conf.db or /var/lib/gvs/conf.db)
  -remote SPEC            extra OVSDB listener, punix:PATH or ptcp:PORT[:IP]
                          (repeatable; ptcp:PORT without IP listens on every address)
  -metrics ADDR           serve Prometheus metrics on ADDR (host:port, e.g.
                          127.0.0.1:9475) at /metrics; off by default
  -pprof                  with -metrics, also serve Go's profiler at /debug/pprof/

Daemon options:
  --detach                run in background as daemon; returns once it serves
  --monitor               create a process that restarts the daemon if it crashes
  --no-chdir              do not chdir to '/'
  --pidfile[=FILE]        pidfile (default: RUNDIR/ovs-vswitchd.pid; gvsd always
                          writes one, for ovs-appctl)
  --user=USER[:GROUP]     only the user gvsd already runs as

Logging options:
  -vSPEC, --verbose=SPEC  set logging levels (see ovs-appctl vlog/set)
  -v, --verbose           set maximum verbosity level
  --log-file[=FILE]       enable logging to FILE
                          (default: $OVS_LOGDIR/ovs-vswitchd.log or
                          /var/log/openvswitch/ovs-vswitchd.log)

Other options:
  --unixctl=SOCKET        override default control socket name ("none": no socket)
  --mlockall              lock all memory into RAM
  -h, --help              display this help message
  -V, --version           display version information

Accepted and ignored, with a note in the log (features gvsd does not have):
  --disable-system --disable-system-route --enable-dummy --dummy-numa
  --hw-rawio-access --overwrite-pidfile --no-self-confinement
  --syslog-method --syslog-target -p -c -C --bootstrap-ca-cert
  --peer-ca-cert --ssl-protocols --ssl-ciphers, and -v for an
  ovs-vswitchd log module gvsd does not have
`
}

// ovsModules are the log modules of ovs-vswitchd 3.1 (its vlog/list). A
// -v option for one that gvsd lacks is accepted and noted, not refused:
// OVS's scripts and test suites pass them.
var ovsModules = strings.Fields(`backtrace bfd bond bridge bundle bundles cfm
collectors command_line connmgr conntrack conntrack_tp coverage ct_dpif daemon
daemon_unix dns_resolve dpdk dpif dpif_lookup_autovalidator dpif_lookup_generic
dpif_mfex_extract_study dpif_netdev dpif_netdev_extract dpif_netdev_impl
dpif_netdev_lookup dpif_netlink dpif_netlink_rtnl entropy fail_open
fatal_signal flow hmap in_band ipf ipfix jsonrpc lacp lldp lldpd lldpd_structs
lockfile memory meta_flow native_tnl netdev netdev_afxdp netdev_dummy
netdev_linux netdev_offload netdev_offload_tc netdev_vport netflow netlink
netlink_conntrack netlink_notifier netlink_socket nx_match odp_execute
odp_execute_impl odp_util ofp_actions ofp_bundle ofp_connection ofp_errors
ofp_flow ofp_group ofp_match ofp_meter ofp_monitor ofp_msgs ofp_packet
ofp_port ofp_protocol ofp_queue ofp_table ofp_util ofproto ofproto_dpif
ofproto_dpif_mirror ofproto_dpif_monitor ofproto_dpif_rid ofproto_dpif_upcall
ofproto_dpif_xlate ofproto_xlate_cache ovs_lldp ovs_numa ovs_rcu ovs_replay
ovs_router ovs_thread ovsdb_cs ovsdb_error ovsdb_idl ox_stat pcap pmd_perf
poll_loop process rconn reconnect route_table rstp rstp_sm sflow sha1 signals
socket_util socket_util_unix stp stream stream_fd stream_replay stream_ssl
stream_tcp stream_unix svec system_stats tc timeval tunnel unixctl
userspace_tso util uuid vconn vconn_stream vlog vswitchd`)

func isOVSModule(name string) bool {
	return slices.Contains(ovsModules, strings.ToLower(name))
}
