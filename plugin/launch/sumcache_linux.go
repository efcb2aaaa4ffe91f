package launch

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The sum cache spares a pinned plugin's start the SHA-256 of its binary
// (10-20ms for a 13 MB plugin, a third of a cold `keyship ship`) when the
// very same file was hashed before: the same device and inode, size,
// modification and change time (ctime). It is kept in memory and in
// <user cache dir>/keyship/plugin-sums (0700, one 0600 file per binary).
//
// Why a hit is the bytes that were hashed: a pinned binary is only run when
// no one but root and keyship's own user can write it (checkPinnable), any
// write to a file or change of its metadata sets its ctime to the current
// time, and no one but root can set a ctime; a different file at the path
// is another inode. The cache directory, like the binary, can only be
// changed by root and keyship's user, who could change keyship itself. A sum
// is remembered only once the file's ctime is settledAfter in the past, so
// that on a file system with coarse (1s) timestamps a later write cannot
// keep the same ctime.
var settledAfter = 2 * time.Second

type fileIdentity struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // ns
}

func identityOf(st *unix.Stat_t) fileIdentity {
	return fileIdentity{
		dev: st.Dev, ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
	}
}

func (id fileIdentity) line(sum []byte) []byte {
	return fmt.Appendf(nil, "v1 %d %d %d %s\n", id.size, id.mtime, id.ctime, hex.EncodeToString(sum))
}

var memSums = struct {
	sync.Mutex
	m map[fileIdentity][]byte
}{m: map[fileIdentity][]byte{}}

// sumCacheDir returns the cache directory, creating it, or "" when it cannot
// be used (no home, not owned by this user, open to others).
func sumCacheDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	dir := filepath.Join(base, "keyship", "plugin-sums")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ""
	}
	var st unix.Stat_t
	if unix.Lstat(dir, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Geteuid() || st.Mode&0o077 != 0 {
		return ""
	}
	return dir
}

func (id fileIdentity) file(dir string) string {
	return filepath.Join(dir, fmt.Sprintf("%x-%x", id.dev, id.ino))
}

// cachedSum returns the remembered SHA-256 of the file f, if any.
func cachedSum(f *os.File) (sum []byte, id fileIdentity, ok bool) {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return nil, id, false
	}
	id = identityOf(&st)
	memSums.Lock()
	sum, ok = memSums.m[id]
	memSums.Unlock()
	if ok {
		return sum, id, true
	}
	dir := sumCacheDir()
	if dir == "" {
		return nil, id, false
	}
	cf, err := os.OpenFile(id.file(dir), os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, id, false
	}
	defer func() { _ = cf.Close() }()
	var cst unix.Stat_t
	if unix.Fstat(int(cf.Fd()), &cst) != nil || int(cst.Uid) != os.Geteuid() || cst.Mode&0o077 != 0 {
		return nil, id, false
	}
	data := make([]byte, 256)
	n, _ := cf.Read(data)
	var size, mtime, ctime int64
	var hexSum string
	if _, err := fmt.Sscanf(string(data[:n]), "v1 %d %d %d %s\n", &size, &mtime, &ctime, &hexSum); err != nil {
		return nil, id, false
	}
	if size != id.size || mtime != id.mtime || ctime != id.ctime {
		return nil, id, false
	}
	if sum, err = hex.DecodeString(hexSum); err != nil || len(sum) != 32 {
		return nil, id, false
	}
	memSums.Lock()
	memSums.m[id] = sum
	memSums.Unlock()
	return sum, id, true
}

// rememberSum records that the file f, whose identity was id before it was
// hashed, hashed to sum: if it is still the same and its ctime has settled.
// Failures to write are ignored (the next start hashes again).
func rememberSum(f *os.File, id fileIdentity, sum []byte) {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil || identityOf(&st) != id || time.Since(time.Unix(0, id.ctime)) < settledAfter {
		return
	}
	memSums.Lock()
	memSums.m[id] = sum
	memSums.Unlock()
	dir := sumCacheDir()
	if dir == "" {
		return
	}
	tmp, err := os.CreateTemp(dir, ".sum-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(id.line(sum))
	if cerr := tmp.Close(); werr != nil || cerr != nil {
		_ = os.Remove(tmp.Name())
		return
	}
	if os.Rename(tmp.Name(), id.file(dir)) != nil {
		_ = os.Remove(tmp.Name())
	}
}
