package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/keyship/keyship/host"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/fetch"
	"github.com/keyship/keyship/shipper/server"
)

type serveFlags struct {
	listen                     string
	tlsCert, tlsKey, clientCA  string
	fetchListen, fetchURL      string
	fetchCert, fetchKey, caOut string
	buildCache                 time.Duration
	kube                       serveKubeFlags
}

func newServeCmd(g *globals) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve --listen unix:///PATH|tcp://HOST:PORT",
		Short: "Run the host API for dispatchers and AppMasters, and the HTTPS fetch server",
		Long: `serve runs the keyship host API (keyship.host.v1.ShipperService: Ship, Check) for
Spark dispatchers, Flink AppMasters and other launchers. A job is resolved and
built once and kept in memory for its TTL; each task gets its own fetch URIs.

On a unix socket the socket's 0600 mode is the access control; on TCP the API
requires mutual TLS (--tls-cert, --tls-key, --client-ca). With --fetch-listen it
also serves the fetch URIs over HTTPS; without --fetch-cert it makes a
throwaway self-signed certificate and writes it to --fetch-ca-out, which the
Mesos agents must trust.`,
		Example: `  keyship serve --config keyship.yaml --listen unix:///run/keyship.sock \
      --fetch-listen 0.0.0.0:8443 --fetch-url https://dispatcher.example.com:8443 \
      --fetch-cert fetch.pem --fetch-key fetch-key.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return g.serve(ctx, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "", "API address: unix:///path or tcp://host:port (required)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "server certificate (PEM) for a tcp:// API")
	fl.StringVar(&f.tlsKey, "tls-key", "", "server key (PEM) for a tcp:// API")
	fl.StringVar(&f.clientCA, "client-ca", "", "CA (PEM) that signs the API's client certificates (tcp://)")
	fl.StringVar(&f.fetchListen, "fetch-listen", "", "HTTPS fetch server address host:port (empty: no fetch server)")
	fl.StringVar(&f.fetchURL, "fetch-url", "", "base URL the agents fetch from (default https://<fetch-listen>)")
	fl.StringVar(&f.fetchCert, "fetch-cert", "", "fetch server certificate (PEM)")
	fl.StringVar(&f.fetchKey, "fetch-key", "", "fetch server key (PEM)")
	fl.DurationVar(&f.buildCache, "build-cache", server.DefaultTTL, "share the stores built for one content (spec + every secret's version) between jobs for this long; 0 builds every job anew")
	fl.StringVar(&f.caOut, "fetch-ca-out", "", "where to write the self-signed fetch certificate when --fetch-cert is not given")
	addServeKubeFlags(fl, &f.kube)
	_ = cmd.MarkFlagRequired("listen")
	return cmd
}

// buildCacheEntries bounds the Bundles keyship serve keeps for sharing (a
// Bundle is a few kilobytes).
const buildCacheEntries = 1000

func (g *globals) serve(ctx context.Context, f serveFlags) error {
	var opts []grpc.ServerOption
	if strings.HasPrefix(f.listen, "tcp://") {
		tc, err := mutualTLS(f.tlsCert, f.tlsKey, f.clientCA)
		if err != nil {
			return usageError{err}
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	// Jobs of one application ship the same stores: build each content
	// once for as long as a job lives by default.
	h := g.newHost(cfg, host.WithBuildCache(f.buildCache, buildCacheEntries, nil))
	defer func() { _ = h.Close() }()

	var fs *fetch.Server
	var fetchSrv *http.Server
	if f.fetchListen != "" {
		fl, err := net.Listen("tcp", f.fetchListen)
		if err != nil {
			return err
		}
		base := f.fetchURL
		if base == "" {
			base = "https://" + fl.Addr().String()
		}
		cert, err := g.fetchCertificate(f, fl.Addr())
		if err != nil {
			_ = fl.Close()
			return err
		}
		fs = fetch.New(base)
		mux := http.NewServeMux()
		mux.Handle(fetch.Prefix, fs)
		fetchSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
		go func() {
			if err := fetchSrv.ServeTLS(fl, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.logger.Error("fetch server stopped", "error", err)
			}
		}()
		g.logger.Info("fetch server listening", "addr", fl.Addr().String(), "url", base)
		fmt.Fprintf(g.stdout, "fetch %s\n", base)
	}
	kopts, err := f.kube.options()
	if err != nil {
		return err
	}
	srv := server.New(h, fs, kopts...)
	l, err := server.Listen(f.listen)
	if err != nil {
		return err
	}
	gs := grpc.NewServer(opts...)
	hostv1.RegisterShipperServiceServer(gs, srv)
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				srv.Sweep()
			}
		}
	}()
	go func() {
		<-ctx.Done()
		gs.GracefulStop()
		if fetchSrv != nil {
			_ = fetchSrv.Close()
		}
	}()
	fmt.Fprintf(g.stdout, "listening %s\n", f.listen)
	g.logger.Info("host API listening", "addr", f.listen)
	return gs.Serve(l)
}

// fetchCertificate loads --fetch-cert/--fetch-key or makes a self-signed one.
func (g *globals) fetchCertificate(f serveFlags, addr net.Addr) (tls.Certificate, error) {
	if f.fetchCert != "" || f.fetchKey != "" {
		return tls.LoadX509KeyPair(f.fetchCert, f.fetchKey)
	}
	host, _, _ := net.SplitHostPort(addr.String())
	hosts := []string{host, "localhost", "127.0.0.1"}
	if name, err := os.Hostname(); err == nil {
		hosts = append(hosts, name)
	}
	cert, pemBytes, err := fetch.SelfSigned(hosts, 365*24*time.Hour)
	if err != nil {
		return tls.Certificate{}, err
	}
	if f.caOut != "" {
		if err := os.WriteFile(f.caOut, pemBytes, 0o644); err != nil {
			return tls.Certificate{}, err
		}
	}
	g.logger.Warn("fetch server uses a self-signed certificate: agents must trust it (pass --fetch-cert/--fetch-key for a real one)", "ca_file", f.caOut)
	return cert, nil
}

// mutualTLS loads a server certificate and requires client certificates
// signed by clientCA.
func mutualTLS(certFile, keyFile, clientCA string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" || clientCA == "" {
		return nil, errors.New("a tcp:// API needs mutual TLS: --tls-cert, --tls-key and --client-ca")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(clientCA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("--client-ca %s: no PEM certificates", clientCA)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}, nil
}
