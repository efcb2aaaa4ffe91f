package conf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyship/keyship/host/materialize/jssetest"
)

// The consumers' own readers, in Java (testdata/*.java): FlinkConf loads a
// Flink configuration as Flink's GlobalConfiguration and YamlParserUtils do
// (SnakeYAML, Debian's libyaml-snake-java, which tools/install-deps.sh
// installs), FlinkHandshake runs a handshake configured as Flink's SSLUtils
// configures its engines, SparkConf reads properties and opens the stores as
// Spark's SSLOptions does.
//
//go:embed testdata/*.java
var javaSources embed.FS

// snakeYAMLJar is where Debian's libyaml-snake-java puts SnakeYAML.
const snakeYAMLJar = "/usr/share/java/snakeyaml.jar"

var (
	javaOnce    sync.Once
	javaClasses string
	javaErr     error
)

// javaPeers compiles testdata/*.java once per test binary (into a directory
// under os.TempDir named after the sources' hash, which later binaries
// reuse) and returns the java binary and the class path. It skips the test,
// or fails it with KEYSHIP_REQUIRE_PEERS=1, when Java or SnakeYAML is
// missing.
func javaPeers(t *testing.T) (string, string) {
	t.Helper()
	java := jssetest.Require(t, "java")
	javac := jssetest.Require(t, "javac")
	if _, err := os.Stat(snakeYAMLJar); err != nil {
		if os.Getenv(jssetest.RequirePeersEnv) == "1" {
			t.Fatalf("%s missing and %s=1 (run tools/install-deps.sh)", snakeYAMLJar, jssetest.RequirePeersEnv)
		}
		t.Skipf("%s missing; run tools/install-deps.sh to test against Flink's YAML parser", snakeYAMLJar)
	}
	javaOnce.Do(func() {
		sum := sha256.New()
		names, _ := fs.Glob(javaSources, "testdata/*.java")
		for _, n := range names {
			data, _ := javaSources.ReadFile(n)
			sum.Write([]byte(n))
			sum.Write(data)
		}
		dir := filepath.Join(os.TempDir(), "keyship-conftest-"+hex.EncodeToString(sum.Sum(nil)[:8]))
		if _, err := os.Stat(filepath.Join(dir, "FlinkConf.class")); err == nil {
			javaClasses = dir
			return
		}
		tmp, err := os.MkdirTemp(os.TempDir(), "keyship-conftest-build-")
		if err != nil {
			javaErr = err
			return
		}
		defer func() { _ = os.RemoveAll(tmp) }()
		var srcs []string
		for _, n := range names {
			data, _ := javaSources.ReadFile(n)
			p := filepath.Join(tmp, filepath.Base(n))
			if err := os.WriteFile(p, data, 0o600); err != nil {
				javaErr = err
				return
			}
			srcs = append(srcs, p)
		}
		out, err := exec.Command(javac, append([]string{"-nowarn", "-cp", snakeYAMLJar, "-d", tmp}, srcs...)...).CombinedOutput()
		if err != nil {
			javaErr = fmt.Errorf("javac: %v\n%s", err, out)
			return
		}
		for _, p := range srcs {
			_ = os.Remove(p)
		}
		if err := os.Rename(tmp, dir); err != nil {
			if _, statErr := os.Stat(filepath.Join(dir, "FlinkConf.class")); statErr != nil {
				javaErr = err
				return
			}
		}
		javaClasses = dir
	})
	if javaErr != nil {
		t.Fatal(javaErr)
	}
	return java, snakeYAMLJar + string(os.PathListSeparator) + javaClasses
}

// runJava runs class with args in dir (the task's working directory) with
// extra environment variables, and returns its standard output and whether
// it exited 0. The programs print no password.
func runJava(t *testing.T, dir string, env []string, class string, args ...string) (string, error) {
	t.Helper()
	java, cp := javaPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, java, append([]string{"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData", "-cp", cp, class}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("java %s: %v\n%s", class, err, stderr.String())
	}
	if err != nil && !bytes.HasPrefix(out, []byte("FAIL")) && !bytes.Contains(out, []byte("\nFAIL")) {
		t.Fatalf("java %s: %v\n%s\n%s", class, err, out, stderr.String())
	}
	return string(out), err
}

// flinkValue is one setting as Flink hands it to SSLUtils: the Java type
// SnakeYAML made of it and the SHA-256 of the string getString returns.
type flinkValue struct {
	javaType string
	sum      string
}

// loadFlink loads a Flink configuration file with FlinkConf (mode
// "standard" for config.yaml, "legacy" for flink-conf.yaml). A load failure
// (a duplicate key) is returned as an error holding Flink's message.
func loadFlink(t *testing.T, mode, file string) (map[string]flinkValue, error) {
	t.Helper()
	out, err := runJava(t, filepath.Dir(file), nil, "FlinkConf", mode, file)
	if err != nil {
		return nil, errors.New(strings.TrimSpace(out))
	}
	got := map[string]flinkValue{}
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("FlinkConf printed %q", line)
		}
		got[f[0]] = flinkValue{f[1], f[2]}
	}
	return got, nil
}

// sum is the hex SHA-256 of v, as FlinkConf prints it.
func sum(v []byte) string {
	s := sha256.Sum256(v)
	return hex.EncodeToString(s[:])
}
