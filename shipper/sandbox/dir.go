package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// dirFlags open a directory for fchmod, fchown, fsync, flock and the *at
// calls, and refuse a symlink in its place.
const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// maxLockPoll is the longest pause between two tries for a held lock.
const maxLockPoll = 50 * time.Millisecond

// sandboxDir is an open sandbox directory. Every change below it goes through
// its descriptor (mkdirat, openat, symlinkat, renameat, unlinkat, fchownat
// with AT_SYMLINK_NOFOLLOW, and fchmod/fchown on descriptors opened with
// O_NOFOLLOW), so no name in it is ever followed through a symlink.
type sandboxDir struct {
	fd   int
	path string // as the caller gave it, for messages
}

// openSandbox opens dir, creating it (and any missing directory above it)
// 0700 if missing. It refuses a dir that is a symlink or not a directory, and
// one owned by a uid other than the process's or opts.Owner's.
func openSandbox(dir string, opts Options) (*sandboxDir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	parentPath, base := filepath.Dir(abs), filepath.Base(abs)
	if parentPath == abs {
		return nil, fmt.Errorf("sandbox: %s: refusing to use the root directory as a sandbox", dir)
	}
	parent, err := openParent(parentPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = unix.Close(parent) }()
	fd, err := openDirAt(parent, base)
	if errors.Is(err, unix.ENOENT) {
		if err := unix.Mkdirat(parent, base, uint32(dirMode)); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, pathError("mkdir", dir, err)
		}
		fd, err = openDirAt(parent, base)
	}
	if err != nil {
		return nil, notADirectory(parent, base, dir, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Close(fd)
		return nil, pathError("stat", dir, err)
	}
	if err := checkOwner(dir, int(st.Uid), opts); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	return &sandboxDir{fd: fd, path: dir}, nil
}

// openParent opens the directory p (absolute, clean), the caller's path
// above the sandbox, one component at a time from "/". A missing directory is
// created 0700 and opened without following a link. A symlink is followed only
// if trustedLink says nobody but root or this process's user could have put
// it there, so a task user cannot plant one that steers where the sandbox is
// made and handed over.
func openParent(p string) (int, error) {
	fd, err := unix.Open("/", parentFlags, 0)
	if err != nil {
		return -1, pathError("open", "/", err)
	}
	walked := "/"
	for name := range strings.SplitSeq(strings.TrimPrefix(p, "/"), "/") {
		if name == "" {
			continue
		}
		shown := filepath.Join(walked, name)
		next, err := unix.Openat(fd, name, parentFlags, 0)
		if err != nil {
			next, err = openParentStep(fd, name, shown)
		}
		_ = unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd, walked = next, shown
	}
	return fd, nil
}

// openParentStep opens name in dirfd when it did not open as a plain
// directory: it creates it if missing and follows it if it is a trusted link.
func openParentStep(dirfd int, name, shown string) (int, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		if err := unix.Mkdirat(dirfd, name, uint32(dirMode)); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, pathError("mkdir", shown, err)
		}
		fd, err := unix.Openat(dirfd, name, parentFlags, 0)
		if err != nil {
			return -1, notADirectory(dirfd, name, shown, err)
		}
		return fd, nil
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK:
		if err := trustedLink(dirfd, &st, shown); err != nil {
			return -1, err
		}
		fd, err := unix.Openat(dirfd, name, parentFlags&^unix.O_NOFOLLOW, 0)
		if err != nil {
			return -1, pathError("open", shown, err)
		}
		return fd, nil
	}
	return -1, notADirectory(dirfd, name, shown, err)
}

// trustedLink refuses the link (shown, with lstat link) in dirfd unless both
// belong to root or this process's user and nobody else can replace the
// link: its directory is not writable by group or others, or is sticky.
func trustedLink(dirfd int, link *unix.Stat_t, shown string) error {
	var dir unix.Stat_t
	if err := unix.Fstat(dirfd, &dir); err != nil {
		return pathError("stat", filepath.Dir(shown), err)
	}
	euid := uint32(os.Geteuid())
	trusted := func(uid uint32) bool { return uid == 0 || uid == euid }
	if trusted(link.Uid) && trusted(dir.Uid) && (dir.Mode&0o022 == 0 || dir.Mode&unix.S_ISVTX != 0) {
		return nil
	}
	return fmt.Errorf("sandbox: %s is a symlink (owned by uid %d, in a directory owned by uid %d with mode %#o) that someone other than root or keyship's uid %d could have planted; refusing to follow it: give the sandbox's real path",
		shown, link.Uid, dir.Uid, dir.Mode&0o7777, euid)
}

func openDirAt(dirfd int, name string) (int, error) {
	return unix.Openat(dirfd, name, dirFlags, 0)
}

// notADirectory explains why name in dirfd (shown as shown) did not open as a
// directory.
func notADirectory(dirfd int, name, shown string, err error) error {
	var st unix.Stat_t
	if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			return fmt.Errorf("sandbox: %s is a symlink; a sandbox must be a real directory, and keyship does not follow a link it did not create", shown)
		case unix.S_IFDIR:
		default:
			return fmt.Errorf("sandbox: %s exists and is not a directory", shown)
		}
	}
	return pathError("open", shown, err)
}

// checkOwner refuses a sandbox owned by anyone but this process's effective
// uid or the owner asked for.
func checkOwner(dir string, uid int, opts Options) error {
	euid := os.Geteuid()
	if uid == euid {
		return nil
	}
	if o := opts.Owner; o != nil && o.UID >= 0 {
		if uid == o.UID {
			return nil
		}
		return fmt.Errorf("sandbox: %s is owned by uid %d, neither keyship's uid %d nor the owner asked for (uid %d); refusing to write into another user's directory", dir, uid, euid, o.UID)
	}
	return fmt.Errorf("sandbox: %s is owned by uid %d, not keyship's uid %d; refusing to write into another user's directory (to ship for that user, make it the owner)", dir, uid, euid)
}

func (d *sandboxDir) close() { _ = unix.Close(d.fd) }

// lock takes an exclusive flock on the directory, trying again with growing
// pauses until ctx is done. Closing the descriptor releases it.
func (d *sandboxDir) lock(ctx context.Context) error {
	start := time.Now()
	pause := time.Millisecond
	for {
		err := unix.Flock(d.fd, unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case !errors.Is(err, unix.EWOULDBLOCK):
			return pathError("lock", d.path, err)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("sandbox: another keyship is writing %s; gave up after %s: %w", d.path, roundWait(time.Since(start)), ctx.Err())
		case <-t.C:
		}
		pause = min(2*pause, maxLockPoll)
	}
}

func roundWait(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// checkLayout refuses, before anything is written, top-level names and a
// ..data that this package did not create.
func (d *sandboxDir) checkLayout(top []string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, dataLink, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return fmt.Errorf("sandbox: %s exists and is not a symlink; refusing to write into a directory this package did not lay out", filepath.Join(d.path, dataLink))
	}
	for _, name := range top {
		ok, err := d.isOurLink(name)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("sandbox: %s exists and is not a link to %s; remove it or write to another directory",
				filepath.Join(d.path, name), linkTarget(name))
		}
	}
	return nil
}

// isOurLink reports whether name is missing or is this package's link
// ..data/name.
func (d *sandboxDir) isOurLink(name string) (bool, error) {
	target, err := readlinkat(d.fd, name)
	switch {
	case errors.Is(err, unix.ENOENT):
		return true, nil
	case errors.Is(err, unix.EINVAL):
		return false, nil // exists, not a symlink
	case err != nil:
		return false, pathError("readlink", filepath.Join(d.path, name), err)
	}
	return target == linkTarget(name), nil
}

func linkTarget(name string) string { return dataLink + "/" + name }

// tighten sets the directory to 0700 and, per opts, its owner.
func (d *sandboxDir) tighten(opts Options) error {
	if err := unix.Fchmod(d.fd, uint32(dirMode)); err != nil {
		return pathError("chmod", d.path, err)
	}
	return fchown(d.fd, d.path, opts)
}

// current returns the generation ..data points to, or "" if none.
func (d *sandboxDir) current() string {
	target, err := readlinkat(d.fd, dataLink)
	if err != nil || !generationName.MatchString(target) {
		return ""
	}
	return target
}

// writeGeneration writes files into a new generation directory, fsyncs them
// and it, and returns its name. On error it leaves nothing behind.
//
// The generation directory is handed to the owner last, so nobody but this
// process can reach into it while it fills.
func (d *sandboxDir) writeGeneration(files []plannedFile, opts Options) (_ string, err error) {
	gen, gfd, err := d.mkdirGeneration()
	if err != nil {
		return "", err
	}
	genPath := filepath.Join(d.path, gen)
	dirs := map[string]int{".": gfd} // open directories of the generation, by relative path
	order := []string{"."}           // to fsync, parents before children
	defer func() {
		for _, fd := range dirs {
			_ = unix.Close(fd)
		}
		if err != nil {
			_ = d.removeAll(gen)
		}
	}()
	if err := unix.Fchmod(gfd, uint32(dirMode)); err != nil { // the umask may have taken bits away
		return "", pathError("chmod", genPath, err)
	}
	written := make([]*os.File, 0, len(files))
	defer func() {
		for _, fh := range written {
			_ = fh.Close()
		}
	}()
	for _, f := range files {
		parent, err := mkdirs(dirs, &order, path.Dir(f.rel), genPath, opts)
		if err != nil {
			return "", err
		}
		fh, err := writeFile(parent, path.Base(f.rel), f, opts)
		if err != nil {
			return "", err
		}
		written = append(written, fh)
	}
	err = syncFiles(written, files) // and closes them
	written = nil
	if err != nil {
		return "", err
	}
	if err := fchown(gfd, genPath, opts); err != nil {
		return "", err
	}
	// Children first, so that each directory's entry is durable before its
	// parent's.
	for _, rel := range slices.Backward(order) {
		if err := unix.Fsync(dirs[rel]); err != nil {
			return "", pathError("fsync", filepath.Join(genPath, filepath.FromSlash(rel)), err)
		}
	}
	return gen, nil
}

// mkdirGeneration creates and opens a new, uniquely named generation
// directory.
func (d *sandboxDir) mkdirGeneration() (string, int, error) {
	prefix := time.Now().UTC().Format(generationLayout)
	for range 1000 {
		name := prefix + strconv.FormatUint(uint64(rand.Uint32()), 10)
		err := unix.Mkdirat(d.fd, name, uint32(dirMode))
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", -1, pathError("mkdir", filepath.Join(d.path, name), err)
		}
		fd, err := openDirAt(d.fd, name)
		if err != nil {
			_ = d.removeAll(name)
			return "", -1, pathError("open", filepath.Join(d.path, name), err)
		}
		return name, fd, nil
	}
	return "", -1, fmt.Errorf("sandbox: %s: no free generation name after 1000 tries", d.path)
}

// mkdirs creates the directories of rel (slash-separated, "." for none) in
// the generation whose open directories are dirs, 0700 and owned per opts,
// records them in dirs and order, and returns rel's descriptor.
func mkdirs(dirs map[string]int, order *[]string, rel, genPath string, opts Options) (int, error) {
	cur := "."
	if rel == cur {
		return dirs[cur], nil
	}
	for elem := range strings.SplitSeq(rel, "/") {
		next := path.Join(cur, elem)
		if _, ok := dirs[next]; !ok {
			full := filepath.Join(genPath, filepath.FromSlash(next))
			if err := unix.Mkdirat(dirs[cur], elem, uint32(dirMode)); err != nil {
				return -1, pathError("mkdir", full, err)
			}
			fd, err := openDirAt(dirs[cur], elem)
			if err != nil {
				return -1, pathError("open", full, err)
			}
			dirs[next] = fd
			*order = append(*order, next)
			if err := unix.Fchmod(fd, uint32(dirMode)); err != nil {
				return -1, pathError("chmod", full, err)
			}
			if err := fchown(fd, full, opts); err != nil {
				return -1, err
			}
		}
		cur = next
	}
	return dirs[cur], nil
}

// writeFile creates name in the directory dirfd (it must not exist, and is
// never followed) and writes it; the caller fsyncs and closes it
// (syncFiles).
func writeFile(dirfd int, name string, f plannedFile, opts Options) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(f.perm))
	if err != nil {
		return nil, fmt.Errorf("sandbox: writing %s: %w", f.rel, err)
	}
	fh := os.NewFile(uintptr(fd), f.rel)
	err = fh.Chmod(f.perm) // the umask may have taken bits away
	if uid, gid := opts.ids(); err == nil && (uid >= 0 || gid >= 0) {
		err = fh.Chown(idOrLeave(uid), idOrLeave(gid))
	}
	if err == nil {
		_, err = fh.Write(f.contents)
	}
	if err != nil {
		_ = fh.Close()
		return nil, fmt.Errorf("sandbox: writing %s: %w", f.rel, err)
	}
	return fh, nil
}

// syncFiles fsyncs the written files (written[i] holds files[i]) all at
// once: the file system commits concurrent fsyncs together (ext4's journal
// in one commit where one after another took one each), which made a
// generation's seven fsyncs most of a cold ship's write
// (BenchmarkWriteGeneration). It closes every file, and a failed close is
// an error as a failed fsync is: every file is durable when it returns nil.
func syncFiles(written []*os.File, files []plannedFile) error {
	errs := make([]error, len(written))
	var wg sync.WaitGroup
	for i, fh := range written {
		wg.Go(func() {
			err := fh.Sync()
			if cerr := fh.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				errs[i] = fmt.Errorf("sandbox: writing %s: %w", files[i].rel, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// swapData points ..data at gen with one rename.
func (d *sandboxDir) swapData(gen string, opts Options) error {
	tmp := filepath.Join(d.path, dataTmpLink)
	// A ..data_tmp left by a crashed Write is stale; unlink removes a link,
	// never what it points to.
	if err := unix.Unlinkat(d.fd, dataTmpLink, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return pathError("remove", tmp, err)
	}
	if err := unix.Symlinkat(gen, d.fd, dataTmpLink); err != nil {
		return pathError("symlink", tmp, err)
	}
	if err := d.lchown(dataTmpLink, opts); err != nil {
		_ = unix.Unlinkat(d.fd, dataTmpLink, 0)
		return err
	}
	if err := unix.Renameat(d.fd, dataTmpLink, d.fd, dataLink); err != nil {
		_ = unix.Unlinkat(d.fd, dataTmpLink, 0)
		return pathError("rename", tmp, err)
	}
	return d.sync()
}

// linkTopLevel creates the missing links name -> ..data/name.
func (d *sandboxDir) linkTopLevel(top []string, opts Options) error {
	for _, name := range top {
		var st unix.Stat_t
		err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil {
			continue // checked by checkLayout: it is our link
		}
		if !errors.Is(err, unix.ENOENT) {
			return pathError("lstat", filepath.Join(d.path, name), err)
		}
		if err := unix.Symlinkat(linkTarget(name), d.fd, name); err != nil {
			return pathError("symlink", filepath.Join(d.path, name), err)
		}
		if err := d.lchown(name, opts); err != nil {
			return err
		}
	}
	return nil
}

// removeStale removes the links of names no longer in the set and every
// generation directory but gen and prev, the one ..data pointed to before.
func (d *sandboxDir) removeStale(top []string, gen, prev string) error {
	names, err := d.names()
	if err != nil {
		return err
	}
	errs := []error{d.removeGenerationsIn(names, gen, prev)}
	for _, name := range names {
		switch {
		case strings.HasPrefix(name, ".."), slices.Contains(top, name):
		default:
			if target, err := readlinkat(d.fd, name); err == nil && target == linkTarget(name) {
				if err := unix.Unlinkat(d.fd, name, 0); err != nil {
					errs = append(errs, fmt.Errorf("sandbox: removing stale link: %w", &fs.PathError{Op: "remove", Path: filepath.Join(d.path, name), Err: err}))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// removeGenerations removes every generation directory but keep1 and keep2
// ("" keeps nothing more).
func (d *sandboxDir) removeGenerations(keep1, keep2 string) error {
	names, err := d.names()
	if err != nil {
		return err
	}
	return d.removeGenerationsIn(names, keep1, keep2)
}

// removeGenerationsIn removes the generation directories among names (the
// directory's entries) but keep1 and keep2.
func (d *sandboxDir) removeGenerationsIn(names []string, keep1, keep2 string) error {
	var errs []error
	for _, name := range names {
		var st unix.Stat_t
		if !generationName.MatchString(name) || name == keep1 || name == keep2 ||
			unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		if err := d.removeAll(name); err != nil {
			errs = append(errs, fmt.Errorf("sandbox: removing old generation %s: %w", filepath.Join(d.path, name), err))
		}
	}
	return errors.Join(errs...)
}

// names lists the directory.
func (d *sandboxDir) names() ([]string, error) {
	fd, err := unix.Openat(d.fd, ".", dirFlags, 0)
	if err != nil {
		return nil, pathError("open", d.path, err)
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer func() { _ = f.Close() }()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return names, nil
}

// removeAll removes name and, if it is a directory, everything below it,
// without following a symlink.
func (d *sandboxDir) removeAll(name string) error { return removeAllAt(d.fd, name) }

func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	fd, err := openDirAt(dirfd, name)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	names, err := f.Readdirnames(-1)
	errs := []error{err}
	for _, n := range names {
		errs = append(errs, removeAllAt(fd, n))
	}
	_ = f.Close()
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (d *sandboxDir) sync() error {
	if err := unix.Fsync(d.fd); err != nil {
		return pathError("fsync", d.path, err)
	}
	return nil
}

// lchown sets the owner of the link name per opts, not of what it points to.
func (d *sandboxDir) lchown(name string, opts Options) error {
	uid, gid := opts.ids()
	if uid < 0 && gid < 0 {
		return nil
	}
	if err := unix.Fchownat(d.fd, name, idOrLeave(uid), idOrLeave(gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return pathError("lchown", filepath.Join(d.path, name), err)
	}
	return nil
}

// fchown sets the owner of the open fd (shown as shown) per opts.
func fchown(fd int, shown string, opts Options) error {
	uid, gid := opts.ids()
	if uid < 0 && gid < 0 {
		return nil
	}
	if err := unix.Fchown(fd, idOrLeave(uid), idOrLeave(gid)); err != nil {
		return pathError("chown", shown, err)
	}
	return nil
}

func idOrLeave(id int) int {
	if id < 0 {
		return -1
	}
	return id
}

// readlinkat returns the target of the link name in dirfd.
func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

func pathError(op, name string, err error) error {
	return fmt.Errorf("sandbox: %w", &fs.PathError{Op: op, Path: name, Err: err})
}
