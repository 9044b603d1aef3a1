package openflow

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// TestErrorsMatchOVS replays malformed requests that were sent to the
// real ovs-vswitchd 3.1 (testdata/ovs_errors.txt: name, version, request,
// OVS's reply) and checks that the decoder refuses each with the error
// OVS sent, encoded byte for byte as OVS encoded it: the same type and
// code, the Nicira vendor wrapper in 1.0, the experimenter form in 1.3,
// NXBRC_UNENCODABLE_ERROR where 1.0 has no number, and the whole
// request as data.
func TestErrorsMatchOVS(t *testing.T) {
	f, err := os.Open("testdata/ovs_errors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		p := strings.Fields(sc.Text())
		if len(p) != 4 {
			t.Fatalf("bad line %q", sc.Text())
		}
		req, _ := hex.DecodeString(p[2])
		want, _ := hex.DecodeString(p[3])
		h, m, err := Decode(req)
		if err == nil {
			t.Errorf("%s: decoded as %T %+v, OVS refused it", p[0], m, m)
			continue
		}
		got, encErr := Encode(h.Version, h.Xid, ErrorFor(err, req))
		if encErr != nil {
			t.Fatalf("%s: %v", p[0], encErr)
		}
		if !bytes.Equal(got, want) {
			_, wm, _ := Decode(want)
			t.Errorf("%s: %v\n got %x\nwant %x (%v)", p[0], err, got, want, &wm.(*ErrorMsg).Err)
		}
		n++
	}
	if n < 30 {
		t.Fatalf("only %d cases", n)
	}
}

// TestAcceptsWhatOVSAccepts: requests OVS took without an error.
func TestAcceptsWhatOVSAccepts(t *testing.T) {
	b, err := os.ReadFile("testdata/ovs_accepts.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		p := strings.Fields(line)
		req, _ := hex.DecodeString(p[2])
		if _, _, err := Decode(req); err != nil {
			t.Errorf("%s: %v", p[0], err)
		}
	}
}
