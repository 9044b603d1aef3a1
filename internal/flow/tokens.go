package flow

import "strings"

// token is one item of a flow description: key=value, key:value,
// key(value), or a bare key.
type token struct {
	key, value string
	hasValue   bool
}

// isDelim reports the characters that separate items.
func isDelim(c byte) bool { return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// tokenize splits s into items the way ovs-ofctl does. With lenientCtState
// it glues bare "+flag"/"-flag" items that follow a ct_state value onto it.
func tokenize(s string, lenientCtState bool) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		if isDelim(s[i]) {
			i++
			continue
		}
		t, next, err := readToken(s, i)
		if err != nil {
			return nil, err
		}
		i = next
		if lenientCtState && !t.hasValue && len(toks) > 0 && isFlagWord(t.key) {
			if last := &toks[len(toks)-1]; last.key == "ct_state" && isFlagWord(last.value) {
				last.value += t.key
				continue
			}
		}
		toks = append(toks, t)
	}
	return toks, nil
}

func isFlagWord(s string) bool { return s != "" && (s[0] == '+' || s[0] == '-') }

// readToken reads the item that starts at s[i] and returns where the next
// one may start.
func readToken(s string, i int) (token, int, error) {
	start := i
	for i < len(s) && !isDelim(s[i]) && s[i] != '=' && s[i] != ':' && s[i] != '(' {
		i++
	}
	t := token{key: s[start:i]}
	if i == len(s) || isDelim(s[i]) {
		return t, i, nil
	}
	if t.key == "" {
		return t, i, &Error{Msg: "missing field name before " + quoteRest(s[i:])}
	}
	t.hasValue = true
	if s[i] == '(' {
		end, ok := closingParen(s, i)
		if !ok {
			return t, i, &Error{Field: t.key, Msg: "missing ')'"}
		}
		t.value = s[i+1 : end]
		return t, end + 1, nil
	}
	i++
	vstart := i
	for i < len(s) && !isDelim(s[i]) {
		i++
	}
	t.value = s[vstart:i]
	return t, i, nil
}

// closingParen finds the ')' matching the '(' at s[open].
func closingParen(s string, open int) (int, bool) {
	depth := 0
	for j := open; j < len(s); j++ {
		switch s[j] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return j, true
			}
		}
	}
	return 0, false
}

func quoteRest(s string) string {
	if len(s) > 20 {
		s = s[:20] + "..."
	}
	return "\"" + strings.TrimSpace(s) + "\""
}
