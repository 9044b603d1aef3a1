package span

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf/btf"
)

// kernelSkbCsum reads, once, where the running kernel keeps an skb's
// checksum state; tests replace it to make the kernel lack it.
var kernelSkbCsum = sync.OnceValues(readSkbCsum)

// readSkbCsum finds bpf_cast_to_kern_ctx (Linux 6.2) and the fields of
// struct sk_buff in the kernel's BTF: the offsets are this kernel's own
// (what CO-RE relocations would give a compiled program).
func readSkbCsum() (*SkbCsum, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("reading the kernel's BTF: %w", err)
	}
	var fn *btf.Func
	if err := spec.TypeByName("bpf_cast_to_kern_ctx", &fn); err != nil {
		return nil, fmt.Errorf("kfunc bpf_cast_to_kern_ctx (Linux 6.2 or later): %w", err)
	}
	id, err := spec.TypeID(fn)
	if err != nil {
		return nil, fmt.Errorf("kfunc bpf_cast_to_kern_ctx: %w", err)
	}
	var skb *btf.Struct
	if err := spec.TypeByName("sk_buff", &skb); err != nil {
		return nil, fmt.Errorf("struct sk_buff: %w", err)
	}
	return skbCsumOf(skb, int32(id))
}

// skbCsumOf finds the fields in sk_buff's layout.
func skbCsumOf(skb *btf.Struct, kfunc int32) (*SkbCsum, error) {
	c := &SkbCsum{CastKfunc: kfunc}
	summed, ok := findMember(skb.Members, "ip_summed", 0)
	if !ok || summed.BitfieldSize == 0 || summed.BitfieldSize > 2 {
		return nil, errors.New("struct sk_buff: no 2-bit field ip_summed")
	}
	bit, size := uint32(summed.Offset), uint32(summed.BitfieldSize)
	if bit%8+size > 8 {
		return nil, errors.New("struct sk_buff: ip_summed spans two bytes")
	}
	shift := bit % 8
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		// Big-endian bit-fields count from the byte's top bit.
		shift = 8 - shift - size
	}
	c.Summed, c.SummedShift = int16(bit/8), uint8(shift)
	for _, f := range []struct {
		name string
		off  *int16
	}{{"csum_start", &c.Start}, {"csum_offset", &c.Offset}, {"mac_header", &c.MacHeader}} {
		m, ok := findMember(skb.Members, f.name, 0)
		if !ok || m.BitfieldSize != 0 || m.Offset%8 != 0 || m.Offset/8 > 0x7fff {
			return nil, fmt.Errorf("struct sk_buff: no field %s", f.name)
		}
		if sz, err := btf.Sizeof(m.Type); err != nil || sz != 2 {
			return nil, fmt.Errorf("struct sk_buff: field %s is not 16 bits", f.name)
		}
		*f.off = int16(m.Offset / 8)
	}
	return c, nil
}

// findMember finds a field by name, inside the anonymous structs and
// unions too, and returns it with its offset from the outer struct.
func findMember(ms []btf.Member, name string, base btf.Bits) (btf.Member, bool) {
	for _, m := range ms {
		m.Offset += base
		if m.Name == name {
			return m, true
		}
		if m.Name != "" {
			continue
		}
		var inner []btf.Member
		switch t := btf.UnderlyingType(m.Type).(type) {
		case *btf.Struct:
			inner = t.Members
		case *btf.Union:
			inner = t.Members
		}
		if f, ok := findMember(inner, name, m.Offset); ok {
			return f, true
		}
	}
	return btf.Member{}, false
}
