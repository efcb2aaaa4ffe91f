//go:build unix

package sandbox

import (
	"github.com/keyship/keyship/host/materialize"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func owner(t *testing.T, name string) (uid, gid int) {
	t.Helper()
	fi, err := os.Lstat(name)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

func TestWriteChown(t *testing.T) {
	uid, gid := os.Getuid(), os.Getgid()
	if os.Geteuid() == 0 {
		uid, gid = 4242, 4343 // any ids do for root
	}
	dir := filepath.Join(t.TempDir(), "job")
	res, err := Write(t.Context(), dir, []materialize.File{{Path: "keystore.jks", Contents: []byte("ks")}, {Path: "conf/a", Contents: []byte("a")}}, Options{Owner: &Owner{UID: uid, GID: gid}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".", "..data", res.Generation, "keystore.jks", "conf",
		filepath.Join(res.Generation, "keystore.jks"), filepath.Join(res.Generation, "conf"), filepath.Join(res.Generation, "conf", "a")} {
		if u, g := owner(t, filepath.Join(dir, p)); u != uid || g != gid {
			t.Errorf("%s owned by %d:%d, want %d:%d", p, u, g, uid, gid)
		}
	}

	// -1 leaves the owner alone: what the process creates.
	dir2 := t.TempDir()
	if _, err := Write(t.Context(), dir2, []materialize.File{{Path: "a", Contents: []byte("a")}}, Options{}); err != nil {
		t.Fatal(err)
	}
	if u, _ := owner(t, filepath.Join(dir2, "a")); u != os.Geteuid() {
		t.Errorf("a owned by %d, want %d", u, os.Geteuid())
	}
}
