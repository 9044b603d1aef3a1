package guard

import (
	"bytes"
	"strings"
	"testing"

	"gvs/internal/coverage"
	"gvs/internal/vlog"
)

func newLog(t *testing.T) (*vlog.Module, *bytes.Buffer) {
	var buf bytes.Buffer
	reg := vlog.NewRegistry("test")
	reg.SetConsole(&buf)
	return reg.Module("test"), &buf
}

func TestRecoverLogsAndCounts(t *testing.T) {
	log, buf := newLog(t)
	c := coverage.NewRegistry().New("test_panic")
	stopped := func() (ok bool) {
		defer Recover(log, c, "worker")
		panic("boom")
	}()
	if stopped {
		t.Fatal("a panicking function reported a normal return")
	}
	if c.Total() != 1 {
		t.Fatalf("counter = %d, want 1", c.Total())
	}
	out := buf.String()
	if !strings.Contains(out, "worker: recovered from panic: boom") || !strings.Contains(out, "guard_test.go") {
		t.Fatalf("log lacks the panic or its stack:\n%s", out)
	}
}

func TestRecoverWithoutPanic(t *testing.T) {
	log, buf := newLog(t)
	c := coverage.NewRegistry().New("test_panic")
	ok := func() (ok bool) {
		defer Recover(log, c, "worker")
		return true
	}()
	if !ok || c.Total() != 0 || buf.Len() != 0 {
		t.Fatalf("ok=%v count=%d log=%q", ok, c.Total(), buf.String())
	}
}

func TestCall(t *testing.T) {
	log, _ := newLog(t)
	c := coverage.NewRegistry().New("test_panic")
	if err := Call(log, c, "job", func() {}); err != nil {
		t.Fatal(err)
	}
	var s []int
	err := Call(log, c, "job", func() { s[len(s)] = 1 })
	if err == nil || !strings.Contains(err.Error(), "job: internal error") || c.Total() != 1 {
		t.Fatalf("err=%v count=%d", err, c.Total())
	}
}
