package ofproto

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/packet"
)

// OpenFlow groups (ovs-ofctl(8) "Group Syntax", ovs-actions(7) "group"):
// a bridge's group table, and the translation of the group action.

// Group types, numbered as OpenFlow's OFPGT11_*.
const (
	GroupAll          uint8 = 0
	GroupSelect       uint8 = 1
	GroupIndirect     uint8 = 2
	GroupFastFailover uint8 = 3
)

// WatchAny is a bucket's watch_port or watch_group when it watches
// nothing (OFPP_ANY, OFPG_ANY).
const WatchAny = 0xffffffff

// Limits on what a controller can put in a bridge's group table: each
// refused visibly with an OpenFlow error (OFPGMFC_OUT_OF_GROUPS,
// OFPGMFC_OUT_OF_BUCKETS, OFPGMFC_CHAINING_UNSUPPORTED).
const (
	MaxGroups = 65536
	// MaxBuckets per group: more than a 64 KiB group mod holds of
	// buckets that output anywhere (a bucket is at least 16 bytes and
	// an output 16 more).
	MaxBuckets = 2048
	// MaxGroupDepth bounds a chain of groups (a bucket's group action,
	// and so on): translation runs each bucket as a datapath clone,
	// nested with clone(...) actions within maxCloneNest.
	MaxGroupDepth = maxCloneNest
	// MaxGroupActions bounds the actions of all a bridge's buckets
	// together (counted as the flow tables count theirs): 65,536 groups
	// of 64 KiB group mods would otherwise hold gigabytes, and so would
	// a dump of them.
	MaxGroupActions = 1 << 20
)

// Errors of group table requests; the OpenFlow channel sends them as
// OVS's OFPGMFC_* errors.
var (
	ErrGroupExists   = errors.New("group exists")
	ErrGroupUnknown  = errors.New("no such group")
	ErrGroupInvalid  = errors.New("invalid group")
	ErrGroupWatch    = errors.New("watch not supported by the group type")
	ErrGroupLoop     = errors.New("group chain loops")
	ErrGroupChain    = errors.New("group chain too deep")
	ErrGroupTooMany  = errors.New("too many groups")
	ErrBucketTooMany = errors.New("too many buckets")
	ErrBadOutGroup   = errors.New("action refers to a group that does not exist")
	ErrBucketUnknown = errors.New("no such bucket")
	ErrBucketExists  = errors.New("bucket id exists")
)

// Bucket is one bucket of a group.
type Bucket struct {
	ID         uint32
	Weight     uint16
	WatchPort  uint32 // OpenFlow port number, or WatchAny
	WatchGroup uint32 // or WatchAny
	Actions    []flow.Action
	stats      *datapath.Counter
}

// GroupSpec is a group as a group mod describes it.
type GroupSpec struct {
	ID      uint32
	Type    uint8
	Buckets []Bucket
	// Props are OpenFlow 1.5 group properties, kept to be given back
	// as they came.
	Props []GroupProp
	// HashFields, for a select group, are the key bits its hash reads
	// (OVS's selection_method=hash,fields(...)), with HashBasis as the
	// hash's basis; nil for the default fields.
	HashFields *packet.Key
	HashBasis  uint64
}

// GroupProp is an OpenFlow 1.5 group property.
type GroupProp struct {
	Type uint16
	Data []byte
}

// Group is one group in a bridge's table. It is immutable once in the
// table but for its counters: a modify puts a new Group in its place.
type Group struct {
	GroupSpec
	created int64
	stats   *datapath.Counter
	weight  uint32 // select: the sum of the buckets' weights
	nacts   int    // countActions of its buckets
}

// GroupStats is a group's counters, for dump-group-stats.
type GroupStats struct {
	Duration       time.Duration
	Packets, Bytes uint64
	RefCount       uint32 // flows whose actions name the group
	Buckets        []BucketCounters
}

// BucketCounters is one bucket's counters.
type BucketCounters struct{ Packets, Bytes uint64 }

// groupShards spreads the table over copy-on-write maps, so that a
// group mod copies a small map and translation reads one with no lock.
const groupShards = 256

// Groups is a bridge's group table. Changes are serialized by a lock;
// translation reads the shards through atomic pointers.
type Groups struct {
	mu     sync.Mutex
	shards [groupShards]atomic.Pointer[map[uint32]*Group]
	n      int
	max    int // MaxGroups; tests lower it
	nacts  int // countActions of every bucket
	now    func() time.Time
	tables *Tables

	// live holds the liveness of the ports fast-failover and select
	// buckets watch; see watch.go.
	live    atomic.Pointer[map[uint32]bool]
	watcher *portWatcher
	ports   func() []*Port // the bridge's ports now
}

func newGroups(t *Tables, ports func() []*Port) *Groups {
	g := &Groups{now: time.Now, tables: t, ports: ports, max: MaxGroups}
	empty := map[uint32]bool{}
	g.live.Store(&empty)
	return g
}

// Get returns group id, or nil. It takes no lock and does not allocate.
func (g *Groups) Get(id uint32) *Group {
	if g == nil {
		return nil
	}
	m := g.shards[id%groupShards].Load()
	if m == nil {
		return nil
	}
	return (*m)[id]
}

// Len returns how many groups the table holds.
func (g *Groups) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// put sets (grp != nil) or removes group id in its shard.
func (g *Groups) put(id uint32, grp *Group) {
	s := &g.shards[id%groupShards]
	old := s.Load()
	m := make(map[uint32]*Group, 1)
	if old != nil {
		m = make(map[uint32]*Group, len(*old)+1)
		for k, v := range *old {
			m[k] = v
		}
	}
	if grp == nil {
		delete(m, id)
	} else {
		m[id] = grp
	}
	s.Store(&m)
}

// List returns the groups, by id; only id unless it is WatchAny (all).
func (g *Groups) List(id uint32) []*Group {
	var out []*Group
	if id != WatchAny && id != 0xfffffffc {
		if grp := g.Get(id); grp != nil {
			out = append(out, grp)
		}
		return out
	}
	for i := range g.shards {
		if m := g.shards[i].Load(); m != nil {
			for _, grp := range *m {
				out = append(out, grp)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Exists reports whether group id is in the table.
func (g *Groups) Exists(id uint32) bool { return g.Get(id) != nil }

// check validates a group before it goes in: its type, its buckets for
// that type, the groups its buckets name (which must not lead back to
// it, nor too deep; as in OVS, they need not exist yet).
func (g *Groups) check(s *GroupSpec) error {
	if s.ID > flow.MaxGroupID {
		return fmt.Errorf("group %d: %w: a reserved group id", s.ID, ErrGroupInvalid)
	}
	switch s.Type {
	case GroupAll, GroupSelect, GroupIndirect, GroupFastFailover:
	default:
		return fmt.Errorf("group %d: type %d: %w", s.ID, s.Type, ErrGroupInvalid)
	}
	if len(s.Buckets) > MaxBuckets {
		return fmt.Errorf("group %d: %w: %d buckets, at most %d", s.ID, ErrBucketTooMany, len(s.Buckets), MaxBuckets)
	}
	if s.Type == GroupIndirect && len(s.Buckets) != 1 {
		return fmt.Errorf("group %d: %w: an indirect group has one bucket, not %d", s.ID, ErrGroupInvalid, len(s.Buckets))
	}
	ids := make(map[uint32]bool, len(s.Buckets))
	for i := range s.Buckets {
		b := &s.Buckets[i]
		if ids[b.ID] {
			return fmt.Errorf("group %d: bucket %d: %w", s.ID, b.ID, ErrBucketExists)
		}
		ids[b.ID] = true
		watches := b.WatchPort != WatchAny || b.WatchGroup != WatchAny
		if watches && (s.Type == GroupAll || s.Type == GroupIndirect) {
			return fmt.Errorf("group %d: bucket %d: %w", s.ID, b.ID, ErrGroupWatch)
		}
	}
	depth, err := g.chainDepth(s.ID, s.Buckets, 0)
	if err != nil {
		return fmt.Errorf("group %d: %w", s.ID, err)
	}
	if depth > MaxGroupDepth {
		return fmt.Errorf("group %d: %w: %d groups chained, at most %d", s.ID, ErrGroupChain, depth, MaxGroupDepth)
	}
	return nil
}

// chainDepth returns how many groups deep the buckets of group self
// reach, counting self, or an error for a loop back to self.
func (g *Groups) chainDepth(self uint32, buckets []Bucket, level int) (int, error) {
	if level > MaxGroupDepth {
		return level + 1, nil // deep enough to refuse
	}
	depth := 1
	for i := range buckets {
		var err error
		walkGroups(buckets[i].Actions, func(id uint32) {
			if err != nil {
				return
			}
			if id == self {
				err = ErrGroupLoop
				return
			}
			grp := g.Get(id)
			if grp == nil {
				return // as in OVS, a bucket may name a group yet to come
			}
			d, e := g.chainDepth(self, grp.Buckets, level+1)
			if e != nil {
				err = e
			}
			depth = max(depth, d+1)
		})
		if err != nil {
			return 0, err
		}
	}
	return depth, nil
}

// walkGroups calls fn with each group acts name, inside clone too.
func walkGroups(acts []flow.Action, fn func(uint32)) {
	for _, a := range acts {
		switch a := a.(type) {
		case flow.Group:
			fn(a.ID)
		case flow.Clone:
			walkGroups(a.Actions, fn)
		}
	}
}

// refersToGroup reports whether acts name group id.
func refersToGroup(acts []flow.Action, id uint32) bool {
	found := false
	walkGroups(acts, func(g uint32) { found = found || g == id })
	return found
}

// CheckActions reports ErrBadOutGroup for a group action whose group the
// table lacks, as OVS refuses such a flow (OFPBAC_BAD_OUT_GROUP).
func (g *Groups) CheckActions(acts []flow.Action) error {
	var err error
	walkGroups(acts, func(id uint32) {
		if err == nil && !g.Exists(id) {
			err = fmt.Errorf("group %d: %w", id, ErrBadOutGroup)
		}
	})
	return err
}

func (g *Groups) build(s *GroupSpec, created int64, stats *datapath.Counter) *Group {
	grp := &Group{GroupSpec: *s, created: created, stats: stats}
	grp.Buckets = make([]Bucket, len(s.Buckets))
	copy(grp.Buckets, s.Buckets)
	for i := range grp.Buckets {
		grp.Buckets[i].stats = &datapath.Counter{}
		grp.weight += uint32(grp.Buckets[i].Weight)
		grp.nacts += countActions(grp.Buckets[i].Actions)
	}
	return grp
}

// store puts grp in place of old (nil: a new group), within
// MaxGroupActions.
func (g *Groups) store(old, grp *Group) error {
	n := g.nacts + grp.nacts
	if old != nil {
		n -= old.nacts
	}
	if n > MaxGroupActions && grp.nacts > 0 {
		return fmt.Errorf("group %d: %w: %d actions in the bridge's buckets, at most %d", grp.ID, ErrBucketTooMany, n, MaxGroupActions)
	}
	g.nacts = n
	g.put(grp.ID, grp)
	if old == nil {
		g.n++
	}
	g.changed()
	return nil
}

// Add adds a group; ErrGroupExists if its id is taken.
func (g *Groups) Add(s *GroupSpec) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.add(s)
}

func (g *Groups) add(s *GroupSpec) error {
	if g.Get(s.ID) != nil {
		return fmt.Errorf("group %d: %w", s.ID, ErrGroupExists)
	}
	if err := g.check(s); err != nil {
		return err
	}
	if g.n >= g.max {
		return fmt.Errorf("group %d: %w: the bridge has %d, at most %d", s.ID, ErrGroupTooMany, g.n, g.max)
	}
	return g.store(nil, g.build(s, g.now().UnixNano(), &datapath.Counter{}))
}

// Modify replaces group s.ID's type and buckets (ErrGroupUnknown if it
// does not exist, unless addIfNone). Its counters start again, as the
// buckets they counted are gone; its duration goes on, as in OVS.
func (g *Groups) Modify(s *GroupSpec, addIfNone bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.modify(s, addIfNone)
}

func (g *Groups) modify(s *GroupSpec, addIfNone bool) error {
	old := g.Get(s.ID)
	if old == nil {
		if addIfNone {
			return g.add(s)
		}
		return fmt.Errorf("group %d: %w", s.ID, ErrGroupUnknown)
	}
	if err := g.check(s); err != nil {
		return err
	}
	return g.store(old, g.build(s, old.created, &datapath.Counter{}))
}

// InsertBuckets adds buckets to group id before the bucket with id
// before (flow's BucketFirst/BucketLast for the ends), as OpenFlow 1.5's
// INSERT_BUCKET does. As in OVS, the buckets keep their counters and
// the group's start again.
func (g *Groups) InsertBuckets(id, before uint32, buckets []Bucket) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.insertBuckets(id, before, buckets)
}

func (g *Groups) insertBuckets(id, before uint32, buckets []Bucket) error {
	old := g.Get(id)
	if old == nil {
		return fmt.Errorf("group %d: %w", id, ErrGroupUnknown)
	}
	at := -1
	switch before {
	case BucketFirst:
		at = 0
	case BucketLast:
		at = len(old.Buckets)
	default:
		for i := range old.Buckets {
			if old.Buckets[i].ID == before {
				at = i
			}
		}
		if at < 0 {
			return fmt.Errorf("group %d: bucket %d: %w", id, before, ErrBucketUnknown)
		}
	}
	s := old.GroupSpec
	s.Buckets = append(append(append([]Bucket(nil), old.Buckets[:at]...), buckets...), old.Buckets[at:]...)
	if err := g.check(&s); err != nil {
		return err
	}
	ng := g.build(&s, old.created, &datapath.Counter{})
	for i := range ng.Buckets { // the old buckets keep their counters
		if i < at {
			ng.Buckets[i].stats = old.Buckets[i].stats
		} else if i >= at+len(buckets) {
			ng.Buckets[i].stats = old.Buckets[i-len(buckets)].stats
		}
	}
	return g.store(old, ng)
}

// Reserved bucket ids of OpenFlow 1.5's bucket commands.
const (
	BucketFirst = 0xfffffffd
	BucketLast  = 0xfffffffe
	BucketAll   = 0xffffffff
)

// RemoveBuckets removes bucket which (BucketFirst, BucketLast, BucketAll
// or a bucket id) from group id, as OpenFlow 1.5's REMOVE_BUCKET does.
func (g *Groups) RemoveBuckets(id, which uint32) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.removeBuckets(id, which)
}

func (g *Groups) removeBuckets(id, which uint32) error {
	old := g.Get(id)
	if old == nil {
		return fmt.Errorf("group %d: %w", id, ErrGroupUnknown)
	}
	keep := func(i int, b *Bucket) bool {
		switch which {
		case BucketAll:
			return false
		case BucketFirst:
			return i != 0
		case BucketLast:
			return i != len(old.Buckets)-1
		}
		return b.ID != which
	}
	s := old.GroupSpec
	s.Buckets = nil
	var stats []*datapath.Counter
	for i := range old.Buckets {
		if keep(i, &old.Buckets[i]) {
			s.Buckets = append(s.Buckets, old.Buckets[i])
			stats = append(stats, old.Buckets[i].stats)
		}
	}
	if len(s.Buckets) == len(old.Buckets) && which != BucketFirst && which != BucketLast {
		return fmt.Errorf("group %d: bucket %d: %w", id, which, ErrBucketUnknown)
	}
	if err := g.check(&s); err != nil {
		return err
	}
	ng := g.build(&s, old.created, &datapath.Counter{})
	for i := range ng.Buckets {
		ng.Buckets[i].stats = stats[i]
	}
	return g.store(old, ng)
}

// Delete removes group id (WatchAny or OFPG_ALL: every group) and the
// flows whose actions name a removed group, as OVS does; it returns
// those flows, for their flow-removed messages (reason group delete).
// The group lock is held while the flows go (group then flow lock, as a
// bundle's commit takes them), so that a bundle adding the group back
// with a flow that names it cannot lose that flow in between.
func (g *Groups) Delete(id uint32) []Removed {
	g.mu.Lock()
	defer g.mu.Unlock()
	gone := g.remove(id)
	if len(gone) > 0 {
		g.changed()
	}
	if len(gone) == 0 || g.tables == nil {
		return nil
	}
	return g.tables.deleteByGroups(gone)
}

// remove takes the groups List(id) names out of the table and returns
// their ids.
func (g *Groups) remove(id uint32) []uint32 {
	var gone []uint32
	for _, grp := range g.List(id) {
		g.put(grp.ID, nil)
		g.n--
		g.nacts -= grp.nacts
		gone = append(gone, grp.ID)
	}
	return gone
}

// restore puts back old (nil: none) as group id, as a bundle's undo.
func (g *Groups) restore(id uint32, old *Group) {
	cur := g.Get(id)
	if cur != nil {
		g.n--
		g.nacts -= cur.nacts
	}
	if old != nil {
		g.n++
		g.nacts += old.nacts
	}
	g.put(id, old)
}

// changed invalidates the datapath's cached translations, which may go
// through the old groups, and starts or stops watching ports.
func (g *Groups) changed() {
	datapath.Invalidate()
	g.rewatch()
}

// Stats returns the counters of the groups List(id) returns.
func (g *Groups) Stats(id uint32) ([]*Group, []GroupStats) {
	groups := g.List(id)
	refs := map[uint32]uint32{}
	if g.tables != nil && len(groups) > 0 {
		refs = g.tables.groupRefs()
	}
	now := g.now().UnixNano()
	out := make([]GroupStats, len(groups))
	for i, grp := range groups {
		s := GroupStats{Duration: time.Duration(max(now-grp.created, 0)), Packets: grp.stats.Packets.Load(),
			Bytes: grp.stats.Bytes.Load(), RefCount: refs[grp.ID]}
		for j := range grp.Buckets {
			c := grp.Buckets[j].stats
			s.Buckets = append(s.Buckets, BucketCounters{Packets: c.Packets.Load(), Bytes: c.Bytes.Load()})
		}
		out[i] = s
	}
	return groups, out
}
