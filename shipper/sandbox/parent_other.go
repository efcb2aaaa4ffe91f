//go:build unix && !linux

package sandbox

import "golang.org/x/sys/unix"

// parentFlags open a directory above the sandbox to walk through it. Without
// O_PATH this needs read permission on it.
const parentFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
