//go:build unix

package sandbox

import (
	"bytes"
	"fmt"
	"github.com/keyship/keyship/host/materialize"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// taskUser is the uid and gid a Mesos task runs as in these tests.
const taskUser = 1000

// needRoot skips a test that chowns to other users.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test hands directories to another uid, as keyship --owner does (CI runs as root)")
	}
}

// node is what snapshot records of one path.
type node struct {
	mode     fs.FileMode
	uid, gid uint32
	data     string // contents of a file, target of a link
}

// snapshot records the mode, owner and contents of everything under root,
// without following links.
func snapshot(t *testing.T, root string) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		n := node{mode: fi.Mode(), uid: st.Uid, gid: st.Gid}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n.data = string(b)
		case fi.Mode()&fs.ModeSymlink != 0:
			if n.data, err = os.Readlink(p); err != nil {
				return err
			}
		}
		out[p] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameSnapshot(t *testing.T, what string, before, after map[string]node) {
	t.Helper()
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			t.Errorf("%s: %s was removed", what, p)
		case a != b:
			t.Errorf("%s: %s changed from %v %d:%d to %v %d:%d (contents equal: %t)", what, p, b.mode, b.uid, b.gid, a.mode, a.uid, a.gid, a.data == b.data)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: %s was created", what, p)
		}
	}
}

// plantedSandbox lays out a task sandbox (owned by sandboxUID when running as
// root) whose .keyship is a link to a directory outside it, and returns the
// sandbox and the outside directory, which holds a file.
func plantedSandbox(t *testing.T, sandboxUID int) (mesosSandbox, outside string) {
	t.Helper()
	base := t.TempDir()
	mesosSandbox, outside = filepath.Join(base, "sandbox"), filepath.Join(base, "etc-keyship")
	for _, d := range []string{mesosSandbox, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "config"), []byte("root's own file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if sandboxUID >= 0 {
		if err := os.Chown(mesosSandbox, sandboxUID, sandboxUID); err != nil {
			t.Fatal(err)
		}
	}
	// What the task user plants: only needs write access to its sandbox.
	if err := os.Symlink(outside, filepath.Join(mesosSandbox, ".keyship")); err != nil {
		t.Fatal(err)
	}
	return mesosSandbox, outside
}

// TestWritePlantedSymlinkWithOwner is issue 10 item 1: as root with an owner,
// Write must not follow a .keyship link the task user planted and hand the
// directory it points to over to the task user.
func TestWritePlantedSymlinkWithOwner(t *testing.T) {
	needRoot(t)
	mesosSandbox, outside := plantedSandbox(t, taskUser)
	before := snapshot(t, outside)
	dir := filepath.Join(mesosSandbox, ".keyship")
	_, err := Write(t.Context(), dir, []materialize.File{{Path: "keystore.jks", Contents: []byte("ks")}},
		Options{Owner: &Owner{UID: taskUser, GID: taskUser}})
	if err == nil {
		t.Error("Write through a planted symlink succeeded")
	} else if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("error %q does not name %s as a symlink", err, dir)
	}
	sameSnapshot(t, "outside directory", before, snapshot(t, outside))
}

// TestWritePlantedSymlinkWithoutOwner: without an owner Write must not chmod
// the directory a planted link points to either.
func TestWritePlantedSymlinkWithoutOwner(t *testing.T) {
	uid := -1
	if os.Geteuid() == 0 {
		uid = taskUser
	}
	mesosSandbox, outside := plantedSandbox(t, uid)
	before := snapshot(t, outside)
	dir := filepath.Join(mesosSandbox, ".keyship")
	if _, err := Write(t.Context(), dir, []materialize.File{{Path: "a", Contents: []byte("a")}}, leave); err == nil {
		t.Error("Write through a planted symlink succeeded")
	} else if !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name %s", err, dir)
	}
	sameSnapshot(t, "outside directory", before, snapshot(t, outside))
}

// TestWritePlantedParentLink: a link the task user planted above the sandbox
// (--sandbox $MESOS_SANDBOX/.keyship/driver) is not followed either: the
// sandbox would be made, and handed to the task user, wherever it points.
func TestWritePlantedParentLink(t *testing.T) {
	needRoot(t)
	mesosSandbox, outside := plantedSandbox(t, taskUser)
	before := snapshot(t, outside)
	link := filepath.Join(mesosSandbox, ".keyship")
	_, err := Write(t.Context(), filepath.Join(link, "driver"), []materialize.File{{Path: "keystore.jks", Contents: []byte("ks")}},
		Options{Owner: &Owner{UID: taskUser, GID: taskUser}})
	if err == nil || !strings.Contains(err.Error(), link+" is a symlink") || !strings.Contains(err.Error(), "could have planted") {
		t.Errorf("error %v, want one naming %s as a symlink someone could have planted", err, link)
	}
	sameSnapshot(t, "outside directory", before, snapshot(t, outside))
}

// TestWriteFollowsTrustedParentLink: a link above the sandbox that only
// keyship's own user could have made (like /var/run -> /run) is followed.
func TestWriteFollowsTrustedParentLink(t *testing.T) {
	base := t.TempDir()
	if err := os.Mkdir(filepath.Join(base, "real"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(t.Context(), filepath.Join(base, "link", "a", "sandbox"), []materialize.File{{Path: "x", Contents: []byte("x")}}, leave); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(base, "real", "a", "sandbox", "x")); got != "x" {
		t.Errorf("x = %q", got)
	}
}

// TestWriteRefusesSymlinkedSandbox: a sandbox path that is itself a link is
// refused even when the link and its target are keyship's own.
func TestWriteRefusesSymlinkedSandbox(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	if err := os.Mkdir(real, 0o750); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, real)
	_, err := Write(t.Context(), link, []materialize.File{{Path: "a", Contents: []byte("a")}}, leave)
	if err == nil || !strings.Contains(err.Error(), link) || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("Write into a symlinked sandbox: error %v, want one naming %s as a symlink", err, link)
	}
	sameSnapshot(t, "link target", before, snapshot(t, real))
}

// TestWriteRefusesSandboxOfAnotherUser: a sandbox owned by neither keyship's
// uid nor the owner asked for is refused, and the error names the path and
// the uid that owns it.
func TestWriteRefusesSandboxOfAnotherUser(t *testing.T) {
	needRoot(t)
	const stranger = 2000
	for _, opts := range []Options{leave, {Owner: &Owner{UID: taskUser, GID: taskUser}}} {
		dir := filepath.Join(t.TempDir(), "theirs")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, stranger, stranger); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, dir)
		_, err := Write(t.Context(), dir, []materialize.File{{Path: "a", Contents: []byte("a")}}, opts)
		if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), fmt.Sprint("uid ", stranger)) {
			t.Errorf("owner %v: error %v, want one naming %s and uid %d", opts.Owner, err, dir, stranger)
		}
		sameSnapshot(t, "the other user's directory", before, snapshot(t, dir))
	}

	// The task user's own sandbox is fine when shipping for the task user.
	dir := filepath.Join(t.TempDir(), "task")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, taskUser, taskUser); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(t.Context(), dir, []materialize.File{{Path: "a", Contents: []byte("a")}}, Options{Owner: &Owner{UID: taskUser, GID: taskUser}}); err != nil {
		t.Fatalf("the task user's own sandbox: %v", err)
	}
	if u, _ := owner(t, filepath.Join(dir, "a")); u != taskUser {
		t.Errorf("a owned by %d, want %d", u, taskUser)
	}
}

// TestWriteDoesNotFollowPlantedNames: inside a sandbox the task user owns,
// links it plants under this package's reserved names are replaced or
// removed, never followed.
func TestWriteDoesNotFollowPlantedNames(t *testing.T) {
	needRoot(t)
	base := t.TempDir()
	dir, outside := filepath.Join(base, "sandbox"), filepath.Join(base, "outside")
	for _, d := range []string{dir, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "a"), []byte("root's"), 0o644); err != nil {
		t.Fatal(err)
	}
	own := Options{Owner: &Owner{UID: taskUser, GID: taskUser}}
	if _, err := Write(t.Context(), dir, []materialize.File{{Path: "a", Contents: []byte("1")}}, own); err != nil {
		t.Fatal(err)
	}
	// The task user now owns dir; it plants links under reserved names.
	for _, name := range []string{"..data_tmp", "..2020_01_01_00_00_00.1"} {
		if err := os.Symlink(outside, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, outside)
	if _, err := Write(t.Context(), dir, []materialize.File{{Path: "a", Contents: []byte("2")}}, own); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "a")); got != "2" {
		t.Errorf("a = %q, want 2", got)
	}
	sameSnapshot(t, "outside directory", before, snapshot(t, outside))
}

// TestWriteCreatesMissingParents: missing directories above the sandbox are
// created 0700; the sandbox itself gets the owner.
func TestWriteCreatesMissingParents(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b", "sandbox")
	if _, err := Write(t.Context(), dir, []materialize.File{{Path: "x", Contents: []byte("x")}}, leave); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(dir), filepath.Dir(filepath.Dir(dir)), dir} {
		if m := mode(t, d); m&0o077 != 0 {
			t.Errorf("%s mode %v, want no group or other bits", d, m)
		}
	}
	if got := readFile(t, filepath.Join(dir, "x")); got != "x" {
		t.Errorf("x = %q", got)
	}
}

// TestWriteRefusesNonDirectorySandbox: a sandbox path naming a file is an
// error naming it.
func TestWriteRefusesNonDirectorySandbox(t *testing.T) {
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Write(t.Context(), p, []materialize.File{{Path: "a"}}, leave)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("error %v, want one naming %s as not a directory", err, p)
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, []byte("mine")) || mode(t, p) != 0o644 {
		t.Errorf("%s changed", p)
	}
}
