package e2e_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keyship/keyship/backends/vault/vaulttest"
	"github.com/keyship/keyship/host"
	"github.com/keyship/keyship/host/config"
	kstore "github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/materialize/testca"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin/launch"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/watch"
)

// counter is a reverse proxy in front of Vault that counts the requests
// and the response bytes keyship reads.
type counter struct {
	mu       sync.Mutex
	requests int
	bytes    int64
	proxy    *httputil.ReverseProxy
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cw := &countingWriter{ResponseWriter: w}
	c.proxy.ServeHTTP(cw, r)
	c.mu.Lock()
	c.requests++
	c.bytes += cw.n
	c.mu.Unlock()
}

func (c *counter) read() (int, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests, c.bytes
}

// procCPU returns a process's user+system CPU time from /proc (10 ms ticks).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkUnchangedRefresh100Jobs measures one refresh of 100 watched jobs
// (each its own KV v2 secret with six refs: a JKS keystore, a truststore and
// their passwords) when nothing changed, through the real vault plugin
// subprocess, and reports per refresh: Vault requests, response bytes read
// from Vault, and CPU of the keyship host, the plugin and Vault. Modes:
//
//	versions          one Refresh pass for all jobs (keyship serve): the plugin reads each secret's KV v2 metadata
//	versions-per-job  one Refresh per job (100 keyship ship --watch processes' work, minus their process)
//	get-fallback      the token may not read metadata: the plugin reads each secret (data stays in the plugin)
//	rebuild           what a watch without versions would do: shipper.Prepare of every job at every refresh
//
//	go test -run '^$' -bench UnchangedRefresh100Jobs -benchtime 20x ./backends/vault/e2e/
func BenchmarkUnchangedRefresh100Jobs(b *testing.B) {
	const jobs = 100
	s := vaulttest.Start(b, vaulttest.Options{})
	root := s.Client(b)
	target, _ := url.Parse(s.Addr)
	cnt := &counter{proxy: httputil.NewSingleHostReverseProxy(target)}
	proxy := httptest.NewServer(cnt)
	b.Cleanup(proxy.Close)

	ca, err := testca.NewCA("bench CA")
	if err != nil {
		b.Fatal(err)
	}
	leaf, err := ca.Issue("localhost", testca.WithDNS("localhost"))
	if err != nil {
		b.Fatal(err)
	}
	ks, _ := kstore.JKSKeystore("node", leaf.Key, leaf.Chain, []byte("store-pass"), []byte("key-pass"))
	ts, _ := kstore.JKSTruststore(kstore.AliasCertificates([]*x509.Certificate{ca.Cert}), []byte(trustPass))
	fields := map[string]any{"keystore": base64.StdEncoding.EncodeToString(ks), "keystore_password": "store-pass", "key_password": "key-pass",
		"truststore": base64.StdEncoding.EncodeToString(ts), "truststore_password": trustPass}
	for i := range jobs {
		if _, err := root.KVv2("secret").Put(context.Background(), fmt.Sprintf("jobs/%d/tls", i), fields); err != nil {
			b.Fatal(err)
		}
	}
	token := func(policy string) string {
		if err := root.Sys().PutPolicy(policy, map[string]string{
			"with-metadata": `path "secret/data/jobs/*" { capabilities = ["read"] }
path "secret/metadata/jobs/*" { capabilities = ["read"] }`,
			"data-only": `path "secret/data/jobs/*" { capabilities = ["read"] }`,
		}[policy]); err != nil {
			b.Fatal(err)
		}
		tok, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{policy}, TTL: "1h"})
		if err != nil {
			b.Fatal(err)
		}
		return writeFile(b, b.TempDir(), "token", []byte(tok.Auth.ClientToken))
	}
	tokens := map[string]string{"with-metadata": token("with-metadata"), "data-only": token("data-only")}

	// setup makes a host whose vault plugin talks to address and the 100
	// watched jobs, and returns one refresh of them and the plugin's pid.
	setup := func(b *testing.B, mode, address string) (func(), int) {
		tok := tokens["with-metadata"]
		if mode == "get-fallback" {
			tok = tokens["data-only"]
		}
		cfg := &config.Config{PluginDir: binDir, Backends: map[string]config.Backend{"vault": {Plugin: "keyship-backend-vault",
			Config: config.Settings{"address": address, "auth.token_file": tok, "kv_mounts": "secret=2"}}}}
		h := host.New(cfg)
		b.Cleanup(func() { _ = h.Close() })
		var js []*watch.Job
		var reqs []*spec.Request
		for i := range jobs {
			doc := strings.ReplaceAll(watchSpec, "secret/spark/tls", fmt.Sprintf("secret/jobs/%d/tls", i))
			req, err := spec.ReadRequest(spec.Document{JobID: fmt.Sprintf("job-%d", i), Data: []byte(doc)})
			if err != nil {
				b.Fatal(err)
			}
			reqs = append(reqs, req)
			j, err := watch.Start(context.Background(), h, req, watch.Options{Prepare: shipper.Options{Dir: shipper.TaskDir}},
				func(_ context.Context, sh *shipper.Shipment, _ watch.Update) error { sh.Zero(); return nil })
			if err != nil {
				b.Fatal(err)
			}
			js = append(js, j)
		}
		be, err := h.Loader().Backend(context.Background(), "vault")
		if err != nil {
			b.Fatal(err)
		}
		refresh := func() {
			switch mode {
			case "versions", "get-fallback":
				for _, r := range watch.Refresh(context.Background(), h, js, false) {
					if r.Err != nil || r.Shipped {
						b.Fatalf("unchanged refresh: %+v", r)
					}
				}
			case "versions-per-job":
				for _, j := range js {
					if r := watch.Refresh(context.Background(), h, []*watch.Job{j}, false); r[0].Err != nil || r[0].Shipped {
						b.Fatalf("unchanged refresh: %+v", r[0])
					}
				}
			case "rebuild":
				for _, req := range reqs {
					sh, err := shipper.Prepare(context.Background(), h, req, shipper.Options{Dir: shipper.TaskDir})
					if err != nil {
						b.Fatal(err)
					}
					sh.Zero()
				}
			}
		}
		refresh() // warm: connections, the denied-metadata memory
		return refresh, be.(*launch.Subprocess).Pid()
	}

	for _, mode := range []string{"versions", "versions-per-job", "get-fallback", "rebuild"} {
		b.Run(mode, func(b *testing.B) {
			// Requests and bytes through the counting proxy, over a fixed
			// 5 refreshes; CPU and time with the plugin talking to Vault
			// directly, so that the proxy's own CPU is not counted.
			counted, _ := setup(b, mode, proxy.URL)
			req0, bytes0 := cnt.read()
			const countedRefreshes = 5
			for range countedRefreshes {
				counted()
			}
			req1, bytes1 := cnt.read()
			refresh, plugin := setup(b, mode, s.Addr)
			self0, plug0, vault0 := selfCPU(), procCPU(plugin), procCPU(s.Pid())
			b.ResetTimer()
			for range b.N {
				refresh()
			}
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(float64(req1-req0)/countedRefreshes, "vault-requests/refresh")
			b.ReportMetric(float64(bytes1-bytes0)/countedRefreshes/1024, "KiB-read/refresh")
			b.ReportMetric(float64(selfCPU()-self0)/n/1e6, "host-cpu-ms/refresh")
			b.ReportMetric(float64(procCPU(plugin)-plug0)/n/1e6, "plugin-cpu-ms/refresh")
			b.ReportMetric(float64(procCPU(s.Pid())-vault0)/n/1e6, "vault-cpu-ms/refresh")
		})
	}
}
