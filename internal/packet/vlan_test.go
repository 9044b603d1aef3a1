package packet

import (
	"bytes"
	"errors"
	"testing"
)

// inBuffer copies frame into a fresh buffer at the given headroom, the way
// the packet path lays frames out, and returns the buffer and the frame.
func inBuffer(frame []byte, headroom, tailroom int) (buf, f []byte) {
	buf = make([]byte, headroom+len(frame)+tailroom)
	copy(buf[headroom:], frame)
	return buf, buf[headroom : headroom+len(frame)]
}

func TestPushVLANIntoHeadroom(t *testing.T) {
	buf, frame := inBuffer(frameTCP4, Headroom, 0)
	pushed, err := PushVLAN(buf, frame, EtherTypeVLAN, 0x2064)
	if err != nil {
		t.Fatal(err)
	}
	want := cat(ethHdr(macB, macA, EtherTypeVLAN), be16(0x2064), frameTCP4[12:])
	if !bytes.Equal(pushed, want) {
		t.Fatalf("pushed frame\n got %x\nwant %x", pushed, want)
	}
	if &pushed[VLANTagLen] != &frame[0] {
		t.Error("the push moved more than the MAC addresses: the tag should go into the headroom")
	}
	var key Key
	if err := Parse(pushed, 0, &key, nil); err != nil {
		t.Fatal(err)
	}
	if key.VLANTCI != 0x3064 || key.TpDst != 80 {
		t.Errorf("parsed pushed frame: VLANTCI %#x TpDst %d, want 0x3064 80", key.VLANTCI, key.TpDst)
	}
}

func TestPushVLANTwiceMakesQinQ(t *testing.T) {
	buf, frame := inBuffer(frameTCP4, Headroom, 0)
	frame, err := PushVLAN(buf, frame, EtherTypeVLAN, 10)
	if err != nil {
		t.Fatal(err)
	}
	frame, err = PushVLAN(buf, frame, EtherTypeQinQ, 20)
	if err != nil {
		t.Fatal(err)
	}
	var key Key
	if err := Parse(frame, 0, &key, nil); err != nil {
		t.Fatal(err)
	}
	if key.VLANTCI != 0x1014 || key.InnerVLANTCI != 0x100a || key.DlType != EtherTypeIPv4 {
		t.Errorf("outer %#x inner %#x type %#x, want 0x1014 0x100a 0x0800", key.VLANTCI, key.InnerVLANTCI, key.DlType)
	}
	if VLANTag(frame[12:]).TPID() != EtherTypeQinQ {
		t.Errorf("outer TPID %#x, want 0x88a8", VLANTag(frame[12:]).TPID())
	}
}

func TestPushVLANIntoTailroom(t *testing.T) {
	buf, frame := inBuffer(frameTCP4, 2, 10)
	pushed, err := PushVLAN(buf, frame, EtherTypeVLAN, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := cat(ethHdr(macB, macA, EtherTypeVLAN), be16(7), frameTCP4[12:])
	if !bytes.Equal(pushed, want) {
		t.Fatalf("pushed frame\n got %x\nwant %x", pushed, want)
	}
	if &pushed[0] != &frame[0] {
		t.Error("with too little headroom the frame should grow in place")
	}
}

func TestPushVLANWithoutRoom(t *testing.T) {
	buf, frame := inBuffer(frameTCP4, 3, 3)
	got, err := PushVLAN(buf, frame, EtherTypeVLAN, 7)
	if !errors.Is(err, ErrNoRoom) {
		t.Errorf("error %v, want ErrNoRoom", err)
	}
	if !bytes.Equal(got, frameTCP4) {
		t.Error("a failed push changed the frame")
	}
}

func TestPushVLANRejectsForeignFrame(t *testing.T) {
	buf := make([]byte, 200)
	other := bytes.Clone(frameTCP4)
	if _, err := PushVLAN(buf, other, EtherTypeVLAN, 7); !errors.Is(err, ErrNotInBuffer) {
		t.Errorf("frame from another array: error %v, want ErrNotInBuffer", err)
	}
	capped := buf[Headroom/2 : Headroom/2+20 : Headroom/2+20]
	if _, err := PushVLAN(buf, capped, EtherTypeVLAN, 7); !errors.Is(err, ErrNotInBuffer) {
		t.Errorf("frame with capped capacity: error %v, want ErrNotInBuffer", err)
	}
	if _, err := PushVLAN(buf, buf[10:15], EtherTypeVLAN, 7); !errors.Is(err, ErrTruncated) {
		t.Errorf("5-byte frame: error %v, want ErrTruncated", err)
	}
}

func TestPopVLAN(t *testing.T) {
	buf, frame := inBuffer(frameVLANUDP4, Headroom, 0)
	popped := PopVLAN(frame)
	want := cat(frameVLANUDP4[:12], frameVLANUDP4[16:])
	if !bytes.Equal(popped, want) {
		t.Fatalf("popped frame\n got %x\nwant %x", popped, want)
	}
	// The freed bytes became headroom: pushing the tag back restores the
	// original frame in the original place.
	again, err := PushVLAN(buf, popped, EtherTypeVLAN, 0xa005)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, frameVLANUDP4) || &again[0] != &frame[0] {
		t.Error("push after pop did not restore the frame in place")
	}
}

func TestPopVLANUntagged(t *testing.T) {
	frame := bytes.Clone(frameTCP4)
	if got := PopVLAN(frame); !bytes.Equal(got, frameTCP4) {
		t.Error("popping an untagged frame changed it")
	}
	short := frameVLANUDP4[:17]
	if got := PopVLAN(short); len(got) != len(short) {
		t.Error("popping a cut-short tag changed the frame")
	}
}

func TestSetVLAN(t *testing.T) {
	frame := bytes.Clone(frameVLANUDP4) // TCI 0xa005: PCP 5, VID 5
	if !SetVLAN(frame, 0x0123, VLANVIDMask) {
		t.Fatal("SetVLAN on a tagged frame reported no tag")
	}
	if tci := VLANTag(frame[12:]).TCI(); tci != 0xa123 {
		t.Errorf("after VID change TCI %#x, want 0xa123", tci)
	}
	SetVLAN(frame, 3<<VLANPCPShift, VLANPCPMask)
	if tci := VLANTag(frame[12:]).TCI(); tci != 0x6123 {
		t.Errorf("after PCP change TCI %#x, want 0x6123", tci)
	}
	untagged := bytes.Clone(frameTCP4)
	if SetVLAN(untagged, 5, 0xffff) || !bytes.Equal(untagged, frameTCP4) {
		t.Error("SetVLAN changed an untagged frame")
	}
}

func TestVLANEditsDoNotAllocate(t *testing.T) {
	buf, frame := inBuffer(frameTCP4, Headroom, 0)
	allocs := testing.AllocsPerRun(1000, func() {
		f, err := PushVLAN(buf, frame, EtherTypeVLAN, 100)
		if err != nil {
			panic(err)
		}
		SetVLAN(f, 200, VLANVIDMask)
		frame = PopVLAN(f)
	})
	if allocs != 0 {
		t.Errorf("push/set/pop allocated %v times per run, want 0", allocs)
	}
	if !bytes.Equal(frame, frameTCP4) {
		t.Error("push then pop did not give the frame back")
	}
}

func TestVLANHeaders(t *testing.T) {
	f := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0xa0, 0x0a, 0x88, 0xb5, 'x'}
	var key Key
	var off Offsets
	if err := Parse(f, 1, &key, &off); err != nil {
		t.Fatal(err)
	}
	hs, n := VLANHeaders(f, &off, 2)
	if n != 2 || hs[0] != (VLANHeader{EtherTypeQinQ, 100}) || hs[1] != (VLANHeader{EtherTypeVLAN, 0xa00a}) {
		t.Errorf("VLANHeaders(limit 2) = %v, %d", hs, n)
	}
	if hs, n := VLANHeaders(f, &off, 1); n != 1 || hs[1] != (VLANHeader{}) {
		t.Errorf("VLANHeaders(limit 1) = %v, %d", hs, n)
	}
	// Offsets that do not fit the frame read nothing past its end.
	if _, n := VLANHeaders(f[:15], &off, 2); n != 0 {
		t.Errorf("VLANHeaders of a cut frame = %d headers", n)
	}
}
