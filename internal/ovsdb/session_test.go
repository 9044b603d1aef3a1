package ovsdb

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestServerDroppedClientLeavesNothing: a client pipelines many monitor
// and lock requests and never reads, so the server drops it while
// requests are still buffered. Nothing of it may stay registered: no
// monitor, no lock, no session; another client then gets the lock.
func TestServerDroppedClientLeavesNothing(t *testing.T) {
	db := newTestDB(t)
	insertRoot(t, db, "big", fmt.Sprintf(`,"opts":["map",[["p",%q]]]`, strings.Repeat("p", 20000)))
	srv, path := testServer(t, db, func(s *Server) { s.SendQueue = 8 })
	slow, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	var b strings.Builder
	for i := 0; i < 400; i++ {
		fmt.Fprintf(&b, `{"id":"m%d","method":"monitor_cond","params":["Test","m%d",{"Root":[{"columns":["name","opts"]}]}]}`, i, i)
		fmt.Fprintf(&b, `{"id":"l%d","method":"lock","params":["L%d"]}`, i, i%50)
	}
	go func() {
		// Pipelined: written at once; the write fails once the server drops us.
		_, _ = slow.Write([]byte(b.String()))
	}()
	waitFor(t, "the slow client to be dropped with everything it held", func() bool {
		u := srv.usage()
		return u.Sessions == 0 && u.Monitors == 0 && u.Locks == 0
	})
	// Nothing registers late either.
	time.Sleep(200 * time.Millisecond)
	if u := srv.usage(); u.Sessions != 0 || u.Monitors != 0 || u.Locks != 0 {
		t.Fatalf("after the drop the server still holds %+v", u)
	}
	c := dial(t, path)
	for i := 0; i < 50; i += 7 {
		jsonIs(t, "lock after the drop", c.result("lock", fmt.Sprintf("L%d", i)), `{"locked":true}`)
	}
}
