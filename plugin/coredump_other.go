//go:build !linux

package plugin

import "golang.org/x/sys/unix"

// DisableCoreDumps keeps the process's memory, which holds secrets and
// passwords, out of core files: it sets RLIMIT_CORE to 0 (making the process
// non-dumpable is Linux-only). Serve calls it in every plugin; keyship calls
// it at start.
func DisableCoreDumps() error {
	return unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0})
}

// nameProcess does nothing where processes cannot be renamed.
func nameProcess(string) {}
