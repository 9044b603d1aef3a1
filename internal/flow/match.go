package flow

import (
	"unsafe"

	"gvs/internal/packet"
)

// keyWords is the size of packet.Key in 64-bit words. Matches compares the
// key a word at a time, so the key must be a whole number of words and
// aligned to one; packet.Key starts with a uint64 and has no padding.
const keyWords = unsafe.Sizeof(packet.Key{}) / 8

// A compile-time check: indexing an array of length one fails to compile
// if packet.Key ever stops being a whole number of words.
var _ = [1]struct{}{}[unsafe.Sizeof(packet.Key{})%8]

// keyWordView is packet.Key seen as words.
type keyWordView = [keyWords]uint64

// maskedWord is one word of the key a match looks at: the word at idx,
// ANDed with mask, must equal value.
type maskedWord struct {
	mask, value uint64
	idx         uintptr
}

// Match is an OpenFlow match: the bits of a flow key it looks at (mask) and
// the values they must have (value). A bit whose mask bit is zero is
// wildcarded. The zero Match matches every key.
//
// A Match is immutable once built, so it can be shared between goroutines.
type Match struct {
	value, mask packet.Key
	// words lists the key words with a non-zero mask, so that Matches
	// touches only those.
	words []maskedWord
}

// NewMatch builds a match from a value and a mask key. Value bits outside
// the mask are ignored. It does not check prerequisites: ParseMatch does
// that for text; a caller building matches directly owns their sense.
func NewMatch(value, mask packet.Key) *Match {
	m := &Match{value: value, mask: mask}
	v := (*keyWordView)(unsafe.Pointer(&m.value))
	w := (*keyWordView)(unsafe.Pointer(&m.mask))
	for i := range v {
		v[i] &= w[i]
		if w[i] != 0 {
			m.words = append(m.words, maskedWord{mask: w[i], value: v[i], idx: uintptr(i)})
		}
	}
	return m
}

// Matches reports whether key k has the values the match asks for in every
// bit it looks at. It does not allocate. A nil match, like an empty one,
// matches every key.
func (m *Match) Matches(k *packet.Key) bool {
	if m == nil {
		return true
	}
	kw := (*keyWordView)(unsafe.Pointer(k))
	for _, w := range m.words {
		if kw[w.idx]&w.mask != w.value {
			return false
		}
	}
	return true
}

// Value returns the match's value key; bits outside the mask are zero.
func (m *Match) Value() packet.Key { return m.value }

// Mask returns the match's mask key.
func (m *Match) Mask() packet.Key { return m.mask }

// Equal reports whether two matches look at the same bits for the same
// values.
func (m *Match) Equal(o *Match) bool { return m.value == o.value && m.mask == o.mask }

// IsCatchAll reports whether the match wildcards everything.
func (m *Match) IsCatchAll() bool { return len(m.words) == 0 }
