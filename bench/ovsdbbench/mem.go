package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// memResult is what the mem phase learns about one server.
type memResult struct {
	rssBefore, rssAfter, peak int64 // bytes
	elapsed                   time.Duration
}

// settle is how long the server is left alone after the last insert
// before its memory is read, so that work it does after replying (a
// switch reconciling, a journal compaction) is counted.
const settle = time.Second

func runMemPhase(o options) error {
	if o.rows <= 0 || o.batch <= 0 {
		return fmt.Errorf("-rows and -batch must be positive")
	}
	results := make([]memResult, len(o.targets))
	for i, t := range o.targets {
		r, err := insertRows(t, o.rows, o.batch)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		results[i] = r
	}
	mib := func(v float64) string { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }
	row := func(name string, get func(memResult) float64, format func(float64) string) {
		values := make([]float64, len(results))
		for i, r := range results {
			values[i] = get(r)
		}
		printRow(name, values, format)
	}
	row("RSS, idle, before the inserts", func(r memResult) float64 { return float64(r.rssBefore) }, mib)
	row(fmt.Sprintf("RSS after inserting %d Queue rows", o.rows), func(r memResult) float64 { return float64(r.rssAfter) }, mib)
	row("peak RSS (VmHWM)", func(r memResult) float64 { return float64(r.peak) }, mib)
	row(fmt.Sprintf("time to insert %d rows, %d per txn", o.rows, o.batch),
		func(r memResult) float64 { return r.elapsed.Seconds() },
		func(v float64) string { return fmt.Sprintf("%.2f s", v) })
	return nil
}

// insertRows inserts rows Queue rows into t, batch per transaction, and
// reads t's memory before and after.
func insertRows(t target, rows, batch int) (memResult, error) {
	var r memResult
	var err error
	if r.rssBefore, _, err = memoryOf(t.pid); err != nil {
		return r, err
	}
	c, err := dial(t.sock)
	if err != nil {
		return r, err
	}
	defer c.close()
	start := time.Now()
	if err := insertBatches(c, "mem", rows, batch); err != nil {
		return r, err
	}
	r.elapsed = time.Since(start)
	time.Sleep(settle)
	if r.rssAfter, r.peak, err = memoryOf(t.pid); err != nil {
		return r, err
	}
	return r, checkRowCount(c, rows)
}

// insertBatches inserts rows Queue rows, batch per transaction, with keys
// that start with prefix.
func insertBatches(c *client, prefix string, rows, batch int) error {
	for done := 0; done < rows; {
		n := min(batch, rows-done)
		ops := make([]any, n)
		for i := range ops {
			ops[i] = queueInsert(fmt.Sprintf("%s-%d", prefix, done+i))
		}
		got, err := c.transact(ops)
		if err != nil {
			return fmt.Errorf("rows %d..%d: %w", done, done+n, err)
		}
		if got != n {
			return fmt.Errorf("rows %d..%d: %d results for %d inserts", done, done+n, got, n)
		}
		done += n
	}
	return nil
}

// checkRowCount makes sure the inserted rows are all there, so that a
// server that lost rows cannot look small. It selects _uuid because a
// select of other columns may merge rows that are equal in them.
func checkRowCount(c *client, want int) error {
	raw, err := c.call("transact", []any{"Open_vSwitch",
		map[string]any{"op": "select", "table": "Queue", "where": []any{}, "columns": []any{"_uuid"}}})
	if err != nil {
		return err
	}
	var res []struct {
		Rows []json.RawMessage `json:"rows"`
	}
	if err := json.Unmarshal(raw, &res); err != nil || len(res) != 1 {
		return fmt.Errorf("select Queue: unexpected reply %.200s", raw)
	}
	if len(res[0].Rows) < want {
		return fmt.Errorf("table Queue has %d rows, want at least %d", len(res[0].Rows), want)
	}
	return nil
}

// memoryOf returns a process's resident set size and its peak, in bytes,
// from /proc/PID/status.
func memoryOf(pid int) (rss, peak int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("process %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("process %d: %s: %w", pid, name, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("process %d: %w", pid, err)
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("process %d: no VmRSS in its status", pid)
	}
	return rss, peak, nil
}
