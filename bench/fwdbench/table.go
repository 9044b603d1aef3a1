package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The record file has one tab-separated line per measurement:
//
//	run  MODE SWITCH MIRROR TRAFFIC RATE OFFERED COPIES DELIVERED CPU [RECV WALL]
//	fail MODE SWITCH MIRROR TRAFFIC REASON
//	na   MODE SWITCH MIRROR TRAFFIC REASON
//
// RATE is Gbit/s (tcp) or kpps (udp); OFFERED is the UDP sender's kpps;
// COPIES is what the mirror's sink received and DELIVERED what the two
// iperf3 ends received during the run, in packets; CPU is the switch
// process's CPU time over the run in percent of one CPU. RECV is what
// the receiving end's interface received (its rx_packets) and WALL the
// seconds between the two reads of the counters, the interval CPU is
// measured over too: RECV/WALL is the rate the switch delivered at,
// whether or not iperf3's receiver kept up with it. "-" means not
// measured. For TRAFFIC rr (TCP request/response) RATE is the median
// round trip and OFFERED the 99th percentile, in µs, COPIES the number
// of round trips and DELIVERED "-". Records written before RECV and
// WALL existed have 10 fields.

// config names one row of the table.
type config struct{ mode, sw, mirror string }

// noMirror is the MIRROR of a switch's baseline row.
const noMirror = "none"

// sample is one run.
type sample struct {
	rate, offered, copyRatio, cpu float64 // NaN when not measured
	// recvKpps is the rate the receiving interface got frames at, in
	// thousands a second, and cpuPerFrame the switch's CPU time per such
	// frame in µs; NaN when not measured.
	recvKpps, cpuPerFrame float64
}

// cell gathers one configuration's runs of one kind of traffic.
type cell struct {
	runs     []sample
	failures []string
	na       string
}

type row struct {
	config
	cells map[string]*cell // by traffic: "tcp", "udp"
}

type record struct {
	kind    string
	config  config
	traffic string
	fields  []string
}

func readRecords(r io.Reader) ([]record, error) {
	var out []record
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 6 {
			return nil, fmt.Errorf("line %d: want at least 6 tab-separated fields, have %d", n, len(f))
		}
		rec := record{kind: f[0], config: config{f[1], f[2], f[3]}, traffic: f[4], fields: f[5:]}
		switch {
		case rec.kind == "run" && len(rec.fields) != 5 && len(rec.fields) != 7:
			return nil, fmt.Errorf("line %d: a run has 10 or 12 fields, this has %d", n, len(f))
		case rec.kind != "run" && rec.kind != "fail" && rec.kind != "na":
			return nil, fmt.Errorf("line %d: unknown record kind %q", n, rec.kind)
		}
		out = append(out, rec)
	}
	return out, sc.Err()
}

// summarize groups records into rows, in the order rows first appear.
func summarize(recs []record) []*row {
	var rows []*row
	byConfig := map[config]*row{}
	for _, rec := range recs {
		rw := byConfig[rec.config]
		if rw == nil {
			rw = &row{config: rec.config, cells: map[string]*cell{}}
			byConfig[rec.config] = rw
			rows = append(rows, rw)
		}
		c := rw.cells[rec.traffic]
		if c == nil {
			c = &cell{}
			rw.cells[rec.traffic] = c
		}
		switch rec.kind {
		case "run":
			c.runs = append(c.runs, parseSample(rec.fields))
		case "fail":
			c.failures = append(c.failures, strings.Join(rec.fields, " "))
		case "na":
			c.na = strings.Join(rec.fields, " ")
		}
	}
	return rows
}

func parseSample(f []string) sample {
	num := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return math.NaN()
		}
		return v
	}
	s := sample{rate: num(f[0]), offered: num(f[1]), cpu: num(f[4])}
	copies, delivered := num(f[2]), num(f[3])
	s.copyRatio = math.NaN()
	if delivered > 0 {
		s.copyRatio = copies / delivered
	}
	s.recvKpps, s.cpuPerFrame = math.NaN(), math.NaN()
	if len(f) == 7 {
		s.recvKpps, s.cpuPerFrame = deliveredRate(num(f[5]), num(f[6]), s.cpu)
	}
	return s
}

// deliveredRate turns the frames the receiving interface got over wall
// seconds, and the switch's CPU share over the same interval (percent
// of one CPU), into thousands of frames a second and µs of switch CPU
// per frame. Either is NaN when its inputs are missing or zero.
func deliveredRate(recv, wall, cpu float64) (kpps, cpuPerFrame float64) {
	kpps, cpuPerFrame = math.NaN(), math.NaN()
	if math.IsNaN(recv) || math.IsNaN(wall) || recv <= 0 || wall <= 0 {
		return kpps, cpuPerFrame
	}
	kpps = recv / wall / 1e3
	if !math.IsNaN(cpu) && cpu >= 0 {
		// cpu/100*wall seconds of CPU over recv frames, in µs.
		cpuPerFrame = cpu / 100 * wall / recv * 1e6
	}
	return kpps, cpuPerFrame
}

// median of the values that were measured; NaN if none were.
func median(vals []float64) float64 {
	var v []float64
	for _, x := range vals {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func (c *cell) column(get func(sample) float64) []float64 {
	out := make([]float64, len(c.runs))
	for i, s := range c.runs {
		out[i] = get(s)
	}
	return out
}

func (c *cell) medianRate() float64 {
	if c == nil {
		return math.NaN()
	}
	return median(c.column(func(s sample) float64 { return s.rate }))
}

// mirrorCost is how much slower a configuration is than its switch
// without a mirror, in percent; NaN when either is missing.
func mirrorCost(rate, base float64) float64 {
	if math.IsNaN(rate) || math.IsNaN(base) || base <= 0 {
		return math.NaN()
	}
	return (1 - rate/base) * 100
}

func writeTable(out io.Writer, rows []*row) error {
	base := map[config]*row{}
	for _, rw := range rows {
		if rw.mirror == noMirror {
			base[config{rw.mode, rw.sw, ""}] = rw
		}
	}
	w := bufio.NewWriter(out)
	fmt.Fprintln(w, "| offloads | switch | mirror | TCP Gbit/s | TCP mirror cost | TCP copies per packet | UDP 64 B kpps | UDP offered kpps | UDP mirror cost | UDP copies per packet | switch CPU % (TCP / UDP) | switch CPU µs per UDP packet | UDP delivered kpps | switch CPU µs per delivered frame |")
	fmt.Fprintln(w, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, rw := range rows {
		if rw.cells["tcp"] == nil && rw.cells["udp"] == nil {
			continue // a latency-only row
		}
		b := base[config{rw.mode, rw.sw, ""}]
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s |\n",
			rw.mode, rw.sw, rw.mirror,
			rateCell(rw.cells["tcp"], "%.2f"), costCell(rw, b, "tcp"), copiesCell(rw, "tcp"),
			rateCell(rw.cells["udp"], "%.0f"), offeredCell(rw.cells["udp"]), costCell(rw, b, "udp"), copiesCell(rw, "udp"),
			cpuCell(rw.cells["tcp"]), cpuCell(rw.cells["udp"]), cpuPerPacketCell(rw.cells["udp"]),
			deliveredCell(rw.cells["udp"]), cpuPerFrameCell(rw.cells["udp"]))
	}
	writeRRTable(w, rows)
	return w.Flush()
}

// writeRRTable adds the request/response latencies, if any were
// measured: p50 and p99 in µs (their median over the runs).
func writeRRTable(w io.Writer, rows []*row) {
	header := false
	for _, rw := range rows {
		c := rw.cells["rr"]
		if c == nil {
			continue
		}
		if !header {
			fmt.Fprintln(w)
			fmt.Fprintln(w, "| offloads | switch | mirror | TCP RR p50 µs | TCP RR p99 µs | switch CPU % |")
			fmt.Fprintln(w, "|---|---|---|---:|---:|---:|")
			header = true
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", rw.mode, rw.sw, rw.mirror,
			rateCell(c, "%.0f"), offeredCell(c), cpuCell(c))
	}
}

// cpuPerPacketCell is the switch's CPU time per delivered packet, from
// the medians of its CPU share and its rate (kpps): percent of a CPU
// over thousands of packets a second is 10 µs per packet per unit.
func cpuPerPacketCell(c *cell) string {
	if c == nil {
		return ""
	}
	cpu := median(c.column(func(s sample) float64 { return s.cpu }))
	rate := c.medianRate()
	if math.IsNaN(cpu) || math.IsNaN(rate) || rate <= 0 {
		return ""
	}
	return fmt.Sprintf("%.1f", 10*cpu/rate)
}

// deliveredCell is the median rate, in kpps, at which the receiving
// interface got frames: the switch's forwarding rate, not iperf3's.
func deliveredCell(c *cell) string {
	if c == nil {
		return ""
	}
	m := median(c.column(func(s sample) float64 { return s.recvKpps }))
	if math.IsNaN(m) {
		return ""
	}
	return fmt.Sprintf("%.0f", m)
}

// cpuPerFrameCell is the median over the runs of the switch's CPU time
// per frame the receiving interface got, in µs.
func cpuPerFrameCell(c *cell) string {
	if c == nil {
		return ""
	}
	m := median(c.column(func(s sample) float64 { return s.cpuPerFrame }))
	if math.IsNaN(m) {
		return ""
	}
	return fmt.Sprintf("%.2f", m)
}

// rateCell is "median (min–max)", or why there is no number.
func rateCell(c *cell, format string) string {
	switch {
	case c == nil:
		return "not run"
	case c.na != "":
		return "n/a (" + c.na + ")"
	case len(c.runs) == 0 && len(c.failures) > 0:
		return fmt.Sprintf("failed (%s)", c.failures[0])
	case len(c.runs) == 0:
		return "not run"
	}
	rates := c.column(func(s sample) float64 { return s.rate })
	text := fmt.Sprintf(format, median(rates))
	if len(rates) > 1 {
		text += fmt.Sprintf(" ("+format+"–"+format+")", slices.Min(rates), slices.Max(rates))
	}
	if len(c.failures) > 0 {
		text += fmt.Sprintf(", %d failed", len(c.failures))
	}
	return text
}

func costCell(rw, base *row, traffic string) string {
	if rw.mirror == noMirror || base == nil {
		return ""
	}
	cost := mirrorCost(rw.cells[traffic].medianRate(), base.cells[traffic].medianRate())
	if math.IsNaN(cost) {
		return ""
	}
	return fmt.Sprintf("%.0f %%", cost)
}

func copiesCell(rw *row, traffic string) string {
	c := rw.cells[traffic]
	if rw.mirror == noMirror || c == nil {
		return ""
	}
	m := median(c.column(func(s sample) float64 { return s.copyRatio }))
	if math.IsNaN(m) {
		return ""
	}
	return fmt.Sprintf("%.2f", m)
}

func offeredCell(c *cell) string {
	if c == nil {
		return ""
	}
	m := median(c.column(func(s sample) float64 { return s.offered }))
	if math.IsNaN(m) {
		return ""
	}
	return fmt.Sprintf("%.0f", m)
}

func cpuCell(c *cell) string {
	if c == nil {
		return "–"
	}
	m := median(c.column(func(s sample) float64 { return s.cpu }))
	if math.IsNaN(m) {
		return "–"
	}
	return fmt.Sprintf("%.0f", m)
}
