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
