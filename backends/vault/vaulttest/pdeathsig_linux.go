package vaulttest

import (
	"os/exec"
	"syscall"
)

// setParentDeath makes the kernel kill the server if the test process dies
// without running its cleanups.
func setParentDeath(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
