// The kernel fast path of gvsd's flow cache: a tc (TCX) ingress program
// on system ports that forwards the packets of cached flows in the
// kernel, and a socket filter on gvsd's AF_PACKET socket of the same port
// that keeps those packets from being copied to gvsd as well.
//
// Packet sockets see a received packet before tc ingress does, so the
// decision is made once, in the socket filter: it builds the packet's
// flow key exactly as gvsd's packet.Parse does (for the packets it
// understands; any other packet goes to gvsd), looks it up in the port's
// masks and flows, and on a hit keeps the packet from the socket and
// leaves the flow's actions in a per-CPU verdict. The tc program, which
// runs next on the same CPU, executes that verdict if it is for this
// packet (same device, length, VLAN tag and first 64 bytes) and lets
// every other packet go on.
//
// Build: go generate ./internal/offload (clang -target bpf).

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/types.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name
#define INLINE static inline __attribute__((always_inline))

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_lookup_elem;
static long (*bpf_skb_load_bytes)(const void *skb, __u32 off, void *to, __u32 len) = (void *)BPF_FUNC_skb_load_bytes;
static long (*bpf_redirect)(__u32 ifindex, __u64 flags) = (void *)BPF_FUNC_redirect;
static long (*bpf_clone_redirect)(struct __sk_buff *skb, __u32 ifindex, __u64 flags) = (void *)BPF_FUNC_clone_redirect;
static __u64 (*bpf_ktime_get_coarse_ns)(void) = (void *)BPF_FUNC_ktime_get_coarse_ns;
static long (*bpf_skb_vlan_push)(struct __sk_buff *skb, __be16 proto, __u16 tci) = (void *)BPF_FUNC_skb_vlan_push;
static long (*bpf_skb_vlan_pop)(struct __sk_buff *skb) = (void *)BPF_FUNC_skb_vlan_pop;
static long (*bpf_skb_adjust_room)(struct __sk_buff *skb, __s32 len_diff, __u32 mode, __u64 flags) = (void *)BPF_FUNC_skb_adjust_room;
static long (*bpf_redirect_neigh)(__u32 ifindex, void *params, int plen, __u64 flags) = (void *)BPF_FUNC_redirect_neigh;
static long (*bpf_skb_store_bytes)(struct __sk_buff *skb, __u32 off, const void *from, __u32 len, __u64 flags) = (void *)BPF_FUNC_skb_store_bytes;

// The kernel's own sk_buff, for the one field __sk_buff lacks:
// ip_summed (CO-RE: its place is read from the kernel's BTF at load).
struct sk_buff___gvs {
	__u8 ip_summed : 2;
} __attribute__((preserve_access_index));
extern void *bpf_cast_to_kern_ctx(void *obj) __attribute__((section(".ksyms")));
#define CHECKSUM_PARTIAL 3
// READ_BITFIELD reads a bitfield of a kernel struct where the kernel's
// BTF says it is (field kinds of __builtin_preserve_field_info: 0 byte
// offset, 1 byte size, 4 and 5 the shifts that extract it).
#define READ_BITFIELD(s, field) ({                                               \
	const void *p = (const void *)(s) + __builtin_preserve_field_info((s)->field, 0); \
	__u64 val = 0;                                                               \
	asm volatile("" : "=r"(p) : "0"(p));                                         \
	switch (__builtin_preserve_field_info((s)->field, 1)) {                      \
	case 1: val = *(const __u8 *)p; break;                                       \
	case 2: val = *(const __u16 *)p; break;                                      \
	case 4: val = *(const __u32 *)p; break;                                      \
	case 8: val = *(const __u64 *)p; break;                                      \
	}                                                                            \
	val <<= __builtin_preserve_field_info((s)->field, 4);                        \
	val >>= __builtin_preserve_field_info((s)->field, 5);                        \
	val;                                                                         \
})

#include "layout.h"

// Sizes shared with the Go side (offload.go).
#define MAX_PORTS 256  // ports with a fast path, inputs and outputs
#define MAX_MASKS 32   // masks per input port
#define MASK_WORDS 16  // key words one mask looks at
#define MAX_OPS 16     // actions per flow
#define MAX_FLOWS 65536
#define BUF 128        // header bytes read: Ethernet, IPv4 with options, TCP
#define PREFIX 64      // bytes that tie a verdict to its packet

// The fast path reads the coarse clock (the last tick's time): the
// precise one reads the hypervisor's clock on a VM, 2 % of a forwarding
// CPU here. A tick is at most 10 ms (HZ >= 100), so a flow is taken as
// expired that much early: its packets then go to gvsd, never late.
#define COARSE_SLACK 10000000ULL

#define OP_OUTPUT 1
#define OP_PUSH_VLAN 2
#define OP_POP_VLAN 3
#define OP_SAVE_VLAN 4 // remember the outer tag, for OP_UNDO_POP
#define OP_UNDO_POP 5  // push the remembered tag back, if there was one
#define OP_UNDO_PUSH 6 // pop the tag a clone pushed
#define OP_ENCAP 7     // GRE-encapsulate and send by the tunnel's route: always the last

struct port_rec {
	__u32 slot;   // index of the port's masks and counters
	__u32 inport; // datapath port number: the key's in_port
	__u32 nmasks; // mask slots in use are below this
	__u32 pad;
};

struct mask_rec {
	__u32 nwords; // 0: the slot is free
	__u32 pad;
	__u16 idx[MASK_WORDS];  // the key words the mask looks at
	__u64 mwrd[MASK_WORDS]; // and their masks
};

struct flow_key {
	__u32 port; // input port slot
	__u32 mask; // mask slot
	__u64 vals[MASK_WORDS];
};

struct op {
	__u32 ifindex; // OP_OUTPUT
	__u16 kind;
	__u16 tci;  // OP_PUSH_VLAN, as on the wire
	__u16 tpid; // OP_PUSH_VLAN
	__u16 port; // OP_OUTPUT, OP_ENCAP: the output port's slot
};

struct flow_val {
	__u64 gen;     // the generation it was translated in
	__u64 expires; // ktime ns; 0: never
	__u32 id;      // its counters' index
	__u32 nops;
	struct op ops[MAX_OPS];
};

struct flow_stats {
	__u64 packets, bytes, used;
};

struct port_stats {
	__u64 rx_packets, rx_bytes, tx_packets, tx_bytes, tx_dropped;
};

struct scratch {
	__u64 key[64]; // KEY_WORDS used; 64 so that any 6-bit index is in bounds
	__u8 buf[BUF];
	struct flow_key lk;
};

struct verdict {
	__u32 valid, ifindex, len, tci;
	__u64 prefix[PREFIX / 8];
	struct flow_val fv;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32); // ifindex
	__type(value, struct port_rec);
} gvs_ports SEC(".maps");

// A GRE tunnel port's way out, by its slot: the headers to put in front
// of a frame, as gvsd's direct sending writes them (the route's device
// and next hop, netdev/tnl_direct_linux.go), with the outer IPv4 total
// length and checksum left to fill.
#define TUN_HDR 48
struct tunnel_rec {
	__u32 ifindex; // the route's device; 0: gvsd sends (no route, no neighbour)
	__u32 hdrlen;  // Ethernet + IPv4 + GRE
	__u32 mtu;     // the longest outer IPv4 packet the route carries
	__u32 pad;
	__u8 hdr[TUN_HDR];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32); // port slot
	__type(value, struct tunnel_rec);
} gvs_tunnels SEC(".maps");

// What a GRE packet must carry to be a tunnel port's (outer source,
// outer destination, key: 0 for none, as gvsd matches them), and that
// port's record.
struct tun_rx_key {
	__u32 src, dst, key, pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PORTS);
	__type(key, struct tun_rx_key);
	__type(value, struct port_rec);
} gvs_tun_rx SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_PORTS *MAX_MASKS);
	__type(key, __u32); // port slot * MAX_MASKS + mask slot
	__type(value, struct mask_rec);
} gvs_masks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FLOWS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} gvs_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_FLOWS);
	__type(key, __u32);
	__type(value, struct flow_stats);
} gvs_flow_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);
	__type(value, struct port_stats);
} gvs_port_stats SEC(".maps");

// gvs_gen[0] is the datapath's generation: flows of another are stale.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} gvs_gen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} gvs_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct verdict);
} gvs_verdict SEC(".maps");

// Counters of what the programs did (per CPU): see ctr_* below.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} gvs_counters SEC(".maps");

#define CTR_HIT 0         // packets forwarded by the fast path
#define CTR_MISS 1        // looked up, no flow: to gvsd
#define CTR_UNPARSED 2    // not a packet the fast path keys: to gvsd
#define CTR_STALE 3       // a flow of an old generation or past its expiry
#define CTR_LOST_VERDICT 4 // a verdict whose packet tc did not see
#define CTR_ERROR 5       // an action the kernel refused: packet dropped
#define CTR_TUNNEL_SLOW 6 // a tunnel flow's packet gvsd sends itself (too long, tagged, no route)

INLINE void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&gvs_counters, &which);
	if (c)
		*c += 1;
}

INLINE __u16 be16(const __u8 *p) { return (__u16)p[0] << 8 | p[1]; }
INLINE void put16(__u8 *k, __u32 off, __u16 v) { *(__u16 *)(k + off) = v; }
INLINE void put32(__u8 *k, __u32 off, __u32 v) { *(__u32 *)(k + off) = v; }
INLINE void copy_bytes(__u8 *dst, const __u8 *src, int n)
{
#pragma unroll
	for (int i = 0; i < 16; i++)
		if (i < n)
			dst[i] = src[i];
}

// parse_l4 reads the transport header at pos of a datagram that ends at
// end (both from the frame's start; pos <= 14 + 60). It returns -1 where
// packet.Parse would stop short (a truncated or malformed header) or
// would read more than the fast path keys on (IPv6 neighbor discovery).
INLINE int parse_l4(__u8 *k, const __u8 *b, __u32 n, __u32 pos, __u32 end, __u8 proto, int v6)
{
	if (pos > 14 + 60 || end < pos)
		return -1;
	__u32 seg = end - pos;
	switch (proto) {
	case 6: { // TCP
		if (seg < 20 || pos + 20 > n)
			return -1;
		__u32 hl = (b[pos + 12] >> 4) * 4;
		if (hl < 20 || hl > seg)
			return -1;
		put16(k, K_TPSRC, be16(b + pos));
		put16(k, K_TPDST, be16(b + pos + 2));
		put16(k, K_TCPFLAGS, be16(b + pos + 12) & 0x0fff);
		return 0;
	}
	case 17:    // UDP
	case 132: { // SCTP
		__u32 hl = proto == 17 ? 8 : 12;
		if (seg < hl || pos + 4 > n)
			return -1;
		put16(k, K_TPSRC, be16(b + pos));
		put16(k, K_TPDST, be16(b + pos + 2));
		return 0;
	}
	case 1:  // ICMP
	case 58: // ICMPv6
	case 2:  // IGMP
		if (seg < 8 || pos + 2 > n)
			return -1;
		if (v6 && proto == 58 && b[pos + 1] == 0 && (b[pos] == 135 || b[pos] == 136))
			return -1;
		put16(k, K_TPSRC, b[pos]);
		put16(k, K_TPDST, b[pos + 1]);
		return 0;
	}
	return 0;
}

INLINE int parse_ipv4(__u8 *k, const __u8 *b, __u32 n, __u32 len)
{
	if (len < 14 + 20 || n < 14 + 20)
		return -1;
	__u32 hl = (b[14] & 0xf) * 4;
	__u32 tl = be16(b + 16);
	if (hl < 20 || tl < hl || tl > len - 14)
		return -1;
	if (be16(b + 20) & 0x3fff) // a fragment
		return -1;
	copy_bytes(k + K_NWSRC, b + 26, 4);
	copy_bytes(k + K_NWDST, b + 30, 4);
	k[K_NWPROTO] = b[23];
	k[K_NWTOS] = b[15];
	k[K_NWTTL] = b[22];
	return parse_l4(k, b, n, 14 + hl, 14 + tl, b[23], 0);
}

INLINE int parse_ipv6(__u8 *k, const __u8 *b, __u32 n, __u32 len)
{
	if (len < 14 + 40 || n < 14 + 40)
		return -1;
	__u32 end = 14 + 40 + be16(b + 18);
	if (end > len)
		return -1;
	__u8 nh = b[20];
	if (nh == 0 || nh == 43 || nh == 44 || nh == 51 || nh == 60)
		return -1; // an extension header: gvsd walks those
	copy_bytes(k + K_IPV6SRC, b + 22, 16);
	copy_bytes(k + K_IPV6DST, b + 38, 16);
	__u32 w = (__u32)be16(b + 14) << 16 | be16(b + 16);
	put32(k, K_IPV6LABEL, w & 0xfffff);
	k[K_NWPROTO] = nh;
	k[K_NWTOS] = (w >> 20) & 0xff;
	k[K_NWTTL] = b[21];
	return parse_l4(k, b, n, 14 + 40, end, nh, 1);
}

INLINE int parse_arp(__u8 *k, const __u8 *b, __u32 n, __u32 len)
{
	if (len < 14 + 28 || n < 14 + 28)
		return -1;
	if (be16(b + 14) != 1 || be16(b + 16) != 0x0800 || be16(b + 18) != 0x0604)
		return 0;
	__u16 op = be16(b + 20);
	if (op <= 0xff)
		put16(k, K_ARPOP, op);
	copy_bytes(k + K_ARPSHA, b + 22, 6);
	copy_bytes(k + K_ARPSPA, b + 28, 4);
	copy_bytes(k + K_ARPTHA, b + 32, 6);
	copy_bytes(k + K_ARPTPA, b + 38, 4);
	return 0;
}

// parse builds the key of the frame at base in s->key (base > 0: a
// tunnel packet's inner frame, whose tags are in the frame); -1: not a
// frame the fast path keys exactly as packet.Parse does.
INLINE int parse(struct __sk_buff *skb, struct scratch *s, __u32 inport, __u32 base)
{
	__u8 *k = (__u8 *)s->key;
	__u8 *b = s->buf;
	__u32 len = skb->len;

#pragma unroll
	for (int i = 0; i < KEY_WORDS; i++)
		s->key[i] = 0;
#pragma unroll
	for (int i = 0; i < PREFIX / 8; i++)
		((__u64 *)b)[i] = 0;
	if (base > len)
		return -1;
	len -= base;
	if (len < 14 || len > 0xffff)
		return -1;
	__u64 n = len; // 64 bits: the verifier must see the bounds on what is passed
	if (n > BUF)
		n = BUF;
	if (n < 14 || bpf_skb_load_bytes(skb, base, b, n) < 0)
		return -1;
	copy_bytes(k + K_DLDST, b, 6);
	copy_bytes(k + K_DLSRC, b + 6, 6);
	put32(k, K_INPORT, inport);
	__u16 typ = be16(b + 12);
	if (typ == 0x8100 || typ == 0x88a8 || typ < 0x0600)
		return -1; // a tag in the frame (QinQ), or 802.3: gvsd's
	if (base == 0 && skb->vlan_present) {
		put16(k, K_VLANTCI, (__u16)skb->vlan_tci | 0x1000);
		put16(k, K_VLANTPID, __builtin_bswap16((__u16)skb->vlan_proto));
	}
	put16(k, K_DLTYPE, typ);
	switch (typ) {
	case 0x0800:
		return parse_ipv4(k, b, n, len);
	case 0x86dd:
		return parse_ipv6(k, b, n, len);
	case 0x0806:
	case 0x8035:
		return parse_arp(k, b, n, len);
	case 0x8847:
	case 0x8848:
		return -1;
	}
	return 0;
}

// lookup returns the flow of the key in s, or 0.
INLINE struct flow_val *lookup(struct scratch *s, struct port_rec *pr)
{
	__u32 zero = 0;
	__u64 *gen = bpf_map_lookup_elem(&gvs_gen, &zero);
	if (!gen)
		return 0;
	struct flow_key *lk = &s->lk;
	for (__u32 m = 0; m < MAX_MASKS; m++) {
		if (m >= pr->nmasks)
			break;
		__u32 mi = pr->slot * MAX_MASKS + m;
		struct mask_rec *mr = bpf_map_lookup_elem(&gvs_masks, &mi);
		if (!mr || mr->nwords == 0)
			continue;
		lk->port = pr->slot;
		lk->mask = m;
		for (__u32 w = 0; w < MASK_WORDS; w++) {
			__u64 v = 0;
			if (w < mr->nwords)
				v = s->key[mr->idx[w] & 63] & mr->mwrd[w];
			lk->vals[w] = v;
		}
		struct flow_val *fv = bpf_map_lookup_elem(&gvs_flows, lk);
		if (!fv)
			continue;
		if (fv->gen != *gen || (fv->expires && bpf_ktime_get_coarse_ns() + COARSE_SLACK >= fv->expires)) {
			// Stale: gvsd removes it when it sweeps. A flow of another
			// mask may be this packet's, as gvsd's lookup goes on too.
			count(CTR_STALE);
			continue;
		}
		return fv;
	}
	return 0;
}

// last_output is the index of fv's last output (or encapsulation), -1
// for none.
INLINE int last_output(struct flow_val *fv)
{
	int last = -1;
	for (int i = 0; i < MAX_OPS; i++) {
		if (i >= fv->nops)
			break;
		if (fv->ops[i].kind == OP_OUTPUT || fv->ops[i].kind == OP_ENCAP)
			last = i;
	}
	return last;
}

// encap_fits reports whether the kernel can send the packet as fv says:
// a flow that ends in a tunnel can if the tunnel has a route now, the
// packet is IPv4, has no tag in its metadata (gvsd puts it in the frame), is not
// a super-frame and fits the route's MTU and its own device's once
// encapsulated, and its checksum is not left to the hardware (a
// partial one would reach a receiver that is not our fast path
// unfinished). gvsd sends the others itself, as without a fast path.
INLINE int encap_fits(struct __sk_buff *skb, struct flow_val *fv)
{
	int last = last_output(fv);
	if (last < 0 || last >= MAX_OPS || fv->ops[last].kind != OP_ENCAP)
		return 1;
	__u32 slot = fv->ops[last].port;
	struct tunnel_rec *t = bpf_map_lookup_elem(&gvs_tunnels, &slot);
	if (!t || !t->ifindex || t->hdrlen < 14 + 20 + 4 || t->hdrlen > TUN_HDR || skb->vlan_present)
		return 0;
	if (skb->protocol != __builtin_bswap16(0x0800))
		return 0; // inner IPv4 only: what the kernel's encapsulation surely handles
	if (skb->len + t->hdrlen - 14 > t->mtu) // the outer IPv4 packet's length
		return 0;
	struct sk_buff___gvs *kskb = bpf_cast_to_kern_ctx(skb);
	return READ_BITFIELD(kskb, ip_summed) != CHECKSUM_PARTIAL;
}

#define ACCEPT 0xffffffff

// classify makes the socket filter's decision: 0 for a packet of a
// flow, whose actions it leaves in the verdict; 1 for a packet of no
// flow; 2 for one the fast path does not key.
INLINE int classify(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct verdict *v = bpf_map_lookup_elem(&gvs_verdict, &zero);
	if (!v)
		return 2;
	v->valid = 0;
	__u32 ifindex = skb->ifindex;
	struct port_rec *pr = bpf_map_lookup_elem(&gvs_ports, &ifindex);
	if (!pr)
		return 2;
	struct scratch *s = bpf_map_lookup_elem(&gvs_scratch, &zero);
	if (!s)
		return 2;
	if (parse(skb, s, pr->inport, 0) < 0) {
		count(CTR_UNPARSED);
		return 2;
	}
	struct flow_val *fv = lookup(s, pr);
	if (!fv) {
		count(CTR_MISS);
		return 1;
	}
	if (!encap_fits(skb, fv)) {
		count(CTR_TUNNEL_SLOW);
		return 1;
	}
	__builtin_memcpy(&v->fv, fv, sizeof(*fv));
	__builtin_memcpy(v->prefix, s->buf, PREFIX);
	v->ifindex = ifindex;
	v->len = skb->len;
	v->tci = skb->vlan_present ? (skb->vlan_tci | 0x10000) : 0;
	v->valid = 1;
	return 0;
}

SEC("socket")
int gvs_sockfilter(struct __sk_buff *skb)
{
	return classify(skb) == 0 ? 0 : ACCEPT;
}

// gvs_classify is the socket filter's decision in a tc program, whose
// test runs see the frame from its Ethernet header as a packet socket
// does (a socket filter's test runs start at the network header): the
// tests run it to compare the key it builds with packet.Parse's.
SEC("tc")
int gvs_classify(struct __sk_buff *skb)
{
	return classify(skb);
}

INLINE void count_tx(__u16 slot, __u32 len, int ok)
{
	__u32 k = slot;
	struct port_stats *ps = bpf_map_lookup_elem(&gvs_port_stats, &k);
	if (!ps)
		return;
	if (ok) {
		ps->tx_packets++;
		ps->tx_bytes += len;
	} else {
		ps->tx_dropped++;
	}
}

// wire_len is the packet's length with its VLAN tag, as gvsd counts it.
INLINE __u32 wire_len(struct __sk_buff *skb) { return skb->len + (skb->vlan_present ? 4 : 0); }

// encap puts the GRE tunnel's headers (rec t) in front of the frame
// and sends it out of the route's device: the IPv4 and GRE headers
// gvsd's direct sending writes, whose outer IPv4 total length and
// checksum are the only fields that change per packet.
INLINE int encap(struct __sk_buff *skb, struct tunnel_rec *t)
{
	__u8 eth[14];
	__u8 h[TUN_HDR];
	__u32 hl = t->hdrlen;
	if (hl < 14 + 20 + 4 || hl > TUN_HDR || bpf_skb_load_bytes(skb, 0, eth, 14) < 0)
		return -1;
	__builtin_memcpy(h, t->hdr, TUN_HDR);
	// Room for IPv4, GRE and the inner Ethernet header after the frame's
	// own, which is then copied there: the frame moves in whole.
	__u64 flags = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_GRE |
		      BPF_F_ADJ_ROOM_ENCAP_L2_ETH | BPF_F_ADJ_ROOM_ENCAP_L2(14);
	if (bpf_skb_adjust_room(skb, hl, BPF_ADJ_ROOM_MAC, flags) < 0)
		return -1;
	__u32 tot = skb->len - 14;
	h[16] = tot >> 8;
	h[17] = tot;
	h[24] = h[25] = 0;
	__u32 sum = 0;
#pragma unroll
	for (int i = 14; i < 34; i += 2)
		sum += (__u32)h[i] << 8 | h[i + 1];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = ~sum & 0xffff;
	h[24] = sum >> 8;
	h[25] = sum;
	if (bpf_skb_store_bytes(skb, 0, h, hl, 0) < 0 || bpf_skb_store_bytes(skb, hl, eth, 14, 0) < 0)
		return -1;
	// The kernel's neighbour layer writes the outer Ethernet header (the
	// next hop's address, resolved and confirmed as for its own packets).
	return bpf_redirect_neigh(t->ifindex, 0, 0, 0);
}

// exec_ops runs fv's actions on the packet and returns the tc verdict.
INLINE int exec_ops(struct __sk_buff *skb, struct flow_val *fv)
{
	__u32 saved_present = 0, saved_tci = 0, saved_proto = 0;
	int last = last_output(fv);
	for (int i = 0; i < MAX_OPS; i++) {
		if (i >= fv->nops || i > last)
			break;
		struct op *o = &fv->ops[i];
		switch (o->kind) {
		case OP_OUTPUT:
			if (i == last) {
				count_tx(o->port, wire_len(skb), 1);
				return bpf_redirect(o->ifindex, 0);
			}
			count_tx(o->port, wire_len(skb), bpf_clone_redirect(skb, o->ifindex, 0) == 0);
			break;
		case OP_ENCAP: {
			// Always the last action (the datapath makes it so).
			__u32 slot = o->port, len = wire_len(skb);
			struct tunnel_rec *t = bpf_map_lookup_elem(&gvs_tunnels, &slot);
			int ret = t && t->ifindex ? encap(skb, t) : -1;
			count_tx(o->port, len, ret >= 0);
			if (ret < 0) {
				count(CTR_ERROR);
				return TC_ACT_SHOT;
			}
			return ret;
		}
		case OP_PUSH_VLAN:
			if (bpf_skb_vlan_push(skb, __builtin_bswap16(o->tpid), o->tci) < 0) {
				count(CTR_ERROR);
				return TC_ACT_SHOT;
			}
			break;
		case OP_POP_VLAN:
		case OP_UNDO_PUSH:
			if (bpf_skb_vlan_pop(skb) < 0) {
				count(CTR_ERROR);
				return TC_ACT_SHOT;
			}
			break;
		case OP_SAVE_VLAN:
			saved_present = skb->vlan_present;
			saved_tci = skb->vlan_tci;
			saved_proto = skb->vlan_proto;
			break;
		case OP_UNDO_POP:
			if (saved_present && bpf_skb_vlan_push(skb, (__be16)saved_proto, (__u16)saved_tci) < 0) {
				count(CTR_ERROR);
				return TC_ACT_SHOT;
			}
			break;
		}
	}
	return TC_ACT_SHOT; // a flow without output: drop
}

// count_hit counts a packet of flow fv received on port slot.
INLINE void count_hit(struct flow_val *fv, __u32 slot, __u32 len)
{
	__u32 id = fv->id;
	struct flow_stats *fs = bpf_map_lookup_elem(&gvs_flow_stats, &id);
	if (fs) {
		fs->packets++;
		fs->bytes += len;
		fs->used = bpf_ktime_get_coarse_ns();
	}
	struct port_stats *ps = bpf_map_lookup_elem(&gvs_port_stats, &slot);
	if (ps) {
		ps->rx_packets++;
		ps->rx_bytes += len;
	}
	count(CTR_HIT);
}

SEC("tc")
int gvs_ingress(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct verdict *v = bpf_map_lookup_elem(&gvs_verdict, &zero);
	if (!v || !v->valid)
		return TC_ACT_UNSPEC;
	v->valid = 0;
	__u32 tci = skb->vlan_present ? (skb->vlan_tci | 0x10000) : 0;
	if (v->ifindex != skb->ifindex || v->len != skb->len || v->tci != tci)
		goto other;
	struct scratch *s = bpf_map_lookup_elem(&gvs_scratch, &zero);
	if (!s)
		goto other;
	__u8 *b = s->buf;
#pragma unroll
	for (int i = 0; i < PREFIX / 8; i++)
		((__u64 *)b)[i] = 0;
	__u32 n = skb->len;
	if (n > PREFIX)
		n = PREFIX;
	if (n < 14 || bpf_skb_load_bytes(skb, 0, b, n) < 0)
		goto other;
#pragma unroll
	for (int i = 0; i < PREFIX / 8; i++)
		if (((__u64 *)b)[i] != v->prefix[i])
			goto other;

	__u32 ifindex = skb->ifindex;
	struct port_rec *pr = bpf_map_lookup_elem(&gvs_ports, &ifindex);
	count_hit(&v->fv, pr ? pr->slot : MAX_PORTS, wire_len(skb));
	return exec_ops(skb, &v->fv);
other:
	// The verdict is not this packet's: this packet skipped the packet
	// taps (and so gvsd's socket, as it would without a fast path), and
	// the verdict's own packet never reached tc. Count it; the packet
	// goes on as if there were no fast path.
	count(CTR_LOST_VERDICT);
	return TC_ACT_UNSPEC;
}

// GRE flags and version (RFC 2784, 2890): the key bit alone, or none.
#define GRE_KEY 0x2000
#define ETH_P_TEB 0x6558
#define TUN_FLAG_KEY 8 // packet.TunFlagKey

// decap_hdr reads the outer headers of a GRE packet for one of gvsd's
// tunnel ports: the port's record and the inner frame's offset, 0 for a
// packet the kernel leaves to gvsd (its raw socket), as anything but
// Ethernet over GRE with at most a key, in an IPv4 packet without
// options whose header checksum is right, from a known remote to this
// host, whole and not a super-frame.
INLINE __u32 decap_hdr(struct __sk_buff *skb, struct scratch *s, struct port_rec **prp)
{
	__u8 *b = s->buf;
	__u32 len = skb->len;
	if (skb->vlan_present || skb->pkt_type != 0 /* PACKET_HOST */ || skb->gso_size || len < 14 + 20 + 4 + 14 || len > 0xffff)
		return 0;
	if (bpf_skb_load_bytes(skb, 0, b, 14 + 20 + 8) < 0)
		return 0;
	if (be16(b + 12) != 0x0800 || b[14] != 0x45 || b[23] != 47)
		return 0; // IPv4 without options carrying GRE
	if (be16(b + 16) != len - 14 || (be16(b + 20) & 0x3fff))
		return 0; // padded, or a fragment
	__u32 sum = 0;
#pragma unroll
	for (int i = 14; i < 34; i += 2)
		sum += be16(b + i);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	if (sum != 0xffff)
		return 0; // a bad header checksum: the kernel drops it, as before
	__u16 gflags = be16(b + 34);
	if ((gflags != 0 && gflags != GRE_KEY) || be16(b + 36) != ETH_P_TEB)
		return 0;
	struct tun_rx_key rk = {};
	copy_bytes((__u8 *)&rk.src, b + 26, 4);
	copy_bytes((__u8 *)&rk.dst, b + 30, 4);
	__u32 inner = 14 + 20 + 4;
	if (gflags == GRE_KEY) {
		rk.key = (__u32)be16(b + 38) << 16 | be16(b + 40);
		inner += 4;
	}
	struct port_rec *pr = bpf_map_lookup_elem(&gvs_tun_rx, &rk);
	if (!pr)
		return 0;
	*prp = pr;
	return inner;
}

// tun_meta fills the key's tunnel metadata as packet.TunnelMeta's
// SetReceived does for a GRE packet (outer headers still in s->buf's
// first bytes: decap_hdr's read).
INLINE void tun_meta(__u8 *k, const __u8 *outer, int has_key)
{
	if (has_key) {
		*(__u64 *)(k + K_TUNID) = (__u64)((__u32)be16(outer + 38) << 16 | be16(outer + 40));
		put16(k, K_TUNFLAGS, TUN_FLAG_KEY);
	}
	copy_bytes(k + K_TUNSRC, outer + 26, 4);
	copy_bytes(k + K_TUNDST, outer + 30, 4);
	k[K_TUNTOS] = outer[15];
	k[K_TUNTTL] = outer[22];
}

// gvs_decap, on the device a GRE tunnel's route uses, decapsulates the
// packets of the tunnel ports' cached flows and runs their actions;
// every other packet goes on to the kernel (and the tunnel's packets to
// gvsd's raw socket). gvsd has no packet socket on this device, so the
// decision is made here, not in a socket filter.
SEC("tc")
int gvs_decap(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&gvs_scratch, &zero);
	if (!s)
		return TC_ACT_UNSPEC;
	struct port_rec *pr = 0;
	__u32 inner = decap_hdr(skb, s, &pr);
	if (!inner || !pr)
		return TC_ACT_UNSPEC;
	__u8 outer[14 + 20 + 8];
	__builtin_memcpy(outer, s->buf, sizeof(outer));
	if (parse(skb, s, pr->inport, inner) < 0) {
		count(CTR_UNPARSED);
		return TC_ACT_UNSPEC;
	}
	if (*(__u16 *)((__u8 *)s->key + K_DLTYPE) != 0x0800) {
		count(CTR_UNPARSED);
		return TC_ACT_UNSPEC; // inner IPv4 only: skb->protocol stays the outer one's
	}
	tun_meta((__u8 *)s->key, outer, inner == 14 + 20 + 8);
	struct flow_val *fv = lookup(s, pr);
	if (!fv) {
		count(CTR_MISS);
		return TC_ACT_UNSPEC;
	}
	if (!encap_fits(skb, fv)) { // a tunnel into a tunnel: conservative, outer length
		count(CTR_TUNNEL_SLOW);
		return TC_ACT_UNSPEC;
	}
	// Off with the outer headers and the inner Ethernet header after
	// the outer one, whose place the inner one then takes.
	__u8 eth[14];
	if (bpf_skb_load_bytes(skb, inner, eth, 14) < 0)
		return TC_ACT_UNSPEC;
	if (bpf_skb_adjust_room(skb, -(__s32)inner, BPF_ADJ_ROOM_MAC, 0) < 0) {
		count(CTR_UNPARSED);
		return TC_ACT_UNSPEC;
	}
	if (bpf_skb_store_bytes(skb, 0, eth, 14, 0) < 0) {
		count(CTR_ERROR);
		return TC_ACT_SHOT;
	}
	count_hit(fv, pr->slot, skb->len);
	return exec_ops(skb, fv);
}

char _license[] SEC("license") = "GPL";
