package materialize

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/keyship/keyship/host/materialize/jssetest"
)

// TestSuitesFitTheKey (issue 22, item 7): a key that none of the cipher
// suites the consumer enables can use is refused before anything ships, and
// the check agrees with JSSE, which Flink (SSLUtils.createSSLServerSocket-
// Factory / getEnabledCipherSuites: setEnabledCipherSuites of
// security.ssl.algorithms, Flink 1.6–2.x) and Spark (SSLOptions.scala,
// enabledAlgorithms: supportedAlgorithms, Spark 1.x–4.x) configure to
// enable exactly the listed suites: every case runs the handshake too, with
// the stores keyship built (or, where keyship now refuses, the same stores
// built without the suites), and keyship refuses exactly when Java fails.
func TestSuitesFitTheKey(t *testing.T) {
	const (
		rsa12   = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
		rsaKx   = "TLS_RSA_WITH_AES_128_CBC_SHA"
		ecdsa12 = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
		tls13   = "TLS_AES_128_GCM_SHA256"
	)
	rsaLeaf := rsaFx()
	ec := fx()
	tests := []struct {
		name, setting, protocol string
		rsa                     bool
		suites                  []string
		refused                 bool
	}{
		{"EC key, RSA suites only (Flink's default suite)", "security.ssl.algorithms", "TLSv1.2", false, []string{rsaKx}, true},
		{"EC key, ECDHE_RSA suites only", "spark.ssl.enabledAlgorithms", "TLSv1.2", false, []string{rsa12, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}, true},
		{"RSA key, ECDSA suites only", "security.ssl.algorithms", "TLSv1.2", true, []string{ecdsa12}, true},
		{"EC key, one ECDSA suite among RSA ones", "security.ssl.algorithms", "TLSv1.2", false, []string{rsa12, ecdsa12}, false},
		{"RSA key, RSA key exchange", "spark.ssl.enabledAlgorithms", "TLSv1.2", true, []string{rsaKx}, false},
		{"EC key, TLSv1.3 with RSA suites beside a TLS 1.3 one", "security.ssl.algorithms", "TLSv1.3", false, []string{tls13, rsa12}, false},
		{"RSA key, TLSv1.3 suite only", "security.ssl.algorithms", "TLSv1.3", true, []string{tls13}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, chain := ec.node.Key, ec.node.Chain
			host := "node1.example.com"
			if tt.rsa {
				key, chain = rsaLeaf.Key, rsaLeaf.Chain
			}
			in := goodInputs(t)
			in.keystore = must(JKSKeystore("node", key, chain, []byte(storePass), []byte(keyPass)))
			in.truststore = must(JKSTruststore([]*x509.Certificate{chain[len(chain)-1]}, []byte(trustPass)))
			s := dcosSpec()
			s.CABundle = nil
			s.Protocol = tt.protocol
			s.CipherSuites, s.CipherSuitesSetting = tt.suites, tt.setting
			b, err := Build(context.Background(), s, in.secrets(s), Options{})
			if tt.refused {
				if err == nil || !strings.Contains(err.Error(), tt.setting) || !strings.Contains(err.Error(), "no cipher suites in common") {
					t.Fatalf("keyship: %v; want a refusal naming %s and Java's words", err, tt.setting)
				}
				checkProblems(t, err, testPasswords, problem{tt.setting, []string{"no cipher suites in common"}})
				// What shipped before: the same stores, the suites left to the consumer.
				s.CipherSuites = nil
				b = must(Build(context.Background(), s, in.secrets(s), Options{}))
			} else if err != nil {
				t.Fatalf("keyship refuses what Java accepts: %v", err)
			}
			ks, ts := b.File(RoleKeystore), b.File(RoleTruststore)
			herr := jssetest.HandshakeSuites(t, ks.Contents, "JKS", b.KeystorePassword, b.KeyPassword, ts.Contents, b.TruststorePassword, host, tt.protocol, tt.suites)
			switch {
			case tt.refused && (herr == nil || !strings.Contains(herr.Error(), "no cipher suites in common")):
				t.Errorf("Java's handshake with %v: %v; want \"no cipher suites in common\"", tt.suites, herr)
			case !tt.refused && herr != nil:
				t.Errorf("Java's handshake with %v: %v", tt.suites, herr)
			}
		})
	}
}
