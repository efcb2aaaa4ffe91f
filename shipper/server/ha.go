package server

import (
	"github.com/keyship/keyship/shipper/server/replicas"
)

// WithReplicas makes the server one of several replicas sharing st: jobs
// and fetch grants are recorded there, so any replica serves a fetch URI
// another handed out (once across all of them), and one replica at a time
// refreshes watched jobs.
func WithReplicas(st *replicas.Store) Option {
	return func(s *Server) { s.shared = &shared{store: st} }
}

// shared is the server's replica state (WithReplicas).
type shared struct {
	store *replicas.Store
}
