package vlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gvs/internal/testutil"
)

// newTestRegistry returns a registry whose console and syslog go to
// buffers the test can read.
func newTestRegistry(t *testing.T) (r *Registry, console, syslog *bytes.Buffer) {
	t.Helper()
	r = NewRegistry("gvsd")
	console, syslog = &bytes.Buffer{}, &bytes.Buffer{}
	r.SetConsole(console)
	r.SetSyslog(syslog)
	return r, console, syslog
}

func TestParseLevelAndString(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Level
	}{{"off", Off}, {"EMER", Emer}, {"Err", Err}, {"warn", Warn}, {"info", Info}, {"DBG", Dbg}} {
		got, err := ParseLevel(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseLevel(%q) = %v, %v", tc.in, got, err)
		}
		if got.String() != strings.ToUpper(tc.in) {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	if _, err := ParseLevel("debug"); err == nil {
		t.Error(`ParseLevel("debug") succeeded; OVS calls it dbg`)
	}
	if Level(42).String() != "LEVEL(42)" {
		t.Errorf("out of range level: %q", Level(42).String())
	}
	if d, err := ParseDestination("SysLog"); err != nil || d != Syslog {
		t.Errorf("ParseDestination: %v, %v", d, err)
	}
}

func levelsOf(m *Module) [3]Level {
	return [3]Level{m.Level(Console), m.Level(Syslog), m.Level(File)}
}

func TestSetSpecForms(t *testing.T) {
	r, _, _ := newTestRegistry(t)
	a, b := r.Module("alpha"), r.Module("beta")
	steps := []struct {
		spec        string
		alpha, beta [3]Level
	}{
		{"alpha:console:warn", [3]Level{Warn, Info, Info}, [3]Level{Info, Info, Info}},
		{"BETA:err", [3]Level{Warn, Info, Info}, [3]Level{Err, Err, Err}},
		{"syslog:off", [3]Level{Warn, Off, Info}, [3]Level{Err, Off, Err}},
		{"file dbg, alpha", [3]Level{Warn, Off, Dbg}, [3]Level{Err, Off, Err}},
		{"any:beta:console", [3]Level{Warn, Off, Dbg}, [3]Level{Dbg, Off, Err}},
		{"emer", [3]Level{Emer, Emer, Emer}, [3]Level{Emer, Emer, Emer}},
		{"", [3]Level{Dbg, Dbg, Dbg}, [3]Level{Dbg, Dbg, Dbg}},
	}
	for _, s := range steps {
		if err := r.Set(s.spec); err != nil {
			t.Fatalf("Set(%q): %v", s.spec, err)
		}
		if levelsOf(a) != s.alpha || levelsOf(b) != s.beta {
			t.Fatalf("after %q: alpha %v beta %v, want %v %v", s.spec, levelsOf(a), levelsOf(b), s.alpha, s.beta)
		}
	}
	// A module created after a global setting starts from it.
	if err := r.Set("console:warn"); err != nil {
		t.Fatal(err)
	}
	if got := levelsOf(r.Module("gamma")); got != [3]Level{Warn, Dbg, Dbg} {
		t.Fatalf("new module levels %v", got)
	}
}

func TestSetSpecErrors(t *testing.T) {
	r, _, _ := newTestRegistry(t)
	r.Module("alpha")
	r.Module("beta")
	for spec, want := range map[string]string{
		"nosuch":                `no destination, level, or module "nosuch"`,
		"console:syslog":        "cannot specify multiple destinations",
		"info:dbg":              "cannot specify multiple levels",
		"alpha:beta":            "cannot specify multiple modules",
		"PATTERN:console":       "missing destination or pattern in PATTERN:<destination>:<pattern>",
		"pattern:screen:%m":     `unknown destination "screen"`,
		"FACILITY:nowhere":      `invalid facility "nowhere"`,
		"facility:authpriv":     `invalid facility "authpriv"`,
		"alpha:console:verbose": `no destination, level, or module "verbose"`,
	} {
		err := r.Set(spec)
		if err == nil || err.Error() != want {
			t.Errorf("Set(%q) = %v, want %q", spec, err, want)
		}
	}
}

func TestSetUnknownWordIsTyped(t *testing.T) {
	r, _, _ := newTestRegistry(t)
	var uw *UnknownWordError
	if err := r.Set("vconn:dbg"); !errors.As(err, &uw) || uw.Word != "vconn" {
		t.Fatalf("Set(vconn:dbg) = %v, want an UnknownWordError for vconn", err)
	}
	if err := r.Set("info:dbg"); errors.As(err, &uw) {
		t.Fatalf("Set(info:dbg) = %v, not an unknown word", err)
	}
}

func TestListLayout(t *testing.T) {
	r, _, _ := newTestRegistry(t)
	r.Module("zeta")
	r.Module("a_rather_long_module_name")
	if err := r.Set("zeta:syslog:off"); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"                 console    syslog    file\n" +
		"                 -------    ------    ------\n" +
		"a_rather_long_module_name  INFO       INFO       INFO\n" +
		"zeta              INFO        OFF       INFO\n"
	if got := r.List(); got != want {
		t.Fatalf("List:\n%s\nwant:\n%s", got, want)
	}
}

func TestConsoleDefaultFormat(t *testing.T) {
	r, console, _ := newTestRegistry(t)
	m := r.Module("bridge")
	m.Info("added port %s", "p1")
	m.Warn("second")
	m.Dbg("not at info")
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\|00001\|bridge\|INFO\|added port p1\n` +
		`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\|00002\|bridge\|WARN\|second\n$`)
	if !re.MatchString(console.String()) {
		t.Fatalf("console output:\n%s", console.String())
	}
}

func TestSyslogGetsPriorityPrefix(t *testing.T) {
	r, _, syslog := newTestRegistry(t)
	r.Module("bridge").Err("broken")
	re := regexp.MustCompile(`^<27> [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S* gvsd: ovs\|00001\|bridge\|ERR\|broken\n$`)
	if !re.MatchString(syslog.String()) {
		t.Fatalf("syslog output %q", syslog.String())
	}
	if err := r.Set("FACILITY:local0"); err != nil {
		t.Fatal(err)
	}
	syslog.Reset()
	r.Module("bridge").Info("x")
	if !strings.HasPrefix(syslog.String(), "<134> ") { // 16*8 + 6
		t.Fatalf("local0 info prefix: %q", syslog.String())
	}
}

func TestPatternEscapes(t *testing.T) {
	env := environment{program: "gvsd", hostname: "h1", pid: 77, start: time.Unix(100, 0), facility: 3}
	rec := record{level: Warn, module: "mod", msg: "hello", serial: 5,
		when: time.Date(2024, 3, 7, 9, 4, 2, 123456789, time.UTC)}
	for pat, want := range map[string]string{
		"%A|%P|%E|%c|%p|%m|%N":   "gvsd|77|h1|mod|WARN|hello|5",
		"%05N|%-6c|%6c|%3m":      "00005|mod   |   mod|hello",
		"%D":                     "2024-03-07 09:04:02",
		"%D{%Y%m%d %T.###}":      "20240307 09:04:02.123",
		"%D{%e %b %j %y %s}":     " 7 Mar 067 24 1709802242",
		"%D{%S.##########}":      "02.1234567890",
		"%B %t%T %%%n":           "28 main %\n",
		"%r":                     fmt.Sprint(rec.when.Sub(env.start).Milliseconds()),
		"100% sure %q %":         "100% sure %q %",
		"%D{unterminated":        "%D{unterminated",
		"%D{%Q} %999999999999c|": "%Q " + strings.Repeat(" ", 997) + "mod|",
	} {
		p := parsePattern(pat)
		if got := string(p.appendTo(nil, &rec, &env)); got != want {
			t.Errorf("pattern %q = %q, want %q", pat, got, want)
		}
	}
}

func TestPatternCommandChangesOutput(t *testing.T) {
	r, console, _ := newTestRegistry(t)
	if err := r.Set("PATTERN:CONSOLE:%c:%p:%m"); err != nil {
		t.Fatal(err)
	}
	r.Module("m").Info("with: colons")
	if console.String() != "m:INFO:with: colons\n" {
		t.Fatalf("console %q", console.String())
	}
	if !strings.Contains(r.ListPatterns(), "\nCONSOLE  none                              %c:%p:%m\n") {
		t.Fatalf("ListPatterns:\n%s", r.ListPatterns())
	}
}

func TestFileDestination(t *testing.T) {
	r, console, _ := newTestRegistry(t)
	m := r.Module("mod")
	if err := r.Set("console:off"); err != nil {
		t.Fatal(err)
	}
	if err := r.Set("syslog:off"); err != nil {
		t.Fatal(err)
	}
	if m.Enabled(Info) {
		t.Fatal("enabled with console and syslog off and no log file")
	}
	path := filepath.Join(t.TempDir(), "gvsd.log")
	if err := r.OpenFile(path); err != nil {
		t.Fatal(err)
	}
	if !m.Enabled(Info) || m.Enabled(Dbg) {
		t.Fatal("file at info not reflected in Enabled")
	}
	m.Info("first")
	// Rotation: the old file is renamed, reopen starts a new one.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := r.ReopenFile(); err != nil {
		t.Fatal(err)
	}
	m.Info("second")
	r.CloseFile()
	m.Info("dropped")
	if m.Enabled(Info) {
		t.Fatal("still enabled after CloseFile")
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	fileLine := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\|\d{5}\|mod\|INFO\|`)
	if !fileLine.Match(old) || !strings.HasSuffix(string(old), "|first\n") {
		t.Errorf("rotated file %q", old)
	}
	if !strings.HasSuffix(string(cur), "|second\n") || strings.Contains(string(cur), "dropped") {
		t.Errorf("current file %q", cur)
	}
	if console.Len() != 0 {
		t.Errorf("console got %q with console off", console.String())
	}
	if err := NewRegistry("x").ReopenFile(); err == nil {
		t.Error("ReopenFile without a file succeeded")
	}
	if err := r.OpenFile(filepath.Join(t.TempDir(), "no", "dir", "f.log")); err == nil {
		t.Error("OpenFile in a missing directory succeeded")
	}
}

func TestModuleSetLevelAndSameModule(t *testing.T) {
	r, _, _ := newTestRegistry(t)
	m := r.Module("Ofproto")
	if r.Module("ofproto") != m {
		t.Fatal("module names are not matched without case")
	}
	if err := m.SetLevel(Console, Dbg); err != nil || !m.Enabled(Dbg) {
		t.Fatalf("SetLevel: %v, enabled %v", err, m.Enabled(Dbg))
	}
	if err := m.SetLevel(Destination(9), Dbg); err == nil {
		t.Error("SetLevel on a bad destination succeeded")
	}
	if err := m.SetLevel(Console, Level(9)); err == nil {
		t.Error("SetLevel with a bad level succeeded")
	}
	if m.Enabled(Off) {
		t.Error("Off is never enabled")
	}
}

func TestDisabledLoggingDoesNotAllocate(t *testing.T) {
	r, _, _ := newTestRegistry(t)
	m := r.Module("hot")
	if err := r.Set("hot:off"); err != nil {
		t.Fatal(err)
	}
	port, n := "eth0", 12345
	allocs := testing.AllocsPerRun(1000, func() {
		m.Dbg("constant message")
		if m.Enabled(Dbg) {
			m.Dbg("miss on %s, %d packets", port, n)
		}
	})
	if allocs != 0 {
		t.Fatalf("disabled logging allocated %v times per call", allocs)
	}
}

func BenchmarkDisabledDbg(b *testing.B) {
	m := NewRegistry("bench").Module("hot")
	port := "eth0"
	b.ReportAllocs()
	for b.Loop() {
		if m.Enabled(Dbg) {
			m.Dbg("miss on %s", port)
		}
	}
}

func TestSlogHandler(t *testing.T) {
	r, console, _ := newTestRegistry(t)
	if err := r.Set("PATTERN:console:%p %m"); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(r.Module("lib").Handler())
	logger.Debug("hidden")
	logger.With("bridge", "br0").WithGroup("port").Warn("link down", "name", "p1", slog.Group("stats", "rx", 3))
	logger.Error("failed", "err", fmt.Errorf("boom"))
	want := "WARN link down bridge=br0 port.name=p1 port.stats.rx=3\nERR failed err=boom\n"
	if console.String() != want {
		t.Fatalf("console %q, want %q", console.String(), want)
	}
	if logger.Handler().Enabled(context.Background(), slog.LevelDebug) {
		t.Fatal("debug enabled at info")
	}
}

func TestConcurrentLoggingAndSetting(t *testing.T) {
	r, _, _ := newTestRegistry(t)
	var out testutil.SyncBuffer
	r.SetConsole(&out)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := r.Module(fmt.Sprintf("m%d", i%2))
			for j := range 200 {
				m.Info("message %d", j)
			}
		}()
	}
	for range 50 {
		r.Set("console:dbg")
		r.Set("m0:console:off")
		r.List()
	}
	wg.Wait()
	// Every line is whole: serial numbers are unique and in order.
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	for i, line := range lines {
		fields := strings.Split(line, "|")
		if len(fields) != 5 {
			t.Fatalf("torn line %q", line)
		}
		if i > 0 && fields[1] <= strings.Split(lines[i-1], "|")[1] {
			t.Fatalf("serials out of order at %q", line)
		}
	}
}

func TestDefaultRegistryNew(t *testing.T) {
	if New("vlog_test_module") != Default.Module("VLOG_TEST_MODULE") {
		t.Fatal("New does not use Default")
	}
}

// FuzzSetAndPattern: any vlog/set argument either fails cleanly or leaves
// a registry that still lists and logs.
func FuzzSetAndPattern(f *testing.F) {
	for _, seed := range []string{"alpha:console:dbg", "PATTERN:file:%-05c%D{%T.###}%", "facility:local7", "any,,:", "%", "pattern:console:%d{"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		r, console, _ := newTestRegistry(t)
		m := r.Module("alpha")
		r.Set(spec)
		r.Set("PATTERN:console:" + spec)
		m.Emer("after %q", spec)
		if console.Len() == 0 && m.Level(Console) != Off {
			t.Fatalf("nothing logged at emer with console at %v", m.Level(Console))
		}
		if !strings.Contains(r.List(), "alpha") {
			t.Fatal("module missing from List")
		}
	})
}
