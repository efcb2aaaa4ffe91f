// Command grpcfloor is the floor of a process that speaks keyship's plugin
// protocol: it links what that takes and nothing else (gRPC's client and
// server, its health service, protobuf and the backend protocol's messages),
// and exits at once. BenchmarkColdStart times it beside a Go hello world:
// their ratio is what linking gRPC costs any process's start, keyship's and
// every plugin's alike, before the process does anything.
package main

import (
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	backendv1 "github.com/keyship/keyship/proto/keyship/backend/v1"
)

func main() {
	// Never true when timed: it only keeps the server and client linked.
	if len(os.Args) > 1 {
		s := grpc.NewServer()
		backendv1.RegisterBackendServiceServer(s, backendv1.UnimplementedBackendServiceServer{})
		healthpb.RegisterHealthServer(s, health.NewServer())
		c, err := grpc.NewClient(os.Args[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err == nil {
			_ = backendv1.NewBackendServiceClient(c)
		}
	}
	fmt.Println("grpc floor")
}
