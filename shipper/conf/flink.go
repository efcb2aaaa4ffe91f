package conf

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
)

// FlinkSecretFile is the name, beside the stores, of the Flink fragment
// (FlinkFragment): every security.ssl setting keyship writes, passwords
// included, shipped 0600.
const FlinkSecretFile = "flink-ssl.yaml"

// flinkRelease is how one Flink release reads its configuration, from
// Flink's GlobalConfiguration.java, YamlParserUtils.java, SecurityOptions.java
// and SSLUtils.java of that release.
type flinkRelease struct{ v spec.Version }

// String names the release: "2.x" for the newest.
func (r flinkRelease) String() string {
	if r.v.IsZero() {
		return "2.x"
	}
	return r.v.String()
}

// standardYAML reports whether the release reads config.yaml with
// snakeyaml-engine (YAML 1.2, Core schema typing, duplicate keys refused;
// GlobalConfiguration.loadYAMLResource and YamlParserUtils, Flink 1.19+,
// FLINK-34257) rather than flink-conf.yaml line by line
// (loadLegacyYAMLResource: split at the first "#", then at the first ": ",
// trimmed; Flink 1.18 and before).
func (r flinkRelease) standardYAML() bool { return r.v.AtLeast(1, 19) }

// readsLegacyFirst reports whether the release, though it reads
// config.yaml, reads flink-conf.yaml instead when one is in the
// configuration directory (GlobalConfiguration.loadConfiguration, Flink 1.19
// and 1.20; Flink 2.0 reads config.yaml only).
func (r flinkRelease) readsLegacyFirst() bool {
	return r.standardYAML() && r.v.Before(2, 0)
}

// file is the configuration file the release reads: config.yaml from 1.19
// (1.19 and 1.20 still read a flink-conf.yaml when one is there; 2.x never
// does), flink-conf.yaml before.
func (r flinkRelease) file() string {
	if r.standardYAML() {
		return "config.yaml"
	}
	return "flink-conf.yaml"
}

// endpoints reports whether the release has security.ssl.internal.* and
// security.ssl.rest.* (Flink 1.6+); before, security.ssl.* and the
// component switches are all there is.
func (r flinkRelease) endpoints() bool { return r.v.AtLeast(1, 6) }

// restAuth reports whether the release reads
// security.ssl.rest.authentication-enabled (SecurityOptions.
// SSL_REST_AUTHENTICATION_ENABLED, Flink 1.7+, FLINK-10371).
func (r flinkRelease) restAuth() bool { return r.v.AtLeast(1, 7) }

// storeTypes reports whether the release reads *.keystore-type and
// *.truststore-type (Flink 1.20+); before, it opens the stores with
// KeyStore.getDefaultType().
func (r flinkRelease) storeTypes() bool { return r.v.AtLeast(1, 20) }

// flinkSettings collects settings with no key twice (Flink 1.19+ refuses a
// duplicate key).
type flinkSettings struct {
	out  []Setting
	errs []string
}

func (f *flinkSettings) add(s Setting) {
	for _, o := range f.out {
		if o.Key != s.Key {
			continue
		}
		if o.Value != s.Value || o.Password != nil || s.Password != nil {
			f.errs = append(f.errs, fmt.Sprintf("%s is set to %s and to %s", s.Key, o.Value, s.Value))
		}
		return
	}
	f.out = append(f.out, s)
}

func (f *flinkSettings) value(key, value string) { f.add(Setting{Key: key, Value: value}) }

// Flink returns the settings that make the Flink release s.FlinkVersion
// names (zero: Flink 2.x) use b's stores from dir (relative paths are
// relative to the TaskManager's working directory, the Mesos sandbox), with
// exactly the keys that release reads, each once:
//
//   - Flink 1.6 and later: for each endpoint s turns on,
//     security.ssl.internal.* (RPC, data exchange, blob server) and
//     security.ssl.rest.* (REST API, web UI): enabled, keystore,
//     keystore-password, key-password, truststore, truststore-password, and
//     from Flink 1.20 keystore-type and truststore-type; an endpoint s turns
//     off gets enabled: false;
//   - Flink 1.5 and before (seed 002): security.ssl.enabled and the shared
//     security.ssl.keystore ... truststore-password; an endpoint s turns off
//     is turned off with the component switches (jobmanager.web.ssl.enabled
//     for the web UI; taskmanager.data.ssl.enabled, blob.service.ssl.enabled
//     and akka.ssl.enabled for the internal connections);
//   - security.ssl.protocol (one for every endpoint), security.ssl.algorithms
//     (s.CipherSuites, or spec.DefaultSuites of the protocol: Flink's own
//     default, TLS_RSA_WITH_AES_128_CBC_SHA, is a TLS 1.2 suite for RSA keys
//     only, so a TLSv1.3 or EC-key job would fail its handshake), and
//     security.ssl.verify-hostname (s.VerifyHostname, or true, Flink's
//     default);
//   - the component switches s.Flink carries, by the name the release
//     reads (akka.ssl.enabled before 1.18, pekko.ssl.enabled after); the
//     Mesos artifact server's is an error for Flink 1.14 and later, which
//     removed it;
//   - security.ssl.rest.authentication-enabled when s.Flink.RESTAuth sets
//     it (mutual TLS on the REST endpoint, Flink 1.7+; true for an older
//     release is an error, false is left out: it is what that release
//     does);
//   - the settings s.Flink.PassThrough carries (security.ssl.provider,
//     session and handshake timeouts, certificate fingerprints, reload), as
//     written: keyship does not know which release reads each, except that
//     security.ssl.internal.* and security.ssl.rest.* ones are an error for
//     Flink 1.5 and before.
//
// How the passwords reach Flink: Flink's configuration has no substitution
// of environment variables or files, so a password must be in the
// configuration itself. Password settings carry it in Setting.Password,
// never in Value, and FlinkFragment writes the whole fragment, passwords
// included, to ship as a 0600 file (FlinkSecretFile beside the stores); what
// is printed (Print) says where that file goes and shows no password.
// Dynamic properties (-Dsecurity.ssl...=password) are not used: they show in
// ps and in the Mesos UI.
//
// A value the release would not read back unchanged is an error naming its
// setting, never the value: for flink-conf.yaml (Flink 1.18 and before) one
// that is empty, has a "#", a line break, or leading or trailing space; for
// config.yaml one that is not valid UTF-8 (every string is double-quoted
// there, so that neither YAML 1.2 Core typing, which snakeyaml-engine applies
// (true, null, 0x1F, 1e10000), nor YAML 1.1's (on, 1:20:30) reads a password
// as a Boolean, null, an Integer or a Double).
//
// The internal endpoint needs a truststore; b must have a keystore.
func Flink(b *materialize.Bundle, dir string, s Profile) ([]Setting, error) {
	rel := flinkRelease{s.FlinkVersion.Version}
	ks := b.File(roleKeystore)
	if ks == nil {
		return nil, fmt.Errorf("conf: Flink needs a keystore; the bundle has no %q file", roleKeystore)
	}
	ts := b.File(roleTruststore)
	internal, rest := true, true
	if s.Endpoints != nil {
		internal, rest = s.Endpoints.Internal, s.Endpoints.REST
	}
	if internal && ts == nil {
		return nil, errors.New("conf: Flink's internal TLS needs a truststore (security.ssl.internal.truststore) and the bundle has none; " +
			"add one to the spec, or turn internal TLS off")
	}
	protocol := s.Protocol
	if protocol == "" || protocol == spec.ProtocolTLS {
		protocol = spec.DefaultProtocol
	}
	suites := s.CipherSuites
	if len(suites) == 0 {
		suites = spec.DefaultSuites(protocol)
	}
	if reason := spec.CheckSuites(protocol, suites); reason != "" {
		name := s.CipherSuitesSetting
		if name == "" {
			name = "the cipher suites"
		}
		return nil, fmt.Errorf("conf: %s %s", name, reason)
	}

	f := &flinkSettings{}
	stores := func(p string) {
		f.value(p+"keystore", filepath.Join(dir, ks.Path))
		f.add(Setting{Key: p + "keystore-password", Password: b.KeystorePassword})
		f.add(Setting{Key: p + "key-password", Password: b.KeyPassword})
		if rel.storeTypes() {
			f.value(p+"keystore-type", storeType(ks.Path))
		}
		if ts != nil {
			f.value(p+"truststore", filepath.Join(dir, ts.Path))
			f.add(Setting{Key: p + "truststore-password", Password: b.TruststorePassword})
			if rel.storeTypes() {
				f.value(p+"truststore-type", storeType(ts.Path))
			}
		}
	}
	rpcSwitch := "akka.ssl.enabled"
	if rel.v.AtLeast(1, 18) {
		rpcSwitch = "pekko.ssl.enabled"
	}
	if rel.endpoints() {
		for _, ep := range []struct {
			name string
			on   bool
		}{{"internal", internal}, {"rest", rest}} {
			p := "security.ssl." + ep.name + "."
			f.value(p+"enabled", fmt.Sprint(ep.on))
			if ep.on {
				stores(p)
			}
		}
	} else {
		f.value("security.ssl.enabled", "true")
		stores("security.ssl.")
		if !rest {
			f.value("jobmanager.web.ssl.enabled", "false")
		}
		if !internal {
			for _, k := range []string{"taskmanager.data.ssl.enabled", "blob.service.ssl.enabled", rpcSwitch} {
				f.value(k, "false")
			}
		}
	}
	verify := true
	if s.VerifyHostname != nil {
		verify = *s.VerifyHostname
	}
	f.value("security.ssl.protocol", protocol)
	f.value("security.ssl.algorithms", strings.Join(suites, ","))
	f.value("security.ssl.verify-hostname", fmt.Sprint(verify))
	if c := s.Flink; c != nil {
		for _, sw := range []struct {
			key string
			s   *spec.Switch
		}{{"taskmanager.data.ssl.enabled", c.Data}, {"blob.service.ssl.enabled", c.Blob}, {rpcSwitch, c.RPC}} {
			if sw.s != nil {
				f.value(sw.key, fmt.Sprint(sw.s.On))
			}
		}
		if a := c.ArtifactServer; a != nil {
			if rel.v.AtLeast(1, 14) {
				return nil, fmt.Errorf("conf: %s: Flink %s does not read it (Flink 1.14 removed Mesos support and its artifact server); "+
					"remove it, or write for the Flink that runs on Mesos with --flink-version 1.13 or older", a.Setting, rel)
			}
			f.value("mesos.resourcemanager.artifactserver.ssl.enabled", fmt.Sprint(a.On))
		}
		if a := c.RESTAuth; a != nil {
			switch {
			case rel.restAuth():
				if a.On && rest && ts == nil {
					return nil, fmt.Errorf("conf: %s: mutual TLS on the REST endpoint needs a truststore (security.ssl.rest.truststore) and the bundle has none", a.Setting)
				}
				f.value("security.ssl.rest.authentication-enabled", fmt.Sprint(a.On))
			case a.On:
				return nil, fmt.Errorf("conf: %s: Flink %s has no mutual TLS on its REST endpoint (security.ssl.rest.authentication-enabled came with Flink 1.7, FLINK-10371); "+
					"write for Flink 1.7 or later with --flink-version, or remove it", a.Setting, rel)
			}
		}
		for _, kv := range c.PassThrough {
			if !rel.endpoints() && (strings.HasPrefix(kv.Key, "security.ssl.internal.") || strings.HasPrefix(kv.Key, "security.ssl.rest.")) {
				return nil, fmt.Errorf("conf: %s: Flink %s does not read it (security.ssl.internal.* and security.ssl.rest.* came with Flink 1.6); remove it, "+
					"or write for Flink 1.6 or later with --flink-version", kv.Key, rel)
			}
			f.value(kv.Key, kv.Value)
		}
	}
	if len(f.errs) > 0 {
		return nil, fmt.Errorf("conf: the Flink settings would set a key twice: %s", strings.Join(f.errs, "; "))
	}

	var bad, nonASCII []string
	for _, st := range f.out {
		v := []byte(st.Value)
		if st.Password != nil {
			v = st.Password
		}
		switch {
		case rel.standardYAML() && !utf8.Valid(v), !rel.standardYAML() && !flinkLegacyPlain(v):
			bad = append(bad, st.Key)
		case !rel.standardYAML() && !isASCII(v):
			nonASCII = append(nonASCII, st.Key)
		}
	}
	if len(nonASCII) > 0 && len(bad) == 0 {
		return nil, fmt.Errorf("conf: %s: non-ASCII characters cannot go into Flink %s's flink-conf.yaml: Flink 1.18 and before read it in the JVM's default charset "+
			"(GlobalConfiguration.loadYAMLResource: new InputStreamReader without a charset), which is ASCII on Java 17 under the POSIX locale a Mesos task gets, "+
			"so the store would not open (\"keystore was tampered with, or password was incorrect\"); use an ASCII password, or Flink 1.19+'s config.yaml (read as UTF-8)",
			strings.Join(nonASCII, ", "), rel)
	}
	if len(bad) > 0 {
		why := `it is empty, or has a "#", a line break, or leading or trailing space, which Flink's flink-conf.yaml reader drops`
		if rel.standardYAML() {
			why = "it is not valid UTF-8"
		}
		return nil, fmt.Errorf("conf: cannot write %s in Flink %s's %s so that Flink reads it back unchanged (%s)", strings.Join(bad, ", "), rel, rel.file(), why)
	}
	return f.out, nil
}

// isASCII reports whether v is ASCII only.
func isASCII(v []byte) bool {
	for _, c := range v {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// flinkLegacyPlain reports whether v reads back unchanged with Flink's
// flink-conf.yaml reader (GlobalConfiguration.loadLegacyYAMLResource, Flink
// 1.18 and before): each line is cut at its first "#", split at the first
// ": " and trimmed, and a line with an empty value is skipped.
func flinkLegacyPlain(v []byte) bool {
	if len(v) == 0 || len(bytes.TrimSpace(v)) != len(v) || bytes.IndexByte(v, '#') >= 0 {
		return false
	}
	return !bytes.ContainsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' || r == 0x85 || r == 0x2028 || r == 0x2029 })
}

// FlinkFragment writes settings as the Flink configuration fragment for the
// release s.FlinkVersion names, passwords included: the file to ship as a
// 0600 FlinkSecretFile, and to merge into that release's configuration file
// (Print says which). For config.yaml (Flink 1.19+) every value but true and
// false is a double-quoted YAML string, so that snakeyaml-engine returns
// exactly the string (a double-quoted scalar is a string in every schema); for flink-conf.yaml values are written as they are (Flink 1.18
// and before take the text after ": " literally; Flink checked them). It
// holds secrets: never print or log it, and zero it once shipped.
func FlinkFragment(settings []Setting, s Profile) materialize.Sensitive {
	rel := flinkRelease{s.FlinkVersion.Version}
	header := fmt.Sprintf("# keyship: the TLS settings for Flink %s, to merge into %s (each key once)\n", rel, rel.file())
	if rel.readsLegacyFirst() {
		header += fmt.Sprintf("# Flink %s reads flink-conf.yaml instead of config.yaml when it exists: remove a leftover flink-conf.yaml\n", rel)
	}
	n := len(header)
	for _, st := range settings {
		// A quoted value takes at most 10 bytes per byte (\UXXXXXXXX).
		n += len(st.Key) + len(": \"\"\n") + 10*(len(st.Value)+len(st.Password))
	}
	// One allocation, so that no partial copy of a password is left behind.
	b := make([]byte, 0, n)
	b = append(b, header...)
	for _, st := range settings {
		v := []byte(st.Value)
		if st.Password != nil {
			v = st.Password
		}
		b = append(b, st.Key...)
		b = append(b, ": "...)
		switch {
		case !rel.standardYAML(), st.Password == nil && (st.Value == "true" || st.Value == "false"):
			b = append(b, v...)
		default:
			b = appendYAMLQuoted(b, v)
		}
		b = append(b, '\n')
	}
	return b
}

// appendYAMLQuoted appends v as a YAML double-quoted scalar: '"' and '\'
// escaped, and every rune YAML does not allow printed as is (C0 and C1
// controls, DEL, the line and paragraph separators, the byte order mark,
// other non-printing runes) as an escape. v must be valid UTF-8.
func appendYAMLQuoted(b, v []byte) []byte {
	b = append(b, '"')
	for i := 0; i < len(v); {
		r, size := utf8.DecodeRune(v[i:])
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r >= 0x20 && r < 0x7f:
			b = append(b, byte(r))
		case r == utf8.RuneError && size == 1, r < 0x20, r >= 0x7f && r <= 0x9f, r == 0x2028, r == 0x2029, r == 0xfeff, !unicode.IsPrint(r):
			b = appendEscape(b, r)
		default:
			b = append(b, v[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// appendEscape appends r as a YAML \uXXXX or \UXXXXXXXX escape, without
// fmt (whose buffers would keep a copy).
func appendEscape(b []byte, r rune) []byte {
	const hex = "0123456789ABCDEF"
	digits := 4
	b = append(b, '\\', 'u')
	if r > 0xffff {
		digits = 8
		b[len(b)-1] = 'U'
	}
	for i := digits - 1; i >= 0; i-- {
		b = append(b, hex[(r>>(4*i))&0xf])
	}
	return b
}
