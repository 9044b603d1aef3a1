package openflow

import (
	"encoding/binary"
	"fmt"
	"io"
)

// OpenFlow wire versions gvs speaks.
const (
	Version10 uint8 = 0x01
	Version13 uint8 = 0x04
	Version14 uint8 = 0x05
	Version15 uint8 = 0x06
)

// Supported reports whether gvs speaks version v. 1.4 and 1.5 share
// 1.3's message numbers and OXM matches; the messages whose layout
// changed take the version and branch on it.
func Supported(v uint8) bool {
	return v == Version10 || v == Version13 || v == Version14 || v == Version15
}

// HeaderLen is the size of ofp_header, the start of every message.
const HeaderLen = 8

// MaxMessageLen is the largest message OpenFlow can frame: its length
// field is 16 bits. Longer replies are chained as several multipart
// messages with the MORE flag.
const MaxMessageLen = 0xffff

// Message types (ofp_type). Numbers differ between 1.0 and 1.3 above
// OFPT_VENDOR; typeOf and kindOf translate.
const (
	tHello        = 0
	tError        = 1
	tEchoRequest  = 2
	tEchoReply    = 3
	tVendor       = 4 // OFPT_VENDOR in 1.0, OFPT_EXPERIMENTER in 1.3
	tFeaturesReq  = 5
	tFeaturesRep  = 6
	tGetConfigReq = 7
	tGetConfigRep = 8
	tSetConfig    = 9

	// OpenFlow 1.0.
	t10PacketIn    = 10
	t10FlowRemoved = 11
	t10PortStatus  = 12
	t10PacketOut   = 13
	t10FlowMod     = 14
	t10PortMod     = 15
	t10StatsReq    = 16
	t10StatsRep    = 17
	t10BarrierReq  = 18
	t10BarrierRep  = 19

	// OpenFlow 1.3.
	t13PacketIn     = 10
	t13FlowRemoved  = 11
	t13PortStatus   = 12
	t13PacketOut    = 13
	t13FlowMod      = 14
	t13GroupMod     = 15
	t13PortMod      = 16
	t13TableMod     = 17
	t13MultipartReq = 18
	t13MultipartRep = 19
	t13BarrierReq   = 20
	t13BarrierRep   = 21
	t13GetAsyncReq  = 26
	t13GetAsyncRep  = 27
	t13SetAsync     = 28
)

// NXVendorID is Nicira's vendor (experimenter) id, which every Open
// vSwitch extension carries.
const NXVendorID = 0x00002320

// onfVendorID is the Open Networking Foundation's experimenter id, used by
// a few OpenFlow 1.3 errors that only 1.4 standardised.
const onfVendorID = 0x4f4e4600

// Header is ofp_header.
type Header struct {
	Version uint8
	Type    uint8
	Length  uint16
	Xid     uint32
}

// ParseHeader reads the header at the start of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, errorf(ErrBadLen, "message of %d bytes is shorter than the OpenFlow header", len(b))
	}
	h := Header{Version: b[0], Type: b[1], Length: binary.BigEndian.Uint16(b[2:]), Xid: binary.BigEndian.Uint32(b[4:])}
	if int(h.Length) < HeaderLen {
		return h, errorf(ErrBadLen, "header length %d is shorter than the header", h.Length)
	}
	if int(h.Length) != len(b) {
		return h, errorf(ErrBadLen, "header length %d but message has %d bytes", h.Length, len(b))
	}
	return h, nil
}

// ReadMessage reads one whole message from r: a header, then the rest of
// the length it announces. The buffer is reused when it is big enough, so
// a connection reads without allocating per message. A length below the
// header size is a framing error the stream cannot recover from, so it is
// returned as an *Error for the caller to send before closing.
func ReadMessage(r io.Reader, buf []byte) ([]byte, error) {
	if cap(buf) < MaxMessageLen {
		buf = make([]byte, MaxMessageLen)
	}
	buf = buf[:HeaderLen]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(buf[2:]))
	if n < HeaderLen {
		return buf, errorf(ErrBadLen, "header length %d is shorter than the header", n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf[HeaderLen:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// reader takes big-endian values off a byte slice. The first read past the
// end records an OFPBRC_BAD_LEN-style error (given by the caller's
// context) and every later read returns zeros, so decoders check once.
type reader struct {
	b   []byte
	err error
	// short is the error reported on a truncated read.
	short ErrCode
	what  string
}

func newReader(b []byte, short ErrCode, what string) *reader {
	return &reader{b: b, short: short, what: what}
}

func (r *reader) fail(n int) {
	if r.err == nil {
		r.err = errorf(r.short, "%s: need %d more bytes, %d left", r.what, n, len(r.b))
	}
	r.b = nil
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || len(r.b) < n {
		r.fail(n)
		return make([]byte, max(n, 0))
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) skip(n int) { r.bytes(n) }

func (r *reader) u8() uint8 {
	if len(r.b) < 1 {
		r.fail(1)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() uint16 { return binary.BigEndian.Uint16(r.bytes(2)) }
func (r *reader) u32() uint32 { return binary.BigEndian.Uint32(r.bytes(4)) }
func (r *reader) u64() uint64 { return binary.BigEndian.Uint64(r.bytes(8)) }

// clone copies n bytes, so decoded messages do not alias the read buffer
// that the connection reuses.
func (r *reader) clone(n int) []byte {
	b := r.bytes(n)
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

func (r *reader) rest() []byte { return r.clone(len(r.b)) }

func (r *reader) len() int { return len(r.b) }

// zeros reads n padding bytes. OpenFlow says padding must be zero but
// switches accept anything, as OVS does, so they are only skipped.
func (r *reader) zeros(n int) { r.skip(n) }

// writer appends big-endian values.
type writer struct{ b []byte }

func (w *writer) u8(v uint8)     { w.b = append(w.b, v) }
func (w *writer) u16(v uint16)   { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *writer) u32(v uint32)   { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *writer) u64(v uint64)   { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *writer) bytes(v []byte) { w.b = append(w.b, v...) }
func (w *writer) zeros(n int)    { w.b = append(w.b, make([]byte, n)...) }
func (w *writer) pos() int       { return len(w.b) }
func (w *writer) put16(at int, v uint16) {
	binary.BigEndian.PutUint16(w.b[at:], v)
}

// pad8 pads to a multiple of 8 bytes counted from start.
func (w *writer) pad8(start int) {
	if r := (len(w.b) - start) % 8; r != 0 {
		w.zeros(8 - r)
	}
}

// fixedString writes s into an n-byte NUL-padded field (port and table
// names, descriptions), cutting it to leave a terminating NUL.
func (w *writer) fixedString(s string, n int) {
	if len(s) > n-1 {
		s = s[:n-1]
	}
	w.b = append(w.b, s...)
	w.zeros(n - len(s))
}

// fixedString reads an n-byte NUL-padded field. A field with no NUL
// keeps its first n-1 bytes, as OVS reads it, so that every name fits
// back with its terminator.
func (r *reader) fixedString(n int) string {
	b := r.bytes(n)
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b[:max(n-1, 0)])
}

func pad8(n int) int { return (n + 7) &^ 7 }

func versionName(v uint8) string {
	switch v {
	case Version10:
		return "OpenFlow 1.0"
	case Version13:
		return "OpenFlow 1.3"
	case Version14:
		return "OpenFlow 1.4"
	case Version15:
		return "OpenFlow 1.5"
	}
	return fmt.Sprintf("OpenFlow version 0x%02x", v)
}
