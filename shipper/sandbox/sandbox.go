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
// that: the generation it resolved stays until the Write after next begins,
// so such a read only fails if two Writes begin while it runs.
//
// Names beginning with ".." belong to this package. Other entries of dir that
// are not its links (a Mesos sandbox's stdout, say) are left alone.
//
// keyship often runs as root on behalf of a task user who owns the directory
// around the sandbox, so Write trusts no name in it: the sandbox must be a
// real directory (not a symlink) owned by the process's uid or by the owner
// asked for, and everything below it is created, chmodded and chowned
// through open directory descriptors, never by following a symlink. The path
// above the sandbox is walked one directory at a time from "/"; a symlink
// there is followed only when nobody but root or the process's user could
// have put it there (both own it and its directory, which is not writable by
// others or is sticky), as /var/run -> /run is.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"github.com/keyship/keyship/host/materialize"
	"io/fs"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

const (
	// dataLink is the symlink to the current generation.
	dataLink = "..data"
	// dataTmpLink is the new symlink before it is renamed over dataLink.
	dataTmpLink = "..data_tmp"
	// generationLayout names a generation directory; a random number
	// follows it.
	generationLayout = "..2006_01_02_15_04_05."
	// defaultFileMode is the mode of a file whose File.Mode is 0, and the most
	// any file gets.
	defaultFileMode fs.FileMode = 0o600
	// dirMode is the mode of every directory Write creates.
	dirMode fs.FileMode = 0o700
)

// generationName matches the names of generation directories.
var generationName = regexp.MustCompile(`^\.\.\d{4}(_\d\d){5}\.\d+$`)

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
// It creates dir with mode 0700 if it is missing (and any missing directory
// above it, 0700) and sets an existing dir to 0700. dir must not be a symlink
// and, when it exists, must be owned by the process's effective uid or by
// opts.Owner's uid: anything else is refused with an error naming dir and its
// owner, before anything changes. A symlink above dir that another user could
// have planted is refused the same way (see the package doc). Every path and mode is checked before
// anything is written: a bad one fails the whole Write with an error naming
// it, and dir is left untouched. A top-level name that already exists in dir
// and is not this package's link is refused the same way.
//
// A File's Path is relative to dir, slash-separated ("keystore.jks",
// "conf/flink.yaml"), and cleaned ("./a" is "a"); it must not be absolute or
// empty, nor hold a ".." element, an element beginning with "..", or control
// characters. Its Mode 0 means 0600; bits beyond 0600 are dropped (0644
// gives 0600) and 0400 gives a read-only file; a mode that leaves the owner
// unable to read, or has non-permission bits, is an error. Write neither
// keeps nor zeroes the Contents; it ignores Role, Version and Source.
//
// Files are written into a fresh generation directory and fsynced, then
// ..data is swapped to it with one rename; after that each top-level name gets
// its link (once: nested paths link only their first element), links of
// names no longer in the set are removed, and generations older than the one
// ..data pointed to before are deleted (that one stays until the next Write
// begins, for readers that resolved it). So at most two generations exist at
// any time, the current one and the one being written (or the one before),
// and a Write that fails removes its own partial generation. An error after
// the swap means the new set is in place but the cleanup did not finish; the
// next Write finishes it.
//
// Writes to one dir are serialized across goroutines and processes by an
// exclusive flock(2) on dir itself. A Write waits for it until ctx is done,
// then fails with an error saying another keyship is writing dir and matching
// ctx.Err().
func Write(ctx context.Context, dir string, files []materialize.File, opts Options) (*Result, error) {
	if dir == "" {
		return nil, errors.New("sandbox: empty directory name")
	}
	plan, err := planFiles(files)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sandbox: %s: %w", dir, err)
	}
	d, err := openSandbox(dir, opts)
	if err != nil {
		return nil, err
	}
	defer d.close() // also releases the lock
	if err := d.lock(ctx); err != nil {
		return nil, err
	}
	if err := d.checkLayout(plan.top); err != nil {
		return nil, err
	}
	if err := d.tighten(opts); err != nil {
		return nil, err
	}
	prev := d.current()
	// Only the current generation may be needed by a reader now: dropping
	// the others first means at most two generations exist during the
	// write, so a sandbox with room for two sets never runs full. An error
	// here is reported by removeStale after the swap, which tries again.
	_ = d.removeGenerations(prev, "")
	gen, err := d.writeGeneration(plan.files, opts)
	if err != nil {
		return nil, err
	}
	if err := d.swapData(gen, opts); err != nil {
		_ = d.removeAll(gen)
		return nil, err
	}
	// The new set is live. What follows makes new names visible and cleans up.
	if err := d.linkTopLevel(plan.top, opts); err != nil {
		return nil, err
	}
	if err := d.removeStale(plan.top, gen, prev); err != nil {
		return nil, err
	}
	if err := d.sync(); err != nil {
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
func planFiles(files []materialize.File) (*plan, error) {
	var errs []error
	bad := func(f materialize.File, format string, args ...any) {
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
