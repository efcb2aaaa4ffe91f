package shipper

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyship/keyship/host/resolve"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
)

// The kinds of failure the pipeline adds to the backends' (plugin.ErrNotFound
// and the other sentinels of package plugin). Wrap them with %w.
var (
	// ErrInvalidRequest: the request is at fault (a field the API adds to
	// the spec's, a release that is not one). Spec and check failures
	// (*spec.FieldError) are of this kind too.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrLimit: a limit of the server's was reached (live jobs, tasks,
	// fetch grants); retry later or ask for less.
	ErrLimit = errors.New("limit reached")
	// ErrNotConfigured: the server was not started with what the request
	// asks for (a fetch server, a Kubernetes client, watching).
	ErrNotConfigured = errors.New("not configured on this server")
)

// Outcome is one row of the one table from a failure's kind to what each
// edge says of it: the host API's gRPC (and Connect) code, keyship's exit
// code, and the metrics' outcome label.
type Outcome struct {
	// Kind is the sentinel the row is for (errors.Is); nil for success.
	Kind error
	// Code is the gRPC status code on the wire (Connect's share the
	// numbers).
	Code codes.Code
	// Exit is keyship's exit code: 0 success, 1 the job's TLS cannot work
	// or a backend or server failed (2, bad flags, is the CLI's own).
	Exit int
	// Metric is the label value of keyship's metrics.
	Metric string
	// OneWay rows give their code, but the code does not stand for them on
	// the receiving side (Internal is any fault of the server's).
	OneWay bool
}

// Outcomes is the table, most specific first: the first row whose Kind the
// error is (errors.Is) is its outcome; an error of no kind is Internal.
var Outcomes = []Outcome{
	{plugin.ErrPluginExited, codes.Internal, 1, "plugin_exited", true},
	{plugin.ErrNotFound, codes.NotFound, 1, "not_found", false},
	{plugin.ErrPermissionDenied, codes.PermissionDenied, 1, "permission_denied", false},
	{plugin.ErrUnavailable, codes.Unavailable, 1, "unavailable", false},
	{ErrInvalidRequest, codes.InvalidArgument, 1, "invalid_request", false},
	{plugin.ErrInvalidConfig, codes.InvalidArgument, 1, "invalid_config", false},
	{plugin.ErrUnsupported, codes.Unimplemented, 1, "unsupported", false},
	{ErrLimit, codes.ResourceExhausted, 1, "limit", false},
	{ErrNotConfigured, codes.FailedPrecondition, 1, "not_configured", false},
	{ErrNotDeliverable, codes.FailedPrecondition, 1, "not_deliverable", false},
	{context.Canceled, codes.Canceled, 1, "canceled", false},
	{context.DeadlineExceeded, codes.DeadlineExceeded, 1, "deadline_exceeded", false},
}

var (
	outcomeOK       = Outcome{Code: codes.OK, Metric: "ok"}
	outcomeInternal = Outcome{Code: codes.Internal, Exit: 1, Metric: "error"}
)

// OutcomeOf is err's row of Outcomes. A spec or check failure
// (*spec.FieldError) is ErrInvalidRequest's; an error that came over the
// wire keeps its code's row.
func OutcomeOf(err error) Outcome {
	if err == nil {
		return outcomeOK
	}
	if fe := (*spec.FieldError)(nil); errors.As(err, &fe) {
		return outcomeOf(ErrInvalidRequest)
	}
	for _, o := range Outcomes {
		if errors.Is(err, o.Kind) {
			return o
		}
	}
	if st, ok := status.FromError(err); ok {
		for _, o := range Outcomes {
			if o.Code == st.Code() && !o.OneWay {
				return o
			}
		}
	}
	return outcomeInternal
}

func outcomeOf(kind error) Outcome {
	for _, o := range Outcomes {
		if o.Kind == kind {
			return o
		}
	}
	return outcomeInternal
}

// KindOf returns the sentinel of a wire code (the first row with it), or
// nil: the receiving side's errors.Is then matches the sender's kind.
func KindOf(code codes.Code) error {
	for _, o := range Outcomes {
		if o.Code == code && !o.OneWay {
			return o.Kind
		}
	}
	return nil
}

// Problem is one failed check or spec problem: the field, its ref, and
// what is wrong, in an operator's words; never secret bytes.
type Problem struct {
	Field  string `json:"field"`
	Ref    string `json:"ref,omitempty"`
	Reason string `json:"reason"`
}

// Problems lists the spec, resolve and materialize problems err holds, or
// returns nil when it holds none (a backend or configuration failure).
func Problems(err error) []Problem {
	var out []Problem
	var walk func(error)
	walk = func(e error) {
		var re *resolve.Error
		var fe *spec.FieldError
		switch {
		case errors.As(e, &re) && re == e:
			out = append(out, Problem{Field: re.Field.Name, Ref: re.Field.Ref.String(), Reason: re.Err.Error()})
			return
		case errors.As(e, &fe) && fe == e:
			out = append(out, Problem{Field: fe.Field, Ref: fe.Ref, Reason: fe.Reason})
			return
		}
		if u, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range u.Unwrap() {
				walk(x)
			}
		} else if x := errors.Unwrap(e); x != nil {
			walk(x)
		}
	}
	walk(err)
	return out
}
