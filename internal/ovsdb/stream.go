package ovsdb

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// errTooLarge is returned for a message over the size limit.
var errTooLarge = errors.New("message exceeds the size limit")

// messageReader splits a byte stream into top-level JSON texts (objects or
// arrays) without decoding them, so that the size limit applies before any
// allocation proportional to the message, and so that a syntax error in
// one message is reported without desynchronising the stream framing.
type messageReader struct {
	r     *bufio.Reader
	limit int
	buf   []byte
	// large, if set, is called once per message when it grows past
	// largeMessage bytes, before the buffer grows further.
	large func()
}

// readBuffer is small: an idle client costs little, and a large message
// is copied into buf anyway.
const readBuffer = 4 << 10

func newMessageReader(r io.Reader, limit int) *messageReader {
	return &messageReader{r: bufio.NewReaderSize(r, readBuffer), limit: limit}
}

// next returns the next message. The slice is valid until the next call.
func (m *messageReader) next() ([]byte, error) {
	if cap(m.buf) > largeMessage {
		m.buf = nil // a large message's buffer is not kept for an idle client
	}
	m.buf = m.buf[:0]
	depth, inString, escaped := 0, false, false
	for {
		b, err := m.r.ReadByte()
		if err != nil {
			if err == io.EOF && len(m.buf) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if depth == 0 && !inString {
			switch b {
			case ' ', '\t', '\r', '\n':
				continue
			case '{', '[':
			default:
				return nil, fmt.Errorf("syntax error: unexpected %q outside a JSON object", b)
			}
		}
		if len(m.buf) >= m.limit {
			return nil, errTooLarge
		}
		if len(m.buf) == largeMessage && m.large != nil {
			m.large()
		}
		if len(m.buf) == cap(m.buf) {
			m.grow()
		}
		m.buf = append(m.buf, b)
		switch {
		case inString && escaped:
			escaped = false
		case inString && b == '\\':
			escaped = true
		case inString && b == '"':
			inString = false
		case inString:
		case b == '"':
			inString = true
		case b == '{' || b == '[':
			depth++
		case b == '}' || b == ']':
			depth--
			if depth == 0 {
				return m.buf, nil
			}
		}
	}
}

// grow doubles the buffer (append grows large slices by a quarter, which
// would allocate several times the limit on the way to it), never past
// the limit.
func (m *messageReader) grow() {
	n := max(2*cap(m.buf), 512)
	if n > m.limit {
		n = m.limit
	}
	m.buf = append(make([]byte, 0, n), m.buf...)
}
