package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// flinkConf is seed 000's job as a flink-conf.yaml, its passwords by ref.
const flinkConf = `security.ssl.enabled: true
security.ssl.keystore: /spark/keystore
security.ssl.keystore-password: ${secret:/spark/keystore_password}
security.ssl.key-password: ${secret:/spark/key_password}
security.ssl.truststore: /spark/truststore
security.ssl.truststore-password: ${secret:/spark/truststore_password}
`

// writeFlinkConf writes flinkConf into dir and returns its path.
func writeFlinkConf(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "flink-conf.yaml")
	if err := os.WriteFile(p, []byte(flinkConf), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestShipFlinkConfEmitsFlinkSettings(t *testing.T) {
	j := newJob(t)
	conf := writeFlinkConf(t, j.dir)
	r := j.ship(t, conf)
	if r.code != 0 {
		t.Fatalf("ship flink-conf: exit %d: %s", r.code, r.stderr)
	}
	assertNoCanary(t, r)
	// Issue 11: stdout says where the one fragment is and where it goes;
	// it prints nothing to paste beside it (a key twice stops Flink 1.19+).
	secret := filepath.Join(j.sandbox, "flink-ssl.yaml")
	if !strings.Contains(r.stdout, secret) || !strings.Contains(r.stdout, "$FLINK_CONF_DIR/config.yaml") {
		t.Errorf("stdout does not say where the fragment is and where it goes:\n%s", r.stdout)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(r.stdout), "\n") {
		if !strings.HasPrefix(line, "#") {
			t.Errorf("stdout has a setting outside the fragment: %q", line)
		}
	}
	st, err := os.Stat(secret)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("flink-ssl.yaml: %v mode %v", err, st.Mode().Perm())
	}
	data, _ := os.ReadFile(secret)
	if !strings.Contains(string(data), canary) {
		t.Error("the Flink secret fragment does not carry the keystore password")
	}
	var settings map[string]any
	if err := yaml.Unmarshal(data, &settings); err != nil {
		t.Fatalf("the fragment is not YAML: %v", err)
	}
	ks, _ := settings["security.ssl.internal.keystore"].(string)
	if _, err := os.Stat(ks); ks == "" || err != nil {
		t.Fatalf("security.ssl.internal.keystore %q is not a shipped file (%v)", ks, err)
	}
}

func TestShipEmitLibprocessWritesPEM(t *testing.T) {
	j := newJob(t)
	r := j.ship(t, j.spec(t, nil), "--emit", "libprocess")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	env := map[string]string{}
	for _, line := range strings.Split(r.stdout, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[k] = strings.Trim(v, "'")
		}
	}
	for _, k := range []string{"LIBPROCESS_SSL_CERT_FILE", "LIBPROCESS_SSL_KEY_FILE", "LIBPROCESS_SSL_CA_FILE"} {
		data, err := os.ReadFile(env[k])
		if err != nil || !strings.Contains(string(data), "-----BEGIN ") {
			t.Errorf("%s=%q is not a shipped PEM file (%v)", k, env[k], err)
		}
	}
	if env["LIBPROCESS_SSL_ENABLED"] != "true" {
		t.Errorf("LIBPROCESS_SSL_ENABLED = %q\n%s", env["LIBPROCESS_SSL_ENABLED"], r.stdout)
	}
}

func TestShipEmitMesosKeepsValuesOffStdout(t *testing.T) {
	j := newJob(t)
	r := j.ship(t, j.spec(t, nil), "--emit", "mesos")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	assertNoCanary(t, r)
	frag := filepath.Join(j.sandbox, "mesos-taskinfo.json")
	if !strings.Contains(r.stdout, frag) {
		t.Fatalf("stdout does not point at the fragment file:\n%s", r.stdout)
	}
	data, err := os.ReadFile(frag)
	if err != nil {
		t.Fatal(err)
	}
	var ti struct {
		Container struct {
			Volumes []struct {
				ContainerPath string `json:"container_path"`
				Mode          string `json:"mode"`
				Source        struct {
					Type   string `json:"type"`
					Secret struct {
						Type  string `json:"type"`
						Value struct {
							Data string `json:"data"`
						} `json:"value"`
					} `json:"secret"`
				} `json:"source"`
			} `json:"volumes"`
		} `json:"container"`
		Command struct {
			Environment struct {
				Variables []struct {
					Name string `json:"name"`
					Type string `json:"type"`
				} `json:"variables"`
			} `json:"environment"`
		} `json:"command"`
	}
	if err := json.Unmarshal(data, &ti); err != nil {
		t.Fatal(err)
	}
	if len(ti.Container.Volumes) == 0 || len(ti.Command.Environment.Variables) != 3 {
		t.Fatalf("fragment: %d volumes, %d variables", len(ti.Container.Volumes), len(ti.Command.Environment.Variables))
	}
	v := ti.Container.Volumes[0]
	if v.Mode != "RO" || v.Source.Type != "SECRET" || v.Source.Secret.Type != "VALUE" || v.Source.Secret.Value.Data == "" || !strings.HasPrefix(v.ContainerPath, ".keyship/") {
		t.Errorf("volume %+v", v)
	}
}

func TestShipEmitMarathonRefusesBuiltStores(t *testing.T) {
	j := newJob(t)
	r := j.ship(t, j.spec(t, nil), "--emit", "marathon")
	if r.code != 1 || !strings.Contains(r.stderr, "Marathon secrets must be references") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
}

// TestShipConsumerVersions (issue 11): --spark-version and --flink-version
// select what the settings are written for; --emit mesos prints the
// consumer's settings at the container paths.
func TestShipConsumerVersions(t *testing.T) {
	j := newJob(t)
	spec := j.spec(t, nil)

	r := j.ship(t, spec, "--emit", "spark", "--spark-version", "2.2")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	assertNoCanary(t, r)
	props := filepath.Join(j.sandbox, "spark-ssl.properties")
	if data, err := os.ReadFile(props); err != nil || !strings.Contains(string(data), "spark.ssl.keyStorePassword="+canary) {
		t.Errorf("Spark 2.2: %s does not carry the password (%v)", props, err)
	}
	if !strings.Contains(r.stdout, props) || !strings.Contains(r.stdout, "--properties-file") {
		t.Errorf("Spark 2.2 stdout:\n%s", r.stdout)
	}

	r = j.ship(t, spec, "--emit", "flink", "--flink-version", "1.16")
	if r.code != 0 || !strings.Contains(r.stdout, "$FLINK_CONF_DIR/flink-conf.yaml") || strings.Contains(r.stdout, "keystore-type") {
		t.Errorf("Flink 1.16: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := j.ship(t, spec, "--flink-version", "one"); r.code != 2 || !strings.Contains(r.stderr, "--flink-version") {
		t.Errorf("--flink-version one: exit %d: %s", r.code, r.stderr)
	}

	r = j.ship(t, spec, "--emit", "mesos")
	if r.code != 0 || !strings.Contains(r.stdout, "spark.ssl.keyStore=.keyship/keystore.jks") {
		t.Errorf("--emit mesos prints no Spark settings at the container paths: exit %d\n%s", r.code, r.stdout)
	}
	assertNoCanary(t, r)
}
