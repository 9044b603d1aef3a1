package metrics

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"

	"gvs/internal/vlog"
)

var metricsLog = vlog.New("metrics")

// Limits of the listener: it serves operators' scrapers, not the public,
// but a misbehaving client must not take more than this from the daemon.
const (
	maxConns          = 16               // open connections
	maxScrapes        = 4                // /metrics requests served at once
	scrapeTimeout     = 10 * time.Second // a scrape cut short answers 503
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = time.Minute
	maxHeaderBytes    = 64 << 10

	// The profiler's limits: anyone who reaches the listener may ask it.
	maxProfiles       = 2       // /debug/pprof/ requests served at once
	maxProfileSeconds = 60      // ?seconds= of a CPU profile, trace or delta profile
	maxSymbolRequest  = 1 << 20 // bytes of addresses in one symbol lookup
)

// A client that sends its request body (a symbol lookup) or reads its
// answer slowly, or not at all, held one of the maxConns connections,
// and a profile slot, for as long as it liked: 16 such clients kept
// every scraper out for good. A whole request must arrive within
// readTimeout, and its answer be written within writeTimeout (a CPU
// profile takes up to maxProfileSeconds before it is written).
// Variables for tests.
var (
	readTimeout  = 30 * time.Second
	writeTimeout = (maxProfileSeconds + 30) * time.Second
)

// Options are what the listener serves besides /metrics.
type Options struct {
	// Pprof adds Go's profiler under /debug/pprof/; without it those
	// paths answer 404.
	Pprof bool
}

// Server is the metrics listener.
type Server struct {
	l    net.Listener
	http *http.Server
}

// Listen serves /metrics (and /debug/pprof/ with opts.Pprof) on addr, a
// TCP "host:port" (port 0 picks a free one), until Close.
func Listen(addr string, src Sources, opts Options) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(src), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{l: netutil.LimitListener(l, maxConns), http: &http.Server{
		Handler:           newMux(reg, opts),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}}
	go s.serve()
	metricsLog.Info("serving metrics on http://%s/metrics%s", l.Addr(), pprofNote(opts))
	if opts.Pprof && !loopback(l.Addr()) {
		metricsLog.Warn("the profiler on %s answers every host that reaches it: it shows gvsd's command line, stacks and heap, and profiling slows the switch; prefer a loopback address (127.0.0.1:PORT)", l.Addr())
	}
	return s, nil
}

// loopback reports whether a only takes connections from this host.
func loopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

func pprofNote(opts Options) string {
	if opts.Pprof {
		return " and the profiler on /debug/pprof/"
	}
	return ""
}

func newMux(g prometheus.Gatherer, opts Options) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		// One bad series (a label that is not UTF-8) must not hide
		// every other counter.
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxScrapes,
		Timeout:             scrapeTimeout,
	}))
	if opts.Pprof {
		slots := make(chan struct{}, maxProfiles)
		handle := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, limitProfile(slots, h)) }
		handle("GET /debug/pprof/", pprof.Index)
		handle("GET /debug/pprof/cmdline", pprof.Cmdline)
		handle("GET /debug/pprof/profile", pprof.Profile)
		handle("GET /debug/pprof/symbol", pprof.Symbol)
		handle("POST /debug/pprof/symbol", pprof.Symbol)
		handle("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// limitProfile serves a profiler request within the profiler's limits:
// at most maxProfiles at once (a goroutine dump stops the world, a trace
// slows every goroutine), at most maxProfileSeconds long, and symbol
// lookups of at most maxSymbolRequest bytes. net/http/pprof itself takes
// any duration and any body.
func limitProfile(slots chan struct{}, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.URL.Query().Get("seconds"); v != "" {
			if sec, err := strconv.ParseFloat(v, 64); err != nil || !(sec <= maxProfileSeconds) {
				http.Error(w, fmt.Sprintf("seconds=%s: a profile lasts at most %d seconds", v, maxProfileSeconds), http.StatusBadRequest)
				return
			}
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			http.Error(w, fmt.Sprintf("%d profiles are being taken; try again when one is done", maxProfiles), http.StatusTooManyRequests)
			return
		}
		if r.ContentLength > maxSymbolRequest {
			http.Error(w, fmt.Sprintf("a request body of %d bytes: at most %d", r.ContentLength, maxSymbolRequest), http.StatusRequestEntityTooLarge)
			return
		}
		// A body without a length is cut off there (pprof says so in its answer).
		r.Body = http.MaxBytesReader(w, r.Body, maxSymbolRequest)
		h.ServeHTTP(w, r)
	})
}

func (s *Server) serve() {
	if err := s.http.Serve(s.l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		metricsLog.Err("metrics listener stopped: %v", err)
	}
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.l.Addr() }

// Close stops the listener and closes every connection.
func (s *Server) Close() error { return s.http.Close() }
