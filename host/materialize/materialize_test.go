package materialize

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/keystore/keystoretest"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
)

func TestBuildGoJKS(t *testing.T) {
	f := fx()
	s := dcosSpec()
	b, err := Build(context.Background(), s, goodInputs(t).secrets(s), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Zero()

	var paths []string
	for _, file := range b.Files {
		paths = append(paths, file.Path)
		if file.Mode != 0o600 {
			t.Errorf("%s: mode %v, want 0600", file.Path, file.Mode)
		}
		if len(file.Version) != 16 {
			t.Errorf("%s: version %q, want 16 hex digits", file.Path, file.Version)
		}
	}
	if want := []string{KeystoreJKS, TruststoreJKS, CABundleJKS}; !slices.Equal(paths, want) {
		t.Fatalf("files %v, want %v", paths, want)
	}
	if string(b.KeystorePassword) != storePass || string(b.KeyPassword) != keyPass || string(b.TruststorePassword) != trustPass {
		t.Error("bundle passwords are not the spec's passwords")
	}
	if b.KeyAlias != "node" {
		t.Errorf("key alias %q, want node", b.KeyAlias)
	}
	if len(b.Chain) != 2 || b.Chain[0].Subject != "CN=node1.example.com" ||
		!slices.Equal(b.Chain[0].DNSNames, []string{"node1.example.com", "node2.example.com"}) ||
		!b.Chain[0].NotAfter.Equal(f.node.Chain[0].NotAfter) || !b.Chain[1].IsCA {
		t.Errorf("chain facts %+v", b.Chain)
	}
	if len(b.Trusted) != 3 {
		t.Errorf("%d trusted certificates, want 1 from the truststore and 2 from the CA bundle", len(b.Trusted))
	}
	if len(b.Warnings) != 0 {
		t.Errorf("warnings: %q", b.Warnings)
	}

	// The keystore written opens with the same passwords and holds the
	// same key and chain.
	st, err := keystore.OpenJKS(b.File(RoleKeystore).Contents, []byte(storePass))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Keys) != 1 || len(st.Trusted) != 0 {
		t.Fatalf("keystore.jks: %d keys, %d certificates; want 1, 0", len(st.Keys), len(st.Trusted))
	}
	if err := st.Keys[0].Unlock([]byte(keyPass)); err != nil {
		t.Fatal(err)
	}
	if !keystore.KeyMatches(st.Keys[0].Key, f.node.Chain[0]) {
		t.Error("keystore.jks holds another key")
	}
	if len(st.Keys[0].Chain) != 2 || !st.Keys[0].Chain[0].Equal(f.node.Chain[0]) || !st.Keys[0].Chain[1].Equal(f.ca.Cert) {
		t.Error("keystore.jks holds another chain")
	}
	for _, c := range []struct {
		role Role
		want []*x509.Certificate
	}{
		{RoleTruststore, []*x509.Certificate{f.ca.Cert}},
		{RoleCABundle, []*x509.Certificate{f.otherCA.Cert, f.ca.Cert}}, // alias order
	} {
		st, err := keystore.OpenJKS(b.File(c.role).Contents, []byte(trustPass))
		if err != nil {
			t.Fatalf("%s: %v", c.role, err)
		}
		if len(st.Keys) != 0 || len(st.Trusted) != len(c.want) {
			t.Fatalf("%s: %d keys, %d certificates", c.role, len(st.Keys), len(st.Trusted))
		}
		for i, want := range c.want {
			if !st.Trusted[i].Cert.Equal(want) {
				t.Errorf("%s: certificate %d is %s, want %s", c.role, i, st.Trusted[i].Cert.Subject, want.Subject)
			}
		}
	}
}

func TestBuildWithoutTruststoreOrKeyPassword(t *testing.T) {
	s := dcosSpec()
	s.Truststore, s.CABundle, s.Keystore.KeyPassword = nil, nil, nil
	in := goodInputs(t)
	var err error
	in.keystore, err = JKSKeystore("node", fx().node.Key, fx().node.Chain, []byte(storePass), []byte(storePass))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(context.Background(), s, in.secrets(s), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Files) != 1 || b.Files[0].Role != RoleKeystore {
		t.Fatalf("files %+v, want the keystore only", b.Files)
	}
	if string(b.KeyPassword) != storePass || b.TruststorePassword != nil {
		t.Error("without a key password the key password must be the store password, and no truststore password")
	}
	b.KeyPassword[0] = 'X'
	if string(b.KeystorePassword) != storePass {
		t.Error("KeyPassword and KeystorePassword share memory")
	}
}

func TestBuildCopiesOnlyWhatEachStoreIsFor(t *testing.T) {
	f := fx()
	s := dcosSpec()
	in := goodInputs(t)
	// As the Flink documentation builds them: the keystore holds the CA as
	// a trusted entry too, and here the truststore holds a stray key.
	in.keystore = keystoretest.RawJKS(t, storePass,
		keystoretest.RawEntry{Alias: "Node", Key: f.node.Key, Pass: keyPass, Chain: f.node.Chain},
		keystoretest.RawEntry{Alias: "ca", Chain: []*x509.Certificate{f.ca.Cert}})
	in.truststore = keystoretest.RawJKS(t, trustPass,
		keystoretest.RawEntry{Alias: "stray", Key: f.other.Key, Pass: keyPass, Chain: f.other.Chain},
		keystoretest.RawEntry{Alias: "ca", Chain: []*x509.Certificate{f.ca.Cert}})
	b, err := Build(context.Background(), s, in.secrets(s), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b.KeyAlias != "node" {
		t.Errorf("key alias %q, want node: Java folds JKS aliases to lower case", b.KeyAlias)
	}
	want := `truststore /spark/truststore: private key entries "stray" are left out: a truststore holds trusted certificates only`
	if len(b.Warnings) != 1 || b.Warnings[0] != want {
		t.Errorf("warnings %q, want [%q]", b.Warnings, want)
	}
	for _, c := range []struct {
		role        Role
		pass        string
		keys, certs int
	}{{RoleKeystore, storePass, 1, 0}, {RoleTruststore, trustPass, 0, 1}} {
		st, err := keystore.OpenJKS(b.File(c.role).Contents, []byte(c.pass))
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Keys) != c.keys || len(st.Trusted) != c.certs {
			t.Errorf("%s: %d keys, %d certificates; want %d, %d", c.role, len(st.Keys), len(st.Trusted), c.keys, c.certs)
		}
	}
}

func TestBuildDeterministic(t *testing.T) {
	s := dcosSpec()
	secrets := goodInputs(t).secrets(s)
	a, err := Build(context.Background(), s, secrets, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(context.Background(), s, secrets, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Files {
		if !bytes.Equal(a.Files[i].Contents, b.Files[i].Contents) {
			t.Errorf("%s differs between two builds of the same inputs", a.Files[i].Path)
		}
		if a.Files[i].Version != b.Files[i].Version {
			t.Errorf("%s: version differs between two builds", a.Files[i].Path)
		}
	}
	// Build's output is a fixed point: building from it gives it back.
	in := goodInputs(t)
	in.keystore, in.truststore, in.caBundle = a.Files[0].Contents, a.Files[1].Contents, a.Files[2].Contents
	c, err := Build(context.Background(), s, in.secrets(s), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Files {
		if !bytes.Equal(a.Files[i].Contents, c.Files[i].Contents) {
			t.Errorf("%s: rebuilding from the output changes it", a.Files[i].Path)
		}
	}
}

func TestBuildDoesNotModifySecrets(t *testing.T) {
	s := dcosSpec()
	secrets := goodInputs(t).secrets(s)
	before := make(map[spec.Ref][]byte)
	for r, sec := range secrets {
		before[r] = bytes.Clone(sec.Data)
	}
	b, err := Build(context.Background(), s, secrets, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b.Zero()
	for r, sec := range secrets {
		if !bytes.Equal(sec.Data, before[r]) {
			t.Errorf("Build or Zero changed the secret of %s", r)
		}
	}
}

func TestVersion(t *testing.T) {
	s := dcosSpec()
	in := goodInputs(t)
	build := func(in *inputs) *Bundle {
		t.Helper()
		b, err := Build(context.Background(), s, in.secrets(s), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	base := build(in)

	in.keystoreVersion = "8"
	bumped := build(in)
	if bumped.Files[0].Version == base.Files[0].Version {
		t.Error("keystore version did not change with the keystore secret's version")
	}
	if bumped.Files[1].Version != base.Files[1].Version {
		t.Error("truststore version changed with the keystore secret's version")
	}

	// Same versions, other bytes: the version follows the versions only
	// (it is never a hash of secret bytes).
	in.keystoreVersion = "7"
	in.keystore = keystoretest.RawJKS(t, storePass, keystoretest.RawEntry{Alias: "node", Key: fx().node.Key, Pass: keyPass, Chain: fx().node.Chain})
	if v := build(in).Files[0].Version; v != base.Files[0].Version {
		t.Error("version depends on secret bytes")
	}

	in.keystoreVersion = ""
	if v := build(in).Files[0].Version; v != "" {
		t.Errorf("version %q with an unversioned input, want empty", v)
	}
}

func TestZero(t *testing.T) {
	s := dcosSpec()
	b, err := Build(context.Background(), s, goodInputs(t).secrets(s), Options{})
	if err != nil {
		t.Fatal(err)
	}
	held := [][]byte{b.KeystorePassword, b.KeyPassword, b.TruststorePassword}
	for _, f := range b.Files {
		held = append(held, f.Contents)
	}
	b.Zero()
	for i, h := range held {
		if len(h) == 0 || bytes.ContainsFunc(h, func(r rune) bool { return r != 0 }) {
			t.Errorf("buffer %d is not zeroed", i)
		}
	}
	if b.KeystorePassword != nil || b.Files[0].Contents != nil {
		t.Error("Zero left slices in the bundle")
	}
	var nilBundle *Bundle
	nilBundle.Zero()
}

func TestSensitiveNeverFormats(t *testing.T) {
	pw := Sensitive("canary-5f3a-pw")
	file := File{Path: KeystoreJKS, Contents: Sensitive("canary-5f3a-pw")}
	b := &Bundle{KeystorePassword: pw, Files: []File{file}}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("bundle", "pw", pw, "file", file)
	for _, out := range []string{
		fmt.Sprintf("%v %+v %#v %s %x %q", pw, pw, pw, pw, pw, pw),
		fmt.Sprintf("%v %+v %#v", *b, b, file),
		logged.String(),
	} {
		if strings.Contains(out, "canary") || strings.Contains(out, fmt.Sprintf("%x", []byte("canary"))) ||
			strings.Contains(out, "99 97 110") {
			t.Errorf("secret bytes formatted: %d bytes of output hold the canary", len(out))
		}
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("output does not say [redacted]")
		}
	}
	var plain []byte = pw // Sensitive converts to []byte without a cast.
	if string(plain) != "canary-5f3a-pw" {
		t.Error("conversion to []byte lost bytes")
	}
}

func TestBuildRejectsUnsupportedStoreType(t *testing.T) {
	s := dcosSpec()
	s.StoreType = "bks"
	_, err := Build(context.Background(), s, goodInputs(t).secrets(s), Options{})
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("store type bks: %v, want errors.ErrUnsupported", err)
	}
	_, err = Build(context.Background(), dcosSpec(), goodInputs(t).secrets(s), Options{Outputs: []Format{"der"}})
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("output format der: %v, want errors.ErrUnsupported", err)
	}
	s.StoreType = "JKS"
	if _, err := Build(context.Background(), s, goodInputs(t).secrets(s), Options{}); err != nil {
		t.Errorf("store type JKS: %v", err)
	}
}

func TestBuildHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := dcosSpec()
	if _, err := Build(ctx, s, goodInputs(t).secrets(s), Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

// problem is one expected FieldError: its field and words its reason holds.
type problem struct {
	field  string
	reason []string
}

// checkProblems asserts that err lists exactly want, in order, and holds no
// secret.
func checkProblems(t *testing.T, err error, secrets []string, want ...problem) {
	t.Helper()
	if err == nil {
		t.Fatal("Build succeeded")
	}
	for _, pw := range secrets {
		if pw != "" && strings.Contains(err.Error(), pw) {
			t.Fatalf("a password appears in the error (field names: %v)", fieldNames(err))
		}
	}
	var errs *spec.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %T is not a *spec.Errors: %v", err, err)
	}
	if len(errs.List) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(errs.List), len(want), err)
	}
	for i, w := range want {
		got := errs.List[i]
		if got.Field != w.field {
			t.Errorf("problem %d names %s, want %s: %v", i, got.Field, w.field, got)
		}
		for _, words := range w.reason {
			if !strings.Contains(got.Reason, words) {
				t.Errorf("problem %d does not say %q: %v", i, words, got)
			}
		}
	}
}

func fieldNames(err error) []string {
	var errs *spec.Errors
	if !errors.As(err, &errs) {
		return nil
	}
	var out []string
	for _, fe := range errs.List {
		out = append(out, fe.Field)
	}
	return out
}

func TestWrongStorePasswordMessage(t *testing.T) {
	s := dcosSpec()
	in := goodInputs(t)
	in.storePass = "not-the-store-password"
	_, err := Build(context.Background(), s, in.secrets(s), Options{})
	checkProblems(t, err, []string{in.storePass, storePass},
		problem{"security.tls.keystore_password", nil})
	want := "security.tls.keystore_password (/spark/keystore_password): the password does not open keystore /spark/keystore (keystore was tampered with, or password was incorrect)"
	if err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
	var fe *spec.FieldError
	if !errors.As(err, &fe) || fe.Ref != "/spark/keystore_password" {
		t.Errorf("errors.As *spec.FieldError: %v", fe)
	}
}

func TestBuildFailures(t *testing.T) {
	f := fx()
	nodeEntry := keystoretest.RawEntry{Alias: "node", Key: f.node.Key, Pass: keyPass, Chain: f.node.Chain}
	caEntry := keystoretest.RawEntry{Alias: "ca", Chain: []*x509.Certificate{f.ca.Cert}}
	tests := []struct {
		name   string
		change func(s *spec.Spec, in *inputs)
		after  func(s *spec.Spec) // changes the spec after its secrets are resolved
		want   []problem
	}{
		{
			name:   "wrong key password",
			change: func(_ *spec.Spec, in *inputs) { in.keyPass = "not-the-key-password" },
			want: []problem{{"security.tls.key_password", []string{
				`the password does not open private key "node" in keystore /spark/keystore (Cannot recover key)`}}},
		},
		{
			name: "no key password, key password differs from store password",
			change: func(s *spec.Spec, _ *inputs) {
				s.Keystore.KeyPassword = nil
			},
			want: []problem{{"security.tls.keystore_password", []string{"Cannot recover key", "the spec sets no key password"}}},
		},
		{
			name: "two private keys",
			change: func(_ *spec.Spec, in *inputs) {
				in.keystore = keystoretest.RawJKS(t, storePass, nodeEntry,
					keystoretest.RawEntry{Alias: "other", Key: f.other.Key, Pass: keyPass, Chain: f.other.Chain})
			},
			want: []problem{{"security.tls.keystore_secret", []string{
				`holds 2 private key entries ("node", "other")`, "exactly one private key"}}},
		},
		{
			name:   "no private key",
			change: func(_ *spec.Spec, in *inputs) { in.keystore = keystoretest.RawJKS(t, storePass, caEntry) },
			want: []problem{{"security.tls.keystore_secret", []string{
				"no private key entry (PrivateKeyEntry)", `"ca"`, "is it a truststore?"}}},
		},
		{
			name:   "non-printable store password",
			change: func(_ *spec.Spec, in *inputs) { in.storePass = "bell\apassword" },
			want:   []problem{{"security.tls.keystore_password", []string{"outside printable ASCII (0x20-0x7E)"}}},
		},
		{
			name:   "key password beyond ISO 8859-1",
			change: func(_ *spec.Spec, in *inputs) { in.keyPass = "пароль-key" },
			want:   []problem{{"security.tls.key_password", []string{"beyond U+00FF"}}},
		},
		{
			name:   "trailing newline",
			change: func(_ *spec.Spec, in *inputs) { in.trustPass = trustPass + "\n" },
			want: []problem{{"security.tls.truststore_password", []string{
				"outside printable ASCII", "ends with a line break"}}},
		},
		{
			name:   "empty password",
			change: func(_ *spec.Spec, in *inputs) { in.keyPass = "" },
			want:   []problem{{"security.tls.key_password", []string{"the secret is empty"}}},
		},
		{
			name: "key does not match certificate",
			change: func(_ *spec.Spec, in *inputs) {
				in.keystore = keystoretest.RawJKS(t, storePass, keystoretest.RawEntry{Alias: "node", Key: f.other.Key, Pass: keyPass, Chain: f.node.Chain})
			},
			want: []problem{{"security.tls.keystore_secret", []string{
				`the private key of entry "node" does not match the public key of its certificate "CN=node1.example.com"`}}},
		},
		{
			name:   "wrong truststore password",
			change: func(_ *spec.Spec, in *inputs) { in.trustPass = "not-the-trust-password" },
			want: []problem{
				{"security.tls.truststore_password", []string{
					"the password does not open truststore /spark/truststore (keystore was tampered with, or password was incorrect)"}},
				{"security.tls.truststore_password", []string{
					"the password does not open CA bundle /spark/ca_bundle_truststore (keystore was tampered with"}},
			},
		},
		{
			name: "truststore without trusted certificates",
			change: func(_ *spec.Spec, in *inputs) {
				in.truststore = keystoretest.RawJKS(t, trustPass, nodeEntry)
			},
			want: []problem{{"security.tls.truststore_secret", []string{"no trusted certificate entry (trustedCertEntry)"}}},
		},
		{
			name: "CA bundle without truststore",
			change: func(s *spec.Spec, _ *inputs) {
				s.Truststore = nil
			},
			want: []problem{{"security.tls.ca_bundle_secret", []string{"the spec sets no truststore"}}},
		},
		{
			name:   "PEM keystore",
			change: func(_ *spec.Spec, in *inputs) { in.keystore = []byte("-----BEGIN CERTIFICATE-----\nMIIB\n") },
			want: []problem{{"security.tls.keystore_secret", []string{
				"the PEM is corrupt", "no matching -----END line"}}},
		},
		{
			name:   "PKCS12 truststore",
			change: func(_ *spec.Spec, in *inputs) { in.truststore = []byte{0x30, 0x82, 0x0a, 0x00, 0x02, 0x01, 0x03} },
			want: []problem{{"security.tls.truststore_secret", []string{
				"not a JKS, PKCS12 or PEM truststore (Invalid keystore format)", "neither a PKCS12 file nor a certificate"}}},
		},
		{
			name:   "base64 keystore",
			change: func(_ *spec.Spec, in *inputs) { in.keystore = []byte("/u3+7QAAAAIAAAAB") },
			want:   []problem{{"security.tls.keystore_secret", []string{"base64 text of a JKS store", "declare the setting base64"}}},
		},
		{
			name: "JCEKS keystore",
			change: func(_ *spec.Spec, in *inputs) {
				in.keystore = append([]byte{0xce, 0xce, 0xce, 0xce}, in.keystore[4:]...)
			},
			want: []problem{{"security.tls.keystore_secret", []string{"JCEKS", "keytool -importkeystore"}}},
		},
		{
			name:   "truncated keystore",
			change: func(_ *spec.Spec, in *inputs) { in.keystore = in.keystore[:len(in.keystore)/2] },
			want:   []problem{{"security.tls.keystore_secret", []string{"the keystore is corrupt: truncated at byte"}}},
		},
		{
			name: "tampered keystore",
			change: func(_ *spec.Spec, in *inputs) {
				in.keystore = bytes.Clone(in.keystore)
				in.keystore[len(in.keystore)-30] ^= 1
			},
			want: []problem{{"security.tls.keystore_password", []string{"keystore was tampered with, or password was incorrect"}}},
		},
		{
			name:   "unresolved ref",
			change: func(*spec.Spec, *inputs) {},
			after: func(s *spec.Spec) {
				s.Keystore.Secret.Ref.Path = "/spark/elsewhere"
			},
			want: []problem{{"security.tls.keystore_secret", []string{"no secret was resolved"}}},
		},
		{
			name: "three problems at once",
			change: func(_ *spec.Spec, in *inputs) {
				in.storePass = "wrong-store-password"
				in.trustPass = "wrong\ttrust"
				in.caBundle = in.caBundle[:10]
			},
			want: []problem{
				{"security.tls.keystore_password", []string{"does not open keystore"}},
				{"security.tls.truststore_password", []string{"printable ASCII"}},
				{"security.tls.ca_bundle_secret", []string{"corrupt"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := dcosSpec()
			in := goodInputs(t)
			tt.change(s, in)
			secrets := in.secrets(s)
			if tt.after != nil {
				tt.after(s)
			}
			b, err := Build(context.Background(), s, secrets, Options{})
			if b != nil {
				t.Error("Build returned a bundle along with its error")
			}
			checkProblems(t, err, append([]string{in.storePass, in.keyPass, in.trustPass}, testPasswords...), tt.want...)
		})
	}
}

// TestCanaryNeverInErrors plants one password everywhere a password goes and
// greps every error Build gives for it.
func TestCanaryNeverInErrors(t *testing.T) {
	const canary = "canary-5f3a-pw"
	f := fx()
	s := dcosSpec()
	cases := map[string]func(in *inputs){
		"wrong passwords": func(in *inputs) {
			in.storePass, in.keyPass, in.trustPass = canary, canary, canary
		},
		"wrong key password": func(in *inputs) { in.keyPass = canary },
		"canary with newline": func(in *inputs) {
			in.storePass, in.keyPass, in.trustPass = canary+"\n", canary+"\r\n", "\x00"+canary
		},
		"canary stores, bad key": func(in *inputs) {
			in.storePass, in.keyPass, in.trustPass = canary, canary, canary
			in.keystore = keystoretest.RawJKS(t, canary, keystoretest.RawEntry{Alias: "node", Key: f.other.Key, Pass: canary, Chain: f.node.Chain})
			in.truststore = keystoretest.RawJKS(t, canary, keystoretest.RawEntry{Alias: "node", Key: f.node.Key, Pass: canary, Chain: f.node.Chain})
			in.caBundle = in.caBundle[:40]
		},
	}
	for name, change := range cases {
		in := goodInputs(t)
		change(in)
		_, err := Build(context.Background(), s, in.secrets(s), Options{})
		if err == nil {
			t.Errorf("%s: Build succeeded", name)
			continue
		}
		if strings.Contains(err.Error(), canary) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), canary) {
			t.Errorf("%s: the canary password appears in the error", name)
		}
	}
}

// TestSecretWithoutDataIsReported covers a resolver that hands over a secret
// with no bytes.
func TestSecretWithoutDataIsReported(t *testing.T) {
	s := dcosSpec()
	secrets := goodInputs(t).secrets(s)
	secrets[s.Truststore.Secret.Ref] = plugin.Secret{Version: "1"}
	_, err := Build(context.Background(), s, secrets, Options{})
	checkProblems(t, err, testPasswords, problem{"security.tls.truststore_secret", []string{"the secret is empty"}})
}
