package server

import (
	"fmt"
	"net"
	"syscall"
)

// peerCredentials returns "unix uid=U pid=P" for a unix socket peer (the
// kernel's SO_PEERCRED: what the peer was when it connected), or "".
func peerCredentials(c net.Conn) string {
	c = accepted(c)
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ""
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ""
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return "unix"
	}
	return fmt.Sprintf("unix uid=%d pid=%d", cred.Uid, cred.Pid)
}
