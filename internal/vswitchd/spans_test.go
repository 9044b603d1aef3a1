package vswitchd

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gvs/internal/ovsdb"
	"gvs/internal/span"
)

// spanRow is the JSON of a Span row for a transaction.
func spanInsert(name, sources, rules, dests, extra string) string {
	return `[{"op":"insert","table":"Span","row":{"name":"` + name + `","sources":["map",` + sources +
		`],"rules":["map",` + rules + `],"destinations":["set",` + dests + `]` + extra + `}}]`
}

// TestSpanCheckedAtCommit: a Span row that does not describe a valid
// session is refused with the reason, and nothing is created.
func TestSpanCheckedAtCommit(t *testing.T) {
	db := newMemDB(t)
	sw := New(db)
	sw.SetCaptureDir(t.TempDir())
	t.Cleanup(func() { sw.state.close(true) })
	// 64 rules that each pass alone but together compile to more
	// instructions than the kernel takes.
	big := "accept tcp6,ipv6_src=2001:db8::1/ffff:0:ffff:0:ffff:0:ffff:1,ipv6_dst=2001:db8::2/ffff:0:ffff:0:ffff:0:ffff:1," +
		"tp_src=1/0xfff0,tp_dst=2/0xfff0,vlan_tci=0x1000/0x1fff,tcp_flags=+syn-ack+fin-rst,ipv6_label=5/0xff,nw_tos=4,nw_ttl=3," +
		"nw_ecn=1,dl_src=01:00:00:00:00:00/01:00:00:00:00:01,dl_dst=02:00:00:00:00:01/ff:ff:ff:00:00:01,ip_frag=no"
	var bigRules []string
	for i := range 64 {
		bigRules = append(bigRules, fmt.Sprintf(`[%d,%q]`, i, big))
	}
	for _, c := range []struct {
		name, sources, rules, dests, extra, want string
	}{
		{"too-big", `[["veth0","both"]]`, "[" + strings.Join(bigRules, ",") + "]", `["dev:veth1"]`, ``, `more than the kernel's 4096`},
		{"bad-rule", `[["veth0","both"]]`, `[[0,"accept tcp,tp_dst=http"]]`, `["dev:veth1"]`, ``, `tp_dst=http`},
		{"bad-verb", `[["veth0","both"]]`, `[[0,"allow tcp"]]`, `["dev:veth1"]`, ``, `accept or reject`},
		{"ct", `[["veth0","both"]]`, `[[0,"accept tcp,ct_state=+est"]]`, `["dev:veth1"]`, ``, `conntrack`},
		{"loop", `[["veth0","both"]]`, `[]`, `["dev:veth0"]`, ``, `loop`},
		{"meta-pcap", `[["veth0","in"]]`, `[]`, `["pcap:x.pcapng"]`, `,"metadata":true`, `only json: destinations`},
		{"json-nometa", `[["veth0","in"]]`, `[]`, `["json:x.json"]`, ``, `add --metadata`},
		{"bad-dest", `[["veth0","in"]]`, `[]`, `["file:/tmp/x"]`, ``, `unknown kind "file"`},
		{"tunnel", `[["veth0","in"]]`, `[]`, `["vxlan:10.0.0.1,vni=99999999"]`, ``, `vni=99999999`},
		{"bad-vlan", `[["veth0","in"]]`, `[]`, `["dev:veth1,vlan=5000"]`, ``, `vlan=VID`},
		{"outside", `[["veth0","in"]]`, `[]`, `["pcap:/etc/x.pcapng"]`, ``, `outside gvsd's capture directory`},
		{"dotdot", `[["veth0","in"]]`, `[]`, `["json:../x.json"]`, `,"metadata":true`, `".." component`},
		{"bad-source", `[["a/b","in"]]`, `[]`, `["dev:veth1"]`, ``, `not an interface name`},
	} {
		err := transact(t, db, spanInsert(c.name, c.sources, c.rules, c.dests, c.extra))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", c.name, err, c.want)
		}
	}
	if n := len(db.Rows("Span")); n != 0 {
		t.Fatalf("%d Span rows created by refused transactions", n)
	}
	// A valid one commits, also for an interface that does not exist.
	if err := transact(t, db, spanInsert("ok", `[["gvsnosuchdev","in"]]`, `[[0,"accept tcp,tp_dst=5201"],[1,"reject ip"]]`, `["dev:gvsnosuchdev2"]`, `,"mark":7`)); err != nil {
		t.Fatal(err)
	}
	// Writing statistics later does not check the row again.
	if err := transact(t, db, `[{"op":"update","table":"Span","where":[["name","==","ok"]],"row":{"error":"x"}}]`); err != nil {
		t.Fatal(err)
	}
}

// TestSpanWaitsForInterface: a session for an interface that does not
// exist runs, and says in Span.error that it waits.
func TestSpanWaitsForInterface(t *testing.T) {
	db := newMemDB(t)
	sw := New(db)
	t.Cleanup(func() { sw.state.close(true) })
	if err := transact(t, db, spanInsert("w", `[["gvsnosuchdev","in"]]`, `[]`, `["dev:gvsnosuchdev2"]`, ``)); err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	var text string
	for range 50 {
		sw.acknowledge(db.Snapshot(configTables...))
		for _, r := range db.Rows("Span") {
			text, _ = r.Column(db.Schema().Tables["Span"], "error").Str()
		}
		if strings.Contains(text, "source gvsnosuchdev: no such interface") && strings.Contains(text, "dev:gvsnosuchdev2") {
			return
		}
		sleepShort()
	}
	t.Fatalf("Span.error = %q", text)
}

func sleepShort() { time.Sleep(100 * time.Millisecond) }

// TestSpanLoopBetweenSessions: a session whose dev: destination is what
// another session copies the output of is refused at commit, whichever
// is written first, and also when both come in one transaction; a
// source that copies only what the device receives is no loop.
func TestSpanLoopBetweenSessions(t *testing.T) {
	db := newMemDB(t)
	sw := New(db)
	sw.SetCaptureDir(t.TempDir())
	t.Cleanup(func() { sw.state.close(true) })
	mustOK := func(tx string) {
		t.Helper()
		if err := transact(t, db, tx); err != nil {
			t.Fatal(err)
		}
	}
	mustFail := func(tx, want string) {
		t.Helper()
		if err := transact(t, db, tx); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error with %q", err, want)
		}
	}
	mustOK(spanInsert("a", `[["x0","both"]]`, `[]`, `["dev:y0"]`, ``))
	mustFail(spanInsert("b", `[["y0","out"]]`, `[]`, `["dev:z0"]`, ``),
		"span a: destination dev:y0 is a source of span b (y0:out)")
	mustFail(spanInsert("c", `[["z0","both"]]`, `[]`, `["dev:x0"]`, ``),
		"span c: destination dev:x0 is a source of span a (x0:both)")
	mustOK(spanInsert("d", `[["y0","in"]]`, `[]`, `["dev:w0"]`, ``))
	// Two new sessions that loop through each other, in one transaction.
	both := `[{"op":"insert","table":"Span","row":{"name":"p","sources":["map",[["p0","both"]]],"destinations":["set",["dev:q0"]]}},` +
		`{"op":"insert","table":"Span","row":{"name":"q","sources":["map",[["q0","both"]]],"destinations":["set",["dev:p0"]]}}]`
	mustFail(both, "a loop")
	// Changing a's destination to d's destination's device is refused too.
	mustFail(`[{"op":"update","table":"Span","where":[["name","==","d"]],"row":{"sources":["map",[["y0","both"]]]}}]`,
		"span a: destination dev:y0 is a source of span d (y0:both)")
	if n := len(db.Rows("Span")); n != 2 {
		t.Errorf("%d Span rows, want the 2 accepted", n)
	}
}

// TestSpanSessionsBounded: the Span table holds at most span.MaxSessions
// rows, and a database that holds more anyway (written without the
// limit) runs only that many sessions, the others saying why.
func TestSpanSessionsBounded(t *testing.T) {
	db := newMemDB(t)
	for i := range span.MaxSessions {
		name := fmt.Sprintf("s%02d", i)
		if err := transact(t, db, spanInsert(name, `[["gvsnosuchdev","in"]]`, `[]`, `["dev:gvsnosuchdev2"]`, ``)); err != nil {
			t.Fatal(err)
		}
	}
	err := transact(t, db, spanInsert("one-more", `[["gvsnosuchdev","in"]]`, `[]`, `["dev:gvsnosuchdev2"]`, ``))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("limit of %d row", span.MaxSessions)) {
		t.Fatalf("session %d: %v, want the table's row limit", span.MaxSessions+1, err)
	}

	schema, err := ovsdb.ParseSchema(SchemaJSON)
	if err != nil {
		t.Fatal(err)
	}
	schema.Tables["Span"].MaxRows = 0
	db = ovsdb.NewDB(schema, nil)
	for i := range span.MaxSessions + 3 {
		name := fmt.Sprintf("s%02d", i)
		if err := transact(t, db, spanInsert(name, `[["gvsnosuchdev","in"]]`, `[]`, `["dev:gvsnosuchdev2"]`, ``)); err != nil {
			t.Fatal(err)
		}
	}
	sw := New(db)
	t.Cleanup(func() { sw.state.close(true) })
	sw.reconcile()
	running, refused := 0, 0
	for _, l := range sw.state.spans {
		switch {
		case l.s != nil:
			running++
		case strings.Contains(l.err, "at most"):
			refused++
		}
	}
	if running != span.MaxSessions || refused != 3 {
		t.Errorf("%d sessions running and %d refused, want %d and 3", running, refused, span.MaxSessions)
	}
}
