package conf

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
)

// Libprocess returns the LIBPROCESS_SSL_* environment that makes a libprocess
// process (a Mesos master, agent, scheduler or executor) use b's PEM files
// from dir: ENABLED, CERT_FILE, KEY_FILE and CA_FILE (when b has a CA file),
// then the switches:
//
//   - VERIFY_CERT: s.Libprocess.VerifyCert, or true when s does not say.
//     Mesos's default is false; keyship verifies peers unless the request
//     turns it off. (VERIFY_CERT and REQUIRE_CERT are the names every Mesos
//     version reads; newer ones call them VERIFY_SERVER_CERT and
//     REQUIRE_CLIENT_CERT and read both.)
//   - REQUIRE_CERT, SUPPORT_DOWNGRADE: as s says, or false (Mesos's default).
//   - ENABLE_TLS_V1_2, ENABLE_TLS_V1_3: as s.Libprocess says, with Mesos's
//     defaults (1.2 on, 1.3 off) for the one it does not set; for a spec of
//     another dialect, exactly s.Protocol's version.
//   - CA_DIR, VERIFY_IPADD, VERIFICATION_DEPTH, CIPHERS, ECDH_CURVES,
//     HOSTNAME_VALIDATION_SCHEME and the older protocol switches: only when
//     s sets them.
//
// Every name is one libprocess reads (process::network::openssl::Flags,
// 3rdparty/libprocess/src/openssl.cpp): VERIFICATION_DEPTH and ECDH_CURVES,
// not the VERIFY_DEPTH and ECDH_CURVE of the Mesos documentation, which
// libprocess would skip without a word.
//
// The PEM key needs no password. b must have a PEM key and certificate.
func Libprocess(b *materialize.Bundle, dir string, s Profile) ([]Setting, error) {
	key, cert, ca := b.File(roleKeyPEM), b.File(roleCertPEM), b.File(roleCAPEM)
	var missing []string
	if cert == nil {
		missing = append(missing, string(roleCertPEM))
	}
	if key == nil {
		missing = append(missing, string(roleKeyPEM))
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("conf: libprocess needs a PEM certificate and key; the bundle has no %s file", strings.Join(missing, " or "))
	}
	l := s.Libprocess
	if l == nil {
		l = &spec.Libprocess{}
	}
	const p = "LIBPROCESS_SSL_"
	out := []Setting{
		{Key: p + "ENABLED", Value: "true"},
		{Key: p + "CERT_FILE", Value: filepath.Join(dir, cert.Path)},
		{Key: p + "KEY_FILE", Value: filepath.Join(dir, key.Path)},
	}
	if ca != nil {
		out = append(out, Setting{Key: p + "CA_FILE", Value: filepath.Join(dir, ca.Path)})
	}
	text := func(name, v string) {
		if v != "" {
			out = append(out, Setting{Key: p + name, Value: v})
		}
	}
	flag := func(name string, v *bool, def bool) {
		if v != nil {
			def = *v
		}
		out = append(out, Setting{Key: p + name, Value: strconv.FormatBool(def)})
	}
	maybe := func(name string, v *bool) {
		if v != nil {
			flag(name, v, false)
		}
	}
	text("CA_DIR", l.CADir)
	flag("VERIFY_CERT", l.VerifyCert, true)
	flag("REQUIRE_CERT", l.RequireCert, false)
	maybe("VERIFY_IPADD", l.VerifyIPAdd)
	if l.VerificationDepth != nil {
		out = append(out, Setting{Key: p + "VERIFICATION_DEPTH", Value: strconv.Itoa(*l.VerificationDepth)})
	}
	maybe("ENABLE_SSL_V3", l.EnableSSLv3)
	maybe("ENABLE_TLS_V1_0", l.EnableTLS10)
	maybe("ENABLE_TLS_V1_1", l.EnableTLS11)
	tls12, tls13 := true, false
	if s.Libprocess == nil {
		tls12, tls13 = s.Protocol != "TLSv1.3", s.Protocol == "TLSv1.3"
	}
	flag("ENABLE_TLS_V1_2", l.EnableTLS12, tls12)
	flag("ENABLE_TLS_V1_3", l.EnableTLS13, tls13)
	flag("SUPPORT_DOWNGRADE", l.SupportDowngrade, false)
	text("CIPHERS", l.Ciphers)
	text("ECDH_CURVES", l.ECDHCurves)
	text("HOSTNAME_VALIDATION_SCHEME", l.HostnameValidationScheme)
	return out, nil
}

// Environment formats settings as KEY=VALUE lines, for an env file, a
// systemd EnvironmentFile or a shell (`set -a; . file`). A value that a
// shell would split or expand is single-quoted. Password settings are left
// out.
func Environment(settings []Setting) string {
	var b strings.Builder
	for _, s := range settings {
		if s.Password != nil {
			continue
		}
		b.WriteString(s.Key)
		b.WriteByte('=')
		b.WriteString(ShellQuote(s.Value))
		b.WriteByte('\n')
	}
	return b.String()
}

// ShellQuote returns v as one word a POSIX shell takes literally, also inside
// "$(...)": v itself when every character is safe, else v single-quoted.
func ShellQuote(v string) string {
	safe := v != ""
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:,+=@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
