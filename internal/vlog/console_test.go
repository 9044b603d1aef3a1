package vlog

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"
)

// TestConsoleNobodyReads: gvsd's stderr is a pipe whose reader stopped
// (not closed: a paused terminal, a pager that is suspended). Writing a
// console line blocked once the pipe was full, under the registry's
// lock, so every goroutine that logged hung. Logging now goes on; lines
// the pipe cannot take are dropped, and once it is read again it says
// how many.
func TestConsoleNobodyReads(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	reg := NewRegistry("test")
	reg.SetSyslog(nopWriter{})
	reg.SetConsole(w)
	m := reg.Module("m")
	line := strings.Repeat("x", 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 5000 { // 5 MB: far more than a pipe holds (64 KiB)
			m.Info("%s", line)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("logging hangs on a console pipe nobody reads")
	}
	// The reader comes back: it gets lines, and the count of those lost.
	found := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 4096), 1<<20)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "console lines dropped") {
				found <- true
				return
			}
		}
		found <- false
	}()
	m.Info("one more line, written after the dropped ones are counted")
	select {
	case ok := <-found:
		if !ok {
			t.Error("no line says console lines were dropped")
		}
	case <-time.After(10 * time.Second):
		t.Error("no line says console lines were dropped")
	}
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
