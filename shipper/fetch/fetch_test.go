package fetch_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/shipper/fetch"
)

func requireCurl(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("KEYSHIP_REQUIRE_PEERS") == "1" {
			t.Fatal("curl not found and KEYSHIP_REQUIRE_PEERS=1 (run tools/install-deps.sh)")
		}
		t.Skip("curl not found; run tools/install-deps.sh")
	}
	return p
}

// clock is a settable clock for expiry tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	srv   *httptest.Server
	fs    *fetch.Server
	clock *clock
	caPEM string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	f := &fixture{clock: c}
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f.fs = fetch.New(srv.URL, fetch.WithClock(c.now))
	mux.Handle(fetch.Prefix, f.fs)
	f.srv = srv
	f.caPEM = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f.caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// curl plays the Mesos fetcher: it writes the URI into sandbox/output_file,
// and returns the HTTP status and how many bytes it wrote.
func (f *fixture) curl(t *testing.T, sandbox string, u fetch.URI) (int, int) {
	t.Helper()
	out := filepath.Join(sandbox, u.OutputFile)
	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(out)
	cmd := exec.Command(requireCurl(t), "-sS", "--cacert", f.caPEM, "-o", out, "-w", "%{http_code}", u.Value)
	stdout, err := cmd.Output()
	if err != nil && !strings.HasPrefix(string(stdout), "4") {
		t.Fatalf("curl: %v %s", err, stdout)
	}
	var code int
	_, _ = fmt.Sscan(string(stdout), &code)
	st, err := os.Stat(out)
	n := 0
	if err == nil {
		n = int(st.Size())
	}
	return code, n
}

var files = []materialize.File{{Path: "keystore.jks", Contents: []byte("KEYSTORE\x00\xfe")}, {Path: "truststore.jks", Contents: []byte("TRUST")}}

func TestFetcherPullsEveryTasksFiles(t *testing.T) {
	f := newFixture(t)
	tasks := []string{"driver", "exec-1", "exec-2"}
	uris, err := f.fs.Publish(tasks, files, 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, task := range tasks {
		sandbox := t.TempDir()
		if len(uris[task]) != len(files) {
			t.Fatalf("task %s got %d URIs", task, len(uris[task]))
		}
		for i, u := range uris[task] {
			if u.Executable || u.Extract || u.Cache || u.OutputFile != ".keyship/"+files[i].Path {
				t.Errorf("URI %+v: want executable/extract/cache false and output_file .keyship/%s", u, files[i].Path)
			}
			if seen[u.Value] {
				t.Errorf("two tasks share URI %s", u.Value)
			}
			seen[u.Value] = true
			code, _ := f.curl(t, sandbox, u)
			got, err := os.ReadFile(filepath.Join(sandbox, u.OutputFile))
			if code != 200 || err != nil || !bytes.Equal(got, files[i].Contents) {
				t.Fatalf("task %s %s: status %d, content mismatch (%v)", task, u.OutputFile, code, err)
			}
		}
	}
}

func TestReusedWrongAndExpiredTokensGetNoBytes(t *testing.T) {
	f := newFixture(t)
	uris, err := f.fs.Publish([]string{"t1", "t2"}, files, 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	sandbox := t.TempDir()
	u := uris["t1"][0]
	if code, _ := f.curl(t, sandbox, u); code != 200 {
		t.Fatalf("first fetch: %d", code)
	}
	if code, n := f.curl(t, sandbox, u); code != 403 || n != 0 {
		t.Errorf("reused single-use URI: status %d, %d bytes; want 403 and none", code, n)
	}
	wrong := u
	wrong.Value = u.Value[:strings.LastIndex(u.Value, "/")-3] + "AAA/keystore.jks"
	if code, n := f.curl(t, sandbox, wrong); code != 404 || n != 0 {
		t.Errorf("wrong token: status %d, %d bytes; want 404 and none", code, n)
	}
	other := uris["t2"][0]
	other.Value = strings.Replace(other.Value, "keystore.jks", "passwd", 1)
	if code, n := f.curl(t, sandbox, other); code != 404 || n != 0 {
		t.Errorf("unknown file: status %d, %d bytes", code, n)
	}
	listing := uris["t2"][0]
	listing.Value = listing.Value[:strings.LastIndex(listing.Value, "/")+1]
	if code, n := f.curl(t, sandbox, listing); code != 404 || n != 0 {
		t.Errorf("directory listing: status %d, %d bytes", code, n)
	}
	f.clock.add(time.Minute + time.Second)
	if code, n := f.curl(t, sandbox, uris["t2"][1]); code != 404 || n != 0 {
		t.Errorf("expired token: status %d, %d bytes; want 404 and none", code, n)
	}
}

func TestNUsesAndSweepZeroes(t *testing.T) {
	f := newFixture(t)
	contents := []byte("keep-me-secret")
	uris, err := f.fs.Publish([]string{"t"}, []materialize.File{{Path: "k", Contents: contents}}, 3, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	client := f.srv.Client()
	get := func() int {
		resp, err := client.Get(uris["t"][0].Value)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 3 {
		if code := get(); code != 200 {
			t.Fatalf("use %d of 3: %d", i+1, code)
		}
	}
	if code := get(); code != 403 {
		t.Fatalf("4th use of a 3-use URI: %d", code)
	}
	f.clock.add(2 * time.Minute)
	f.fs.Sweep()
	if f.fs.Len() != 0 {
		t.Errorf("%d grants left after expiry", f.fs.Len())
	}
	if string(contents) != "keep-me-secret" {
		t.Error("Publish did not copy the caller's contents")
	}
	resp, err := client.Post(uris["t"][0].Value, "text/plain", nil)
	if err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST: %d", resp.StatusCode)
		}
	}
}

func TestPublishRejectsBadNames(t *testing.T) {
	fs := fetch.New("https://x")
	for _, name := range []string{"", "a/b", "..", ".hidden"} {
		if _, err := fs.Publish([]string{"t"}, []materialize.File{{Path: name}}, 1, time.Minute); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	if _, err := fs.Publish([]string{"t", "t"}, files, 1, time.Minute); err == nil {
		t.Error("duplicate task accepted")
	}
}

// BenchmarkFetch1000 is 1000 fetches over loopback HTTPS (keep-alive), the
// cost of 1000 TaskManagers pulling a keystore: make bench.
func BenchmarkFetch1000(b *testing.B) {
	mux := http.NewServeMux()
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	fs := fetch.New(srv.URL)
	mux.Handle(fetch.Prefix, fs)
	client := srv.Client()
	tasks := make([]string, 1000)
	for i := range tasks {
		tasks[i] = fmt.Sprint("tm-", i)
	}
	body := bytes.Repeat([]byte("k"), 4096)
	for b.Loop() {
		b.StopTimer()
		uris, err := fs.Publish(tasks, []materialize.File{{Path: "keystore.jks", Contents: body}}, 1, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for _, task := range tasks {
			resp, err := client.Get(uris[task][0].Value)
			if err != nil || resp.StatusCode != 200 {
				b.Fatal(err, resp.StatusCode)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	}
}

// TestMaxGrantsCountsSharedGrants: a replica's --max-grants bounds the
// grants it wrote to the shared state (until they expire), as it bounds a
// lone server's, and Len counts them for keyship_live_fetch_grants.
func TestMaxGrantsCountsSharedGrants(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := fetch.New("https://keyship.example", fetch.WithMaxGrants(3), fetch.WithClock(func() time.Time { return now }))
	shared := []materialize.File{{Path: "keystore.jks", Contents: []byte("store")}}
	var recorded int
	record := func(_ context.Context, gs []fetch.Grant) error { recorded += len(gs); return nil }
	for _, ttl := range []time.Duration{time.Minute, 2 * time.Minute} {
		res, err := s.Reserve(1)
		if err != nil {
			t.Fatalf("room for a grant (%s TTL): %v", ttl, err)
		}
		_, err = s.PublishShared(context.Background(), []string{"exec-" + ttl.String()}, shared, 1, ttl, record)
		res.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	res, err := s.Reserve(1)
	if err != nil {
		t.Fatalf("room for the third grant: %v", err)
	}
	res.Release()
	if _, err := s.Reserve(2); !errors.Is(err, fetch.ErrGrantLimit) {
		t.Fatalf("room for 2 grants with 2 of 3 written to the shared state: %v, want ErrGrantLimit", err)
	}
	if got := s.Len(); got != 2 || recorded != 2 {
		t.Fatalf("Len %d, recorded %d: want 2 and 2", got, recorded)
	}
	now = now.Add(90 * time.Second) // the first grant expired, the second not
	res, err = s.Reserve(2)
	if err != nil {
		t.Fatalf("room for 2 grants once one of the 2 expired: %v", err)
	}
	res.Release()
	if got := s.Len(); got != 1 {
		t.Fatalf("Len after one expired: %d, want 1", got)
	}
}
