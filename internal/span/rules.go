package span

import (
	"errors"
	"fmt"
	"strings"

	"gvs/internal/flow"
)

// Limits on what a session may ask for, so that a rule set always compiles
// into a program the kernel accepts (at most 4096 instructions).
const (
	MaxRules    = 64
	MaxRuleLen  = 1024
	MaxSources  = 16
	MaxDests    = 8
	MaxNameLen  = 64
	MaxSnaplen  = 262144
	DefaultSnap = 262144
)

// MaxSessions bounds the sessions gvsd runs (the Span table's maxRows):
// each has its goroutines, its programs on every source and up to 32 MiB
// of perf rings pinned in the kernel.
const MaxSessions = 32

// Rule is one line of a session's rule list: Accept (copy) or not
// (reject) the packets Match selects.
type Rule struct {
	Accept bool
	Match  *flow.Match
	Text   string // as written, for messages and display
}

// RuleError reports a rule that does not parse or cannot be filtered in
// the kernel, with the rule and a mark under the offending word.
type RuleError struct {
	Rule string // the rule as written
	Word string // the offending word, "" if none
	At   int    // its byte offset in Rule
	Msg  string
}

func (e *RuleError) Error() string {
	s := fmt.Sprintf("rule %q: %s", e.Rule, e.Msg)
	if e.Word == "" {
		return s
	}
	// The mark lines up under the rule printed after "rule \"".
	return s + "\n  " + e.Rule + "\n  " + strings.Repeat(" ", e.At) + strings.Repeat("^", len(e.Word))
}

// ParseRule reads "accept MATCH" or "reject MATCH". An empty MATCH selects
// every packet.
func ParseRule(text string) (Rule, error) {
	if len(text) > MaxRuleLen {
		return Rule{}, &RuleError{Rule: text[:40] + "...", Msg: fmt.Sprintf("longer than %d bytes", MaxRuleLen)}
	}
	verb, rest, _ := strings.Cut(strings.TrimSpace(text), " ")
	var r Rule
	switch verb {
	case "accept":
		r.Accept = true
	case "reject":
	default:
		at := strings.Index(text, verb)
		return Rule{}, &RuleError{Rule: text, Word: verb, At: max(at, 0),
			Msg: fmt.Sprintf("%q: a rule starts with accept or reject", verb)}
	}
	m, err := flow.ParseMatchWith(rest, flow.ParseOptions{LenientCtState: true})
	if err != nil {
		return Rule{}, pointAt(text, err)
	}
	r.Match, r.Text = m, strings.TrimSpace(text)
	if err := checkFilterable(m, text); err != nil {
		return Rule{}, pointAt(text, err)
	}
	return r, nil
}

// ParseRules reads a rule list, checking its length.
func ParseRules(texts []string) ([]Rule, error) {
	if len(texts) > MaxRules {
		return nil, fmt.Errorf("%d rules: at most %d", len(texts), MaxRules)
	}
	rules := make([]Rule, 0, len(texts))
	for _, t := range texts {
		r, err := ParseRule(t)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// pointAt wraps a match error into a RuleError marking the word the error
// names.
func pointAt(text string, err error) error {
	re := &RuleError{Rule: text, Msg: err.Error()}
	var fe *flow.Error
	if !errors.As(err, &fe) || fe.Field == "" {
		return re
	}
	word := fe.Field
	if fe.Value != "" {
		word += "=" + fe.Value
	}
	at := wordIndex(text, word)
	if at < 0 {
		word = fe.Field
		at = wordIndex(text, word)
	}
	if at >= 0 {
		re.Word, re.At = word, at
	}
	return re
}

// wordIndex finds word in text where a word starts (after a delimiter),
// or returns -1.
func wordIndex(text, word string) int {
	for from := 0; from < len(text); {
		i := strings.Index(text[from:], word)
		if i < 0 {
			return -1
		}
		i += from
		if i == 0 || strings.ContainsRune(" ,\t", rune(text[i-1])) {
			return i
		}
		from = i + 1
	}
	return -1
}
