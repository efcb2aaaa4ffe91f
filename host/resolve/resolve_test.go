package resolve_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyship/keyship/host/resolve"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
)

// store is an in-process backend that counts reads and can fail a path
// with ErrUnavailable a number of times.
type store struct {
	mu       sync.Mutex
	data     map[string]string
	gets     int // Get calls
	reads    map[string]int
	flaky    map[string]int // path -> remaining ErrUnavailable answers
	batchErr error
}

func newStore(data map[string]string) *store {
	return &store{data: data, reads: map[string]int{}, flaky: map[string]int{}}
}

func (s *store) Info(context.Context) (plugin.Info, error)          { return plugin.Info{Name: "mem"}, nil }
func (s *store) Configure(context.Context, map[string]string) error { return nil }
func (s *store) Get(_ context.Context, refs []plugin.Ref) ([]plugin.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	if s.batchErr != nil {
		return nil, s.batchErr
	}
	out := make([]plugin.Result, len(refs))
	for i, r := range refs {
		s.reads[r.Path]++
		if s.flaky[r.Path] > 0 {
			s.flaky[r.Path]--
			out[i].Err = fmt.Errorf("store sealed: %w", plugin.ErrUnavailable)
			continue
		}
		v, ok := s.data[r.Path]
		if !ok {
			out[i].Err = fmt.Errorf("mem: %s: %w", r.Path, plugin.ErrNotFound)
			continue
		}
		out[i].Secret = plugin.Secret{Data: []byte(v), Version: "v1"}
	}
	return out, nil
}

type backends map[string]plugin.Backend

func (b backends) Backend(_ context.Context, name string) (plugin.Backend, error) {
	if name == "" {
		name = "file"
	}
	be, ok := b[name]
	if !ok {
		return nil, fmt.Errorf("backend %q is not in the config: %w", name, plugin.ErrInvalidConfig)
	}
	return be, nil
}
func (b backends) DefaultBackend() string { return "file" }

func field(t *testing.T, name, ref string) spec.Field {
	t.Helper()
	r, err := spec.ParseRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	return spec.Field{Name: name, Ref: r}
}

func TestEachRefReadOnceInOneBatchPerBackend(t *testing.T) {
	fs := newStore(map[string]string{"/spark/keystore": "KS", "/spark/pw": "pw"})
	vs := newStore(map[string]string{"secret/x": "X"})
	r := resolve.New(backends{"file": fs, "vault": vs})
	fields := []spec.Field{
		field(t, "a", "/spark/keystore"),
		field(t, "b", "/spark/pw"),
		field(t, "c", "/spark/pw"),
		field(t, "d", "file:/spark/pw"),
		field(t, "e", "vault:secret/x"),
	}
	got, err := r.Resolve(context.Background(), fields)
	if err != nil {
		t.Fatal(err)
	}
	if fs.gets != 1 || vs.gets != 1 {
		t.Errorf("Get calls: file %d, vault %d; want one batch each", fs.gets, vs.gets)
	}
	if fs.reads["/spark/pw"] != 1 || fs.reads["/spark/keystore"] != 1 {
		t.Errorf("reads = %v; want each distinct ref once", fs.reads)
	}
	for _, f := range fields {
		if len(got[f.Ref].Data) == 0 {
			t.Errorf("no secret for %s (%s)", f.Name, f.Ref)
		}
	}
}

func TestUnavailableIsRetried(t *testing.T) {
	fs := newStore(map[string]string{"/a": "A", "/b": "B"})
	fs.flaky["/a"] = 2
	r := resolve.New(backends{"file": fs}, resolve.WithRetry(4, time.Millisecond))
	got, err := r.Resolve(context.Background(), []spec.Field{field(t, "a", "/a"), field(t, "b", "/b")})
	if err != nil {
		t.Fatalf("two ErrUnavailable answers then success: %v", err)
	}
	if string(got[spec.Ref{Path: "/a"}].Data) != "A" {
		t.Error("wrong data after retry")
	}
	if fs.reads["/a"] != 3 || fs.reads["/b"] != 1 {
		t.Errorf("reads = %v; want /a 3 times, /b once (only unavailable refs are retried)", fs.reads)
	}
}

func TestUnavailableGivesUpAfterAttempts(t *testing.T) {
	fs := newStore(map[string]string{"/a": "A"})
	fs.flaky["/a"] = 100
	r := resolve.New(backends{"file": fs}, resolve.WithRetry(3, time.Millisecond))
	_, err := r.Resolve(context.Background(), []spec.Field{field(t, "security.tls.keystore_secret", "/a")})
	if !errors.Is(err, plugin.ErrUnavailable) || fs.reads["/a"] != 3 {
		t.Fatalf("err %v after %d reads; want ErrUnavailable after 3", err, fs.reads["/a"])
	}
}

func TestNotFoundIsNotRetriedAndNamesFieldAndRef(t *testing.T) {
	fs := newStore(map[string]string{"/a": "A"})
	r := resolve.New(backends{"file": fs}, resolve.WithRetry(4, time.Millisecond))
	_, err := r.Resolve(context.Background(), []spec.Field{
		field(t, "security.tls.keystore_secret", "/missing"),
		field(t, "security.tls.truststore_secret", "/missing2"),
		field(t, "security.tls.key_password", "/a"),
	})
	if !errors.Is(err, plugin.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	for _, want := range []string{"security.tls.keystore_secret (/missing): mem: /missing: secret not found", "security.tls.truststore_secret (/missing2)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if fs.reads["/missing"] != 1 {
		t.Errorf("a missing ref was read %d times", fs.reads["/missing"])
	}
	var re *resolve.Error
	if !errors.As(err, &re) || re.Field.Name != "security.tls.keystore_secret" {
		t.Errorf("errors.As *resolve.Error: %v", re)
	}
}

func TestUnknownBackendAndBatchFailure(t *testing.T) {
	fs := newStore(nil)
	fs.batchErr = fmt.Errorf("token expired: %w", plugin.ErrPermissionDenied)
	r := resolve.New(backends{"file": fs})
	_, err := r.Resolve(context.Background(), []spec.Field{field(t, "x", "/a"), field(t, "y", "vault:secret/a")})
	if !errors.Is(err, plugin.ErrPermissionDenied) || !errors.Is(err, plugin.ErrInvalidConfig) {
		t.Fatalf("err = %v; want both the batch failure and the unknown backend", err)
	}
	if !strings.Contains(err.Error(), `y (vault:secret/a): backend "vault" is not in the config`) {
		t.Errorf("unknown backend error does not name field and ref: %v", err)
	}
}

func TestCancelledContext(t *testing.T) {
	fs := newStore(map[string]string{"/a": "A"})
	fs.flaky["/a"] = 100
	ctx, cancel := context.WithCancel(context.Background())
	r := resolve.New(backends{"file": fs}, resolve.WithRetry(10, time.Hour))
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	start := time.Now()
	_, err := r.Resolve(ctx, []spec.Field{field(t, "x", "/a")})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %v; want context.Canceled promptly", err, time.Since(start))
	}
}

func TestZero(t *testing.T) {
	data := []byte("secret")
	m := map[spec.Ref]plugin.Secret{{Path: "/a"}: {Data: data}}
	resolve.Zero(m)
	if string(data) != "\x00\x00\x00\x00\x00\x00" {
		t.Errorf("Zero left %q", data)
	}
}

// TestRetryStopsBeforeTheDeadline: a wait that would end past the caller's
// deadline is not started; the caller gets the store's ErrUnavailable.
func TestRetryStopsBeforeTheDeadline(t *testing.T) {
	fs := newStore(map[string]string{"/a": "A"})
	fs.flaky["/a"] = 100
	// Waits of about 200ms then 400ms: the second ends past the deadline.
	r := resolve.New(backends{"file": fs}, resolve.WithRetry(10, 200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := r.Resolve(ctx, []spec.Field{field(t, "x", "/a")})
	if !errors.Is(err, plugin.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v; want the store's ErrUnavailable, not a deadline error", err)
	}
	if fs.reads["/a"] != 2 {
		t.Errorf("/a read %d times, want 2 (the third would come after the deadline)", fs.reads["/a"])
	}
}

// TestBackendFailureSaidOnce: a backend that fails as a whole (here: it
// does not load, as with a pin mismatch) stops every field that reads from
// it, and the error says so once, naming the fields; errors.As still finds
// one *Error per field.
func TestBackendFailureSaidOnce(t *testing.T) {
	const reason = "backend file: refusing to load plugin /bin/keyship-backend-file: sha256 mismatch"
	b := failingBackends{err: fmt.Errorf("%s: %w", reason, plugin.ErrInvalidConfig)}
	r := resolve.New(b)
	fields := []spec.Field{field(t, "a", "/a"), field(t, "b", "/b"), field(t, "c", "/c"), field(t, "d", "/a")}
	_, err := r.Resolve(context.Background(), fields)
	if !errors.Is(err, plugin.ErrInvalidConfig) {
		t.Fatalf("err = %v", err)
	}
	if n := strings.Count(err.Error(), reason); n != 1 {
		t.Errorf("the backend's failure is said %d times:\n%s", n, err)
	}
	for _, want := range []string{"a (/a)", "b (/b)", "c (/c)", "d (/a)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name field %s", err, want)
		}
	}
	var re *resolve.Error
	if !errors.As(err, &re) || re.Field.Name != "a" {
		t.Errorf("errors.As *resolve.Error: %v", re)
	}
}

// failingBackends has no backend that loads.
type failingBackends struct{ err error }

func (b failingBackends) Backend(context.Context, string) (plugin.Backend, error) { return nil, b.err }
func (b failingBackends) DefaultBackend() string                                  { return "file" }
