package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"

	"gvs/internal/ovsdb"
	"gvs/internal/vswitchd"
)

// These benchmarks run gvsd's database in process, wired as cmd/gvsd wires
// it, and drive it through its unix socket with the same client as the
// command, so that `go test -cpuprofile` shows where gvsd spends the time
// that bench/ovsdb.sh measures from outside:
//
//	go test -run '^$' -bench . -benchtime 2s -cpuprofile /tmp/cpu.out ./bench/ovsdbbench
//	go tool pprof -top /tmp/cpu.out
//
// "switch" runs the vswitchd reconciler on every commit, as gvsd does;
// "nosw" is the database alone. "rows" is how many Queue rows exist before
// the timed loop.

func BenchmarkGvsdInsert(b *testing.B) {
	for _, bc := range []struct {
		withSwitch bool
		rows       int
	}{{true, 0}, {true, 20000}, {false, 0}, {false, 20000}} {
		for _, durable := range []bool{false, true} {
			name := fmt.Sprintf("%s/rows=%d/durable=%v", switchName(bc.withSwitch), bc.rows, durable)
			b.Run(name, func(b *testing.B) {
				sock := startInProcess(b, bc.withSwitch)
				fill(b, sock, bc.rows)
				benchSequential(b, sock, durable) // b.Loop starts the timer afresh
			})
		}
	}
}

// BenchmarkGvsdInsertParallel is 8 clients committing durable one-row
// transactions at once, which is where group commit should pay.
func BenchmarkGvsdInsertParallel(b *testing.B) {
	for _, withSwitch := range []bool{true, false} {
		b.Run(switchName(withSwitch), func(b *testing.B) {
			sock := startInProcess(b, withSwitch)
			var next atomic.Int64
			b.SetParallelism(4) // 8 clients on 2 CPUs
			b.RunParallel(func(pb *testing.PB) {
				c, err := dial(sock)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.close()
				prefix := fmt.Sprintf("p%d", next.Add(1))
				for n := 0; pb.Next(); n++ {
					ops := []any{queueInsert(fmt.Sprintf("%s-%d", prefix, n)), durableCommit}
					if _, err := c.transact(ops); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func switchName(on bool) string {
	if on {
		return "switch"
	}
	return "nosw"
}

// startInProcess serves a fresh Open_vSwitch database on a unix socket in
// a temporary directory, with the switch reconciler if withSwitch, and
// stops everything when the benchmark ends.
func startInProcess(b testing.TB, withSwitch bool) string {
	b.Helper()
	dir := b.TempDir()
	schema, err := ovsdb.ParseSchema(vswitchd.SchemaJSON)
	if err != nil {
		b.Fatal(err)
	}
	db, err := ovsdb.OpenDB(filepath.Join(dir, "conf.db"), schema)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	if withSwitch {
		sw := vswitchd.New(db)
		if err := sw.Init(); err != nil {
			b.Fatal(err)
		}
		wg.Go(func() { sw.Run(ctx) })
	}
	srv, err := ovsdb.NewServer(db)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close)
	sock := filepath.Join(dir, "db.sock")
	if _, err := srv.Listen("punix:" + sock); err != nil {
		b.Fatal(err)
	}
	return sock
}

// fill inserts rows Queue rows, 1000 per transaction, before the timer.
func fill(b *testing.B, sock string, rows int) {
	b.Helper()
	if rows == 0 {
		return
	}
	c, err := dial(sock)
	if err != nil {
		b.Fatal(err)
	}
	defer c.close()
	for done := 0; done < rows; done += 1000 {
		ops := make([]any, min(1000, rows-done))
		for i := range ops {
			ops[i] = queueInsert(fmt.Sprintf("fill-%d", done+i))
		}
		if _, err := c.transact(ops); err != nil {
			b.Fatal(err)
		}
	}
}

func benchSequential(b *testing.B, sock string, durable bool) {
	c, err := dial(sock)
	if err != nil {
		b.Fatal(err)
	}
	defer c.close()
	n := 0
	for b.Loop() {
		ops := []any{queueInsert(fmt.Sprintf("seq-%d", n))}
		if durable {
			ops = append(ops, durableCommit)
		}
		if _, err := c.transact(ops); err != nil {
			b.Fatal(err)
		}
		n++
	}
}

// BenchmarkGvsdHeap100k inserts 100k Queue rows into the database alone
// and reports the live heap they leave, after a collection: the part of
// gvsd's resident memory that rows cost, without the collector's headroom.
// With GVS_HEAP_PROFILE=FILE it writes a heap profile while the rows are
// alive (-memprofile would be taken after the database is gone), for
// `go tool pprof -sample_index=inuse_space`.
func BenchmarkGvsdHeap100k(b *testing.B) {
	const rows = 100000
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		sock := startInProcess(b, false)
		b.StartTimer()
		fill(b, sock, rows)
		b.StopTimer()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/rows, "heap-B/row")
		writeHeapProfile(b, os.Getenv("GVS_HEAP_PROFILE"))
		b.StartTimer()
	}
}

func writeHeapProfile(b *testing.B, path string) {
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}
