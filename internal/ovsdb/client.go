package ovsdb

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"time"
)

// Client is a minimal synchronous OVSDB client, for gvs's own CLI and for
// tests: one request at a time, notifications ignored.
type Client struct {
	conn net.Conn
	dec  *json.Decoder
	id   int
}

// Dial connects to a server at "unix:PATH", "tcp:IP:PORT" or a bare path.
func Dial(remote string) (*Client, error) {
	network, addr := "unix", remote
	switch {
	case strings.HasPrefix(remote, "unix:"):
		addr = strings.TrimPrefix(remote, "unix:")
	case strings.HasPrefix(remote, "tcp:"):
		network, addr = "tcp", strings.TrimPrefix(remote, "tcp:")
	}
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the gvs database at %s: %w", remote, err)
	}
	d := json.NewDecoder(c)
	d.UseNumber()
	return &Client{conn: c, dec: d}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Call sends one request and waits for its reply.
func (c *Client) Call(method string, params ...any) (any, error) {
	c.id++
	if params == nil {
		params = []any{} // "params" must be an array, even an empty one
	}
	req, err := json.Marshal(map[string]any{"id": c.id, "method": method, "params": params})
	if err != nil {
		return nil, err
	}
	_ = c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.conn.Write(req); err != nil {
		return nil, err
	}
	for {
		var msg map[string]any
		if err := c.dec.Decode(&msg); err != nil {
			return nil, err
		}
		if msg["id"] == nil {
			continue // a notification
		}
		if e := msg["error"]; e != nil {
			return nil, fmt.Errorf("%s: %s", method, shortJSON(e))
		}
		return msg["result"], nil
	}
}

// Select returns the rows of a table (all columns) as JSON objects.
func (c *Client) Select(db, table string) ([]map[string]any, error) {
	res, err := c.Call("transact", db, map[string]any{"op": "select", "table": table, "where": []any{}})
	if err != nil {
		return nil, err
	}
	results, ok := res.([]any)
	if !ok || len(results) != 1 {
		return nil, fmt.Errorf("select %s: unexpected reply %s", table, shortJSON(res))
	}
	obj, _ := results[0].(map[string]any)
	if obj["error"] != nil {
		return nil, fmt.Errorf("select %s: %v: %v", table, obj["error"], obj["details"])
	}
	rows, _ := obj["rows"].([]any)
	out := make([]map[string]any, 0, len(rows))
	for _, r := range rows {
		if m, ok := r.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out, nil
}
