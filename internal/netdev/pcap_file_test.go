package netdev

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// captureTest is a capture directory with a victim file outside it, the
// kind of file a hostile options:file would aim at.
type captureTest struct {
	dir     string // the capture directory
	outside string // a directory beside it
	victim  string // a file in outside
}

const victimContent = "precious, not a capture\n"

func newCaptureTest(t *testing.T) *captureTest {
	t.Helper()
	base := t.TempDir()
	dir, err := PrepareCaptureDir(filepath.Join(base, "capture"))
	if err != nil {
		t.Fatal(err)
	}
	c := &captureTest{dir: dir, outside: filepath.Join(base, "outside")}
	c.victim = filepath.Join(c.outside, "victim")
	if err := os.Mkdir(c.outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.victim, []byte(victimContent), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *captureTest) open(file string, extra ...string) (Netdev, error) {
	opts := map[string]string{"file": file}
	for i := 0; i+1 < len(extra); i += 2 {
		opts[extra[i]] = extra[i+1]
	}
	return Open(Config{Name: "cap0", Type: "pcap", Options: opts, CaptureDir: c.dir})
}

// mustRefuse opens file and wants a refusal that names the rule and
// says why; the victim must be untouched and nothing new outside.
func (c *captureTest) mustRefuse(t *testing.T, file, why string) {
	t.Helper()
	dev, err := c.open(file)
	if err == nil {
		dev.Close()
		t.Errorf("options:file %q was accepted", file)
	} else if msg := err.Error(); !strings.Contains(msg, why) || !strings.Contains(msg, "inside gvsd's capture directory "+c.dir) || !strings.Contains(msg, "cap0") {
		t.Errorf("options:file %q: error %q, want one naming cap0, saying %q and the rule", file, msg, why)
	}
	c.checkUntouched(t)
}

func (c *captureTest) checkUntouched(t *testing.T) {
	t.Helper()
	if b, err := os.ReadFile(c.victim); err != nil || string(b) != victimContent {
		t.Errorf("victim %s: %q, %v; want it untouched", c.victim, b, err)
	}
	entries, _ := os.ReadDir(c.outside)
	for _, e := range entries {
		if e.Name() != "victim" {
			t.Errorf("%s appeared outside the capture directory", e.Name())
		}
	}
}

// bothResolvers runs f with openat2, then as on a kernel without it
// (before 5.6), where the per-component O_NOFOLLOW walk does the work.
func bothResolvers(t *testing.T, f func(t *testing.T)) {
	t.Run("openat2", f)
	t.Run("no-openat2", func(t *testing.T) {
		saved := openat2
		openat2 = func(int, string, *unix.OpenHow) (int, error) { return -1, unix.ENOSYS }
		defer func() { openat2 = saved }()
		f(t)
	})
}

func TestPcapFileOutsideCaptureDir(t *testing.T) {
	c := newCaptureTest(t)
	c.mustRefuse(t, c.victim, "is outside gvsd's capture directory")
	c.mustRefuse(t, "/etc/shadow", "is outside gvsd's capture directory")
	c.mustRefuse(t, c.dir, "is outside gvsd's capture directory") // the directory itself
	c.mustRefuse(t, c.dir+"x/y", "is outside gvsd's capture directory")
	if _, err := Open(Config{Name: "cap0", Type: "pcap", Options: map[string]string{"file": "x"}}); err == nil || !strings.Contains(err.Error(), "no capture directory") {
		t.Errorf("pcap port without a capture directory: %v, want a refusal", err)
	}
}

func TestPcapFileDotDot(t *testing.T) {
	c := newCaptureTest(t)
	for _, f := range []string{"../outside/victim", "sub/../../outside/victim", "..", c.dir + "/../outside/victim", "a/.."} {
		c.mustRefuse(t, f, `has a ".." component`)
	}
}

func TestPcapFileInsideAccepted(t *testing.T) {
	c := newCaptureTest(t)
	if err := os.Mkdir(filepath.Join(c.dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	real, err := filepath.EvalSymlinks(c.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"rel.pcapng", "./dot.pcapng", "sub/in-sub.pcapng", filepath.Join(c.dir, "abs.pcapng"), filepath.Join(real, "real.pcapng")} {
		t.Run(f, func(t *testing.T) {
			bothResolvers(t, func(t *testing.T) {
				dev, err := c.open(f)
				if err != nil {
					t.Fatalf("options:file %q: %v", f, err)
				}
				dev.Close()
				name := f
				if !filepath.IsAbs(f) {
					name = filepath.Join(c.dir, f)
				}
				st, err := os.Lstat(name)
				if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
					t.Errorf("%s: %v, %v; want a regular file of mode 0600", name, st, err)
				}
				os.Remove(name)
			})
		})
	}
}

func TestPcapFileSymlinksRefused(t *testing.T) {
	c := newCaptureTest(t)
	if err := os.Symlink(c.victim, filepath.Join(c.dir, "link.pcapng")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(c.outside, filepath.Join(c.dir, "linkdir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(c.outside), filepath.Join(c.dir, "linkup")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub", filepath.Join(c.dir, "inner")); err != nil { // stays inside, still refused
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(c.dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	bothResolvers(t, func(t *testing.T) {
		c.mustRefuse(t, "link.pcapng", "is a symbolic link")
		c.mustRefuse(t, filepath.Join(c.dir, "link.pcapng"), "is a symbolic link")
		c.mustRefuse(t, "linkdir/victim", "goes through a symbolic link")
		c.mustRefuse(t, "linkdir/new.pcapng", "goes through a symbolic link")
		c.mustRefuse(t, "inner/x.pcapng", "goes through a symbolic link")
		c.mustRefuse(t, "linkup/outside/new.pcapng", "goes through a symbolic link") // a link before the last directory
	})
	// The last component turning into a link after the type check is
	// refused by the open itself.
	t.Run("open", func(t *testing.T) {
		bothResolvers(t, func(t *testing.T) {
			fd, err := unix.Open(c.dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			_, err = openCaptureFile("cap0", "link.pcapng", c.dir, fd, "link.pcapng", false, true)
			if err == nil || !strings.Contains(err.Error(), "symbolic link") {
				t.Errorf("open of a symbolic link: %v, want a refusal", err)
			}
			c.checkUntouched(t)
		})
	})
}

func TestPcapFileTypesRefused(t *testing.T) {
	c := newCaptureTest(t)
	if err := os.Mkdir(filepath.Join(c.dir, "adir"), 0o700); err != nil {
		t.Fatal(err)
	}
	c.mustRefuse(t, "adir", "is a directory")
	l, err := net.Listen("unix", filepath.Join(c.dir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c.mustRefuse(t, "sock", "is a socket")
	if err := os.Link(c.victim, filepath.Join(c.dir, "hard.pcapng")); err != nil {
		t.Fatal(err)
	}
	c.mustRefuse(t, "hard.pcapng", "hard links")
	if os.Geteuid() != 0 {
		t.Log("not root: cannot make a device node to check its refusal")
		return
	}
	if err := unix.Mknod(filepath.Join(c.dir, "null"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	c.mustRefuse(t, "null", "is a device")
}

// TestPcapFileMode checks that a new file is readable by gvsd's user only
// and that an existing file is emptied, not replaced.
func TestPcapFileMode(t *testing.T) {
	c := newCaptureTest(t)
	old := unix.Umask(0)
	defer unix.Umask(old)
	dev, err := c.open("m.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	dev.Close()
	st, err := os.Stat(filepath.Join(c.dir, "m.pcapng"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new pcap file: %v, %v; want mode 0600", st, err)
	}
}

func TestPrepareCaptureDir(t *testing.T) {
	base := t.TempDir()
	wide := filepath.Join(base, "wide")
	if err := os.Mkdir(wide, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(wide, 0o777)
	if _, err := PrepareCaptureDir(wide); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(wide); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("existing directory: %v, %v; want mode 0700", st, err)
	}
	if err := os.Symlink(base, filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := PrepareCaptureDir(filepath.Join(base, "link")); err == nil || !strings.Contains(err.Error(), "not a symbolic link") {
		t.Errorf("a symbolic link as capture directory: %v, want a refusal", err)
	}
}

// TestPcapRotationStaysInside checks that rotation renames and deletes
// names in the capture directory only: rotated names that are symbolic
// links are moved or removed as links, their targets untouched.
func TestPcapRotationStaysInside(t *testing.T) {
	c := newCaptureTest(t)
	for _, n := range []string{"r.pcapng.1", "r.pcapng.2"} {
		if err := os.Symlink(c.victim, filepath.Join(c.dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	dev, err := c.open("r.pcapng", "max-size", "600", "max-files", "2")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := dev.WriteBatch([][]byte{testFrame(i, 200)}); err != nil {
			t.Fatal(err)
		}
	}
	dev.Close()
	c.checkUntouched(t)
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if !e.Type().IsRegular() {
			t.Errorf("%s is %v after rotation, want a regular file", e.Name(), e.Type())
		}
	}
	if strings.Join(names, " ") != "r.pcapng r.pcapng.1 r.pcapng.2" {
		t.Errorf("capture directory holds %q, want r.pcapng and 2 rotated files", names)
	}
}

func TestRemoveCaptureFIFO(t *testing.T) {
	c := newCaptureTest(t)
	fifo := filepath.Join(c.dir, "f.pcapng")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "reg.pcapng"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(c.victim, filepath.Join(c.dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := RemoveCaptureFIFO("cap0", c.dir, "f.pcapng"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(fifo); !os.IsNotExist(err) {
		t.Errorf("FIFO still there: %v", err)
	}
	if err := RemoveCaptureFIFO("cap0", c.dir, "reg.pcapng"); err != nil {
		t.Errorf("a regular file: %v, want no error and the file kept", err)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "reg.pcapng")); err != nil {
		t.Errorf("regular file removed: %v", err)
	}
	if err := RemoveCaptureFIFO("cap0", c.dir, "link"); err == nil {
		t.Error("a symbolic link was accepted")
	}
	if err := RemoveCaptureFIFO("cap0", c.dir, c.victim); err == nil {
		t.Error("a file outside the capture directory was accepted")
	}
	c.checkUntouched(t)
	if _, err := os.Lstat(filepath.Join(c.dir, "link")); err != nil {
		t.Errorf("symbolic link removed: %v", err)
	}
}
