package datapath_test

import (
	"bytes"
	"testing"

	"gvs/internal/datapath"
	"gvs/internal/packet"
)

// upcallRecorder keeps the frames an ActUserspace hands it.
type upcallRecorder struct{ frames [][]byte }

func (u *upcallRecorder) Upcall(frame []byte) {
	u.frames = append(u.frames, append([]byte(nil), frame...))
}

// TestExecutePacketOut checks the packet-out path: a frame from no port
// is translated with the given translator and executed, outputs sent
// (a VLAN push included) without a port thread, and too short a frame
// refused.
func TestExecutePacketOut(t *testing.T) {
	dp, _, ports := actionSwitch(t, 2)
	tr := &fixedTranslator{acts: []datapath.Action{datapath.Output(1),
		datapath.PushVLAN(packet.VLANHeader{TPID: packet.EtherTypeVLAN, TCI: 10}), datapath.Output(2)}}
	f := frame(bcast, macA, -1, 46)
	if err := dp.Execute(f, 0xffffffff, tr); err != nil {
		t.Fatal(err)
	}
	if tr.calls != 1 {
		t.Fatalf("translated %d times", tr.calls)
	}
	if sent := ports[1].Sent(); len(sent) != 1 || !bytes.Equal(sent[0], f) {
		t.Fatalf("port 1 got %x", sent)
	}
	if sent := ports[2].Sent(); len(sent) != 1 || !bytes.Equal(sent[0], frame(bcast, macA, 10, 46)) {
		t.Fatalf("port 2 got %x, want the frame tagged 10", sent)
	}
	if err := dp.Execute(f[:10], 1, tr); err == nil {
		t.Fatal("a 10-byte packet-out was executed")
	}
}

// TestExecuteUpcall checks that ActUserspace hands its Upcall the frame
// as the actions before it make it.
func TestExecuteUpcall(t *testing.T) {
	rec := &upcallRecorder{}
	dp, _, _ := actionSwitch(t, 1, datapath.Userspace(rec),
		datapath.PushVLAN(packet.VLANHeader{TPID: packet.EtherTypeVLAN, TCI: 7}), datapath.Userspace(rec))
	th := dp.NewTestThread(1)
	f := frame(bcast, macA, -1, 46)
	th.Process([][]byte{f})
	if len(rec.frames) != 2 || !bytes.Equal(rec.frames[0], f) || !bytes.Equal(rec.frames[1], frame(bcast, macA, 7, 46)) {
		t.Fatalf("upcalls got %x", rec.frames)
	}
}
