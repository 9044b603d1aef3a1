package unixctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func readFrames(t *testing.T, stream string, max int) ([]string, error) {
	t.Helper()
	fr := newFrameReader(strings.NewReader(stream), max)
	var frames []string
	for {
		f, err := fr.next()
		if err != nil {
			return frames, err
		}
		frames = append(frames, string(f))
	}
}

func TestFrameReaderSplitsObjects(t *testing.T) {
	stream := ` {"a":"}{"} ` + "\n\t" + `{"b":["x\"]}",{"c":{}}]}{"e":"\\"}`
	frames, err := readFrames(t, stream, 1000)
	if err != io.EOF {
		t.Fatalf("end of stream: %v", err)
	}
	want := []string{`{"a":"}{"}`, `{"b":["x\"]}",{"c":{}}]}`, `{"e":"\\"}`}
	if !slices.Equal(frames, want) {
		t.Fatalf("frames %q, want %q", frames, want)
	}
}

func TestFrameReaderErrors(t *testing.T) {
	for stream, want := range map[string]error{
		`{"a":1`:           io.ErrUnexpectedEOF,
		`{"a":"}`:          io.ErrUnexpectedEOF,
		`x`:                errNotObject,
		`{"a":1} 5`:        errNotObject,
		`{"a":"0123456"}`:  errTooLarge,
		`{"a":"01234567"}`: errTooLarge,
	} {
		_, err := readFrames(t, stream, 12)
		if !errors.Is(err, want) {
			t.Errorf("%q: got %v, want %v", stream, err, want)
		}
	}
	frames, err := readFrames(t, `{"a":"0123"}`, 12)
	if err != io.EOF || len(frames) != 1 {
		t.Errorf("frame of exactly the limit: %q, %v", frames, err)
	}
}

func TestDecodeRequest(t *testing.T) {
	req, err := decodeRequest([]byte(`{"id": 0, "method":"dpctl/dump-flows","params":["-m", "br0"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(req.id) != "0" || req.method != "dpctl/dump-flows" || !slices.Equal(req.params, []string{"-m", "br0"}) {
		t.Fatalf("decoded %+v", req)
	}
	req, err = decodeRequest([]byte(`{"id": {"a" : [1, 2]},"method":"x","params":[]}`))
	if err != nil || string(req.id) != `{"a":[1,2]}` {
		t.Fatalf("structured id: %s, %v", req.id, err)
	}
}

func TestEncodeReply(t *testing.T) {
	cases := []struct {
		id      string
		result  string
		errText string
		isError bool
		want    string
	}{
		{"0", "hello", "", false, `{"id":0,"result":"hello\n","error":null}`},
		{"0", "", "", false, `{"id":0,"result":"","error":null}`},
		{`"x"`, "", "bad <thing>", true, `{"id":"x","result":null,"error":"bad <thing>\n"}`},
		{"", "", "oops\n", true, `{"id":null,"result":null,"error":"oops\n"}`},
	}
	for _, tc := range cases {
		got := string(encodeReply(json.RawMessage(tc.id), tc.result, tc.errText, tc.isError))
		if got != tc.want {
			t.Errorf("encodeReply(%s, %q, %q) = %s, want %s", tc.id, tc.result, tc.errText, got, tc.want)
		}
	}
}

// FuzzDecodeRequest feeds arbitrary bytes through framing and decoding as
// the server does: nothing may panic, the framer must agree with
// encoding/json on where valid objects end, and every decoded request
// must produce a valid reply carrying the same id.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"id":0,"method":"version","params":[]}`,
		`{"id":"a","method":"vlog/set","params":["x:y","z"]}{"id":1,"method":"x","params":[]}`,
		`{"id":null,"method":"x"}`,
		`{"id":1,"result":"x","error":null}`,
		`{"id":[1,{"b":"}"}],"method":"\u00e9\ud83d\ude00","params":["\\\"",""]}`,
		`{"id":1,"method":"x","params":[1,null,true]}`,
		`  {"a":"\`,
		`[]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := newFrameReader(bytes.NewReader(data), 4096)
		for range 16 {
			frame, err := fr.next()
			if err != nil {
				break
			}
			if frame[0] != '{' || len(frame) > 4096 {
				t.Fatalf("bad frame %q", frame)
			}
			checkDecode(t, frame)
		}
		checkFramingAgreesWithJSON(t, data)
	})
}

func checkDecode(t *testing.T, frame []byte) {
	req, err := decodeRequest(frame)
	var reqErr *requestError
	var id json.RawMessage
	switch {
	case errors.As(err, &reqErr):
		id = reqErr.id
	case err != nil:
		return
	default:
		id = req.id
		if len(req.id) == 0 || string(req.id) == "null" {
			t.Fatalf("request without an id accepted: %q", frame)
		}
	}
	reply := encodeReply(id, "r", "e", err != nil)
	var back struct {
		ID json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(reply, &back); err != nil {
		t.Fatalf("reply %q is not JSON: %v", reply, err)
	}
	if !bytes.Equal(compactJSON(back.ID), compactJSON(id)) {
		t.Fatalf("reply id %s, request id %s", back.ID, id)
	}
}

// checkFramingAgreesWithJSON: when data starts with one valid JSON object,
// the framer must return exactly that object.
func checkFramingAgreesWithJSON(t *testing.T, data []byte) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var first json.RawMessage
	if err := dec.Decode(&first); err != nil || len(first) == 0 || first[0] != '{' || len(first) > 4096 {
		return
	}
	frame, err := newFrameReader(bytes.NewReader(data), 4096).next()
	if err != nil {
		t.Fatalf("valid object %q not framed: %v", first, err)
	}
	if !bytes.Equal(frame, first) {
		t.Fatalf("framed %q, json saw %q", frame, first)
	}
}

// FuzzRequestRoundTrip: what the Go client encodes, the server decodes to
// the same method and arguments.
func FuzzRequestRoundTrip(f *testing.F) {
	f.Add("vlog/set", "a:b", "")
	f.Add("x\"\\\n", "é😀", "\x00")
	f.Fuzz(func(t *testing.T, method, a, b string) {
		if !utf8.ValidString(method) || !utf8.ValidString(a) || !utf8.ValidString(b) {
			return // JSON carries only Unicode text
		}
		raw, err := json.Marshal(map[string]any{"id": 3, "method": method, "params": []string{a, b}})
		if err != nil {
			t.Fatal(err)
		}
		req, err := decodeRequest(raw)
		if err != nil {
			t.Fatalf("decoding %s: %v", raw, err)
		}
		if req.method != method || !slices.Equal(req.params, []string{a, b}) {
			t.Fatalf("round trip changed %q %q %q into %q %q", method, a, b, req.method, req.params)
		}
	})
}
