package server

import (
	"context"
	"crypto/tls"
	"errors"
	"math"
	"net"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"google.golang.org/grpc/status"

	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/proto/keyship/host/v1/hostv1connect"
	"github.com/keyship/keyship/shipper"
)

// HandlerOption changes the API's http.Handler.
type HandlerOption func(*handlerConfig)

type handlerConfig struct {
	observers []Observer
	health    grpchealth.Checker
}

// WithObserver makes the handler tell o of every call it answers.
func WithObserver(o Observer) HandlerOption {
	return func(c *handlerConfig) { c.observers = append(c.observers, o) }
}

// WithHealth serves grpc.health.v1.Health from checker; without it, the
// API answers SERVING for itself and the empty service name.
func WithHealth(checker grpchealth.Checker) HandlerOption {
	return func(c *handlerConfig) { c.health = checker }
}

// Handler returns the host API as one http.Handler: ShipperService in the
// gRPC, gRPC-Web and Connect protocols (a JVM launcher POSTs JSON to
// /keyship.host.v1.ShipperService/Ship with Content-Type
// application/json), and grpc.health.v1.Health. Errors keep the Server's
// gRPC codes and messages (Connect's codes are gRPC's). Serve it with
// HTTPServer, which adds who the caller is.
func Handler(s *Server, opts ...HandlerOption) http.Handler {
	c := handlerConfig{health: grpchealth.NewStaticChecker(hostv1connect.ShipperServiceName)}
	for _, o := range opts {
		o(&c)
	}
	mux := http.NewServeMux()
	// Responses are never compressed: a compressor's window and output
	// would keep secrets in pooled buffers this package cannot clear.
	hopts := []connect.HandlerOption{connect.WithReadMaxBytes(maxRequestBytes), connect.WithInterceptors(clipErrors{}),
		connect.WithCodec(protoCodec{}), connect.WithCompressMinBytes(math.MaxInt)}
	for _, jc := range jsonCodecs {
		hopts = append(hopts, connect.WithCodec(jc))
	}
	mux.Handle(hostv1connect.NewShipperServiceHandler(&connectService{s: s, observers: c.observers}, hopts...))
	mux.Handle(grpchealth.NewHandler(c.health))
	return withCaller(mux)
}

// maxRequestBytes bounds a request message: a spec is at most 1 MiB
// (spec.ReadRequest), and its JSON form base64-encodes it.
const maxRequestBytes = 2 << 20

// connectService adapts Server to the Connect handler interface.
type connectService struct {
	hostv1connect.UnimplementedShipperServiceHandler
	s         *Server
	observers []Observer
}

func (c *connectService) Ship(ctx context.Context, req *connect.Request[hostv1.ShipRequest]) (*connect.Response[hostv1.ShipResponse], error) {
	ctx, rec := withRecord(ctx)
	start := time.Now()
	resp, err := c.s.Ship(ctx, req.Msg)
	err = connectError(err)
	if len(c.observers) > 0 {
		c.observe(ctx, rec, shipCall(ctx, "Ship", start, req.Msg, err))
	}
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}

func (c *connectService) Check(ctx context.Context, req *connect.Request[hostv1.CheckRequest]) (*connect.Response[hostv1.CheckResponse], error) {
	ctx, rec := withRecord(ctx)
	start := time.Now()
	resp, err := c.s.Check(ctx, req.Msg)
	err = connectError(err)
	if len(c.observers) > 0 {
		call := newCall(ctx, "Check", start, err)
		call.Problems = len(resp.GetProblems())
		c.observe(ctx, rec, call)
	}
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}

// Watch streams the job's bundles (Server.Watch) in any of the handler's
// protocols; the call is observed once, when the stream ends.
func (c *connectService) Watch(ctx context.Context, req *connect.Request[hostv1.WatchRequest], stream *connect.ServerStream[hostv1.WatchResponse]) error {
	ctx, rec := withRecord(ctx)
	start := time.Now()
	err := connectError(c.s.watch(ctx, req.Msg, stream.Send))
	if len(c.observers) > 0 {
		c.observe(ctx, rec, shipCall(ctx, "Watch", start, req.Msg.GetShip(), err))
	}
	return err
}

// newCall is the record of a call of method that started at start and
// ended now with err.
func newCall(ctx context.Context, method string, start time.Time, err error) *Call {
	call := &Call{Time: start, Duration: time.Since(start), Method: method, Caller: CallerOf(ctx), Err: err}
	if err != nil {
		call.Code = connect.CodeOf(err)
	}
	return call
}

// shipCall is newCall for a call that ships m (Ship, Watch): its job, tasks
// and targets (none named is TARGET_FETCH, as Ship reads it).
func shipCall(ctx context.Context, method string, start time.Time, m *hostv1.ShipRequest, err error) *Call {
	call := newCall(ctx, method, start, err)
	call.JobID = m.GetJobId()
	for _, t := range m.GetTasks() {
		call.Tasks = append(call.Tasks, t.GetId())
	}
	for _, t := range m.GetTargets() {
		call.Targets = append(call.Targets, t.String())
	}
	if len(call.Targets) == 0 {
		call.Targets = []string{hostv1.Target_TARGET_FETCH.String()}
	}
	return call
}

func (c *connectService) observe(ctx context.Context, rec *record, call *Call) {
	rec.mu.Lock()
	call.Inputs = rec.inputs
	rec.mu.Unlock()
	for _, o := range c.observers {
		o.Observe(ctx, call)
	}
}

// connectError turns the Server's gRPC status errors into Connect errors
// with the same code and message.
func connectError(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	msg := err.Error()
	if st, ok := status.FromError(err); ok {
		msg = st.Message()
	}
	return connect.NewError(connect.Code(shipper.OutcomeOf(err).Code), errors.New(msg))
}

type callerKey struct{}

// CallerOf returns who made the call ctx belongs to: "unix uid=U pid=P" for
// a unix socket peer, "x509 <subject>" for a mutual-TLS client, or "".
func CallerOf(ctx context.Context) string {
	c, _ := ctx.Value(callerKey{}).(string)
	return c
}

// withCaller adds the mutual-TLS client's subject to the request context
// (the unix peer's credentials are added per connection by HTTPServer).
func withCaller(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			r = r.WithContext(context.WithValue(r.Context(), callerKey{}, "x509 "+r.TLS.PeerCertificates[0].Subject.String()))
		}
		h.ServeHTTP(w, r)
	})
}

// HTTPServer returns the http.Server for the API handler h: HTTP/1.1 and
// HTTP/2 over TLS when tlsConfig is set (mutual TLS on TCP), else HTTP/1.1
// and unencrypted HTTP/2 (gRPC clients on a unix socket speak HTTP/2 with
// prior knowledge). A unix peer's uid and pid become the calls' caller.
func HTTPServer(h http.Handler, tlsConfig *tls.Config) *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	if tlsConfig == nil {
		p.SetUnencryptedHTTP2(true)
	}
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		Protocols:         &p,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if id := peerCredentials(c); id != "" {
				return context.WithValue(ctx, callerKey{}, id)
			}
			return ctx
		},
	}
}
