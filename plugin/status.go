package plugin

import (
	"context"
	"errors"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// codeSentinels is the one table between sentinel errors and gRPC codes, for
// the backend protocol (rpc statuses and the google.rpc.Status of each Get
// result) and for the host API. Entries marked toCodeOnly map a sentinel to a
// code but are not what that code reads back as: a plugin cannot report its
// own death, so nothing on the wire means ErrPluginExited.
var codeSentinels = []struct {
	code       codes.Code
	err        error
	toCodeOnly bool
}{
	{codes.NotFound, ErrNotFound, false},
	{codes.PermissionDenied, ErrPermissionDenied, false},
	{codes.InvalidArgument, ErrInvalidConfig, false},
	{codes.Unavailable, ErrUnavailable, false},
	{codes.Unimplemented, ErrUnsupported, false},
	{codes.Canceled, context.Canceled, false},
	{codes.DeadlineExceeded, context.DeadlineExceeded, false},
	{codes.Internal, ErrPluginExited, true},
}

// Code returns the gRPC code for err: the code of an error that already is a
// gRPC status, else the code of the first sentinel err wraps (ErrNotFound is
// NotFound, ErrPermissionDenied PermissionDenied, ErrInvalidConfig
// InvalidArgument, ErrUnavailable Unavailable, ErrUnsupported Unimplemented,
// ErrPluginExited Internal, context.Canceled Canceled, context.DeadlineExceeded
// DeadlineExceeded), else codes.Unknown. Code(nil) is codes.OK.
//
// It is the one mapping from keyship's errors to gRPC codes: the plugin SDK
// uses it on the backend wire and the host API server uses it for its
// answers.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if s, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return s.GRPCStatus().Code()
	}
	for _, cs := range codeSentinels {
		if errors.Is(err, cs.err) {
			return cs.code
		}
	}
	return codes.Unknown
}

// sentinelOf returns the sentinel error for code, or nil for codes without one.
func sentinelOf(code codes.Code) error {
	for _, cs := range codeSentinels {
		if cs.code == code && !cs.toCodeOnly {
			return cs.err
		}
	}
	return nil
}

// wireError is an error that came over the wire: its message is the sending
// side's Error() and it unwraps to the sentinel its code maps to, so that
// errors.Is(err, ErrNotFound) holds on the receiving side too.
type wireError struct {
	code     codes.Code
	msg      string
	sentinel error
}

func (e *wireError) Error() string { return e.msg }
func (e *wireError) Unwrap() error { return e.sentinel }

// GRPCStatus keeps the code the error arrived with, so that passing it on
// (StatusError) sends the same code.
func (e *wireError) GRPCStatus() *status.Status { return status.New(e.code, e.msg) }

// errorFromCode rebuilds an error from a code and message.
func errorFromCode(code codes.Code, msg string) error {
	if code == codes.OK {
		return nil
	}
	return &wireError{code: code, msg: msg, sentinel: sentinelOf(code)}
}

// StatusError returns err as a gRPC status error whose code is Code(err) and
// whose message is err.Error(). nil stays nil; a status error passes through.
func StatusError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	return status.Error(Code(err), err.Error())
}

// ErrorFromStatus turns a gRPC status error back into an error with the
// status's message that wraps the sentinel for its code (see Code), so that
// errors.Is(err, ErrNotFound) works on the receiving side. nil stays nil; an
// error that is not a status is returned unchanged.
func ErrorFromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return errorFromCode(st.Code(), st.Message())
}

// statusToProto is the google.rpc.Status of a failed Get result.
func statusToProto(err error) *spb.Status {
	return &spb.Status{Code: int32(Code(err)), Message: err.Error()}
}

// statusFromProto is the error of a Get result's google.rpc.Status. A status
// without an error code (nil or OK) is a protocol violation: it still reads
// as an (unclassified) error, never as success.
func statusFromProto(p *spb.Status) error {
	code := codes.Code(p.GetCode())
	if code == codes.OK {
		msg := p.GetMessage()
		if msg == "" {
			msg = "backend returned an error result without a code"
		}
		return errorFromCode(codes.Unknown, msg)
	}
	return errorFromCode(code, p.GetMessage())
}

// ServerErrorInterceptor is the server half of keyship's error mapping: it
// turns the sentinel errors a Backend returns into gRPC status codes.
func ServerErrorInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	return resp, StatusError(err)
}

// ClientErrorInterceptor is the client half of keyship's error mapping: it
// turns gRPC status codes back into errors that wrap the sentinels.
func ClientErrorInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return ErrorFromStatus(invoker(ctx, method, req, reply, cc, opts...))
}

// interceptedConn applies ClientErrorInterceptor to every call made through
// it, whoever dialed the underlying connection.
type interceptedConn struct{ grpc.ClientConnInterface }

func (c interceptedConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return ErrorFromStatus(c.ClientConnInterface.Invoke(ctx, method, args, reply, opts...))
}

// interceptedRegistrar registers services with ServerErrorInterceptor wrapped
// around each unary method, inside any interceptor the server already has.
type interceptedRegistrar struct{ grpc.ServiceRegistrar }

func (r interceptedRegistrar) RegisterService(desc *grpc.ServiceDesc, impl any) {
	d := *desc
	d.Methods = make([]grpc.MethodDesc, len(desc.Methods))
	for i, m := range desc.Methods {
		h := m.Handler
		d.Methods[i] = grpc.MethodDesc{
			MethodName: m.MethodName,
			Handler: func(srv any, ctx context.Context, dec func(any) error, outer grpc.UnaryServerInterceptor) (any, error) {
				inner := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
					if outer == nil {
						return ServerErrorInterceptor(ctx, req, info, handler)
					}
					return outer(ctx, req, info, func(ctx context.Context, req any) (any, error) {
						return ServerErrorInterceptor(ctx, req, info, handler)
					})
				}
				return h(srv, ctx, dec, inner)
			},
		}
	}
	r.ServiceRegistrar.RegisterService(&d, impl)
}
