package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The chaos test's limits: what gvsd must hold to while everything below
// happens at once.
const (
	chaosDuration    = 20 * time.Second
	chaosClients     = 50
	chaosStalled     = 5
	chaosMemoryBound = 256 << 20        // bytes of resident memory, at its peak
	chaosShowLimit   = time.Second      // for each ovs-vsctl show
	chaosPingGap     = 20               // missing echo replies in a row (1 s at 50 ms)
	chaosTmpfsSize   = "64m"            // the journal's file system
	chaosTxnWait     = 15 * time.Second // for one transaction's reply
)

// TestChaos runs gvsd while, at the same time: 50 clients transact and
// monitor, 5 clients stop reading, one client sends malformed and
// oversized messages, the journal's file system fills up and is freed
// again, and pings cross a mirrored bridge. Afterwards every acknowledged
// transaction is in the database after a restart and none that failed
// is; gvsd's memory stayed under chaosMemoryBound, ovs-vsctl show
// answered within chaosShowLimit throughout, and forwarding never
// stopped.
func TestChaos(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "ping", "mount")
	dbDir := t.TempDir()
	lab.must("mount", "-t", "tmpfs", "-o", "size="+chaosTmpfsSize, "gvschaos", dbDir)
	t.Cleanup(func() { _, _ = lab.run("umount", "-l", dbDir) })
	g := StartGvsdDB(t, filepath.Join(dbDir, "conf.db"))

	g.MustVsctl("add-br", "chbr")
	addInternalPorts(lab, g, "chbr",
		labPort{name: "chp1", ns: "chns1", addrs: []string{"10.77.0.1/24"}},
		labPort{name: "chp2", ns: "chns2", addrs: []string{"10.77.0.2/24"}},
		labPort{name: "chp3", ns: "chns3"})
	g.MustVsctl("--", "--id=@p", "get", "port", "chp3",
		"--", "--id=@m", "create", "mirror", "name=chm", "select-all=true", "output-port=@p",
		"--", "set", "bridge", "chbr", "mirrors=@m")
	lab.pingOK("chns1", "10.77.0.2")

	ctx, cancel := context.WithTimeout(context.Background(), chaosDuration)
	defer cancel()
	var wg sync.WaitGroup
	run := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }

	pingOut := make(chan string, 1)
	run(func() { pingOut <- chaosPing(lab, "chns1", "10.77.0.2") })
	book := &chaosBook{acked: map[string]bool{}, failed: map[string]bool{}}
	for i := range chaosClients {
		run(func() { chaosWriter(ctx, g.Socket(), i, book) })
	}
	for i := range chaosStalled {
		run(func() { chaosStaller(ctx, g.Socket(), i) })
	}
	var hostile atomic.Int64
	run(func() { hostile.Store(int64(chaosHostile(ctx, g.Socket()))) })
	var fills atomic.Int64
	run(func() { fills.Store(int64(chaosFillDisk(ctx, dbDir))) })
	var showWorst atomic.Int64
	var showErr atomic.Value
	run(func() { chaosShow(ctx, g, &showWorst, &showErr) })
	var peak atomic.Int64
	run(func() { chaosMemory(ctx, g.cmd.Process.Pid, &peak) })
	wg.Wait()

	t.Logf("transactions: %d acknowledged, %d refused; disk filled %d times; %d hostile connections; worst ovs-vsctl show %v; peak RSS %d MiB",
		len(book.acked), len(book.failed), fills.Load(), hostile.Load(), time.Duration(showWorst.Load()), peak.Load()>>20)
	if err, _ := showErr.Load().(string); err != "" {
		t.Errorf("ovs-vsctl show: %s", err)
	}
	if worst := time.Duration(showWorst.Load()); worst > chaosShowLimit {
		t.Errorf("ovs-vsctl show took %v at worst, limit %v", worst, chaosShowLimit)
	}
	if p := peak.Load(); p > chaosMemoryBound {
		t.Errorf("gvsd's resident memory peaked at %d MiB, bound %d MiB", p>>20, chaosMemoryBound>>20)
	}
	if len(book.acked) < chaosClients || fills.Load() == 0 || len(book.failed) == 0 {
		t.Errorf("the chaos did not happen: %d acknowledged, %d refused, %d disk fills", len(book.acked), len(book.failed), fills.Load())
	}
	if gap, err := chaosLongestPingGap(<-pingOut); err != nil || gap > chaosPingGap {
		t.Errorf("forwarding stopped: %d echo replies in a row missing (%v)", gap, err)
	}
	if strings.Contains(g.log.String(), "panic") {
		t.Errorf("gvsd panicked:\n%s", g.log.String())
	}

	// What was acknowledged survives a crash; what was refused is absent.
	g.Kill9()
	g.Start()
	present, err := chaosStoredKeys(g.Socket())
	if err != nil {
		t.Fatalf("reading the database after the restart: %v", err)
	}
	lost, ghosts := 0, 0
	for k := range book.acked {
		if !present[k] {
			lost++
		}
	}
	for k := range book.failed {
		if present[k] {
			ghosts++
		}
	}
	if lost > 0 || ghosts > 0 {
		t.Fatalf("after a restart: %d acknowledged transactions lost, %d refused ones present", lost, ghosts)
	}
}

// chaosBook records the outcome of every transaction, by the key it adds.
type chaosBook struct {
	mu            sync.Mutex
	acked, failed map[string]bool
}

func (b *chaosBook) note(key string, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		b.acked[key] = true
	} else {
		b.failed[key] = true
	}
}

// chaosConn is a raw JSON-RPC connection to gvsd's database.
type chaosConn struct {
	c       net.Conn
	mu      sync.Mutex
	pending map[string]chan map[string]any
	nextID  int
	closed  chan struct{}
}

func chaosDial(sock string) (*chaosConn, error) {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return nil, err
	}
	cc := &chaosConn{c: c, pending: map[string]chan map[string]any{}, closed: make(chan struct{})}
	go cc.read()
	return cc, nil
}

// read answers echo requests and hands replies to their callers;
// notifications are read and dropped.
func (cc *chaosConn) read() {
	defer close(cc.closed)
	dec := json.NewDecoder(bufio.NewReader(cc.c))
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return
		}
		if m["method"] == "echo" {
			_ = cc.send(map[string]any{"id": m["id"], "result": m["params"], "error": nil})
			continue
		}
		id, _ := m["id"].(string)
		cc.mu.Lock()
		ch := cc.pending[id]
		delete(cc.pending, id)
		cc.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

func (cc *chaosConn) send(v any) error {
	b, _ := json.Marshal(v)
	cc.mu.Lock()
	defer cc.mu.Unlock()
	_ = cc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := cc.c.Write(b)
	return err
}

// call sends a request and waits for its reply.
func (cc *chaosConn) call(method string, params ...any) (map[string]any, error) {
	cc.mu.Lock()
	cc.nextID++
	id := "c" + strconv.Itoa(cc.nextID)
	ch := make(chan map[string]any, 1)
	cc.pending[id] = ch
	cc.mu.Unlock()
	if err := cc.send(map[string]any{"id": id, "method": method, "params": params}); err != nil {
		return nil, err
	}
	select {
	case m := <-ch:
		return m, nil
	case <-cc.closed:
		return nil, errors.New("connection closed")
	case <-time.After(chaosTxnWait):
		return nil, fmt.Errorf("no reply to %s within %v", method, chaosTxnWait)
	}
}

// chaosWriter monitors the Queue table and inserts one Queue row after
// another, each with a unique key, noting which were acknowledged and
// which refused (an error in the result). A transaction without a reply
// counts as neither.
func chaosWriter(ctx context.Context, sock string, n int, book *chaosBook) {
	cc, err := chaosDial(sock)
	if err != nil {
		return
	}
	defer cc.c.Close()
	if _, err := cc.call("monitor", "Open_vSwitch", "chaos", map[string]any{"Queue": map[string]any{"columns": []any{"external_ids"}}}); err != nil {
		return
	}
	for i := 0; ctx.Err() == nil; i++ {
		key := fmt.Sprintf("w%d-%d", n, i)
		// The padding outruns the journal's preallocated space while the
		// disk is full.
		row := map[string]any{"external_ids": []any{"map", []any{[]any{"chaos", key}, []any{"pad", chaosPad}}}}
		m, err := cc.call("transact", "Open_vSwitch", map[string]any{"op": "insert", "table": "Queue", "row": row})
		if err != nil {
			return
		}
		res, _ := m["result"].([]any)
		ok := len(res) == 1
		for _, r := range res {
			if e, _ := r.(map[string]any); e != nil && e["error"] != nil {
				ok = false
			}
		}
		if res != nil {
			book.note(key, ok)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var chaosPad = strings.Repeat("p", 2048)

// chaosStaller opens monitors and then never reads a byte.
func chaosStaller(ctx context.Context, sock string, n int) {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return
	}
	defer c.Close()
	for i := range 20 {
		req := map[string]any{"id": i, "method": "monitor",
			"params": []any{"Open_vSwitch", fmt.Sprintf("s%d-%d", n, i), map[string]any{"Queue": map[string]any{}}}}
		b, _ := json.Marshal(req)
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.Write(b); err != nil {
			break
		}
	}
	<-ctx.Done()
}

// chaosHostile keeps sending malformed, oversized and nonsensical
// messages on fresh connections, and returns how many it opened.
func chaosHostile(ctx context.Context, sock string) int {
	junk := [][]byte{
		[]byte(`{"id":1,"method":`),
		[]byte(`}}}]]]`),
		[]byte(`{"id":2,"method":"transact","params":["Open_vSwitch",{"op":"insert","table":"Nope","row":{}}]}`),
		[]byte(`{"id":3,"method":"monitor","params":[]}`),
		[]byte(`{"id":4,"method":"transact","params":"x"}`),
		append([]byte(`[`), make([]byte, 1<<16)...),
	}
	opened := 0
	for i := 0; ctx.Err() == nil; i++ {
		c, err := net.DialTimeout("unix", sock, 5*time.Second)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		opened++
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if i%4 == 3 {
			// An oversized message: a string that never ends, until
			// gvsd hangs up or 256 MiB have gone.
			_, _ = c.Write([]byte(`{"id":9,"method":"echo","params":["`))
			chunk := []byte(strings.Repeat("x", 1<<20))
			for range 256 {
				if _, err := c.Write(chunk); err != nil || ctx.Err() != nil {
					break
				}
			}
		} else {
			_, _ = c.Write(junk[i%len(junk)])
			_, _ = c.Read(make([]byte, 4096))
		}
		c.Close()
		time.Sleep(50 * time.Millisecond)
	}
	return opened
}

// chaosFillDisk fills the journal's file system, holds it full for a
// while, frees it, and again, and returns how many times it filled it.
func chaosFillDisk(ctx context.Context, dir string) int {
	filler := filepath.Join(dir, "filler")
	defer os.Remove(filler)
	chunk := make([]byte, 256<<10)
	fills := 0
	for {
		select {
		case <-ctx.Done():
			return fills
		case <-time.After(3 * time.Second):
		}
		f, err := os.Create(filler)
		if err != nil {
			continue
		}
		for {
			if _, err := f.Write(chunk); err != nil {
				if errors.Is(err, syscall.ENOSPC) {
					fills++
				}
				break
			}
		}
		f.Close()
		select {
		case <-ctx.Done():
		case <-time.After(4 * time.Second):
		}
		os.Remove(filler)
	}
}

// chaosShow runs ovs-vsctl show again and again and keeps the longest
// time it took, and the first failure.
func chaosShow(ctx context.Context, g *Gvsd, worst *atomic.Int64, failure *atomic.Value) {
	for ctx.Err() == nil {
		start := time.Now()
		out, errOut, err := g.Vsctl("show")
		took := time.Since(start)
		if took > time.Duration(worst.Load()) {
			worst.Store(int64(took))
		}
		if (err != nil || !strings.Contains(out, "chbr")) && failure.Load() == nil {
			failure.Store(fmt.Sprintf("%v: %s", err, errOut))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// chaosMemory samples a process's resident memory and keeps its peak.
func chaosMemory(ctx context.Context, pid int, peak *atomic.Int64) {
	for ctx.Err() == nil {
		if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			for _, line := range strings.Split(string(status), "\n") {
				if f := strings.Fields(line); len(f) >= 2 && (f[0] == "VmHWM:" || f[0] == "VmRSS:") {
					kb, _ := strconv.ParseInt(f[1], 10, 64)
					if kb<<10 > peak.Load() {
						peak.Store(kb << 10)
					}
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// chaosPing pings for the whole chaos and returns ping's output.
func chaosPing(lab *netLab, ns, addr string) string {
	count := strconv.Itoa(int(chaosDuration / (50 * time.Millisecond)))
	ctx, cancel := context.WithTimeout(context.Background(), chaosDuration+30*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "ping", "-n", "-i", "0.05", "-W", "1", "-c", count, addr).CombinedOutput()
	return string(out)
}

var icmpSeq = regexp.MustCompile(`icmp_seq=(\d+)`)

// chaosLongestPingGap returns the longest run of echo requests without a
// reply, in ping's output.
func chaosLongestPingGap(out string) (int, error) {
	seen := map[int]bool{}
	last := 0
	for _, m := range icmpSeq.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		seen[n] = true
		last = max(last, n)
	}
	if len(seen) == 0 {
		return 0, fmt.Errorf("no reply at all: %s", out)
	}
	gap, run := 0, 0
	for n := 1; n <= last; n++ {
		if seen[n] {
			run = 0
			continue
		}
		run++
		gap = max(gap, run)
	}
	return gap, nil
}

// chaosStoredKeys returns the chaos keys of every Queue row.
func chaosStoredKeys(sock string) (map[string]bool, error) {
	cc, err := chaosDial(sock)
	if err != nil {
		return nil, err
	}
	defer cc.c.Close()
	m, err := cc.call("transact", "Open_vSwitch", map[string]any{"op": "select", "table": "Queue", "where": []any{}, "columns": []any{"external_ids"}})
	if err != nil {
		return nil, err
	}
	res, _ := m["result"].([]any)
	if len(res) != 1 {
		return nil, fmt.Errorf("select: %v", m)
	}
	rows, _ := res[0].(map[string]any)["rows"].([]any)
	keys := map[string]bool{}
	for _, r := range rows {
		ids, _ := r.(map[string]any)["external_ids"].([]any)
		if len(ids) != 2 {
			continue
		}
		pairs, _ := ids[1].([]any)
		for _, p := range pairs {
			if kv, _ := p.([]any); len(kv) == 2 && kv[0] == "chaos" {
				keys[kv[1].(string)] = true
			}
		}
	}
	return keys, nil
}
