package materialize

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"testing"

	gopkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/keystore/keystoretest"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
)

// form is one way a secret store can hold fx()'s node key and chain, its CA
// (truststore) and a CA bundle of both CAs, with the passwords storePass
// (keystore and key) and trustPass.
type form struct {
	name string
	// spec is the job's spec for this form; values maps each setting name
	// to its secret (for ref settings).
	spec   *spec.Spec
	values map[string][]byte
	opts   Options
}

// secrets resolves the form's refs.
func (f *form) secrets() Secrets {
	out := make(Secrets)
	for _, fl := range f.spec.Fields() {
		out[fl.Ref] = plugin.Secret{Data: f.values[fl.Name], Version: "1"}
	}
	return out
}

func (f *form) build(t testing.TB, opts Options) (*Bundle, error) {
	t.Helper()
	if opts.Issued == nil {
		opts.Issued = f.opts.Issued
	}
	return Build(context.Background(), f.spec, f.secrets(), opts)
}

// on returns a copy of the form whose spec's hosts are hosts.
func (f *form) on(hosts ...string) *form {
	c := *f
	c.spec = onHosts(f.spec, hosts...)
	return &c
}

// onHosts returns a copy of s whose hosts are hosts.
func onHosts(s *spec.Spec, hosts ...string) *spec.Spec {
	c := *s
	c.Hosts = hosts
	return &c
}

// must returns v, or panics on a fixture that cannot be made.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func ref(name, path string) spec.Field {
	return spec.Field{Name: name, Ref: spec.Ref{Path: path}}
}

// forms returns every input form of the same material.
func forms(t testing.TB) []*form {
	t.Helper()
	f := fx()
	chainPEM := EncodePEMCertificates(f.node.Chain)
	caPEM := EncodePEMCertificates([]*x509.Certificate{f.ca.Cert})
	bundlePEM := EncodePEMCertificates([]*x509.Certificate{f.ca.Cert, f.otherCA.Cert})
	pkcs8 := keystoretest.PEMKey(t, pemPKCS8Key, f.node.Key)
	ksJKS := must(JKSKeystore("node", f.node.Key, f.node.Chain, []byte(storePass), []byte(storePass)))
	tsJKS := must(JKSTruststore([]*x509.Certificate{f.ca.Cert}, []byte(trustPass)))
	caJKS := must(JKSTruststore([]*x509.Certificate{f.ca.Cert, f.otherCA.Cert}, []byte(trustPass)))
	ksP12 := must(keystore.PKCS12Keystore(f.node.Key, f.node.Chain, []byte(storePass), PKCS12LegacyDES))
	tsP12 := must(p12Truststore([]*x509.Certificate{f.ca.Cert}, trustPass, ""))
	caP12 := must(p12Truststore([]*x509.Certificate{f.ca.Cert, f.otherCA.Cert}, trustPass, ""))
	ksRC2 := must(gopkcs12.LegacyRC2.Encode(f.node.Key, f.node.Chain[0], f.node.Chain[1:], storePass))
	tsRC2 := must(gopkcs12.LegacyRC2.EncodeTrustStoreEntries([]gopkcs12.TrustStoreEntry{{Cert: f.ca.Cert, FriendlyName: "Sample CA"}}, trustPass))
	b64 := func(b []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(b)) }

	// store is the DC/OS shape: keystore, truststore, CA bundle in one
	// secret each, passwords by ref.
	store := func(name string, ks, ts, ca []byte) *form {
		s := dcosSpec()
		kp := ref("security.tls.key_password", "/spark/keystore_password")
		s.Keystore.KeyPassword = &kp
		return &form{name: name, spec: s, values: map[string][]byte{
			"security.tls.keystore_secret": ks, "security.tls.keystore_password": []byte(storePass),
			"security.tls.key_password": []byte(storePass), "security.tls.truststore_secret": ts,
			"security.tls.truststore_password": []byte(trustPass), "security.tls.ca_bundle_secret": ca,
		}}
	}
	out := []*form{
		store("JKS", ksJKS, tsJKS, caJKS),
		store("PKCS12 (keyship, LegacyDES)", ksP12, tsP12, caP12),
		store("PKCS12 (go-pkcs12 LegacyRC2, no aliases)", ksRC2, tsRC2, caP12),
		store("PEM in one secret", append(bytes.Clone(pkcs8), chainPEM...), caPEM, bundlePEM),
		store("DER certificate truststore", ksJKS, f.ca.Cert.Raw, bundlePEM),
	}

	// base64: the keystore by the setting's encoding, the truststore by
	// its DC/OS __dcos_base64__ name.
	b := store("base64", b64(ksJKS), b64(tsJKS), caJKS)
	b.spec.Keystore.Secret.Encoding = spec.EncodingBase64
	b.spec.Truststore.Secret.Ref.Path = "/spark/__dcos_base64__truststore"
	out = append(out, b)

	// A PEM key (encrypted PKCS#8, opened with the key password) and chain
	// in separate secrets, as Vault PKI or a Kubernetes TLS secret holds
	// them, and a PEM CA in the truststore's certificate setting.
	kp := ref("tls.key_password", "/tls/keystore_password")
	ca := ref("tls.ca_bundle", "/tls/ca_bundle")
	key := ref("tls.key", "/tls/key")
	cert := ref("tls.crt", "/tls/crt")
	caCert := ref("tls.ca", "/tls/ca")
	out = append(out, &form{name: "PEM key and chain in separate secrets", spec: &spec.Spec{
		Keystore:   spec.Store{Key: &key, Certificate: &cert, Password: ref("tls.keystore_password", "/tls/keystore_password"), KeyPassword: &kp},
		Truststore: &spec.Store{Certificate: &caCert, Password: ref("tls.truststore_password", "/tls/truststore_password")},
		CABundle:   &ca,
	}, values: map[string][]byte{
		"tls.key": keystoretest.EncryptedPKCS8(t, f.node.Key, f.node.Chain[0], storePass, 2048), "tls.crt": chainPEM, "tls.ca": caPEM, "tls.ca_bundle": bundlePEM,
		"tls.keystore_password": []byte(storePass), "tls.key_password": []byte(storePass), "tls.truststore_password": []byte(trustPass),
	}})

	// Spark's inline keyStoreBase64 and literal passwords.
	inline := func(name string, v []byte) spec.Field { return spec.Field{Name: name, Value: v} }
	ks := inline("spark.ssl.keyStoreBase64", b64(ksJKS))
	ks.Encoding = spec.EncodingBase64
	ts := inline("spark.ssl.trustStoreBase64", b64(tsJKS))
	ts.Encoding = spec.EncodingBase64
	skp := inline("spark.ssl.keyPassword", []byte(storePass))
	out = append(out, &form{name: "Spark inline base64", spec: &spec.Spec{
		Keystore:   spec.Store{Secret: ks, Password: inline("spark.ssl.keyStorePassword", []byte(storePass)), KeyPassword: &skp},
		Truststore: &spec.Store{Secret: ts, Password: inline("spark.ssl.trustStorePassword", []byte(trustPass))},
		CABundle:   new(ref("spark.keyship.caBundle", "/spark/ca")),
	}, values: map[string][]byte{"spark.keyship.caBundle": caJKS}})
	return out
}

// issuedForm is a keystore issued by a backend's CA, with the spec's
// passwords; the truststore comes from the issuer's CA certificates.
func issuedForm(t testing.TB) *form {
	f := fx()
	der := must(x509.MarshalPKCS8PrivateKey(f.node.Key))
	issue := &spec.Issue{Field: ref("security.tls.issue", "")}
	issue.Field.Ref = spec.Ref{Backend: "vault", Path: "pki/issue/spark"}
	kp := ref("security.tls.key_password", "/spark/keystore_password")
	return &form{name: "issued", spec: &spec.Spec{
		Keystore: spec.Store{Issue: issue, Password: ref("security.tls.keystore_password", "/spark/keystore_password"), KeyPassword: &kp},
	}, values: map[string][]byte{
		"security.tls.keystore_password": []byte(storePass), "security.tls.key_password": []byte(storePass),
	}, opts: Options{Issued: map[string]plugin.Issued{"security.tls.issue": {
		PrivateKey: der, Chain: [][]byte{f.node.Chain[0].Raw, f.ca.Cert.Raw}, CACertificates: [][]byte{f.ca.Cert.Raw}, Version: "serial-1",
	}}}}
}

// TestEveryInputFormGivesTheSameStores converts every input form to every
// output form: the files must be byte-identical whatever the input form,
// so that what Java and OpenSSL accept from one (TestJava*, TestOpenSSL*)
// they accept from all.
func TestEveryInputFormGivesTheSameStores(t *testing.T) {
	opts := Options{Outputs: []Format{FormatJKS, FormatPKCS12, FormatPEM}, KeyAlias: "node"}
	var want *Bundle
	for _, fm := range append(forms(t), issuedForm(t)) {
		b, err := fm.build(t, opts)
		if err != nil {
			t.Fatalf("%s: %v", fm.name, err)
		}
		var paths []string
		for _, f := range b.Files {
			paths = append(paths, f.Path)
		}
		if fm.name == "issued" {
			// No spec truststore: the issuer's CA makes it, with a derived
			// password; no CA bundle.
			if got := fmt.Sprint(paths); got != "[keystore.jks truststore.jks keystore.p12 truststore.p12 key.pem cert.pem ca.pem]" {
				t.Errorf("issued: files %s", got)
			}
			for _, r := range []Role{RoleKeystore, RoleKeyPEM, RoleCertPEM} {
				if !bytes.Equal(b.File(r).Contents, want.File(r).Contents) {
					t.Errorf("issued: %s differs from the other forms'", r)
				}
			}
			if b.Files[0].Version == "" {
				t.Error("issued: the keystore has no version though the issuer gave one")
			}
			if err := keystore.CheckPassword(b.TruststorePassword); err != "" || len(b.TruststorePassword) < 40 {
				t.Errorf("issued: derived truststore password: %s (%d bytes)", err, len(b.TruststorePassword))
			}
			continue
		}
		if got := fmt.Sprint(paths); got != "[keystore.jks truststore.jks ca-bundle.jks keystore.p12 truststore.p12 ca-bundle.p12 key.pem cert.pem ca.pem]" {
			t.Fatalf("%s: files %s", fm.name, got)
		}
		if want == nil {
			want = b
			continue
		}
		for i, f := range b.Files {
			if !bytes.Equal(f.Contents, want.Files[i].Contents) {
				t.Errorf("%s: %s differs from the %s form's", fm.name, f.Path, "JKS")
			}
		}
		if string(b.KeystorePassword) != storePass || string(b.KeyPassword) != storePass || string(b.TruststorePassword) != trustPass {
			t.Errorf("%s: bundle passwords are not the spec's", fm.name)
		}
	}
}
