package spec

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// checkParsed fails on a result no parser may return: a Spec with an error,
// an empty *Errors, or a Spec that breaks the invariants every dialect keeps.
func checkParsed(t *testing.T, s *Spec, err error) {
	t.Helper()
	if err != nil {
		if s != nil {
			t.Fatalf("Spec and error both returned")
		}
		var errs *Errors
		if errors.As(err, &errs) {
			if len(errs.List) == 0 {
				t.Fatalf("empty *Errors")
			}
			for _, fe := range errs.List {
				if fe.Field == "" || fe.Reason == "" {
					t.Fatalf("FieldError without field or reason: %#v", fe)
				}
			}
		}
		return
	}
	if !slices.Contains(Protocols, s.Protocol) {
		t.Fatalf("protocol %q", s.Protocol)
	}
	if !slices.Contains([]string{StoreTypeJKS, StoreTypePKCS12, StoreTypePEM}, s.StoreType) {
		t.Fatalf("store type %q", s.StoreType)
	}
	ks := s.Keystore
	if ks.Secret.IsSet() == (ks.Key != nil) || (ks.Key == nil) != (ks.Certificate == nil) {
		t.Fatalf("the keystore is not exactly one of a store or a key with its certificate: %s", dump(withoutValues(s)))
	}
	if ks.Secret.IsSet() && !ks.Password.IsSet() {
		t.Fatalf("a keystore without a password")
	}
	if s.Truststore != nil && s.StoreType != StoreTypePEM && !s.Truststore.Password.IsSet() {
		t.Fatalf("a truststore without a password")
	}
	for _, f := range s.Fields() {
		if f.Name == "" {
			t.Fatalf("a field without a name")
		}
		back, err := ParseRef(f.Ref.String())
		if err != nil || back != f.Ref {
			t.Fatalf("%s: ref %+v does not round-trip: %+v, %v", f.Name, f.Ref, back, err)
		}
	}
}

// passwordSettings are the settings that hold literal passwords.
var passwordSettings = []string{
	sparkKeyStorePassword, sparkKeyPassword, sparkTrustStorePassword,
	"spark.ssl.ui.keyStorePassword", "spark.ssl.mesos.keyPassword", "spark.ssl.submission.trustStorePassword",
	flagKeystorePassword, flagPrivateKeyPassword, flagTruststorePassword,
	"security.ssl.keystore-password", "security.ssl.key-password", "security.ssl.truststore-password",
	"security.ssl.internal.keystore-password", "security.ssl.internal.key-password", "security.ssl.internal.truststore-password",
	"security.ssl.rest.keystore-password", "security.ssl.rest.key-password", "security.ssl.rest.truststore-password",
}

func FuzzParseSpark(f *testing.F) {
	f.Add([]byte(seed003Properties))
	f.Add([]byte(seed003Options))
	f.Add([]byte("--keystore-secret-path /spark/keystore --keystore-password '${secret:/spark/ks_pw}' --private-key-password x\n" +
		"--truststore-secret-path=/spark/ts --truststore-password=${secret:vault:s/x#p@2} -c spark.ssl.protocol=TLSv1.3"))
	f.Add([]byte("spark.ssl.enabled true\nspark.ssl.keyStore vault:a#b@1\nspark.ssl.keyStorePassword ${env:X}\nspark.ssl.trustStoreType PKCS12\n"))
	f.Add([]byte("spark.ssl.enabled=true\\\n  \nspark.ssl.keystore=\\u00e9\nspark.ssl.ui.x=1\n!c\n-Dspark.ssl.keyStoreBase64=AAAA\n--conf\n"))
	f.Add([]byte(`{"security":{"ssl":{"enabled":"true","keyStoreBase64":"AA==","keyStorePassword":1,"x":null}}}`))
	f.Add([]byte("spark.ssl.mesos.enabled=true\nspark.ssl.mesos.keyStore=/k\nspark.ssl.mesos.keyStorePassword=p\nspark.ssl.ui.keyStorePassword=q\n" +
		"spark.ssl.protocol=TLS\nspark.ssl.rpc.enabledAlgorithms=TLS_AES_128_GCM_SHA256,\n"))
	f.Add([]byte(`{"security":{"mesos":{"ssl":{"enabled":true}},"ssl":{"enabled":true,"keyStoreBase64":"AA==","keyStorePassword":"p"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data, DialectSpark)
		checkParsed(t, s, err)
		// The same settings with every password replaced by the canary:
		// whatever else is wrong, no error may show it.
		props := readSparkProperties(data).vals
		for _, k := range passwordSettings {
			if _, ok := props[k]; ok {
				props[k] = canary
			}
		}
		s, err = ParseSpark(props)
		checkParsed(t, s, err)
		if err != nil && strings.Contains(err.Error(), canary) {
			t.Fatalf("a password shows in %v", err)
		}
	})
}

func FuzzParseFlink(f *testing.F) {
	f.Add([]byte(seed002Standalone))
	f.Add([]byte(seed002YARN))
	f.Add([]byte("security:\n  ssl:\n    internal: {enabled: true, keystore: /k, keystore-password: p^1, key-password: k, truststore: /t, truststore-password: t}\n" +
		"    rest:\n      enabled: 'true'\n      keystore: ${secret:/k}\n      keystore-type: PKCS12\n"))
	f.Add([]byte("security.ssl.enabled: true\nsecurity.ssl.enabled: false\nsecurity.ssl.protocol: [x]\nsecurity.ssl.keystore: &a /x\nsecurity.ssl.truststore: *a\n"))
	f.Add([]byte("security.ssl.rest.enabled: 1\nsecurity.ssl.verify-hostname: ~\n? [a]\n: b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseFlink(data)
		checkParsed(t, s, err)
		if err == nil {
			return
		}
		// A password marked with "^" that appears once in the document must
		// not come back in the error.
		flat, ferr := flattenFlink(data)
		if ferr != nil {
			return
		}
		for _, k := range passwordSettings {
			v := flat.vals[k].text
			if len(v) < 4 || !strings.Contains(v, "^") || strings.Count(string(data), v) != 1 {
				continue
			}
			if strings.Contains(err.Error(), v) {
				t.Fatalf("the value of %s shows in %v", k, err)
			}
		}
	})
}

func FuzzParseLibprocess(f *testing.F) {
	f.Add([]byte(seed004Downgrade))
	f.Add([]byte(seed004Strict))
	f.Add([]byte("export SSL_ENABLED=1 SSL_KEY_FILE='/k' SSL_CERT_FILE=\"${secret:vault:x#c}\"\nLIBPROCESS_SSL_VERIFY_DEPTH=9\n" +
		"LIBPROCESS_SSL_ENABLE_TLS_V1_2=0 LIBPROCESS_SSL_ENABLE_TLS_V1_3=1 LIBPROCESS_SSL_CA_FILE=/ca \\\n LIBPROCESS_SSL_VERIFY_CERTS=1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data, DialectLibprocess)
		checkParsed(t, s, err)
		if err == nil && (s.Keystore.Key == nil || s.StoreType != StoreTypePEM || s.Libprocess == nil) {
			t.Fatalf("libprocess Spec %s", dump(withoutValues(s)))
		}
	})
}

func FuzzDetect(f *testing.F) {
	for _, d := range []string{seed000, seed002Standalone, seed003Options, seed003Properties, seed004Downgrade,
		"{security.ssl.enabled: true}", "security.ssl.enabled: true\nspark.ssl.enabled: true\n", `{"security":{"tls":{},"ssl":{}}}`, ""} {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Detect(data)
		s, perr := Parse(data, "")
		checkParsed(t, s, perr)
		if err != nil {
			if d != "" || perr == nil || perr.Error() != err.Error() {
				t.Fatalf("Detect = %q, %v; Parse = %v", d, err, perr)
			}
			return
		}
		if !slices.Contains(Dialects, d) {
			t.Fatalf("Detect = %q", d)
		}
		s2, perr2 := Parse(data, d)
		if (perr == nil) != (perr2 == nil) || (perr != nil && perr.Error() != perr2.Error()) {
			t.Fatalf("Parse(\"\") and Parse(%q) differ: %v / %v", d, perr, perr2)
		}
		if perr == nil && !reflect.DeepEqual(s, s2) {
			t.Fatalf("Parse(\"\") and Parse(%q) give different Specs", d)
		}
	})
}
