package launch

import (
	"context"
	"io"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// Addr returns the unix socket the plugin listens on.
func Addr(t *testing.T, s *Subprocess) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == nil {
		t.Fatal("no plugin address")
	}
	return s.addr.String()
}

// StartKeepingSocket is Start, except that the plugin's socket stays on disk
// for a test to connect to.
func StartKeepingSocket(ctx context.Context, name, path string, logger hclog.Logger) (*Subprocess, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	s := &Subprocess{name: name, path: path, logger: logger.Named(name), keepSocket: true}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// StderrLines is a plugin's stderr r as go-plugin reads it.
func StderrLines(r io.Reader) io.Reader { return newStderrLines(io.NopCloser(r)) }

// StderrLineMax is the longest stderr line go-plugin parses as a log entry.
const StderrLineMax = stderrLineMax
