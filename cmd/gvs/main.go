// Command gvs is gvs's own command-line tool: a readable view of the
// switch and, over time, friendlier versions of what ovs-vsctl, ovs-ofctl
// and ovs-appctl do. It talks to gvsd directly (OVSDB and the control
// socket) and needs no Open vSwitch tools.
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

func usage() {
	fmt.Fprintf(os.Stderr, `usage: gvs [--db unix:PATH] COMMAND
commands:
  show       bridges, ports, VLANs and mirrors, with errors highlighted
  capture    BRIDGE --port PORT [-w FILE|-]: a port's traffic as pcapng (gvs capture -h)
  version    the versions of gvs and of the running gvsd
`)
}

func main() {
	args := os.Args[1:]
	remote := "unix:" + filepath.Join(rundir(), "db.sock")
	if len(args) >= 2 && args[0] == "--db" {
		remote, args = args[1], args[2:]
	}
	if len(args) == 0 {
		usage()
		os.Exit(2)
	}
	var err error
	switch args[0] {
	case "show":
		err = show(os.Stdout, remote, isTerminal(os.Stdout))
	case "capture":
		err = capture(remote, args[1:])
	case "version", "--version":
		err = printVersion(os.Stdout, remote)
	case "help", "-h", "--help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "gvs: unknown command %q\n", args[0])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gvs:", err)
		os.Exit(1)
	}
}

func rundir() string {
	if d := os.Getenv("OVS_RUNDIR"); d != "" {
		return d
	}
	return "/var/run/openvswitch"
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
