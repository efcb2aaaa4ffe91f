package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyship/keyship/backends/dcos/dcostest"
	"github.com/keyship/keyship/host/materialize/jssetest"
)

// keytoolStores makes a JKS keystore (one self-signed key for localhost) and
// a JKS truststore trusting its certificate with keytool, as an operator
// does before putting them into the DC/OS secret store.
func keytoolStores(t *testing.T, dir, storePass, trustPass string) (ks, ts []byte) {
	t.Helper()
	ksPath, tsPath, cer := filepath.Join(dir, "node.jks"), filepath.Join(dir, "trust.jks"), filepath.Join(dir, "node.cer")
	for _, args := range [][]string{
		{"-genkeypair", "-alias", "node", "-keyalg", "RSA", "-keysize", "2048", "-dname", "CN=localhost", "-ext", "SAN=dns:localhost",
			"-validity", "30", "-storetype", "JKS", "-keystore", ksPath, "-storepass", storePass, "-keypass", storePass},
		{"-exportcert", "-alias", "node", "-keystore", ksPath, "-storepass", storePass, "-file", cer},
		{"-importcert", "-noprompt", "-alias", "node-ca", "-file", cer, "-storetype", "JKS", "-keystore", tsPath, "-storepass", trustPass},
	} {
		if out, err := jssetest.Keytool(t, args...); err != nil {
			t.Fatalf("keytool %s: %v\n%s", args[0], err, out)
		}
	}
	ks, err := os.ReadFile(ksPath)
	if err != nil {
		t.Fatal(err)
	}
	ts, err = os.ReadFile(tsPath)
	if err != nil {
		t.Fatal(err)
	}
	return ks, ts
}

// taskInfo is the part of a Mesos TaskInfo fragment the test reads: every
// secret's type and reference name, by container path or variable name.
type taskInfo struct {
	Command struct {
		Environment struct {
			Variables []struct {
				Name   string      `json:"name"`
				Secret mesosSecret `json:"secret"`
			} `json:"variables"`
		} `json:"environment"`
	} `json:"command"`
	Container struct {
		Volumes []struct {
			ContainerPath string `json:"container_path"`
			Source        struct {
				Secret mesosSecret `json:"secret"`
			} `json:"source"`
		} `json:"volumes"`
	} `json:"container"`
}

type mesosSecret struct {
	Type      string `json:"type"`
	Reference *struct {
		Name string `json:"name"`
	} `json:"reference"`
}

// secrets maps each container path and variable of a fragment to
// "REFERENCE name" or "VALUE".
func (ti taskInfo) secrets() map[string]string {
	out := map[string]string{}
	desc := func(s mesosSecret) string {
		if s.Reference != nil {
			return s.Type + " " + s.Reference.Name
		}
		return s.Type
	}
	for _, v := range ti.Container.Volumes {
		out[v.ContainerPath] = desc(v.Source.Secret)
	}
	for _, v := range ti.Command.Environment.Variables {
		out[v.Name] = desc(v.Secret)
	}
	return out
}

// TestPassthroughShipsByReference: a keytool-made JKS keystore and
// truststore in the DC/OS secret store pass every check and are already what
// the consumer reads, so keyship ships them and their passwords as Mesos
// REFERENCE secrets (no secret byte in the TaskInfo); JSSE accepts the
// stores that the secret store holds, which is what Mesos mounts. A store
// keyship must convert (PEM in, JKS out) ships by VALUE, and so does a store
// of the file backend, which Mesos cannot read.
func TestPassthroughShipsByReference(t *testing.T) {
	jssetest.Require(t, "java")
	dir := t.TempDir()
	const trustPass = "canary-trust-7f3e"
	ks, ts := keytoolStores(t, dir, canary, trustPass)

	srv := dcostest.New(t)
	srv.PutBinary("/spark/keystore", ks)
	srv.PutBinary("/spark/truststore", ts)
	srv.PutBinary("/spark/ca_bundle_truststore", ts)
	srv.PutText("/spark/keystore_password", canary)
	srv.PutText("/spark/key_password", canary)
	srv.PutText("/spark/truststore_password", trustPass)
	sa := writeFile(t, dir, "sa.json", srv.NewServiceAccount(t, "spark-dispatcher"))
	for _, p := range []string{"keystore", "keystore_password", "key_password", "truststore", "truststore_password", "ca_bundle_truststore", "pem_keystore"} {
		srv.Grant("spark-dispatcher", "dcos:secrets:default:/spark/"+p, "read")
	}
	fileRoot := filepath.Join(dir, "secrets")
	for name, data := range map[string][]byte{"keystore": ks, "truststore": ts, "ca_bundle_truststore": ts, "keystore_password": []byte(canary), "truststore_password": []byte(trustPass)} {
		if err := os.MkdirAll(filepath.Join(fileRoot, "spark"), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(fileRoot, "spark"), name, data)
	}
	config := writeFile(t, dir, "keyship.yaml", []byte(fmt.Sprintf(`default_backend: dcos
plugin_dir: %s
backends:
  dcos:
    plugin: keyship-backend-dcos
    config:
      url: %s
      ca_file: %s
      auth.method: service_account
      auth.service_account_file: %s
  file:
    plugin: keyship-backend-file
    config:
      root: %s
`, binDir, srv.URL, srv.WriteCAFile(t), sa, fileRoot)))

	ship := func(t *testing.T, name, specJSON string) (stdout string, sandbox string) {
		t.Helper()
		spec := writeFile(t, dir, name+".json", []byte(specJSON))
		sandbox = filepath.Join(dir, name)
		cmd := exec.Command(filepath.Join(binDir, "keyship"), "ship", "--config", config, "--spec", spec, "--sandbox", sandbox, "--emit", "mesos")
		cmd.Env = append(os.Environ(), "KEYSHIP_CONFIG=")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("keyship ship --emit mesos: %v\n%s", err, errb.String())
		}
		if strings.Contains(out.String()+errb.String(), canary) || strings.Contains(out.String()+errb.String(), trustPass) {
			t.Fatal("a password appeared in keyship's output")
		}
		return out.String(), sandbox
	}
	fragment := func(t *testing.T, data []byte) map[string]string {
		t.Helper()
		var ti taskInfo
		if err := json.Unmarshal(data, &ti); err != nil {
			t.Fatalf("the TaskInfo fragment is not JSON: %v", err)
		}
		return ti.secrets()
	}

	t.Run("keytool JKS in DC/OS ships by REFERENCE", func(t *testing.T) {
		out, _ := ship(t, "reference", `{"security": {"tls": {"enabled": true,
			"keystore_secret": "/spark/keystore", "keystore_password": "/spark/keystore_password", "key_password": "/spark/key_password",
			"truststore_secret": "/spark/truststore", "truststore_password": "/spark/truststore_password",
			"ca_bundle_secret": "/spark/ca_bundle_truststore"}}}`)
		// keyship's "# shipped ..." comment lines come before the JSON.
		i := strings.Index(out, "{")
		if i < 0 {
			t.Fatalf("no TaskInfo fragment on stdout (it holds VALUE secrets?):\n%s", out)
		}
		got := fragment(t, []byte(out[i:]))
		want := map[string]string{
			".keyship/keystore.jks":       "REFERENCE /spark/keystore",
			".keyship/truststore.jks":     "REFERENCE /spark/truststore",
			".keyship/ca-bundle.jks":      "REFERENCE /spark/ca_bundle_truststore",
			"KEYSHIP_KEYSTORE_PASSWORD":   "REFERENCE /spark/keystore_password",
			"KEYSHIP_KEY_PASSWORD":        "REFERENCE /spark/key_password",
			"KEYSHIP_TRUSTSTORE_PASSWORD": "REFERENCE /spark/truststore_password",
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s ships as %q, want %q", k, got[k], v)
			}
		}
		if len(got) != len(want) {
			t.Errorf("fragment secrets %v, want exactly %v", got, want)
		}
		// What Mesos mounts is what the secret store holds: read it back
		// through the DC/OS backend and have JSSE use it.
		get := func(ref string) []byte {
			cmd := exec.Command(filepath.Join(binDir, "keyship"), "get", "--config", config, "--reveal", ref)
			cmd.Env = append(os.Environ(), "KEYSHIP_CONFIG=")
			data, err := cmd.Output()
			if err != nil {
				t.Fatalf("keyship get %s: %v", ref, err)
			}
			return data
		}
		storeKS, storeTS := get("/spark/keystore"), get("/spark/truststore")
		if !bytes.Equal(storeKS, ks) || !bytes.Equal(storeTS, ts) {
			t.Fatal("the DC/OS secret store does not hold keytool's bytes")
		}
		if err := jssetest.Handshake(t, storeKS, "JKS", []byte(canary), []byte(canary), storeTS, []byte(trustPass), "localhost", "TLSv1.2"); err != nil {
			t.Fatalf("JSSE with the referenced stores: %v", err)
		}
		if err := jssetest.Handshake(t, storeKS, "JKS", []byte(canary), []byte(canary), storeTS, []byte(trustPass), "elsewhere.example.com", "TLSv1.2"); err == nil {
			t.Fatal("JSSE accepted the certificate for a host it does not cover")
		}
	})

	t.Run("PEM in, JKS out ships by VALUE", func(t *testing.T) {
		// The same key and certificate as PEM, converted by keytool and
		// OpenSSL the way an operator would.
		p12 := filepath.Join(dir, "node.p12")
		if out, err := jssetest.Keytool(t, "-importkeystore", "-srckeystore", filepath.Join(dir, "node.jks"), "-srcstorepass", canary,
			"-destkeystore", p12, "-deststoretype", "PKCS12", "-deststorepass", canary, "-noprompt"); err != nil {
			t.Fatalf("keytool -importkeystore: %v\n%s", err, out)
		}
		pemData, err := exec.Command("openssl", "pkcs12", "-in", p12, "-passin", "pass:"+canary, "-nodes").Output()
		if err != nil {
			t.Fatalf("openssl pkcs12: %v", err)
		}
		srv.PutText("/spark/pem_keystore", string(pemData))
		out, sandbox := ship(t, "value", `{"security": {"tls": {"enabled": true,
			"keystore_secret": "/spark/pem_keystore", "keystore_password": "/spark/keystore_password", "key_password": "/spark/key_password"}}}`)
		if !strings.Contains(out, "not printed") {
			t.Fatalf("a fragment with VALUE secrets reached stdout:\n%s", out)
		}
		data, err := os.ReadFile(filepath.Join(sandbox, "mesos-taskinfo.json"))
		if err != nil {
			t.Fatal(err)
		}
		got := fragment(t, data)
		if got[".keyship/keystore.jks"] != "VALUE" || got["KEYSHIP_KEYSTORE_PASSWORD"] != "REFERENCE /spark/keystore_password" {
			t.Errorf("converted keystore and its password ship as %q and %q; want VALUE and the password's REFERENCE", got[".keyship/keystore.jks"], got["KEYSHIP_KEYSTORE_PASSWORD"])
		}
	})

	t.Run("a file-backend store ships by VALUE", func(t *testing.T) {
		_, sandbox := ship(t, "file", `{"security": {"tls": {"enabled": true,
			"keystore_secret": "file:spark/keystore", "keystore_password": "file:spark/keystore_password", "key_password": "file:spark/keystore_password",
			"truststore_secret": "file:spark/truststore", "truststore_password": "file:spark/truststore_password",
			"ca_bundle_secret": "file:spark/ca_bundle_truststore"}}}`)
		data, err := os.ReadFile(filepath.Join(sandbox, "mesos-taskinfo.json"))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range fragment(t, data) {
			if v != "VALUE" {
				t.Errorf("%s ships as %q; a file-backend secret is out of Mesos' reach, want VALUE", k, v)
			}
		}
	})
}
