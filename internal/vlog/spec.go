package vlog

import (
	"errors"
	"fmt"
	"strings"
)

// Set applies one vlog/set specification, the same syntax the -v command
// line option takes:
//
//   - words separated by spaces, commas or colons, at most one each of a
//     module name, a destination (console, syslog, file) and a level (off,
//     emer, err, warn, info, dbg), in any order and any case; a missing
//     module means every module (and those created later), a missing
//     destination every destination, a missing level dbg; "any" is ignored;
//   - "PATTERN:<destination>:<pattern>" sets a destination's format;
//   - "FACILITY:<facility>" sets the syslog facility.
//
// The empty spec sets everything to dbg.
func (r *Registry) Set(spec string) error {
	if head, rest, ok := strings.Cut(spec, ":"); ok {
		switch strings.ToLower(strings.TrimSpace(head)) {
		case "pattern":
			return r.setPattern(rest)
		case "facility":
			return r.setFacility(rest)
		}
	}
	sel, err := r.parseSelection(spec)
	if err != nil {
		return err
	}
	r.applySelection(sel)
	return nil
}

// selection is a parsed level-setting spec; a nil module or a negative
// destination means all of them.
type selection struct {
	module *Module
	dest   Destination
	level  Level
}

func (r *Registry) parseSelection(spec string) (selection, error) {
	sel := selection{dest: -1, level: Dbg}
	var haveDest, haveLevel bool
	words := strings.FieldsFunc(spec, func(c rune) bool { return c == ' ' || c == ',' || c == ':' })
	for _, word := range words {
		if strings.EqualFold(word, "any") {
			continue
		}
		if d, err := ParseDestination(word); err == nil {
			if haveDest {
				return sel, errors.New("cannot specify multiple destinations")
			}
			sel.dest, haveDest = d, true
			continue
		}
		if l, err := ParseLevel(word); err == nil {
			if haveLevel {
				return sel, errors.New("cannot specify multiple levels")
			}
			sel.level, haveLevel = l, true
			continue
		}
		m := r.lookup(word)
		if m == nil {
			return sel, &UnknownWordError{Word: word}
		}
		if sel.module != nil {
			return sel, errors.New("cannot specify multiple modules")
		}
		sel.module = m
	}
	return sel, nil
}

// UnknownWordError is a spec word that names no destination, level or
// module, so that a caller can tell a module it does not have (a -v
// option written for Open vSwitch) from a malformed spec.
type UnknownWordError struct{ Word string }

func (e *UnknownWordError) Error() string {
	return fmt.Sprintf("no destination, level, or module %q", e.Word)
}

func (r *Registry) lookup(name string) *Module {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.modules[strings.ToLower(name)]
}

func (r *Registry) applySelection(sel selection) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for d := range numDestinations {
		if sel.dest >= 0 && d != sel.dest {
			continue
		}
		if sel.module != nil {
			sel.module.levels[d].Store(int32(sel.level))
			continue
		}
		r.defaults[d] = sel.level
		for _, m := range r.modules {
			m.levels[d].Store(int32(sel.level))
		}
	}
	r.refreshAllLocked()
}

// setPattern handles "PATTERN:<destination>:<pattern>"; rest is what
// follows the first colon, and the pattern may itself contain colons.
func (r *Registry) setPattern(rest string) error {
	destName, text, ok := strings.Cut(rest, ":")
	if !ok {
		return errors.New("missing destination or pattern in PATTERN:<destination>:<pattern>")
	}
	d, err := ParseDestination(strings.TrimSpace(destName))
	if err != nil {
		return err
	}
	p := parsePattern(text)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.patterns[d] = p
	return nil
}

func (r *Registry) setFacility(name string) error {
	code, err := parseFacility(strings.TrimSpace(name))
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.env.facility = code
	return nil
}
