package spec

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// The seeds' own examples, as the users run them today.

// seed002Standalone is the flink-conf of seed 002's "Example: Standalone
// Deployment".
const seed002Standalone = `security.ssl.enabled: true
security.ssl.keystore: /etc/node.keystore
security.ssl.keystore-password: password
security.ssl.key-password: password
security.ssl.truststore: /etc/ca.truststore
security.ssl.truststore-password: password
`

// seed002YARN is the flink-conf of seed 002's "Example: YARN Deployment",
// with the stores shipped by -yt from certs/.
const seed002YARN = `security.ssl.enabled: true
security.ssl.keystore: certs/node.keystore
security.ssl.keystore-password: password
security.ssl.key-password: password
security.ssl.truststore: certs/ca.truststore
security.ssl.truststore-password: password
`

// seed003Options is the DC/OS Spark package options of seed 003, made valid
// JSON: closed braces, a straight closing quote, and the elided base64 of the
// seed ("/u3+7QAAAAIAAAACAAAAAgA...", a JKS magic) padded to valid base64.
const seed003Options = `{
  "security": {
    "ssl": {
      "enabled": true,
      "keyStoreBase64": "/u3+7QAAAAIAAAACAAAAAgA=",
      "keyStorePassword": "secret",
      "keyPassword": "secret"
    }
  }
}`

// seed003Properties says the same as seed003Options as spark-defaults.conf
// lines (Spark's "key value" form).
const seed003Properties = `# seed 003, as spark-defaults.conf
spark.ssl.enabled          true
spark.ssl.keyStoreBase64   /u3+7QAAAAIAAAACAAAAAgA=
spark.ssl.keyStorePassword secret
spark.ssl.keyPassword      secret
`

// seed004Downgrade and seed004Strict are seed 004's two restart commands of
// "Upgrading Your Cluster", placeholders and all.
const (
	seed004Downgrade = `LIBPROCESS_SSL_ENABLED=true LIBPROCESS_SSL_SUPPORT_DOWNGRADE=true LIBPROCESS_SSL_KEY_FILE=<path-to-your-private-key> LIBPROCESS_SSL_CERT_FILE=<path-to-your-certificate> <Any other LIBPROCESS_SSL_* environment variables you may choose> <your-component (e.g. bin/master.sh)> <your-flags>`
	seed004Strict    = `LIBPROCESS_SSL_ENABLED=true LIBPROCESS_SSL_SUPPORT_DOWNGRADE=false LIBPROCESS_SSL_KEY_FILE=<path-to-your-private-key> LIBPROCESS_SSL_CERT_FILE=<path-to-your-certificate> <Any other LIBPROCESS_SSL_* environment variables you may choose> <your-component (e.g. bin/master.sh)> <your-flags>`
)

// withoutNames returns a deep copy of s with every Field.Name cleared, so
// that Specs from different dialects compare by meaning.
func withoutNames(s *Spec) *Spec {
	if s == nil {
		return nil
	}
	cp := *s
	cp.ProtocolSetting = ""
	cp.Dialect = ""
	// Which release and which namespaces or components a request names
	// are its dialect's, not what the stores are.
	cp.CipherSuitesSetting = ""
	cp.SparkVersion, cp.FlinkVersion = ConsumerVersion{}, ConsumerVersion{}
	cp.Spark, cp.Flink, cp.Warnings = nil, nil, nil
	clear := func(f *Field) *Field {
		if f == nil {
			return nil
		}
		c := *f
		c.Name = ""
		return &c
	}
	store := func(st Store) Store {
		st.Secret = *clear(&st.Secret)
		st.Password = *clear(&st.Password)
		st.KeyPassword = clear(st.KeyPassword)
		st.Key = clear(st.Key)
		st.Certificate = clear(st.Certificate)
		if st.Issue != nil {
			is := *st.Issue
			is.Field = *clear(&is.Field)
			st.Issue = &is
		}
		return st
	}
	cp.Keystore = store(s.Keystore)
	if s.Truststore != nil {
		ts := store(*s.Truststore)
		cp.Truststore = &ts
	}
	cp.CABundle = clear(s.CABundle)
	return &cp
}

// sameSpec fails unless a and b mean the same, whatever their dialects.
func sameSpec(t *testing.T, what string, a, b *Spec) {
	t.Helper()
	if x, y := withoutNames(a), withoutNames(b); !reflect.DeepEqual(x, y) {
		t.Errorf("%s: the Specs differ:\n%s\n%s", what, dump(x), dump(y))
	}
}

// dump prints a Spec with its inline values shown (test values only).
func dump(s *Spec) string {
	if s == nil {
		return "<nil>"
	}
	f := func(f *Field) string {
		if f == nil {
			return "-"
		}
		if f.Inline() {
			return fmt.Sprintf("%s=inline(%q,%s)", f.Name, string(f.Value), f.Encoding)
		}
		return fmt.Sprintf("%s=%s", f.Name, f.Ref)
	}
	st := func(s *Store) string {
		if s == nil {
			return "-"
		}
		return fmt.Sprintf("{secret %s pw %s keypw %s key %s cert %s}", f(&s.Secret), f(&s.Password), f(s.KeyPassword), f(s.Key), f(s.Certificate))
	}
	return fmt.Sprintf("ks %s ts %s ca %s proto %s type %s hosts %v verify %v endpoints %+v libprocess %+v",
		st(&s.Keystore), st(s.Truststore), f(s.CABundle), s.Protocol, s.StoreType, s.Hosts, s.VerifyHostname, s.Endpoints, s.Libprocess)
}

func mustParse(t *testing.T, doc, dialect string) *Spec {
	t.Helper()
	s, err := Parse([]byte(doc), dialect)
	if err != nil {
		t.Fatalf("Parse(%s):\n%s\n%v", dialect, doc, err)
	}
	return s
}

// TestSeedsMeanTheSame parses the seeds' examples in their own dialects and
// the same requests written in the other dialects, and checks that each
// group gives one Spec.
func TestSeedsMeanTheSame(t *testing.T) {
	seed000, err := ParseDCOS([]byte(seed000))
	if err != nil {
		t.Fatal(err)
	}
	// Spark and Flink have no CA bundle setting (DC/OS requires one with a
	// truststore): compare with seed 000's Spec without it.
	seed000NoCA := *seed000
	seed000NoCA.CABundle = nil

	groups := []struct {
		name string
		want *Spec
		docs map[string]string // dialect-tagged documents: "dialect:label" -> doc
	}{
		{"seed 000 refs", &seed000NoCA, map[string]string{
			"spark:dcos-spark flags": `--keystore-secret-path /spark/keystore --keystore-password '${secret:/spark/keystore_password}' \
  --private-key-password '${secret:/spark/key_password}' --truststore-secret-path /spark/truststore \
  --truststore-password '${secret:/spark/truststore_password}' --conf spark.ssl.protocol=TLSv1.2 --class org.example.App app.jar`,
			"spark:spark-defaults.conf": `spark.ssl.enabled true
spark.ssl.keyStore=/spark/keystore
spark.ssl.keyStorePassword=${secret:/spark/keystore_password}
spark.ssl.keyPassword ${secret:/spark/key_password}
spark.ssl.trustStore: /spark/truststore
spark.ssl.trustStorePassword ${secret:/spark/truststore_password}
spark.ssl.keyStoreType JKS
spark.executor.memory 4g`,
			"flink:legacy keys": `security.ssl.enabled: true
security.ssl.keystore: /spark/keystore
security.ssl.keystore-password: ${secret:/spark/keystore_password}
security.ssl.key-password: ${secret:/spark/key_password}
security.ssl.truststore: /spark/truststore
security.ssl.truststore-password: ${secret:/spark/truststore_password}
security.ssl.protocol: TLSv1.2`,
			"flink:internal and rest keys, nested": `security:
  ssl:
    internal:
      enabled: true
      keystore: "${secret:/spark/keystore}"
      keystore-password: ${secret:/spark/keystore_password}
      key-password: ${secret:/spark/key_password}
      truststore: /spark/truststore
      truststore-password: ${secret:/spark/truststore_password}
    rest:
      enabled: true
      keystore: /spark/keystore
      keystore-password: ${secret:/spark/keystore_password}
      key-password: ${secret:/spark/key_password}
      keystore-type: jks`,
		}},
		{"seed 002 standalone", nil, map[string]string{
			"flink:seed 002 standalone": seed002Standalone,
			"spark:the same in Spark": `--conf spark.ssl.enabled=true --conf spark.ssl.keyStore=/etc/node.keystore --conf spark.ssl.keyStorePassword=password
--conf spark.ssl.keyPassword=password --conf spark.ssl.trustStore=/etc/ca.truststore --conf spark.ssl.trustStorePassword=password`,
			"flink:config.yaml of newer Flink": `security.ssl:
  internal: {enabled: true, keystore: /etc/node.keystore, keystore-password: password, key-password: password, truststore: /etc/ca.truststore, truststore-password: password}
  rest: {enabled: true, keystore: /etc/node.keystore, keystore-password: "password", key-password: 'password'}`,
		}},
		{"seed 002 YARN", nil, map[string]string{
			"flink:seed 002 YARN": seed002YARN,
			"spark:-D properties": `-Dspark.ssl.enabled=true -Dspark.ssl.keyStore=certs/node.keystore -Dspark.ssl.keyStorePassword=password -Dspark.ssl.keyPassword=password -Dspark.ssl.trustStore=certs/ca.truststore -Dspark.ssl.trustStorePassword=password`,
		}},
		{"seed 003", nil, map[string]string{
			"spark:package options JSON": seed003Options,
			"spark:spark-defaults.conf":  seed003Properties,
			"spark:--conf pairs":         `--conf spark.ssl.enabled=true --conf spark.ssl.keyStoreBase64=/u3+7QAAAAIAAAACAAAAAgA= --conf=spark.ssl.keyStorePassword=secret -c spark.ssl.keyPassword=secret`,
		}},
		{"seed 004", nil, map[string]string{
			"libprocess:LIBPROCESS_SSL_": seed004Downgrade,
			"libprocess:legacy SSL_":     strings.ReplaceAll(seed004Downgrade, "LIBPROCESS_SSL_", "SSL_"),
			"libprocess:an env file": `# /etc/mesos/ssl.env
export LIBPROCESS_SSL_ENABLED=1
LIBPROCESS_SSL_SUPPORT_DOWNGRADE="true"
LIBPROCESS_SSL_KEY_FILE='<path-to-your-private-key>'
SSL_CERT_FILE=<path-to-your-certificate>`,
		}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			want, wantFrom := g.want, "seed 000's security.tls JSON"
			for label, doc := range g.docs {
				dialect, _, _ := strings.Cut(label, ":")
				got := mustParse(t, doc, dialect)
				if d, err := Detect([]byte(doc)); err != nil || d != dialect {
					t.Errorf("%s: Detect = %q, %v; want %s", label, d, err, dialect)
				}
				if want == nil {
					want, wantFrom = got, label
					continue
				}
				sameSpec(t, fmt.Sprintf("%s vs %s", label, wantFrom), got, want)
			}
		})
	}
}

// TestSeedSpecs checks each seed's Spec field by field.
func TestSeedSpecs(t *testing.T) {
	inline := func(name, v string) Field { return Field{Name: name, Value: Sensitive(v)} }
	ref := func(name, path string) Field { return Field{Name: name, Ref: Ref{Path: path}} }

	t.Run("002 standalone", func(t *testing.T) {
		got := mustParse(t, seed002Standalone, DialectFlink)
		want := &Spec{
			Keystore: Store{
				Secret:      ref("security.ssl.keystore", "/etc/node.keystore"),
				Password:    inline("security.ssl.keystore-password", "password"),
				KeyPassword: new(inline("security.ssl.key-password", "password")),
			},
			Truststore: &Store{
				Secret:   ref("security.ssl.truststore", "/etc/ca.truststore"),
				Password: inline("security.ssl.truststore-password", "password"),
			},
			Protocol:        "TLSv1.2",
			ProtocolSetting: "security.ssl.protocol",
			StoreType:       "jks",
			Dialect:         DialectFlink,
		}
		// security.ssl.enabled: the newest Flink that reads it is 1.20.
		if got.FlinkVersion.Version != (Version{1, 20}) || !strings.Contains(got.FlinkVersion.From, "security.ssl.enabled") {
			t.Errorf("FlinkVersion %+v, want 1.20 inferred from security.ssl.enabled", got.FlinkVersion)
		}
		want.FlinkVersion = got.FlinkVersion
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got\n%s\nwant\n%s", dump(got), dump(want))
		}
		if n := len(got.Fields()); n != 2 {
			t.Errorf("Fields() = %d fields, want the 2 store refs (the passwords are inline)", n)
		}
	})
	t.Run("002 YARN paths are refs relative to the default backend", func(t *testing.T) {
		got := mustParse(t, seed002YARN, DialectFlink)
		if got.Keystore.Secret.Ref != (Ref{Path: "certs/node.keystore"}) || got.Truststore.Secret.Ref != (Ref{Path: "certs/ca.truststore"}) {
			t.Errorf("got %s", dump(got))
		}
	})
	t.Run("003 inline base64 keystore", func(t *testing.T) {
		got := mustParse(t, seed003Options, DialectSpark)
		ks := got.Keystore.Secret
		if ks.Name != "security.ssl.keyStoreBase64" || string(ks.Value) != "/u3+7QAAAAIAAAACAAAAAgA=" || ks.Encoding != EncodingBase64 {
			t.Errorf("keystore %s", dump(got))
		}
		if got.Keystore.Password.Name != "security.ssl.keyStorePassword" || string(got.Keystore.Password.Value) != "secret" {
			t.Errorf("password %s", dump(got))
		}
		if got.Truststore != nil || len(got.Fields()) != 0 {
			t.Errorf("got %s, Fields %v; want no truststore and nothing to resolve", dump(got), got.Fields())
		}
	})
	t.Run("004 PEM files and switches", func(t *testing.T) {
		got := mustParse(t, seed004Strict, DialectLibprocess)
		if got.Keystore.Key == nil || got.Keystore.Key.Name != "LIBPROCESS_SSL_KEY_FILE" || got.Keystore.Key.Ref.Path != "<path-to-your-private-key>" {
			t.Errorf("key %s", dump(got))
		}
		if got.Keystore.Certificate == nil || got.Keystore.Certificate.Ref.Path != "<path-to-your-certificate>" {
			t.Errorf("cert %s", dump(got))
		}
		if got.Keystore.Secret.IsSet() || got.Truststore != nil || got.StoreType != StoreTypePEM || got.Protocol != "TLSv1.2" {
			t.Errorf("got %s", dump(got))
		}
		if l := got.Libprocess; l == nil || l.SupportDowngrade == nil || *l.SupportDowngrade || l.VerifyCert != nil {
			t.Errorf("switches %+v", got.Libprocess)
		}
		down := mustParse(t, seed004Downgrade, DialectLibprocess)
		if *down.Libprocess.SupportDowngrade != true {
			t.Errorf("downgrade: %+v", down.Libprocess)
		}
	})
}
