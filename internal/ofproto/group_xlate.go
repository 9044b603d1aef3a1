package ofproto

import (
	"bytes"

	"gvs/internal/datapath"
	"gvs/internal/packet"
)

// group executes the group action: each bucket it picks runs its
// actions on a copy of the packet (a datapath clone), so that a bucket's
// rewrites end with it, as in OVS. A group deleted since the flow was
// checked does nothing. The group and the buckets count the packet.
func (c *ofctx) group(x *xlate, id uint32) {
	grp := c.b.Groups.Get(id)
	if grp == nil {
		return
	}
	x.out.Effects = append(x.out.Effects, datapath.Effect{Kind: datapath.EffectCount, Counter: grp.stats})
	switch grp.Type {
	case GroupAll:
		for i := range grp.Buckets {
			c.bucket(x, &grp.Buckets[i])
		}
	case GroupIndirect:
		if len(grp.Buckets) > 0 {
			c.bucket(x, &grp.Buckets[0])
		}
	case GroupSelect:
		if b := c.selectBucket(x, grp); b != nil {
			c.bucket(x, b)
		}
	case GroupFastFailover:
		for i := range grp.Buckets {
			if c.b.Groups.bucketLive(&grp.Buckets[i], 0) {
				c.bucket(x, &grp.Buckets[i])
				break
			}
		}
	}
}

func (c *ofctx) bucket(x *xlate, b *Bucket) {
	if !supported(b.Actions) {
		// As for a rule: the packet is dropped whole, not half-forwarded.
		unsupportedActions.Inc()
		x.aborted = true
		return
	}
	x.out.Effects = append(x.out.Effects, datapath.Effect{Kind: datapath.EffectCount, Counter: b.stats})
	c.clone(x, b.Actions)
}

// selectBucket picks a select group's bucket for the packet: a hash of
// its addresses and ports, both directions alike (OVS 3.1's default
// dp_hash method hashes the same fields symmetrically), spread over the
// live buckets in proportion to their weights. Every field the hash
// read joins the mask, so that the cached translation is one
// connection's.
func (c *ofctx) selectBucket(x *xlate, grp *Group) *Bucket {
	var total uint32
	for i := range grp.Buckets {
		if b := &grp.Buckets[i]; b.Weight > 0 && c.b.Groups.bucketLive(b, 0) {
			total += uint32(b.Weight)
		}
	}
	if total == 0 {
		return nil
	}
	var h uint32
	if grp.HashFields != nil {
		h = fieldsHash(&c.key, grp.HashFields, grp.HashBasis)
		x.out.Mask.OrMask(grp.HashFields)
	} else {
		h = flowHash(&c.key, &x.out.Mask)
	}
	pick := h % total
	for i := range grp.Buckets {
		b := &grp.Buckets[i]
		if b.Weight == 0 || !c.b.Groups.bucketLive(b, 0) {
			continue
		}
		if pick < uint32(b.Weight) {
			return b
		}
		pick -= uint32(b.Weight)
	}
	return nil
}

// flowHash hashes the packet's L3 and L4 addresses (its Ethernet ones
// when it is not IP) so that both directions hash alike, and puts what
// it read into m.
func flowHash(k *packet.Key, m *datapath.Key) uint32 {
	h := uint32(2166136261)
	mix := func(b []byte) {
		for _, v := range b {
			h ^= uint32(v)
			h *= 16777619
		}
	}
	pair := func(a, b []byte) {
		if bytes.Compare(a, b) > 0 {
			a, b = b, a
		}
		mix(a)
		mix(b)
	}
	m.DlType = 0xffff
	var p [2]byte
	mix(append(p[:0], byte(k.DlType>>8), byte(k.DlType)))
	switch k.DlType {
	case packet.EtherTypeIPv4:
		m.NwSrc, m.NwDst = [4]byte{255, 255, 255, 255}, [4]byte{255, 255, 255, 255}
		pair(k.NwSrc[:], k.NwDst[:])
	case packet.EtherTypeIPv6:
		for i := range m.IPv6Src {
			m.IPv6Src[i], m.IPv6Dst[i] = 0xff, 0xff
		}
		pair(k.IPv6Src[:], k.IPv6Dst[:])
	default:
		for i := range m.DlSrc {
			m.DlSrc[i], m.DlDst[i] = 0xff, 0xff
		}
		pair(k.DlSrc[:], k.DlDst[:])
		return fmix(h)
	}
	m.NwProto = 0xff
	mix(append(p[:0], k.NwProto))
	switch k.NwProto {
	case 6, 17, 132:
		m.TpSrc, m.TpDst = 0xffff, 0xffff
		var s, d [2]byte
		s[0], s[1], d[0], d[1] = byte(k.TpSrc>>8), byte(k.TpSrc), byte(k.TpDst>>8), byte(k.TpDst)
		pair(s[:], d[:])
	}
	return fmix(h)
}

// fieldsHash hashes the bits of k under mask (a selection method's
// fields), from basis. A field the packet does not have hashes as the
// zero the key holds for it; OVS leaves such a field out.
func fieldsHash(k, mask *packet.Key, basis uint64) uint32 {
	h := uint64(basis) ^ 0x9e3779b97f4a7c15
	kw, mw := words(k), words(mask)
	for i, m := range mw {
		if m != 0 {
			h = (h ^ kw[i]&m) * 0x100000001b3
			h ^= h >> 29
		}
	}
	return fmix(uint32(h) ^ uint32(h>>32))
}

// fmix spreads the bits of h (murmur3's finalizer), so that the low
// bits a modulo reads depend on every byte.
func fmix(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// bucketLive says whether a bucket may be used: the port it watches is
// up, and the group it watches has a live bucket (OVS's liveness, without
// BFD or CFM, which gvs does not have).
func (g *Groups) bucketLive(b *Bucket, depth int) bool {
	if b.WatchPort != WatchAny && !(*g.live.Load())[b.WatchPort] {
		return false
	}
	if b.WatchGroup == WatchAny {
		return true
	}
	wg := g.Get(b.WatchGroup)
	if wg == nil || depth >= MaxGroupDepth {
		return false
	}
	for i := range wg.Buckets {
		if g.bucketLive(&wg.Buckets[i], depth+1) {
			return true
		}
	}
	return false
}
