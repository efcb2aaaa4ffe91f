// Package audit writes keyship serve's audit log: one JSON line per Ship,
// Check and fetch request, saying when, who (the unix peer's uid and pid, or
// the mutual-TLS client certificate's subject; for a fetch, the agent's
// address), which job and tasks, every secret ref with its backend and
// version, the targets, and the outcome. It never holds secret bytes,
// passwords or fetch tokens, and it bounds what it echoes of a caller's
// input: the job id, the first server.MaxEchoedTasks task ids, an error of
// at most server.MaxErrorBytes.
//
// The log is a file opened 0600 for appending (reopened by Reopen, on
// SIGHUP in keyship serve, after logrotate moved it), or standard error.
//
// Quickstart:
//
//	log, err := audit.Open("/var/log/keyship/audit.log")
//	api := server.Handler(srv, server.WithObserver(log))
//	fs := fetch.New(url, fetch.WithObserver(log.Fetch))
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/shipper/fetch"
	"github.com/keyship/keyship/shipper/server"
)

// Log is an audit log. It is safe for concurrent use; each record is
// written with one write call.
type Log struct {
	path string // "" for w

	mu sync.Mutex
	w  io.Writer
	f  *os.File
}

// Open opens the audit log at path for appending, creating it 0600; path
// "" or "-" is standard error. An existing file is made 0600; a symlink, a
// FIFO or anything else but a regular file, and a file of another owner are
// refused (keyship serve may run as root), without blocking.
func Open(path string) (*Log, error) {
	if path == "" || path == "-" {
		return &Log{w: os.Stderr}, nil
	}
	l := &Log{path: path}
	if err := l.Reopen(); err != nil {
		return nil, err
	}
	return l, nil
}

// New returns a Log that writes to w (for tests and embedding).
func New(w io.Writer) *Log { return &Log{w: w} }

// Reopen opens the file again at its path (logrotate moved or truncated
// it) and closes the old one. It does nothing for standard error.
//
// Only a regular file owned by keyship's own user is taken: a FIFO, a
// device or a socket is refused without blocking (the open does not wait
// for a FIFO's reader), and so is a file of another owner, which keyship
// (often root) would otherwise write to and chmod.
func (l *Log) Reopen() error {
	if l.path == "" {
		return nil
	}
	f, err := openRegular(l.path)
	if err != nil {
		return fmt.Errorf("audit log %s: %w", l.path, err)
	}
	l.mu.Lock()
	old := l.f
	l.f, l.w = f, f
	l.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return nil
}

// openRegular opens path for appending, creating it 0600: without
// following a symlink, without blocking on a FIFO (O_NONBLOCK, then fstat
// of what was opened), and only when it is a regular file of this
// process's effective user; the file is made 0600.
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0o600)
	if errors.Is(err, syscall.ENXIO) {
		// A FIFO without a reader: O_NONBLOCK makes its open fail
		// rather than wait.
		return nil, errors.New("not a regular file (a FIFO); want a regular file")
	}
	if err != nil {
		return nil, err
	}
	if err := checkRegular(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// checkRegular refuses f unless it is a regular file owned by the
// process's effective user.
func checkRegular(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%s); want a regular file", st.Mode().Type())
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("owned by uid %d, not by keyship's uid %d; refusing to write to another user's file", sys.Uid, os.Geteuid())
	}
	return nil
}

// Close closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f, l.w = nil, io.Discard
	return err
}

// Record is one line of the audit log.
type Record struct {
	Time   string `json:"time"`
	Event  string `json:"event"` // ship, check, fetch
	Caller string `json:"caller"`
	JobID  string `json:"job_id,omitempty"`
	// Tasks are the request's task ids; TaskID the fetching task.
	Tasks   []string `json:"tasks,omitempty"`
	TaskID  string   `json:"task_id,omitempty"`
	Refs    []Ref    `json:"refs,omitempty"`
	Targets []string `json:"targets,omitempty"`
	// File and Version are a fetch's.
	File    string `json:"file,omitempty"`
	Version string `json:"version,omitempty"`
	// Outcome is ok, problems or error (calls), or a fetch outcome.
	Outcome    string  `json:"outcome"`
	Code       string  `json:"code,omitempty"`
	Error      string  `json:"error,omitempty"`
	Problems   int     `json:"problems,omitempty"`
	DurationMS float64 `json:"duration_ms,omitempty"`
}

// Ref is one secret a call's stores were built from.
type Ref struct {
	Field   string `json:"field"`
	Backend string `json:"backend"`
	Ref     string `json:"ref"` // path[#field][@version] as written
	Version string `json:"version,omitempty"`
}

// Observe implements server.Observer: one line per call.
func (l *Log) Observe(_ context.Context, c *server.Call) {
	r := Record{
		Time: c.Time.UTC().Format(time.RFC3339Nano), Event: strings.ToLower(c.Method), Caller: c.Caller, JobID: server.Clip(c.JobID, maxJobIDShown),
		Tasks: clipTasks(c.Tasks), Targets: c.Targets, Outcome: c.Outcome(), Code: c.CodeName(), Problems: c.Problems,
		DurationMS: float64(c.Duration.Microseconds()) / 1000,
	}
	if c.Err != nil {
		r.Error = server.Clip(c.Err.Error(), server.MaxErrorBytes)
	}
	for _, in := range c.Inputs {
		ref := in.Ref
		backend := ref.Backend
		ref.Backend = ""
		r.Refs = append(r.Refs, Ref{Field: in.Field, Backend: backend, Ref: ref.String(), Version: in.Version})
	}
	l.write(r)
}

// maxJobIDShown bounds the job id a line shows: a valid one is at most
// spec.MaxJobIDLen bytes, a refused one may be a megabyte.
const maxJobIDShown = spec.MaxJobIDLen + 32

// clipTasks returns the first server.MaxEchoedTasks task ids, and how many
// more there were, so that a line stays bounded however many tasks a call
// named (each is bounded by the caller's limits, or cut).
func clipTasks(tasks []string) []string {
	n := min(len(tasks), server.MaxEchoedTasks)
	out := make([]string, 0, n+1)
	for _, t := range tasks[:n] {
		out = append(out, server.Clip(t, maxJobIDShown))
	}
	if more := len(tasks) - n; more > 0 {
		out = append(out, fmt.Sprintf("...[%d more]", more))
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Fetch writes one line per fetch request; pass it to fetch.WithObserver.
func (l *Log) Fetch(ev fetch.Event) {
	l.write(Record{Time: ev.Time.UTC().Format(time.RFC3339Nano), Event: "fetch", Caller: ev.Remote, JobID: ev.JobID,
		TaskID: ev.TaskID, File: ev.File, Version: ev.Version, Outcome: ev.Outcome})
}

func (l *Log) write(r Record) {
	line, err := json.Marshal(r)
	if err != nil {
		return
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(line)
}
