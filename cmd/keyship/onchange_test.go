package main_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/materialize/testca"
)

// newCAKeystore makes a new CA named name and a JKS keystore for
// node1.example.com issued by it (store password: the canary).
func newCAKeystore(t *testing.T, name string) (*testca.Leaf, []byte) {
	t.Helper()
	ca, err := testca.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("node1.example.com", testca.WithDNS("node1.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.JKSKeystore("node", leaf.Key, leaf.Chain, []byte(canary), []byte("keypass-1"))
	if err != nil {
		t.Fatal(err)
	}
	return leaf, ks
}

// rotateStores puts a keystore, truststore and CA bundle of a new CA into
// j's secrets: a set that passes every check and changes three versions.
func rotateStores(t *testing.T, j *job, name string) []byte {
	t.Helper()
	leaf, ks := newCAKeystore(t, name)
	ts, err := keystore.JKSTruststore(keystore.AliasCertificates(leaf.Chain[1:]), []byte("trustpass-1"))
	if err != nil {
		t.Fatal(err)
	}
	j.put(t, "spark/keystore", ks)
	j.put(t, "spark/truststore", ts)
	j.put(t, "spark/ca_bundle_truststore", ts)
	return ks
}

// awaitExit fails unless process pid has exited: it waits for the exit on a
// pidfd (bounded: a process still alive at the bound fails the test and is
// killed), then checks that /proc shows it gone or a zombie.
func awaitExit(t *testing.T, pid int) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return
	}
	if err != nil {
		t.Fatalf("pidfd_open %d: %v", pid, err)
	}
	defer func() { _ = unix.Close(fd) }()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 30_000)
	for errors.Is(err, unix.EINTR) {
		n, err = unix.Poll(fds, 30_000)
	}
	if err != nil || n == 0 {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		t.Errorf("process %d (%q) of --on-change outlived it by 30s (%v)", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), err)
		_ = unix.Kill(pid, unix.SIGKILL)
		return
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		if i := bytes.LastIndexByte(b, ')'); i < 0 || i+2 >= len(b) || (b[i+2] != 'Z' && b[i+2] != 'X') {
			t.Errorf("process %d: /proc stat %q, want gone or a zombie", pid, b)
		}
	}
}

// TestShipWatchOnChangeTimeout (issue 20, item 3): an --on-change that hangs
// with a child of its own (`sleep 1000 & sleep 1000`) is killed with its
// whole process group at --on-change-timeout, the timeout is logged, the
// next rotation is still shipped (and its hook run), and when SIGTERM stops
// keyship while a hook hangs, no process of any hook survives.
func TestShipWatchOnChangeTimeout(t *testing.T) {
	j := newJob(t)
	spec := j.spec(t, nil)
	hookLog := filepath.Join(j.dir, "on-change.log")
	cmd := exec.Command(filepath.Join(binDir, "keyship"), "ship", "--config", j.config, "--spec", spec, "--sandbox", j.sandbox,
		"--watch", "--refresh", "1h", "--on-change-timeout", "5s",
		"--on-change", `sleep 1000 & echo "$KEYSHIP_REASON $$ $!" >> `+hookLog+`; sleep 1000`)
	cmd.Env = append(os.Environ(), "KEYSHIP_CONFIG=")
	stdout, stderr, done := startWatch(t, cmd)
	wait := waiter(t, 60*time.Second, done, stdout, stderr)
	hookRuns := func() []string {
		b, _ := os.ReadFile(hookLog)
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	wait("first ship", func() bool { return strings.Contains(stdout.String(), "watches them") })

	rotateStores(t, j, "rotated CA 1")
	_ = cmd.Process.Signal(syscall.SIGHUP)
	wait("the first --on-change run", func() bool { b, _ := os.ReadFile(hookLog); return len(b) > 0 })
	wait("the logged timeout", func() bool { return strings.Contains(stderr.String(), "did not finish in time (5s)") })

	ks := rotateStores(t, j, "rotated CA 2")
	_ = cmd.Process.Signal(syscall.SIGHUP)
	wait("the second swap", func() bool {
		now, _ := os.ReadFile(filepath.Join(j.sandbox, "keystore.jks"))
		return bytes.Equal(now, ks)
	})
	wait("the second --on-change run", func() bool { return len(hookRuns()) == 2 })

	_ = cmd.Process.Signal(syscall.SIGTERM) // while the second hook hangs
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("keyship did not stop within 60s of SIGTERM")
	}
	runs := hookRuns()
	if len(runs) != 2 {
		t.Fatalf("--on-change ran %d times, want 2: %q", len(runs), runs)
	}
	for _, run := range runs {
		f := strings.Fields(run)
		if len(f) != 3 || f[0] != "changed" {
			t.Fatalf("--on-change wrote %q, want reason, shell pid, child pid", run)
		}
		for _, p := range f[1:] {
			pid, err := strconv.Atoi(p)
			if err != nil {
				t.Fatal(err)
			}
			awaitExit(t, pid)
		}
	}
	if strings.Contains(stdout.String(), canary) || strings.Contains(stderr.String(), canary) {
		t.Fatal("the keystore password appeared in the output")
	}
}
