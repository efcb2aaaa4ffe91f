package file

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// errUseRoot says the kernel would not do an open beneath the root in one
// call (no openat2, a seccomp filter that refuses it, or a rename that raced
// the lookup): the caller opens through os.Root instead.
var errUseRoot = errors.New("open through os.Root")

// beneathHow is the lookup openBeneath asks of openat2(2), the one os.Root
// makes component by component: symlinks are followed while they stay under
// the root, an absolute symlink or a path that leaves the root is refused
// (EXDEV), and /proc's magic links are not followed.
var beneathHow = unix.OpenHow{
	Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY,
	Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
}

// openBeneath opens name, relative and cleaned, beneath the directory dir
// in one openat2 call, where os.Root opens each component and registers the
// file with the runtime's poller (about ten system calls, the larger part of
// a secret's read here: BenchmarkGet). Its errors read as os.Root's.
func openBeneath(dirfd int, name string) (*rawFile, error) {
	for {
		fd, err := unix.Openat2(dirfd, name, &beneathHow)
		switch {
		case err == nil:
			return &rawFile{fd: fd}, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM), errors.Is(err, unix.EAGAIN):
			return nil, errUseRoot
		case errors.Is(err, unix.EXDEV):
			return nil, &fs.PathError{Op: "openat", Path: name, Err: errors.New("path escapes from parent")}
		default:
			return nil, &fs.PathError{Op: "openat", Path: name, Err: err}
		}
	}
}

// rawFile is a secret's file opened by openBeneath: read with plain system
// calls, never handed to the runtime's poller.
type rawFile struct{ fd int }

func (f *rawFile) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(f.fd, p)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return 0, &fs.PathError{Op: "read", Err: err}
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f *rawFile) Close() error { return unix.Close(f.fd) }

// stat returns what read needs of the open file.
func (f *rawFile) stat() (fileStat, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstat(f.fd, &st)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fileStat{}, &fs.PathError{Op: "fstat", Err: err}
		}
		return fileStat{
			dir:     st.Mode&unix.S_IFMT == unix.S_IFDIR,
			size:    st.Size,
			modTime: time.Unix(st.Mtim.Unix()),
			dev:     uint64(st.Dev),
			ino:     st.Ino,
		}, nil
	}
}

// sameInode reports whether st, from rawFile.stat, is the file fi
// describes (as os.SameFile).
func (st fileStat) sameInode(fi os.FileInfo) bool {
	sys, ok := fi.Sys().(*syscall.Stat_t)
	return ok && uint64(sys.Dev) == st.dev && sys.Ino == st.ino
}
