package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestWorkloadsAgainstGvsd runs both phases briefly against an in-process
// gvsd database: the client must commit transactions and find its rows.
func TestWorkloadsAgainstGvsd(t *testing.T) {
	sock := startInProcess(t, true)
	tg := target{name: "gvsd", sock: sock, pid: os.Getpid()}
	for _, w := range []txnWorkload{{clients: 1, durable: true}, {clients: 3, durable: false}} {
		rate, err := txnRate(tg, "t", w, 100*time.Millisecond)
		if err != nil {
			t.Fatalf("%v: %v", w, err)
		}
		if rate <= 0 {
			t.Fatalf("%v: rate %v, want > 0", w, rate)
		}
	}
	r, err := insertRows(tg, 2500, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if r.rssAfter <= 0 || r.peak < r.rssAfter || r.elapsed <= 0 {
		t.Fatalf("implausible result %+v", r)
	}
}

func TestTargetFlag(t *testing.T) {
	var l targetList
	if err := l.Set("gvsd,/run/db.sock,42"); err != nil {
		t.Fatal(err)
	}
	if l[0] != (target{name: "gvsd", sock: "/run/db.sock", pid: 42}) {
		t.Fatalf("got %+v", l[0])
	}
	for _, bad := range []string{"gvsd", "gvsd,/s,0", "gvsd,/s,x", "a,b,1,2"} {
		if err := l.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
	if !strings.Contains(l.String(), "gvsd") {
		t.Errorf("String() = %q", l.String())
	}
}
