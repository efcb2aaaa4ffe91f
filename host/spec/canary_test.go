package spec

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// canary is a password planted in requests; it must never come back in an
// error, a formatted Spec or a log line.
const canary = "CANARY-pw-5f2e9b"

// TestNoValueInErrors plants the canary in every kind of setting whose value
// is not a ref (passwords, inline stores, switches, settings in the wrong
// place, duplicates, broken lines) of every dialect, and checks that no error
// and no formatted Spec shows it.
func TestNoValueInErrors(t *testing.T) {
	c, c2 := canary, canary+"-other"
	docs := map[string][]string{
		DialectSpark: {
			"spark.ssl.enabled=true\nspark.ssl.keyStorePassword=" + c,
			"spark.ssl.enabled=" + c + "\nspark.ssl.keyStore=/ks\nspark.ssl.keyStorePassword=p",
			"spark.ssl.enabled=true\nspark.ssl.keyStore=/ks\nspark.ssl.keyStorePassword=p\nspark.ssl.protocol=" + c,
			"spark.ssl.enabled=true\nspark.ssl.keyStore=/ks\nspark.ssl.keyStorePassword=p\nspark.ssl.keyStoreType=" + c + "\nspark.ssl.trustStoreType=" + c2,
			"spark.ssl.enabled=true\nspark.ssl.keyStoreBase64=" + c + "!\nspark.ssl.keyStorePassword=p",
			"spark.ssl.enabled=true\nspark.ssl.keyStoreBase64=" + c + "\nspark.ssl.trustStoreBase64=" + c,
			"spark.ssl.enabled=true\nspark.ssl.keyStore=/ks\nspark.ssl.keyStorePass=" + c,
			"spark.ssl.keyPassword=" + c + "\nspark.ssl.keyPassword=" + c2,
			"--keystore-secret-path /ks --keystore-password " + c + " --conf spark.ssl.keyStorePassword=" + c2,
			"--keystore-secret-path /ks --keystore-password '" + c,
			"--truststore-password " + c + " --keystore-password=" + c,
			"--keystore-secret-path /ks --keystore-pasword " + c,
			"spark.ssl.enabled=true\nspark.ssl.keyStore=/ks\nspark.ssl.keyStorePassword=${env:" + c + "}",
			`{"security":{"ssl":{"enabled":true,"keyStoreBase64":"` + c + `","keyStorePassword":["` + c + `"],"keyPassword":{"v":"` + c + `"}}}}`,
			`{"security":{"ssl":{"enabled":"` + c + `","keyStorePassword":"` + c + `","keyStorePassword":"` + c2 + `"}}}`,
			`{"security":{"ssl":{"enabled":true,"keyStoreBase64":"AAAA","keyStorePassword":"` + c + `"`,
		},
		DialectFlink: {
			"security.ssl.enabled: true\nsecurity.ssl.keystore-password: " + c + "\nsecurity.ssl.key-password: " + c,
			"security.ssl.enabled: " + c,
			seed002Standalone + "security.ssl.protocol: " + c + "\nsecurity.ssl.verify-hostname: " + c + "\nsecurity.ssl.internal.keystore-type: " + c,
			seed002Standalone + "security.ssl.rest.key-password: " + c + "\nsecurity.ssl.rest.keystore-password: " + c2,
			seed002Standalone + "security.ssl.key-password: " + c,
			seed002Standalone + "security.ssl.keystore-pasword: " + c + "\nsecurity.ssl.truststore-password: [" + c + "]",
			"security.ssl.key-password: " + c + ": x\n",
			"security.ssl.key-password: '" + c + "\n",
			"- " + c + "\n",
		},
		DialectLibprocess: {
			"LIBPROCESS_SSL_ENABLED=" + c,
			"LIBPROCESS_SSL_ENABLED=true LIBPROCESS_SSL_KEY_FILE=/k LIBPROCESS_SSL_CERT_FILE=/c LIBPROCESS_SSL_VERIFY_DEPTH=" + c +
				" LIBPROCESS_SSL_HOSTNAME_VALIDATION_SCHEME=" + c + " LIBPROCESS_SSL_VERIFY_CERT=" + c,
			"LIBPROCESS_SSL_CIPHERS=" + c + "\nLIBPROCESS_SSL_CIPHERS=" + c2,
			"LIBPROCESS_SSL_ENABLED='" + c,
		},
		"": {
			"hello " + c,
			`{"` + c + `": 1}`,
			c + ": " + c,
		},
	}
	for dialect, list := range docs {
		for i, doc := range list {
			s, err := Parse([]byte(doc), dialect)
			var logged strings.Builder
			slog.New(slog.NewTextHandler(&logged, nil)).Info("spec", "spec", s, "err", err)
			out := fmt.Sprintf("%v %+v %#v %s", err, s, s, logged.String())
			if s != nil {
				out += dump(withoutValues(s))
			}
			if strings.Contains(out, canary) {
				t.Errorf("%s #%d: the canary shows:\n%s", dialect, i, out)
			}
			if err == nil && dialect != DialectSpark {
				t.Errorf("%s #%d: no error for %q", dialect, i, doc)
			}
		}
	}
}

// withoutValues returns s with its inline values replaced by their length, so
// that dump can print everything else.
func withoutValues(s *Spec) *Spec {
	cp := *withoutNames(s)
	for _, f := range []*Field{&cp.Keystore.Secret, &cp.Keystore.Password, cp.Keystore.KeyPassword} {
		if f != nil && f.Inline() {
			f.Value = Sensitive(fmt.Sprint(len(f.Value)))
		}
	}
	if cp.Truststore != nil {
		for _, f := range []*Field{&cp.Truststore.Secret, &cp.Truststore.Password} {
			if f.Inline() {
				f.Value = Sensitive(fmt.Sprint(len(f.Value)))
			}
		}
	}
	return &cp
}
