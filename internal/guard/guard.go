// Package guard keeps a panic in one goroutine from taking the whole
// daemon down: the goroutine's owner defers Recover, which stops the
// panic, logs it with its stack and counts it, so that the owner can
// restart its loop or close what the goroutine served.
package guard

import (
	"fmt"
	"runtime/debug"

	"gvs/internal/coverage"
	"gvs/internal/vlog"
)

// Recover must be deferred directly (`defer guard.Recover(...)`): it stops
// a panic in progress, logs it at error level on log with what (naming
// the goroutine's job) and the stack, and counts it in c. It does nothing
// when there is no panic. The deferring function then returns its named
// results as they stood, so a loop can tell a stop from a panic.
func Recover(log *vlog.Module, c *coverage.Counter, what string) {
	if r := recover(); r != nil {
		report(log, c, what, r)
	}
}

// Call runs fn and returns an error describing its panic, or nil; the
// panic is logged and counted as by Recover. It is for code that turns a
// bug into an error the user sees (a failed command, an interface that
// could not be opened) instead of losing the work around it.
func Call(log *vlog.Module, c *coverage.Counter, what string, fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			report(log, c, what, r)
			err = fmt.Errorf("%s: internal error: %v", what, r)
		}
	}()
	fn()
	return nil
}

func report(log *vlog.Module, c *coverage.Counter, what string, r any) {
	c.Inc()
	log.Err("%s: recovered from panic: %v\n%s", what, r, debug.Stack())
}
