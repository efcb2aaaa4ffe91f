// Package fetch serves a job's built stores to the Mesos fetcher over HTTPS,
// the way Flink's AppMaster artifact server and Spark's driver file server
// did by hand: each task gets its own random token and one URI per file,
// valid for a limited number of uses (one by default) and a TTL.
//
// Bundles live in memory only, never on the server's disk; they are zeroed
// when their TTL ends. Tokens are compared in constant time, there is no
// listing, and every failure (wrong, used-up or expired token, unknown file)
// gets a bodiless 403 or 404. After Close, a URI that was still valid gets
// 503 with a plain-text reason, and no file is served any more.
//
// URIs look like https://HOST:PORT/v1/fetch/<token>/<file>. Mount Handler on
// an HTTPS server (keyship serve does).
//
// Replicas of keyship serve (--ha) share their grants instead: Share gives
// the Server a Shared, PublishShared hands each new grant to it (only the
// token's hash), and every fetch takes its use there (shared.go).
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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	observer  func(Event)

	mu        sync.Mutex
	grants    map[[32]byte]*grant // by SHA-256 of the token
	reserved  int                 // grants held by Reservations
	minted    mintedGrants        // grants this replica wrote to its Shared (shared.go)
	lastSweep time.Time
	closed    bool

	// shared, when set, holds the grants instead (Share, shared.go).
	shared atomic.Pointer[sharedBox]
}

// Outcomes of a fetch request, as Event.Outcome.
const (
	// OutcomeServed: the file was served.
	OutcomeServed = "served"
	// OutcomeReused: the URI was used up (a one-time URI presented again).
	OutcomeReused = "reused"
	// OutcomeExpired: the URI's TTL has passed.
	OutcomeExpired = "expired"
	// OutcomeUnknown: no such token, or no such file for it.
	OutcomeUnknown = "unknown"
	// OutcomeShutdown: the URI was valid, but the server was closed.
	OutcomeShutdown = "shutdown"
)

// Event is one fetch request, for metrics and the audit log. It holds no
// token and no file contents.
type Event struct {
	Time time.Time
	// Remote is the fetcher's address (the Mesos agent).
	Remote string
	// JobID, TaskID, File and Version say what was asked for, when the
	// token was known.
	JobID, TaskID, File, Version string
	// Outcome is one of the Outcome constants.
	Outcome string
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
	task    string
	uses    []int32 // uses left, by the job's file index
	expires time.Time
}

// job is one published bundle, shared by its tasks' grants.
type job struct {
	id       string
	files    map[string][]byte
	versions map[string]string
	index    map[string]int // file path -> index into a grant's uses
	expires  time.Time
}

// Option changes a Server.
type Option func(*Server)

// WithClock sets the server's clock (for tests of expiry).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithMaxGrants sets how many task grants may be live at once (default
// DefaultMaxGrants); Publish refuses more with ErrGrantLimit.
func WithMaxGrants(n int) Option { return func(s *Server) { s.maxGrants = n } }

// WithObserver makes the server tell observe of every fetch request, on
// the request's goroutine.
func WithObserver(observe func(Event)) Option { return func(s *Server) { s.observer = observe } }

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
	return s.PublishJob("", tasks, files, uses, ttl)
}

// PublishJob is Publish for the job named jobID, which fetch Events carry.
func (s *Server) PublishJob(jobID string, tasks []string, files []materialize.File, uses int, ttl time.Duration) (map[string][]URI, error) {
	return s.publish(nil, jobID, tasks, files, uses, ttl)
}

// Reservation is room for grants, held from Reserve until PublishJob uses
// it or Release frees it, so that a caller that must build what it
// publishes is refused before it builds, even when others race for the
// last grants.
type Reservation struct {
	s    *Server
	n    int
	done bool // guarded by s.mu
}

// Reserve holds room for n grants (sweeping expired ones if need be), or
// returns ErrGrantLimit wrapped with the figures. Every Reservation must be
// released (Release after PublishJob is a no-op).
func (s *Server) Reserve(n int) (*Reservation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.roomLocked(n); err != nil {
		return nil, err
	}
	s.reserved += n
	return &Reservation{s: s, n: n}, nil
}

// PublishJob is the Server's PublishJob in the room r holds (for at most
// as many tasks as r reserved; more need room of their own).
func (r *Reservation) PublishJob(jobID string, tasks []string, files []materialize.File, uses int, ttl time.Duration) (map[string][]URI, error) {
	return r.s.publish(r, jobID, tasks, files, uses, ttl)
}

// Release frees the room r holds, if PublishJob has not used it.
func (r *Reservation) Release() {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.releaseLocked()
}

func (r *Reservation) releaseLocked() {
	if !r.done {
		r.s.reserved -= r.n
		r.done = true
	}
}

// publish is PublishJob, in the room own holds when it is not nil.
func (s *Server) publish(own *Reservation, jobID string, tasks []string, files []materialize.File, uses int, ttl time.Duration) (_ map[string][]URI, err error) {
	if uses <= 0 {
		uses = 1
	}
	if ttl <= 0 {
		return nil, errors.New("fetch: ttl must be positive")
	}
	j := &job{id: jobID, files: make(map[string][]byte, len(files)), versions: make(map[string]string, len(files)), expires: s.now().Add(ttl)}
	for _, f := range files {
		if f.Path == "" || strings.Contains(f.Path, "/") || strings.HasPrefix(f.Path, ".") {
			return nil, fmt.Errorf("fetch: file name %q: want a plain name like keystore.jks", f.Path)
		}
		if _, dup := j.files[f.Path]; dup {
			return nil, fmt.Errorf("fetch: file %q given twice", f.Path)
		}
		j.files[f.Path] = append([]byte(nil), f.Contents...)
		j.versions[f.Path] = f.Version
	}
	defer func() {
		if err != nil { // the copies hold secrets: a refused publish keeps none
			for _, data := range j.files {
				clear(data)
			}
		}
	}()
	out := make(map[string][]URI, len(tasks))
	s.mu.Lock()
	defer s.mu.Unlock()
	if own != nil {
		own.releaseLocked()
	}
	if s.closed {
		return nil, errors.New("fetch: the server is closed (shutting down)")
	}
	if now := s.now(); now.Sub(s.lastSweep) >= sweepEvery {
		s.sweepLocked()
	}
	if err := s.roomLocked(len(tasks)); err != nil {
		return nil, err
	}
	// One random read and one token buffer for every task; one string per
	// task holds all its URIs, each URI a slice of it.
	tokens := make([]byte, 32*len(tasks))
	if _, err := rand.Read(tokens); err != nil {
		return nil, err
	}
	outputs := make([]string, len(files))
	j.index = make(map[string]int, len(files))
	for i, f := range files {
		outputs[i] = path.Join(s.dir, f.Path)
		j.index[f.Path] = i
	}
	prefix := s.baseURL + Prefix
	var b strings.Builder
	added := make([][32]byte, 0, len(tasks))
	for t, task := range tasks {
		if _, dup := out[task]; dup {
			for _, k := range added {
				delete(s.grants, k)
			}
			return nil, fmt.Errorf("fetch: task %q given twice", task)
		}
		token := tokens[32*t : 32*t+32 : 32*t+32]
		g := &grant{token: token, job: j, task: task, uses: make([]int32, len(files)), expires: j.expires}
		var enc [43]byte
		base64.RawURLEncoding.Encode(enc[:], token)
		b.Reset()
		b.Grow(len(files) * (len(prefix) + len(enc) + 24))
		ends := make([]int, len(files))
		for i, f := range files {
			g.uses[i] = int32(uses)
			b.WriteString(prefix)
			b.Write(enc[:])
			b.WriteByte('/')
			b.WriteString(f.Path)
			ends[i] = b.Len()
		}
		all := b.String()
		uris := make([]URI, len(files))
		start := 0
		for i := range files {
			uris[i] = URI{Value: all[start:ends[i]], OutputFile: outputs[i]}
			start = ends[i]
		}
		k := sha256.Sum256(token)
		s.grants[k] = g
		added = append(added, k)
		out[task] = uris
	}
	return out, nil
}

// Room returns nil when n more grants fit under the Server's limit now
// (sweeping expired ones if need be), or ErrGrantLimit wrapped with the
// figures. A caller checks it before it builds what it would publish, so
// that a refused request costs nothing; Publish checks again.
func (s *Server) Room(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roomLocked(n)
}

func (s *Server) roomLocked(n int) error {
	if s.maxGrants > 0 && s.liveLocked()+s.reserved+n > s.maxGrants {
		s.sweepLocked()
		if s.liveLocked()+s.reserved+n > s.maxGrants {
			return fmt.Errorf("%w: %d live, %d reserved, %d more asked for, limit %d (keyship serve --max-grants); retry when jobs expire", ErrGrantLimit, s.liveLocked(), s.reserved, n, s.maxGrants)
		}
	}
	return nil
}

// ServeHTTP serves GET and HEAD Prefix<token>/<file>.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Shared, never-modified values in canonical form: no allocation per
	// request (net/http only reads them).
	h["Cache-Control"] = noStore
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
	enc, name, ok2 := strings.Cut(rest, "/")
	var buf [32]byte
	token := buf[:]
	n, err := decodeToken(token, enc)
	ev := Event{Time: s.now(), Remote: r.RemoteAddr, Outcome: OutcomeUnknown}
	if !ok || !ok2 || err != nil || n != 32 || name == "" || strings.Contains(name, "/") {
		s.observe(ev)
		w.WriteHeader(http.StatusNotFound)
		return
	}
	var data []byte
	var status int
	if sh := s.sharedOf(); sh != nil {
		data, status = s.serveShared(r.Context(), sh, token, name, r.Method == http.MethodGet, &ev)
	} else {
		data, status = s.take(token, name, r.Method == http.MethodGet, &ev)
	}
	s.observe(ev)
	if status == http.StatusServiceUnavailable {
		writeUnavailable(w, ev.Outcome)
		return
	}
	if status != http.StatusOK {
		w.WriteHeader(status)
		return
	}
	h["Content-Type"] = octetStream
	h["Content-Length"] = []string{strconv.Itoa(len(data))}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(data)
	}
}

var (
	noStore     = []string{"no-store"}
	octetStream = []string{"application/octet-stream"}
)

// decodeToken decodes the base64url token enc into dst (32 bytes) without
// allocating; it fails on anything but a 43-character encoding of 32 bytes.
func decodeToken(dst []byte, enc string) (int, error) {
	if base64.RawURLEncoding.DecodedLen(len(enc)) != len(dst) {
		return 0, errors.New("fetch: not a token")
	}
	var src [64]byte
	return base64.RawURLEncoding.Decode(dst, src[:copy(src[:], enc)])
}

func (s *Server) observe(ev Event) {
	if s.observer != nil {
		s.observer(ev)
	}
}

// take checks token for name and, when consume is set, uses it up once. It
// fills ev with what the token is for and the outcome.
func (s *Server) take(token []byte, name string, consume bool, ev *Event) ([]byte, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.grants[sha256.Sum256(token)]
	if !ok || subtle.ConstantTimeCompare(g.token, token) != 1 {
		return nil, http.StatusNotFound
	}
	ev.JobID, ev.TaskID = g.job.id, g.task
	if !s.now().Before(g.expires) {
		ev.Outcome = OutcomeExpired
		return nil, http.StatusNotFound
	}
	i, ok := g.job.index[name]
	if !ok {
		return nil, http.StatusNotFound
	}
	left := g.uses[i]
	ev.File, ev.Version = name, g.job.versions[name]
	switch {
	case s.closed && left > 0:
		ev.Outcome = OutcomeShutdown
		return nil, http.StatusServiceUnavailable
	case left <= 0:
		ev.Outcome = OutcomeReused
		return nil, http.StatusForbidden
	}
	if consume {
		g.uses[i] = left - 1
	}
	ev.Outcome = OutcomeServed
	return g.job.files[name], http.StatusOK
}

// Close stops serving files: every bundle is zeroed, Publish fails, and a
// URI that was still valid gets 503 Service Unavailable with a plain-text
// reason (not a 404, not a reset connection), so that a fetcher's log says
// why. keyship serve closes it on SIGTERM, before it stops listening.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, g := range s.grants {
		for _, data := range g.job.files {
			clear(data)
		}
	}
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
	s.minted.sweep(now)
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

// Len returns how many task grants are live (for tests and metrics): held
// here, or written to the Shared by this server and not expired.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.liveLocked()
}

// liveLocked is how many grants count against the limit: those held here
// and those this server wrote to its Shared (until they expire, used or
// not: a replica does not learn of a use another replica served).
func (s *Server) liveLocked() int { return len(s.grants) + s.minted.n }
