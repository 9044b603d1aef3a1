package openflow

// Groups (OpenFlow 1.1+): the group mod message, in 1.1-1.4's layout
// (ofp11_group_mod, ofp11_bucket) and 1.5's (bucket ids, command_bucket_id,
// bucket and group properties), and the group description, statistics
// and features multipart messages. Learned from the OpenFlow 1.3 and 1.5
// specifications. OpenFlow 1.0 has no groups; OVS's Nicira extension
// (what ovs-ofctl sends without -O) carries them there in 1.5's layouts
// with 1.0's actions: NXT_GROUP_MOD, and NXST_GROUP, NXST_GROUP_DESC and
// NXST_GROUP_FEATURES stats, whose bodies are 1.3's (group stats) and
// 1.5's (group mod, description request and reply).

// Group mod commands (OFPGC11_*, OFPGC15_*).
const (
	GroupAdd          = 0
	GroupModify       = 1
	GroupDelete       = 2
	GroupInsertBucket = 3 // 1.5
	GroupRemoveBucket = 5 // 1.5
)

// Group types (OFPGT11_*).
const (
	GroupTypeAll          = 0
	GroupTypeSelect       = 1
	GroupTypeIndirect     = 2
	GroupTypeFastFailover = 3
)

// Nicira subtypes of the groups in OpenFlow 1.0 (NXT_*, NXST_*).
const (
	nxtGroupMod          = 31
	nxstGroup            = 7
	nxstGroupDesc        = 8
	nxstGroupFeatures    = 9
	nxGroupStatsReqBody  = 8 // group id and padding, as 1.1's
	nxGroupDescReqBody   = 8 // group id and padding, as 1.5's
	nxGroupFeaturesBytes = 40
)

// groups15 says whether version v writes groups in 1.5's layout: 1.5
// and later, and 1.0's Nicira extension.
func groups15(v uint8) bool { return v == Version10 || v >= Version15 }

// Reserved group ids (OFPG_*) and 1.5's reserved bucket ids (OFPG15_BUCKET_*).
const (
	GroupMax         = 0xffffff00
	GroupAll         = 0xfffffffc
	GroupAny         = 0xffffffff
	BucketMax        = 0xffffff00
	BucketFirst      = 0xfffffffd
	BucketLast       = 0xfffffffe
	BucketAll        = 0xffffffff
	groupStatsType   = 6
	groupDescType    = 7
	groupFeatureType = 8
)

// 1.5 bucket property types (OFPGBPT15_*).
const (
	bucketPropWeight     = 0
	bucketPropWatchPort  = 1
	bucketPropWatchGroup = 2
)

// Bucket is one bucket of a group. ID is 1.5's bucket_id; the earlier
// layout has none (a decoder numbers the buckets from 0, as OVS does).
type Bucket struct {
	ID         uint32
	Weight     uint16
	WatchPort  uint32
	WatchGroup uint32
	Actions    []Action
}

// GroupMod is OFPT_GROUP_MOD. CommandBucketID is 1.5's (BucketAll when
// the version has none); Props are 1.5's group properties, kept as they
// came (OVS's selection method is one).
type GroupMod struct {
	Command         uint16
	Type            uint8
	GroupID         uint32
	CommandBucketID uint32
	Buckets         []Bucket
	Props           []Prop
}

// maxBuckets bounds the buckets a decoder accepts: a 64 KiB message
// holds at most this many of 1.3's 16-byte buckets anyway.
const maxBuckets = MaxMessageLen / 16

func (m *GroupMod) encode(w *writer, v uint8) (uint8, error) {
	t := uint8(t13GroupMod)
	if v == Version10 {
		t, _ = nxHeader(w, nxtGroupMod)
	}
	w.u16(m.Command)
	w.u8(m.Type)
	w.zeros(1)
	w.u32(m.GroupID)
	if !groups15(v) {
		return t, encodeBuckets11(w, v, m.Buckets)
	}
	lenAt := w.pos()
	w.u16(0)
	w.zeros(2)
	w.u32(m.CommandBucketID)
	start := w.pos()
	if err := encodeBuckets15(w, v, m.Type, m.Buckets); err != nil {
		return 0, err
	}
	w.put16(lenAt, uint16(w.pos()-start))
	return t, encodeProps(w, m.Props)
}

func encodeBuckets11(w *writer, v uint8, bs []Bucket) error {
	for i := range bs {
		b := &bs[i]
		at := w.pos()
		w.u16(0)
		w.u16(b.Weight)
		w.u32(b.WatchPort)
		w.u32(b.WatchGroup)
		w.zeros(4)
		if err := encodeActions(w, v, b.Actions); err != nil {
			return err
		}
		w.put16(at, uint16(w.pos()-at))
	}
	return nil
}

// encodeBuckets15 writes 1.5 buckets with their properties as OVS
// does: a weight only in a select group, a watch only when set.
func encodeBuckets15(w *writer, v uint8, typ uint8, bs []Bucket) error {
	for i := range bs {
		b := &bs[i]
		at := w.pos()
		w.u16(0)
		w.u16(0)
		w.u32(b.ID)
		if err := encodeActions(w, v, b.Actions); err != nil {
			return err
		}
		w.put16(at+2, uint16(w.pos()-at-8))
		if typ == GroupTypeSelect {
			w.u16(bucketPropWeight)
			w.u16(8)
			w.u16(b.Weight)
			w.zeros(2)
		}
		if b.WatchPort != PortAny {
			w.u16(bucketPropWatchPort)
			w.u16(8)
			w.u32(b.WatchPort)
		}
		if b.WatchGroup != GroupAny {
			w.u16(bucketPropWatchGroup)
			w.u16(8)
			w.u32(b.WatchGroup)
		}
		w.put16(at, uint16(w.pos()-at))
	}
	return nil
}

func decodeGroupMod(r *reader, v uint8) (Message, error) {
	m := &GroupMod{Command: r.u16(), Type: r.u8(), CommandBucketID: BucketAll}
	r.zeros(1)
	m.GroupID = r.u32()
	if r.err != nil {
		return nil, r.err
	}
	var err error
	if !groups15(v) {
		m.Buckets, err = decodeBuckets11(r.bytes(r.len()), v)
		return m, err
	}
	n := int(r.u16())
	r.zeros(2)
	m.CommandBucketID = r.u32()
	if r.err != nil {
		return nil, r.err
	}
	// OVS checks the command bucket id first: only the bucket commands
	// name a bucket (an insert names a place, a remove may name all).
	id := m.CommandBucketID
	named := id <= BucketMax || id == BucketFirst || id == BucketLast
	switch m.Command {
	case GroupRemoveBucket:
		named = named || id == BucketAll
	case GroupInsertBucket:
	default:
		named = id == BucketAll
	}
	if !named {
		return nil, errorf(ErrGroupBadBucket, "command %d with command bucket id 0x%x", m.Command, id)
	}
	if n > r.len() {
		return nil, errorf(ErrBadLen, "bucket array of %d bytes with %d left", n, r.len())
	}
	if m.Buckets, err = decodeBuckets15(r.bytes(n), v, m.Type); err != nil {
		return nil, err
	}
	m.Props, err = decodeGroupProps(r)
	return m, err
}

// decodeGroupProps reads a group's properties; a bad length is a bad
// property's (OFPBPC_BAD_LEN), as OVS answers.
func decodeGroupProps(r *reader) ([]Prop, error) {
	ps, err := decodeProps(r)
	if e, ok := err.(*Error); ok && e.Code == ErrBadLen {
		e.Code = ErrPropBadLen
	}
	return ps, err
}

func decodeBuckets11(b []byte, v uint8) ([]Bucket, error) {
	var out []Bucket
	for len(b) > 0 {
		if len(b) < 16 {
			return nil, errorf(ErrGroupBadBucket, "%d bytes left, too short for a bucket", len(b))
		}
		r := newReader(b, ErrGroupBadBucket, "bucket")
		n := int(r.u16())
		if n < 16 || n > len(b) || n%8 != 0 {
			return nil, errorf(ErrGroupBadBucket, "bucket length %d with %d bytes left", n, len(b))
		}
		if len(out) >= maxBuckets {
			return nil, errorf(ErrGroupOutOfBuckets, "more than %d buckets", maxBuckets)
		}
		bk := Bucket{ID: uint32(len(out)), Weight: r.u16(), WatchPort: r.u32(), WatchGroup: r.u32()}
		acts, err := decodeActions(b[16:n], v, 0)
		if err != nil {
			return nil, err
		}
		bk.Actions = acts
		out = append(out, bk)
		b = b[n:]
	}
	return out, nil
}

// decodeBuckets15 reads 1.5 buckets of a group of type typ. A bucket
// without a weight property weighs 1 in a select group, 0 in another
// (what 1.3's ovs-ofctl sends); other types ignore the property, which
// OVS does not send for them.
func decodeBuckets15(b []byte, v uint8, typ uint8) ([]Bucket, error) {
	var out []Bucket
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, errorf(ErrGroupBadBucket, "%d bytes left, too short for a bucket", len(b))
		}
		r := newReader(b, ErrGroupBadBucket, "bucket")
		n, an := int(r.u16()), int(r.u16())
		if n < 8 || n > len(b) || an > n-8 {
			return nil, errorf(ErrGroupBadBucket, "bucket length %d, actions %d, with %d bytes left", n, an, len(b))
		}
		if len(out) >= maxBuckets {
			return nil, errorf(ErrGroupOutOfBuckets, "more than %d buckets", maxBuckets)
		}
		bk := Bucket{ID: r.u32(), WatchPort: PortAny, WatchGroup: GroupAny}
		if typ == GroupTypeSelect {
			bk.Weight = 1
		}
		acts, err := decodeActions(b[8:8+an], v, 0)
		if err != nil {
			return nil, err
		}
		bk.Actions = acts
		props := b[8+an : n]
		for len(props) > 0 {
			if len(props) < 4 {
				return nil, errorf(ErrGroupBadBucket, "bucket property of %d bytes", len(props))
			}
			pr := newReader(props, ErrGroupBadBucket, "bucket property")
			ptyp, pn := pr.u16(), int(pr.u16())
			if pn < 4 || pad8(pn) > len(props) {
				return nil, errorf(ErrPropBadLen, "bucket property length %d with %d bytes left", pn, len(props))
			}
			switch ptyp {
			case bucketPropWeight, bucketPropWatchPort, bucketPropWatchGroup:
				if pn != 8 {
					return nil, errorf(ErrPropBadLen, "bucket property %d of length %d", ptyp, pn)
				}
				switch ptyp {
				case bucketPropWeight:
					if w := pr.u16(); typ == GroupTypeSelect {
						bk.Weight = w
					}
				case bucketPropWatchPort:
					bk.WatchPort = pr.u32()
				default:
					bk.WatchGroup = pr.u32()
				}
			default:
				return nil, errorf(ErrPropBadType, "unknown bucket property %d", ptyp)
			}
			props = props[pad8(pn):]
		}
		out = append(out, bk)
		b = b[n:]
	}
	return out, nil
}

// GroupDescRequest asks for the description of GroupID (1.5; GroupAll
// in earlier versions, which ask for every group).
type GroupDescRequest struct {
	Flags   uint16
	GroupID uint32
}

// GroupStatsRequest asks for the counters of GroupID (GroupAll: all).
type GroupStatsRequest struct {
	Flags   uint16
	GroupID uint32
}

// GroupFeaturesRequest asks for the switch's group features.
type GroupFeaturesRequest struct{ Flags uint16 }

// groupStatsHead writes the header of a group stats message of type
// typ: in 1.0 the Nicira stats header, whose subtypes follow the
// standard types by one (NXST_GROUP is OFPST_GROUP's 6 plus one).
func groupStatsHead(w *writer, v uint8, typ, flags uint16) {
	if v == Version10 {
		nxStatsHeader(w, flags, uint32(typ)+1)
		return
	}
	statsHeader(w, v, typ, flags)
}

func (m *GroupDescRequest) encode(w *writer, v uint8) (uint8, error) {
	groupStatsHead(w, v, groupDescType, m.Flags)
	if groups15(v) {
		w.u32(m.GroupID)
		w.zeros(4)
	}
	return reqType(v), nil
}

func (m *GroupStatsRequest) encode(w *writer, v uint8) (uint8, error) {
	groupStatsHead(w, v, groupStatsType, m.Flags)
	w.u32(m.GroupID)
	w.zeros(4)
	return reqType(v), nil
}

func (m *GroupFeaturesRequest) encode(w *writer, v uint8) (uint8, error) {
	groupStatsHead(w, v, groupFeatureType, m.Flags)
	return reqType(v), nil
}

// decodeGroupStatsRequest reads the body of a group multipart request of
// type typ (1.1+).
func decodeGroupStatsRequest(r *reader, v uint8, typ, flags uint16) (Message, error) {
	switch typ {
	case groupDescType:
		if !groups15(v) {
			if r.len() != 0 {
				return nil, errorf(ErrBadLen, "group description request with a %d-byte body", r.len())
			}
			return &GroupDescRequest{Flags: flags, GroupID: GroupAll}, nil
		}
		fallthrough
	case groupStatsType:
		if r.len() != 8 {
			return nil, errorf(ErrBadLen, "group request with a %d-byte body", r.len())
		}
		id := r.u32()
		r.zeros(4)
		if typ == groupDescType {
			return &GroupDescRequest{Flags: flags, GroupID: id}, nil
		}
		return &GroupStatsRequest{Flags: flags, GroupID: id}, nil
	}
	if r.len() != 0 {
		return nil, errorf(ErrBadLen, "group features request with a %d-byte body", r.len())
	}
	return &GroupFeaturesRequest{Flags: flags}, nil
}

// GroupDesc is one group of a group description reply.
type GroupDesc struct {
	Type    uint8
	GroupID uint32
	Buckets []Bucket
	Props   []Prop // 1.5
}

// GroupDescReply lists groups (OFPMP_GROUP_DESC).
type GroupDescReply struct {
	Flags  uint16
	Groups []GroupDesc
}

// GroupStats is one group's counters; Buckets holds each bucket's
// packets and bytes, in bucket order.
type GroupStats struct {
	GroupID                   uint32
	RefCount                  uint32
	PacketCount, ByteCount    uint64
	DurationSec, DurationNsec uint32
	Buckets                   []BucketCounter
}

// BucketCounter is one bucket's counters.
type BucketCounter struct{ PacketCount, ByteCount uint64 }

// GroupStatsReply lists group counters (OFPMP_GROUP).
type GroupStatsReply struct {
	Flags  uint16
	Groups []GroupStats
}

// GroupFeaturesReply is OFPMP_GROUP_FEATURES's reply: the group types
// and capabilities (bitmaps), and per type the most groups and the
// actions (a bitmap of OFPAT_* numbers).
type GroupFeaturesReply struct {
	Flags        uint16
	Types        uint32
	Capabilities uint32
	MaxGroups    [4]uint32
	Actions      [4]uint32
}

func (m *GroupDescReply) encode(w *writer, v uint8) (uint8, error) {
	return encodeMultipart(w, v, m, m.Flags)
}
func (m *GroupDescReply) typ(v uint8) uint8 { return repType(v) }
func (m *GroupDescReply) head(w *writer, v uint8, flags uint16) {
	groupStatsHead(w, v, groupDescType, flags)
}

func (m *GroupDescReply) entries(v uint8) ([][]byte, error) {
	return groupEntries(v, len(m.Groups), func(w *writer, i int) error {
		g := &m.Groups[i]
		w.u16(0)
		w.u8(g.Type)
		w.zeros(1)
		w.u32(g.GroupID)
		if !groups15(v) {
			if err := encodeBuckets11(w, v, g.Buckets); err != nil {
				return err
			}
		} else {
			w.u16(0)
			w.zeros(6)
			if err := encodeBuckets15(w, v, g.Type, g.Buckets); err != nil {
				return err
			}
			w.put16(8, uint16(w.pos()-16))
			if err := encodeProps(w, g.Props); err != nil {
				return err
			}
		}
		w.put16(0, uint16(w.pos()))
		return nil
	})
}

// groupEntries encodes n entries of a group reply with one; an entry
// longer than a message can carry is left out (nil), as flow stats'.
func groupEntries(v uint8, n int, one func(w *writer, i int) error) ([][]byte, error) {
	out := make([][]byte, 0, n)
	for i := range n {
		w := &writer{}
		if err := one(w, i); err != nil {
			return nil, err
		}
		if w.pos() > MaxMessageLen-HeaderLen-8 {
			out = append(out, nil)
			continue
		}
		out = append(out, w.b)
	}
	return out, nil
}

func (m *GroupStatsReply) encode(w *writer, v uint8) (uint8, error) {
	return encodeMultipart(w, v, m, m.Flags)
}
func (m *GroupStatsReply) typ(v uint8) uint8 { return repType(v) }
func (m *GroupStatsReply) head(w *writer, v uint8, flags uint16) {
	groupStatsHead(w, v, groupStatsType, flags)
}

func (m *GroupStatsReply) entries(v uint8) ([][]byte, error) {
	return groupEntries(v, len(m.Groups), func(w *writer, i int) error {
		g := &m.Groups[i]
		w.u16(uint16(min(40+16*len(g.Buckets), 0xffff)))
		w.zeros(2)
		w.u32(g.GroupID)
		w.u32(g.RefCount)
		w.zeros(4)
		w.u64(g.PacketCount)
		w.u64(g.ByteCount)
		w.u32(g.DurationSec)
		w.u32(g.DurationNsec)
		for _, b := range g.Buckets {
			w.u64(b.PacketCount)
			w.u64(b.ByteCount)
		}
		return nil
	})
}

func (m *GroupFeaturesReply) encode(w *writer, v uint8) (uint8, error) {
	groupStatsHead(w, v, groupFeatureType, m.Flags)
	w.u32(m.Types)
	w.u32(m.Capabilities)
	for _, n := range m.MaxGroups {
		w.u32(n)
	}
	for _, a := range m.Actions {
		w.u32(a)
	}
	return repType(v), nil
}

// decodeGroupStatsReply reads a group multipart reply's body.
func decodeGroupStatsReply(r *reader, v uint8, typ, flags uint16) (Message, error) {
	switch typ {
	case groupFeatureType:
		m := &GroupFeaturesReply{Flags: flags, Types: r.u32(), Capabilities: r.u32()}
		for i := range m.MaxGroups {
			m.MaxGroups[i] = r.u32()
		}
		for i := range m.Actions {
			m.Actions[i] = r.u32()
		}
		return m, r.err
	case groupStatsType:
		m := &GroupStatsReply{Flags: flags}
		for r.len() > 0 && r.err == nil {
			n := int(r.u16())
			if n < 40 || n > r.len()+2 || (n-40)%16 != 0 {
				return nil, errorf(ErrBadLen, "group stats entry of %d bytes", n)
			}
			r.zeros(2)
			g := GroupStats{GroupID: r.u32(), RefCount: r.u32()}
			r.zeros(4)
			g.PacketCount, g.ByteCount = r.u64(), r.u64()
			g.DurationSec, g.DurationNsec = r.u32(), r.u32()
			for range (n - 40) / 16 {
				g.Buckets = append(g.Buckets, BucketCounter{PacketCount: r.u64(), ByteCount: r.u64()})
			}
			m.Groups = append(m.Groups, g)
		}
		return m, r.err
	}
	m := &GroupDescReply{Flags: flags}
	for r.len() > 0 && r.err == nil {
		n := int(r.u16())
		if n < 8 || n > r.len()+2 {
			return nil, errorf(ErrBadLen, "group description of %d bytes", n)
		}
		body := newReader(r.bytes(n-2), ErrBadLen, "group description")
		g := GroupDesc{Type: body.u8()}
		body.zeros(1)
		g.GroupID = body.u32()
		var err error
		if !groups15(v) {
			g.Buckets, err = decodeBuckets11(body.bytes(body.len()), v)
		} else {
			bn := int(body.u16())
			body.zeros(6)
			if bn > body.len() {
				return nil, errorf(ErrBadLen, "bucket list of %d bytes with %d left", bn, body.len())
			}
			if g.Buckets, err = decodeBuckets15(body.bytes(bn), v, g.Type); err == nil {
				g.Props, err = decodeProps(body)
			}
		}
		if err != nil {
			return nil, err
		}
		if body.err != nil {
			return nil, body.err
		}
		m.Groups = append(m.Groups, g)
	}
	return m, r.err
}
