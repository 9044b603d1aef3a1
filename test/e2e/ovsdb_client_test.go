package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestOvsdbClient drives gvsd's database with the real ovsdb-client.
func TestOvsdbClient(t *testing.T) {
	requireTool(t, "ovsdb-client", "ovs-vsctl")
	g := StartGvsd(t)
	remote := "unix:" + g.Socket()
	g.MustVsctl("add-br", "mtest")

	out, _, err := g.Run("ovsdb-client", "list-dbs", remote)
	if err != nil || strings.Join(strings.Fields(out), ",") != "Open_vSwitch,_Server" && strings.Join(strings.Fields(out), ",") != "_Server,Open_vSwitch" {
		t.Fatalf("list-dbs: %q %v", out, err)
	}
	out, _, err = g.Run("ovsdb-client", "get-schema", remote, "Open_vSwitch")
	var schema struct {
		Name    string         `json:"name"`
		Version string         `json:"version"`
		Tables  map[string]any `json:"tables"`
	}
	if err != nil || json.Unmarshal([]byte(out), &schema) != nil || schema.Name != "Open_vSwitch" || schema.Tables["Mirror"] == nil {
		t.Fatalf("get-schema: %v, %.200s", err, out)
	}
	out, _, err = g.Run("ovsdb-client", "get-schema-version", remote, "Open_vSwitch")
	if err != nil || strings.TrimSpace(out) != schema.Version {
		t.Errorf("get-schema-version = %q (%v), want %s", out, err, schema.Version)
	}
	out, _, err = g.Run("ovsdb-client", "dump", remote, "Open_vSwitch")
	if err != nil || !strings.Contains(out, "Bridge table") || !strings.Contains(out, "mtest") {
		t.Errorf("dump: %v\n%.500s", err, out)
	}

	// A hand-written transaction, then a select that sees it.
	txn := `["Open_vSwitch",
	  {"op":"insert","table":"Bridge","row":{"name":"viaclient"},"uuid-name":"nb"},
	  {"op":"mutate","table":"Open_vSwitch","where":[],"mutations":[["bridges","insert",["set",[["named-uuid","nb"]]]]]},
	  {"op":"comment","comment":"from the e2e test"}]`
	out, _, err = g.Run("ovsdb-client", "transact", remote, txn)
	if err != nil || !strings.Contains(out, `"uuid"`) || !strings.Contains(out, `"count":1`) {
		t.Fatalf("transact: %v %s", err, out)
	}
	if br := g.MustVsctl("list-br"); !strings.Contains(br, "viaclient") {
		t.Errorf("list-br after transact: %q", br)
	}
	out, _, _ = g.Run("ovsdb-client", "transact", remote, `["Open_vSwitch",{"op":"insert","table":"Bridge","row":{"name":"bad","stp_enable":"yes"}}]`)
	if !strings.Contains(out, "syntax error") && !strings.Contains(out, "error") {
		t.Errorf("ill-typed transact: %s", out)
	}
}

// TestOvsdbClientMonitor runs a bounded monitor and sees a change made by
// ovs-vsctl while it runs.
func TestOvsdbClientMonitor(t *testing.T) {
	requireTool(t, "ovsdb-client", "ovs-vsctl")
	g := StartGvsd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ovsdb-client", "monitor", "unix:"+g.Socket(), "Open_vSwitch", "Bridge", "name")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	time.Sleep(300 * time.Millisecond) // let the monitor start
	g.MustVsctl("add-br", "watched")
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("monitor ended without reporting the insert")
			}
			if strings.Contains(l, "insert") && strings.Contains(l, "watched") {
				return
			}
		case <-ctx.Done():
			t.Fatal("no insert seen by ovsdb-client monitor within 20s")
		}
	}
}

// rpcClient is a minimal JSON-RPC client for tests that need to know
// exactly which transactions were acknowledged.
type rpcClient struct {
	conn net.Conn
	dec  *json.Decoder
	id   int
}

func dialRPC(path string) (*rpcClient, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	return &rpcClient{conn: c, dec: json.NewDecoder(c)}, nil
}

// call sends a request and returns its result, skipping notifications.
func (c *rpcClient) call(method string, params ...any) (json.RawMessage, error) {
	c.id++
	req, _ := json.Marshal(map[string]any{"id": c.id, "method": method, "params": params})
	if _, err := c.conn.Write(req); err != nil {
		return nil, err
	}
	for {
		var msg struct {
			ID     any             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  any             `json:"error"`
		}
		if err := c.dec.Decode(&msg); err != nil {
			return nil, err
		}
		if msg.ID == nil {
			continue
		}
		if msg.Error != nil {
			return nil, fmt.Errorf("rpc error: %v", msg.Error)
		}
		return msg.Result, nil
	}
}

// TestKill9Durability kills gvsd with SIGKILL in the middle of a stream of
// transactions, restarts it, and checks that every acknowledged transaction
// survived and the database opens.
func TestKill9Durability(t *testing.T) {
	requireTool(t, "ovs-vsctl")
	g := StartGvsd(t)
	var acked []string
	for round := 0; round < 3; round++ {
		c, err := dialRPC(g.Socket())
		if err != nil {
			t.Fatal(err)
		}
		killAt := time.Now().Add(time.Duration(150+100*round) * time.Millisecond)
		stop := make(chan struct{})
		go func() {
			time.Sleep(time.Until(killAt))
			g.Kill9()
			close(stop)
		}()
		for i := 0; ; i++ {
			name := fmt.Sprintf("k%d_%d", round, i)
			res, err := c.call("transact", "Open_vSwitch",
				map[string]any{"op": "insert", "table": "Bridge", "row": map[string]any{"name": name}, "uuid-name": "b"},
				map[string]any{"op": "mutate", "table": "Open_vSwitch", "where": []any{},
					"mutations": []any{[]any{"bridges", "insert", []any{"set", []any{[]any{"named-uuid", "b"}}}}}})
			if err != nil {
				break // the daemon died mid-stream
			}
			if strings.Contains(string(res), `"error"`) {
				t.Fatalf("transaction %s failed: %s", name, res)
			}
			acked = append(acked, name)
			if i > 100000 {
				t.Fatal("daemon was never killed")
			}
		}
		<-stop
		c.conn.Close()
		g.Start()
		have := map[string]bool{}
		for _, b := range strings.Fields(g.MustVsctl("list-br")) {
			have[b] = true
		}
		for _, name := range acked {
			if !have[name] {
				t.Fatalf("round %d: acknowledged bridge %s lost after kill -9 (%d acknowledged in all)", round, name, len(acked))
			}
		}
		t.Logf("round %d: %d acknowledged transactions survived", round, len(acked))
	}
	if len(acked) < 10 {
		t.Fatalf("only %d transactions acknowledged: the test did not exercise anything", len(acked))
	}
}
