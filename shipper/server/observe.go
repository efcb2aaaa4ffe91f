package server

import (
	"context"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/shipper"
)

// Call describes one Ship or Check the API answered, for metrics and the
// audit log. It holds no secret bytes and no password: refs and versions
// only.
type Call struct {
	// Time is when the call arrived; Duration how long it took.
	Time     time.Time
	Duration time.Duration
	// Method is "Ship", "Check" or "Watch" (observed when its stream ends).
	Method string
	// Caller identifies who called: "unix uid=… pid=…" on a unix socket,
	// the client certificate's subject on TCP.
	Caller string
	// JobID, Tasks (their ids) and Targets (e.g. "TARGET_MESOS") are the
	// request's; Check has none.
	JobID   string
	Tasks   []string
	Targets []string
	// Inputs are the secrets the job's stores were built from, each with
	// its backend and version; when the call failed before the secrets
	// were read, the refs of the spec without versions.
	Inputs []materialize.Input
	// Code is the call's outcome: 0 for OK, else the Connect (gRPC) code.
	Code connect.Code
	// Err is the error returned to the caller, or nil. Its message names
	// fields and refs, never secret bytes.
	Err error
	// Problems is how many checks failed (a Check that answered with
	// problems has Code 0).
	Problems int
}

// Outcome is "ok", "problems" (a Check that found some) or "error".
func (c *Call) Outcome() string {
	switch {
	case c.Code != 0:
		return "error"
	case c.Problems > 0:
		return "problems"
	}
	return "ok"
}

// CodeName is the call's code as Connect names it: "ok",
// "invalid_argument", "unavailable", ...
func (c *Call) CodeName() string {
	if c.Code == 0 {
		return "ok"
	}
	return c.Code.String()
}

// Observer is told of every call the API answers, once it is answered:
// the metrics and the audit log implement it. Observe runs on the call's
// goroutine and must return quickly.
type Observer interface {
	Observe(ctx context.Context, c *Call)
}

// record collects, during one call, what the Server learnt about the job
// that the transport does not see: the refs and their versions.
type record struct {
	mu     sync.Mutex
	inputs []materialize.Input
}

type recordKey struct{}

func withRecord(ctx context.Context) (context.Context, *record) {
	r := &record{}
	return context.WithValue(ctx, recordKey{}, r), r
}

// note records the refs of r with their versions (from in, when the
// stores were built) in the call's record, if the call has one.
func note(ctx context.Context, r *spec.Request, in []materialize.Input) {
	rec, _ := ctx.Value(recordKey{}).(*record)
	if rec == nil || r == nil || r.Spec == nil {
		return
	}
	if in == nil {
		for _, f := range r.Spec.Fields() {
			in = append(in, materialize.Input{Field: f.Name, Ref: f.Ref})
		}
		for _, is := range r.Spec.Issues() {
			in = append(in, materialize.Input{Field: is.Field.Name, Ref: is.Field.Ref})
		}
	}
	rec.mu.Lock()
	rec.inputs = in
	rec.mu.Unlock()
}

// noteJob records the refs of r and the versions of the job j (nil when
// it failed) for the call's audit record.
func noteJob(ctx context.Context, r *spec.Request, j *job) {
	var in []materialize.Input
	if j != nil {
		in = j.shipment.Bundle.Inputs
	}
	note(ctx, r, in)
}

// noteShipment is noteJob for a Check's shipment sh (nil when it failed).
func noteShipment(ctx context.Context, r *spec.Request, sh *shipper.Shipment) {
	var in []materialize.Input
	if sh != nil {
		in = sh.Bundle.Inputs
	}
	note(ctx, r, in)
}

// JobCertificates is one live job's certificates, for the expiry metric.
type JobCertificates struct {
	JobID string
	// Chain is the keystore's chain, leaf first; Trusted the truststore's
	// and CA bundle's certificates.
	Chain, Trusted []materialize.CertInfo
}

// LiveCertificates returns the certificates of every job whose bundle has
// not expired, sorted by nothing in particular.
func (s *Server) LiveCertificates() []JobCertificates {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	out := make([]JobCertificates, 0, len(s.jobs))
	for _, j := range s.jobs {
		if !now.Before(j.expires) {
			continue
		}
		b := j.shipment.Bundle
		out = append(out, JobCertificates{JobID: j.shipment.Request.JobID, Chain: b.Chain, Trusted: b.Trusted})
	}
	return out
}
