package connmgr

import (
	"testing"

	"gvs/internal/openflow"
)

// BenchmarkFlowDump30k: a peer that reads dumps 30,000 flows (about
// 4 MB of replies) over the management socket, to the last message.
func BenchmarkFlowDump30k(b *testing.B) {
	s, br := newTestService(b, &Info{})
	addDumpFlows(b, br, 30000)
	f := dialService(b, s, openflow.Version13)
	b.ResetTimer()
	for range b.N {
		f.send(dumpAll)
		for {
			r, ok := f.next().(*openflow.FlowStatsReply)
			if !ok || r.Flags&openflow.ReplyMore == 0 {
				break
			}
		}
	}
}
