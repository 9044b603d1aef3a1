package openflow

import (
	"reflect"
	"testing"
)

// The fuzz targets check two things of every decoder: it never panics on
// any input, and what it accepts re-encodes to something that decodes to
// the same value (the bytes may differ only in padding it ignores).
// Seeds: testdata/fuzz/<target>/, built from the ovs-ofctl captures and
// the malformed requests OVS refused.

func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte{1, 0, 0, 8, 0, 0, 0, 1})
	// An OpenFlow 1.3 flow mod: conj_id=5 (NXM_NX_CONJ_ID in the OXM
	// match), actions=conjunction(5,2/3).
	f.Add([]byte{4, 14, 0, 88, 0, 0, 0, 2,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // cookie, mask
		0, 0, 0, 0, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
		0, 1, 0, 12, 0, 1, 0x4a, 4, 0, 0, 0, 5, 0, 0, 0, 0, // match
		0, 4, 0, 24, 0, 0, 0, 0, // apply_actions
		0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 34, 1, 3, 0, 0, 0, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, m, err := Decode(b)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			// The error reply to it must always be encodable.
			if _, err := Encode(Version10, h.Xid, ErrorFor(err, b)); err != nil {
				t.Fatalf("error reply: %v", err)
			}
			return
		}
		b2, err := Encode(h.Version, h.Xid, m)
		if err != nil {
			t.Fatalf("re-encode %T: %v", m, err)
		}
		h2, m2, err := Decode(b2)
		if err != nil {
			t.Fatalf("decode re-encoded %T: %v\n%x", m, err, b2)
		}
		if h2.Xid != h.Xid || h2.Version != h.Version || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed %T\n%+v\n%+v", m, m, m2)
		}
	})
}

func FuzzDecodeActions(f *testing.F) {
	f.Add(uint8(1), []byte{0, 0, 0, 8, 0, 1, 0, 0})
	f.Add(uint8(4), []byte{0, 0, 0, 16, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0, 0, 0, 0})
	// conjunction(7,1/2) and conjunction(7,2/2) (clauses from 0 on the
	// wire), and a bad one with n=1 that only ofproto refuses.
	conj := func(k, n uint8, id uint32) []byte {
		return []byte{0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 34, k, n, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
	}
	f.Add(uint8(1), append(conj(0, 2, 7), conj(1, 2, 7)...))
	f.Add(uint8(4), append(conj(0, 1, 0xffffffff), 0, 0, 0, 8, 0, 1, 0, 0))
	f.Fuzz(func(t *testing.T, v uint8, b []byte) {
		v = []uint8{Version10, Version13, Version14, Version15}[v&3]
		acts, err := DecodeActions(b, v)
		if err != nil {
			return
		}
		b2, err := EncodeActions(nil, v, acts)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		acts2, err := DecodeActions(b2, v)
		if err != nil || !reflect.DeepEqual(acts, acts2) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, acts, acts2)
		}
	})
}

func FuzzDecodeInstructions(f *testing.F) {
	f.Add([]byte{0, 1, 0, 8, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		insts, err := DecodeInstructions(b)
		if err != nil {
			return
		}
		b2, err := EncodeInstructions(nil, insts)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		insts2, err := DecodeInstructions(b2)
		if err != nil || !reflect.DeepEqual(insts, insts2) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, insts, insts2)
		}
	})
}

func FuzzDecodeMatch(f *testing.F) {
	f.Add([]byte{0, 0, 6, 2, 8, 0})
	f.Add([]byte{0xff, 0xff, 0x55, 0x08, 0x4f, 0x4e, 0x46, 0, 0, 2, 0, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := decodeFields(b)
		if err != nil {
			return
		}
		w := &writer{}
		encodeFields(w, fs)
		fs2, err := decodeFields(w.b)
		if err != nil || !equalFields(fs, fs2) || len(w.b) != fieldsLen(fs) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, fs, fs2)
		}
	})
}
