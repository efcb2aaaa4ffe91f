package loader_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyship/keyship/backends/file"
	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/launch"
)

// benchGet measures one Get of n refs of a 2 KiB secret (a small keystore);
// compare the in-process and subprocess results for the per-Get overhead of
// the plugin boundary: make bench, or
//
//	go test -run '^$' -bench Get ./host/loader/
func benchGet(b *testing.B, backend plugin.Backend, root string, n int) {
	refs := make([]plugin.Ref, n)
	for i := range refs {
		name := fmt.Sprintf("/spark/s%d", i)
		put(b, root, name, make([]byte, 2048))
		refs[i] = plugin.Ref{Path: name}
	}
	if err := backend.Configure(context.Background(), map[string]string{"root": root}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := backend.Get(ctx, refs)
		if err != nil || res[0].Err != nil {
			b.Fatal(err, res[0].Err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n)/1000, "µs/secret")
}

func BenchmarkGet(b *testing.B) {
	for _, n := range []int{1, 7} {
		b.Run(fmt.Sprintf("in-process/refs=%d", n), func(b *testing.B) {
			benchGet(b, file.New(), b.TempDir(), n)
		})
		b.Run(fmt.Sprintf("subprocess/refs=%d", n), func(b *testing.B) {
			benchGet(b, start(b, nil), b.TempDir(), n)
		})
	}
}

// BenchmarkStart is a plugin's cold start as `keyship ship` pays it: exec
// (and, pinned, the sha256 of the whole binary), the handshake, the connection and one Info, then Close (close-µs is
// what Close itself costs). The built-in backend's is zero.
//
// The plugin is built as `make build` builds it (static, stripped: -s -w;
// grpcnotrace), since its size is what the pin hashes at every start.
//
//	go test -run '^$' -bench Start -benchtime 20x -count 5 ./host/loader/
func BenchmarkStart(b *testing.B) {
	pluginBin := filepath.Join(b.TempDir(), "keyship-backend-file")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-tags", "grpcnotrace", "-o", pluginBin, "github.com/keyship/keyship/cmd/keyship-backend-file")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	s, err := launch.Start(context.Background(), "file", pluginBin, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	pin := s.SHA256()
	_ = s.Close()
	for _, c := range []struct{ name, pin string }{{"unpinned", ""}, {"pinned", pin}} {
		b.Run(c.name, func(b *testing.B) {
			var closeTime time.Duration
			for b.Loop() {
				s, err := launch.Start(context.Background(), "file", pluginBin, c.pin, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Info(context.Background()); err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				_ = s.Close()
				closeTime += time.Since(t0)
			}
			b.ReportMetric(float64(closeTime.Microseconds())/float64(b.N), "close-µs/op")
		})
	}
}
