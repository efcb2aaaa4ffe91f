// Package kubetest runs a real Kubernetes API server for tests: Debian's
// etcd and the kube-apiserver that tools/kube builds, on loopback, started
// once per test binary and shared by its tests (each test makes its own
// namespaces).
//
//	func TestMain(m *testing.M) { code := m.Run(); kubetest.Stop(); os.Exit(code) }
//
//	func TestX(t *testing.T) {
//		c := kubetest.Start(t)
//		ns := c.Namespace(t, "spark")
//		c.GrantSecrets(t, ns, "keyship")                     // a Role for secrets, bound to user keyship
//		kubeconfig := c.Kubeconfig(t, "keyship", ns)          // a client certificate for CN=keyship
//		...
//	}
//
// The API server authenticates client certificates only (--client-ca-file,
// no anonymous requests), authorizes with RBAC, signs service account tokens
// with a throwaway key, and runs with --endpoint-reconciler-type=none since
// its advertise address is loopback. Admin is a system:masters client.
//
// The binaries are, in order: $KUBE_APISERVER_BIN, kube-apiserver on PATH,
// or CachePath (`make kube`); $ETCD_BIN or etcd on PATH (tools/install-deps.sh
// installs Debian's etcd-server). Without them the test is skipped, or fails
// when KEYSHIP_REQUIRE_PEERS=1 (make test, CI). Their logs, which hold no
// secrets, are printed only when a start fails.
package kubetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	rbacv1client "k8s.io/client-go/kubernetes/typed/rbac/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Version is the Kubernetes release tools/kube builds.
const Version = "1.37.2"

// startTimeout bounds etcd's and the API server's start (about 10 s on an
// idle 2-core machine; much more when it is shared).
const startTimeout = 3 * time.Minute

// RequirePeersEnv turns a missing binary from a skip into a failure when "1".
const RequirePeersEnv = "KEYSHIP_REQUIRE_PEERS"

// CachePath is where tools/kube/build.sh puts kube-apiserver:
// ${XDG_CACHE_HOME:-$HOME/.cache}/keyship/kube-apiserver-<version>/kube-apiserver.
func CachePath() string {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "keyship", "kube-apiserver-"+Version, "kube-apiserver")
}

// Binaries returns the kube-apiserver and etcd to run, or says how to get
// them.
func Binaries() (apiserver, etcd string, err error) {
	apiserver, err = find("KUBE_APISERVER_BIN", "kube-apiserver", CachePath(),
		fmt.Sprintf("run `make kube` (tools/kube/build.sh) to build kube-apiserver %s into %s (a cold build takes 7+ minutes)", Version, CachePath()))
	if err != nil {
		return "", "", err
	}
	etcd, err = find("ETCD_BIN", "etcd", "", "run tools/install-deps.sh (Debian's etcd-server)")
	return apiserver, etcd, err
}

func find(env, name, cached, how string) (string, error) {
	if b := os.Getenv(env); b != "" {
		if _, err := os.Stat(b); err != nil {
			return "", fmt.Errorf("%s=%s: %w", env, b, err)
		}
		return b, nil
	}
	if b, err := exec.LookPath(name); err == nil {
		return b, nil
	}
	if st, err := os.Stat(cached); cached != "" && err == nil && st.Mode()&0o111 != 0 {
		return cached, nil
	}
	return "", fmt.Errorf("no %s binary: set %s, put %s on PATH, or %s", name, env, name, how)
}

// Cluster is a running etcd and kube-apiserver.
type Cluster struct {
	// Server is the API server's URL, https://127.0.0.1:<port>.
	Server string
	// Admin is a system:masters client configuration.
	Admin *rest.Config
	// StartTime is how long etcd and the API server took to be ready.
	StartTime time.Duration

	dir    string
	caPEM  []byte
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	procs  []*exec.Cmd
	exited []chan struct{}
	logs   []string
}

var (
	mu      sync.Mutex
	shared  *Cluster
	lastErr error
)

// Start returns the test binary's cluster, starting it on first use. It
// skips t when a binary is missing (fails with KEYSHIP_REQUIRE_PEERS=1), and
// fails t when the cluster does not start. Call Stop from TestMain.
func Start(t testing.TB) *Cluster {
	t.Helper()
	apiserver, etcd, err := Binaries()
	if err != nil {
		if os.Getenv(RequirePeersEnv) == "1" {
			t.Fatalf("%s=1 and %v", RequirePeersEnv, err)
		}
		t.Skip(err.Error())
	}
	mu.Lock()
	defer mu.Unlock()
	if shared == nil && lastErr == nil {
		shared, lastErr = start(apiserver, etcd)
		if lastErr == nil {
			t.Logf("kubetest: etcd and kube-apiserver %s ready in %s", Version, shared.StartTime.Round(10*time.Millisecond))
		}
	}
	if lastErr != nil {
		t.Fatalf("kubetest: %v", lastErr)
	}
	return shared
}

// Stop stops the test binary's cluster, if one was started.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if shared != nil {
		shared.close()
		shared = nil
	}
}

func start(apiserver, etcd string) (*Cluster, error) {
	began := time.Now()
	dir, err := os.MkdirTemp("", "keyship-kubetest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	if err := c.makePKI(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	var lastErr error
	for range 3 { // a free port can be taken between choosing and binding it
		if lastErr = c.startProcesses(ctx, apiserver, etcd); lastErr == nil {
			c.StartTime = time.Since(began)
			return c, nil
		}
		c.stopProcesses()
		if ctx.Err() != nil {
			break
		}
	}
	c.close()
	return nil, lastErr
}

func (c *Cluster) startProcesses(ctx context.Context, apiserver, etcd string) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	data := filepath.Join(c.dir, fmt.Sprintf("etcd-%d", ports[0]))
	if err := c.run(etcd, "etcd", "--name=kubetest", "--data-dir="+data,
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL, "--log-level=warn"); err != nil {
		return err
	}
	if err := c.waitFor(ctx, 0, func() error { return get(http.DefaultClient, etcdURL+"/health") }); err != nil {
		return fmt.Errorf("etcd did not start: %w", err)
	}
	at := func(name string) string { return filepath.Join(c.dir, name) }
	c.Server = fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	if err := c.run(apiserver, "kube-apiserver",
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[2]),
		"--tls-cert-file="+at("serving.pem"), "--tls-private-key-file="+at("serving-key.pem"),
		"--client-ca-file="+at("ca.pem"), "--anonymous-auth=false",
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+at("sa.pub"), "--service-account-signing-key-file="+at("sa-key.pem"),
		"--service-cluster-ip-range=10.96.0.0/24",
		// The advertise address is loopback, which the endpoint reconciler
		// refuses to publish.
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false", "--profiling=false",
		"--cert-dir="+at("certs"), "-v=0"); err != nil {
		return err
	}
	admin, err := c.clientConfig("kubetest-admin", "system:masters")
	if err != nil {
		return err
	}
	hc, err := rest.HTTPClientFor(admin)
	if err != nil {
		return err
	}
	if err := c.waitFor(ctx, 1, func() error { return get(hc, c.Server+"/readyz") }); err != nil {
		return fmt.Errorf("kube-apiserver did not become ready: %w", err)
	}
	c.Admin = admin
	return nil
}

// run starts a process whose output goes to a log file in c.dir.
func (c *Cluster) run(bin, name string, args ...string) error {
	log := filepath.Join(c.dir, fmt.Sprintf("%s-%d.log", name, len(c.logs)))
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// The kernel kills the process if the test binary dies without Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	c.procs, c.exited, c.logs = append(c.procs, cmd), append(c.exited, exited), append(c.logs, log)
	return nil
}

// waitFor polls ready until it succeeds, the process i exits or ctx ends;
// the error then carries the end of the process's log.
func (c *Cluster) waitFor(ctx context.Context, i int, ready func() error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var err error
	for {
		if err = ready(); err == nil {
			return nil
		}
		select {
		case <-c.exited[i]:
			return fmt.Errorf("%s exited:\n%s", filepath.Base(c.procs[i].Path), tail(c.logs[i]))
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v):\n%s", ctx.Err(), err, tail(c.logs[i]))
		case <-tick.C:
		}
	}
}

func get(hc *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

func tail(log string) string {
	data, _ := os.ReadFile(log)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

func (c *Cluster) stopProcesses() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		_ = c.procs[i].Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited[i]:
		case <-time.After(10 * time.Second):
			_ = c.procs[i].Process.Kill()
			<-c.exited[i]
		}
	}
	c.procs, c.exited = nil, nil
}

func (c *Cluster) close() {
	c.stopProcesses()
	_ = os.RemoveAll(c.dir)
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// makePKI writes the throwaway CA, the serving certificate and the service
// account key pair into c.dir.
func (c *Cluster) makePKI() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubetest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	c.caCert, _ = x509.ParseCertificate(der)
	c.caKey = key
	c.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certPEM, keyPEM, err := c.issue("127.0.0.1", nil, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return err
	}
	sa, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	saKey, err := x509.MarshalPKCS8PrivateKey(sa)
	if err != nil {
		return err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		"ca.pem": c.caPEM, "serving.pem": certPEM, "serving-key.pem": keyPEM,
		"sa-key.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: saKey}),
		"sa.pub":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}),
	} {
		if err := os.WriteFile(filepath.Join(c.dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

var serial = struct {
	sync.Mutex
	n int64
}{n: 1}

// issue signs a certificate for cn (and the organizations, which the API
// server reads as groups), with the loopback addresses as SANs for a
// server.
func (c *Cluster) issue(cn string, orgs []string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial.Lock()
	serial.n++
	n := serial.n
	serial.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.caCert, &key.PublicKey, c.caKey)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

func (c *Cluster) clientConfig(user string, groups ...string) (*rest.Config, error) {
	certPEM, keyPEM, err := c.issue(user, groups, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	return &rest.Config{Host: c.Server, TLSClientConfig: rest.TLSClientConfig{CAData: c.caPEM, CertData: certPEM, KeyData: keyPEM}, QPS: 100, Burst: 200}, nil
}

// User returns a client configuration for user (a client certificate with
// that CN and groups as O).
func (c *Cluster) User(t testing.TB, user string, groups ...string) *rest.Config {
	t.Helper()
	cfg, err := c.clientConfig(user, groups...)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Kubeconfig writes a kubeconfig (0600, in t.TempDir) for user whose
// context's namespace is namespace, and returns its path.
func (c *Cluster) Kubeconfig(t testing.TB, user, namespace string, groups ...string) string {
	t.Helper()
	cfg := c.User(t, user, groups...)
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthorityData: c.caPEM}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: user, Namespace: namespace}
	kc.CurrentContext = "kubetest"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Core returns a core/v1 client with the admin's rights.
func (c *Cluster) Core(t testing.TB) corev1client.CoreV1Interface {
	t.Helper()
	cs, err := corev1client.NewForConfig(c.Admin)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

var nsSeq struct {
	sync.Mutex
	n int
}

// Namespace creates a namespace named after prefix, unique in the cluster,
// with its "default" service account (which kube-controller-manager, not
// run here, would make, and pods need), and deletes it when t ends.
func (c *Cluster) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	nsSeq.Lock()
	nsSeq.n++
	name := fmt.Sprintf("%s-%d-%d", strings.ToLower(prefix), os.Getpid(), nsSeq.n)
	nsSeq.Unlock()
	core := c.Core(t)
	ctx := context.Background()
	if _, err := core.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() { _ = core.Namespaces().Delete(ctx, name, metav1.DeleteOptions{}) })
	if _, err := core.ServiceAccounts(name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service account %s/default: %v", name, err)
	}
	return name
}

// SecretsRole is the Role keyship needs in a namespace it ships to: secrets
// get, create, patch and delete (README, "## Kubernetes").
var SecretsRole = []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "create", "patch", "delete"}}}

// GrantSecrets creates the Role keyship-secrets (SecretsRole) in namespace
// and binds it to user.
func (c *Cluster) GrantSecrets(t testing.TB, namespace, user string) {
	t.Helper()
	rc, err := rbacv1client.NewForConfig(c.Admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := rc.Roles(namespace).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "keyship-secrets"}, Rules: SecretsRole}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "keyship-secrets"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "keyship-secrets"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	if _, err := rc.RoleBindings(namespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
