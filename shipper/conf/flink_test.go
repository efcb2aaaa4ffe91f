package conf

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/materialize/testca"
	"github.com/keyship/keyship/host/spec"
)

// flinkAt is a Spec for Flink release v ("" is the newest, 2.x).
func flinkAt(t *testing.T, v string, s *spec.Spec) *spec.Spec {
	t.Helper()
	return atRelease(t, v, s, func(s *spec.Spec) *spec.ConsumerVersion { return &s.FlinkVersion })
}

// atRelease sets the consumer release of s (a new Spec when nil) that field
// picks to v; "" leaves it unset (the newest).
func atRelease(t *testing.T, v string, s *spec.Spec, field func(*spec.Spec) *spec.ConsumerVersion) *spec.Spec {
	t.Helper()
	if s == nil {
		s = &spec.Spec{}
	}
	if v != "" {
		ver, err := spec.ParseVersion(v)
		if err != nil {
			t.Fatal(err)
		}
		*field(s) = spec.ConsumerVersion{Version: ver}
	}
	return s
}

// keysOf returns the keys of settings.
func keysOf(settings []Setting) []string {
	var out []string
	for _, s := range settings {
		out = append(out, s.Key)
	}
	return out
}

// TestFlinkKeysPerRelease (issue 11, defect 8): each Flink release gets the
// keys it reads and no other.
func TestFlinkKeysPerRelease(t *testing.T) {
	endpoint := func(ep string, types bool) []string {
		p := "security.ssl." + ep + "."
		out := []string{p + "enabled", p + "keystore", p + "keystore-password", p + "key-password"}
		if types {
			out = append(out, p+"keystore-type")
		}
		out = append(out, p+"truststore", p+"truststore-password")
		if types {
			out = append(out, p+"truststore-type")
		}
		return out
	}
	tail := []string{"security.ssl.protocol", "security.ssl.algorithms", "security.ssl.verify-hostname"}
	tests := []struct {
		release, source string
		want            []string
	}{
		{"1.5", "Flink 1.5 SecurityOptions.java: security.ssl.* only; security.ssl.internal.*/rest.* came in 1.6", append([]string{
			"security.ssl.enabled", "security.ssl.keystore", "security.ssl.keystore-password", "security.ssl.key-password",
			"security.ssl.truststore", "security.ssl.truststore-password"}, tail...)},
		{"1.6", "Flink 1.6 SecurityOptions.java: SSL_INTERNAL_* and SSL_REST_*", append(append(endpoint("internal", false), endpoint("rest", false)...), tail...)},
		{"1.19", "Flink 1.19 SecurityOptions.java: no keystore-type yet", append(append(endpoint("internal", false), endpoint("rest", false)...), tail...)},
		{"1.20", "Flink 1.20 SecurityOptions.java: SSL_INTERNAL_KEYSTORE_TYPE ... SSL_REST_TRUSTSTORE_TYPE", append(append(endpoint("internal", true), endpoint("rest", true)...), tail...)},
		{"", "Flink 2.x SecurityOptions.java (the newest)", append(append(endpoint("internal", true), endpoint("rest", true)...), tail...)},
	}
	for _, tt := range tests {
		t.Run("Flink "+tt.release, func(t *testing.T) {
			settings, err := Flink(jksBundle("pw"), dir, ProfileOf(flinkAt(t, tt.release, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if got := keysOf(settings); !slices.Equal(got, tt.want) {
				t.Errorf("%s:\ngot  %v\nwant %v", tt.source, got, tt.want)
			}
		})
	}
}

// TestFlinkEndpointsAndSwitches (issue 11, defects 7 and 8): endpoints a
// request turns off, and the component switches of seed 002, reach each
// release by the names it reads.
func TestFlinkEndpointsAndSwitches(t *testing.T) {
	off := false
	tests := []struct {
		name, release, source string
		s                     *spec.Spec
		want                  map[string]string // key: value; "" must be absent
	}{
		{"REST only, 2.x", "", "SecurityOptions SSL_INTERNAL_ENABLED / SSL_REST_ENABLED",
			&spec.Spec{Protocol: "TLSv1.3", Endpoints: &spec.Endpoints{REST: true}, VerifyHostname: &off},
			map[string]string{"security.ssl.internal.enabled": "false", "security.ssl.rest.enabled": "true", "security.ssl.internal.keystore": "",
				"security.ssl.protocol": "TLSv1.3", "security.ssl.verify-hostname": "false"}},
		{"web UI off, 1.5", "1.5", "seed 002: jobmanager.web.ssl.enabled overrides the web UI",
			&spec.Spec{Endpoints: &spec.Endpoints{Internal: true}},
			map[string]string{"security.ssl.enabled": "true", "jobmanager.web.ssl.enabled": "false", "security.ssl.rest.enabled": ""}},
		{"internal off, 1.5", "1.5", "seed 002: taskmanager.data/blob.service/akka.ssl.enabled",
			&spec.Spec{Endpoints: &spec.Endpoints{REST: true}},
			map[string]string{"taskmanager.data.ssl.enabled": "false", "blob.service.ssl.enabled": "false", "akka.ssl.enabled": "false"}},
		{"switches, 1.17", "1.17", "AkkaOptions.SSL_ENABLED (akka.ssl.enabled) until Flink 1.17",
			&spec.Spec{Flink: &spec.Flink{Data: &spec.Switch{Setting: "taskmanager.data.ssl.enabled"}, RPC: &spec.Switch{Setting: "akka.ssl.enabled", On: true}}},
			map[string]string{"taskmanager.data.ssl.enabled": "false", "akka.ssl.enabled": "true", "pekko.ssl.enabled": ""}},
		{"switches, 2.x", "", "RpcOptions.SSL_ENABLED: pekko.ssl.enabled from Flink 1.18",
			&spec.Spec{Flink: &spec.Flink{Blob: &spec.Switch{Setting: "blob.service.ssl.enabled"}, RPC: &spec.Switch{Setting: "akka.ssl.enabled"}}},
			map[string]string{"blob.service.ssl.enabled": "false", "pekko.ssl.enabled": "false", "akka.ssl.enabled": ""}},
		{"artifact server, 1.13", "1.13", "MesosOptions (flink-mesos), Flink 1.13 and before",
			&spec.Spec{Flink: &spec.Flink{ArtifactServer: &spec.Switch{Setting: "mesos.resourcemanager.artifactserver.ssl.enabled"}}},
			map[string]string{"mesos.resourcemanager.artifactserver.ssl.enabled": "false"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			settings, err := Flink(jksBundle("pw"), dir, ProfileOf(flinkAt(t, tt.release, tt.s)))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, s := range settings {
				got[s.Key] = s.Value
			}
			for k, v := range tt.want {
				if gv, ok := got[k]; v == "" && ok || v != "" && gv != v {
					t.Errorf("%s: %s = %q (set %v), want %q", tt.source, k, gv, ok, v)
				}
			}
		})
	}

	// A switch no release of the target reads is refused, by name.
	_, err := Flink(jksBundle("pw"), dir, ProfileOf(flinkAt(t, "1.14", &spec.Spec{Flink: &spec.Flink{ArtifactServer: &spec.Switch{Setting: "mesos.resourcemanager.artifactserver.ssl.enabled", On: true}}})))
	if err == nil || !strings.Contains(err.Error(), "mesos.resourcemanager.artifactserver.ssl.enabled: Flink 1.14 does not read it (Flink 1.14 removed Mesos support") {
		t.Errorf("artifact server on Flink 1.14: %v", err)
	}
	// Seed 002 end to end: jobmanager.web.ssl.enabled: false turns the
	// REST endpoint off in what keyship writes for 2.x.
	in, err := spec.ParseFlink([]byte("security.ssl.enabled: true\nsecurity.ssl.keystore: /ks\nsecurity.ssl.keystore-password: p\n" +
		"security.ssl.key-password: p\nsecurity.ssl.truststore: /ts\nsecurity.ssl.truststore-password: p\njobmanager.web.ssl.enabled: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if in.FlinkVersion.Version != (spec.Version{Major: 1, Minor: 5}) {
		t.Errorf("jobmanager.web.ssl.enabled infers %v, want Flink 1.5", in.FlinkVersion)
	}
	in.FlinkVersion = spec.ConsumerVersion{}
	settings, err := Flink(jksBundle("pw"), dir, ProfileOf(in))
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(settings, func(s Setting) bool { return s.Key == "security.ssl.rest.enabled" }); i < 0 || settings[i].Value != "false" {
		t.Errorf("jobmanager.web.ssl.enabled: false gave %v", settings)
	}
}

// TestFlinkSuitesMeetTheProtocol (issue 11, defect 3): security.ssl.algorithms
// is always written, with suites the protocol can use.
func TestFlinkSuitesMeetTheProtocol(t *testing.T) {
	for _, tt := range []struct {
		protocol string
		suites   []string
		want     string // a suite the list must hold, or an error
	}{
		{"TLSv1.3", nil, "TLS_AES_128_GCM_SHA256"},
		{"TLSv1.2", nil, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"},
		{"TLSv1.2", []string{"TLS_RSA_WITH_AES_128_CBC_SHA"}, "TLS_RSA_WITH_AES_128_CBC_SHA"},
		{"TLSv1.3", []string{"TLS_RSA_WITH_AES_128_CBC_SHA"}, "error: lists no TLS 1.3 cipher suite"},
		{"TLSv1.2", []string{"TLS_AES_128_GCM_SHA256"}, "error: lists only TLS 1.3 cipher suites"},
	} {
		settings, err := Flink(jksBundle("pw"), dir, ProfileOf(&spec.Spec{Protocol: tt.protocol, CipherSuites: tt.suites, CipherSuitesSetting: "security.ssl.algorithms"}))
		if want, ok := strings.CutPrefix(tt.want, "error: "); ok {
			if err == nil || !strings.Contains(err.Error(), "security.ssl.algorithms "+want) {
				t.Errorf("%s %v: %v, want %q", tt.protocol, tt.suites, err, want)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(settings, func(s Setting) bool { return s.Key == "security.ssl.algorithms" })
		if i < 0 || !slices.Contains(strings.Split(settings[i].Value, ","), tt.want) || strings.Contains(settings[i].Value, " ") {
			t.Errorf("%s %v: security.ssl.algorithms = %v", tt.protocol, tt.suites, settings)
		}
	}
	// The parser's pre-flight check names the setting and Java's words.
	_, err := spec.ParseFlink([]byte("security.ssl.internal.enabled: true\nsecurity.ssl.keystore: /k\nsecurity.ssl.keystore-password: p\n" +
		"security.ssl.key-password: p\nsecurity.ssl.truststore: /t\nsecurity.ssl.truststore-password: p\nsecurity.ssl.protocol: TLSv1.3\n" +
		"security.ssl.algorithms: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n"))
	if err == nil || !strings.Contains(err.Error(), "security.ssl.algorithms: lists no TLS 1.3 cipher suite") || !strings.Contains(err.Error(), "No appropriate protocol") {
		t.Errorf("TLSv1.3 with TLS 1.2 suites: %v", err)
	}
}

// yamlKeys returns the top-level keys of a YAML document in order, with
// duplicates (yaml.v3 keeps them in the node tree).
func yamlKeys(t *testing.T, doc []byte) []string {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal(doc, &n); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i := 0; i+1 < len(n.Content[0].Content); i += 2 {
		keys = append(keys, n.Content[0].Content[i].Value)
	}
	return keys
}

// TestFlinkOneFragmentPerRelease (issue 11, defect 1): one complete fragment
// per Flink generation, no key twice, passwords only in the 0600 file, and
// the printed text says where the fragment is and which file it goes into.
func TestFlinkOneFragmentPerRelease(t *testing.T) {
	for _, tt := range []struct {
		release, file string
	}{{"", "config.yaml"}, {"1.20", "config.yaml"}, {"1.19", "config.yaml"}, {"1.18", "flink-conf.yaml"}, {"1.5", "flink-conf.yaml"}} {
		t.Run("Flink "+tt.release, func(t *testing.T) {
			b := jksBundle(canary)
			s := flinkAt(t, tt.release, nil)
			settings, extra, err := For(ConsumerFlink, b, "/sandbox/.keyship", ProfileOf(s))
			if err != nil {
				t.Fatal(err)
			}
			if len(extra) != 1 || extra[0].Path != FlinkSecretFile || extra[0].Mode != 0o600 {
				t.Fatalf("extra files %v", extra)
			}
			keys := yamlKeys(t, extra[0].Contents)
			if !slices.Equal(keys, keysOf(settings)) || len(slices.Compact(slices.Sorted(slices.Values(keys)))) != len(keys) {
				t.Errorf("fragment keys %v, want each of %v once", keys, keysOf(settings))
			}
			printed := Print(ConsumerFlink, settings, b, ProfileOf(s), "/sandbox/.keyship")
			for line := range strings.SplitSeq(strings.TrimSpace(printed), "\n") {
				if !strings.HasPrefix(line, "#") {
					t.Errorf("printed a setting to paste beside the fragment (a key twice): %q", line)
				}
			}
			if !strings.Contains(printed, "/sandbox/.keyship/"+FlinkSecretFile) || !strings.Contains(printed, "$FLINK_CONF_DIR/"+tt.file) {
				t.Errorf("the printed text does not say where the fragment is and that it goes into %s:\n%s", tt.file, printed)
			}
			if strings.Contains(printed, canary) {
				t.Fatal("a password printed")
			}
			// Issue 11, defect 9: the CA bundle ships; say what it is for.
			if !strings.Contains(printed, "/sandbox/.keyship/ca-bundle.jks is the request's CA bundle (ca_bundle_secret) as a truststore") {
				t.Errorf("ca-bundle.jks unexplained:\n%s", printed)
			}
		})
	}
}

// TestFlinkLegacyRefusesWhatItCannotWrite: flink-conf.yaml (Flink 1.18 and
// before) cannot carry a "#", a line break or surrounding space; config.yaml
// carries anything.
func TestFlinkLegacyRefusesWhatItCannotWrite(t *testing.T) {
	for _, pw := range []string{canary + "#x", " " + canary, canary + "\n", ""} {
		bad := jksBundle("pw")
		bad.KeyPassword = []byte(pw)
		_, err := Flink(bad, dir, ProfileOf(flinkAt(t, "1.18", nil)))
		if err == nil || !strings.Contains(err.Error(), "security.ssl.internal.key-password, security.ssl.rest.key-password") ||
			!strings.Contains(err.Error(), "flink-conf.yaml") {
			t.Errorf("password %q on Flink 1.18: %v", pw, err)
		}
		if pw != "" && strings.Contains(err.Error(), strings.TrimSpace(pw)) {
			t.Errorf("the password shows in %v", err)
		}
		if pw != "" {
			if _, err := Flink(bad, dir, ProfileOf(flinkAt(t, "", nil))); err != nil {
				t.Errorf("password %q on Flink 2.x: %v", pw, err)
			}
		}
	}
	if _, err := Flink(jksBundle("pw"), "dir with #hash", ProfileOf(flinkAt(t, "1.18", nil))); err == nil || !strings.Contains(err.Error(), "security.ssl.internal.keystore,") {
		t.Errorf("a path with #: %v", err)
	}
	noTrust := jksBundle("pw")
	noTrust.Files = noTrust.Files[:1]
	noTrust.TruststorePassword = nil
	if _, err := Flink(noTrust, dir, ProfileOf(&spec.Spec{})); err == nil || !strings.Contains(err.Error(), "internal TLS needs a truststore") {
		t.Errorf("no truststore: %v", err)
	}
	if _, err := Flink(noTrust, dir, ProfileOf(&spec.Spec{Endpoints: &spec.Endpoints{REST: true}})); err != nil {
		t.Errorf("REST without truststore: %v", err)
	}
	if _, err := Flink(&materialize.Bundle{}, dir, ProfileOf(&spec.Spec{})); err == nil || !strings.Contains(err.Error(), "needs a keystore") {
		t.Errorf("no keystore: %v", err)
	}
}

// yaml11Traps are passwords that SnakeYAML's YAML 1.1 resolver (Flink
// 1.19+'s config.yaml) reads as something else when written plain, or that
// YAML cannot write plain at all.
var yaml11Traps = []string{
	"on", "off", "yes", "no", "y", "N", "True", "FALSE", "~", "null", "Null", "",
	"1:20:30", "12:30", "1e10000", "1e3", ".inf", "-.Inf", ".NaN", "0x1F", "0o17", "017", "0b101", "1_000", "+1", "0.5", "2001-12-14",
	"*alias", "&anchor", "!tag", "!!str", "%directive", "@at", "`tick", "#hash", "a: b", "a #b", "- dash", "-", "? q", "[x", "{x", "]", "}",
	"|pipe", ">fold", "'single", "\"double", "back\\slash", " lead", "trail ", "tab\there", "=", "<<", ",", "é€\u2028\ufeff",
}

// TestFlinkFragmentThroughSnakeYAML (issue 11, defects 1 and 2): Flink's own
// reader (SnakeYAML as YamlParserUtils configures it, then
// GlobalConfiguration.flatten and ConfigurationUtils.convertToString) loads
// every fragment with no duplicate key, every value the exact string keyship
// meant, passwords included, for each release; flink-conf.yaml fragments go
// through Flink 1.18's line reader.
func TestFlinkFragmentThroughSnakeYAML(t *testing.T) {
	javaPeers(t)
	check := func(t *testing.T, mode string, settings []Setting, frag []byte) {
		t.Helper()
		file := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(file, frag, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := loadFlink(t, mode, file)
		if err != nil {
			t.Fatalf("Flink cannot load the fragment: %v", err)
		}
		if len(got) != len(settings) {
			t.Errorf("Flink read %d settings, keyship wrote %d: %v", len(got), len(settings), keysOf(settings))
		}
		for _, st := range settings {
			want, wantType := []byte(st.Value), "String"
			if st.Password != nil {
				want = st.Password
			} else if mode == "standard" && (st.Value == "true" || st.Value == "false") {
				wantType = "Boolean"
			}
			g, ok := got[st.Key]
			switch {
			case !ok:
				t.Errorf("%s: not read by Flink", st.Key)
			case g.javaType != wantType || g.sum != sum(want):
				// Never the value: it may be a password.
				t.Errorf("%s: Flink reads a %s that is not the value keyship wrote (want a %s)", st.Key, g.javaType, wantType)
			}
		}
	}

	// Every trap, as passwords of one fragment, one reader run.
	var traps []Setting
	for i, pw := range yaml11Traps {
		if pw == "" {
			continue
		}
		traps = append(traps, Setting{Key: "keyship.test.password-" + strings.Repeat("x", i), Password: materialize.Sensitive(pw)})
	}
	t.Run("YAML 1.1 traps, config.yaml", func(t *testing.T) {
		check(t, "standard", traps, FlinkFragment(traps, ProfileOf(&spec.Spec{})))
	})

	for _, tt := range []struct {
		release, mode string
	}{{"", "standard"}, {"1.20", "standard"}, {"1.19", "standard"}, {"1.18", "legacy"}, {"1.5", "legacy"}} {
		t.Run("Flink "+tt.release, func(t *testing.T) {
			b := jksBundle("x")
			b.KeystorePassword, b.KeyPassword, b.TruststorePassword = []byte("on"), []byte("1:20:30"), []byte("1e10000")
			if tt.mode == "legacy" {
				// What flink-conf.yaml can carry: no "#", no surrounding space.
				b.TruststorePassword = []byte("a: b *&!%@`")
			}
			s := flinkAt(t, tt.release, &spec.Spec{Protocol: "TLSv1.3", Flink: &spec.Flink{Data: &spec.Switch{On: true}}})
			settings, extra, err := For(ConsumerFlink, b, "/sandbox/.keyship dir", ProfileOf(s))
			if err != nil {
				t.Fatal(err)
			}
			check(t, tt.mode, settings, extra[0].Contents)
		})
	}

	// The harness fails on what Flink refuses: the settings printed and the
	// fragment appended, as keyship told users before, give a key twice.
	t.Run("a key twice is refused", func(t *testing.T) {
		b := jksBundle("pw")
		settings, extra, err := For(ConsumerFlink, b, dir, ProfileOf(&spec.Spec{}))
		if err != nil {
			t.Fatal(err)
		}
		var printed []byte
		for _, st := range settings {
			if st.Password == nil {
				printed = append(printed, st.Key+": "+st.Value+"\n"...)
			}
		}
		file := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(file, append(printed, extra[0].Contents...), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadFlink(t, "standard", file); err == nil || !strings.Contains(err.Error(), "found duplicate key") {
			t.Errorf("SnakeYAML with duplicates refused: %v", err)
		}
	})
}

// writeFlinkSandbox ships b and the Flink fragment of s into <root>/.keyship
// and returns root and the fragment's path.
func writeFlinkSandbox(t *testing.T, b *materialize.Bundle, s *spec.Spec) (string, string) {
	t.Helper()
	_, extra, err := For(ConsumerFlink, b, dir, ProfileOf(s))
	if err != nil {
		t.Fatal(err)
	}
	root := shipSandbox(t, b, materialize.File{Path: extra[0].Path, Mode: extra[0].Mode, Contents: extra[0].Contents})
	return root, filepath.Join(root, dir, FlinkSecretFile)
}

// realBundle is a JKS bundle of a real key and certificate for host,
// issued by a test CA, and the CA's truststore, with distinct passwords, as
// keyship's materialize writes them.
func realBundle(t *testing.T, host string, opts ...testca.Option) *materialize.Bundle {
	t.Helper()
	return realBundleWith(t, host, []byte("on"), []byte("1:20:30"), []byte("1e10000"), opts...)
}

// realBundleWith is realBundle with the given store, key and truststore
// passwords.
func realBundleWith(t *testing.T, host string, storePass, keyPass, trustPass []byte, opts ...testca.Option) *materialize.Bundle {
	t.Helper()
	ca, err := testca.NewCA("keyship conf test CA", opts...)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(host, append([]testca.Option{testca.WithDNS(host)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	b := &materialize.Bundle{KeystorePassword: storePass, KeyPassword: keyPass, TruststorePassword: trustPass}
	ks, err := keystore.JKSKeystore("node", leaf.Key, leaf.Chain, b.KeystorePassword, b.KeyPassword)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := keystore.JKSTruststore(keystore.AliasCertificates([]*x509.Certificate{ca.Cert}), b.TruststorePassword)
	if err != nil {
		t.Fatal(err)
	}
	b.Files = []materialize.File{
		{Path: materialize.KeystoreJKS, Role: materialize.RoleKeystore, Mode: 0o600, Contents: ks},
		{Path: materialize.TruststoreJKS, Role: materialize.RoleTruststore, Mode: 0o600, Contents: ts},
	}
	return b
}

// TestFlinkHandshake (issue 11, defect 3): a JSSE handshake configured the
// way Flink configures its engines (SSLUtils: setEnabledProtocols of
// security.ssl.protocol, setEnabledCipherSuites of security.ssl.algorithms
// split on ",", mutual authentication), from the fragment keyship writes,
// read by Flink's own reader, with stores keyship built.
func TestFlinkHandshake(t *testing.T) {
	javaPeers(t)
	const host = "tm1.example.com"
	ec := realBundle(t, host)
	tests := []struct {
		name, release, mode, protocol string
		b                             *materialize.Bundle
		edit                          func([]byte) []byte
		want                          string
	}{
		{"TLSv1.3, Flink 2.x", "", "standard", "TLSv1.3", ec, nil, "OK TLSv1.3"},
		{"TLSv1.3, Flink 1.18", "1.18", "legacy", "TLSv1.3", ec, nil, "OK TLSv1.3"},
		{"TLSv1.2, EC key, Flink 1.20", "1.20", "standard", "TLSv1.2", ec, nil, "OK TLSv1.2"},
		// Without keyship's security.ssl.algorithms, Flink's default
		// (TLS_RSA_WITH_AES_128_CBC_SHA, SecurityOptions.SSL_ALGORITHMS)
		// applies: what keyship wrote before.
		{"TLSv1.3 with Flink's default suites", "", "standard", "TLSv1.3", ec, withoutAlgorithms,
			"No appropriate protocol (protocol is disabled or cipher suites are inappropriate)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := flinkAt(t, tt.release, &spec.Spec{Protocol: tt.protocol})
			root, frag := writeFlinkSandbox(t, tt.b, s)
			if tt.edit != nil {
				data, err := os.ReadFile(frag)
				if err != nil {
					t.Fatal(err)
				}
				frag = filepath.Join(t.TempDir(), "edited.yaml")
				if err := os.WriteFile(frag, tt.edit(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			out, _ := runJava(t, root, nil, "FlinkHandshake", tt.mode, frag, host)
			if !strings.Contains(out, tt.want) {
				t.Errorf("handshake: %s\nwant %q", strings.TrimSpace(out), tt.want)
			}
		})
	}
}

// withoutAlgorithms drops security.ssl.algorithms from a fragment.
func withoutAlgorithms(frag []byte) []byte {
	var out []string
	for line := range strings.SplitSeq(string(frag), "\n") {
		if !strings.HasPrefix(line, "security.ssl.algorithms:") {
			out = append(out, line)
		}
	}
	return []byte(strings.Join(out, "\n"))
}
