package daemon

import (
	"fmt"
	"net"
	"os"
)

// Notify sends state (such as "READY=1") to systemd over the datagram
// socket named by $NOTIFY_SOCKET, the sd_notify protocol; without that
// variable it does nothing. A name starting with '@' is in the abstract
// namespace, which Go's unix addresses already understand.
func Notify(state string) error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("NOTIFY_SOCKET %q: %w", name, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("NOTIFY_SOCKET %q: %w", name, err)
	}
	return nil
}
