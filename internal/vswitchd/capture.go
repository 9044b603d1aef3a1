package vswitchd

import (
	"errors"
	"log/slog"
	"strconv"
	"syscall"

	"gvs/internal/ovsdb"
)

// captureOwnerKey is the external_ids key with which `gvs capture` marks
// the temporary mirror it creates, naming its own process.
const captureOwnerKey = "gvs-capture-pid"

// staleCaptureOps removes the temporary mirrors (and their pcap output
// ports) of `gvs capture` processes that are gone: a capture that was
// killed with SIGKILL could not clean up after itself, and its mirror
// would otherwise keep copying into a FIFO nobody reads.
func staleCaptureOps(snap *ovsdb.Snapshot) []any {
	var ops []any
	for bu := range snap.Tables["Bridge"] {
		for _, mu := range get(snap, "Bridge", bu, "mirrors").UUIDs() {
			pid, err := strconv.Atoi(get(snap, "Mirror", mu, "external_ids").StringMap()[captureOwnerKey])
			if err != nil || pid <= 0 || processAlive(pid) {
				continue
			}
			name, _ := get(snap, "Mirror", mu, "name").Str()
			slog.Info("removing the mirror of a capture whose process is gone", "mirror", name, "pid", pid)
			ops = append(ops, mutateRemove("Bridge", bu, "mirrors", mu))
			for _, pu := range get(snap, "Mirror", mu, "output_port").UUIDs() {
				ops = append(ops, mutateRemove("Bridge", bu, "ports", pu))
			}
		}
	}
	return ops
}

// processAlive reports whether a process with that pid exists (in gvsd's
// pid namespace, which is where `gvs capture` runs on a host).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || !errors.Is(err, syscall.ESRCH)
}

func mutateRemove(table string, row ovsdb.UUID, column string, ref ovsdb.UUID) map[string]any {
	return map[string]any{
		"op": "mutate", "table": table,
		"where":     []any{[]any{"_uuid", "==", []any{"uuid", row.String()}}},
		"mutations": []any{[]any{column, "delete", []any{"set", []any{[]any{"uuid", ref.String()}}}}},
	}
}
