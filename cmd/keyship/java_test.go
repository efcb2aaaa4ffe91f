package main_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyship/keyship/backends/file/filetest"
)

// The JVM client is compiled with javac against Debian's Jackson jars
// (tools/install-deps.sh installs libjackson2-databind-java), once per test
// binary.
var (
	jacksonJars = []string{"/usr/share/java/jackson-databind.jar", "/usr/share/java/jackson-core.jar", "/usr/share/java/jackson-annotations.jar"}
	javaOnce    sync.Once
	javaClasses string
	javaErr     error
)

// javaClient compiles clients/java (main and test sources) and returns the
// classpath that runs it.
func javaClient(t testing.TB) (java, classpath string) {
	t.Helper()
	javac := requirePeer(t, "javac")
	java = requirePeer(t, "java")
	for _, jar := range jacksonJars {
		if _, err := os.Stat(jar); err != nil {
			if os.Getenv("KEYSHIP_REQUIRE_PEERS") == "1" {
				t.Fatalf("%s missing and KEYSHIP_REQUIRE_PEERS=1 (run tools/install-deps.sh)", jar)
			}
			t.Skipf("%s missing; run tools/install-deps.sh", jar)
		}
	}
	javaOnce.Do(func() {
		dir, err := os.MkdirTemp("", "keyship-java-client-")
		if err != nil {
			javaErr = err
			return
		}
		var srcs []string
		err = filepath.WalkDir(filepath.Join("..", "..", "clients", "java", "src"), func(p string, d os.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(p, ".java") {
				srcs = append(srcs, p)
			}
			return err
		})
		if err != nil {
			javaErr = err
			return
		}
		args := append([]string{"-Xlint:all", "-Werror", "-d", dir, "-cp", strings.Join(jacksonJars, ":")}, srcs...)
		if out, err := exec.Command(javac, args...).CombinedOutput(); err != nil {
			javaErr = &javacError{err: err, out: string(out)}
			return
		}
		javaClasses = dir
	})
	if javaErr != nil {
		t.Fatal(javaErr)
	}
	return java, javaClasses + ":" + strings.Join(jacksonJars, ":")
}

type javacError struct {
	err error
	out string
}

func (e *javacError) Error() string { return "javac clients/java: " + e.err.Error() + "\n" + e.out }

// dispatcherStores ships, with keyship itself, a launcher's client
// keystore and truststore (PKCS12) from the PEM key and certificate chain
// of leaf and the CA certificates trust (PEM), and returns the sandbox they
// are in.
func dispatcherStores(t testing.TB, j *job, name string, leafPEM, trust []byte) string {
	t.Helper()
	j.put(t, name+"/client.pem", leafPEM)
	j.put(t, name+"/ca.pem", trust)
	j.put(t, name+"/password", []byte("dispatcher-pass-1"))
	spec := `{"security": {"tls": {"enabled": true, "store_type": "pkcs12",
	  "keystore_secret": "/` + name + `/client.pem", "keystore_password": "/` + name + `/password", "key_password": "/` + name + `/password",
	  "truststore_secret": "/` + name + `/ca.pem", "truststore_password": "/` + name + `/password", "ca_bundle_secret": "/` + name + `/ca.pem"}}}`
	specPath := filepath.Join(j.dir, name+".json")
	writePEM(t, specPath, []byte(spec))
	sandbox := filepath.Join(j.dir, name+"-stores")
	if r := keyship(t, "ship", "--config", j.config, "--spec", specPath, "--sandbox", sandbox); r.code != 0 {
		t.Fatalf("keyship ship of the %s's client stores: exit %d: %s", name, r.code, r.stderr)
	}
	return sandbox
}

// dispatcherArgs are DispatcherExample's TLS arguments for the stores in
// sandbox.
func dispatcherArgs(s *serving, sandbox string) []string {
	at := func(n string) string { return filepath.Join(sandbox, n) }
	return []string{"--server", "https://" + s.hostPort(),
		"--keystore", at("keystore.p12"), "--keystore-password-file", at("keystore.password"), "--key-password-file", at("key.password"),
		"--truststore", at("truststore.p12"), "--truststore-password-file", at("truststore.password")}
}

const sparkConf = `# the job's spark-defaults.conf: store settings hold refs
spark.executor.memory 4g
spark.ssl.enabled true
spark.ssl.keyStore /spark/keystore
spark.ssl.keyStorePassword ${secret:/spark/keystore_password}
spark.ssl.keyPassword ${secret:/spark/key_password}
spark.ssl.trustStore /spark/truststore
spark.ssl.trustStorePassword ${secret:/spark/truststore_password}
spark.ssl.protocol TLSv1.2
`

// TestJavaDispatcherShips compiles the JVM client with javac against
// Debian's Jackson, and runs DispatcherExample against a real keyship serve
// on TCP with mutual TLS, the example's own keystore and truststore shipped
// by keyship: for a Spark job with 3 executors it gets each executor's
// TaskInfo secret volumes and SECRET environment, whose keystore Java's
// keytool opens with the shipped password, and the spark.ssl settings that
// point at them. Check from the JVM passes a covered host and names the
// keystore setting for another; a bad spec is an invalid_argument naming
// the setting; a client certificate from another CA is refused; and the
// keystore password (the canary) appears in no output in clear.
func TestJavaDispatcherShips(t *testing.T) {
	java, cp := javaClient(t)
	keytool := requirePeer(t, "keytool")
	j := newJob(t)
	hosts := []string{"node1.example.com", "node2.example.com", "node3.example.com"}
	filetest.Seed(t, j.root, canary, hosts...)
	m := newMTLS(t)
	s := serveTLS(t, j, m, "--log-level", "debug") // debug: the refused handshake is logged
	stores := dispatcherStores(t, j, "dispatcher", m.clientPEM, certPEM(m.ca.Cert))
	conf := filepath.Join(j.dir, "job-ssl.conf")
	writePEM(t, conf, []byte(sparkConf))

	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(java, append([]string{"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", cp, "com.github.keyship.client.example.DispatcherExample"}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	out, stderr, err := run(append(dispatcherArgs(s, stores), "--conf", conf, "--job-id", "spark-job-1", "--executors", strings.Join(hosts, ","))...)
	if err != nil {
		t.Fatalf("DispatcherExample: %v\n%s", err, stderr)
	}
	for _, text := range []string{out, stderr, s.stderr.String()} {
		if strings.Contains(text, canary) {
			t.Fatal("the keystore password appears in clear in an output")
		}
	}
	var got struct {
		JobID string `json:"jobId"`
		Tasks map[string]struct {
			Command struct {
				Environment struct {
					Variables []struct {
						Name, Type string
						Secret     mesosSecret
					}
				}
			}
			Container struct {
				Type    string
				Volumes []struct {
					Mode          string
					ContainerPath string `json:"container_path"`
					Source        struct {
						Type   string
						Secret mesosSecret
					}
				}
			}
		}
		Settings map[string]string
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("DispatcherExample's output is not JSON: %v", err)
	}
	if got.JobID != "spark-job-1" || len(got.Tasks) != 3 {
		t.Fatalf("job %q with %d tasks, want spark-job-1 with 3 executors", got.JobID, len(got.Tasks))
	}
	var firstKeystore []byte
	for _, id := range []string{"executor-1", "executor-2", "executor-3"} {
		task, ok := got.Tasks[id]
		if !ok {
			t.Fatalf("no TaskInfo fragment for %s", id)
		}
		vols := map[string][]byte{}
		for _, v := range task.Container.Volumes {
			if v.Mode != "RO" || v.Source.Type != "SECRET" || v.Source.Secret.Type != "VALUE" {
				t.Errorf("%s: volume %s is %s %s %s, want a read-only SECRET VALUE", id, v.ContainerPath, v.Mode, v.Source.Type, v.Source.Secret.Type)
			}
			vols[v.ContainerPath] = v.Source.Secret.data(t)
		}
		env := map[string][]byte{}
		for _, v := range task.Command.Environment.Variables {
			env[v.Name] = v.Secret.data(t)
		}
		ks := vols[".keyship/keystore.jks"]
		if task.Container.Type != "MESOS" || len(ks) == 0 || len(vols[".keyship/truststore.jks"]) == 0 {
			t.Fatalf("%s: container %s with volumes %v, want the keystore and truststore under .keyship/", id, task.Container.Type, keys(vols))
		}
		if string(env["KEYSHIP_KEYSTORE_PASSWORD"]) != canary || len(env["KEYSHIP_TRUSTSTORE_PASSWORD"]) == 0 || len(env["KEYSHIP_KEY_PASSWORD"]) == 0 {
			t.Fatalf("%s: SECRET environment %v lacks the passwords", id, keys(env))
		}
		if firstKeystore == nil {
			firstKeystore = ks
			p := filepath.Join(t.TempDir(), "keystore.jks")
			writePEM(t, p, ks)
			list, err := exec.Command(keytool, "-list", "-keystore", p, "-storepass", string(env["KEYSHIP_KEYSTORE_PASSWORD"])).CombinedOutput()
			if err != nil || strings.Count(string(list), "PrivateKeyEntry") != 1 {
				t.Fatalf("keytool -list of the shipped keystore with the shipped password: %v, %d PrivateKeyEntry", err, strings.Count(string(list), "PrivateKeyEntry"))
			}
		} else if !bytes.Equal(ks, firstKeystore) {
			t.Errorf("%s got another keystore than executor-1: one job, one build", id)
		}
	}
	for k, v := range map[string]string{
		"spark.ssl.enabled": "true", "spark.ssl.keyStore": ".keyship/keystore.jks", "spark.ssl.keyStoreType": "JKS",
		"spark.ssl.keyStorePassword": "${env:KEYSHIP_KEYSTORE_PASSWORD}", "spark.ssl.keyPassword": "${env:KEYSHIP_KEY_PASSWORD}",
		"spark.ssl.trustStore": ".keyship/truststore.jks", "spark.ssl.trustStorePassword": "${env:KEYSHIP_TRUSTSTORE_PASSWORD}",
		"spark.ssl.protocol": "TLSv1.2",
	} {
		if got.Settings[k] != v {
			t.Errorf("setting %s = %q, want %q", k, got.Settings[k], v)
		}
	}

	// Check from the JVM: the hosts the certificate covers pass, another
	// host is a problem naming the keystore setting.
	check := func(host string) string {
		at := func(n string) string { return filepath.Join(stores, n) }
		out, err := exec.Command(java, "-cp", cp, "com.github.keyship.client.CheckMain", "https://"+s.hostPort(),
			at("keystore.p12"), at("keystore.password"), at("key.password"), at("truststore.p12"), at("truststore.password"),
			conf, "DIALECT_SPARK", host).CombinedOutput()
		if err != nil {
			t.Fatalf("CheckMain: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := check("node2.example.com"); out != "ok\n" {
		t.Errorf("Check of a covered host from the JVM: %q", out)
	}
	if out := check("other.example.com"); !strings.HasPrefix(out, "problem spark.ssl.keyStore | /spark/keystore | ") || !strings.Contains(out, "other.example.com") {
		t.Errorf("Check of an uncovered host from the JVM: %q", out)
	}

	// A bad spec: the server's error, naming the setting.
	badConf := filepath.Join(j.dir, "bad-ssl.conf")
	writePEM(t, badConf, []byte(strings.Replace(sparkConf, "spark.ssl.keyStorePassword", "#", 1)))
	_, stderr, err = run(append(dispatcherArgs(s, stores), "--conf", badConf, "--job-id", "spark-job-2", "--executors", "node1.example.com")...)
	if err == nil || !strings.Contains(stderr, "invalid_argument") || !strings.Contains(stderr, "spark.ssl.keyStorePassword") {
		t.Errorf("a spec without spark.ssl.keyStorePassword: %v\n%s", err, stderr)
	}

	// Stores around a client certificate from another CA (which they trust
	// too, as keyship checks that the chain verifies).
	stranger := dispatcherStores(t, j, "stranger", append(readFile(t, m.strangerKy), readFile(t, m.strangerCert)...), append(certPEM(m.ca.Cert), m.strangerCA...))
	out, stderr, err = run(append(dispatcherArgs(s, stranger), "--conf", conf, "--job-id", "spark-job-3", "--executors", "node1.example.com")...)
	// In TLS 1.3 the server checks the client's certificate after the
	// client has finished its side of the handshake and sent its request:
	// the JDK reports the server's alert (SSLHandshakeException) or, when
	// the server's close reset the connection before the alert was read,
	// a connection closed with no response. Both are the refusal; the
	// server's log says why: the JDK sends the stranger certificate, or
	// none at all when the server's list of acceptable CAs names no issuer
	// of the keys it holds.
	jdkRefused := false
	for _, m := range []string{"SSLHandshakeException", "header parser received no bytes", "Connection reset"} {
		jdkRefused = jdkRefused || strings.Contains(stderr, m)
	}
	if err == nil || strings.Contains(out, "tasks") || !jdkRefused {
		t.Errorf("a client certificate from another CA was not refused: %v\n%s\n%.500s", err, out, stderr)
	}
	if log, ok := s.stderr.WaitFor(time.Minute, "TLS handshake error"); !ok ||
		!strings.Contains(log, "certificate signed by unknown authority") && !strings.Contains(log, "client didn't provide a certificate") {
		t.Errorf("serve did not log the refused client certificate:\n%s", log)
	}
}

type mesosSecret struct {
	Type  string
	Value struct{ Data string }
}

func (s mesosSecret) data(t *testing.T) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s.Value.Data)
	if err != nil {
		t.Fatalf("secret value is not base64: %v", err)
	}
	return b
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
