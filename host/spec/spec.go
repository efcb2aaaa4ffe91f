// Package spec turns a job's TLS request, in the dialect its users write
// (today the DC/OS security.tls JSON), into one typed Spec: which secret refs
// hold the stores and passwords, and what the job wants built from them.
package spec

// DefaultProtocol is the TLS protocol a Spec asks for when it names none.
const DefaultProtocol = "TLSv1.2"

// Spec is one job's TLS request, whatever dialect it came in.
type Spec struct {
	// Keystore is the job's own key and certificate. Required.
	Keystore Store
	// Truststore is what the job trusts, or nil when the job sets none.
	Truststore *Store
	// CABundle is the CA bundle that goes with the truststore, or nil.
	CABundle *Field
	// Protocol is the TLS protocol the job asks for, e.g. "TLSv1.2".
	Protocol string
	// StoreType is the keystore type the consumer reads: "jks" (default) or "pkcs12".
	StoreType string
}

// Store is a store secret with the refs of the passwords that open it.
type Store struct {
	// Secret is the ref of the store's bytes.
	Secret Field
	// Password is the ref of the store password.
	Password Field
	// KeyPassword is the ref of the private key's password (keystores only).
	KeyPassword *Field
}

// Field is one ref of a Spec with the name of the setting it came from, so that
// every error can name both, e.g. "security.tls.keystore_secret".
type Field struct {
	// Name is the setting's full name in the user's dialect.
	Name string
	// Ref is the secret reference the setting holds.
	Ref Ref
}

// Ref is a parsed secret reference: [backend:]path[#field][@version].
// Backend is empty when the ref names none (the default backend applies).
type Ref struct {
	Backend string
	Path    string
	Field   string
	Version string
}

// Fields lists every ref-carrying field of s, keystore first, in a fixed order.
func (s *Spec) Fields() []Field {
	out := []Field{s.Keystore.Secret, s.Keystore.Password}
	if s.Keystore.KeyPassword != nil {
		out = append(out, *s.Keystore.KeyPassword)
	}
	if s.Truststore != nil {
		out = append(out, s.Truststore.Secret, s.Truststore.Password)
	}
	if s.CABundle != nil {
		out = append(out, *s.CABundle)
	}
	return out
}
