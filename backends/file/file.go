// Package file is the keyship backend for secrets kept as files under a local
// directory: one file per secret, the ref's path relative to the root.
//
// A ref's leading "/" means the root, so DC/OS-style refs such as
// /spark/keystore read <root>/spark/keystore, never the host's /spark. Refs
// cannot leave the root: ".." segments and symlinks pointing outside it are
// refused (os.Root enforces this at every path step).
//
// Settings:
//
//	root              directory holding the secrets (required)
//	version_key_file  file with the key for secret versions (optional)
//
// A secret's version is an HMAC-SHA256 of its content under a key the backend
// holds: it changes when the content changes and does not reveal it (it is not
// a plain hash, so a version does not let anyone test guesses of a password).
// The key is version_key_file's bytes (16 to 4096) when that is set. Otherwise
// it is the 32 random bytes of <root>/.keyship-version-key, which the first
// backend to open the root creates (0600, written in full under a temporary
// name and then hard-linked into place, so no backend ever reads half a key);
// every backend on that root then gives the same version for the same
// content, run after run. The key lives inside the root because it protects
// nothing that the root's readers cannot already read. Either key file must
// be a regular file of mode 0600 or 0400 owned by the plugin's uid; any
// other is refused, naming its mode, owner or size. Get and List never show
// it, under its name or through a symlink or hard link to it. If the root is read-only and holds no key yet, the key is random
// per process (versions change from one run to the next); give
// version_key_file to avoid that.
package file

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mathrand "math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/keyship/keyship/plugin"
)

// Name is the backend's name in Info and in host configs.
const Name = "file"

// Version is the backend's release version.
const Version = "0.1.0"

// maxSecretSize bounds one secret; larger files are refused rather than read
// (a keystore is a few KiB; the plugin message limit is 16 MiB).
const maxSecretSize = 8 << 20

// Backend reads secrets from files under a root directory. Create it with New.
type Backend struct {
	mu         sync.RWMutex
	root       *os.Root
	rootFile   *os.File // the root directory, open for openBeneath; nil: every open goes through root
	rootDir    string
	versionKey []byte
	keyFile    os.FileInfo // the version key's file, never served as a secret; nil when the key is per process
}

// New returns an unconfigured file backend.
func New() plugin.Backend { return &Backend{} }

// Info describes the file backend; it supports List.
func (b *Backend) Info(context.Context) (plugin.Info, error) {
	return plugin.Info{
		Name:             Name,
		Version:          Version,
		ProtocolVersions: []uint32{plugin.ProtocolVersion},
		Capabilities:     []string{plugin.CapabilityList},
	}, nil
}

// Configure opens the root directory named by the "root" setting and reads
// the version key: version_key_file, else <root>/.keyship-version-key, which
// it creates if missing (see the package doc).
func (b *Backend) Configure(_ context.Context, config map[string]string) error {
	for k := range config {
		if k != "root" && k != "version_key_file" {
			return fmt.Errorf("file backend: unknown setting %q (known: root, version_key_file): %w", k, plugin.ErrInvalidConfig)
		}
	}
	dir := config["root"]
	if dir == "" {
		return fmt.Errorf("file backend: setting \"root\" is required (the directory holding the secrets): %w", plugin.ErrInvalidConfig)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("file backend: root %q: %v: %w", dir, errors.Unwrap(err), plugin.ErrInvalidConfig)
	}
	var key []byte
	var keyFile os.FileInfo
	if kf := config["version_key_file"]; kf != "" {
		key, keyFile, err = readKeyFile(kf)
	} else {
		key, keyFile, err = rootVersionKey(root, dir)
	}
	if err != nil {
		_ = root.Close()
		return err
	}
	// The root directory itself, open for openBeneath: the same directory
	// os.Root holds, whatever the path names by now.
	rootFile, err := root.Open(".")
	if err != nil {
		rootFile = nil // every read goes through os.Root
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.root != nil {
		_ = b.root.Close()
	}
	if b.rootFile != nil {
		_ = b.rootFile.Close()
	}
	b.root, b.rootFile, b.rootDir, b.versionKey, b.keyFile = root, rootFile, dir, key, keyFile
	return nil
}

// Get reads each ref's file. Per-ref failures are ErrNotFound (no such file),
// ErrPermissionDenied (unreadable) or ErrInvalidConfig (a ref that leaves the
// root, names a directory, or asks for a field or version).
func (b *Backend) Get(ctx context.Context, refs []plugin.Ref) ([]plugin.Result, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.root == nil {
		return nil, fmt.Errorf("file backend: Get before Configure: %w", plugin.ErrInvalidConfig)
	}
	out := make([]plugin.Result, len(refs))
	for i, ref := range refs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out[i] = b.read(ref)
	}
	return out, nil
}

func (b *Backend) read(ref plugin.Ref) plugin.Result {
	if ref.Field != "" || ref.Version != "" {
		return plugin.Result{Err: fmt.Errorf("file backend: ref %q: files have no fields or versions: %w", ref.String(), plugin.ErrInvalidConfig)}
	}
	name, err := relative(ref.Path)
	if err != nil {
		return plugin.Result{Err: err}
	}
	if isVersionKey(name) {
		return plugin.Result{Err: fmt.Errorf("file backend: ref %q: no such secret under the backend root (the name is the backend's version key): %w", ref.Path, plugin.ErrNotFound)}
	}
	f, st, err := b.open(name)
	if err != nil {
		return plugin.Result{Err: b.openError(ref.Path, err)}
	}
	defer func() { _ = f.Close() }()
	if st.dir {
		return plugin.Result{Err: fmt.Errorf("file backend: ref %q is a directory, not a secret: %w", ref.Path, plugin.ErrInvalidConfig)}
	}
	if b.keyFile != nil && st.same(b.keyFile) { // a symlink or hard link to the key
		return plugin.Result{Err: fmt.Errorf("file backend: ref %q: no such secret under the backend root (it leads to the backend's version key): %w", ref.Path, plugin.ErrNotFound)}
	}
	if st.size > maxSecretSize {
		return plugin.Result{Err: fmt.Errorf("file backend: ref %q is %d bytes, over the %d byte limit: %w", ref.Path, st.size, maxSecretSize, plugin.ErrInvalidConfig)}
	}
	data, err := readSecret(f, st.size)
	if err != nil {
		return plugin.Result{Err: b.openError(ref.Path, err)}
	}
	mac := hmac.New(sha256.New, b.versionKey)
	mac.Write(data)
	sum := mac.Sum(nil)
	// The hash keeps the last partial block it was fed (the whole of a
	// short password) until overwritten: overwrite it.
	mac.Write(make([]byte, sha256.BlockSize))
	return plugin.Result{Secret: plugin.Secret{
		Data:     data,
		Version:  "h1:" + hex.EncodeToString(sum)[:32],
		Metadata: map[string]string{"modified": st.modTime.UTC().Format("2006-01-02T15:04:05Z")},
	}}
}

// fileStat is what read needs to know of a secret's open file.
type fileStat struct {
	dir      bool
	size     int64
	modTime  time.Time
	fi       os.FileInfo // from os.Root's file; nil from openBeneath's
	dev, ino uint64      // from openBeneath's file
}

// same reports whether st is the file key describes (as os.SameFile).
func (st fileStat) same(key os.FileInfo) bool {
	if st.fi != nil {
		return os.SameFile(st.fi, key)
	}
	return st.sameInode(key)
}

// open opens name (relative to the root, cleaned) for reading: in one
// system call where the kernel can (openBeneath), else through os.Root.
// Both follow symlinks that stay under the root and refuse any other.
func (b *Backend) open(name string) (io.ReadCloser, fileStat, error) {
	if b.rootFile != nil {
		f, err := openBeneath(int(b.rootFile.Fd()), name)
		if err == nil {
			st, err := f.stat()
			if err != nil {
				_ = f.Close()
				return nil, fileStat{}, err
			}
			return f, st, nil
		}
		if !errors.Is(err, errUseRoot) {
			return nil, fileStat{}, err
		}
	}
	f, err := b.root.Open(name)
	if err != nil {
		return nil, fileStat{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fileStat{}, err
	}
	return f, fileStat{dir: fi.IsDir(), size: fi.Size(), modTime: fi.ModTime(), fi: fi}, nil
}

// readSecret reads f, of size bytes when it was opened, into one buffer of
// that size (io.ReadAll would leave the secret's first bytes behind in every
// buffer it outgrew). A file that grew meanwhile is read whole, up to
// maxSecretSize; each buffer outgrown is cleared.
func readSecret(f io.Reader, size int64) ([]byte, error) {
	data := make([]byte, 0, min(size, maxSecretSize)+1) // +1: the EOF needs no new buffer
	for {
		if len(data) == cap(data) {
			if len(data) > maxSecretSize {
				clear(data)
				return nil, fmt.Errorf("grew past the %d byte limit while it was read", maxSecretSize)
			}
			grown := make([]byte, len(data), 2*cap(data))
			copy(grown, data)
			clear(data)
			data = grown
		}
		n, err := f.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			clear(data)
			return nil, err
		}
	}
}

// List returns the entries directly under prefix, as absolute ref paths
// ("/spark/keystore"), sorted; directories end in "/".
func (b *Backend) List(ctx context.Context, prefix string) ([]string, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.root == nil {
		return nil, fmt.Errorf("file backend: List before Configure: %w", plugin.ErrInvalidConfig)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name := "."
	if strings.Trim(prefix, "/") != "" {
		var err error
		if name, err = relative(prefix); err != nil {
			return nil, err
		}
	}
	entries, err := fs.ReadDir(b.root.FS(), name)
	if err != nil {
		return nil, b.openError(prefix, err)
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		if name == "." && isVersionKey(e.Name()) {
			continue
		}
		p := "/" + path.Join(name, e.Name())
		if name == "." {
			p = "/" + e.Name()
		}
		if e.IsDir() {
			p += "/"
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return out, nil
}

// relative turns a ref path into a path relative to the root, refusing ".."
// segments before os.Root is even asked.
func relative(p string) (string, error) {
	rel := strings.TrimLeft(p, "/")
	if rel == "" {
		return "", fmt.Errorf("file backend: ref %q names the root, not a secret: %w", p, plugin.ErrInvalidConfig)
	}
	for seg := range strings.SplitSeq(rel, "/") {
		if seg == ".." {
			return "", fmt.Errorf("file backend: ref %q leaves the backend root (\"..\" is not allowed): %w", p, plugin.ErrInvalidConfig)
		}
	}
	return path.Clean(rel), nil
}

func (b *Backend) openError(p string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("file backend: ref %q: no such secret under the backend root: %w", p, plugin.ErrNotFound)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("file backend: ref %q: the plugin may not read it: %w", p, plugin.ErrPermissionDenied)
	case strings.Contains(err.Error(), "escapes"):
		return fmt.Errorf("file backend: ref %q leaves the backend root (through a symlink): %w", p, plugin.ErrInvalidConfig)
	default:
		return fmt.Errorf("file backend: ref %q: %v: %w", p, errors.Unwrap(err), plugin.ErrUnavailable)
	}
}

// versionKeyName is the file in the root that holds the version key.
const versionKeyName = ".keyship-version-key"

// versionKeySize is the size of the key rootVersionKey creates.
const versionKeySize = 32

// isVersionKey reports whether name (relative to the root, cleaned) is the
// version key or a temporary file that becomes it.
func isVersionKey(name string) bool {
	return name == versionKeyName || strings.HasPrefix(name, versionKeyName+".tmp")
}

// rootVersionKey returns the key in root's versionKeyName and its file,
// creating it if missing. A root that cannot take a new file (read-only, not
// ours) gets a random key for this process instead, and no file.
func rootVersionKey(root *os.Root, dir string) ([]byte, os.FileInfo, error) {
	key, fi, err := readVersionKey(root, dir)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, fi, err
	}
	key = make([]byte, versionKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, nil, fmt.Errorf("file backend: version key: %w", err)
	}
	switch err := createVersionKey(root, key); {
	case err == nil:
		fi, err := root.Lstat(versionKeyName)
		if err != nil {
			return nil, nil, fmt.Errorf("file backend: version key %s: %v: %w", path.Join(dir, versionKeyName), errors.Unwrap(err), plugin.ErrUnavailable)
		}
		return key, fi, nil
	case errors.Is(err, fs.ErrExist): // another backend made it first: use theirs
		return readVersionKey(root, dir)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return key, nil, nil // documented: random per process
	default:
		return nil, nil, fmt.Errorf("file backend: creating the version key %s: %v: %w", path.Join(dir, versionKeyName), err, plugin.ErrUnavailable)
	}
}

// readVersionKey reads the version key, refusing anything but a regular file
// of the right size, mode and owner (see keyFileProblem; a link planted in its
// place is not followed).
func readVersionKey(root *os.Root, dir string) ([]byte, os.FileInfo, error) {
	shown := path.Join(dir, versionKeyName)
	bad := func(why string) error {
		return fmt.Errorf("file backend: version key %s %s; remove it and a new one is made: %w", shown, why, plugin.ErrInvalidConfig)
	}
	lst, err := root.Lstat(versionKeyName)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("file backend: version key %s: %v: %w", shown, errors.Unwrap(err), plugin.ErrInvalidConfig)
	}
	if !lst.Mode().IsRegular() {
		return nil, nil, bad("is not a regular file")
	}
	f, err := root.Open(versionKeyName)
	if err != nil {
		return nil, nil, fmt.Errorf("file backend: version key %s: %v: %w", shown, errors.Unwrap(err), plugin.ErrInvalidConfig)
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil || !os.SameFile(st, lst) {
		return nil, nil, bad("changed while it was opened")
	}
	if why := keyFileProblem(st, versionKeySize, versionKeySize); why != "" {
		return nil, nil, bad(why)
	}
	key, err := io.ReadAll(io.LimitReader(f, versionKeySize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("file backend: version key %s: %v: %w", shown, err, plugin.ErrInvalidConfig)
	}
	if len(key) != versionKeySize {
		return nil, nil, bad("changed while it was read")
	}
	return key, st, nil
}

// Bounds of a version_key_file's size: HMAC-SHA256 wants 16 bytes or more,
// and a key longer than a few KiB is not a key file.
const (
	minKeyFileSize = 16
	maxKeyFileSize = 4096
)

// readKeyFile reads the version_key_file kf (a path the operator configured,
// so a symlink to it is followed), refusing what keyFileProblem refuses.
func readKeyFile(kf string) ([]byte, os.FileInfo, error) {
	bad := func(why string) error {
		return fmt.Errorf("file backend: version_key_file %q %s: %w", kf, why, plugin.ErrInvalidConfig)
	}
	f, err := os.Open(kf)
	if err != nil {
		return nil, nil, bad(fmt.Sprintf("cannot be read (%v)", errors.Unwrap(err)))
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, bad(fmt.Sprintf("cannot be read (%v)", errors.Unwrap(err)))
	}
	if why := keyFileProblem(st, minKeyFileSize, maxKeyFileSize); why != "" {
		return nil, nil, bad(why)
	}
	key, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, nil, bad(fmt.Sprintf("cannot be read (%v)", err))
	}
	if len(key) < minKeyFileSize || len(key) > maxKeyFileSize {
		return nil, nil, bad("changed while it was read")
	}
	return key, st, nil
}

// keyFileProblem says why st cannot hold a version key, or "": it must be a
// regular file of min to max bytes that only its owner may read or write
// (mode 0600 or 0400), and its owner must be this process's effective uid
// (another user could otherwise set or read the key that versions are made
// with).
func keyFileProblem(st os.FileInfo, min, max int64) string {
	switch {
	case !st.Mode().IsRegular():
		return "is not a regular file"
	case st.Mode().Perm()&0o077 != 0:
		return fmt.Sprintf("has mode %04o: others than its owner may use it (want 0600 or 0400)", uint32(st.Mode().Perm()))
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return fmt.Sprintf("is owned by uid %d, not by the plugin's uid %d", sys.Uid, os.Geteuid())
	}
	switch size := st.Size(); {
	case min == max && size != min:
		return fmt.Sprintf("holds %d bytes, not %d", size, min)
	case size < min || size > max:
		return fmt.Sprintf("holds %d bytes, want %d to %d", size, min, max)
	}
	return ""
}

// createVersionKey writes key to a fresh temporary file in root, fsyncs it
// and links it into place, so that the key appears whole or not at all; it
// fails with fs.ErrExist when another backend linked its key first.
func createVersionKey(root *os.Root, key []byte) error {
	tmp := fmt.Sprintf("%s.tmp%d", versionKeyName, mathrand.Uint64())
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = root.Remove(tmp) }()
	_, err = f.Write(key)
	if err == nil {
		err = f.Chmod(0o600) // the umask may have taken bits away; never add any
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return root.Link(tmp, versionKeyName)
}
