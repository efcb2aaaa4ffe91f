package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/proto/keyship/host/v1/hostv1connect"
	"github.com/keyship/keyship/shipper/server"
)

// calls is an Observer that keeps every Call.
type calls struct {
	mu  sync.Mutex
	all []*server.Call
}

func (c *calls) Observe(_ context.Context, call *server.Call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = append(c.all, call)
}

func (c *calls) list() []*server.Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*server.Call(nil), c.all...)
}

// TestHandlerAnswersThreeProtocols calls one Handler with Connect's client
// in each of its protocols (gRPC, gRPC-Web, Connect with protobuf and with
// JSON): every answer is the same, and errors keep the Server's code and
// message.
func TestHandlerAnswersThreeProtocols(t *testing.T) {
	f := newFixture(t)
	ts := httptest.NewUnstartedServer(server.Handler(f.srv))
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)

	req := shipReq("job-3p", tasks("exec", 3), hostv1.Target_TARGET_MESOS, hostv1.Target_TARGET_FILES)
	want, err := f.srv.Ship(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	bad := shipReq("job-bad", nil)
	_, wantErr := f.srv.Ship(context.Background(), bad)
	st, _ := status.FromError(wantErr)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("the server's own error: %v", wantErr)
	}
	for name, opts := range map[string][]connect.ClientOption{
		"grpc":          {connect.WithGRPC()},
		"grpc-web":      {connect.WithGRPCWeb()},
		"connect-proto": nil,
		"connect-json":  {connect.WithProtoJSON()},
	} {
		t.Run(name, func(t *testing.T) {
			c := hostv1connect.NewShipperServiceClient(ts.Client(), ts.URL, opts...)
			got, err := c.Ship(context.Background(), connect.NewRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got.Msg, want) {
				t.Errorf("%s: the answer differs from the server's", name)
			}
			_, err = c.Ship(context.Background(), connect.NewRequest(bad))
			var ce *connect.Error
			if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument || ce.Message() != st.Message() {
				t.Errorf("%s: error %v, want invalid_argument %q", name, err, st.Message())
			}
			if _, err := c.Check(context.Background(), connect.NewRequest(&hostv1.CheckRequest{Spec: req.Spec})); err != nil {
				t.Errorf("%s: Check: %v", name, err)
			}
		})
	}
}

// TestUnixPeerIsTheCaller serves the Handler on a 0600 unix socket, calls
// it with the gRPC client (HTTP/2 with prior knowledge) and checks that the
// observer hears of each call with this process's uid and pid as the
// caller, the job, its tasks and targets, and every ref with its backend
// and version; and that grpc.health.v1 answers SERVING.
func TestUnixPeerIsTheCaller(t *testing.T) {
	f := newFixture(t)
	sock := filepath.Join(t.TempDir(), "keyship.sock")
	l, err := server.Listen("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	obs := &calls{}
	hs := server.HTTPServer(server.Handler(f.srv, server.WithObserver(obs)), nil)
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { _ = hs.Close() })
	c, err := server.Dial("unix://"+sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := c.Ship(context.Background(), shipReq("job-peer", tasks("e", 2), hostv1.Target_TARGET_MESOS)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(context.Background(), &hostv1.CheckRequest{Spec: []byte(`{"security": {"tls": {"enabled": true}}}`)}); err != nil {
		t.Fatal(err)
	}
	got := obs.list()
	if len(got) != 2 {
		t.Fatalf("%d calls observed, want 2", len(got))
	}
	want := fmt.Sprintf("unix uid=%d pid=%d", os.Getuid(), os.Getpid())
	ship, check := got[0], got[1]
	if ship.Method != "Ship" || ship.Caller != want || ship.JobID != "job-peer" || len(ship.Tasks) != 2 || ship.Targets[0] != "TARGET_MESOS" || ship.Outcome() != "ok" {
		t.Errorf("Ship observed as %+v, want caller %q", ship, want)
	}
	if len(ship.Inputs) != distinctRefs {
		t.Fatalf("%d inputs observed, want %d", len(ship.Inputs), distinctRefs)
	}
	for _, in := range ship.Inputs {
		if in.Ref.Backend != "file" || in.Ref.Path == "" || in.Version == "" || in.Field == "" {
			t.Errorf("input %+v lacks its backend, path, version or field", in)
		}
	}
	if check.Method != "Check" || check.Outcome() != "problems" || check.Problems == 0 || check.Caller != want {
		t.Errorf("Check observed as %+v", check)
	}

	h := healthpb.NewHealthClient(c.Conn())
	for _, svc := range []string{"", hostv1connect.ShipperServiceName} {
		resp, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q: %v %v", svc, resp.GetStatus(), err)
		}
	}
	if _, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("health of an unknown service: %v, want NotFound", err)
	}
}
