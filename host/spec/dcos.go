package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// dcosTLS is the full name of the DC/OS TLS settings object.
const dcosTLS = "security.tls"

// The settings of security.tls, in the order of the DC/OS documentation, then
// keyship's own.
const (
	dcosEnabled            = "enabled"
	dcosKeystoreSecret     = "keystore_secret"
	dcosKeystorePassword   = "keystore_password"
	dcosKeyPassword        = "key_password"
	dcosTruststoreSecret   = "truststore_secret"
	dcosTruststorePassword = "truststore_password"
	dcosCABundleSecret     = "ca_bundle_secret"
	dcosProtocol           = "protocol"
	dcosStoreType          = "store_type"
	dcosKeystoreIssue      = "keystore_issue"
	dcosKeystoreIssueTTL   = "keystore_issue_ttl"
	dcosPassthrough        = "passthrough"
)

// ExampleDCOS is the security.tls example of the DC/OS Data Science Engine's
// TLS page (seed 000), with {{ model.packageName }} replaced by spark: the
// spec of keyship demo and of the tests' seed-000 jobs.
const ExampleDCOS = `{
  "security": {
    "tls": {
      "enabled": true,
      "keystore_secret": "/spark/keystore",
      "keystore_password": "/spark/keystore_password",
      "key_password": "/spark/key_password",
      "truststore_secret": "/spark/truststore",
      "truststore_password": "/spark/truststore_password",
      "ca_bundle_secret": "/spark/ca_bundle_truststore",
      "protocol": "TLSv1.2"
    }
  }
}
`

var dcosKnown = []string{
	dcosEnabled, dcosKeystoreSecret, dcosKeystorePassword, dcosKeyPassword,
	dcosTruststoreSecret, dcosTruststorePassword, dcosCABundleSecret,
	dcosProtocol, dcosStoreType, dcosKeystoreIssue, dcosKeystoreIssueTTL, dcosPassthrough,
}

// Protocols are the TLS protocols a Spec may ask for: the ones both the JVM
// (JSSE) and OpenSSL accept today.
var Protocols = []string{"TLSv1.2", "TLSv1.3"}

// Store types a Spec may ask for: the format of the stores the consumer
// reads. JVM consumers read a JKS or PKCS12 keystore and truststore;
// OpenSSL consumers (libprocess) read PEM key, certificate and CA files.
const (
	StoreTypeJKS    = "jks"
	StoreTypePKCS12 = "pkcs12"
	StoreTypePEM    = "pem"
)

// ParseDCOS parses the DC/OS Spark / Data Science Engine TLS settings,
//
//	{"security": {"tls": {
//	  "enabled": true,
//	  "keystore_secret": "/spark/keystore",
//	  "keystore_password": "/spark/keystore_password",
//	  "key_password": "/spark/key_password",
//	  "truststore_secret": "/spark/truststore",
//	  "truststore_password": "/spark/truststore_password",
//	  "ca_bundle_secret": "/spark/ca_bundle_truststore",
//	  "protocol": "TLSv1.2"
//	}}}
//
// into a Spec. Every secret and password setting holds a secret ref (see
// ParseRef), never the secret itself. The rules are DC/OS's:
//   - enabled must be true;
//   - keystore_secret, keystore_password and key_password are required;
//   - truststore_secret, truststore_password and ca_bundle_secret go together:
//     with a truststore_secret the other two are required, without it they
//     must not be set;
//   - protocol is optional (DefaultProtocol) and must be one of Protocols.
//
// A setting that holds "" or null counts as not set, as in the DC/OS package
// defaults.
//
// As a keyship extension, store_type selects the keystore type the consumer
// reads: "jks" (the default) or "pkcs12", in any letter case.
//
// Also a keyship extension, keystore_issue asks a backend's certificate
// authority for a new certificate covering the job's hosts instead of reading
// keystore_secret: its value is the issuer's ref, e.g.
// "vault:pki/issue/spark-node" (a Vault PKI role) or "dcos:ca" (the DC/OS
// CA). keystore_secret must then be left out; keystore_password and
// key_password become optional (without them keyship derives the
// passwords of the stores it writes from the issued private key). keystore_issue_ttl asks for a lifetime
// as a Go duration ("72h"); without it the authority's default applies.
//
// Also a keyship extension, passthrough (true by default) ships a keystore,
// truststore or CA bundle that is already a JKS or PKCS12 store of the
// store_type as its exact bytes once it passes every check, so that Mesos can
// read it by REFERENCE from the secret store; false makes keyship write every
// store anew (Spec.Passthrough).
//
// Keys outside security.tls are ignored (the same document may carry a
// service's other options); unknown keys inside security.tls are errors.
//
// When the JSON is well-formed but the settings are wrong, the error is an
// *Errors listing every problem, each a *FieldError naming the setting by its
// full name, e.g. "security.tls.keystore_password". Malformed JSON gives an
// error with its line and column that wraps the *json.SyntaxError.
func ParseDCOS(data []byte) (*Spec, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New(`spec: empty security.tls JSON; want {"security":{"tls":{...}}}`)
	}
	var whole json.RawMessage
	if err := json.Unmarshal(data, &whole); err != nil {
		return nil, malformed(data, err)
	}
	top, ok := decodeObject(whole)
	if !ok {
		return nil, fmt.Errorf(`spec: security.tls JSON must be an object {"security":{"tls":{...}}}, got %s`, kindOf(whole))
	}

	errs := &Errors{}
	notEnabled := func(why string) (*Spec, error) {
		errs.add(dcosTLS+"."+dcosEnabled, "", "TLS is not enabled: "+why+"; set security.tls.enabled to true")
		return nil, errs
	}
	if top.dup("security") {
		errs.add("security", "", "set more than once")
	}
	secRaw := top.vals["security"]
	if isAbsent(secRaw) {
		return notEnabled("there is no security object")
	}
	sec, ok := decodeObject(secRaw)
	if !ok {
		errs.add("security", "", "must be a JSON object, got "+kindOf(secRaw))
		return nil, errs
	}
	if sec.dup("tls") {
		errs.add(dcosTLS, "", "set more than once")
	}
	tlsRaw := sec.vals["tls"]
	if isAbsent(tlsRaw) {
		return notEnabled("there is no security.tls object")
	}
	tls, ok := decodeObject(tlsRaw)
	if !ok {
		errs.add(dcosTLS, "", "must be a JSON object, got "+kindOf(tlsRaw))
		return nil, errs
	}
	return parseDCOSTLS(tls, errs)
}

// parseDCOSTLS applies the rules of ParseDCOS to the security.tls object,
// adding every problem to errs.
func parseDCOSTLS(tls *object, errs *Errors) (*Spec, error) {
	p := &dcosParser{obj: tls, errs: errs}
	for _, k := range tls.dups {
		if slices.Contains(dcosKnown, k) {
			errs.add(fieldName(k), "", "set more than once")
		}
	}

	enabled := false
	switch raw := tls.vals[dcosEnabled]; {
	case isAbsent(raw):
		errs.add(fieldName(dcosEnabled), "", "TLS is not enabled: security.tls.enabled is missing; set it to true")
	case kindOf(raw) != "boolean":
		errs.add(fieldName(dcosEnabled), "", "must be true or false, got "+kindOf(raw))
	default:
		_ = json.Unmarshal(raw, &enabled)
		if !enabled {
			errs.add(fieldName(dcosEnabled), "", "TLS is not enabled: security.tls.enabled is false; set it to true")
		}
	}

	ks := p.ref(dcosKeystoreSecret)
	ksp := p.ref(dcosKeystorePassword)
	kp := p.ref(dcosKeyPassword)
	ts := p.ref(dcosTruststoreSecret)
	tsp := p.ref(dcosTruststorePassword)
	ca := p.ref(dcosCABundleSecret)

	issue := p.ref(dcosKeystoreIssue)
	var issueTTL time.Duration
	if v, st := p.str(dcosKeystoreIssueTTL); st == valid {
		d, err := time.ParseDuration(v)
		switch {
		case issue.state == absent:
			errs.add(fieldName(dcosKeystoreIssueTTL), "", "only goes with security.tls.keystore_issue")
		case err != nil || d <= 0:
			errs.add(fieldName(dcosKeystoreIssueTTL), "", fmt.Sprintf("want a positive duration such as 72h, got %q", Shorten(v)))
		default:
			issueTTL = d
		}
	}

	// Required settings are only reported for a spec that enables TLS: for
	// one that does not, "not enabled" is the one thing to fix.
	switch {
	case issue.state != absent && ks.state != absent:
		errs.add(fieldName(dcosKeystoreSecret), ks.raw, "give keystore_secret or keystore_issue, not both")
	case issue.state != absent:
		if issue.ref.Field != "" || issue.ref.Version != "" {
			errs.add(fieldName(dcosKeystoreIssue), issue.raw, "an issuer ref names a backend and a path (vault:pki/issue/<role>, dcos:ca), without #field or @version")
		}
	case enabled:
		p.require(ks, "the secret ref of the keystore")
		p.require(ksp, "the secret ref of the keystore password")
		p.require(kp, "the secret ref of the private key password")
	}
	if ts.state != absent {
		p.requireWith(tsp, dcosTruststoreSecret, "the secret ref of the truststore password")
		p.requireWith(ca, dcosTruststoreSecret, "the secret ref of the CA bundle")
	} else {
		p.forbidWithout(tsp, dcosTruststoreSecret)
		p.forbidWithout(ca, dcosTruststoreSecret)
	}

	protocol := DefaultProtocol
	if v, st := p.str(dcosProtocol); st == valid {
		if slices.Contains(Protocols, v) {
			protocol = v
		} else {
			errs.add(fieldName(dcosProtocol), "", fmt.Sprintf("protocol %q is not accepted; use %s", Shorten(v), strings.Join(Protocols, " or ")))
		}
	}
	storeType := StoreTypeJKS
	if v, st := p.str(dcosStoreType); st == valid {
		switch lv := strings.ToLower(v); lv {
		case StoreTypeJKS, StoreTypePKCS12:
			storeType = lv
		default:
			errs.add(fieldName(dcosStoreType), "", fmt.Sprintf("store type %q is not supported; use %s or %s", Shorten(v), StoreTypeJKS, StoreTypePKCS12))
		}
	}

	var passthrough *bool
	if raw := tls.vals[dcosPassthrough]; !isAbsent(raw) {
		var v bool
		if kindOf(raw) != "boolean" || json.Unmarshal(raw, &v) != nil {
			errs.add(fieldName(dcosPassthrough), "", "must be true or false, got "+kindOf(raw))
		} else {
			passthrough = &v
		}
	}

	var unknown []string
	for k := range tls.vals {
		if !slices.Contains(dcosKnown, k) {
			unknown = append(unknown, k)
		}
	}
	errs.reportUnknown(unknown, "setting", fieldName, func(k string) string {
		if guess := guessSetting(k); guess != "" {
			return fieldName(guess)
		}
		return ""
	}, "known settings are "+strings.Join(dcosKnown, ", "))

	if len(errs.List) > 0 {
		return nil, errs
	}
	s := &Spec{
		Keystore: Store{
			Secret:      ks.field(),
			Password:    ksp.field(),
			KeyPassword: new(kp.field()),
		},
		Protocol:        protocol,
		ProtocolSetting: fieldName(dcosProtocol),
		StoreType:       storeType,
		Passthrough:     passthrough,
	}
	if issue.state == valid {
		s.Keystore.Secret = Field{}
		if ksp.state == absent {
			s.Keystore.Password = Field{}
		}
		if kp.state == absent {
			s.Keystore.KeyPassword = nil
		}
		s.Keystore.Issue = &Issue{Field: issue.field(), TTL: issueTTL}
	}
	if ts.state == valid {
		s.Truststore = &Store{Secret: ts.field(), Password: tsp.field()}
		s.CABundle = new(ca.field())
	}
	return s, nil
}

// valueState tells whether a setting was absent, held a usable value, or held
// a value that has already been reported as wrong.
type valueState int

const (
	absent valueState = iota
	valid
	invalid
)

// setting is one ref-holding setting as read from security.tls.
type setting struct {
	name  string // short name, e.g. "keystore_secret"
	raw   string // the ref as written
	ref   Ref
	state valueState
}

func (s setting) field() Field { return Field{Name: fieldName(s.name), Ref: s.ref} }

// dcosParser reads the settings of one security.tls object.
type dcosParser struct {
	obj  *object
	errs *Errors
}

// str reads a string setting. "" and null count as absent; any other
// non-string is reported (without its value, which may be a secret written in
// the wrong place).
func (p *dcosParser) str(name string) (string, valueState) {
	raw := p.obj.vals[name]
	if isAbsent(raw) {
		return "", absent
	}
	var s string
	ok := kindOf(raw) == "string"
	if ok {
		s, ok = jsonString(bytes.TrimSpace(raw))
	}
	if !ok {
		p.errs.add(fieldName(name), "", "must be a string (a secret ref), got "+kindOf(raw))
		return "", invalid
	}
	if s == "" {
		return "", absent
	}
	return s, valid
}

// ref reads a setting that holds a secret ref.
func (p *dcosParser) ref(name string) setting {
	v, st := p.str(name)
	set := setting{name: name, raw: v, state: st}
	if st != valid {
		return set
	}
	r, reason := parseRef(v)
	if reason != "" {
		p.errs.add(fieldName(name), v, reason)
		set.state = invalid
		return set
	}
	set.ref = r
	return set
}

func (p *dcosParser) require(s setting, what string) {
	if s.state == absent {
		p.errs.add(fieldName(s.name), "", "required ("+what+")")
	}
}

func (p *dcosParser) requireWith(s setting, other, what string) {
	if s.state == absent {
		p.errs.add(fieldName(s.name), "", "required when "+fieldName(other)+" is set ("+what+")")
	}
}

func (p *dcosParser) forbidWithout(s setting, other string) {
	if s.state == valid {
		p.errs.add(fieldName(s.name), s.raw, "set without "+fieldName(other)+"; set the truststore secret too, or remove this setting")
	}
}

// fieldName is the full name of a security.tls setting. A key that would not
// print on one line is quoted.
func fieldName(key string) string {
	key = Shorten(key)
	if q := strconv.Quote(key); q[1:len(q)-1] != key || key == "" || strings.ContainsAny(key, " .") {
		return dcosTLS + "." + q
	}
	return dcosTLS + "." + key
}

// guessSetting returns the known setting that key probably meant (other letter
// case, "-" for "_"), or "".
func guessSetting(key string) string {
	norm := strings.ReplaceAll(strings.ToLower(key), "-", "_")
	for _, k := range dcosKnown {
		if norm == k {
			return k
		}
	}
	return ""
}

// object is a decoded JSON object whose values are left raw.
type object struct {
	vals map[string]json.RawMessage
	dups []string // keys present more than once, each listed once
}

func (o *object) dup(key string) bool { return slices.Contains(o.dups, key) }

// isAbsent reports whether a value is missing or JSON null.
func isAbsent(raw json.RawMessage) bool {
	return raw == nil || kindOf(raw) == "null"
}

// kindOf names the JSON type of a valid JSON value, in words.
func kindOf(raw json.RawMessage) string {
	t := bytes.TrimLeft(raw, " \t\r\n")
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// malformed describes a JSON decoding error of a security.tls document with
// its line and column.
func malformed(data []byte, err error) error {
	return malformedAs("security.tls JSON", data, err)
}

// malformedAs describes a JSON decoding error of a document of kind what
// with its line and column; it wraps err.
func malformedAs(what string, data []byte, err error) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return fmt.Errorf("spec: malformed %s: %w", what, err)
	}
	// Offset counts the bytes read, the offending one included.
	// At the end of the input, the position is just past the last byte.
	off := int(se.Offset)
	if off > 0 && off <= len(data) && !strings.Contains(se.Error(), "unexpected end") {
		off--
	}
	off = min(off, len(data))
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(data[:off], '\n')
	return fmt.Errorf("spec: malformed %s at line %d, column %d: %w", what, line, col, err)
}
