package ofproto

import (
	"maps"
	"time"

	"gvs/internal/datapath"
)

// watchInterval is how often the ports that buckets watch are read: a
// fast-failover group moves to its next bucket within about this long
// of a link going down.
const watchInterval = 100 * time.Millisecond

// portWatcher polls the liveness of the watched ports while some bucket
// watches one.
type portWatcher struct {
	stop, done chan struct{}
}

// rewatch starts or stops the watcher as the groups (g.mu held) need
// it, and reads the watched ports once now, so that a new group sees
// their state at once.
func (g *Groups) rewatch() {
	watched := g.watchedPorts()
	g.poll(watched)
	switch {
	case len(watched) > 0 && g.watcher == nil:
		w := &portWatcher{stop: make(chan struct{}), done: make(chan struct{})}
		g.watcher = w
		go g.watch(w)
	case len(watched) == 0 && g.watcher != nil:
		close(g.watcher.stop)
		g.watcher = nil
	}
}

// Close stops watching ports (the bridge is going away).
func (g *Groups) Close() {
	if g == nil {
		return
	}
	g.mu.Lock()
	w := g.watcher
	g.watcher = nil
	g.mu.Unlock()
	if w != nil {
		close(w.stop)
		<-w.done
	}
}

func (g *Groups) watch(w *portWatcher) {
	defer close(w.done)
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		g.mu.Lock()
		if g.watcher == w {
			g.poll(g.watchedPorts())
		}
		g.mu.Unlock()
	}
}

// watchedPorts returns the ports some bucket watches.
func (g *Groups) watchedPorts() map[uint32]bool {
	out := map[uint32]bool{}
	for i := range g.shards {
		if m := g.shards[i].Load(); m != nil {
			for _, grp := range *m {
				for j := range grp.Buckets {
					if p := grp.Buckets[j].WatchPort; p != WatchAny {
						out[p] = true
					}
				}
			}
		}
	}
	return out
}

// poll reads the liveness of the watched ports; when it changed, the
// cached translations that chose a bucket by it are stale.
func (g *Groups) poll(watched map[uint32]bool) {
	live := make(map[uint32]bool, len(watched))
	var ports []*Port
	if g.ports != nil {
		ports = g.ports()
	}
	// One pass over the ports, not one per watched port: a bridge of
	// thousands of ports watched by buckets is read ten times a second.
	for _, p := range ports {
		if !watched[p.OFPort] {
			continue
		}
		if p.Dev == nil {
			live[p.OFPort] = true // a patch port is up while it is there
		} else if info := p.Dev.Info(); info.AdminUp && info.LinkUp {
			live[p.OFPort] = true
		}
	}
	if old := g.live.Load(); !maps.Equal(*old, live) {
		g.live.Store(&live)
		datapath.Invalidate()
	}
}
