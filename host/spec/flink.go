package spec

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// The Flink settings keyship reads (Flink's SecurityOptions). The older
// security.ssl.* store settings (seed 002) are the fallback of both the
// internal and the REST ones, as in Flink 1.x.
const (
	flinkPrefix         = "security.ssl."
	flinkEnabled        = "security.ssl.enabled"
	flinkProtocol       = "security.ssl.protocol"
	flinkVerifyHostname = "security.ssl.verify-hostname"
	flinkRESTAuth       = "security.ssl.rest.authentication-enabled"

	flinkInternal = "internal"
	flinkREST     = "rest"

	fKeystore           = "keystore"
	fKeystorePassword   = "keystore-password"
	fKeyPassword        = "key-password"
	fTruststore         = "truststore"
	fTruststorePassword = "truststore-password"
	fKeystoreType       = "keystore-type"
	fTruststoreType     = "truststore-type"
	fEnabled            = "enabled"
)

// flinkKnown lists the settings keyship reads, in the order of Flink's
// documentation.
var flinkKnown = func() []string {
	out := []string{flinkEnabled}
	for _, ep := range []string{flinkInternal, flinkREST} {
		out = append(out, flinkPrefix+ep+"."+fEnabled)
		for _, s := range []string{fKeystore, fKeystorePassword, fKeyPassword, fKeystoreType, fTruststore, fTruststorePassword, fTruststoreType} {
			out = append(out, flinkPrefix+ep+"."+s)
		}
	}
	for _, s := range []string{fKeystore, fKeystorePassword, fKeyPassword, fTruststore, fTruststorePassword} {
		out = append(out, flinkPrefix+s)
	}
	return append(out, flinkProtocol, flinkVerifyHostname, flinkRESTAuth)
}()

// flinkAlgorithms is Flink's cipher suite list (SecurityOptions.SSL_ALGORITHMS,
// comma-separated, split on "," by SSLUtils.getEnabledCipherSuites).
const flinkAlgorithms = "security.ssl.algorithms"

// The per-component TLS switches of Flink (seed 002's "Override Option"
// column): each defaults to true and turns TLS off for its component when
// false.
const (
	flinkDataSSL     = "taskmanager.data.ssl.enabled"                     // NettyShuffleEnvironmentOptions (TaskManagerOptions before 1.9), every release
	flinkBlobSSL     = "blob.service.ssl.enabled"                         // BlobServerOptions.SSL_ENABLED, every release
	flinkAkkaSSL     = "akka.ssl.enabled"                                 // AkkaOptions.SSL_ENABLED; from 1.18 a deprecated key of pekko.ssl.enabled; gone in 2.0
	flinkPekkoSSL    = "pekko.ssl.enabled"                                // RpcOptions.SSL_ENABLED, Flink 1.18+
	flinkWebSSL      = "jobmanager.web.ssl.enabled"                       // the web UI, Flink 1.5 and before (WebOptions, deprecated for web.ssl.enabled, then security.ssl.rest.enabled)
	flinkArtifactSSL = "mesos.resourcemanager.artifactserver.ssl.enabled" // Flink on Mesos, which Flink 1.14 removed
)

// flinkPassThrough are security.ssl settings that Flink reads and keyship
// leaves to Flink: they do not change which stores are built, and are kept
// as written (Flink.PassThrough) for the settings keyship writes.
var flinkPassThrough = []string{
	"security.ssl.provider", "security.ssl.reload",
	"security.ssl.internal.cert.fingerprint", "security.ssl.rest.cert.fingerprint",
	"security.ssl.internal.session-cache-size", "security.ssl.internal.session-timeout",
	"security.ssl.internal.handshake-timeout", "security.ssl.internal.close-notify-flush-timeout",
	"security.ssl.session-cache-size", "security.ssl.session-timeout",
	"security.ssl.handshake-timeout", "security.ssl.close-notify-flush-timeout",
}

// ParseFlink parses the TLS settings of a Flink configuration (flink-conf.yaml,
// or the nested config.yaml of newer Flink) into a Spec.
//
// The document is read as YAML (quotes are removed; the text of a value is
// taken as written, so 0123 stays "0123"); nested mappings are flattened to
// dotted keys, so "security: {ssl: {enabled: true}}" is security.ssl.enabled.
// Keys outside security.ssl are ignored.
//
// Flink's rules, as in Flink 1.x SecurityOptions and SSLUtils:
//   - internal TLS is on when security.ssl.internal.enabled is true, or when
//     it is not set and the older security.ssl.enabled is true; the same for
//     the REST endpoint with security.ssl.rest.enabled. At least one must be
//     on. When only one is, Spec.Endpoints says which.
//   - each store setting of an endpoint, security.ssl.<endpoint>.keystore
//     and so on, falls back to the older security.ssl.keystore and so on
//     (seed 002's standalone and YARN examples use only these);
//   - internal TLS needs a keystore, keystore-password, key-password,
//     truststore and truststore-password; the REST endpoint needs a
//     keystore, keystore-password and key-password, and a truststore with
//     its password when security.ssl.rest.authentication-enabled is true;
//   - keystore-type and truststore-type are JKS or PKCS12 (default JKS) and
//     must agree, as keyship writes the stores in one type;
//   - security.ssl.protocol is one of Protocols (default DefaultProtocol);
//   - security.ssl.algorithms, comma-separated cipher suites, is kept in
//     CipherSuites and must be able to meet the protocol (CheckSuites: Flink
//     enables exactly these suites and this protocol on its engines);
//   - security.ssl.verify-hostname is kept in Spec.VerifyHostname, and
//     security.ssl.rest.authentication-enabled in Spec.Flink.RESTAuth;
//   - the component switches of seed 002 (taskmanager.data.ssl.enabled,
//     blob.service.ssl.enabled, akka.ssl.enabled or pekko.ssl.enabled,
//     jobmanager.web.ssl.enabled, mesos.resourcemanager.artifactserver.ssl.
//     enabled) are honoured as Flink does: each turns TLS off for its
//     component when false; jobmanager.web.ssl.enabled: false turns the REST
//     endpoint off (unless security.ssl.rest.enabled says otherwise), and
//     internal TLS is off when its three components are. They are kept in
//     Spec.Flink, to be written for the release the settings are for.
//
// Spec.FlinkVersion is inferred as the newest Flink release that reads every
// setting given (flinkReleases: security.ssl.enabled and akka.ssl.enabled
// only 1.x, jobmanager.web.ssl.enabled only 1.5 and before, the Mesos
// artifact server only 1.13 and before; internal/rest keys from 1.6, the
// store types from 1.20, nested YAML from 1.19), or zero (the newest) when
// nothing bounds it.
//
// keyship builds one keystore and one truststore per job: when both
// endpoints are on, their stores and passwords must be the same (the same
// refs or the same literal values); a difference is an error naming the REST
// setting.
//
// Store settings hold refs: "/etc/node.keystore" and "certs/node.keystore"
// are refs for the default backend. Passwords are literal (seed 002's
// "password") unless written ${secret:REF}.
//
// Problems are reported together as an *Errors of *FieldError naming the
// setting, e.g. "security.ssl.internal.key-password". Malformed YAML gives an
// error with its line.
func ParseFlink(data []byte) (*Spec, error) {
	vals, err := flattenFlink(data)
	if err != nil {
		return nil, err
	}
	p := &flinkParser{settings: settings{errs: &Errors{}}, vals: vals.vals, nested: vals.nested, parsed: map[string]flinkField{}}
	for _, k := range vals.dups {
		p.errs.add(displayKey(k), "", fmt.Sprintf("set more than once (lines %d and %d)", vals.vals[k].firstLine, vals.vals[k].line))
	}
	return p.parse()
}

// flinkValue is one leaf of a Flink configuration.
type flinkValue struct {
	text      string
	kind      string // "scalar", "null", or what else it is, in words
	line      int    // the line of the value used (the last one)
	firstLine int    // the line of the first one, for duplicates
}

type flatFlink struct {
	vals map[string]flinkValue
	dups []string // security.ssl keys given more than once, each listed once
	// nested is set when a setting is written as a nested mapping, which
	// only Flink 1.19+'s standard YAML reader (config.yaml) understands.
	nested bool
}

// flattenFlink reads a YAML document into dotted keys.
func flattenFlink(data []byte) (*flatFlink, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("spec: empty Flink configuration; want security.ssl.* settings")
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("spec: malformed Flink configuration YAML: %w", yamlError(err))
	}
	out := &flatFlink{vals: map[string]flinkValue{}}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return out, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			return out, nil
		}
		return nil, fmt.Errorf("spec: a Flink configuration must be a YAML mapping of settings (key: value), got %s", yamlKind(root))
	}
	flattenMapping(root, "", out, 0)
	return out, nil
}

// maxFlinkDepth bounds the nesting flattenMapping follows.
const maxFlinkDepth = 32

func flattenMapping(n *yaml.Node, prefix string, out *flatFlink, depth int) {
	if depth > maxFlinkDepth {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			continue
		}
		key := k.Value
		if prefix != "" {
			key = prefix + "." + key
		}
		if v.Kind == yaml.MappingNode {
			out.nested = true
			flattenMapping(v, key, out, depth+1)
			continue
		}
		fv := flinkValue{line: v.Line, firstLine: v.Line}
		switch {
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			fv.kind = "null"
		case v.Kind == yaml.ScalarNode:
			fv.kind, fv.text = "scalar", v.Value
		default:
			fv.kind = yamlKind(v)
		}
		if old, seen := out.vals[key]; seen {
			if strings.HasPrefix(key, flinkPrefix) && !slices.Contains(out.dups, key) {
				out.dups = append(out.dups, key)
			}
			fv.firstLine = old.firstLine
		}
		out.vals[key] = fv
	}
}

func yamlKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		return "a value"
	}
	return "nothing"
}

// yamlError keeps the YAML parser's message (a line and what is wrong; the
// parser does not quote the document) and drops its type.
func yamlError(err error) error {
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

// flinkField is a store or password setting as read for an endpoint.
type flinkField struct {
	key   string // the setting that gave it
	field Field
	ok    bool // set and valid
	set   bool // set, valid or not
}

type flinkParser struct {
	settings
	vals   map[string]flinkValue
	nested bool
	parsed map[string]flinkField // by key, so that a fallback is read once
}

// get returns the text of a setting; null and "" count as not set. A value
// that is not a scalar is reported.
func (p *flinkParser) get(key string) (string, bool) {
	v, ok := p.vals[key]
	if !ok || v.kind == "null" {
		return "", false
	}
	if v.kind != "scalar" {
		if _, done := p.parsed[key]; !done {
			p.errs.add(key, "", "must be a single value, got "+v.kind)
			p.parsed[key] = flinkField{key: key, set: true}
		}
		return "", false
	}
	t := strings.TrimSpace(v.text)
	return t, t != ""
}

// flag reads a boolean setting; it reports whether it was set and valid.
func (p *flinkParser) flag(key string) (bool, bool) {
	v, ok := p.get(key)
	if !ok {
		return false, false
	}
	return p.boolean(key, v)
}

// endpointKey returns the setting that gives setting s to endpoint ep: its own
// (security.ssl.<ep>.<s>) or else the older shared one (security.ssl.<s>), or
// "" when neither is set.
func (p *flinkParser) endpointKey(ep, s string, fallback bool) string {
	own := flinkPrefix + ep + "." + s
	if _, ok := p.get(own); ok {
		return own
	}
	if fallback {
		if _, ok := p.get(flinkPrefix + s); ok {
			return flinkPrefix + s
		}
	}
	return ""
}

// read reads the setting that gives s to ep, once per setting.
func (p *flinkParser) read(ep, s string, read func(name, v string) (Field, bool)) flinkField {
	key := p.endpointKey(ep, s, true)
	if key == "" {
		return flinkField{}
	}
	if f, done := p.parsed[key]; done {
		return f
	}
	v, _ := p.get(key)
	f, ok := read(key, v)
	ff := flinkField{key: key, field: f, ok: ok, set: true}
	p.parsed[key] = ff
	return ff
}

// flinkStores are the settings of one endpoint.
type flinkStores struct {
	ep                         string
	ks, ksp, kp, ts, tsp       flinkField
	storeType, trustStoreType  string
	storeTypeKey, trustTypeKey string
}

func (p *flinkParser) endpoint(ep string, needTrust bool) flinkStores {
	st := flinkStores{ep: ep}
	st.ks = p.read(ep, fKeystore, p.fileRef)
	st.ksp = p.read(ep, fKeystorePassword, p.password)
	st.kp = p.read(ep, fKeyPassword, p.password)
	st.ts = p.read(ep, fTruststore, p.fileRef)
	st.tsp = p.read(ep, fTruststorePassword, p.password)
	own := func(s string) string { return flinkPrefix + ep + "." + s }
	what := map[string]string{flinkInternal: "internal TLS", flinkREST: "TLS on the REST endpoint"}[ep]
	require := func(f flinkField, s, desc string) {
		if !f.set {
			p.errs.add(own(s), "", fmt.Sprintf("required for %s (%s; or the older %s%s)", what, desc, flinkPrefix, s))
		}
	}
	require(st.ks, fKeystore, "the secret ref of the keystore")
	require(st.ksp, fKeystorePassword, "the keystore password")
	require(st.kp, fKeyPassword, "the private key password")
	if needTrust {
		require(st.ts, fTruststore, "the secret ref of the truststore")
	}
	if st.ts.set {
		require(st.tsp, fTruststorePassword, "the truststore password")
	} else if st.tsp.set && !needTrust {
		p.errs.add(st.tsp.key, "", fmt.Sprintf("set without a truststore; set %s too, or remove this setting", own(fTruststore)))
	}
	st.storeType, st.storeTypeKey = StoreTypeJKS, ""
	if k := p.endpointKey(ep, fKeystoreType, false); k != "" {
		v, _ := p.get(k)
		if t := p.storeType(k, v); t != "" {
			st.storeType, st.storeTypeKey = t, k
		}
	}
	if k := p.endpointKey(ep, fTruststoreType, false); k != "" {
		v, _ := p.get(k)
		if t := p.storeType(k, v); t != "" {
			st.trustStoreType, st.trustTypeKey = t, k
			if t != st.storeType {
				p.errs.add(k, "", fmt.Sprintf("truststore type %q differs from the keystore type %q; keyship writes both stores in one type", strings.ToUpper(t), strings.ToUpper(st.storeType)))
			}
		}
	}
	return st
}

func (p *flinkParser) parse() (*Spec, error) {
	legacy, legacySet := p.flag(flinkEnabled)
	on := func(ep string) bool {
		if v, ok := p.flag(flinkPrefix + ep + "." + fEnabled); ok {
			return v
		}
		if _, set := p.get(flinkPrefix + ep + "." + fEnabled); set {
			return false // reported by flag
		}
		return legacySet && legacy
	}
	internalOn, restOn := on(flinkInternal), on(flinkREST)
	restAuth, restAuthSet := p.flag(flinkRESTAuth)

	// The component switches, as Flink reads them: the web UI's turns TLS
	// off for what became the REST endpoint (Flink 1.5 and before), and
	// internal TLS is off when its three components are.
	sw := func(keys ...string) *Switch {
		var got *Switch
		for _, k := range keys {
			if v, ok := p.flag(k); ok {
				if got != nil && got.On != v {
					p.errs.add(k, "", fmt.Sprintf("set to %t while %s is %t; give one of them", v, got.Setting, got.On))
					continue
				}
				if got == nil {
					got = &Switch{Setting: k, On: v}
				}
			}
		}
		return got
	}
	fl := &Flink{
		Data:           sw(flinkDataSSL),
		Blob:           sw(flinkBlobSSL),
		RPC:            sw(flinkPekkoSSL, flinkAkkaSSL),
		ArtifactServer: sw(flinkArtifactSSL),
	}
	if restAuthSet {
		fl.RESTAuth = &Switch{Setting: flinkRESTAuth, On: restAuth}
	}
	for _, k := range flinkPassThrough {
		if v, ok := p.get(k); ok {
			fl.PassThrough = append(fl.PassThrough, KeyValue{Key: k, Value: v})
		}
	}
	if web := sw(flinkWebSSL); web != nil && !web.On {
		if _, set := p.get(flinkPrefix + flinkREST + "." + fEnabled); !set {
			restOn = false
		}
	}
	off := func(s *Switch) bool { return s != nil && !s.On }
	if off(fl.Data) && off(fl.Blob) && off(fl.RPC) {
		if _, set := p.get(flinkPrefix + flinkInternal + "." + fEnabled); !set {
			internalOn = false
		}
	}

	var primary, secondary *flinkStores
	switch {
	case internalOn && restOn:
		in, rest := p.endpoint(flinkInternal, true), p.endpoint(flinkREST, restAuth)
		primary, secondary = &in, &rest
	case internalOn:
		in := p.endpoint(flinkInternal, true)
		primary = &in
	case restOn:
		rest := p.endpoint(flinkREST, restAuth)
		primary = &rest
	default:
		if len(p.errs.List) == 0 {
			p.errs.add(flinkPrefix+flinkInternal+"."+fEnabled, "", "TLS is not enabled: set "+
				flinkPrefix+flinkInternal+"."+fEnabled+" and/or "+flinkPrefix+flinkREST+"."+fEnabled+
				" (or the older "+flinkEnabled+") to true")
		}
	}
	if secondary != nil {
		p.same(primary.ks, secondary.ks, "keystore")
		p.same(primary.ksp, secondary.ksp, "keystore password")
		p.same(primary.kp, secondary.kp, "key password")
		if secondary.ts.set {
			p.same(primary.ts, secondary.ts, "truststore")
			p.same(primary.tsp, secondary.tsp, "truststore password")
		}
		if secondary.storeType != primary.storeType && secondary.storeTypeKey != "" {
			p.errs.add(secondary.storeTypeKey, "", fmt.Sprintf("keystore type %q differs from the internal one %q; keyship writes one keystore per job",
				strings.ToUpper(secondary.storeType), strings.ToUpper(primary.storeType)))
		}
	}

	protocol := DefaultProtocol
	if v, ok := p.get(flinkProtocol); ok {
		if pr := p.protocol(flinkProtocol, v); pr != "" {
			protocol = pr
		}
	}
	var verify *bool
	if v, ok := p.flag(flinkVerifyHostname); ok {
		verify = &v
	}
	var suites []string
	if v, ok := p.get(flinkAlgorithms); ok {
		suites = splitSuites(v)
		if reason := CheckSuites(protocol, suites); reason != "" {
			p.errs.add(flinkAlgorithms, "", reason)
		}
	}

	var unknown []string
	for k := range p.vals {
		if strings.HasPrefix(k, flinkPrefix) && !slices.Contains(flinkKnown, k) && !slices.Contains(flinkPassThrough, k) && k != flinkAlgorithms {
			unknown = append(unknown, k)
		}
	}
	p.errs.reportUnknown(unknown, "setting", displayKey, flinkGuess, "keyship reads "+
		strings.Join([]string{flinkEnabled, "security.ssl.internal.*", "security.ssl.rest.*", flinkProtocol, flinkAlgorithms, flinkVerifyHostname}, ", "))

	if len(p.errs.List) > 0 {
		return nil, p.errs
	}
	s := &Spec{
		Keystore: Store{
			Secret:      primary.ks.field,
			Password:    primary.ksp.field,
			KeyPassword: new(primary.kp.field),
		},
		Protocol:        protocol,
		ProtocolSetting: flinkProtocol,
		StoreType:       primary.storeType,
		VerifyHostname:  verify,
		CipherSuites:    suites,
		FlinkVersion:    p.release(),
	}
	if fl.Data != nil || fl.Blob != nil || fl.RPC != nil || fl.ArtifactServer != nil || fl.RESTAuth != nil || fl.PassThrough != nil {
		s.Flink = fl
	}
	if suites != nil {
		s.CipherSuitesSetting = flinkAlgorithms
	}
	ts := primary
	if !ts.ts.set && secondary != nil && secondary.ts.set {
		ts = secondary
	}
	if ts.ts.set {
		s.Truststore = &Store{Secret: ts.ts.field, Password: ts.tsp.field}
	}
	if !(internalOn && restOn) {
		s.Endpoints = &Endpoints{Internal: internalOn, REST: restOn}
	}
	return s, nil
}

// same reports a REST setting that gives the endpoint another secret than
// the internal one.
func (p *flinkParser) same(internal, rest flinkField, what string) {
	if !internal.ok || !rest.ok || internal.key == rest.key || sameSecret(internal.field, rest.field) {
		return
	}
	p.errs.add(rest.key, "", fmt.Sprintf("the REST endpoint's %s differs from the internal one (%s); keyship ships one %s per job, "+
		"used by both endpoints: give them the same, or set %s%s.%s to false", what, internal.key, what, flinkPrefix, flinkREST, fEnabled))
}

// flinkGuess returns the known setting an unknown key probably meant: the
// same name in another case or spelling, or Flink's shared
// security.ssl.protocol for a per-endpoint protocol.
func flinkGuess(k string) string {
	if g := guessKey(k, flinkKnown); g != "" {
		return g
	}
	if strings.HasSuffix(k, ".protocol") {
		return flinkProtocol + " (Flink has one protocol for every endpoint)"
	}
	return ""
}

// flinkReleases are the Flink releases that read a setting, since (zero:
// every release) up to but not including until (zero: still read today),
// from Flink's SecurityOptions.java, SSLUtils.java, GlobalConfiguration.java
// and the option classes named at flinkSwitches.
var flinkReleases = []struct {
	match        func(key string) bool
	since, until Version
	what         string
}{
	{func(k string) bool { return k == flinkEnabled }, Version{}, Version{2, 0},
		"security.ssl.enabled is read by Flink 1.x only (deprecated in 1.6, gone from SecurityOptions in 2.0)"},
	{func(k string) bool {
		return strings.HasPrefix(k, flinkPrefix+flinkInternal+".") || strings.HasPrefix(k, flinkPrefix+flinkREST+".")
	}, Version{1, 6}, Version{}, "security.ssl.internal.* and security.ssl.rest.* exist from Flink 1.6"},
	{func(k string) bool { return k == flinkRESTAuth }, Version{1, 7}, Version{},
		"security.ssl.rest.authentication-enabled exists from Flink 1.7 (FLINK-10371)"},
	{func(k string) bool {
		return strings.HasSuffix(k, "."+fKeystoreType) || strings.HasSuffix(k, "."+fTruststoreType)
	},
		Version{1, 20}, Version{}, "keystore-type and truststore-type exist from Flink 1.20"},
	{func(k string) bool { return k == flinkAkkaSSL }, Version{}, Version{2, 0}, "akka.ssl.enabled is read by Flink 1.x only"},
	{func(k string) bool { return k == flinkPekkoSSL }, Version{1, 18}, Version{}, "pekko.ssl.enabled exists from Flink 1.18"},
	{func(k string) bool { return k == flinkWebSSL }, Version{}, Version{1, 6}, "jobmanager.web.ssl.enabled is Flink 1.5's (the REST endpoint's security.ssl.rest.enabled replaced it in 1.6)"},
	{func(k string) bool { return k == flinkArtifactSSL }, Version{}, Version{1, 14}, "Flink 1.14 removed Mesos support and its artifact server"},
}

// lastFlink1 is the last Flink 1.x release.
var lastFlink1 = Version{1, 20}

// release infers the Flink release a request is written for: the newest
// that reads every setting it gives (Flink 2.x when none is bounded), or,
// when no release reads them all, the oldest that reads its newest
// settings. A nested YAML document is Flink 1.19+'s config.yaml.
func (p *flinkParser) release() ConsumerVersion {
	var since, until Version
	var sinceWhy, untilWhy string
	if p.nested {
		since, sinceWhy = Version{1, 19}, "a nested YAML document is Flink 1.19+'s config.yaml"
	}
	keys := slices.Sorted(maps.Keys(p.vals))
	for _, k := range keys {
		if v := p.vals[k]; v.kind == "null" {
			continue
		}
		for _, r := range flinkReleases {
			if !r.match(k) {
				continue
			}
			if !r.since.IsZero() && since.Before(r.since.Major, r.since.Minor) || since.IsZero() && !r.since.IsZero() {
				since, sinceWhy = r.since, r.what
			}
			if !r.until.IsZero() && (until.IsZero() || r.until.Before(until.Major, until.Minor)) {
				until, untilWhy = r.until, r.what
			}
		}
	}
	const pass = "; pass --flink-version to write for another release"
	if until.IsZero() {
		if sinceWhy == "" {
			return ConsumerVersion{}
		}
		return ConsumerVersion{From: "the newest Flink assumed: " + sinceWhy + pass}
	}
	last := Version{until.Major, until.Minor - 1}
	if until.Minor == 0 {
		last = lastFlink1
	}
	if !since.IsZero() && last.Before(since.Major, since.Minor) {
		return ConsumerVersion{since, "inferred: " + sinceWhy + " (and " + untilWhy + ")" + pass}
	}
	return ConsumerVersion{last, "inferred: " + untilWhy + pass}
}
