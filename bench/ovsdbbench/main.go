// Command ovsdbbench measures OVSDB servers with the same client workload
// and prints the results as rows of a markdown table, one column per
// server, so that gvsd's embedded database can be compared with the real
// ovsdb-server in one run. bench/ovsdb.sh starts the servers and runs it.
//
// It speaks raw JSON-RPC over each server's unix socket, so that the
// numbers measure the servers and not a client library. Two phases:
//
//   - txn: small transactions per second, each inserting one Queue row (a
//     root table, so the row stays alive, and one that gvsd's switch does
//     not act upon), by 1 client and by 8 concurrent clients, with and
//     without {"op":"commit","durable":true}; each from an empty table,
//     and the durable ones again with 10k rows already there.
//   - mem: the server's resident memory after inserting many Queue rows in
//     batches, and the time the inserts took.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// target is one server under test.
type target struct {
	name string
	sock string
	pid  int
}

// targetList is the repeatable -target flag: NAME,SOCKET,PID.
type targetList []target

func (l *targetList) String() string {
	names := make([]string, len(*l))
	for i, t := range *l {
		names[i] = t.name
	}
	return strings.Join(names, ",")
}

func (l *targetList) Set(v string) error {
	parts := strings.Split(v, ",")
	if len(parts) != 3 {
		return fmt.Errorf("target %q: want NAME,SOCKET,PID", v)
	}
	pid, err := strconv.Atoi(parts[2])
	if err != nil || pid <= 0 {
		return fmt.Errorf("target %q: bad pid %q", v, parts[2])
	}
	*l = append(*l, target{name: parts[0], sock: parts[1], pid: pid})
	return nil
}

type options struct {
	targets  targetList
	phase    string
	header   bool
	duration time.Duration
	clients  int
	prefill  int
	repeat   int
	rows     int
	batch    int
}

func main() {
	var o options
	flag.Var(&o.targets, "target", "server under test as NAME,SOCKET,PID (repeatable; order = table columns)")
	flag.StringVar(&o.phase, "phase", "txn", "workload: txn (transactions per second) or mem (memory for many rows)")
	flag.BoolVar(&o.header, "header", false, "print the table header first")
	flag.DurationVar(&o.duration, "duration", time.Second, "how long each transaction-rate measurement runs")
	flag.IntVar(&o.repeat, "repeat", 3, "measurements per transaction-rate workload and server; the median is reported")
	flag.IntVar(&o.clients, "clients", 8, "concurrent clients in the concurrent transaction-rate measurement")
	flag.IntVar(&o.prefill, "prefill", 10000, "rows in the table for the last two transaction-rate measurements (0: skip them)")
	flag.IntVar(&o.rows, "rows", 100000, "rows inserted by the mem phase")
	flag.IntVar(&o.batch, "batch", 1000, "rows per transaction in the mem phase")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "ovsdbbench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if len(o.targets) == 0 {
		return errors.New("no -target given")
	}
	if o.header {
		printHeader(o.targets)
	}
	switch o.phase {
	case "txn":
		return runTxnPhase(o)
	case "mem":
		return runMemPhase(o)
	default:
		return fmt.Errorf("unknown phase %q (want txn or mem)", o.phase)
	}
}

func printHeader(ts targetList) {
	cols := []string{"workload"}
	seps := []string{"---"}
	for _, t := range ts {
		cols = append(cols, t.name)
		seps = append(seps, "---:")
	}
	if len(ts) == 2 {
		cols = append(cols, ts[0].name+" / "+ts[1].name)
		seps = append(seps, "---:")
	}
	fmt.Println("| " + strings.Join(cols, " | ") + " |")
	fmt.Println("|" + strings.Join(seps, "|") + "|")
}

// printRow prints one workload's values, and with two servers their ratio
// (computed on the raw values, before formatting).
func printRow(workload string, values []float64, format func(float64) string) {
	cells := []string{workload}
	for _, v := range values {
		cells = append(cells, format(v))
	}
	if len(values) == 2 && values[1] != 0 {
		cells = append(cells, fmt.Sprintf("%.2f×", values[0]/values[1]))
	}
	fmt.Println("| " + strings.Join(cells, " | ") + " |")
}
