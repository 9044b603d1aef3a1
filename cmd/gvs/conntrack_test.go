package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"gvs/internal/conntrack"
)

// TestWriteConntrack: the table shows each connection once, the reply
// direction only when NAT made it differ, IPv6 endpoints bracketed, and
// says when the list was cut.
func TestWriteConntrack(t *testing.T) {
	rep := conntrack.Report{Matched: 4, Truncated: true, Connections: []conntrack.View{
		{Proto: "tcp", Zone: 0, State: "ESTABLISHED", Timeout: 431999,
			Orig:  conntrack.TupleView{Src: "192.168.0.2", Dst: "10.0.0.2", Sport: 1024, Dport: 2048},
			Reply: conntrack.TupleView{Src: "10.0.0.2", Dst: "192.168.0.2", Sport: 2048, Dport: 1024}},
		{Proto: "udp", Zone: 3, State: "REPLIED", Mark: 42, Label: "0x1", Timeout: 117,
			Orig:  conntrack.TupleView{Src: "10.1.0.1", Dst: "10.2.0.9", Sport: 5000, Dport: 53},
			Reply: conntrack.TupleView{Src: "10.2.0.9", Dst: "172.16.0.1", Sport: 53, Dport: 40000}},
		{Proto: "tcp", Zone: 0, State: "SYN_SENT", Timeout: 120,
			Orig:  conntrack.TupleView{Src: "fd00::1", Dst: "fd00::2", Sport: 1, Dport: 22},
			Reply: conntrack.TupleView{Src: "fd00::2", Dst: "fd00::1", Sport: 22, Dport: 1}},
	}}
	var b bytes.Buffer
	writeConntrack(&b, &rep)
	got := b.String()
	for _, want := range []string{
		"ZONE  PROTO  CONNECTION",
		"0     tcp    192.168.0.2:1024 -> 10.0.0.2:2048 ",
		"ESTABLISHED  -     -      431999s\n",
		"10.1.0.1:5000 -> 10.2.0.9:53, reply 10.2.0.9:53 -> 172.16.0.1:40000",
		"REPLIED      42    0x1    117s",
		"[fd00::1]:1 -> [fd00::2]:22 ",
		"4 connections match; the first 3 are listed",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	b.Reset()
	writeConntrack(&b, &conntrack.Report{})
	if b.String() != "No connections.\n" {
		t.Errorf("empty table: %q", b.String())
	}
}

// TestConntrackFlagErrors: out-of-range numbers are usage errors found
// before gvs connects.
func TestConntrackFlagErrors(t *testing.T) {
	env := map[string]string{"OVS_RUNDIR": t.TempDir()}
	db := "--db=unix:" + filepath.Join(env["OVS_RUNDIR"], "db.sock")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"conntrack", "--zone", "70000"}, "--zone 70000"},
		{[]string{"conntrack", "--port", "0"}, "--port 0"},
		{[]string{"conntrack", "extra"}, `unexpected argument "extra"`},
	} {
		code, _, errOut := gvsRun(t, env, false, append([]string{db}, c.args...)...)
		if code != exitUsageErr || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q", c.args, code, errOut)
		}
	}
	if code, _, errOut := gvsRun(t, env, false, db, "conntrack"); code != exitFailure || !strings.Contains(errOut, "is gvsd running") {
		t.Errorf("without gvsd: exit %d, %q", code, errOut)
	}
}
