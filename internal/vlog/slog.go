package vlog

import (
	"context"
	"log/slog"
	"strings"
	"time"
)

// Handler returns a log/slog handler that writes through this module, for
// code (or libraries) that log with slog: slog's error, warn and info map to
// err, warn and info, anything below info to dbg. Attributes follow the
// message as key=value.
func (m *Module) Handler() slog.Handler { return &slogHandler{module: m} }

type slogHandler struct {
	module *Module
	attrs  string // pre-rendered " key=value" pairs from WithAttrs
	group  string // key prefix from WithGroup, ending in "."
}

func levelFromSlog(l slog.Level) Level {
	switch {
	case l >= slog.LevelError:
		return Err
	case l >= slog.LevelWarn:
		return Warn
	case l >= slog.LevelInfo:
		return Info
	default:
		return Dbg
	}
}

func (h *slogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.module.Enabled(levelFromSlog(l))
}

func (h *slogHandler) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	b.WriteString(h.attrs)
	rec.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.group, a)
		return true
	})
	when := rec.Time
	if when.IsZero() {
		when = time.Now()
	}
	h.module.reg.write(h.module, levelFromSlog(rec.Level), b.String(), when)
	return nil
}

func (h *slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		appendAttr(&b, h.group, a)
	}
	return &slogHandler{module: h.module, attrs: b.String(), group: h.group}
}

func (h *slogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &slogHandler{module: h.module, attrs: h.attrs, group: h.group + name + "."}
}

func appendAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, inner := range a.Value.Group() {
			appendAttr(b, prefix, inner)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(prefix)
	b.WriteString(a.Key)
	b.WriteByte('=')
	b.WriteString(a.Value.String())
}
