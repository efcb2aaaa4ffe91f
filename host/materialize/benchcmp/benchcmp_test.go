package benchcmp

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/materialize/testca"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
)

// The password of every store of the benchmark, as an operator would type it.
const password = "changeit"

// fixture writes the PEM inputs: key.pem, cert.pem (the leaf), ca.pem, and
// for keyship a file-backend root (./secrets, the CLI's default backend)
// with the key and chain as one PEM secret, the CA and the passwords, and a
// DC/OS spec naming them.
func fixture(b *testing.B) (dir, spec string) {
	b.Helper()
	ca, err := testca.NewCA("Bench CA", testca.WithRSA())
	if err != nil {
		b.Fatal(err)
	}
	leaf, err := ca.Issue("node1.example.com", testca.WithRSA(), testca.WithDNS("node1.example.com"))
	if err != nil {
		b.Fatal(err)
	}
	key, err := keystore.EncodePEMKey(leaf.Key)
	if err != nil {
		b.Fatal(err)
	}
	cert := keystore.EncodePEMCertificates(leaf.Chain[:1])
	caPEM := keystore.EncodePEMCertificates(leaf.Chain[1:])
	dir = b.TempDir()
	files := map[string][]byte{
		"key.pem": key, "cert.pem": cert, "ca.pem": caPEM,
		"secrets/tls/node.pem": append(append([]byte{}, key...), cert...),
		"secrets/tls/ca.pem":   caPEM,
		"secrets/tls/password": []byte(password),
		"job.json": []byte(`{"security": {"tls": {"enabled": true,
  "keystore_secret": "/tls/node.pem", "keystore_password": "/tls/password", "key_password": "/tls/password",
  "truststore_secret": "/tls/ca.pem", "truststore_password": "/tls/password", "ca_bundle_secret": "/tls/ca.pem"}}}`),
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return dir, filepath.Join(dir, "job.json")
}

// keyshipBinary returns $KEYSHIP_BIN (make bench: bin/keyship) or a freshly
// built keyship with the plugins beside it.
func keyshipBinary(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("KEYSHIP_BIN"); p != "" {
		return p
	}
	dir := b.TempDir()
	// Built as make build builds them (static, stripped, grpcnotrace): the
	// plugin's size is its start-up.
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-tags", "grpcnotrace", "-o", dir+"/",
		"github.com/keyship/keyship/cmd/keyship", "github.com/keyship/keyship/cmd/keyship-backend-...")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build keyship: %v\n%s", err, msg)
	}
	return filepath.Join(dir, "keyship")
}

// pluginConfig writes a keyship.yaml that reads ./secrets through the file
// backend's plugin next to bin, pinned by its sha256, as users run it.
func pluginConfig(b *testing.B, dir, bin string) string {
	b.Helper()
	data, err := os.ReadFile(filepath.Join(filepath.Dir(bin), "keyship-backend-file"))
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(data)
	cfg := filepath.Join(dir, "keyship.yaml")
	body := fmt.Sprintf("default_backend: file\nplugin_dir: %s\nbackends:\n  file:\n    plugin: keyship-backend-file\n    sha256: %x\n    config:\n      root: %s\n",
		filepath.Dir(bin), sum, filepath.Join(dir, "secrets"))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		b.Fatal(err)
	}
	return cfg
}

func require(b *testing.B, tool string) string {
	b.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		b.Skipf("%s not found: the comparison needs the manual pipeline's tools", tool)
	}
	return p
}

// run runs a command in dir and fails the benchmark if it fails. Its
// arguments hold the benchmark's throwaway password only.
func run(b *testing.B, dir string, name string, args ...string) {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "KEYSHIP_CONFIG=")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s %s: %v\n%s", filepath.Base(name), args[0], err, out)
	}
}

// inProcess returns a function that builds the same stores from the same PEM
// files in this process, with the key, certificate and CA in separate
// secrets: keyship's own work, without process start and file I/O.
func inProcess(b *testing.B, dir string) func() {
	b.Helper()
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		return data
	}
	field := func(name string) spec.Field { return spec.Field{Name: name, Ref: spec.Ref{Path: "/tls/" + name}} }
	key, cert := field("key"), field("cert")
	s := &spec.Spec{
		Keystore:   spec.Store{Key: &key, Certificate: &cert, Password: field("password")},
		Truststore: &spec.Store{Secret: field("ca"), Password: field("password")},
		Hosts:      []string{"node1.example.com"},
	}
	secrets := materialize.Secrets{
		key.Ref: {Data: read("key.pem")}, cert.Ref: {Data: read("cert.pem")},
		field("ca").Ref: {Data: read("ca.pem")}, field("password").Ref: plugin.Secret{Data: []byte(password)},
	}
	return func() {
		bundle, err := materialize.Build(context.Background(), s, secrets, materialize.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if bundle.File(materialize.RoleKeystore) == nil || bundle.File(materialize.RoleTruststore) == nil {
			b.Fatal("no keystore or truststore")
		}
		bundle.Zero()
	}
}

// BenchmarkKeyshipVsManual materializes a JKS keystore (key and chain) and a
// JKS truststore (the CA) from PEM files, once per iteration each way:
//
//   - keyship: one cold `keyship ship` process as users run it (the file
//     backend's plugin, sha256-pinned, started and stopped; resolve, build
//     with every check, atomic sandbox write of the stores and password
//     files);
//   - manual: openssl pkcs12 -export, keytool -importkeystore to JKS,
//     keytool -importcert into a JKS truststore, as the DC/OS and Flink
//     guides have operators do.
//
// It reports the median of each and their ratio (x-faster), and, to show
// where keyship's time goes, the same build in this process
// (inprocess-x-faster: the ratio without keyship's process start).
func BenchmarkKeyshipVsManual(b *testing.B) {
	bin := keyshipBinary(b)
	dir, spec := fixture(b)
	sandbox := filepath.Join(dir, "sandbox")
	config := pluginConfig(b, dir, bin)
	keyshipOnce := func() {
		run(b, dir, bin, "ship", "--config", config, "--spec", spec, "--sandbox", sandbox, "--hosts", "node1.example.com")
	}
	manualOnce := manual(b, dir)
	build := inProcess(b, dir)
	// Warm the page cache for both, and check both make their stores.
	build()
	keyshipOnce()
	manualOnce()
	for _, p := range []string{"sandbox/keystore.jks", "sandbox/truststore.jks", "keystore.jks", "truststore.jks"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			b.Fatal(err)
		}
	}

	var ks, manual, inproc []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		keyshipOnce()
		ks = append(ks, time.Since(start))
		start = time.Now()
		manualOnce()
		manual = append(manual, time.Since(start))
		start = time.Now()
		for range 10 {
			build()
		}
		inproc = append(inproc, time.Since(start)/10)
	}
	b.StopTimer()
	median := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)/2]
	}
	k, m := median(ks), median(manual)
	b.ReportMetric(float64(k.Microseconds())/1000, "keyship-ms")
	b.ReportMetric(float64(m.Microseconds())/1000, "manual-ms")
	b.ReportMetric(float64(m)/float64(k), "x-faster")
	b.ReportMetric(float64(m)/float64(median(inproc)), "inprocess-x-faster")
}
