// Command fwdbench is the arithmetic of bench/forwarding.sh: it reads one
// iperf3 JSON report and prints the rate it measured, and it turns the
// script's record of every run into a markdown table of medians with each
// mirror's cost against the same switch without a mirror.
//
//	fwdbench rate -udp REPORT.json   prints "RATE OFFERED" (kpps) for UDP,
//	fwdbench rate REPORT.json        or "RATE" (Gbit/s) for TCP;
//	fwdbench table RECORDS           prints the tables;
//	fwdbench rr-server / rr-client   TCP request/response latency (rr.go).
//
// The script does everything that touches the machine; this program only
// reads files, so its logic can be tested without root.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fwdbench:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: fwdbench rate [-udp] REPORT.json | fwdbench table RECORDS | fwdbench rr-server|rr-client [-t SECS] ADDR:PORT")
	}
	switch args[0] {
	case "rate":
		return rateCommand(args[1:], out)
	case "rr-server":
		return rrServer(args[1:], out)
	case "rr-client":
		return rrClient(args[1:], out)
	case "table":
		if len(args) != 2 {
			return fmt.Errorf("usage: fwdbench table RECORDS")
		}
		return tableCommand(args[1], out)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func rateCommand(args []string, out io.Writer) error {
	udp := len(args) == 2 && args[0] == "-udp"
	if len(args) != 1 && !udp {
		return fmt.Errorf("usage: fwdbench rate [-udp] REPORT.json")
	}
	path := args[len(args)-1]
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	r, err := parseIperf(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if udp {
		rate, offered, err := r.udpKpps()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		_, err = fmt.Fprintf(out, "%.1f %.1f\n", rate, offered)
		return err
	}
	gbps, err := r.tcpGbps()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	_, err = fmt.Fprintf(out, "%.3f\n", gbps)
	return err
}

func tableCommand(path string, out io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	recs, err := readRecords(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return writeTable(out, summarize(recs))
}
