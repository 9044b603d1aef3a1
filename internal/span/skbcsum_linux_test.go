package span

import (
	"testing"

	"github.com/cilium/ebpf/btf"
)

// skbCsumOf finds the fields inside anonymous structs and unions, with
// their offsets from the outer struct, and ip_summed's bit in its byte.
func TestSkbCsumOf(t *testing.T) {
	u8, u16 := &btf.Int{Name: "u8", Size: 1}, &btf.Int{Name: "u16", Size: 2}
	u32 := &btf.Int{Name: "u32", Size: 4}
	bits := &btf.Struct{Size: 2, Members: []btf.Member{
		{Name: "pkt_type", Type: u8, Offset: 0, BitfieldSize: 3},
		{Name: "ip_summed", Type: u8, Offset: 13, BitfieldSize: 2},
	}}
	csum := &btf.Union{Size: 4, Members: []btf.Member{
		{Name: "csum", Type: u32},
		{Type: &btf.Struct{Size: 4, Members: []btf.Member{{Name: "csum_start", Type: u16}, {Name: "csum_offset", Type: u16, Offset: 16}}}},
	}}
	skb := &btf.Struct{Name: "sk_buff", Size: 64, Members: []btf.Member{
		{Name: "len", Type: u32},
		{Type: bits, Offset: 8 * 8},
		{Type: csum, Offset: 16 * 8},
		{Name: "headers", Type: &btf.Struct{Size: 2, Members: []btf.Member{{Name: "mac_header", Type: u16}}}, Offset: 20 * 8},
		{Type: &btf.Struct{Size: 2, Members: []btf.Member{{Name: "mac_header", Type: u16}}}, Offset: 24 * 8},
	}}
	c, err := skbCsumOf(skb, 77)
	want := SkbCsum{CastKfunc: 77, Summed: 9, SummedShift: 5, Start: 16, Offset: 18, MacHeader: 24}
	if err != nil || *c != want {
		t.Fatalf("got %+v (%v), want %+v (a named struct's fields are not the skb's)", c, err, want)
	}
	skb.Members = skb.Members[:3]
	if _, err := skbCsumOf(skb, 77); err == nil {
		t.Fatal("no mac_header: accepted")
	}
}

// This kernel (6.18, with BTF) has what the program needs.
func TestReadSkbCsum(t *testing.T) {
	c, err := readSkbCsum()
	if err != nil {
		t.Fatal(err)
	}
	if c.CastKfunc <= 0 || c.Start <= 0 || c.Offset != c.Start+2 || c.MacHeader <= 0 || c.SummedShift > 6 {
		t.Fatalf("layout %+v", c)
	}
}
