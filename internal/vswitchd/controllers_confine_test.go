package vswitchd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestControllerUnixSocketsStayInRundir: gvsd runs as root, so a
// database client must not make it create (punix:) or dial (unix:) a
// socket outside its run directory. A target elsewhere creates nothing
// and says why in the Controller row's status:last_error; one in the
// run directory listens as before.
func TestControllerUnixSocketsStayInRundir(t *testing.T) {
	rundir, outside := t.TempDir(), t.TempDir()
	sw := newSwitchWithBridge(t, `[]`)
	sw.SetRunDir(rundir)
	evil := filepath.Join(outside, "evil.sock")
	sneaky := rundir + "/../" + filepath.Base(outside) + "/sneaky.sock"
	good := filepath.Join(rundir, "br0.ctl.sock")
	err := transact(t, sw.db, `[
		{"op":"insert","table":"Controller","uuid-name":"c1","row":{"target":"punix:`+evil+`"}},
		{"op":"insert","table":"Controller","uuid-name":"c2","row":{"target":"punix:`+sneaky+`"}},
		{"op":"insert","table":"Controller","uuid-name":"c3","row":{"target":"unix:`+filepath.Join(outside, "other.sock")+`"}},
		{"op":"insert","table":"Controller","uuid-name":"c4","row":{"target":"punix:`+good+`"}},
		{"op":"update","table":"Bridge","where":[["name","==","br0"]],
		 "row":{"controller":["set",[["named-uuid","c1"],["named-uuid","c2"],["named-uuid","c3"],["named-uuid","c4"]]]}}]`)
	if err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, errGood := os.Lstat(good)
		errs := 0
		for _, cs := range sw.state.channels["br0"].Controllers() {
			if strings.Contains(cs.LastError, "run directory") {
				errs++
			}
		}
		if errGood == nil && errs == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s: %s: %v; %d of 3 targets outside the run directory refused: %+v",
				good, errGood, errs, sw.state.channels["br0"].Controllers())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range []string{evil, filepath.Join(outside, "sneaky.sock")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("a punix: target outside the run directory created %s", p)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("files left outside the run directory: %v", entries)
	}
	// The refusal reaches the row (status:last_error) once written.
	sw.writeControllerStatus()
	snap := sw.db.Snapshot(configTables...)
	refused := 0
	for u := range snap.Tables["Controller"] {
		if strings.Contains(get(snap, "Controller", u, "status").StringMap()["last_error"], "must be in gvsd's run directory") {
			refused++
		}
	}
	if refused != 3 {
		t.Errorf("%d Controller rows say why they were refused, want 3", refused)
	}
}
