package packet

import (
	"reflect"
	"testing"
)

// TestKeyIsPlainMemory checks what lets Key be hashed and compared as one
// block of memory: only fixed-size value fields, and no padding between
// or after them.
func TestKeyIsPlainMemory(t *testing.T) {
	typ := reflect.TypeOf(Key{})
	if !typ.Comparable() {
		t.Fatal("Key is not comparable")
	}
	var end uintptr
	for i := range typ.NumField() {
		f := typ.Field(i)
		switch f.Type.Kind() {
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Array:
		default:
			t.Errorf("field %s is a %s: only integers and arrays keep Key plain memory", f.Name, f.Type)
		}
		if f.Offset != end {
			t.Errorf("%d bytes of padding before field %s: reorder the fields", f.Offset-end, f.Name)
		}
		end = f.Offset + f.Type.Size()
	}
	if end != typ.Size() {
		t.Errorf("%d bytes of padding at the end of Key (size %d): add or reorder fields", typ.Size()-end, typ.Size())
	}
}

func TestKeyWorksAsMapKey(t *testing.T) {
	var a, b Key
	if err := Parse(frameTCP4, 1, &a, nil); err != nil {
		t.Fatal(err)
	}
	if err := Parse(frameTCP4, 2, &b, nil); err != nil {
		t.Fatal(err)
	}
	m := map[Key]int{a: 1, b: 2}
	var again Key
	_ = Parse(frameTCP4, 1, &again, nil)
	if m[again] != 1 || len(m) != 2 {
		t.Errorf("map lookup by an equal key gave %d (map of %d), want 1 (map of 2)", m[again], len(m))
	}
}

func TestOffsetsFollowVLANEdits(t *testing.T) {
	off := Offsets{L3: 14, L4: 34, Payload: 54, L3End: 59}
	off.PushedVLAN()
	want := Offsets{VLAN: 12, NumVLANs: 1, L3: 18, L4: 38, Payload: 58, L3End: 63}
	if off != want {
		t.Fatalf("after push: %+v, want %+v", off, want)
	}
	off.PoppedVLAN()
	want = Offsets{L3: 14, L4: 34, Payload: 54, L3End: 59}
	if off != want {
		t.Fatalf("after pop: %+v, want %+v", off, want)
	}
	off.PoppedVLAN() // nothing to pop: unchanged
	if off != want {
		t.Fatalf("after popping an untagged frame: %+v, want %+v", off, want)
	}
	absent := Offsets{L3: 14}
	absent.PushedVLAN()
	if absent.L4 != 0 || absent.L3 != 18 {
		t.Errorf("absent offsets must stay 0: %+v", absent)
	}
}
