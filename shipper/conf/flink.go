package conf

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
)

// FlinkSecretFile is the name, beside the stores, of the secret fragment
// (SecretYAML) that carries Flink's settings with their passwords.
const FlinkSecretFile = "flink-ssl.yaml"

// Flink returns the security.ssl.* settings that make Flink use b's stores
// from dir (relative paths are relative to the TaskManager's working
// directory, the Mesos sandbox), for the endpoints s turns on:
// security.ssl.internal.* (RPC, data exchange, blob server) and
// security.ssl.rest.* (REST API, web UI), each with enabled, keystore,
// keystore-password, key-password, keystore-type, truststore,
// truststore-password and truststore-type; an endpoint s turns off gets
// enabled: false. Then security.ssl.protocol (Flink has one for every
// endpoint) and security.ssl.verify-hostname (s.VerifyHostname, or true,
// Flink's default, when s does not say).
//
// How the passwords reach Flink: flink-conf.yaml has no substitution of
// environment variables or files, so a password must be in the
// configuration itself. Flink's password settings therefore carry the
// password in Setting.Password, never in Value; SecretYAML writes the whole
// fragment, passwords included, to ship as a 0600 file (FlinkSecretFile
// beside the stores) that the TaskManager's launch command appends to its
// configuration before Flink starts,
//
//	cat "$MESOS_SANDBOX/.keyship/flink-ssl.yaml" >> "$FLINK_CONF_DIR/flink-conf.yaml"
//
// or to pass as the FLINK_PROPERTIES variable that Flink's container image
// appends to its configuration (a Mesos SECRET variable). Dynamic properties
// (-Dsecurity.ssl...=password on the command line) are not used: they show
// in ps and in the Mesos UI. YAML, for stdout, leaves the passwords out.
//
// Flink's flink-conf.yaml reader before Flink 1.19 takes the text after
// ": " literally up to a "#": values are written plain, and a value that
// this reader and a YAML reader would not both read back unchanged (a "#",
// ": ", quotes, leading or trailing space, a YAML indicator first) is an
// error naming its setting, never the value.
//
// The internal endpoint needs a truststore; b must have a keystore.
func Flink(b *materialize.Bundle, dir string, s *spec.Spec) ([]Setting, error) {
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
	var out []Setting
	for _, ep := range []struct {
		name string
		on   bool
	}{{"internal", internal}, {"rest", rest}} {
		p := "security.ssl." + ep.name + "."
		if !ep.on {
			out = append(out, Setting{Key: p + "enabled", Value: "false"})
			continue
		}
		out = append(out,
			Setting{Key: p + "enabled", Value: "true"},
			Setting{Key: p + "keystore", Value: filepath.Join(dir, ks.Path)},
			Setting{Key: p + "keystore-password", Password: b.KeystorePassword},
			Setting{Key: p + "key-password", Password: b.KeyPassword},
			Setting{Key: p + "keystore-type", Value: storeType(ks.Path)},
		)
		if ts != nil {
			out = append(out,
				Setting{Key: p + "truststore", Value: filepath.Join(dir, ts.Path)},
				Setting{Key: p + "truststore-password", Password: b.TruststorePassword},
				Setting{Key: p + "truststore-type", Value: storeType(ts.Path)},
			)
		}
	}
	protocol := s.Protocol
	if protocol == "" {
		protocol = spec.DefaultProtocol
	}
	verify := true
	if s.VerifyHostname != nil {
		verify = *s.VerifyHostname
	}
	out = append(out,
		Setting{Key: "security.ssl.protocol", Value: protocol},
		Setting{Key: "security.ssl.verify-hostname", Value: fmt.Sprint(verify)},
	)
	var bad []string
	for _, st := range out {
		v := st.Value
		if st.Password != nil {
			v = string(st.Password)
		}
		if !flinkPlain(v) {
			bad = append(bad, st.Key)
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("conf: cannot write %s in flink-conf.yaml so that Flink reads it back unchanged "+
			"(it is empty, or has a \"#\", \": \", a quote, a line break, leading or trailing space, or a YAML indicator first)", strings.Join(bad, ", "))
	}
	return out, nil
}

// flinkPlain reports whether v reads back unchanged both with Flink's
// line-based flink-conf.yaml reader (split at the first "#", then at ": ",
// trimmed) and with a YAML reader (Flink 1.19+ config.yaml, and keyship's
// own ParseFlink), where a plain scalar that resolves to a number, a boolean
// or null must print back as the same text.
func flinkPlain(v string) bool {
	if v == "" || strings.TrimSpace(v) != v || strings.ContainsAny(v, "#\"'") ||
		strings.Contains(v, ": ") || strings.HasSuffix(v, ":") || strings.ContainsRune("-?:,[]{}&*!|>%@`", rune(v[0])) {
		return false
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	var back any
	if err := yaml.Unmarshal([]byte("v: "+v), &struct{ V *any }{&back}); err != nil {
		return false
	}
	if str, ok := back.(string); ok {
		return str == v
	}
	return back != nil && fmt.Sprint(back) == v
}

// YAML formats settings as flink-conf.yaml lines, "key: value". Password
// settings are written as a comment that names them without their value:
// they are in the secret fragment (SecretYAML).
func YAML(settings []Setting) string {
	var b strings.Builder
	for _, s := range settings {
		if s.Password != nil {
			fmt.Fprintf(&b, "# %s: not printed; it is in the secret fragment (%s)\n", s.Key, FlinkSecretFile)
			continue
		}
		fmt.Fprintf(&b, "%s: %s\n", s.Key, s.Value)
	}
	return b.String()
}

// SecretYAML formats settings as flink-conf.yaml lines with the passwords
// written in: the fragment to ship as a 0600 file or a SECRET variable. It
// holds secrets: never print or log it, and zero it once shipped.
func SecretYAML(settings []Setting) materialize.Sensitive {
	n := 0
	for _, s := range settings {
		n += len(s.Key) + len(": ") + len(s.Value) + len(s.Password) + 1
	}
	// One allocation, so that no partial copy of a password is left behind.
	b := make([]byte, 0, n)
	for _, s := range settings {
		b = append(b, s.Key...)
		b = append(b, ": "...)
		if s.Password != nil {
			b = append(b, s.Password...)
		} else {
			b = append(b, s.Value...)
		}
		b = append(b, '\n')
	}
	return b
}
