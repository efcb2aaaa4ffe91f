package plugin

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// codeSentinels is the one table between sentinel errors and gRPC codes.
var codeSentinels = []struct {
	code codes.Code
	err  error
}{
	{codes.NotFound, ErrNotFound},
	{codes.PermissionDenied, ErrPermissionDenied},
	{codes.InvalidArgument, ErrInvalidConfig},
	{codes.Unavailable, ErrUnavailable},
	{codes.Unimplemented, ErrUnsupported},
	{codes.Canceled, context.Canceled},
	{codes.DeadlineExceeded, context.DeadlineExceeded},
}

// codeOf returns the gRPC code for err: the code of the first sentinel it
// wraps, else codes.Unknown.
func codeOf(err error) codes.Code {
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
		if cs.code == code {
			return cs.err
		}
	}
	return nil
}

// wireError is an error that came over the wire: its message is the sending
// side's Error() and it unwraps to the sentinel its code maps to, so that
// errors.Is(err, ErrNotFound) holds on the receiving side too.
type wireError struct {
	msg      string
	sentinel error
}

func (e *wireError) Error() string { return e.msg }
func (e *wireError) Unwrap() error { return e.sentinel }

// errorFromCode rebuilds an error from a code and message.
func errorFromCode(code codes.Code, msg string) error {
	if code == codes.OK {
		return nil
	}
	return &wireError{msg: msg, sentinel: sentinelOf(code)}
}

// toStatus turns a backend error into a gRPC status error. nil stays nil;
// an error that already is a status passes through.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	return status.Error(codeOf(err), err.Error())
}

// fromStatus turns a gRPC status error back into an error that wraps the
// sentinel for its code. nil stays nil.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return errorFromCode(st.Code(), st.Message())
}

// ServerErrorInterceptor is the server half of keyship's error mapping: it
// turns the sentinel errors a Backend returns into gRPC status codes.
func ServerErrorInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	return resp, toStatus(err)
}

// ClientErrorInterceptor is the client half of keyship's error mapping: it
// turns gRPC status codes back into errors that wrap the sentinels.
func ClientErrorInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return fromStatus(invoker(ctx, method, req, reply, cc, opts...))
}

// interceptedConn applies ClientErrorInterceptor to every call made through
// it, whoever dialed the underlying connection.
type interceptedConn struct{ grpc.ClientConnInterface }

func (c interceptedConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return fromStatus(c.ClientConnInterface.Invoke(ctx, method, args, reply, opts...))
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
