// Package version is gvs's own version, written once and shared by gvsd
// and gvs: a release number plus the VCS revision the build came from.
package version

import (
	"runtime/debug"
	"sync"
)

// Release is the release number; the build adds its revision to it.
const Release = "0.1.0"

// String is the version of this binary: Release, then the commit it was
// built from ("0.1.0+7bc8d0b1a2c3", with "-dirty" for uncommitted
// changes) when the build recorded one. Binaries built outside a
// checkout (go test, go run of a file) show Release alone.
func String() string { return cached() }

var cached = sync.OnceValue(func() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return Release
	}
	return fromSettings(info.Settings)
})

// revisionLen is how many hex digits of the commit are shown, as git's
// abbreviated hashes do.
const revisionLen = 12

func fromSettings(settings []debug.BuildSetting) string {
	var rev string
	var dirty bool
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return Release
	}
	v := Release + "+" + rev[:min(len(rev), revisionLen)]
	if dirty {
		v += "-dirty"
	}
	return v
}
