package vswitchd

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gvs/internal/netdev"
	"gvs/internal/ovsdb"
)

// infoPanicPort is a memory port whose Info panics while infoPanics > 0.
type infoPanicPort struct{ *netdev.Memory }

var infoPanics atomic.Int32

func (p infoPanicPort) Info() netdev.Info {
	if infoPanics.Add(-1) >= 0 {
		panic("driver bug in Info")
	}
	return p.Memory.Info()
}

func init() {
	netdev.Register("test-open-panic", func(netdev.Config) (netdev.Netdev, error) { panic("driver bug in open") })
	netdev.Register("test-info-panic", func(cfg netdev.Config) (netdev.Netdev, error) {
		return infoPanicPort{netdev.NewMemory(cfg.Name, 16)}, nil
	})
}

// rcColumn reads one column of the only row of table named name.
func rcColumn(db *ovsdb.DB, table, name, column string) ovsdb.Datum {
	t := db.Schema().Tables[table]
	for _, r := range db.Rows(table) {
		if n, _ := r.Column(t, "name").Str(); n == name || name == "" {
			return r.Column(t, column)
		}
	}
	return ovsdb.Datum{}
}

// A bug in a driver (panic when opening, panic when reporting status)
// fails that interface or that round, never the switch: the panics are
// counted, the broken interface reports an internal error, the others
// work, and the next configuration is applied and acknowledged.
func TestReconcileSurvivesPanics(t *testing.T) {
	schema, err := ovsdb.ParseSchema(SchemaJSON)
	if err != nil {
		t.Fatal(err)
	}
	db, err := ovsdb.OpenDB(filepath.Join(t.TempDir(), "conf.db"), schema)
	if err != nil {
		t.Fatal(err)
	}
	sw := New(db)
	if err := sw.Init(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { sw.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })

	before := bridgePanics.Total()
	infoPanics.Store(1)
	ops := []any{}
	var ports []any
	for i, typ := range []string{"test-open-panic", "memory", "test-info-panic"} {
		name := "rcp" + string(rune('0'+i))
		ops = append(ops,
			map[string]any{"op": "insert", "table": "Interface", "uuid-name": "i" + name,
				"row": map[string]any{"name": name, "type": typ}},
			map[string]any{"op": "insert", "table": "Port", "uuid-name": "p" + name,
				"row": map[string]any{"name": name, "interfaces": []any{"named-uuid", "i" + name}}})
		ports = append(ports, []any{"named-uuid", "p" + name})
	}
	ops = append(ops,
		map[string]any{"op": "insert", "table": "Bridge", "uuid-name": "br",
			"row": map[string]any{"name": "rcbr", "ports": []any{"set", ports}}},
		map[string]any{"op": "update", "table": "Open_vSwitch", "where": []any{},
			"row": map[string]any{"bridges": []any{"named-uuid", "br"}, "next_cfg": 1}})
	if err := checkResults(db.Transact(ops)); err != nil {
		t.Fatal(err)
	}
	rcWaitFor(t, "the first panics to be counted", func() bool { return bridgePanics.Total()-before >= 2 })

	// The status round that panicked acknowledged nothing; the next
	// configuration goes through.
	if err := checkResults(db.Transact([]any{map[string]any{"op": "update", "table": "Open_vSwitch",
		"where": []any{}, "row": map[string]any{"next_cfg": 2}}})); err != nil {
		t.Fatal(err)
	}
	rcWaitFor(t, "cur_cfg 2", func() bool {
		n, _ := rcColumn(db, "Open_vSwitch", "", "cur_cfg").Int()
		return n == 2
	})
	if msg, _ := rcColumn(db, "Interface", "rcp0", "error").Str(); !strings.Contains(msg, "internal error") {
		t.Errorf("rcp0 error %q, want an internal error", msg)
	}
	for _, name := range []string{"rcp1", "rcp2"} {
		if n, _ := rcColumn(db, "Interface", name, "ofport").Int(); n <= 0 {
			t.Errorf("%s ofport %d, want a working port", name, n)
		}
	}
	// rcp0 is retried, and panics, at each reconfiguration.
	if got := bridgePanics.Total() - before; got < 2 {
		t.Errorf("bridge_panic rose by %d, want at least 2", got)
	}
	select {
	case <-stopped:
		t.Fatal("the switch stopped")
	default:
	}
}

func rcWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
