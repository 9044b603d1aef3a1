package main

import (
	"os/user"
	"reflect"
	"strings"
	"testing"

	"gvs/internal/vlog"
)

func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// The command line ovs-ctl builds for ovs-vswitchd (do_start_forwarding
// and start_daemon in /usr/share/openvswitch/scripts), with every
// optional piece it may add.
func TestOVSCtlCommandLine(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"unix:/run/ovs/db.sock", "-vconsole:emer", "-vsyslog:err", "-vfile:info",
		"--mlockall", "--no-self-confinement", "--user", me.Username,
		"--no-chdir", "--log-file=/var/log/ovs/ovs-vswitchd.log",
		"--pidfile=/run/ovs/ovs-vswitchd.pid", "--detach", "--monitor"}
	o, err := parseOptions(args, env(map[string]string{"OVS_RUNDIR": "/run/ovs"}))
	if err != nil {
		t.Fatalf("parseOptions(%q): %v", args, err)
	}
	if remotes, err := o.clientRemotes(func(string) bool { return false }); err != nil || remotes != nil {
		t.Fatalf("DATABASE: remotes %q, %v; want gvsd's own database", remotes, err)
	}
	want := options{rundir: "/run/ovs", database: "unix:/run/ovs/db.sock",
		pidfile: "/run/ovs/ovs-vswitchd.pid", logFile: "/var/log/ovs/ovs-vswitchd.log",
		verbose: []string{"console:emer", "syslog:err", "file:info"},
		detach:  true, noChdir: true, monitor: true, mlockall: true}
	got := options{rundir: o.rundir, database: o.database, pidfile: o.pidfile, logFile: o.logFile,
		verbose: o.verbose, detach: o.detach, noChdir: o.noChdir, monitor: o.monitor, mlockall: o.mlockall}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parsed %+v\nwant %+v", got, want)
	}
	if len(o.notes) != 2 {
		t.Fatalf("notes %q, want one for --no-self-confinement and one for --user", o.notes)
	}
}

// Every ovs-vswitchd option is accepted, in each form getopt_long takes.
func TestEveryOVSVswitchdOptionAccepted(t *testing.T) {
	for _, args := range [][]string{
		{"--pidfile"}, {"--pidfile=x.pid"}, {"--detach"}, {"--no-chdir"}, {"--monitor"},
		{"--overwrite-pidfile"}, {"--no-self-confinement"}, {"--user=root"}, {"--user", "root"},
		{"--log-file"}, {"--log-file=/tmp/x.log"}, {"-v"}, {"-vdbg"}, {"--verbose"}, {"--verbose=info"},
		{"-vPATTERN:file:%m"}, {"-vFACILITY:local0"}, {"-vany:file:info"},
		{"--syslog-method=null"}, {"--syslog-target=127.0.0.1:514"},
		{"--unixctl=x.ctl"}, {"--unixctl", "none"}, {"--mlockall"},
		{"--disable-system"}, {"--disable-system-route"}, {"--enable-dummy"}, {"--enable-dummy=override"},
		{"--dummy-numa", "0,0"}, {"--hw-rawio-access"},
		{"-p", "k.pem"}, {"-pk.pem"}, {"--private-key=k.pem"}, {"-c", "c.pem"}, {"--certificate", "c.pem"},
		{"-C", "none"}, {"--ca-cert=ca.pem"}, {"--bootstrap-ca-cert=ca.pem"}, {"--peer-ca-cert=p.pem"},
		{"--ssl-protocols=TLSv1.2"}, {"--ssl-ciphers=HIGH"},
		{"-h"}, {"--help"}, {"-V"}, {"--version"},
		// gvsd's own, with one dash or two.
		{"-rundir", "/tmp/r"}, {"--rundir=/tmp/r"}, {"-db", "/tmp/c.db"}, {"--db", "/tmp/c.db"},
		{"-remote", "ptcp:6640"}, {"--remote=punix:/tmp/s"}, {"-version"},
		{"--", "unix:/var/run/openvswitch/db.sock"},
	} {
		if _, err := parseOptions(args, env(nil)); err != nil {
			t.Errorf("parseOptions(%q): %v", args, err)
		}
	}
}

// Anything that is not an ovs-vswitchd (or gvsd) option is an error.
func TestJunkRefused(t *testing.T) {
	for args, want := range map[string]string{
		"--bogus":                  "unrecognized option '--bogus'",
		"-x":                       "invalid option -- 'x'",
		"--detach=yes":             "option '--detach' doesn't allow an argument",
		"--unixctl":                "option '--unixctl' requires an argument",
		"-p":                       "option requires an argument -- 'p'",
		"-hV":                      `invalid option "-hV"`,
		"unix:/a unix:/b":          "at most one non-option argument",
		"--dpdk":                   "--dpdk to configure DPDK is not supported",
		"--user nosuchuser-gvs":    "gvsd cannot change its user yet",
		"--pidfile x --monitor y":  "at most one non-option argument",
		"-rundir":                  "option '--rundir' requires an argument",
		"--log-file /tmp/x.log -v": "", // a DATABASE of /tmp/x.log: refused later by checkDatabase
	} {
		_, err := parseOptions(strings.Fields(args), env(nil))
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", args, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", args, err, want)
		}
	}
}

func TestPathDefaultsAndRelativePaths(t *testing.T) {
	o, err := parseOptions([]string{"--pidfile", "--log-file", "-rundir", "/r"}, env(map[string]string{"OVS_LOGDIR": "/l"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.pidfile != "/r/ovs-vswitchd.pid" || o.logFile != "/l/ovs-vswitchd.log" || o.unixctl != "" || o.dbSock() != "/r/db.sock" {
		t.Fatalf("defaults: pidfile %q log %q unixctl %q", o.pidfile, o.logFile, o.unixctl)
	}
	o, err = parseOptions([]string{"--pidfile=p.pid", "--log-file=g.log", "--unixctl=c.ctl", "--rundir=/r"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if o.pidfile != "/r/p.pid" || o.logFile != "/var/log/openvswitch/g.log" || o.unixctl != "/r/c.ctl" {
		t.Fatalf("relative: pidfile %q log %q unixctl %q", o.pidfile, o.logFile, o.unixctl)
	}
	// No --pidfile: gvsd still writes the default one, for ovs-appctl.
	o, err = parseOptions(nil, env(map[string]string{"OVS_RUNDIR": "/e"}))
	if err != nil || o.pidfile != "/e/ovs-vswitchd.pid" || o.logFile != "" {
		t.Fatalf("no options: %+v, %v", o, err)
	}
}

// TestClientRemotes: no DATABASE, or gvsd's own db.sock while nothing
// answers there, is the embedded database; anything else makes gvsd a
// client of the servers it names, or is refused.
func TestClientRemotes(t *testing.T) {
	idle := func(string) bool { return false }
	live := func(string) bool { return true }
	for _, c := range []struct {
		db      string
		serving func(string) bool
		want    string // remotes joined by " ", "" for the embedded database, "error"
	}{
		{"", live, ""},
		{"unix:/r/db.sock", idle, ""},
		{"unix:/r/../r/db.sock", idle, ""},
		{"unix:/r/db.sock", live, "unix:/r/db.sock"},
		{"unix:/other/db.sock", idle, "unix:/other/db.sock"},
		{"tcp:127.0.0.1:6640", idle, "tcp:127.0.0.1:6640"},
		{"tcp:1.1.1.1:1,tcp:2.2.2.2:2,tcp:[::1]:3", idle, "tcp:1.1.1.1:1 tcp:2.2.2.2:2 tcp:[::1]:3"},
		{"ssl:10.0.0.1:6640", idle, "error"},
		{"punix:/r/db.sock", idle, "error"},
		{"tcp:name.example:6640", idle, "error"},
	} {
		o := &options{rundir: "/r", database: c.db}
		remotes, err := o.clientRemotes(c.serving)
		got := strings.Join(remotes, " ")
		if err != nil {
			got = "error"
			if !strings.Contains(err.Error(), c.db) {
				t.Errorf("DATABASE %q: error %v does not name it", c.db, err)
			}
		}
		if got != c.want {
			t.Errorf("DATABASE %q: %q (%v), want %q", c.db, got, err, c.want)
		}
	}
}

// -v for an ovs-vswitchd module gvsd lacks is noted; a word that is no
// module of either is an error.
func TestVerboseForMissingModules(t *testing.T) {
	o, err := parseOptions([]string{"-vvconn", "-vofproto_dpif:dbg", "-vconsole:off", "--disable-system"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	notes, err := setupLogging(o)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(notes, "\n")
	for _, want := range []string{`"vconn"`, `"ofproto_dpif"`, "--disable-system"} {
		if !strings.Contains(joined, want) {
			t.Errorf("notes %q lack %s", joined, want)
		}
	}
	if got := vlog.Default.Module("vswitchd").Level(vlog.Console); got != vlog.Off {
		t.Errorf("-vconsole:off not applied: console at %v", got)
	}
	// unixctl exists in gvsd, though its module is made later.
	o, _ = parseOptions([]string{"-vunixctl:file:dbg"}, env(nil))
	if notes, err := setupLogging(o); err != nil || len(notes) != 0 {
		t.Fatalf("-vunixctl: notes %q, %v", notes, err)
	}
	o, _ = parseOptions([]string{"-vnosuchmodule:dbg"}, env(nil))
	if _, err := setupLogging(o); err == nil || !strings.Contains(err.Error(), `"nosuchmodule"`) {
		t.Fatalf("-vnosuchmodule: %v", err)
	}
	vlog.Default.Set("console:info")
}
