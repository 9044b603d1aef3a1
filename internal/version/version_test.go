package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromSettings(t *testing.T) {
	rev := "7bc8d0b1a2c3d4e5f60718293a4b5c6d7e8f9012"
	for _, tc := range []struct {
		settings []debug.BuildSetting
		want     string
	}{
		{nil, Release},
		{[]debug.BuildSetting{{Key: "vcs.revision", Value: rev}}, Release + "+7bc8d0b1a2c3"},
		{[]debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "true"}}, Release + "+7bc8d0b1a2c3-dirty"},
		{[]debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}, Release + "+abc"},
	} {
		if got := fromSettings(tc.settings); got != tc.want {
			t.Errorf("fromSettings(%v) = %q, want %q", tc.settings, got, tc.want)
		}
	}
}

func TestStringStartsWithRelease(t *testing.T) {
	if !strings.HasPrefix(String(), Release) {
		t.Fatalf("String() = %q", String())
	}
}
