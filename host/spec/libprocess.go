package spec

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// The prefixes of libprocess's TLS environment variables. Mesos reads both,
// LIBPROCESS_SSL_ taking precedence (MESOS-5863; 3rdparty/libprocess/src/
// openssl.cpp, reinitialize).
const (
	libprocessPrefix = "LIBPROCESS_SSL_"
	legacySSLPrefix  = "SSL_"
)

// The libprocess TLS settings, without prefix, in the order of the Mesos SSL
// documentation (seed 004 and docs/ssl.md), by the names libprocess reads:
// the flags of process::network::openssl::Flags (3rdparty/libprocess/src/
// openssl.cpp, Mesos 1.4-1.11), loaded from the environment by stout's flag
// loader, which skips any other name without a word.
const (
	lpEnabled           = "ENABLED"
	lpSupportDowngrade  = "SUPPORT_DOWNGRADE"
	lpKeyFile           = "KEY_FILE"
	lpCertFile          = "CERT_FILE"
	lpVerifyCert        = "VERIFY_CERT"
	lpVerifyServerCert  = "VERIFY_SERVER_CERT"
	lpRequireCert       = "REQUIRE_CERT"
	lpRequireClientCert = "REQUIRE_CLIENT_CERT"
	lpVerificationDepth = "VERIFICATION_DEPTH"
	lpVerifyIPAdd       = "VERIFY_IPADD"
	lpCADir             = "CA_DIR"
	lpCAFile            = "CA_FILE"
	lpCiphers           = "CIPHERS"
	lpEnableSSLv3       = "ENABLE_SSL_V3"
	lpEnableTLS10       = "ENABLE_TLS_V1_0"
	lpEnableTLS11       = "ENABLE_TLS_V1_1"
	lpEnableTLS12       = "ENABLE_TLS_V1_2"
	lpEnableTLS13       = "ENABLE_TLS_V1_3"
	lpECDHCurves        = "ECDH_CURVES"
	lpHostnameScheme    = "HOSTNAME_VALIDATION_SCHEME"
)

var libprocessKnown = []string{
	lpEnabled, lpSupportDowngrade, lpKeyFile, lpCertFile, lpVerifyCert, lpVerifyServerCert,
	lpRequireCert, lpRequireClientCert, lpVerificationDepth, lpVerifyIPAdd, lpCADir, lpCAFile,
	lpCiphers, lpEnableSSLv3, lpEnableTLS10, lpEnableTLS11, lpEnableTLS12, lpEnableTLS13,
	lpECDHCurves, lpHostnameScheme,
}

// libprocessDocNames are names the Mesos SSL documentation (seed 004,
// docs/ssl.md) gives for settings that libprocess reads under another name:
// keyship accepts them, translates them and warns, as libprocess would
// silently run with its default.
var libprocessDocNames = map[string]string{
	"VERIFY_DEPTH": lpVerificationDepth,
	"ECDH_CURVE":   lpECDHCurves,
}

// ParseLibprocess parses the TLS environment of a libprocess process (a Mesos
// master, agent, framework scheduler or executor; seed 004) into a Spec.
// env holds environment variables, e.g. from ReadEnv; variables other than
// LIBPROCESS_SSL_* and the known legacy SSL_* names are ignored.
//
// Mesos's rules:
//   - each setting may be given as LIBPROCESS_SSL_<NAME> or, as before Mesos
//     1.0, SSL_<NAME>; when both are set, LIBPROCESS_SSL_<NAME> wins, as in
//     libprocess (an unrelated SSL_CERT_FILE of OpenSSL's is then harmless);
//   - ENABLED must be true; KEY_FILE and CERT_FILE are required: they name
//     the PEM private key (Spec.Keystore.Key) and certificate chain
//     (Spec.Keystore.Certificate); CA_FILE, a PEM CA bundle, is the
//     truststore (Spec.Truststore, no password);
//   - booleans are true, false, 1 or 0 (any letter case); VERIFICATION_DEPTH
//     is a number;
//   - VERIFY_DEPTH and ECDH_CURVE, the names the Mesos documentation gives,
//     are not the ones libprocess reads (VERIFICATION_DEPTH, ECDH_CURVES):
//     they are taken as those, with a warning in Spec.Warnings; giving both
//     names of one setting with different values is an error;
//   - VERIFY_SERVER_CERT and REQUIRE_CLIENT_CERT are the newer names of
//     VERIFY_CERT and REQUIRE_CERT; either sets Libprocess.VerifyCert or
//     RequireCert (true when either is true, as libprocess does);
//   - keyship ships for TLSv1.2 and TLSv1.3 only: ENABLE_SSL_V3,
//     ENABLE_TLS_V1_0 and ENABLE_TLS_V1_1 may only be false; Spec.Protocol
//     is the highest of TLS 1.2 (on unless ENABLE_TLS_V1_2 is false) and
//     TLS 1.3 (off unless ENABLE_TLS_V1_3 is true) that is on, and one must
//     be.
//
// The file settings hold refs: a plain path such as
// /etc/mesos/ssl/key.pem is a ref for the default backend, and
// ${secret:REF} is accepted too. CA_DIR names a directory on the agent:
// keyship does not ship it and keeps it in Libprocess.CADir. The Spec's
// StoreType is StoreTypePEM.
//
// Problems are reported together as an *Errors of *FieldError naming the
// variable as given, e.g. "LIBPROCESS_SSL_KEY_FILE" or "SSL_VERIFY_DEPTH".
func ParseLibprocess(env map[string]string) (*Spec, error) {
	p := &lpParser{settings: settings{errs: &Errors{}}, env: env}
	return p.parse()
}

type lpParser struct {
	settings
	env map[string]string
}

// get returns a setting's variable name and value: LIBPROCESS_SSL_<name>,
// or else SSL_<name>, or else one of the documented names that stand for
// it (libprocessDocNames). An empty value counts as not set.
func (p *lpParser) get(name string) (string, string, bool) {
	names := []string{name}
	for doc, real := range libprocessDocNames {
		if real == name {
			names = append(names, doc)
		}
	}
	for _, n := range names {
		for _, prefix := range []string{libprocessPrefix, legacySSLPrefix} {
			if v, ok := p.env[prefix+n]; ok {
				if v = strings.TrimSpace(v); v != "" {
					return prefix + n, v, true
				}
				return "", "", false
			}
		}
	}
	return "", "", false
}

// docNames warns about each documented-but-ignored name given, and reports
// one given together with the real name and another value.
func (p *lpParser) docNames() []string {
	var warnings []string
	docs := slices.Sorted(maps.Keys(libprocessDocNames))
	for _, doc := range docs {
		real := libprocessDocNames[doc]
		for _, prefix := range []string{libprocessPrefix, legacySSLPrefix} {
			v, ok := p.env[prefix+doc]
			if !ok {
				continue
			}
			if rv, both := p.env[prefix+real]; both && strings.TrimSpace(rv) != strings.TrimSpace(v) {
				p.errs.add(prefix+doc, "", fmt.Sprintf("set together with %s%s to another value; libprocess reads only %s%s (openssl.cpp): remove %s%s",
					prefix, real, prefix, real, prefix, doc))
				continue
			}
			warnings = append(warnings, fmt.Sprintf("%s%s is the Mesos documentation's name, but libprocess reads %s%s (3rdparty/libprocess/src/openssl.cpp) "+
				"and would ignore it without a word; keyship writes %s%s", prefix, doc, libprocessPrefix, real, libprocessPrefix, real))
		}
	}
	return warnings
}

// flag reads a boolean switch; nil when not set or invalid.
func (p *lpParser) flag(name string) *bool {
	key, v, ok := p.get(name)
	if !ok {
		return nil
	}
	switch strings.ToLower(v) {
	case "true", "1":
		return new(true)
	case "false", "0":
		return new(false)
	}
	p.errs.add(key, "", "must be true, false, 1 or 0")
	return nil
}

func (p *lpParser) text(name string) string {
	_, v, _ := p.get(name)
	return v
}

func (p *lpParser) parse() (*Spec, error) {
	enabled := p.flag(lpEnabled)
	if k, _, set := p.get(lpEnabled); !set {
		p.errs.add(libprocessPrefix+lpEnabled, "", "TLS is not enabled: "+libprocessPrefix+lpEnabled+" is missing; set it to true")
	} else if enabled != nil && !*enabled {
		p.errs.add(k, "", "TLS is not enabled: "+k+" is false; set it to true")
	}
	l := &Libprocess{
		SupportDowngrade:         p.flag(lpSupportDowngrade),
		VerifyCert:               either(p.flag(lpVerifyCert), p.flag(lpVerifyServerCert)),
		RequireCert:              either(p.flag(lpRequireCert), p.flag(lpRequireClientCert)),
		VerifyIPAdd:              p.flag(lpVerifyIPAdd),
		CADir:                    p.text(lpCADir),
		Ciphers:                  p.text(lpCiphers),
		ECDHCurves:               p.text(lpECDHCurves),
		HostnameValidationScheme: p.text(lpHostnameScheme),
		EnableSSLv3:              p.flag(lpEnableSSLv3),
		EnableTLS10:              p.flag(lpEnableTLS10),
		EnableTLS11:              p.flag(lpEnableTLS11),
		EnableTLS12:              p.flag(lpEnableTLS12),
		EnableTLS13:              p.flag(lpEnableTLS13),
	}
	on := enabled != nil && *enabled
	file := func(name, what string) *Field {
		key, v, ok := p.get(name)
		if !ok {
			if on {
				p.errs.add(libprocessPrefix+name, "", "required when TLS is enabled ("+what+")")
			}
			return nil
		}
		f, ok := p.fileRef(key, v)
		if !ok {
			return nil
		}
		return &f
	}
	key := file(lpKeyFile, "the secret ref of the PEM private key")
	cert := file(lpCertFile, "the secret ref of the PEM certificate chain")
	var ca *Field
	if k, v, ok := p.get(lpCAFile); ok {
		if f, ok := p.fileRef(k, v); ok {
			ca = &f
		}
	}
	if k, v, ok := p.get(lpVerificationDepth); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			p.errs.add(k, "", "must be a number of certificates, 0 or more")
		} else {
			l.VerificationDepth = &n
		}
	}
	warnings := p.docNames()
	if k, v, ok := p.get(lpHostnameScheme); ok && v != "legacy" && v != "openssl" {
		p.errs.add(k, "", "must be legacy or openssl")
	}
	for _, old := range []struct {
		name, proto string
		on          *bool
	}{{lpEnableSSLv3, "SSLv3", l.EnableSSLv3}, {lpEnableTLS10, "TLSv1.0", l.EnableTLS10}, {lpEnableTLS11, "TLSv1.1", l.EnableTLS11}} {
		if old.on != nil && *old.on {
			k, _, _ := p.get(old.name)
			p.errs.add(k, "", fmt.Sprintf("%s is not accepted; keyship ships for %s only (the JVM side refuses older protocols)", old.proto, strings.Join(Protocols, " and ")))
		}
	}
	protocol := ""
	if l.EnableTLS13 != nil && *l.EnableTLS13 {
		protocol = "TLSv1.3"
	} else if l.EnableTLS12 == nil || *l.EnableTLS12 {
		protocol = "TLSv1.2"
	}
	if protocol == "" {
		k, _, _ := p.get(lpEnableTLS12)
		p.errs.add(k, "", "no accepted protocol is enabled: with TLS 1.2 off, set "+libprocessPrefix+lpEnableTLS13+" to true")
	}

	var unknown []string
	for k := range p.env {
		name, ok := strings.CutPrefix(k, libprocessPrefix)
		if _, doc := libprocessDocNames[name]; ok && !doc && !slices.Contains(libprocessKnown, name) {
			unknown = append(unknown, k)
		}
	}
	p.errs.reportUnknown(unknown, "setting", displayKey, func(k string) string {
		if g := guessKey(strings.TrimPrefix(k, libprocessPrefix), libprocessKnown); g != "" {
			return libprocessPrefix + g
		}
		return ""
	}, "known settings are "+libprocessPrefix+strings.Join(libprocessKnown, ", "+libprocessPrefix))

	if len(p.errs.List) > 0 {
		return nil, p.errs
	}
	s := &Spec{
		Keystore:        Store{Key: key, Certificate: cert},
		Protocol:        protocol,
		ProtocolSetting: "LIBPROCESS_SSL_ENABLE_TLS_V1_*",
		StoreType:       StoreTypePEM,
		Libprocess:      l,
		Warnings:        warnings,
	}
	if ca != nil {
		s.Truststore = &Store{Secret: *ca}
	}
	return s, nil
}

// either combines a switch and its alias: true when either is true, false
// when one is false and neither true, nil when neither is set.
func either(a, b *bool) *bool {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return new(*a || *b)
}
