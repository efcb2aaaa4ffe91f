package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// The dialects a TLS request may be written in.
const (
	// DialectDCOS is the DC/OS security.tls JSON (ParseDCOS).
	DialectDCOS = "dcos"
	// DialectSpark is Spark properties and dcos-spark flags (ParseSpark,
	// ReadSparkProperties), or the DC/OS Spark package's security.ssl
	// options JSON.
	DialectSpark = "spark"
	// DialectFlink is a Flink configuration, flink-conf.yaml (ParseFlink).
	DialectFlink = "flink"
	// DialectLibprocess is libprocess's LIBPROCESS_SSL_* environment
	// (ParseLibprocess, ReadEnv).
	DialectLibprocess = "libprocess"
)

// Dialects lists the dialects, in the order of the CLI's --dialect help.
var Dialects = []string{DialectDCOS, DialectSpark, DialectFlink, DialectLibprocess}

// Detect tells the dialect of a TLS request document from its content:
//
//   - a JSON object with security.tls is DialectDCOS; one with security.ssl
//     (the DC/OS Spark package's options, seed 003) is DialectSpark;
//   - otherwise, a YAML mapping with security.ssl settings (flat
//     "security.ssl.enabled: true" or nested) is DialectFlink;
//   - properties or spark-submit arguments with spark.ssl.* keys or a
//     dcos-spark TLS flag (--keystore-secret-path, ...) are DialectSpark;
//   - KEY=VALUE assignments of LIBPROCESS_SSL_* variables, or of the legacy
//     SSL_* names of libprocess, are DialectLibprocess.
//
// A document that matches more than one dialect, or none, is an error that
// says to pass the dialect (keyship ship --dialect).
func Detect(data []byte) (string, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(data)) == 0 {
		return "", errors.New("spec: empty TLS request; nothing to detect the dialect from")
	}
	var found []string
	if t := bytes.TrimSpace(data); t[0] == '{' && json.Valid(t) {
		found = jsonDialects(t)
		if len(found) == 0 {
			return "", errors.New(`spec: a JSON TLS request needs "security": {"tls": ...} (DC/OS) or "security": {"ssl": ...} (DC/OS Spark options)`)
		}
	} else if t[0] == '{' && bytes.Contains(t, []byte(`"security"`)) {
		// A JSON object with a syntax error: say where, not "cannot tell".
		var v any
		return "", malformedAs("JSON TLS request", t, json.Unmarshal(t, &v))
	} else {
		if looksFlink(data) {
			found = append(found, DialectFlink)
		}
		if looksSpark(data) {
			found = append(found, DialectSpark)
		}
		if looksLibprocess(data) {
			found = append(found, DialectLibprocess)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		if err := yamlSyntax(data); err != nil {
			return "", err
		}
		return "", fmt.Errorf("spec: cannot tell the dialect of the TLS request (no security.tls JSON, security.ssl YAML, "+
			"spark.ssl properties or LIBPROCESS_SSL_ variables); pass --dialect %s", strings.Join(Dialects, "|"))
	}
	return "", fmt.Errorf("spec: the TLS request could be %s; pass --dialect to say which", strings.Join(found, " or "))
}

// jsonDialects returns the dialects a JSON object document may be in.
func jsonDialects(data []byte) []string {
	top, ok := decodeObject(data)
	if !ok {
		return nil
	}
	sec, ok := decodeObject(top.vals["security"])
	if !ok {
		return nil
	}
	var out []string
	if _, ok := sec.vals["tls"]; ok {
		out = append(out, DialectDCOS)
	}
	if _, ok := sec.vals["ssl"]; ok {
		out = append(out, DialectSpark)
	}
	return out
}

func looksFlink(data []byte) bool {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return false
	}
	flat, err := flattenFlink(data)
	if err != nil {
		return false
	}
	for k := range flat.vals {
		if strings.HasPrefix(k, flinkPrefix) {
			return true
		}
	}
	return false
}

// yamlSyntax returns the YAML syntax error of a document that is meant as
// a Flink configuration (it names security.ssl or a security: mapping) but
// does not parse, with its line, or nil.
func yamlSyntax(data []byte) error {
	var doc yaml.Node
	err := yaml.Unmarshal(data, &doc)
	if err == nil || !flinkLike.Match(data) {
		return nil
	}
	return fmt.Errorf("spec: the TLS request looks like a Flink configuration but is not valid YAML: %w; fix the YAML "+
		"(or pass --dialect if it is not a Flink configuration)", yamlError(err))
}

// flinkLike matches a line that starts a Flink TLS setting, flat or nested.
var flinkLike = regexp.MustCompile(`(?m)^[ \t]*(security\.ssl\.|security[ \t]*:)`)

func looksSpark(data []byte) bool {
	for k := range readSparkProperties(data).vals {
		if strings.HasPrefix(k, sparkPrefix) || slices.Contains(sparkFlags, k) {
			return true
		}
	}
	return false
}

func looksLibprocess(data []byte) bool {
	for k := range readEnv(data).vals {
		if strings.HasPrefix(k, libprocessPrefix) {
			return true
		}
		if name, ok := strings.CutPrefix(k, legacySSLPrefix); ok && slices.Contains(libprocessKnown, name) {
			return true
		}
	}
	return false
}

// Parse parses a TLS request document in the given dialect (one of
// Dialects), or in the dialect Detect finds when dialect is "".
//
// The dialects carry secrets in different ways; keyship reads them all with
// one rule:
//
//   - a setting that names a file (keystore, truststore, PEM key,
//     certificate or CA file, DC/OS secret path) holds a secret ref: a plain
//     value such as "/etc/node.keystore" is a ref for the default backend,
//     and "${secret:REF}" is the same written explicitly;
//   - a password setting of Spark, the dcos-spark flags or Flink is a literal
//     password (kept inline, Field.Value) unless its whole value is
//     "${secret:REF}"; any other "${...:...}" (Spark's ${env:NAME}) is an
//     error, as keyship cannot read it. DC/OS security.tls settings are always
//     refs;
//   - Spark's keyStoreBase64 and trustStoreBase64 hold the store inline as
//     base64 (Field.Encoding EncodingBase64).
//
// In DialectSpark, a document that is a JSON object is read as the DC/OS
// Spark package's options ({"security": {"ssl": {...}}}, settings named
// security.ssl.<key>); any other document with ReadSparkProperties. In
// DialectLibprocess the document is read with ReadEnv.
func Parse(data []byte, dialect string) (*Spec, error) {
	if dialect == "" {
		d, err := Detect(data)
		if err != nil {
			return nil, err
		}
		dialect = d
	}
	dialect = strings.ToLower(dialect)
	s, err := parseDialect(data, dialect)
	if err != nil {
		return nil, err
	}
	s.Dialect = dialect
	return s, nil
}

func parseDialect(data []byte, dialect string) (*Spec, error) {
	switch dialect {
	case DialectDCOS:
		return ParseDCOS(data)
	case DialectSpark:
		if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
			return parseSparkOptions(t)
		}
		props, err := ReadSparkProperties(data)
		if err != nil {
			return nil, err
		}
		return ParseSpark(props)
	case DialectFlink:
		return ParseFlink(data)
	case DialectLibprocess:
		env, err := ReadEnv(data)
		if err != nil {
			return nil, err
		}
		return ParseLibprocess(env)
	}
	return nil, fmt.Errorf("spec: unknown dialect %q; use one of %s", dialect, strings.Join(Dialects, ", "))
}
