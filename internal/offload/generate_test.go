package offload

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestObjectBuiltFromSource rebuilds the program with the generate
// command of offload.go and checks that fastpath.o, which gvsd embeds, is
// what bpf/fastpath.c makes: a change to the C source without `go
// generate` fails here. The build is reproducible (no paths, fixed
// flags) for one clang version, Debian 12's, which scripts/test.sh
// installs.
func TestObjectBuiltFromSource(t *testing.T) {
	if _, err := exec.LookPath("clang"); err != nil {
		t.Fatal("clang is needed to check fastpath.o against its source (apt-get install clang)")
	}
	src, err := os.ReadFile("offload.go")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^//go:generate (clang .*)$`).FindSubmatch(src)
	if m == nil {
		t.Fatal("offload.go has no go:generate clang line")
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "fastpath.o")
	args := strings.Fields(os.Expand(string(m[1]), func(v string) string {
		if v == "PWD" {
			return wd
		}
		return os.Getenv(v)
	}))
	args[len(args)-1] = out // -o's argument
	if b, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, b)
	}
	built, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(built, object) {
		t.Fatalf("fastpath.o is not what bpf/fastpath.c builds to: run go generate ./internal/offload")
	}
}
