package unixctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Client sends commands over one connection to a control socket, as
// ovs-appctl does. It is not safe for concurrent use.
type Client struct {
	conn   net.Conn
	frames *frameReader
	nextID int
}

// RemoteError is an error reply: the daemon ran (or refused) the command
// and said why.
type RemoteError struct {
	Method  string
	Message string // as sent, usually ending in a newline
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("%s: %s", e.Method, strings.TrimRight(e.Message, "\n"))
}

// Dial connects to the control socket at path.
func Dial(path string) (*Client, error) {
	conn, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("control socket %q: %w", path, err)
	}
	return &Client{conn: conn, frames: newFrameReader(conn, MaxRequestSize)}, nil
}

// Close ends the connection.
func (c *Client) Close() error { return c.conn.Close() }

// SetDeadline bounds how long the following calls may take.
func (c *Client) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// Call runs method with args and returns the result text, or a
// *RemoteError for an error reply.
func (c *Client) Call(method string, args ...string) (string, error) {
	if args == nil {
		args = []string{}
	}
	id := c.nextID
	c.nextID++
	req, err := json.Marshal(struct {
		ID     int      `json:"id"`
		Method string   `json:"method"`
		Params []string `json:"params"`
	}{id, method, args})
	if err != nil {
		return "", fmt.Errorf("%s: encoding request: %w", method, err)
	}
	if _, err := c.conn.Write(req); err != nil {
		return "", fmt.Errorf("%s: sending request: %w", method, err)
	}
	frame, err := c.frames.next()
	if err != nil {
		return "", fmt.Errorf("%s: reading reply: %w", method, err)
	}
	return parseReply(method, id, frame)
}

func parseReply(method string, id int, frame []byte) (string, error) {
	var reply struct {
		ID     json.RawMessage `json:"id"`
		Result *string         `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(frame, &reply); err != nil {
		return "", fmt.Errorf("%s: malformed reply: %w", method, err)
	}
	if string(reply.ID) != strconv.Itoa(id) {
		return "", fmt.Errorf("%s: reply has id %s, expected %d", method, reply.ID, id)
	}
	if len(reply.Error) > 0 && string(reply.Error) != "null" {
		var msg string
		if err := json.Unmarshal(reply.Error, &msg); err != nil {
			msg = string(reply.Error)
		}
		return "", &RemoteError{Method: method, Message: msg}
	}
	if reply.Result == nil {
		return "", fmt.Errorf("%s: reply has neither result nor error", method)
	}
	return *reply.Result, nil
}

// TargetPath finds a daemon's control socket the way ovs-appctl -t does:
// an absolute target is the socket itself; otherwise the pid is read from
// "<rundir>/<target>.pid" and the socket is "<rundir>/<target>.<pid>.ctl".
// It opens the pidfile, so it must not run in the process holding it (see
// Pidfile).
func TargetPath(rundir, target string) (string, error) {
	if filepath.IsAbs(target) {
		return target, nil
	}
	pidPath := filepath.Join(rundir, target+".pid")
	data, err := os.ReadFile(pidPath)
	if err != nil {
		return "", fmt.Errorf("pidfile %q: %w", pidPath, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return "", fmt.Errorf("pidfile %q: %w", pidPath, errors.New("does not hold a process id"))
	}
	return filepath.Join(rundir, fmt.Sprintf("%s.%d.ctl", target, pid)), nil
}
