package plugin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/emptypb"
)

// ServeOption changes how Serve runs a backend.
type ServeOption func(*serveConfig)

type serveConfig struct {
	logger hclog.Logger
	test   *TestConfig
}

// WithLogger makes Serve log through l instead of NewLogger("backend").
func WithLogger(l hclog.Logger) ServeOption {
	return func(c *serveConfig) { c.logger = l }
}

// TestConfig makes Serve serve in a test's own process, for tests of hosts
// and plugins: no handshake cookie or version to check, no handshake line,
// no exit. A host attaches to the socket it is given (with go-plugin:
// ReattachConfig{Protocol: "grpc", ProtocolVersion: ProtocolVersion, Addr:
// addr, Pid: os.Getpid(), Test: true}).
type TestConfig struct {
	// Context ends the serving when it is done (required).
	Context context.Context
	// Addr, if not nil, receives the socket once Serve listens.
	Addr chan<- net.Addr
	// Closed, if not nil, is closed once serving has ended.
	Closed chan<- struct{}
}

// WithTestConfig runs Serve in test mode (see TestConfig); Serve then
// returns when tc.Context is done or the host asks it to shut down.
func WithTestConfig(tc *TestConfig) ServeOption {
	return func(c *serveConfig) { c.test = tc }
}

// Serve runs the backend returned by newBackend as a keyship plugin: gRPC only,
// on a unix socket in the private directory the host gives it, accepting only
// the host process that started it (PeerCredentials; go-plugin's AutoMTLS
// instead when a host asks for it), messages bounded by MaxMessageSize, logs
// as hclog JSON on stderr. It blocks until the host goes away (it kills the
// plugin's process group) or asks it to shut down, then exits the process.
// Call it from main and nothing else:
//
//	func main() { plugin.Serve(file.New) }
//
// Serve speaks hashicorp/go-plugin's gRPC protocol, as PROTOCOL.md (beside
// backend.proto) writes it down, without linking go-plugin: a plugin then
// links gRPC, protobuf and hclog and nothing of go-plugin's net/rpc,
// yamux, gRPC reflection or host side, which a keyship host neither uses nor
// asks for, and it starts, and its pin is hashed, in less time (issue 23).
// TestServeSpeaksGoPluginsProtocol holds it against go-plugin's own host.
func Serve(newBackend func() Backend, opts ...ServeOption) {
	cfg := serveConfig{logger: NewLogger("backend")}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.test != nil {
		serve(cfg.logger, newBackend, os.Stdout, os.Stderr, cfg.test)
		return
	}
	// A plugin holds secrets in memory: no core file, no ptrace by other
	// processes of its user.
	if err := DisableCoreDumps(); err != nil {
		cfg.logger.Warn("cannot disable core dumps", "error", err)
	}
	nameProcess(filepath.Base(os.Args[0]))
	os.Exit(serve(cfg.logger, newBackend, os.Stdout, os.Stderr, nil))
}

// coreProtocolVersion is go-plugin's own protocol version, the first field
// of the handshake line; it has always been 1.
const coreProtocolVersion = 1

// healthService is the name go-plugin's host asks the health service about.
const healthService = "plugin"

// serve is Serve up to the exit status: it checks the handshake variables,
// listens, prints the handshake line on stdout and serves until shut down.
// In test mode (test not nil) it checks no variable and prints nothing.
func serve(logger hclog.Logger, newBackend func() Backend, stdout, stderr io.Writer, test *TestConfig) int {
	if test != nil && test.Closed != nil {
		defer close(test.Closed)
	}
	name := filepath.Base(os.Args[0])
	version := ProtocolVersion
	if test == nil {
		if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
			fmt.Fprintf(stderr, "%s is a keyship backend plugin: keyship starts it, for a backend of its config that names it;\nit is not meant to be run by hand (%s is not set as keyship sets it)\n",
				name, Handshake.MagicCookieKey)
			return 1
		}
		var err error
		if version, err = pickVersion(os.Getenv("PLUGIN_PROTOCOL_VERSIONS")); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return 1
		}
	}
	ln, err := listenUnix(os.Getenv("PLUGIN_UNIX_SOCKET_DIR"))
	if err != nil {
		logger.Error("cannot listen", "error", err)
		return 1
	}
	defer func() { _ = ln.Close() }() // and its socket file with it, whatever the way out
	creds, certField, err := serverCredentials(logger, os.Getenv("PLUGIN_CLIENT_CERT"))
	if err != nil {
		logger.Error("cannot set up the host's AutoMTLS", "error", err)
		return 1
	}
	srv := grpc.NewServer(append([]grpc.ServerOption{grpc.Creds(creds)}, ServerOptions()...)...)
	if err := RegisterBackendServer(srv, newBackend()); err != nil {
		logger.Error("cannot serve", "error", err)
		return 1
	}
	hs := health.NewServer() // "" is SERVING from the start
	hs.SetServingStatus(healthService, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	ctl := &controller{srv: srv}
	srv.RegisterService(&controllerDesc, ctl)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Debug("plugin address", "network", "unix", "address", ln.Addr().String())
	if test != nil {
		if test.Addr != nil {
			test.Addr <- ln.Addr()
		}
		select {
		case err = <-served:
		case <-test.Context.Done():
			ctl.shutdown()
			err = <-served
		}
	} else {
		// The host handles interrupts: a ^C at a terminal reaches the whole
		// foreground process group, and the host decides when its plugins
		// end.
		signal.Ignore(os.Interrupt)
		if _, err := fmt.Fprintf(stdout, "%d|%d|unix|%s|grpc%s\n", coreProtocolVersion, version, ln.Addr(), certField); err != nil {
			logger.Error("cannot print the handshake line", "error", err)
			return 1
		}
		err = <-served
	}
	if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		logger.Error("serving stopped", "error", err)
		return 1
	}
	return 0
}

// pickVersion returns the backend protocol version to speak, given the
// host's PLUGIN_PROTOCOL_VERSIONS (comma-separated; empty: the host did not
// say, and gets ours).
func pickVersion(hostVersions string) (int, error) {
	if hostVersions == "" {
		return ProtocolVersion, nil
	}
	for v := range strings.SplitSeq(hostVersions, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n == ProtocolVersion {
			return n, nil
		}
	}
	return 0, fmt.Errorf("this plugin speaks backend protocol %d; the host speaks %s (PLUGIN_PROTOCOL_VERSIONS): use a plugin and a keyship of the same protocol",
		ProtocolVersion, strconv.Quote(hostVersions))
}

// listenUnix listens on a new unix socket in dir (os.TempDir() when empty),
// the private directory the host made for this plugin's socket.
func listenUnix(dir string) (*net.UnixListener, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	// A name no other process can hold: made as a file, then replaced by
	// the socket.
	f, err := os.CreateTemp(dir, "plugin")
	if err != nil {
		return nil, err
	}
	path := f.Name()
	_ = f.Close()
	if err := os.Remove(path); err != nil {
		return nil, err
	}
	return net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
}

// serverCredentials are the plugin's transport credentials: the peer check
// (PeerCredentials with ServeAllowsParent), or, when the host asked for
// go-plugin's AutoMTLS by passing its certificate (PEM in clientCert), TLS
// that requires that certificate, with a certificate of the plugin's own
// that certField carries in the handshake line.
func serverCredentials(logger hclog.Logger, clientCert string) (creds credentials.TransportCredentials, certField string, err error) {
	if clientCert == "" {
		return PeerCredentials(func(p Peer) error {
			err := ServeAllowsParent(p)
			if err != nil {
				logger.Warn(err.Error())
			}
			return err
		}), "", nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(clientCert)) {
		return nil, "", errors.New("PLUGIN_CLIENT_CERT holds no PEM certificate")
	}
	cert, err := autoMTLSCertificate()
	if err != nil {
		return nil, "", err
	}
	conf := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}
	// The host reads the certificate as unpadded base64 of its DER: the
	// handshake line has no room for PEM's newlines.
	return credentials.NewTLS(conf), "|" + base64.RawStdEncoding.EncodeToString(cert.Certificate[0]), nil
}

// autoMTLSCertificate makes the plugin's certificate for AutoMTLS: self-signed,
// for "localhost" (the name go-plugin's host checks), a CA of itself (the
// host trusts exactly it).
func autoMTLSCertificate() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"keyship backend plugin"}},
		DNSNames:              []string{"localhost"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// controller serves go-plugin's plugin.GRPCController (Shutdown). go-plugin's
// plugin.GRPCStdio and plugin.GRPCBroker are not served (PROTOCOL.md): a
// plugin's stdout and stderr stay the pipes the host reads, and go-plugin's
// host takes UNIMPLEMENTED for both quietly.
type controller struct {
	srv  *grpc.Server
	once sync.Once
}

// shutdownGrace is how long a Shutdown lets calls in flight finish before
// the server closes their connections.
const shutdownGrace = 2 * time.Second

// shutdown stops the server once the Shutdown call that asked for it has
// been answered; Serve then returns and the process exits.
func (c *controller) shutdown() {
	c.once.Do(func() {
		go func() {
			t := time.AfterFunc(shutdownGrace, c.srv.Stop)
			c.srv.GracefulStop()
			t.Stop()
		}()
	})
}

// controllerDesc is go-plugin's plugin.GRPCController service: its messages
// are empty, as google.protobuf.Empty is.
var controllerDesc = grpc.ServiceDesc{
	ServiceName: "plugin.GRPCController",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Shutdown",
		Handler: func(srv any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(new(emptypb.Empty)); err != nil {
				return nil, err
			}
			srv.(*controller).shutdown()
			return new(emptypb.Empty), nil
		},
	}},
}
