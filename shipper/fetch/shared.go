package fetch

import (
	"container/heap"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/keyship/keyship/host/materialize"
)

// Shared is where a Server's grants live when several keyship serve
// replicas share them (keyship serve --ha): a grant is recorded there when
// its URIs are handed out, and any replica's Server takes its uses there,
// so that each use is taken once across all of them.
type Shared interface {
	// Take uses the grant of tokenHash once for file (when consume is
	// false it only checks that a use is left) and returns what to serve.
	// Its errors wrap ErrUnknown, ErrExpired or ErrUsedUp; any other error
	// means the shared state cannot answer now (the fetcher gets 503).
	Take(ctx context.Context, tokenHash [32]byte, file string, consume bool) (Taken, error)
}

// Taken is what Shared.Take returns: the file's bytes (which the caller
// must not change) and what the fetch Event says.
type Taken struct {
	JobID, TaskID, Version string
	Contents               []byte
}

// Grant is one task's grant as PublishShared hands it to be recorded: the
// SHA-256 of its token (never the token), the uses of each file.
type Grant struct {
	TokenHash [32]byte
	Task      string
	Uses      map[string]int
	Expires   time.Time
}

// The outcomes of Shared.Take that are the fetcher's, not the state's.
var (
	ErrUnknown = errors.New("fetch: no such token or file")
	ErrExpired = errors.New("fetch: the URI's TTL has passed")
	ErrUsedUp  = errors.New("fetch: the URI is used up")
)

// sharedBox holds a Server's Shared (atomic.Pointer needs a concrete type).
type sharedBox struct{ Shared }

// Share makes the server take every fetch's use through sh (keyship serve
// --ha); call it before the server serves. Grants published with
// PublishShared live only in sh.
func (s *Server) Share(sh Shared) { s.shared.Store(&sharedBox{sh}) }

// sharedOf returns the server's Shared, or nil.
func (s *Server) sharedOf() Shared {
	if b := s.shared.Load(); b != nil {
		return b.Shared
	}
	return nil
}

// PublishShared is PublishJob for replicas: it makes each task a token and
// its URIs, and hands the grants to record (which writes them to the
// shared state, with the job's record, in one write) before it returns the
// URIs. The server keeps neither the files nor the grants: a fetch takes
// them through the Server's Shared.
func (s *Server) PublishShared(ctx context.Context, tasks []string, files []materialize.File, uses int, ttl time.Duration, record func(context.Context, []Grant) error) (map[string][]URI, error) {
	if uses <= 0 {
		uses = 1
	}
	if ttl <= 0 {
		return nil, errors.New("fetch: ttl must be positive")
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, errors.New("fetch: the server is closed (shutting down)")
	}
	names := make(map[string]int, len(files))
	outputs := make([]string, len(files))
	for i, f := range files {
		if f.Path == "" || strings.Contains(f.Path, "/") || strings.HasPrefix(f.Path, ".") {
			return nil, fmt.Errorf("fetch: file name %q: want a plain name like keystore.jks", f.Path)
		}
		if _, dup := names[f.Path]; dup {
			return nil, fmt.Errorf("fetch: file %q given twice", f.Path)
		}
		names[f.Path] = uses
		outputs[i] = path.Join(s.dir, f.Path)
	}
	tokens := make([]byte, 32*len(tasks))
	if _, err := rand.Read(tokens); err != nil {
		return nil, err
	}
	defer clear(tokens)
	expires := s.now().Add(ttl)
	prefix := s.baseURL + Prefix
	out := make(map[string][]URI, len(tasks))
	grants := make([]Grant, len(tasks))
	for t, task := range tasks {
		if _, dup := out[task]; dup {
			return nil, fmt.Errorf("fetch: task %q given twice", task)
		}
		token := tokens[32*t : 32*t+32]
		var enc [43]byte
		base64.RawURLEncoding.Encode(enc[:], token)
		uris := make([]URI, len(files))
		for i, f := range files {
			uris[i] = URI{Value: prefix + string(enc[:]) + "/" + f.Path, OutputFile: outputs[i]}
		}
		out[task] = uris
		u := make(map[string]int, len(names))
		for n := range names {
			u[n] = uses
		}
		grants[t] = Grant{TokenHash: sha256.Sum256(token), Task: task, Uses: u, Expires: expires}
	}
	if err := record(ctx, grants); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.minted.add(expires, len(grants))
	s.mu.Unlock()
	return out, nil
}

// mintedGrants counts the grants a server wrote to its Shared, by expiry,
// so that --max-grants bounds what one replica puts in the shared state as
// it bounds what a lone server holds.
type mintedGrants struct {
	n       int
	batches mintedHeap
}

func (m *mintedGrants) add(at time.Time, n int) {
	m.n += n
	heap.Push(&m.batches, mintedBatch{at, n})
}

// sweep forgets the batches expired at now.
func (m *mintedGrants) sweep(now time.Time) {
	for len(m.batches) > 0 && !now.Before(m.batches[0].at) {
		m.n -= heap.Pop(&m.batches).(mintedBatch).n
	}
}

// mintedBatch is the grants of one PublishShared, which expire together.
type mintedBatch struct {
	at time.Time
	n  int
}

// mintedHeap is a container/heap of batches, the first to expire first.
type mintedHeap []mintedBatch

func (h mintedHeap) Len() int           { return len(h) }
func (h mintedHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h mintedHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *mintedHeap) Push(x any)        { *h = append(*h, x.(mintedBatch)) }
func (h *mintedHeap) Pop() any {
	old := *h
	b := old[len(old)-1]
	*h = old[:len(old)-1]
	return b
}

// serveShared answers a fetch through the server's Shared: the status and,
// for 200, the bytes.
func (s *Server) serveShared(ctx context.Context, sh Shared, token []byte, name string, consume bool, ev *Event) ([]byte, int) {
	th := sha256.Sum256(token)
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	t, err := sh.Take(ctx, th, name, consume && !closed)
	ev.JobID, ev.TaskID = t.JobID, t.TaskID
	switch {
	case errors.Is(err, ErrUnknown):
		return nil, http.StatusNotFound
	case errors.Is(err, ErrExpired):
		ev.Outcome = OutcomeExpired
		return nil, http.StatusNotFound
	case errors.Is(err, ErrUsedUp):
		ev.File, ev.Outcome = name, OutcomeReused
		return nil, http.StatusForbidden
	case err != nil:
		ev.File, ev.Outcome = name, OutcomeUnavailable
		return nil, http.StatusServiceUnavailable
	}
	ev.File, ev.Version = name, t.Version
	if closed {
		ev.Outcome = OutcomeShutdown
		return nil, http.StatusServiceUnavailable
	}
	ev.Outcome = OutcomeServed
	return t.Contents, http.StatusOK
}

// OutcomeUnavailable: the replicas' shared state could not answer; the URI
// may still be valid.
const OutcomeUnavailable = "unavailable"

// writeUnavailable answers 503 with why, for a fetcher's log.
func writeUnavailable(w http.ResponseWriter, outcome string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusServiceUnavailable)
	if outcome == OutcomeUnavailable {
		_, _ = io.WriteString(w, "keyship serve cannot reach the replicas' shared state now: retry this fetch URI\n")
		return
	}
	_, _ = io.WriteString(w, "keyship serve is shutting down: this fetch URI is no longer served; submit the task again to get a new one\n")
}
