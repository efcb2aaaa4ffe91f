//go:build unix

package server

import "syscall"

// umask sets the process umask and returns the old one, so that the socket
// is never created with looser permissions than 0600.
func umask(mask int) int { return syscall.Umask(mask) }
