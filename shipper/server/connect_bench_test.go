package server_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"

	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/proto/keyship/host/v1/hostv1connect"
	"github.com/keyship/keyship/shipper/server"
)

// BenchmarkHandlerProtocols is a Ship of an already-built job (no backend
// read, no build) through the Handler over loopback HTTPS in each protocol:
// what the transport and encoding cost per call, side by side.
//
//	go test -run '^$' -bench HandlerProtocols ./shipper/server/
func BenchmarkHandlerProtocols(b *testing.B) {
	f := newFixture(b)
	ts := httptest.NewUnstartedServer(server.Handler(f.srv))
	ts.EnableHTTP2 = true
	ts.StartTLS()
	b.Cleanup(ts.Close)
	req := shipReq("bench-protocols", tasks("exec", 3), hostv1.Target_TARGET_MESOS)
	for _, p := range []struct {
		name string
		opts []connect.ClientOption
	}{
		{"grpc", []connect.ClientOption{connect.WithGRPC()}},
		{"connect-proto", nil},
		{"connect-json", []connect.ClientOption{connect.WithProtoJSON()}},
	} {
		b.Run(p.name, func(b *testing.B) {
			c := hostv1connect.NewShipperServiceClient(ts.Client(), ts.URL, p.opts...)
			for b.Loop() {
				if _, err := c.Ship(context.Background(), connect.NewRequest(req)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
