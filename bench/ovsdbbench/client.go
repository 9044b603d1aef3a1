package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"time"
)

// callTimeout bounds every request, so that a stuck server fails the run
// instead of hanging it.
const callTimeout = 30 * time.Second

// client is one JSON-RPC connection to an OVSDB server, used by one
// goroutine at a time: it sends a request and waits for its reply.
type client struct {
	conn   net.Conn
	out    *bufio.Writer
	dec    *json.Decoder
	nextID int
}

func dial(sock string) (*client, error) {
	conn, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", sock, err)
	}
	return &client{conn: conn, out: bufio.NewWriter(conn), dec: json.NewDecoder(bufio.NewReader(conn))}, nil
}

func (c *client) close() { c.conn.Close() }

// message is any JSON-RPC message: a reply, a request or a notification.
type message struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// call sends a request and returns its result, answering the server's
// echo probes while it waits.
func (c *client) call(method string, params []any) (json.RawMessage, error) {
	c.nextID++
	id := strconv.Itoa(c.nextID)
	if err := c.conn.SetDeadline(time.Now().Add(callTimeout)); err != nil {
		return nil, err
	}
	if err := c.send(map[string]any{"id": c.nextID, "method": method, "params": params}); err != nil {
		return nil, fmt.Errorf("%s: send: %w", method, err)
	}
	for {
		var m message
		if err := c.dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("%s: receive: %w", method, err)
		}
		if m.Method == "echo" {
			if err := c.send(map[string]any{"id": m.ID, "result": m.Params, "error": nil}); err != nil {
				return nil, fmt.Errorf("echo reply: %w", err)
			}
			continue
		}
		if m.Method != "" || string(m.ID) != id {
			continue // a notification, or a reply to something else
		}
		if len(m.Error) > 0 && string(m.Error) != "null" {
			return nil, fmt.Errorf("%s: server error %s", method, m.Error)
		}
		return m.Result, nil
	}
}

func (c *client) send(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := c.out.Write(data); err != nil {
		return err
	}
	return c.out.Flush()
}

// transact runs ops on the Open_vSwitch database and returns how many
// operation results it got; any operation error is an error.
func (c *client) transact(ops []any) (int, error) {
	raw, err := c.call("transact", append([]any{"Open_vSwitch"}, ops...))
	if err != nil {
		return 0, err
	}
	var results []map[string]any
	if err := json.Unmarshal(raw, &results); err != nil {
		return 0, fmt.Errorf("transact: result is not an array of objects: %w", err)
	}
	for i, r := range results {
		if r != nil && r["error"] != nil {
			return 0, fmt.Errorf("transact: operation %d: %v: %v", i, r["error"], r["details"])
		}
	}
	return len(results), nil
}

// queueInsert is an insert of one small Queue row whose external_ids
// carry key, unique across the run.
func queueInsert(key string) map[string]any {
	return map[string]any{
		"op":    "insert",
		"table": "Queue",
		"row": map[string]any{
			"dscp":         1,
			"external_ids": []any{"map", []any{[]any{"bench-key", key}}},
		},
	}
}

var durableCommit = map[string]any{"op": "commit", "durable": true}
