package plugin

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerOf returns the credentials of the process at the other end of c.
func peerOf(c *net.UnixConn) (Peer, bool, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, false, err
	}
	var (
		cred *unix.Ucred
		gerr error
	)
	if err := raw.Control(func(fd uintptr) { cred, gerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return Peer{}, false, err
	}
	if gerr != nil {
		return Peer{}, false, gerr
	}
	return Peer{Pid: int(cred.Pid), UID: int(cred.Uid)}, true, nil
}
