// Package procinfo names other processes for error messages: which
// program holds a pidfile or serves a socket that gvsd wanted.
package procinfo

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Describe is "NAME (pid PID)", NAME being the program's command name
// (ovsdb-server, ovs-vswitchd, gvsd), or "pid PID" when the process is
// gone or cannot be read.
func Describe(pid int) string {
	if pid <= 0 {
		return "an unknown process"
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	name := strings.TrimSpace(string(comm))
	if err != nil || name == "" {
		return fmt.Sprintf("pid %d", pid)
	}
	return fmt.Sprintf("%s (pid %d)", name, pid)
}

// Peer is the pid of the process at the other end of a unix socket
// connection, from SO_PEERCRED; 0 when the kernel does not say.
func Peer(conn net.Conn) int {
	pid, _, _ := PeerCred(conn)
	return pid
}

// PeerCred is the pid and uid of the process at the other end of a unix
// socket connection (the one that listened, or connected), from
// SO_PEERCRED; ok is false when the kernel does not say.
func PeerCred(conn net.Conn) (pid, uid int, ok bool) {
	uc, isUnix := conn.(*net.UnixConn)
	if !isUnix {
		return 0, 0, false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, 0, false
	}
	raw.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			pid, uid, ok = int(cred.Pid), int(cred.Uid), true
		}
	})
	return pid, uid, ok
}
