// Package fetch serves a job's built stores to the Mesos fetcher over HTTPS,
// the way Flink's AppMaster artifact server and Spark's driver file server
// did by hand: each task gets its own random token and one URI per file,
// valid for a limited number of uses (one by default) and a TTL.
//
// Bundles live in memory only, never on the server's disk; they are zeroed
// when their TTL ends. Tokens are compared in constant time, there is no
// listing, and every failure (wrong, used-up or expired token, unknown file)
// gets a bodiless 403 or 404.
//
// URIs look like https://HOST:PORT/v1/fetch/<token>/<file>. Mount Handler on
// an HTTPS server (keyship serve does).
package fetch

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/keyship/keyship/host/materialize"
)

// Prefix is the URL path under which files are served.
const Prefix = "/v1/fetch/"

// URI is one fetch URI in mesos.CommandInfo.URI terms. Executable, Extract
// and Cache are always false for stores: they are not programs or archives,
// and the fetcher cache must not keep secrets.
type URI struct {
	Value      string
	Executable bool
	Extract    bool
	Cache      bool
	// OutputFile is where the fetcher writes the file, relative to the
	// task's sandbox.
	OutputFile string
}

// Server hands out tokens and serves files for them. It is safe for
// concurrent use.
type Server struct {
	baseURL string
	dir     string
	now     func() time.Time

	maxGrants int // 0: no limit

	mu        sync.Mutex
	grants    map[[32]byte]*grant // by SHA-256 of the token
	lastSweep time.Time
}

// DefaultMaxGrants is how many task grants a Server holds at most unless
// WithMaxGrants says otherwise: about 1 KB each, so about 1 GB at the limit.
const DefaultMaxGrants = 1_000_000

// ErrGrantLimit is what Publish returns (wrapped) when the grants it would
// add pass the Server's limit.
var ErrGrantLimit = errors.New("fetch: the limit of live fetch grants is reached")

// sweepEvery bounds how often Publish sweeps expired grants: a sweep walks
// every grant, so sweeping on every call would make Publish cost grow with
// the number of live jobs. Expiry is enforced on every fetch regardless.
const sweepEvery = 10 * time.Second

type grant struct {
	token   []byte
	job     *job
	uses    map[string]int // file path -> uses left
	expires time.Time
}

// job is one published bundle, shared by its tasks' grants.
type job struct {
	files   map[string][]byte
	expires time.Time
}

// Option changes a Server.
type Option func(*Server)

// WithClock sets the server's clock (for tests of expiry).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithMaxGrants sets how many task grants may be live at once (default
// DefaultMaxGrants); Publish refuses more with ErrGrantLimit.
func WithMaxGrants(n int) Option { return func(s *Server) { s.maxGrants = n } }

// WithDir sets the sandbox directory, relative to the task's sandbox, that
// URIs write into (default ".keyship").
func WithDir(dir string) Option { return func(s *Server) { s.dir = dir } }

// New returns a Server whose URIs start with baseURL, e.g.
// "https://dispatcher.example.com:8443".
func New(baseURL string, opts ...Option) *Server {
	s := &Server{baseURL: strings.TrimRight(baseURL, "/"), dir: ".keyship", now: time.Now, grants: map[[32]byte]*grant{}, maxGrants: DefaultMaxGrants}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Dir returns the directory, relative to a task's sandbox, that URIs write
// files into.
func (s *Server) Dir() string { return s.dir }

// Publish makes files available to each of tasks for ttl, each URI usable
// uses times (0 means once), and returns each task's URIs in files' order.
// The contents are copied once for all tasks.
func (s *Server) Publish(tasks []string, files []materialize.File, uses int, ttl time.Duration) (map[string][]URI, error) {
	if uses <= 0 {
		uses = 1
	}
	if ttl <= 0 {
		return nil, errors.New("fetch: ttl must be positive")
	}
	j := &job{files: make(map[string][]byte, len(files)), expires: s.now().Add(ttl)}
	for _, f := range files {
		if f.Path == "" || strings.Contains(f.Path, "/") || strings.HasPrefix(f.Path, ".") {
			return nil, fmt.Errorf("fetch: file name %q: want a plain name like keystore.jks", f.Path)
		}
		if _, dup := j.files[f.Path]; dup {
			return nil, fmt.Errorf("fetch: file %q given twice", f.Path)
		}
		j.files[f.Path] = append([]byte(nil), f.Contents...)
	}
	out := make(map[string][]URI, len(tasks))
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := s.now(); now.Sub(s.lastSweep) >= sweepEvery {
		s.sweepLocked()
	}
	if s.maxGrants > 0 && len(s.grants)+len(tasks) > s.maxGrants {
		s.sweepLocked()
		if len(s.grants)+len(tasks) > s.maxGrants {
			return nil, fmt.Errorf("%w: %d live, %d more asked for, limit %d (keyship serve --max-grants); retry when jobs expire", ErrGrantLimit, len(s.grants), len(tasks), s.maxGrants)
		}
	}
	for _, task := range tasks {
		if _, dup := out[task]; dup {
			return nil, fmt.Errorf("fetch: task %q given twice", task)
		}
		token := make([]byte, 32)
		if _, err := rand.Read(token); err != nil {
			return nil, err
		}
		g := &grant{token: token, job: j, uses: make(map[string]int, len(files)), expires: j.expires}
		enc := base64.RawURLEncoding.EncodeToString(token)
		uris := make([]URI, 0, len(files))
		for _, f := range files {
			g.uses[f.Path] = uses
			uris = append(uris, URI{Value: s.baseURL + Prefix + enc + "/" + f.Path, OutputFile: path.Join(s.dir, f.Path)})
		}
		s.grants[sha256.Sum256(token)] = g
		out[task] = uris
	}
	return out, nil
}

// ServeHTTP serves GET and HEAD Prefix<token>/<file>.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
	enc, name, ok2 := strings.Cut(rest, "/")
	token, err := base64.RawURLEncoding.DecodeString(enc)
	if !ok || !ok2 || err != nil || len(token) != 32 || name == "" || strings.Contains(name, "/") {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	data, status := s.take(token, name, r.Method == http.MethodGet)
	if status != http.StatusOK {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(data)
	}
}

// take checks token for name and, when consume is set, uses it up once.
func (s *Server) take(token []byte, name string, consume bool) ([]byte, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.grants[sha256.Sum256(token)]
	if !ok || subtle.ConstantTimeCompare(g.token, token) != 1 || !s.now().Before(g.expires) {
		return nil, http.StatusNotFound
	}
	left, ok := g.uses[name]
	if !ok {
		return nil, http.StatusNotFound
	}
	if left <= 0 {
		return nil, http.StatusForbidden
	}
	if consume {
		g.uses[name] = left - 1
	}
	return g.job.files[name], http.StatusOK
}

// Sweep drops expired grants and zeroes bundles no grant refers to any more.
// Publish calls it; a server may also call it on a timer.
func (s *Server) Sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
}

func (s *Server) sweepLocked() {
	now := s.now()
	s.lastSweep = now
	live := map[*job]bool{}
	var dead []*job
	for k, g := range s.grants {
		if now.Before(g.expires) {
			live[g.job] = true
			continue
		}
		delete(s.grants, k)
		dead = append(dead, g.job)
	}
	for _, j := range dead {
		if !live[j] {
			for _, data := range j.files {
				clear(data)
			}
		}
	}
}

// Len returns how many task grants are live (for tests and metrics).
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.grants)
}
