package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeCapture opens dest as gvs capture -w does and writes data.
func writeCapture(dest, data string) error {
	out, closeOut, err := openCaptureOutput(dest)
	if err != nil {
		return err
	}
	defer closeOut()
	_, err = io.WriteString(out, data)
	return err
}

// gvs capture runs as root and writes every frame of a port: its file
// must be readable by root only (tcpdump, which writes as its own
// unprivileged user, makes it 0644), whatever the umask.
func TestCaptureFileReadableByOwnerOnly(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "cap.pcapng")
	if err := writeCapture(dest, "frames"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("capture file mode %v, want 0600", st.Mode().Perm())
	}
	// Capturing again into the same file replaces what it held.
	if err := writeCapture(dest, "new"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); string(got) != "new" {
		t.Errorf("a second capture left %q", got)
	}
}

// -w /tmp/x.pcapng as root must not write through a symbolic link or a
// hard link that another user planted at that name (fs.protected_symlinks
// is off on some hosts), nor into another user's file.
func TestCaptureFileRefusesPlantedNames(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.pcapng")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "hard.pcapng")
	if err := os.Link(victim, hard); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ dest, want string }{
		{link, "symbolic link"},
		{hard, "2 links"},
	}
	if os.Geteuid() == 0 {
		theirs := filepath.Join(dir, "theirs.pcapng")
		if err := os.WriteFile(theirs, []byte("theirs\n"), 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(theirs, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct{ dest, want string }{theirs, "owned by uid 65534"})
	}
	for _, c := range cases {
		err := writeCapture(c.dest, "frames")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("-w %s: error %v, want one saying %q", filepath.Base(c.dest), err, c.want)
		}
	}
	if got, _ := os.ReadFile(victim); string(got) != "precious\n" {
		t.Errorf("the planted name's target now holds %q", got)
	}
}
