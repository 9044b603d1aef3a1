package main

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// txnWorkload is one transaction-rate measurement.
type txnWorkload struct {
	clients int
	durable bool
	rows    int // Queue rows present before the measurement starts
}

func (w txnWorkload) String() string {
	who := "1 client"
	if w.clients > 1 {
		who = fmt.Sprintf("%d concurrent clients", w.clients)
	}
	how := "durable commit"
	if !w.durable {
		how = "no commit op"
	}
	s := fmt.Sprintf("txn/s, %s, %s", who, how)
	if w.rows > 0 {
		s += fmt.Sprintf(", %d rows already in the table", w.rows)
	}
	return s
}

// runTxnPhase measures each workload on every target in turn, so that a
// change in the machine's load affects the servers alike. Every
// measurement starts from the same table contents: the Queue table is
// emptied, then filled with w.rows rows, outside the timed part.
func runTxnPhase(o options) error {
	workloads := []txnWorkload{
		{clients: 1, durable: true},
		{clients: o.clients, durable: true},
		{clients: 1, durable: false},
		{clients: o.clients, durable: false},
	}
	if o.prefill > 0 {
		workloads = append(workloads,
			txnWorkload{clients: 1, durable: true, rows: o.prefill},
			txnWorkload{clients: o.clients, durable: true, rows: o.prefill})
	}
	for _, t := range o.targets {
		if _, err := txnRate(t, "warmup", txnWorkload{clients: 1}, 200*time.Millisecond); err != nil {
			return fmt.Errorf("%s: warm-up: %w", t.name, err)
		}
	}
	for i, w := range workloads {
		rates, err := medianRates(o, w, fmt.Sprintf("w%d", i))
		if err != nil {
			return err
		}
		printRow(w.String(), rates, func(v float64) string { return fmt.Sprintf("%.0f", v) })
	}
	return nil
}

// medianRates measures w o.repeat times on each target, taking the
// targets in turn each round, and returns each target's median rate: the
// machine may be shared, and a median shrugs off a round that was not.
func medianRates(o options, w txnWorkload, tag string) ([]float64, error) {
	samples := make([][]float64, len(o.targets))
	for round := range max(o.repeat, 1) {
		for j, t := range o.targets {
			if err := resetQueue(t, w.rows); err != nil {
				return nil, fmt.Errorf("%s: %v: %w", t.name, w, err)
			}
			r, err := txnRate(t, fmt.Sprintf("%s-r%d", tag, round), w, o.duration)
			if err != nil {
				return nil, fmt.Errorf("%s: %v: %w", t.name, w, err)
			}
			samples[j] = append(samples[j], r)
		}
	}
	medians := make([]float64, len(samples))
	for j, s := range samples {
		slices.Sort(s)
		medians[j] = s[len(s)/2]
	}
	return medians, nil
}

// resetQueue empties t's Queue table, then inserts rows rows into it.
func resetQueue(t target, rows int) error {
	c, err := dial(t.sock)
	if err != nil {
		return err
	}
	defer c.close()
	if _, err := c.transact([]any{map[string]any{"op": "delete", "table": "Queue", "where": []any{}}}); err != nil {
		return fmt.Errorf("empty Queue: %w", err)
	}
	return insertBatches(c, fmt.Sprintf("fill-%d", time.Now().UnixNano()), rows, 1000)
}

// txnRate runs w against t for about d and returns committed transactions
// per second. Clients connect first and start together; the clock stops
// when the last one has its final reply.
func txnRate(t target, tag string, w txnWorkload, d time.Duration) (float64, error) {
	clients := make([]*client, w.clients)
	for i := range clients {
		c, err := dial(t.sock)
		if err != nil {
			return 0, err
		}
		defer c.close()
		clients[i] = c
	}
	start := time.Now()
	deadline := start.Add(d)
	counts := make([]int, len(clients))
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i], errs[i] = insertUntil(c, fmt.Sprintf("%s-%d-c%d", tag, start.UnixNano(), i), w.durable, deadline)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := 0
	for i := range clients {
		if errs[i] != nil {
			return 0, fmt.Errorf("client %d: %w", i, errs[i])
		}
		total += counts[i]
	}
	return float64(total) / elapsed.Seconds(), nil
}

// insertUntil sends one-row transactions back to back until deadline and
// returns how many committed.
func insertUntil(c *client, prefix string, durable bool, deadline time.Time) (int, error) {
	n := 0
	for time.Now().Before(deadline) {
		ops := []any{queueInsert(fmt.Sprintf("%s-%d", prefix, n))}
		if durable {
			ops = append(ops, durableCommit)
		}
		got, err := c.transact(ops)
		if err != nil {
			return n, err
		}
		if got != len(ops) {
			return n, fmt.Errorf("transaction %d: %d results for %d operations", n, got, len(ops))
		}
		n++
	}
	return n, nil
}
