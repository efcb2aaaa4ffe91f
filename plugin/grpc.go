package plugin

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	backendv1 "github.com/keyship/keyship/proto/keyship/backend/v1"
)

// ProtocolVersion is the backend protocol version this SDK speaks. It is the
// "v1" of the proto package keyship.backend.v1 (a test ties the two) and the
// go-plugin handshake's protocol version.
const ProtocolVersion = 1

// PluginName is the name of the backend plugin in go-plugin's plugin set.
const PluginName = "backend"

// HandshakeConfig is go-plugin's handshake: the app protocol version and the
// magic cookie variable. It has go-plugin's HandshakeConfig's fields, so a
// host converts it to that type (plugin/launch does).
type HandshakeConfig struct {
	ProtocolVersion  uint
	MagicCookieKey   string
	MagicCookieValue string
}

// Handshake is the go-plugin handshake host and plugins share. The cookie is
// not a secret: it only stops a user from running a plugin binary by hand.
var Handshake = HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "KEYSHIP_BACKEND_PLUGIN",
	MagicCookieValue: "a1c4e2d9-keyship-backend",
}

// MaxMessageSize bounds every gRPC message between host and plugin. Keystores
// are a few KiB and a batch holds a job's handful of refs, so 16 MiB leaves
// room for large CA bundles and 1 MiB secrets in a batch while stopping a
// broken plugin from making the host buffer without limit.
const MaxMessageSize = 16 << 20

// windowSize is the HTTP/2 flow-control window on both ends of the plugin
// connection. Setting it turns off gRPC's bandwidth-delay probing, which
// sends extra PING frames (and wakes both processes) around every small
// message; a window of one maximal message keeps a whole batch in flight.
const windowSize = MaxMessageSize

// DialOptions are the gRPC options a host uses for its plugin connections:
// the message bound and the fixed window that match Serve's, and no idle
// mode: the host connects to a plugin once, at start, and then removes its
// socket from the file system, so the one connection must stay up however
// long the host waits between calls.
//
// Both sides encode with a codec that clears the secrets it sent and take
// every gRPC buffer from a pool that clears it when it is freed (zeroing.go).
func DialOptions() []grpc.DialOption {
	return append(zeroingDialOptions(),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize)),
		grpc.WithInitialWindowSize(windowSize),
		grpc.WithInitialConnWindowSize(windowSize),
		grpc.WithIdleTimeout(0),
	)
}

// ServerOptions are the gRPC options Serve gives its server: the message
// bound and the fixed window that match DialOptions. A test that serves a
// backend on its own grpc.Server (plugintest does) uses them too.
func ServerOptions() []grpc.ServerOption {
	return append(zeroingServerOptions(),
		grpc.MaxRecvMsgSize(MaxMessageSize), grpc.MaxSendMsgSize(MaxMessageSize),
		grpc.InitialWindowSize(windowSize), grpc.InitialConnWindowSize(windowSize),
	)
}

// RegisterBackendServer registers b on s as the keyship.backend.v1 service,
// with the interceptor that maps errors to gRPC status codes. Serve uses it,
// and so do hosts' glue and tests that serve a backend on a grpc.Server of
// their own.
func RegisterBackendServer(s grpc.ServiceRegistrar, b Backend) error {
	if b == nil {
		return fmt.Errorf("keyship plugin: no backend to serve")
	}
	backendv1.RegisterBackendServiceServer(interceptedRegistrar{s}, &grpcServer{impl: b})
	return nil
}

// NewGRPCClient returns a Backend (which also implements Lister and Issuer) that calls a
// backend served on cc. Errors come back wrapping the sentinels.
func NewGRPCClient(cc grpc.ClientConnInterface) Backend {
	return &grpcClient{c: backendv1.NewBackendServiceClient(interceptedConn{cc})}
}

// grpcServer adapts a Backend to the generated service interface.
type grpcServer struct {
	backendv1.UnimplementedBackendServiceServer
	impl Backend
}

func (s *grpcServer) Info(ctx context.Context, _ *backendv1.InfoRequest) (*backendv1.InfoResponse, error) {
	info, err := s.impl.Info(ctx)
	if err != nil {
		return nil, err
	}
	return infoToProto(info), nil
}

func (s *grpcServer) Configure(ctx context.Context, req *backendv1.ConfigureRequest) (*backendv1.ConfigureResponse, error) {
	if err := s.impl.Configure(ctx, req.GetConfig()); err != nil {
		return nil, err
	}
	return &backendv1.ConfigureResponse{}, nil
}

func (s *grpcServer) Get(ctx context.Context, req *backendv1.GetRequest) (*backendv1.GetResponse, error) {
	if len(req.GetRefs()) == 0 {
		return nil, fmt.Errorf("get: no refs in request: %w", ErrInvalidConfig)
	}
	results, err := s.impl.Get(ctx, refsFromProto(req.GetRefs()))
	if err != nil {
		return nil, err
	}
	if len(results) != len(req.GetRefs()) {
		return nil, fmt.Errorf("get: backend returned %d results for %d refs", len(results), len(req.GetRefs()))
	}
	out := &backendv1.GetResponse{Results: make([]*backendv1.Result, len(results))}
	for i, r := range results {
		out.Results[i] = resultToProto(r)
	}
	return out, nil
}

func (s *grpcServer) List(ctx context.Context, req *backendv1.ListRequest) (*backendv1.ListResponse, error) {
	l, ok := s.impl.(Lister)
	if !ok {
		return nil, fmt.Errorf("list: %w", ErrUnsupported)
	}
	paths, err := l.List(ctx, req.GetPrefix())
	if err != nil {
		return nil, err
	}
	return &backendv1.ListResponse{Paths: paths}, nil
}

func (s *grpcServer) Issue(ctx context.Context, req *backendv1.IssueRequest) (*backendv1.IssueResponse, error) {
	is, ok := s.impl.(Issuer)
	if !ok {
		return nil, fmt.Errorf("issue: %w", ErrUnsupported)
	}
	if req.GetPath() == "" || len(req.GetDnsNames())+len(req.GetIpAddresses()) == 0 {
		return nil, fmt.Errorf("issue: a path and at least one DNS name or IP address are required: %w", ErrInvalidConfig)
	}
	out, err := is.Issue(ctx, issueRequestFromProto(req))
	if err != nil {
		return nil, err
	}
	return issuedToProto(out), nil
}

// grpcClient adapts the generated client to Backend and Lister.
type grpcClient struct {
	c backendv1.BackendServiceClient
}

func (c *grpcClient) Info(ctx context.Context) (Info, error) {
	resp, err := c.c.Info(ctx, &backendv1.InfoRequest{})
	if err != nil {
		return Info{}, err
	}
	return infoFromProto(resp), nil
}

func (c *grpcClient) Configure(ctx context.Context, config map[string]string) error {
	_, err := c.c.Configure(ctx, &backendv1.ConfigureRequest{Config: config})
	return err
}

func (c *grpcClient) Get(ctx context.Context, refs []Ref) ([]Result, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	resp, err := c.c.Get(ctx, &backendv1.GetRequest{Refs: refsToProto(refs)})
	if err != nil {
		return nil, err
	}
	if len(resp.GetResults()) != len(refs) {
		return nil, fmt.Errorf("get: backend returned %d results for %d refs", len(resp.GetResults()), len(refs))
	}
	out := make([]Result, len(refs))
	for i, r := range resp.GetResults() {
		out[i] = resultFromProto(r)
	}
	return out, nil
}

func (c *grpcClient) List(ctx context.Context, prefix string) ([]string, error) {
	resp, err := c.c.List(ctx, &backendv1.ListRequest{Prefix: prefix})
	if err != nil {
		return nil, err
	}
	return resp.GetPaths(), nil
}

func (c *grpcClient) Issue(ctx context.Context, req IssueRequest) (Issued, error) {
	resp, err := c.c.Issue(ctx, issueRequestToProto(req))
	if err != nil {
		return Issued{}, err
	}
	return issuedFromProto(resp), nil
}
