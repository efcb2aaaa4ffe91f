package plugin

import "golang.org/x/sys/unix"

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
