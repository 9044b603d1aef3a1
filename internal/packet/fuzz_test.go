package packet

import (
	"bytes"
	"testing"
)

// FuzzParse feeds Parse arbitrary frames. Beyond not panicking, it checks
// what must hold for any input: offsets inside the frame and in order,
// checksum writers that stay inside the frame, and
// that a VLAN push (into headroom) and pop around the frame change exactly
// the VLAN fields of its key and leave the frame as it was.
func FuzzParse(f *testing.F) {
	for _, s := range oracleSeeds() {
		f.Add(s)
	}
	for _, tc := range parseCases() {
		f.Add(tc.frame)
	}
	buf := make([]byte, Headroom+maxParsedLen+VLANTagLen)
	f.Fuzz(func(t *testing.T, frame []byte) {
		var key Key
		var off Offsets
		_ = Parse(frame, 3, &key, &off)
		checkOffsets(t, frame, &key, &off)
		checkChecksumsDoNotPanic(frame, &off)
		if key.InnerVLANTCI != 0 || len(frame) < EthernetLen || len(frame) > maxParsedLen-VLANTagLen {
			return // a push would move a tag out of the parsed part
		}
		checkPushPop(t, buf, frame, &key)
	})
}

func checkOffsets(t *testing.T, frame []byte, key *Key, off *Offsets) {
	n := len(frame)
	for _, o := range []uint16{off.VLAN, off.L3, off.L4, off.Payload, off.L3End} {
		if int(o) > n {
			t.Fatalf("offset %d past the %d-byte frame: %+v", o, n, off)
		}
	}
	if off.L4 != 0 && (off.L4 < off.L3 || off.Payload < off.L4 || off.Payload > off.L3End) {
		t.Fatalf("offsets out of order: %+v", off)
	}
	if (key.VLANTCI != 0) != (off.VLAN != 0) || int(off.NumVLANs) > MaxVLANs {
		t.Fatalf("VLAN offsets %+v disagree with TCI %#x", off, key.VLANTCI)
	}
	if key.InPort != 3 {
		t.Fatalf("InPort %d, want 3", key.InPort)
	}
}

func checkPushPop(t *testing.T, buf, frame []byte, key *Key) {
	in := buf[Headroom : Headroom+len(frame)]
	copy(in, frame)
	pushed, err := PushVLAN(buf, in, EtherTypeVLAN, 0x0abc)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	var pushedKey Key
	_ = Parse(pushed, 3, &pushedKey, nil)
	want := *key
	want.VLANTCI, want.InnerVLANTCI = 0x1abc, key.VLANTCI
	if pushedKey != want {
		t.Fatalf("key after push\n got %+v\nwant %+v", pushedKey, want)
	}
	if popped := PopVLAN(pushed); !bytes.Equal(popped, frame) {
		t.Fatalf("pop after push gave %x, want %x", popped, frame)
	}
}

// checkChecksumsDoNotPanic runs the checksum writers over a copy of the
// frame, with Parse's offsets and with offsets taken from the frame's own
// bytes: they must reject what does not fit rather than panic.
func checkChecksumsDoNotPanic(frame []byte, off *Offsets) {
	c := bytes.Clone(frame)
	_ = RecomputeChecksums(c, off)
	if len(c) >= 2 {
		_ = FinishChecksum(c, int(c[0]), int(c[1]))
	}
}
