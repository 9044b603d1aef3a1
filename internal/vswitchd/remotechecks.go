package vswitchd

import (
	"sort"

	"gvs/internal/ovsdb"
)

// remoteChecks runs the row checks on a database another server serves.
// That server accepted the rows already, so a value out of range cannot
// be refused: the switch uses it clamped (or, for a Mirror filter,
// ignores the mirror's filter as the reconciler does), and says what is
// wrong where an operator looks: an Interface's problem in its error
// column, any other row's in the log, once per distinct problem.
type remoteChecks struct {
	logged map[string]bool // problems already logged, by text
}

func newRemoteChecks() *remoteChecks { return &remoteChecks{logged: map[string]bool{}} }

// maxLoggedProblems bounds the memory of problems already logged; past
// it the memory starts again (a problem may then be logged twice).
const maxLoggedProblems = 1024

// run checks every row of the snapshot's checked tables as if each were
// newly written, and returns the Interface rows' problems by UUID.
func (rc *remoteChecks) run(snap *ovsdb.Snapshot) map[ovsdb.UUID]string {
	ifaces := map[ovsdb.UUID]string{}
	var problems []string
	for _, c := range rowChecks {
		t := snap.Schema.Tables[c.table]
		for u, r := range snap.Tables[c.table] {
			err := c.check(t, nil, r)
			if err == nil {
				continue
			}
			if c.table == "Interface" {
				ifaces[u] = err.Error()
				continue
			}
			problems = append(problems, c.table+" "+u.String()+": "+err.Error())
		}
	}
	sort.Strings(problems)
	if len(rc.logged) > maxLoggedProblems {
		clear(rc.logged)
	}
	for _, p := range problems {
		if !rc.logged[p] {
			rc.logged[p] = true
			vswitchdLog.Warn("%s (the OVSDB server accepted it; gvsd uses the nearest valid value)", p)
		}
	}
	return ifaces
}
