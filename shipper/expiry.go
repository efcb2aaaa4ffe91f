package shipper

import (
	"time"

	"github.com/keyship/keyship/host/materialize"
)

// NotAfter returns, by file path, when the certificates a file of Files
// holds stop being valid: for the keystore and the PEM key and certificate,
// the earliest NotAfter of the key's chain; for the truststore, the CA
// bundle and the PEM CA file, the earliest NotAfter of the trusted
// certificates. Files without certificates (passwords, settings) are left
// out. A sandbox manifest records it, so that a task or an operator sees
// when the stores expire without opening them.
func (s *Shipment) NotAfter() map[string]time.Time {
	chain := earliest(s.Bundle.Chain)
	trusted := earliest(s.Bundle.Trusted)
	out := map[string]time.Time{}
	for _, f := range s.Files {
		var t time.Time
		switch f.Role {
		case materialize.RoleKeystore, materialize.RoleKeyPEM, materialize.RoleCertPEM:
			t = chain
		case materialize.RoleTruststore, materialize.RoleCABundle, materialize.RoleCAPEM:
			t = trusted
		}
		if !t.IsZero() {
			out[f.Path] = t
		}
	}
	return out
}

// earliest is the earliest NotAfter of certs, or the zero time.
func earliest(certs []materialize.CertInfo) time.Time {
	var t time.Time
	for _, c := range certs {
		if t.IsZero() || c.NotAfter.Before(t) {
			t = c.NotAfter
		}
	}
	return t
}
