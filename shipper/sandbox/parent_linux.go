package sandbox

import "golang.org/x/sys/unix"

// parentFlags open a directory above the sandbox only to walk through it:
// O_PATH needs search permission, not read, as a path lookup does (a 0711
// directory on the way is fine), and a symlink in its place fails with ENOTDIR.
const parentFlags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
