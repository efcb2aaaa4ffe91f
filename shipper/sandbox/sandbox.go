// Package sandbox writes a set of files into a directory so that a reader
// sees either the whole old set or the whole new one, never a mix and never a
// partial file.
//
// It uses the layout of the Kubernetes AtomicWriter:
//
//	dir/                          0700
//	  ..2024_05_01_10_00_00.123   0700  one generation of the set
//	    keystore.jks              0600 (or 0400)
//	    conf/flink.yaml
//	  ..data -> ..2024_05_01_10_00_00.123
//	  keystore.jks -> ..data/keystore.jks
//	  conf -> ..data/conf
//
// A Write fills a fresh generation directory, fsyncs it, and swaps ..data to
// it with one rename. A reader that opens dir/keystore.jks resolves ..data
// once, so it gets one complete generation. A reader that needs several files
// from one generation should resolve ..data once (os.Readlink) and read below
// that, or check that ..data did not change while it read.
//
// Names beginning with ".." belong to this package. Other entries of dir that
// are not its links (a Mesos sandbox's stdout, say) are left alone.
package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
)

const (
	// dataLink is the symlink to the current generation.
	dataLink = "..data"
	// dataTmpLink is the new symlink before it is renamed over dataLink.
	dataTmpLink = "..data_tmp"
	// generationLayout names a generation directory; os.MkdirTemp adds a
	// random suffix.
	generationLayout = "..2006_01_02_15_04_05."
	// defaultFileMode is the mode of a file whose File.Mode is 0, and the most
	// any file gets.
	defaultFileMode fs.FileMode = 0o600
	// dirMode is the mode of every directory Write creates.
	dirMode fs.FileMode = 0o700
)

// generationName matches the names of generation directories.
var generationName = regexp.MustCompile(`^\.\.\d{4}(_\d\d){5}\.\d+$`)

// File is one file to ship.
type File struct {
	// Path is relative to the directory, slash-separated, e.g. "keystore.jks"
	// or "conf/flink.yaml". It must not be absolute, be empty, hold a ".."
	// element or an element beginning with "..", or hold control characters.
	// It is cleaned ("./a" is "a").
	Path string
	// Mode is the file's permission: 0 means 0600. Bits beyond 0600 are
	// dropped (0644 gives 0600); 0400 gives a read-only file. A mode that
	// leaves the owner unable to read, or that has non-permission bits, is an
	// error.
	Mode fs.FileMode
	// Contents are the file's bytes. Write neither keeps nor zeroes them.
	Contents []byte
}

// Options tune a Write. The zero Options leaves ownership as the process
// creates it.
type Options struct {
	// Owner, when set, owns the directory, everything in it and the links
	// (chown needs root).
	Owner *Owner
}

// Owner is a numeric uid and gid; -1 in either leaves that one unchanged.
type Owner struct {
	UID, GID int
}

// ids returns the uid and gid to chown to, -1 meaning "leave".
func (o Options) ids() (uid, gid int) {
	if o.Owner == nil {
		return -1, -1
	}
	return o.Owner.UID, o.Owner.GID
}

// Result is what a Write put in place.
type Result struct {
	// Dir is the directory written, as given.
	Dir string
	// Generation is the name of the generation directory ..data now points
	// to, e.g. "..2024_05_01_10_00_00.123".
	Generation string
	// Paths are the cleaned paths of the files written, in the order given.
	Paths []string
}

// Write atomically replaces the set of files in dir with files.
//
// It creates dir with mode 0700 if it is missing and sets an existing dir to
// 0700. Every path and mode is checked before anything is written: a bad one
// fails the whole Write with an error naming it, and dir is left untouched. A
// top-level name that already exists in dir and is not this package's link is
// refused the same way.
//
// Files are written into a fresh generation directory and fsynced, then
// ..data is swapped to it with one rename; after that each top-level name gets
// its link (once: nested paths link only their first element), links of
// names no longer in the set are removed, and older generations are deleted.
// An error after the swap means the new set is in place but the cleanup did
// not finish; the next Write finishes it.
//
// Write is safe for concurrent use, but calls for the same dir are serialized
// only within one process: two processes must not write the same dir.
func Write(dir string, files []File, opts Options) (*Result, error) {
	if dir == "" {
		return nil, errors.New("sandbox: empty directory name")
	}
	plan, err := planFiles(files)
	if err != nil {
		return nil, err
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if err := prepareDir(dir, plan.top, opts); err != nil {
		return nil, err
	}
	gen, err := writeGeneration(dir, plan.files, opts)
	if err != nil {
		return nil, err
	}
	if err := swapData(dir, gen, opts); err != nil {
		_ = os.RemoveAll(filepath.Join(dir, gen))
		return nil, err
	}
	// The new set is live. What follows makes new names visible and cleans up.
	if err := linkTopLevel(dir, plan.top, opts); err != nil {
		return nil, err
	}
	if err := removeStale(dir, plan.top, gen); err != nil {
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	paths := make([]string, len(plan.files))
	for i, f := range plan.files {
		paths[i] = f.rel
	}
	return &Result{Dir: dir, Generation: gen, Paths: paths}, nil
}

// plannedFile is a File whose path and mode have been checked.
type plannedFile struct {
	rel      string // cleaned, slash-separated
	perm     fs.FileMode
	contents []byte
}

// plan is a checked set of files and the top-level names they need.
type plan struct {
	files []plannedFile
	top   []string // sorted, unique
}

// planFiles checks every path and mode without touching the disk, and reports
// every bad one.
func planFiles(files []File) (*plan, error) {
	var errs []error
	bad := func(f File, format string, args ...any) {
		errs = append(errs, fmt.Errorf("sandbox: file %q: %s", f.Path, fmt.Sprintf(format, args...)))
	}
	p := &plan{}
	given := map[string]string{} // cleaned -> as given
	for _, f := range files {
		reason := checkPath(f.Path)
		if reason != "" {
			bad(f, "%s", reason)
			continue
		}
		rel := path.Clean(f.Path)
		if prev, dup := given[rel]; dup {
			bad(f, "duplicate path (also given as %q)", prev)
			continue
		}
		perm, reason := fileMode(f.Mode)
		if reason != "" {
			bad(f, "%s", reason)
			continue
		}
		given[rel] = f.Path
		p.files = append(p.files, plannedFile{rel: rel, perm: perm, contents: f.Contents})
		top, _, _ := strings.Cut(rel, "/")
		if !slices.Contains(p.top, top) {
			p.top = append(p.top, top)
		}
	}
	// A path cannot be both a file and a directory holding another file.
	for _, f := range p.files {
		for d := path.Dir(f.rel); d != "."; d = path.Dir(d) {
			if orig, ok := given[d]; ok {
				errs = append(errs, fmt.Errorf("sandbox: file %q: %q is a file, so it cannot also be a directory", f.rel, orig))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.Sort(p.top)
	return p, nil
}

// checkPath says why p is not a usable file path, or returns "".
func checkPath(p string) string {
	switch {
	case p == "":
		return "empty path"
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		return "path contains a control character"
	case strings.HasPrefix(p, "/") || filepath.IsAbs(p):
		return "path is absolute; it must be relative to the directory"
	}
	for elem := range strings.SplitSeq(p, "/") {
		if elem == ".." {
			return `path contains a ".." element`
		}
		if strings.HasPrefix(elem, "..") {
			return fmt.Sprintf(`path element %q begins with "..", which is reserved for the directory's own entries`, elem)
		}
	}
	if path.Clean(p) == "." {
		return "path names no file"
	}
	return ""
}

// fileMode turns a File.Mode into the permission the file gets.
func fileMode(m fs.FileMode) (fs.FileMode, string) {
	if m&^fs.ModePerm != 0 {
		return 0, fmt.Sprintf("mode %v is not a plain file permission", m)
	}
	if m == 0 {
		return defaultFileMode, ""
	}
	perm := m & defaultFileMode
	if perm&0o400 == 0 {
		return 0, fmt.Sprintf("mode %#o leaves the file unreadable by its owner", uint32(m))
	}
	return perm, ""
}

// prepareDir refuses, before anything is written, top-level names and a
// ..data that this package did not create, then creates dir (0700, owned per
// opts).
func prepareDir(dir string, top []string, opts Options) error {
	fi, err := os.Lstat(filepath.Join(dir, dataLink))
	if err == nil && fi.Mode()&fs.ModeSymlink == 0 {
		return fmt.Errorf("sandbox: %s exists and is not a symlink; refusing to write into a directory this package did not lay out", filepath.Join(dir, dataLink))
	}
	for _, name := range top {
		ok, err := isOurLink(dir, name)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("sandbox: %s exists and is not a link to %s; remove it or write to another directory",
				filepath.Join(dir, name), linkTarget(name))
		}
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := os.Chmod(dir, dirMode); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return chown(dir, opts)
}

// isOurLink reports whether dir/name is missing or is this package's link
// ..data/name.
func isOurLink(dir, name string) (bool, error) {
	target, err := os.Readlink(filepath.Join(dir, name))
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return true, nil // dir itself is missing, or so is the name
	case err != nil:
		if _, lerr := os.Lstat(filepath.Join(dir, name)); lerr == nil {
			return false, nil // exists, not a symlink
		}
		return false, fmt.Errorf("sandbox: %w", err)
	}
	return target == linkTarget(name), nil
}

func linkTarget(name string) string { return dataLink + "/" + name }

// writeGeneration writes files into a new generation directory of dir, fsyncs
// them and it, and returns its name. On error it leaves nothing behind.
func writeGeneration(dir string, files []plannedFile, opts Options) (gen string, err error) {
	genPath, err := os.MkdirTemp(dir, time.Now().UTC().Format(generationLayout))
	if err != nil {
		return "", fmt.Errorf("sandbox: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(genPath)
		}
	}()
	if err := os.Chmod(genPath, dirMode); err != nil {
		return "", fmt.Errorf("sandbox: %w", err)
	}
	if err := chown(genPath, opts); err != nil {
		return "", err
	}
	dirs := []string{genPath} // to fsync, parents before children
	for _, f := range files {
		full := filepath.Join(genPath, filepath.FromSlash(f.rel))
		made, err := mkdirs(genPath, path.Dir(f.rel), opts)
		if err != nil {
			return "", err
		}
		dirs = append(dirs, made...)
		if err := writeFile(full, f, opts); err != nil {
			return "", err
		}
	}
	// Children first, so that each directory's entry is durable before its
	// parent's.
	for _, d := range slices.Backward(dirs) {
		if err := syncDir(d); err != nil {
			return "", err
		}
	}
	return filepath.Base(genPath), nil
}

// mkdirs creates the directories of rel (slash-separated, "." for none) under
// root, 0700 and owned per opts, and returns the ones it created.
func mkdirs(root, rel string, opts Options) ([]string, error) {
	if rel == "." {
		return nil, nil
	}
	var made []string
	cur := root
	for elem := range strings.SplitSeq(rel, "/") {
		cur = filepath.Join(cur, elem)
		err := os.Mkdir(cur, dirMode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		if err := os.Chmod(cur, dirMode); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		if err := chown(cur, opts); err != nil {
			return nil, err
		}
		made = append(made, cur)
	}
	return made, nil
}

// writeFile creates full (which must not exist), writes and fsyncs it.
func writeFile(full string, f plannedFile, opts Options) error {
	fh, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.perm)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	err = fh.Chmod(f.perm) // the umask may have taken bits away
	if uid, gid := opts.ids(); err == nil && (uid >= 0 || gid >= 0) {
		err = fh.Chown(idOrLeave(uid), idOrLeave(gid))
	}
	if err == nil {
		_, err = fh.Write(f.contents)
	}
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sandbox: writing %s: %w", f.rel, err)
	}
	return nil
}

// swapData points ..data at gen with one rename.
func swapData(dir, gen string, opts Options) error {
	tmp := filepath.Join(dir, dataTmpLink)
	// A ..data_tmp left by a crashed Write is stale.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := os.Symlink(gen, tmp); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := lchown(tmp, opts); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataLink)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("sandbox: %w", err)
	}
	return syncDir(dir)
}

// linkTopLevel creates the missing links name -> ..data/name.
func linkTopLevel(dir string, top []string, opts Options) error {
	for _, name := range top {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue // checked by prepareDir: it is our link
		}
		if err := os.Symlink(linkTarget(name), link); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		if err := lchown(link, opts); err != nil {
			return err
		}
	}
	return nil
}

// removeStale removes the links of names no longer in the set and every
// generation directory but gen.
func removeStale(dir string, top []string, gen string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		switch {
		case generationName.MatchString(name) && name != gen && e.IsDir():
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				errs = append(errs, fmt.Errorf("sandbox: removing old generation: %w", err))
			}
		case strings.HasPrefix(name, ".."), slices.Contains(top, name):
		default:
			if target, err := os.Readlink(filepath.Join(dir, name)); err == nil && target == linkTarget(name) {
				if err := os.Remove(filepath.Join(dir, name)); err != nil {
					errs = append(errs, fmt.Errorf("sandbox: removing stale link: %w", err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sandbox: syncing %s: %w", dir, err)
	}
	return nil
}

func idOrLeave(id int) int {
	if id < 0 {
		return -1
	}
	return id
}

func chown(name string, opts Options) error {
	uid, gid := opts.ids()
	if uid < 0 && gid < 0 {
		return nil
	}
	if err := os.Chown(name, idOrLeave(uid), idOrLeave(gid)); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return nil
}

func lchown(name string, opts Options) error {
	uid, gid := opts.ids()
	if uid < 0 && gid < 0 {
		return nil
	}
	if err := os.Lchown(name, idOrLeave(uid), idOrLeave(gid)); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return nil
}

// dirLocks serializes Writes to the same directory within this process.
var (
	dirLocksMu sync.Mutex
	dirLocks   = map[string]*sync.Mutex{}
)

func lockDir(dir string) (unlock func(), err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	dirLocksMu.Lock()
	mu, ok := dirLocks[abs]
	if !ok {
		mu = &sync.Mutex{}
		dirLocks[abs] = mu
	}
	dirLocksMu.Unlock()
	mu.Lock()
	return mu.Unlock, nil
}
