package flow

import (
	"errors"
	"fmt"
	"strings"
)

// PointAt explains a flow error with the flow and a mark under the word
// the error names.
func PointAt(text string, err error) error {
	var fe *Error
	if !errors.As(err, &fe) || fe.Field == "" {
		return fmt.Errorf("%w\n  %s", err, text)
	}
	word := fe.Field
	if fe.Value != "" {
		word += "=" + fe.Value
	}
	at := wordIndex(text, word)
	if at < 0 {
		at, word = wordIndex(text, fe.Field), fe.Field
	}
	if at < 0 {
		return fmt.Errorf("%w\n  %s", err, text)
	}
	return fmt.Errorf("%w\n  %s\n  %s%s", err, text, strings.Repeat(" ", at), strings.Repeat("^", len(word)))
}

// wordIndex finds word in text where a word starts (after a delimiter).
func wordIndex(text, word string) int {
	for from := 0; ; {
		i := strings.Index(text[from:], word)
		if i < 0 {
			return -1
		}
		i += from
		if i == 0 || strings.ContainsRune(", \t(", rune(text[i-1])) {
			return i
		}
		from = i + 1
	}
}
