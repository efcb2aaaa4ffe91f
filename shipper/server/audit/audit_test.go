package audit_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/shipper/server"
	"github.com/keyship/keyship/shipper/server/audit"
)

func TestRecordOfACall(t *testing.T) {
	var buf bytes.Buffer
	l := audit.New(&buf)
	l.Observe(context.Background(), &server.Call{
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Duration: 1500 * time.Microsecond, Method: "Ship",
		Caller: "unix uid=0 pid=7", JobID: "j", Tasks: []string{"t1"}, Targets: []string{"TARGET_MESOS"},
		Inputs: []materialize.Input{{Field: "security.tls.keystore_secret", Ref: spec.Ref{Backend: "vault", Path: "secret/spark/tls", Field: "keystore", Version: "3"}, Version: "3"}},
		Code:   connect.CodeNotFound, Err: errors.New("security.tls.keystore_secret (vault:secret/spark/tls#keystore@3): not found"),
	})
	want := `{"time":"2026-01-02T03:04:05Z","event":"ship","caller":"unix uid=0 pid=7","job_id":"j","tasks":["t1"],` +
		`"refs":[{"field":"security.tls.keystore_secret","backend":"vault","ref":"secret/spark/tls#keystore@3","version":"3"}],` +
		`"targets":["TARGET_MESOS"],"outcome":"error","code":"not_found","error":"security.tls.keystore_secret (vault:secret/spark/tls#keystore@3): not found","duration_ms":1.5}` + "\n"
	if buf.String() != want {
		t.Errorf("audit line\n got %s\nwant %s", buf.String(), want)
	}
}

func TestOpenIs0600AndRefusesASymlink(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(p, []byte("earlier\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	l.Observe(context.Background(), &server.Call{Method: "Check"})
	_ = l.Close()
	st, _ := os.Stat(p)
	data, _ := os.ReadFile(p)
	if st.Mode().Perm() != 0o600 || !strings.HasPrefix(string(data), "earlier\n{") {
		t.Errorf("mode %v, contents %q: want 0600, appended", st.Mode().Perm(), data)
	}
	link := filepath.Join(dir, "link.log")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Open(link); err == nil {
		t.Error("an audit log path that is a symlink was opened")
	}
}

// openWithin runs audit.Open(path) and returns its error, or fails the test
// when Open has not returned within 10 seconds (it blocked).
func openWithin(t *testing.T, path string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		l, err := audit.Open(path)
		if err == nil {
			_ = l.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("audit.Open(%s) still blocked after 10s", path)
		return nil
	}
}

// TestOpenRefusesAFIFOWithoutBlocking: a FIFO, with no reader (where a
// plain open waits forever) or with one, is refused at once as not a
// regular file.
func TestOpenRefusesAFIFOWithoutBlocking(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "audit.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := openWithin(t, fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a FIFO without a reader: %v, want refused as not a regular file", err)
	}
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	if err := openWithin(t, fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a FIFO with a reader: %v, want refused as not a regular file", err)
	}
}

// TestOpenRefusesAnotherOwnersFile: an existing audit log of another user
// is refused, and neither its mode nor its contents change.
func TestOpenRefusesAnotherOwnersFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	p := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(p, []byte("theirs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	err := openWithin(t, p)
	if err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("another owner's file: %v, want refused naming its owner", err)
	}
	st, _ := os.Stat(p)
	data, _ := os.ReadFile(p)
	if st.Mode().Perm() != 0o644 || string(data) != "theirs\n" {
		t.Errorf("another owner's file became mode %v with %q", st.Mode().Perm(), data)
	}
}
