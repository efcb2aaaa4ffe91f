package plugin

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// DisableCoreDumps keeps the process's memory, which holds secrets and
// passwords, out of core files and out of reach of ptrace by other processes
// of the same user: it sets RLIMIT_CORE to 0 and the process non-dumpable
// (PR_SET_DUMPABLE 0). Serve calls it in every plugin; keyship calls it at
// start. It returns the first error but tries both.
func DisableCoreDumps() error {
	errLimit := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0})
	errDump := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	if errLimit != nil {
		return errLimit
	}
	return errDump
}

// nameProcess sets the process's name (/proc/PID/comm, what ps and top
// show) to name, cut to the kernel's 15 bytes: a plugin the host executes
// through /proc/self/fd (to run the very bytes it hashed) would otherwise
// be named "3".
func nameProcess(name string) {
	if len(name) > 15 {
		name = name[:15]
	}
	b, err := unix.BytePtrFromString(name)
	if err != nil {
		return
	}
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(b)), 0, 0, 0)
}
