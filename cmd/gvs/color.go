package main

import "slices"

// colorModes are the values of --color.
var colorModes = []string{"auto", "always", "never"}

func parseColorMode(s string) (string, error) {
	if !slices.Contains(colorModes, s) {
		return "", usageErrorf("--color=%q: want auto, always or never", s)
	}
	return s, nil
}

// useColor decides whether output gets colour. --color=always and never
// are the user's explicit choice and win; auto colours only a terminal,
// and not when NO_COLOR is set to anything non-empty (no-color.org) or
// the terminal is dumb.
func useColor(mode string, getenv func(string) string, stdoutTTY bool) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	return stdoutTTY && getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
}

// color is useColor for this app's flags and environment.
func (a *app) color() bool { return useColor(a.colorFlag, a.getenv, a.stdoutTTY) }
