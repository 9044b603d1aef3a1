package unixctl

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestVersionDefaultsToOVSCompatibleText(t *testing.T) {
	ts := startServer(t)
	got := mustCall(t, ts, "version")
	want := "ovs-vswitchd (Open vSwitch) 3.1.0 (gvs devel)\n"
	if got != want {
		t.Fatalf("version = %q, want %q", got, want)
	}
	ts.SetVersion(VersionText("ovs-vswitchd", "0.1.0"))
	if got := mustCall(t, ts, "version"); got != "ovs-vswitchd (Open vSwitch) 3.1.0 (gvs 0.1.0)\n" {
		t.Fatalf("version after SetVersion = %q", got)
	}
}

func TestWithVersion(t *testing.T) {
	ts := startServer(t, WithVersion("gvsd test 9"))
	if got := mustCall(t, ts, "version"); got != "gvsd test 9\n" {
		t.Fatalf("version = %q", got)
	}
}

func TestListCommandsIsSortedWithUsage(t *testing.T) {
	ts := startServer(t)
	ts.Register("zz/last", "BRIDGE [FLOW]", 1, 2, func([]string) (string, error) { return "", nil })
	ts.Register("aa/first", "", 0, 0, func([]string) (string, error) { return "", nil })
	out := mustCall(t, ts, "list-commands")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if lines[0] != "The available commands are:" {
		t.Fatalf("first line %q", lines[0])
	}
	var names []string
	for _, line := range lines[1:] {
		if !strings.HasPrefix(line, "  ") {
			t.Fatalf("line %q does not start with two spaces", line)
		}
		names = append(names, strings.Fields(line)[0])
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Fatalf("commands not sorted: %q before %q", names[i-1], names[i])
		}
	}
	for _, want := range []string{
		"  aa/first",
		"  coverage/read-counter   COUNTER",
		"  list-commands",
		"  version",
		"  vlog/list",
		"  zz/last                 BRIDGE [FLOW]",
	} {
		if !containsLine(lines, want) {
			t.Errorf("list-commands lacks line %q:\n%s", want, out)
		}
	}
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func TestUnknownCommand(t *testing.T) {
	ts := startServer(t)
	_, err := ts.call(t, "no/such")
	msg := remoteMessage(t, err)
	if !strings.HasPrefix(msg, `"no/such" is not a valid command`) || !strings.HasSuffix(msg, "\n") {
		t.Fatalf("message %q", msg)
	}
}

func TestArgumentCounts(t *testing.T) {
	ts := startServer(t)
	var got []string
	ts.Register("test/two-or-three", "A B [C]", 2, 3, func(args []string) (string, error) {
		got = args
		return strings.Join(args, "+"), nil
	})
	ts.Register("test/any", "", 0, -1, func(args []string) (string, error) { return fmt.Sprint(len(args)), nil })

	_, err := ts.call(t, "test/two-or-three", "a")
	if msg := remoteMessage(t, err); msg != "\"test/two-or-three\" command requires at least 2 arguments\n" {
		t.Errorf("too few: %q", msg)
	}
	_, err = ts.call(t, "test/two-or-three", "a", "b", "c", "d")
	if msg := remoteMessage(t, err); msg != "\"test/two-or-three\" command takes at most 3 arguments\n" {
		t.Errorf("too many: %q", msg)
	}
	if out := mustCall(t, ts, "test/two-or-three", "a", "b c"); out != "a+b c\n" || len(got) != 2 {
		t.Errorf("two args: %q, handler saw %q", out, got)
	}
	many := make([]string, 500)
	if out := mustCall(t, ts, "test/any", many...); out != "500\n" {
		t.Errorf("unlimited: %q", out)
	}
	if out := mustCall(t, ts, "test/any"); out != "0\n" {
		t.Errorf("no args: %q", out)
	}
}

func TestHandlerErrorBecomesErrorReply(t *testing.T) {
	ts := startServer(t)
	ts.Register("test/fail", "", 0, 0, func([]string) (string, error) {
		return "ignored", errors.New(`bridge "br9": no such bridge`)
	})
	_, err := ts.call(t, "test/fail")
	if msg := remoteMessage(t, err); msg != "bridge \"br9\": no such bridge\n" {
		t.Fatalf("message %q", msg)
	}
}

func TestHandlerPanicBecomesErrorReply(t *testing.T) {
	ts := startServer(t)
	ts.Register("test/panic", "", 0, 0, func([]string) (string, error) { panic("boom") })
	_, err := ts.call(t, "test/panic")
	if msg := remoteMessage(t, err); !strings.Contains(msg, "internal error: boom") {
		t.Fatalf("message %q", msg)
	}
	if out := mustCall(t, ts, "version"); out == "" {
		t.Fatal("server stopped answering after a panic")
	}
	if !strings.Contains(ts.console.String(), "|unixctl|ERR|command \"test/panic\": recovered from panic: boom") {
		t.Errorf("panic not logged; console:\n%s", ts.console.String())
	}
}

func TestResultKeepsExistingNewlineAndEmptyStaysEmpty(t *testing.T) {
	ts := startServer(t)
	ts.Register("test/echo", "TEXT", 1, 1, func(args []string) (string, error) { return args[0], nil })
	for in, want := range map[string]string{"": "", "x": "x\n", "x\n": "x\n", "a\nb": "a\nb\n", "tab\t\"q\" <&>": "tab\t\"q\" <&>\n"} {
		if got := mustCall(t, ts, "test/echo", in); got != want {
			t.Errorf("echo %q = %q, want %q", in, got, want)
		}
	}
}

func TestPipelinedRequestsOnOneConnection(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	for i := range 20 {
		out, err := c.Call("version")
		if err != nil || !strings.Contains(out, "Open vSwitch") {
			t.Fatalf("call %d: %q, %v", i, out, err)
		}
		if _, err := c.Call("no/such"); err == nil {
			t.Fatalf("call %d: unknown command succeeded", i)
		}
	}
}

func TestManyClientsAtOnce(t *testing.T) {
	ts := startServer(t)
	release := make(chan struct{})
	ts.Register("test/wait", "", 0, 0, func([]string) (string, error) {
		select {
		case <-release:
			return "released", nil
		case <-time.After(10 * time.Second):
			return "", errors.New("never released")
		}
	})
	const clients = 40
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Dial(ts.Path())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(15 * time.Second))
			method := "version"
			if i%2 == 0 {
				method = "test/wait"
			}
			if _, err := c.Call(method); err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
			}
		}()
	}
	// Blocked handlers must not stop other clients being answered.
	if out := mustCall(t, ts, "version"); out == "" {
		t.Fatal("empty version while handlers are blocked")
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// rawExchange writes raw bytes, ends its half of the stream and returns
// everything the server sends back before closing the connection.
func rawExchange(t *testing.T, ts *testServer, send []byte) string {
	t.Helper()
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: ts.Path(), Net: "unix"})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	go func() { // may block on huge inputs once the server stops reading
		conn.Write(send)
		conn.CloseWrite()
	}()
	got, err := io.ReadAll(conn)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		// A reset after the server closes on unread input is fine.
		t.Logf("read: %v", err)
	}
	return string(got)
}

func TestMalformedRequestsGetErrorOrClose(t *testing.T) {
	ts := startServer(t)
	cases := map[string]struct{ send, want string }{
		"not json":        {`hello`, `"error":"message is not a JSON object\n"`},
		"bad json":        {`{"id":1,"method":}`, `"id":null,"result":null,"error":"malformed JSON-RPC message`},
		"array":           {`[1,2]`, `not a JSON object`},
		"notification":    {`{"id":null,"method":"version","params":[]}`, `notification`},
		"reply":           {`{"id":1,"result":"x","error":null}`, `expected a request`},
		"no method":       {`{"id":7,"params":[]}`, `{"id":7,"result":null,"error":"request has no method string\n"}`},
		"number method":   {`{"id":7,"method":3,"params":[]}`, `"error":"request has no method string\n"`},
		"non-string arg":  {`{"id":"x","method":"version","params":[1]}`, `{"id":"x","result":null,"error":"command has non-string argument: 1\n"}`},
		"object params":   {`{"id":[1],"method":"version","params":{}}`, `{"id":[1],"result":null,"error":"request params must be an array of strings\n"}`},
		"missing params":  {`{"id":5,"method":"version"}`, `{"id":5,"result":"ovs-vswitchd (Open vSwitch)`},
		"mismatched":      {`{"id":1,"method":"version"]`, `malformed JSON-RPC message`},
		"string id":       {`{"id":"abc","method":"version","params":[]}`, `{"id":"abc","result":"ovs-vswitchd`},
		"unicode escapes": {`{"id":1,"method":"\u0076ersion","params":[]}`, `"result":"ovs-vswitchd`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := rawExchange(t, ts, []byte(tc.send))
			if !strings.Contains(got, tc.want) {
				t.Fatalf("sent %s\ngot  %s\nwant it to contain %s", tc.send, got, tc.want)
			}
		})
	}
	if out := mustCall(t, ts, "version"); out == "" {
		t.Fatal("server stopped answering")
	}
}

func TestOversizedRequestIsRefused(t *testing.T) {
	ts := startServer(t)
	huge := `{"id":1,"method":"version","params":["` + strings.Repeat("a", MaxRequestSize) + `"]}`
	got := rawExchange(t, ts, []byte(huge))
	if !strings.Contains(got, "exceeds") {
		t.Fatalf("oversized request answered with %q", got)
	}
	// Just under the limit is fine.
	ts.Register("test/len", "", 1, 1, func(args []string) (string, error) { return fmt.Sprint(len(args[0])), nil })
	big := strings.Repeat("b", MaxRequestSize-100)
	if out := mustCall(t, ts, "test/len", big); out != fmt.Sprintf("%d\n", len(big)) {
		t.Fatalf("large request: %q", out)
	}
}

func TestRegisterReplacesCommand(t *testing.T) {
	ts := startServer(t)
	ts.Register("test/x", "", 0, 0, func([]string) (string, error) { return "one", nil })
	ts.Register("test/x", "", 0, 0, func([]string) (string, error) { return "two", nil })
	if out := mustCall(t, ts, "test/x"); out != "two\n" {
		t.Fatalf("got %q", out)
	}
}

func TestExitRepliesThenCallsBack(t *testing.T) {
	ts := startServer(t)
	called := make(chan bool, 2)
	ts.RegisterExit(func(cleanup bool) {
		ts.Close() // allowed from the callback
		called <- cleanup
	})
	_, err := ts.call(t, "exit", "--bogus")
	if msg := remoteMessage(t, err); !strings.Contains(msg, "--bogus") {
		t.Fatalf("bad option: %q", msg)
	}
	select {
	case <-called:
		t.Fatal("exit callback ran after a refused exit")
	case <-time.After(100 * time.Millisecond):
	}
	if out := mustCall(t, ts, "exit", "--cleanup"); out != "" {
		t.Fatalf("exit replied %q", out)
	}
	select {
	case cleanup := <-called:
		if !cleanup {
			t.Fatal("exit --cleanup reported cleanup=false")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("exit callback never ran")
	}
	if _, err := os.Stat(ts.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket still exists after Close: %v", err)
	}
}

func TestExitWithoutCleanup(t *testing.T) {
	ts := startServer(t)
	called := make(chan bool, 1)
	ts.RegisterExit(func(cleanup bool) { called <- cleanup })
	mustCall(t, ts, "exit")
	select {
	case cleanup := <-called:
		if cleanup {
			t.Fatal("plain exit reported cleanup=true")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("exit callback never ran")
	}
}

func TestStaleSocketIsReplacedLiveOneIsNot(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/x.ctl"
	// A socket file nobody listens on, as a crashed daemon leaves.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	srv, err := NewServer(path)
	if err != nil {
		t.Fatalf("NewServer over a stale socket: %v", err)
	}
	defer srv.Close()
	go srv.Serve()
	if _, err := NewServer(path); err == nil || !strings.Contains(err.Error(), "another process is listening") {
		t.Fatalf("second NewServer on a live socket: %v", err)
	}
	if err := os.WriteFile(dir+"/plain", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewServer(dir + "/plain"); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("NewServer over a regular file: %v", err)
	}
	if _, err := NewServer(dir + "/" + strings.Repeat("p", 120)); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("NewServer with a long path: %v", err)
	}
}

func TestCloseDisconnectsIdleClientsAndIsIdempotent(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	if _, err := c.Call("version"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ts.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung on an idle client")
	}
	if _, err := c.Call("version"); err == nil {
		t.Fatal("call succeeded after Close")
	}
	if err := ts.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCoverageCommands(t *testing.T) {
	ts := startServer(t)
	hits := ts.cov.New("test_hits")
	ts.cov.New("test_never")
	for range 3 {
		hits.Inc()
	}
	out := mustCall(t, ts, "coverage/show")
	if !strings.HasPrefix(out, "Event coverage, avg rate over last: 5 seconds, last minute, last hour,  hash=") {
		t.Fatalf("coverage/show header:\n%s", out)
	}
	if !strings.Contains(out, "\ntest_hits ") || !strings.Contains(out, "total: 3\n") {
		t.Fatalf("coverage/show lacks test_hits:\n%s", out)
	}
	if strings.Contains(out, "test_never") {
		t.Fatalf("coverage/show lists a counter that never hit:\n%s", out)
	}
	// unixctl_received counted this request before the show ran.
	if !strings.Contains(out, "unixctl_received") {
		t.Fatalf("coverage/show lacks the server's own counters:\n%s", out)
	}
	if got := mustCall(t, ts, "coverage/read-counter", "test_hits"); got != "3\n" {
		t.Fatalf("read-counter = %q", got)
	}
	_, err := ts.call(t, "coverage/read-counter", "nope")
	if msg := remoteMessage(t, err); !strings.Contains(msg, "no such counter") {
		t.Fatalf("read-counter nope: %q", msg)
	}
}

func TestLogCommands(t *testing.T) {
	ts := startServer(t)
	ts.logs.Module("ofproto")
	mustCall(t, ts, "vlog/set", "ofproto:console:warn", "unixctl:file:off")
	out := mustCall(t, ts, "vlog/list")
	for _, want := range []string{
		"                 console    syslog    file\n                 -------    ------    ------\n",
		"ofproto           WARN       INFO       INFO\n",
		"unixctl           INFO       INFO        OFF\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("vlog/list lacks %q:\n%s", want, out)
		}
	}
	_, err := ts.call(t, "vlog/set", "nosuchthing:dbg")
	if msg := remoteMessage(t, err); msg != "no destination, level, or module \"nosuchthing\"\n" {
		t.Errorf("bad spec: %q", msg)
	}
	mustCall(t, ts, "vlog/set", "PATTERN:console:%c|%p|%m")
	if out := mustCall(t, ts, "vlog/list-pattern"); !strings.Contains(out, "CONSOLE  none                              %c|%p|%m\n") {
		t.Errorf("list-pattern:\n%s", out)
	}
	// Without a log file, vlog/reopen does nothing and succeeds, as in
	// OVS 3.1 (scripts run it after logrotate whatever the options).
	if out, err := ts.call(t, "vlog/reopen"); err != nil || out != "" {
		t.Errorf("reopen without a file: %q %v", out, err)
	}
	mustCall(t, ts, "vlog/set")
	if out := mustCall(t, ts, "vlog/list"); strings.Contains(out, "INFO") || strings.Contains(out, "WARN") {
		t.Errorf("vlog/set without args left levels below dbg:\n%s", out)
	}
}

// TestExitWaitingRepliesWhenDone: the reply to exit --cleanup comes only
// once the daemon says it is done, and the caller hears when it went out.
func TestExitWaitingRepliesWhenDone(t *testing.T) {
	ts := startServer(t)
	done := make(chan struct{})
	began := make(chan bool, 1)
	replied := ts.RegisterExitWaiting(func(cleanup bool) <-chan struct{} {
		began <- cleanup
		return done
	})
	answered := make(chan error, 1)
	client := ts.dial(t)
	go func() {
		_, err := client.Call("exit", "--cleanup")
		answered <- err
	}()
	if cleanup := <-began; !cleanup {
		t.Fatal("exit --cleanup began with cleanup=false")
	}
	select {
	case err := <-answered:
		t.Fatalf("exit answered (%v) before the daemon was done", err)
	case <-replied:
		t.Fatal("replied closed before the reply")
	case <-time.After(200 * time.Millisecond):
	}
	close(done)
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("exit --cleanup: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reply once done")
	}
	select {
	case <-replied:
	case <-time.After(5 * time.Second):
		t.Fatal("replied never closed")
	}
}
