package connmgr

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gvs/internal/ofproto"
	"gvs/internal/openflow"
)

// fuzzVersions are the versions a bridge with an empty protocols column
// speaks; the fuzz target keeps one connection of each.
var fuzzVersions = []uint8{openflow.Version10, openflow.Version13, openflow.Version14, openflow.Version15}

// fuzzConns starts one connection of each version on s, as if its hello
// were done, with a reader that throws away what it is sent.
func fuzzConns(t testing.TB, s *Service) map[uint8]*conn {
	conns := map[uint8]*conn{}
	for _, v := range fuzzVersions {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		go func() { _, _ = io.Copy(io.Discard, b) }()
		c := newConn(s, a)
		c.version = v
		c.asyncCfg.Store(defaultAsync(v))
		c.ready.Store(true)
		go c.writer()
		t.Cleanup(func() { c.out.close(false) })
		conns[v] = c
	}
	return conns
}

// messageSeeds reads the decoder's fuzz corpus (messages ovs-ofctl sent,
// and malformed ones OVS refused), so that the handler starts from
// requests it serves.
func messageSeeds(t testing.TB) [][]byte {
	dir := filepath.Join("..", "openflow", "testdata", "fuzz", "FuzzDecodeMessage")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var seeds [][]byte
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if q, ok := strings.CutPrefix(line, "[]byte("); ok {
				if b, err := strconv.Unquote(strings.TrimSuffix(q, ")")); err == nil {
					seeds = append(seeds, []byte(b))
				}
			}
		}
		f.Close()
	}
	if len(seeds) < 100 {
		t.Fatalf("only %d seeds read from %s", len(seeds), dir)
	}
	return seeds
}

// FuzzHandle serves arbitrary messages on connections of every version
// of one bridge: whatever the decoder accepts goes through the handlers
// (flow mods into the tables, bundles, multipart requests, role and
// asynchronous configuration, packet-outs without a datapath), which
// must answer or refuse it without panicking. State is kept between
// inputs, as on a real connection; the tables are emptied now and then
// so that memory stays bounded.
func FuzzHandle(f *testing.F) {
	for _, s := range messageSeeds(f) {
		f.Add(s)
	}
	svc, br := newTestService(f, &Info{Versions: openflow.VersionBitmap(fuzzVersions...)})
	conns := fuzzConns(f, svc)
	runs := 0
	f.Fuzz(func(t *testing.T, msg []byte) {
		if len(msg) < 8 || len(msg) > openflow.MaxMessageLen {
			return
		}
		c, ok := conns[msg[0]]
		if !ok {
			c = conns[fuzzVersions[int(msg[0])%len(fuzzVersions)]]
		}
		// ReadMessage frames messages by their length field.
		binary.BigEndian.PutUint16(msg[2:], uint16(len(msg)))
		c.handle(msg)
		if runs++; runs%1000 == 0 {
			br.Tables.Delete(ofproto.Selector{Table: ofproto.TableAll})
		}
	})
}
