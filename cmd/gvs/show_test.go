package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestShowEscapesDatabaseStrings(t *testing.T) {
	v := &dbView{
		ports: map[string]map[string]any{
			"p1": {"_uuid": uuidRef("p1"), "name": "evil\x1b[2J", "interfaces": uuidRef("i1")},
			"p2": {"_uuid": uuidRef("p2"), "name": "two\nport fake0  trunk", "interfaces": uuidRef("i2")},
		},
		interfaces: map[string]map[string]any{
			"i1": {"_uuid": uuidRef("i1"), "type": "internal", "error": "bad\rthing\u202e\xff",
				"options": []any{"map", []any{[]any{"peer", "x\ty"}}}},
			"i2": {"_uuid": uuidRef("i2"), "type": "", "ofport": 2},
		},
		mirrors: map[string]map[string]any{
			"m1": {"_uuid": uuidRef("m1"), "name": "m\x07", "select_all": true, "output_port": uuidRef("p1"),
				"statistics": []any{"map", []any{[]any{"tx_packets", "1\x1b]0;pwned\x07"}}}},
		},
	}
	bridge := map[string]any{"name": "br\\0", "ports": []any{"set", []any{uuidRef("p1"), uuidRef("p2")}},
		"mirrors": uuidRef("m1")}
	var out bytes.Buffer
	showBridge(&printer{w: &out, color: true}, v, bridge)
	got := out.String()
	for _, want := range []string{`bridge br\\0`, `evil\x1b[2J`, `two\nport fake0  trunk`, `peer x\ty`,
		`error: bad\rthing\u202e\xff`, `mirror m\a`, `(1\x1b]0;pwned\a packets`} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	// The only escape sequences left are show's own colours, and every
	// line is one of show's.
	plain := strings.NewReplacer("\x1b[1;31m", "", "\x1b[0m", "").Replace(got)
	for _, c := range plain {
		if c < 0x20 && c != '\n' || c == 0x7f || c == '\u202e' {
			t.Fatalf("control character %U printed:\n%q", c, got)
		}
	}
	if n := strings.Count(got, "\n"); n != 5 {
		t.Fatalf("%d lines, want 5 (bridge, 2 ports, error, mirror):\n%s", n, got)
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"eth0":        "eth0",
		"ünïcode ok":  "ünïcode ok",
		"a\x00b":      `a\x00b`,
		"\x7f\u0085":  `\x7f\u0085`,
		`back\slash`:  `back\\slash`,
		"bad\xc3utf8": `bad\xc3utf8`,
	} {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
	}
}
