package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyship/keyship/backends/file/filetest"
	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/materialize/jssetest"
)

// TestCheckSeed002MultiHostKeystore runs keyship check against the
// multi-host keystore of seed 002 (made by its keytool commands): a host it
// does not cover fails with the "no name matching" message, one it covers
// passes.
func TestCheckSeed002MultiHostKeystore(t *testing.T) {
	requirePeer(t, "keytool")
	j := newJob(t)
	dir := t.TempDir()
	jssetest.MakeSeed002(t, dir)
	for _, name := range []string{"node.keystore", "ca.truststore", "ca.cer"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		j.put(t, "flink/"+name, data)
	}
	j.put(t, "flink/password", []byte(jssetest.Seed002Password))
	specPath := j.spec(t, map[string]any{
		"keystore_secret": "/flink/node.keystore", "keystore_password": "/flink/password", "key_password": "/flink/password",
		"truststore_secret": "/flink/ca.truststore", "truststore_password": "/flink/password", "ca_bundle_secret": "/flink/ca.cer",
	})

	r := keyship(t, "check", "--config", j.config, "--spec", specPath, "--hosts", "node3.example.com")
	want := "FAIL security.tls.keystore_secret (/flink/node.keystore): keystore /flink/node.keystore: no name matching node3.example.com found (certificate covers node1.example.com, node2.example.com)"
	if r.code != 1 || !strings.Contains(r.stdout, want+"\n") {
		t.Errorf("check --hosts node3.example.com: exit %d, want 1 and %q:\n%s%s", r.code, want, r.stdout, r.stderr)
	}
	if strings.Count(r.stdout, "FAIL ") != 1 {
		t.Errorf("check reports other problems too:\n%s", r.stdout)
	}

	r = keyship(t, "check", "--config", j.config, "--spec", specPath, "--hosts", "node1.example.com")
	if r.code != 0 || !strings.Contains(r.stdout, "ok: every check passes") || strings.Contains(r.stdout, "FAIL") {
		t.Errorf("check --hosts node1.example.com: exit %d, want 0:\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = keyship(t, "check", "--config", j.config, "--spec", specPath, "--hosts", "node3.example.com,node2.example.com", "--json")
	var rep struct {
		OK       bool
		Hosts    []string
		Problems []struct{ Field, Ref, Reason string }
		Chain    []struct{ Subject string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("check --json: %v\n%s", err, r.stdout)
	}
	if r.code != 1 || rep.OK || len(rep.Problems) != 1 || rep.Problems[0].Field != "security.tls.keystore_secret" ||
		rep.Problems[0].Ref != "/flink/node.keystore" || !strings.Contains(rep.Problems[0].Reason, "no name matching node3.example.com found") ||
		len(rep.Hosts) != 2 {
		t.Errorf("check --json: exit %d, %+v", r.code, rep)
	}
	if strings.Contains(r.stdout+r.stderr, jssetest.Seed002Password+`"`) {
		t.Error("the store password appears in the JSON")
	}
}

// TestCheckReportsEveryProblemWithoutSecrets: three problems of one spec are
// reported by one run, and the keystore password (the canary) is never
// printed.
func TestCheckReportsEveryProblemWithoutSecrets(t *testing.T) {
	j := newJob(t)
	j.put(t, "spark/truststore_password", []byte("tab\tpassword"))
	j.put(t, "spark/ca_bundle_truststore", []byte("not a store"))
	r := keyship(t, "check", "--config", j.config, "--spec", j.spec(t, nil), "--hosts", "node9.example.com")
	assertNoCanary(t, r)
	if r.code != 1 {
		t.Errorf("exit %d, want 1:\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"FAIL security.tls.truststore_password (/spark/truststore_password): the password holds a character outside printable ASCII",
		"FAIL security.tls.ca_bundle_secret (/spark/ca_bundle_truststore): not a JKS, PKCS12 or PEM CA bundle (Invalid keystore format)",
		"FAIL security.tls.keystore_secret (/spark/keystore): keystore /spark/keystore: no name matching node9.example.com found",
		"3 problems, 0 warnings",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output does not say %q:\n%s", want, r.stdout)
		}
	}

	// A spec that does not parse lists its problems the same way.
	r = keyship(t, "check", "--config", j.config, "--spec", j.spec(t, map[string]any{"protocol": "TLSv1.1", "key_password": nil}))
	if r.code != 1 || strings.Count(r.stdout, "FAIL ") != 2 {
		t.Errorf("unparsable spec: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r = keyship(t, "check", "--config", j.config, "--spec", j.spec(t, nil), "--deadline", "tomorrow"); r.code != 2 {
		t.Errorf("--deadline tomorrow: exit %d, want 2 (usage)", r.code)
	}
}

// TestTwoShipsGiveIdenticalStores: the same inputs shipped twice give
// byte-identical stores, from JKS inputs and from a PEM key and chain into
// PKCS12.
func TestTwoShipsGiveIdenticalStores(t *testing.T) {
	j := newJob(t)
	other := filetest.Seed(t, t.TempDir(), canary)
	key, err := keystore.EncodePEMKey(other.Leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	j.put(t, "spark/node.pem", append(key, keystore.EncodePEMCertificates(other.Leaf.Chain)...))
	j.put(t, "spark/ca.pem", keystore.EncodePEMCertificates(other.Leaf.Chain[1:]))
	for _, c := range []struct {
		change map[string]any
		files  []string
	}{
		{nil, []string{"keystore.jks", "truststore.jks", "ca-bundle.jks"}},
		{map[string]any{"keystore_secret": "/spark/node.pem", "truststore_secret": "/spark/ca.pem",
			"ca_bundle_secret": "/spark/ca.pem", "store_type": "pkcs12"}, []string{"keystore.p12", "truststore.p12", "ca-bundle.p12"}},
	} {
		specPath := j.spec(t, c.change)
		var first map[string][]byte
		for i := range 2 {
			sandbox := filepath.Join(t.TempDir(), "sandbox")
			r := keyship(t, "ship", "--config", j.config, "--spec", specPath, "--sandbox", sandbox)
			if r.code != 0 {
				t.Fatalf("ship %d: exit %d\n%s", i, r.code, r.stderr)
			}
			files := map[string][]byte{}
			for _, name := range c.files {
				data, err := os.ReadFile(filepath.Join(sandbox, name))
				if err != nil {
					t.Fatal(err)
				}
				files[name] = data
			}
			if first == nil {
				first = files
				continue
			}
			for name, data := range files {
				if string(data) != string(first[name]) {
					t.Errorf("%s differs between two ships of the same inputs", name)
				}
			}
		}
	}
}
