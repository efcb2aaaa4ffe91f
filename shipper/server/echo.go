package server

import (
	"context"
	"errors"
	"strconv"
	"unicode/utf8"

	"connectrpc.com/connect"
)

// The most of a caller's input the API echoes back, in errors and in the
// records observers get (the audit log): a request may carry a 1 MiB job id
// or 10,000 hosts, and each problem with them must not come back whole.
const (
	// MaxErrorBytes bounds an error message the API returns or records.
	MaxErrorBytes = 4096
	// MaxEchoedTasks bounds the task ids a Call (an audit line) lists.
	MaxEchoedTasks = 100
)

// Clip returns s when it is at most n bytes, else its first bytes (whole
// UTF-8 characters) and how long it was, in at most n bytes.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	tail := "...[" + strconv.Itoa(len(s)) + " bytes]"
	cut := max(0, n-len(tail))
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + tail
}

// clipErrors is the interceptor that bounds every error message the API
// returns to MaxErrorBytes, keeping its code.
type clipErrors struct{}

func (clipErrors) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		resp, err := next(ctx, req)
		return resp, clipError(err)
	}
}

func (clipErrors) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (clipErrors) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return clipError(next(ctx, conn))
	}
}

// clipError returns err with its message cut to MaxErrorBytes.
func clipError(err error) error {
	var ce *connect.Error
	if !errors.As(err, &ce) || len(ce.Message()) <= MaxErrorBytes {
		return err
	}
	out := connect.NewError(ce.Code(), errors.New(Clip(ce.Message(), MaxErrorBytes)))
	for k, v := range ce.Meta() {
		out.Meta()[k] = v
	}
	return out
}
