package main_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestShipThroughServeGivesTheSameStores runs a real keyship serve on a unix
// socket and checks that `ship --server` writes byte-identical stores and
// passwords to a local `ship` of the same spec.
func TestShipThroughServeGivesTheSameStores(t *testing.T) {
	j := newJob(t)
	specPath := j.spec(t, nil)
	sock, stderr := startServe(t, j)
	st, err := os.Stat(sock)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("API socket mode %v (%v), want 0600", st.Mode().Perm(), err)
	}

	local := j.ship(t, specPath)
	if local.code != 0 {
		t.Fatalf("local ship: %s", local.stderr)
	}
	remoteDir := filepath.Join(j.dir, "remote-sandbox")
	remote := keyship(t, "ship", "--server", "unix://"+sock, "--spec", specPath, "--sandbox", remoteDir)
	if remote.code != 0 {
		t.Fatalf("ship --server: exit %d: %s", remote.code, remote.stderr)
	}
	assertNoCanary(t, remote)
	for _, name := range []string{"keystore.jks", "truststore.jks", "ca-bundle.jks", "keystore.password", "key.password", "truststore.password"} {
		a, errA := os.ReadFile(filepath.Join(j.sandbox, name))
		b, errB := os.ReadFile(filepath.Join(remoteDir, name))
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between ship and ship --server (%v, %v)", name, errA, errB)
		}
	}
	if !strings.Contains(remote.stdout, "spark.ssl.keyStore="+filepath.Join(remoteDir, "keystore.jks")) {
		t.Errorf("ship --server settings do not point at its sandbox:\n%s", remote.stdout)
	}
	if strings.Contains(stderr(), canary) {
		t.Error("keyship serve logged the keystore password")
	}
}

// startServe runs keyship serve for j on a fresh unix socket until the test
// ends; it returns the socket path and a function that reads its stderr.
func startServe(t testing.TB, j *job, args ...string) (string, func() string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "keyship.sock")
	s := serve(t, j, append([]string{"--listen", "unix://" + sock}, args...)...)
	return sock, s.stderr.String
}

// TestKeyshipDisablesCoreDumps: a running keyship (which holds secrets)
// has a core file size limit of 0, so a crash writes no core with them.
func TestKeyshipDisablesCoreDumps(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	j := newJob(t)
	sock := filepath.Join(t.TempDir(), "keyship.sock")
	srv := exec.Command(filepath.Join(binDir, "keyship"), "serve", "--config", j.config, "--listen", "unix://"+sock)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	var limits []byte
	for range 100 {
		var err error
		if limits, err = os.ReadFile(fmt.Sprintf("/proc/%d/limits", srv.Process.Pid)); err == nil && strings.Contains(string(limits), "Max core file size") {
			if _, err := os.Stat(sock); err == nil {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	for line := range strings.SplitSeq(string(limits), "\n") {
		if strings.HasPrefix(line, "Max core file size") {
			if f := strings.Fields(line); len(f) < 6 || f[4] != "0" || f[5] != "0" {
				t.Errorf("keyship serve: %q, want soft and hard limits 0", line)
			}
			return
		}
	}
	t.Fatalf("no core limit in /proc/PID/limits:\n%s", limits)
}

// openFDs counts the open file descriptors of process pid.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// acceptedOn returns the inodes of the sockets process pid holds that are
// connected on the unix socket path sock: the connections it accepted there
// (Linux lists an accepted socket under its listener's path in
// /proc/PID/net/unix).
func acceptedOn(t *testing.T, pid int, sock string) map[string]bool {
	t.Helper()
	held := map[string]bool{}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(l, "socket:[") {
			held[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	table, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/unix", pid))
	if err != nil {
		t.Fatal(err)
	}
	accepted := map[string]bool{}
	for _, line := range strings.Split(string(table), "\n")[1:] {
		// Num RefCount Protocol Flags Type St Inode Path; St 03 is connected.
		f := strings.Fields(line)
		if len(f) == 8 && f[5] == "03" && f[7] == sock && held[f[6]] {
			accepted[f[6]] = true
		}
	}
	return accepted
}

// TestServeClosesIdleConnections floods the API's unix socket, the fetch
// server and the metrics endpoint with connections that send nothing: serve
// keeps at most --max-conns of each open, closes each within
// --read-header-timeout, and is back to its baseline of file descriptors
// once the flood stops.
func TestServeClosesIdleConnections(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	j := newJob(t)
	sock := filepath.Join(t.TempDir(), "keyship.sock")
	const maxConns, flood = 20, 300
	s := serve(t, j, "--listen", "unix://"+sock, "--fetch-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--read-header-timeout", "1s", "--idle-timeout", "1s", "--max-conns", fmt.Sprint(maxConns))
	pid := s.cmd.Process.Pid
	// The baseline once serve has settled (its plugins started).
	baseline := openFDs(t, pid)
	for stable, start := time.Now(), time.Now(); time.Since(stable) < time.Second && time.Since(start) < 10*time.Second; time.Sleep(100 * time.Millisecond) {
		if n := openFDs(t, pid); n != baseline {
			baseline, stable = n, time.Now()
		}
	}
	fetchAddr := strings.TrimPrefix(s.fetch, "https://")
	metricsAddr := strings.TrimPrefix(s.metrics, "http://")

	var conns []net.Conn
	for i := range flood {
		network, addr := "unix", sock
		switch i % 3 {
		case 1:
			network, addr = "tcp", fetchAddr
		case 2:
			network, addr = "tcp", metricsAddr
		}
		c, err := net.DialTimeout(network, addr, 2*time.Second)
		if err != nil {
			break // the backlog is full: the flood is as large as it gets
		}
		conns = append(conns, c)
	}
	if len(conns) < 3*maxConns {
		t.Fatalf("only %d connections could be opened", len(conns))
	}
	time.Sleep(500 * time.Millisecond)
	if n := openFDs(t, pid); n > baseline+3*maxConns+5 {
		t.Errorf("%d fds during a flood of %d idle connections, baseline %d, cap %d per listener", n, len(conns), baseline, maxConns)
	}
	// A silent connection is closed by the server within the timeout.
	_ = conns[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conns[0].Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
		t.Errorf("a silent API connection was not closed within --read-header-timeout: %v", err)
	}
	for _, c := range conns {
		_ = c.Close()
	}
	deadline := time.Now().Add(15 * time.Second)
	n := openFDs(t, pid)
	for n > baseline+2 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		n = openFDs(t, pid)
	}
	if n > baseline+2 {
		links := func() []string {
			ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
			var out []string
			for _, e := range ents {
				l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
				out = append(out, e.Name()+"->"+l)
			}
			return out
		}
		t.Errorf("%d fds after the flood, baseline %d: %v", n, baseline, links())
	}
	t.Logf("flood of %d idle connections: fds baseline %d, after %d", len(conns), baseline, n)
}
