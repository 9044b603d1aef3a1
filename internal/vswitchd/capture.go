package vswitchd

import (
	"errors"
	"strconv"
	"syscall"

	"gvs/internal/netdev"
	"gvs/internal/ovsdb"
)

// captureOwnerKey is the external_ids key with which `gvs capture` marks
// the temporary mirror it creates, naming its own process.
const captureOwnerKey = "gvs-capture-pid"

// staleCaptureOps removes the temporary mirrors (and their pcap output
// ports) of `gvs capture` processes that are gone: a capture that was
// killed with SIGKILL could not clean up after itself, and its mirror
// would otherwise keep copying into a FIFO nobody reads. It also returns
// the pcap interfaces of those ports, whose FIFOs to remove once the rows
// are gone.
func staleCaptureOps(snap *ovsdb.Snapshot) (ops []any, fifos []pcapFile) {
	for bu := range snap.Tables["Bridge"] {
		for _, mu := range get(snap, "Bridge", bu, "mirrors").UUIDs() {
			pid, err := strconv.Atoi(get(snap, "Mirror", mu, "external_ids").StringMap()[captureOwnerKey])
			if err != nil || pid <= 0 || processAlive(pid) {
				continue
			}
			name, _ := get(snap, "Mirror", mu, "name").Str()
			vswitchdLog.Info("mirror %s: removing it, the capture process %d is gone", name, pid)
			ops = append(ops, mutateRemove("Bridge", bu, "mirrors", mu))
			for _, pu := range get(snap, "Mirror", mu, "output_port").UUIDs() {
				ops = append(ops, mutateRemove("Bridge", bu, "ports", pu))
				fifos = append(fifos, pcapFiles(snap, pu)...)
			}
		}
	}
	return ops, fifos
}

// pcapFile is a pcap interface and its options:file.
type pcapFile struct{ iface, file string }

// pcapFiles returns the pcap interfaces of a port.
func pcapFiles(snap *ovsdb.Snapshot, port ovsdb.UUID) []pcapFile {
	var out []pcapFile
	for _, iu := range get(snap, "Port", port, "interfaces").UUIDs() {
		if typ, _ := get(snap, "Interface", iu, "type").Str(); typ != "pcap" {
			continue
		}
		name, _ := get(snap, "Interface", iu, "name").Str()
		if f := get(snap, "Interface", iu, "options").StringMap()["file"]; f != "" {
			out = append(out, pcapFile{name, f})
		}
	}
	return out
}

// removeStaleFIFOs removes the FIFOs of captures whose rows are gone;
// only FIFOs inside the capture directory are touched.
func (sw *Switch) removeStaleFIFOs(fifos []pcapFile) {
	sw.state.mu.Lock()
	dir := sw.state.captureDir
	sw.state.mu.Unlock()
	if dir == "" {
		return
	}
	for _, f := range fifos {
		if err := netdev.RemoveCaptureFIFO(f.iface, dir, f.file); err != nil {
			vswitchdLog.Warn("interface %s: cannot remove the FIFO of a capture whose process is gone: %v", f.iface, err)
		}
	}
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
