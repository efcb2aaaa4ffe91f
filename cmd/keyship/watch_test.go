package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyship/keyship/host/keystore"
)

func TestWatchFlagsAreChecked(t *testing.T) {
	j := newJob(t)
	spec := j.spec(t, nil)
	for name, args := range map[string][]string{
		"on-change without watch":    {"--on-change", "true"},
		"renew-before without watch": {"--renew-before", "1h"},
		"watch with a fragment":      {"--watch", "--emit", "mesos"},
		"refresh through a server":   {"--watch", "--server", "unix:///nonexistent.sock", "--refresh", "5s"},
		"renewal through a server":   {"--watch", "--server", "unix:///nonexistent.sock", "--renew-before", "1h"},
		"refresh under a second":     {"--watch", "--refresh", "10ms"},
		"negative renew-before":      {"--watch", "--renew-before", "-1h"},
		"not a spark version":        {"--watch", "--spark-version", "four"},
	} {
		if r := j.ship(t, spec, args...); r.code != 2 {
			t.Errorf("%s: exit %d, want 2 (usage)\n%s", name, r.code, r.stderr)
		}
	}
	assertNothingWritten(t, j)
}

// syncBuffer is a bytes.Buffer safe for a process's writes and the test's
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestShipWatchSIGHUPOnChangeSIGTERM: keyship ship --watch with the real
// file plugin and a refresh of an hour: it prints the Spark 4 reload
// settings and what does not reload; a rotated keystore is swapped in on
// SIGHUP, --on-change runs once with the manifest in its environment, and
// SIGTERM ends it with exit 0 and the stores in place.
func TestShipWatchSIGHUPOnChangeSIGTERM(t *testing.T) {
	j := newJob(t)
	spec := j.spec(t, nil)
	onChange := filepath.Join(j.dir, "on-change.log")
	cmd := exec.Command(filepath.Join(binDir, "keyship"), "ship", "--config", j.config, "--spec", spec, "--sandbox", j.sandbox,
		"--watch", "--refresh", "1h", "--spark-version", "4.0.1", "--on-change", `echo "$KEYSHIP_REASON $KEYSHIP_MANIFEST" >> `+onChange)
	cmd.Env = append(os.Environ(), "KEYSHIP_CONFIG=")
	stdout, stderr, done := startWatch(t, cmd)
	wait := waiter(t, 20*time.Second, done, stdout, stderr)
	wait("first ship", func() bool { return strings.Contains(stdout.String(), "spark.ssl.protocol=") })
	for _, want := range []string{"spark.ssl.rpc.trustStoreReloadingEnabled=true\n", "spark.ssl.rpc.trustStoreReloadIntervalMs=10000\n",
		"never reloads its keystore", "--on-change", "watches them (refresh every 1h0m0s"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	before, _ := os.ReadFile(filepath.Join(j.sandbox, "keystore.jks"))

	// A keystore from another CA fails the chain check: the set stays.
	leaf, ks := newCAKeystore(t, "rotated CA")
	j.put(t, "spark/keystore", ks)
	_ = cmd.Process.Signal(syscall.SIGHUP)
	wait("a failed refresh", func() bool { return strings.Contains(stderr.String(), "refresh failed; the stores in place stay") })
	if now, _ := os.ReadFile(filepath.Join(j.sandbox, "keystore.jks")); !bytes.Equal(now, before) {
		t.Fatal("a keystore that fails the checks reached the sandbox")
	}
	if _, err := os.Stat(onChange); err == nil {
		t.Fatal("--on-change ran after a failed refresh")
	}
	// The truststore and CA bundle follow: the set passes and is swapped in.
	ts, err := keystore.JKSTruststore(keystore.AliasCertificates(leaf.Chain[1:]), []byte("trustpass-1"))
	if err != nil {
		t.Fatal(err)
	}
	j.put(t, "spark/truststore", ts)
	j.put(t, "spark/ca_bundle_truststore", ts)
	_ = cmd.Process.Signal(syscall.SIGHUP)
	swappedThenStop(t, j, ks, onChange, wait, cmd, done, stdout, stderr)
}

// stopWatch ends a keyship ship --watch with SIGTERM and wants it to exit 0
// within 20 seconds.
func stopWatch(t *testing.T, cmd *exec.Cmd, done <-chan error, stderr *syncBuffer) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("keyship did not stop within 20s of SIGTERM")
	}
}

// startWatch starts a keyship ship --watch, killed when the test ends; done
// gets its exit.
func startWatch(t *testing.T, cmd *exec.Cmd) (stdout, stderr *syncBuffer, done <-chan error) {
	t.Helper()
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exit := make(chan error, 1)
	go func() { exit <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return stdout, stderr, exit
}

// waiter returns wait(what, cond): it polls cond until it holds, and fails
// the test when the watch exits first or within passes (a bound on a hang,
// not a timed assertion).
func waiter(t *testing.T, within time.Duration, done <-chan error, stdout, stderr *syncBuffer) func(what string, cond func() bool) {
	return func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			select {
			case err := <-done:
				t.Fatalf("keyship exited (%v) waiting for %s\n%s\n%s", err, what, stdout.String(), stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s within %s\n%s\n%s", what, within, stdout.String(), stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// swappedThenStop waits until the watch has swapped keystore ks into j's
// sandbox and run --on-change (which writes its arguments into onChange),
// checks that stdout reports the change, stops the watch, and checks that
// the stores stay and that no password was printed.
func swappedThenStop(t *testing.T, j *job, ks []byte, onChange string, wait func(string, func() bool), cmd *exec.Cmd, done <-chan error, stdout, stderr *syncBuffer) {
	t.Helper()
	wait("the swap", func() bool {
		now, _ := os.ReadFile(filepath.Join(j.sandbox, "keystore.jks"))
		return bytes.Equal(now, ks)
	})
	wait("--on-change", func() bool { b, _ := os.ReadFile(onChange); return len(b) > 0 })
	if b, _ := os.ReadFile(onChange); string(b) != "changed "+filepath.Join(j.sandbox, "manifest.json")+"\n" {
		t.Errorf("--on-change wrote %q", b)
	}
	if !strings.Contains(stdout.String(), "keyship shipped new stores to "+j.sandbox+": changed security.tls.keystore_secret (/spark/keystore)") {
		t.Errorf("the swap is not reported on stdout:\n%s", stdout.String())
	}
	stopWatch(t, cmd, done, stderr)
	if now, _ := os.ReadFile(filepath.Join(j.sandbox, "keystore.jks")); !bytes.Equal(now, ks) {
		t.Error("the stores changed when the watch stopped")
	}
	if strings.Contains(stdout.String(), canary) || strings.Contains(stderr.String(), canary) {
		t.Fatal("the keystore password appeared in the output")
	}
}
