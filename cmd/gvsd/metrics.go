package main

import (
	"errors"

	"gvs/internal/coverage"
	"gvs/internal/metrics"
	"gvs/internal/ovsdb"
	"gvs/internal/vswitchd"
)

// startMetrics serves Prometheus metrics on addr (--metrics), with the
// profiler when pprof (--pprof) is set. Without addr it serves nothing
// and returns a nil server; --pprof alone is an error rather than a flag
// silently ignored. db and srv may be nil when gvsd serves no database of
// its own.
func startMetrics(addr string, pprof bool, sw *vswitchd.Switch, db *ovsdb.DB, srv *ovsdb.Server) (*metrics.Server, error) {
	if addr == "" {
		if pprof {
			return nil, errors.New("--pprof needs --metrics=ADDR: the profiler is served on the metrics listener")
		}
		return nil, nil
	}
	src := metrics.Sources{Switch: sw, Coverage: coverage.Default, Conntrack: sw, Spans: sw}
	if db != nil {
		src.Database = db
	}
	if srv != nil {
		src.Clients = srv
	}
	return metrics.Listen(addr, src, metrics.Options{Pprof: pprof})
}
