package unixctl

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxRequestSize bounds one JSON-RPC message, so a client cannot make the
// daemon buffer without limit.
const MaxRequestSize = 1 << 20

var (
	errTooLarge  = fmt.Errorf("message exceeds %d bytes", MaxRequestSize)
	errNotObject = errors.New("message is not a JSON object")
)

// frameReader splits a byte stream into top-level JSON objects. The
// protocol has no delimiter between messages: each one ends where its
// outermost brace closes, which needs only bracket and string tracking.
type frameReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

func newFrameReader(r io.Reader, max int) *frameReader {
	return &frameReader{r: bufio.NewReader(r), max: max}
}

// next returns the next complete object, io.EOF at a clean end of stream,
// or an error for a stream that cannot be framed. The returned slice is
// only valid until the next call.
func (f *frameReader) next() ([]byte, error) {
	first, err := f.skipSpace()
	if err != nil {
		return nil, err
	}
	if first != '{' {
		return nil, errNotObject
	}
	f.buf = append(f.buf[:0], first)
	depth, inString, escaped := 1, false, false
	for depth > 0 {
		c, err := f.r.ReadByte()
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		} else if err != nil {
			return nil, err
		}
		if len(f.buf) >= f.max {
			return nil, errTooLarge
		}
		f.buf = append(f.buf, c)
		switch {
		case escaped:
			escaped = false
		case inString:
			escaped = c == '\\'
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		}
	}
	return f.buf, nil
}

func (f *frameReader) skipSpace() (byte, error) {
	for {
		c, err := f.r.ReadByte()
		if err != nil {
			return 0, err
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c, nil
		}
	}
}

// request is a decoded JSON-RPC 1.0 request.
type request struct {
	id     json.RawMessage
	method string
	params []string
}

// requestError is a request that can be answered with an error reply
// because its id is known, unlike a message that cannot be parsed at all.
type requestError struct {
	id  json.RawMessage
	msg string
}

func (e *requestError) Error() string { return e.msg }

// decodeRequest parses one framed message. A *requestError can be replied
// to; any other error means the connection should be dropped.
func decodeRequest(frame []byte) (request, error) {
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method json.RawMessage `json:"method"`
		Params json.RawMessage `json:"params"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(frame, &msg); err != nil {
		return request{}, fmt.Errorf("malformed JSON-RPC message: %w", err)
	}
	if msg.Result != nil || msg.Error != nil {
		return request{}, errors.New("received a reply, expected a request")
	}
	if len(msg.ID) == 0 || string(msg.ID) == "null" {
		return request{}, errors.New("received a notification, expected a request with an id")
	}
	req := request{id: compactJSON(msg.ID)}
	if err := json.Unmarshal(msg.Method, &req.method); err != nil || msg.Method == nil {
		return request{}, &requestError{id: req.id, msg: "request has no method string"}
	}
	params, err := decodeParams(msg.Params)
	if err != nil {
		return request{}, &requestError{id: req.id, msg: err.Error()}
	}
	req.params = params
	return req, nil
}

// decodeParams reads the params array, every element of which must be a
// string: commands take words, as on a command line. A missing or null
// array is taken as no arguments.
func decodeParams(raw json.RawMessage) ([]string, error) {
	if raw == nil || string(raw) == "null" {
		return nil, nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, errors.New("request params must be an array of strings")
	}
	params := make([]string, len(elems))
	for i, elem := range elems {
		if err := json.Unmarshal(elem, &params[i]); err != nil || string(elem) == "null" {
			return nil, fmt.Errorf("command has non-string argument: %s", compactJSON(elem))
		}
	}
	return params, nil
}

func compactJSON(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// encodeReply renders a JSON-RPC 1.0 reply: exactly one of result and
// errText is meaningful. A non-empty body gets a final newline, as OVS
// daemons send, because ovs-appctl prints bodies verbatim.
func encodeReply(id json.RawMessage, result string, errText string, isError bool) []byte {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	body := withNewline(result)
	reply := struct {
		ID     json.RawMessage `json:"id"`
		Result *string         `json:"result"`
		Error  *string         `json:"error"`
	}{ID: id}
	if isError {
		body = withNewline(errText)
		reply.Error = &body
	} else {
		reply.Result = &body
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(reply); err != nil {
		// Only an invalid id could fail, and ids come from json.Unmarshal.
		return []byte(`{"id":null,"result":null,"error":"internal error encoding reply\n"}`)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func withNewline(s string) string {
	if s != "" && s[len(s)-1] != '\n' {
		return s + "\n"
	}
	return s
}
