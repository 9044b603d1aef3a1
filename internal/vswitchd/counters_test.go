package vswitchd

import (
	"reflect"
	"testing"
	"time"

	"gvs/internal/netdev"
	"gvs/internal/ofproto"
)

// TestCountersForMetrics: interface counters carry their bridge, port and
// interface names and are read live from the devices; mirror counters
// carry the mirror's name; flow counts cover every bridge.
func TestCountersForMetrics(t *testing.T) {
	db := newMemDB(t)
	sw := New(db)
	defer sw.state.close(true)
	err := transact(t, db, `[
		{"op":"insert","table":"Interface","uuid-name":"i1","row":{"name":"mcnt1","type":"memory"}},
		{"op":"insert","table":"Interface","uuid-name":"i2","row":{"name":"mcnt2","type":"memory"}},
		{"op":"insert","table":"Port","uuid-name":"p1","row":{"name":"mcnt1","interfaces":["named-uuid","i1"]}},
		{"op":"insert","table":"Port","uuid-name":"up","row":{"name":"uplink","interfaces":["named-uuid","i2"]}},
		{"op":"insert","table":"Mirror","uuid-name":"m","row":{"name":"span","select_all":true,"output_port":["named-uuid","up"]}},
		{"op":"insert","table":"Bridge","uuid-name":"b","row":{"name":"brc",
			"ports":["set",[["named-uuid","p1"],["named-uuid","up"]]],"mirrors":["named-uuid","m"]}},
		{"op":"insert","table":"Open_vSwitch","row":{"bridges":["named-uuid","b"]}}]`)
	if err != nil {
		t.Fatal(err)
	}
	sw.reconcile()

	var names [][3]string
	for _, c := range sw.InterfaceCounters() {
		names = append(names, [3]string{c.Bridge, c.Port, c.Interface})
	}
	want := [][3]string{{"brc", "mcnt1", "mcnt1"}, {"brc", "uplink", "mcnt2"}}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("interfaces %v, want %v", names, want)
	}

	dev, ok := netdev.LookupMemory("mcnt1")
	if !ok {
		t.Fatal("memory device mcnt1 not open")
	}
	frame := make([]byte, 60)
	copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5})
	if err := dev.Inject(frame); err != nil {
		t.Fatal(err)
	}
	var rx uint64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && rx == 0; time.Sleep(10 * time.Millisecond) {
		rx = sw.InterfaceCounters()[0].Stats.RxPackets
	}
	if rx != 1 {
		t.Errorf("mcnt1 rx_packets %d after one injected frame, want 1", rx)
	}

	sw.state.mirrorStat[mirrorUUID(t, db, "span")].Packets.Add(2)
	mirrors := sw.MirrorCounters()
	if len(mirrors) != 1 || mirrors[0].Bridge != "brc" || mirrors[0].Mirror != "span" || mirrors[0].TxPackets < 2 {
		t.Errorf("mirrors %+v, want span on brc with at least 2 packets", mirrors)
	}

	flows := sw.FlowCounts()
	wantFlows := []BridgeFlows{{Bridge: "brc", Tables: []ofproto.TableCount{{Table: 0, Flows: 1}}, MaxFlows: ofproto.DefaultMaxFlows}}
	if !reflect.DeepEqual(flows, wantFlows) {
		t.Errorf("flows %+v, want %+v", flows, wantFlows)
	}
}
