package connmgr

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gvs/internal/testutil"
	"gvs/internal/vlog"
)

// TestConnectionLogBounded: a passive controller target (ptcp: listens
// on every address by default) is open to anyone who can reach it; one
// who connects and leaves in a loop must not write lines to gvsd's log
// without bound (the log has no size limit of its own: a disk filler).
func TestConnectionLogBounded(t *testing.T) {
	// Fresh limits: earlier tests of the package may have spent them.
	life, errs, limit := connLifeRL, connErrRL, connLimitRL
	connLifeRL, connErrRL, connLimitRL = vlog.NewRateLimit(20, time.Minute), vlog.NewRateLimit(20, time.Minute), vlog.NewRateLimit(10, time.Minute)
	t.Cleanup(func() { connLifeRL, connErrRL, connLimitRL = life, errs, limit })
	var logged testutil.SyncBuffer
	vlog.Default.SetConsole(&logged)
	t.Cleanup(func() { vlog.Default.SetConsole(os.Stderr) })
	path := filepath.Join(testRundir(t), "br.listen")
	s, _ := newTestService(t, &Info{Controllers: []ControllerConfig{{Target: "punix:" + path}}})
	waitStatus(t, s, "listening", func(cs ControllerStatus) bool { return cs.State == "LISTENING" })
	const rounds = 300
	for i := range rounds {
		nc, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			nc.Write([]byte("not openflow at all, just bytes"))
		}
		nc.SetReadDeadline(time.Now().Add(time.Second))
		nc.Read(make([]byte, 64)) // the switch's hello
		nc.Close()
	}
	// Let the last disconnections be logged.
	waitStatus(t, s, "idle again", func(cs ControllerStatus) bool { return cs.State == "LISTENING" && !cs.Connected })
	time.Sleep(100 * time.Millisecond)
	n := strings.Count(logged.String(), "bridge br")
	if n > 100 {
		t.Errorf("%d connections wrote %d lines to the log, want at most 100", rounds, n)
	}
	if n == 0 {
		t.Error("nothing was logged at all")
	}
}
