package vswitchd

import (
	"strconv"
	"time"

	"gvs/internal/connmgr"
	"gvs/internal/ovsdb"
)

// wantController is a Controller row of a bridge.
type wantController struct {
	uuid   ovsdb.UUID
	config connmgr.ControllerConfig
}

// readControllers reads the Controller rows of bridge bu. max_backoff
// and inactivity_probe are in milliseconds, as OVS reads them: an empty
// inactivity_probe is 5 s, 0 disables it.
func readControllers(snap *ovsdb.Snapshot, bu ovsdb.UUID) []wantController {
	var out []wantController
	for _, cu := range get(snap, "Bridge", bu, "controller").UUIDs() {
		target, ok := get(snap, "Controller", cu, "target").Str()
		if !ok {
			continue
		}
		cc := connmgr.ControllerConfig{Target: target, Probe: connmgr.DefaultProbe}
		if ms, ok := get(snap, "Controller", cu, "max_backoff").Int(); ok {
			cc.MaxBackoff = time.Duration(min(ms, 3_600_000)) * time.Millisecond
		}
		if ms, ok := get(snap, "Controller", cu, "inactivity_probe").Int(); ok {
			// OVS takes at least 1 s, and 0 for none.
			cc.Probe = 0
			if ms > 0 {
				cc.Probe = time.Duration(min(max(ms, 1000), 3_600_000)) * time.Millisecond
			}
		}
		out = append(out, wantController{uuid: cu, config: cc})
	}
	return out[:min(len(out), MaxControllers)] // the check refuses more, but not a remote server's
}

// controllerOps returns the updates that write each controller's
// connection state into its row (is_connected, role, status), leaving
// out rows that already say it.
func (st *datapathState) controllerOps(snap *ovsdb.Snapshot) []any {
	st.mu.Lock()
	defer st.mu.Unlock()
	byTarget := map[string]map[string]connmgr.ControllerStatus{}
	for name, ch := range st.channels {
		m := map[string]connmgr.ControllerStatus{}
		for _, cs := range ch.Controllers() {
			m[cs.Target] = cs
		}
		byTarget[name] = m
	}
	now := time.Now()
	var ops []any
	for bu := range snap.Tables["Bridge"] {
		name, _ := get(snap, "Bridge", bu, "name").Str()
		for _, wc := range readControllers(snap, bu) {
			cs, ok := byTarget[name][wc.config.Target]
			if !ok {
				continue
			}
			row := map[string]any{}
			if have, _ := get(snap, "Controller", wc.uuid, "is_connected").Bool(); have != cs.Connected {
				row["is_connected"] = cs.Connected
			}
			if have, _ := get(snap, "Controller", wc.uuid, "role").Str(); have != cs.Role {
				row["role"] = stringSet(cs.Role)
			}
			want := controllerStatusMap(cs, now)
			if !sameStringMap(get(snap, "Controller", wc.uuid, "status").StringMap(), want) {
				row["status"] = stringMap(want)
			}
			if len(row) > 0 {
				ops = append(ops, updateRow("Controller", wc.uuid, row))
			}
		}
	}
	return ops
}

// controllerStatusMap is the status column OVS writes: state,
// sec_since_connect and sec_since_disconnect once each happened, and
// last_error when there was one.
func controllerStatusMap(cs connmgr.ControllerStatus, now time.Time) map[string]string {
	m := map[string]string{"state": cs.State}
	if !cs.LastConnected.IsZero() {
		m["sec_since_connect"] = strconv.FormatInt(int64(now.Sub(cs.LastConnected)/time.Second), 10)
	}
	if !cs.LastDisconnected.IsZero() {
		m["sec_since_disconnect"] = strconv.FormatInt(int64(now.Sub(cs.LastDisconnected)/time.Second), 10)
	}
	if cs.LastError != "" {
		m["last_error"] = cutError(cs.LastError) // it may quote a long target
	}
	return m
}

func sameStringMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func stringMap(m map[string]string) []any {
	pairs := make([]any, 0, len(m))
	for k, v := range m {
		pairs = append(pairs, []any{k, v})
	}
	return []any{"map", pairs}
}

// writeControllerStatus writes the controllers' state into the database.
func (sw *Switch) writeControllerStatus() {
	snap := sw.db.Snapshot(configTables...)
	if ops := sw.state.controllerOps(snap); len(ops) > 0 {
		if err := checkResults(sw.db.Transact(ops)); err != nil {
			vswitchdLog.Warn("cannot write controller status: %v", err)
		}
	}
}
