package ovsdb

import (
	"fmt"
	"net"
	"strings"
	"time"

	"gvs/internal/coverage"
	"gvs/internal/unixsock"
	"gvs/internal/vlog"
)

var (
	serverLog = vlog.New("ovsdb_server")
	// dbLog is the database itself: its journal and compaction.
	dbLog = vlog.New("ovsdb")
	// Rate limits for messages a client or a failing disk could repeat
	// for every request.
	clientRL  = vlog.NewRateLimit(10, time.Minute)
	encodeRL  = vlog.NewRateLimit(5, time.Minute)
	journalRL = vlog.NewRateLimit(5, time.Minute)

	// What went wrong, counted (coverage/show) as well as logged.
	clientRefused       = coverage.New("ovsdb_client_refused")      // over the session limit
	clientDisconnected  = coverage.New("ovsdb_client_disconnected") // a limit or a protocol error
	encodeError         = coverage.New("ovsdb_encode_error")
	journalWriteError   = coverage.New("ovsdb_journal_write_error") // the transaction was refused
	journalSyncError    = coverage.New("ovsdb_journal_sync_error")
	journalCompactError = coverage.New("ovsdb_journal_compact_error")
	journalTornRecord   = coverage.New("ovsdb_journal_torn_record") // dropped at startup
	// sessionPanics counts client sessions closed by a bug (a panic)
	// rather than by the client or a limit.
	sessionPanics = coverage.New("ovsdb_session_panic")
)

// socketMode is the most a punix: socket allows, less the umask: the
// owner's group may see it, only the owner (root) may connect, as OVS's
// sockets under the usual umask.
const socketMode = 0o750

// listen opens a listener described as OVS does: "punix:PATH" (or a bare
// path) or "ptcp:PORT[:IP]". A ptcp remote without IP listens on every
// address of the host, IPv4 and IPv6, as OVS's does; the address it got
// is logged, so an operator sees what was opened.
func listen(spec string) (net.Listener, error) {
	switch {
	case strings.HasPrefix(spec, "ptcp:"):
		return listenTCP(strings.TrimPrefix(spec, "ptcp:"))
	case strings.HasPrefix(spec, "punix:"):
		spec = strings.TrimPrefix(spec, "punix:")
	case strings.Contains(spec, ":") && !strings.HasPrefix(spec, "/"):
		return nil, fmt.Errorf("%s: unsupported listener (use punix:PATH or ptcp:PORT[:IP])", spec)
	}
	// A socket that still answers (another ovsdb-server's) is refused,
	// never taken over; only a dead one is replaced.
	l, err := unixsock.Listen(spec, socketMode)
	if err != nil {
		return nil, err
	}
	serverLog.Info("listening on unix socket %s", spec)
	return l, nil
}

func listenTCP(rest string) (net.Listener, error) {
	port, host, _ := strings.Cut(rest, ":")
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	l, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("ptcp:%s: %w", rest, err)
	}
	if host == "" {
		serverLog.Warn("listening on %s: every address of this host, IPv4 and IPv6 (give ptcp:PORT:IP to limit it)", l.Addr())
	} else {
		serverLog.Info("listening on %s", l.Addr())
	}
	return l, nil
}
