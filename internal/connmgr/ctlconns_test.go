package connmgr

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"gvs/internal/openflow"
)

// TestPassiveControllerConnsBounded: each punix:/ptcp: controller took
// up to MaxConns connections, and a bridge up to 64 such controllers,
// without a bound per bridge: 4,096 connections (file descriptors,
// goroutines, queues) per bridge. And since controller connections are
// never evicted, MaxConns of them on one bridge locked ovs-ofctl out of
// its management socket. A bridge's controller connections now stop at
// MaxControllerConns, leaving the management socket room.
func TestPassiveControllerConnsBounded(t *testing.T) {
	// Relative names: in the run directory, named after the bridge.
	names := []string{"br.a.sock", "br.b.sock"}
	var ctls []ControllerConfig
	for _, n := range names {
		ctls = append(ctls, ControllerConfig{Target: "punix:" + n})
	}
	s, _ := newTestService(t, &Info{Controllers: ctls})
	deadline := time.Now().Add(10 * time.Second)
	for {
		listening := 0
		for _, cs := range s.Controllers() {
			if cs.State == "LISTENING" {
				listening++
			}
		}
		if listening == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the controllers never listened: %+v", s.Controllers())
		}
		time.Sleep(20 * time.Millisecond)
	}
	served := 0
	for i := range MaxConns {
		nc, err := net.Dial("unix", filepath.Join(s.rundir, names[i%2]))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		hello, err := openflow.Encode(openflow.Version13, 1, &openflow.Hello{Versions: openflow.VersionBitmap(openflow.Version13)})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = nc.Write(hello) // a refused connection may be closed already
		_ = nc.SetReadDeadline(time.Now().Add(2 * time.Second))
		if msg, err := openflow.ReadMessage(nc, nil); err == nil && msg != nil {
			served++
		}
	}
	if served > MaxControllerConns {
		t.Errorf("%d controller connections served on one bridge, want at most %d", served, MaxControllerConns)
	}
	// ovs-ofctl still gets in.
	f := dialService(t, s, openflow.Version13)
	f.send(&openflow.EchoRequest{})
	if _, ok := f.next().(*openflow.EchoReply); !ok {
		t.Fatal("no echo reply on the management socket")
	}
}
