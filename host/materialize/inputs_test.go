package materialize

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/keystore/keystoretest"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
)

func TestIsDCOSBase64(t *testing.T) {
	for path, want := range map[string]bool{
		"/spark/__dcos_base64__keystore": true,
		"__dcos_base64__ks":              true,
		"/spark/keystore":                false,
		"/__dcos_base64__dir/keystore":   false,
		"/spark/keystore__dcos_base64__": false,
	} {
		if got := isDCOSBase64(spec.Ref{Path: path}); got != want {
			t.Errorf("isDCOSBase64(%q) = %v", path, got)
		}
	}
}

// TestBase64Problems: a setting that says base64 but holds something else,
// an unknown encoding, and base64 where the spec does not say so, each
// reported without guessing.
func TestBase64Problems(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(fm *form)
		want   problem
	}{
		{"declared base64, holds binary", func(fm *form) {
			fm.spec.Keystore.Secret.Encoding = spec.EncodingBase64
		}, problem{"security.tls.keystore_secret", []string{"the secret is not valid base64 text (the setting says base64)"}}},
		{"DC/OS base64 name, holds binary", func(fm *form) {
			fm.spec.Keystore.Secret.Ref.Path = "/spark/__dcos_base64__keystore"
		}, problem{"security.tls.keystore_secret", []string{"not valid base64 text (its name starts with __dcos_base64__)"}}},
		{"unknown encoding", func(fm *form) {
			fm.spec.Keystore.Secret.Encoding = "hex"
		}, problem{"security.tls.keystore_secret", []string{`unknown encoding "hex"`}}},
		{"undeclared base64 of PKCS12", func(fm *form) {
			fm.values["security.tls.truststore_secret"] = []byte(base64.StdEncoding.EncodeToString(fm.values["security.tls.truststore_secret"]))
		}, problem{"security.tls.truststore_secret", []string{"it is base64 text of a PKCS12 store", "declare the setting base64"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fm := forms(t)[1]
			c.change(fm)
			_, err := fm.build(t, Options{})
			checkProblems(t, err, testPasswords, c.want)
		})
	}
}

// TestPEMProblems covers PEM inputs keyship refuses, each with a way out.
func TestPEMProblems(t *testing.T) {
	f := fx()
	chain := EncodePEMCertificates(f.node.Chain)
	legacy := pem.EncodeToMemory(&pem.Block{Type: pemECKey, Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00"}, Bytes: []byte{1, 2, 3}})
	for _, c := range []struct {
		name     string
		keystore []byte
		want     []string
	}{
		{"legacy PEM encryption", append(legacy, chain...), []string{`Proc-Type: 4,ENCRYPTED`, "openssl pkcs8 -topk8"}},
		{"unterminated block", append(keystoretest.PEMKey(t, pemPKCS8Key, f.node.Key)[:40], chain...), []string{"the PEM is corrupt"}},
		{"bad certificate", append(keystoretest.PEMKey(t, pemPKCS8Key, f.node.Key), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0}})...), []string{"PEM block 2 (CERTIFICATE) is not a valid X.509 certificate"}},
		{"key without certificate", keystoretest.PEMKey(t, pemPKCS8Key, f.node.Key), []string{"holds no certificate (no CERTIFICATE block)"}},
		{"garbage key", append(pem.EncodeToMemory(&pem.Block{Type: pemPKCS8Key, Bytes: []byte{1, 2, 3}}), chain...), []string{"the private key: not a PKCS#8 private key"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fm := forms(t)[3]
			fm.values["security.tls.keystore_secret"] = c.keystore
			_, err := fm.build(t, Options{})
			checkProblems(t, err, testPasswords, problem{"security.tls.keystore_secret", c.want})
		})
	}
	// PKCS#1, SEC1 (with openssl ecparam's EC PARAMETERS block) and a
	// chain in the wrong order all read.
	rsaLeaf := rsaFx()
	for name, ks := range map[string][]byte{
		"PKCS#1 RSA":       append(keystoretest.PEMKey(t, pemRSAKey, rsaLeaf.Key), EncodePEMCertificates(rsaLeaf.Chain)...),
		"SEC1 EC":          append(append([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"), keystoretest.PEMKey(t, pemECKey, f.node.Key)...), chain...),
		"chain root first": append(EncodePEMCertificates([]*x509.Certificate{f.ca.Cert, f.node.Chain[0]}), keystoretest.PEMKey(t, pemPKCS8Key, f.node.Key)...),
	} {
		fm := forms(t)[3]
		fm.values["security.tls.keystore_secret"] = ks
		if name == "PKCS#1 RSA" {
			fm.values["security.tls.truststore_secret"] = EncodePEMCertificates(rsaLeaf.Chain[1:])
		}
		b, err := fm.build(t, Options{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(b.Chain) != 2 || b.Chain[1].IsCA != true || len(b.Warnings) != 0 {
			t.Errorf("%s: chain %+v, warnings %q", name, b.Chain, b.Warnings)
		}
	}
}

// TestSeparateKeyAndCertificate covers the Key and Certificate settings:
// one without the other, a DER certificate, and both with a store secret.
func TestSeparateKeyAndCertificate(t *testing.T) {
	f := fx()
	fm := forms(t)[6]
	fm.values["tls.crt"] = f.node.Chain[0].Raw // a DER leaf; the CA is trusted
	if _, err := fm.build(t, Options{}); err != nil {
		t.Errorf("DER certificate: %v", err)
	}
	fm = forms(t)[6]
	fm.spec.Keystore.Key = nil
	_, err := fm.build(t, Options{})
	checkProblems(t, err, testPasswords, problem{"tls.crt", []string{"a certificate without its private key"}})
	fm = forms(t)[6]
	fm.spec.Keystore.Secret = ref("tls.keystore", "/tls/keystore")
	_, err = fm.build(t, Options{})
	checkProblems(t, err, testPasswords, problem{"tls.keystore", []string{"set together with a separate key and certificate"}})
	fm = forms(t)[6]
	fm.values["tls.key"] = must(JKSKeystore("n", f.node.Key, f.node.Chain, []byte(storePass), []byte(storePass)))
	_, err = fm.build(t, Options{})
	checkProblems(t, err, testPasswords, problem{"tls.key", []string{"not a PEM private key"}})
}

// TestIssued covers the certificates the host had issued.
func TestIssued(t *testing.T) {
	f := fx()
	fm := issuedForm(t)
	fm.spec.Hosts = []string{"node2.example.com"}
	b, err := fm.build(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%d %s %s %s", len(b.Files), b.Files[0].Path, b.Files[1].Path, b.KeyAlias); got != "2 keystore.jks truststore.jks keyship" {
		t.Errorf("issued: %s", got)
	}
	fm.opts.Issued = nil
	_, err = fm.build(t, Options{})
	checkProblems(t, err, testPasswords, problem{"security.tls.issue", []string{"no certificate was issued for this setting"}})

	fm = issuedForm(t)
	is := fm.opts.Issued["security.tls.issue"]
	is.Chain = [][]byte{f.other.Chain[0].Raw}
	fm.opts.Issued = map[string]plugin.Issued{"security.tls.issue": is}
	_, err = fm.on("node9.example.com").build(t, Options{})
	checkProblems(t, err, testPasswords, problem{"security.tls.issue", []string{"the issued private key does not match the public key of the issued certificate"}})
}

// TestBuildDeterministicEveryFormat: two Builds of the same inputs give
// byte-identical files in every format, derived passwords included, and
// building from the output gives the output back.
func TestBuildDeterministicEveryFormat(t *testing.T) {
	for _, fm := range append(forms(t), issuedForm(t)) {
		a := must(fm.build(t, allOutputs))
		b := must(fm.build(t, allOutputs))
		for i := range a.Files {
			if !bytes.Equal(a.Files[i].Contents, b.Files[i].Contents) || a.Files[i].Version != b.Files[i].Version {
				t.Errorf("%s: %s differs between two builds", fm.name, a.Files[i].Path)
			}
		}
		if !bytes.Equal(a.TruststorePassword, b.TruststorePassword) {
			t.Errorf("%s: the truststore password differs between two builds", fm.name)
		}
	}
	// A PEM-only spec (libprocess): derived passwords, no store files.
	fm := forms(t)[6]
	fm.spec.Keystore.Password, fm.spec.Keystore.KeyPassword, fm.spec.Truststore.Password = spec.Field{}, nil, spec.Field{}
	fm.spec.CABundle = nil
	fm.values["tls.key"] = keystoretest.PEMKey(t, pemPKCS8Key, fx().node.Key)
	fm.spec.StoreType = spec.StoreTypePEM
	b := must(fm.build(t, Options{}))
	if got := fmt.Sprintf("%d %s %s %s %v", len(b.Files), b.Files[0].Role, b.Files[1].Role, b.Files[2].Role, b.KeystorePassword == nil); got != "3 pem-key pem-cert pem-ca true" {
		t.Errorf("PEM-only bundle: %s", got)
	}
	fm.spec.StoreType = spec.StoreTypePKCS12
	b1, b2 := must(fm.build(t, Options{})), must(fm.build(t, Options{}))
	if !bytes.Equal(b1.KeystorePassword, b2.KeystorePassword) || !bytes.Equal(b1.Files[0].Contents, b2.Files[0].Contents) {
		t.Error("a derived keystore password is not deterministic")
	}
	if keystore.CheckPassword(b1.KeystorePassword) != "" || bytes.Equal(b1.KeystorePassword, b1.TruststorePassword) {
		t.Error("derived passwords are not printable, or the keystore and truststore share one")
	}
	// Fixed point: the output stores as inputs give the same stores.
	ref := forms(t)[0]
	out := must(ref.build(t, allOutputs))
	for _, in := range []struct{ ks, ts, ca int }{{0, 1, 2}, {3, 4, 5}} {
		fm := forms(t)[0]
		fm.values["security.tls.keystore_secret"] = out.Files[in.ks].Contents
		fm.values["security.tls.truststore_secret"] = out.Files[in.ts].Contents
		fm.values["security.tls.ca_bundle_secret"] = out.Files[in.ca].Contents
		again := must(fm.build(t, allOutputs))
		for i := range out.Files {
			if !bytes.Equal(out.Files[i].Contents, again.Files[i].Contents) {
				t.Errorf("rebuilding from %s changes %s", out.Files[in.ks].Path, out.Files[i].Path)
			}
		}
	}
}

// TestBuilderZeroesWhatItDecoded: base64-decoded stores and password copies
// are zeroed when Build returns.
func TestBuilderZeroesWhatItDecoded(t *testing.T) {
	fm := forms(t)[5] // base64
	b := &builder{spec: fm.spec, secrets: fm.secrets()}
	data, ok := b.raw(fm.spec.Keystore.Secret)
	pw, okPW := b.password(fm.spec.Keystore.Password)
	if !ok || !okPW || len(data) == 0 || len(pw) == 0 {
		t.Fatal("raw or password failed")
	}
	b.zero()
	for name, buf := range map[string][]byte{"decoded store": data, "password copy": pw} {
		if bytes.ContainsFunc(buf, func(r rune) bool { return r != 0 }) {
			t.Errorf("%s not zeroed", name)
		}
	}
	if !bytes.HasPrefix(fm.secrets()[fm.spec.Keystore.Secret.Ref].Data, []byte("/u3+7")) {
		t.Error("zero touched the caller's secret")
	}
}

// TestCanaryEverywhere plants one password in every input form, breaks
// each in turn, and greps errors, warnings and logged bundles for it.
func TestCanaryEverywhere(t *testing.T) {
	const canary = "canary-9d1e-Pw"
	f := fx()
	for _, fm := range forms(t) {
		for k, v := range fm.values {
			if string(v) == storePass || string(v) == trustPass {
				fm.values[k] = []byte(canary)
			}
		}
		for _, fl := range []*spec.Field{&fm.spec.Keystore.Password, fm.spec.Keystore.KeyPassword, &fm.spec.Truststore.Password} {
			if fl != nil && fl.Inline() {
				fl.Value = []byte(canary)
			}
		}
		opts := Options{Outputs: allOutputs.Outputs}
		_, err := fm.on("node9.example.com").build(t, opts)
		if err == nil {
			t.Errorf("%s: Build succeeded", fm.name)
			continue
		}
		var e *Error
		if errors.As(err, &e) {
			for _, w := range e.Warnings {
				if strings.Contains(w, canary) {
					t.Errorf("%s: the canary is in a warning", fm.name)
				}
			}
		}
		if out := fmt.Sprintf("%v %+v %#v", err, err, err); strings.Contains(out, canary) {
			t.Errorf("%s: the canary is in the error", fm.name)
		}
	}
	// A good bundle, logged and printed, shows no secret.
	fm := forms(t)[7]
	fm.spec.Keystore.Password.Value = []byte(canary)
	fm.spec.Keystore.KeyPassword.Value = []byte(canary)
	fm.values = map[string][]byte{"spark.keyship.caBundle": must(JKSTruststore([]*x509.Certificate{f.ca.Cert}, []byte(trustPass)))}
	fm.spec.Keystore.Secret.Value = []byte(base64.StdEncoding.EncodeToString(must(JKSKeystore("n", f.node.Key, f.node.Chain, []byte(canary), []byte(canary)))))
	b := must(fm.build(t, allOutputs))
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("bundle", "bundle", b, "spec", fm.spec)
	if out := fmt.Sprintf("%v %+v %#v", b, *b, fm.spec) + logged.String(); strings.Contains(out, canary) {
		t.Error("the canary shows when a bundle or spec is printed or logged")
	}
}
