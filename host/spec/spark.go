package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// The spark.ssl settings keyship reads, in the order of Spark's security
// documentation; keyStoreBase64 and trustStoreBase64 are the DC/OS Spark
// fork's (seed 003: its SSLOptions.parse decodes them into files).
const (
	sparkEnabled            = "spark.ssl.enabled"
	sparkKeyStore           = "spark.ssl.keyStore"
	sparkKeyStoreBase64     = "spark.ssl.keyStoreBase64"
	sparkKeyStorePassword   = "spark.ssl.keyStorePassword"
	sparkKeyPassword        = "spark.ssl.keyPassword"
	sparkKeyStoreType       = "spark.ssl.keyStoreType"
	sparkTrustStore         = "spark.ssl.trustStore"
	sparkTrustStoreBase64   = "spark.ssl.trustStoreBase64"
	sparkTrustStorePassword = "spark.ssl.trustStorePassword"
	sparkTrustStoreType     = "spark.ssl.trustStoreType"
	sparkProtocol           = "spark.ssl.protocol"
	sparkEnabledAlgorithms  = "spark.ssl.enabledAlgorithms"
)

// The TLS flags of the dcos-spark CLI (`dcos spark run`), as keyship reads
// them in a properties document.
const (
	flagKeystoreSecretPath   = "--keystore-secret-path"
	flagKeystorePassword     = "--keystore-password"
	flagPrivateKeyPassword   = "--private-key-password"
	flagTruststoreSecretPath = "--truststore-secret-path"
	flagTruststorePassword   = "--truststore-password"
)

const sparkPrefix = "spark.ssl."

var sparkKnown = []string{
	sparkEnabled, sparkKeyStore, sparkKeyStoreBase64, sparkKeyStorePassword, sparkKeyPassword,
	sparkKeyStoreType, sparkTrustStore, sparkTrustStoreBase64, sparkTrustStorePassword,
	sparkTrustStoreType, sparkProtocol, sparkEnabledAlgorithms,
}

var sparkFlags = []string{
	flagKeystoreSecretPath, flagKeystorePassword, flagPrivateKeyPassword,
	flagTruststoreSecretPath, flagTruststorePassword,
}

// sparkPassThrough are the settings of a namespace that Spark reads and
// keyship leaves to Spark: they do not change which stores are built
// (SSLOptions.parse, Spark 3.5/4.0).
var sparkPassThrough = []string{
	"port", "needClientAuth", "trustStoreReloadingEnabled", "trustStoreReloadIntervalMs",
	"openSslEnabled", "privateKey", "privateKeyPassword", "certChain",
}

// SparkNamespaces are the spark.ssl.<ns> namespaces Spark and the DC/OS Spark
// fork read, each with SSLOptions.parse(conf, "spark.ssl.<ns>",
// Some(defaults)), so that every setting it leaves out is spark.ssl.'s:
//
//	ui, standalone, historyServer  SecurityManager.getSSLOptions (Spark 2.0-4.x)
//	rpc                            Spark 4.0 RPC TLS (SSLOptions.parse: rpc does not inherit enabled)
//	fs                             the file server (SecurityManager, Spark 1.x-2.x)
//	mesos                          the Mesos dispatcher UI (MesosClusterUI, Spark 2.x-3.x; resource-managers/mesos)
//	submission                     the REST submission server of the DC/OS fork (mesosphere/spark SecurityManager)
//
// Which release reads which is sparkNamespaceReleases; SparkNamespaceWarnings
// warns for a namespace the chosen release does not read.
var SparkNamespaces = []string{"ui", "standalone", "historyServer", "rpc", "fs", "mesos", "submission"}

// ParseSpark parses a Spark job's TLS settings, as properties (keys and
// values as in spark-defaults.conf or --conf pairs; see ReadSparkProperties
// for reading them from a document) into a Spec:
//
//   - spark.ssl.enabled must be true (or a namespace's enabled, below); it
//     may be left out when a dcos-spark flag is given, as `dcos spark run`
//     sets it then;
//   - the keystore is exactly one of spark.ssl.keyStore (a secret ref),
//     spark.ssl.keyStoreBase64 (the store inline, base64; seed 003) or
//     --keystore-secret-path (a DC/OS secret path, i.e. a ref); required;
//   - spark.ssl.keyStorePassword or --keystore-password opens it; required;
//   - spark.ssl.keyPassword or --private-key-password opens its key;
//     optional (Spark then uses the keystore password), except with
//     --keystore-secret-path, where dcos-spark requires it;
//   - the truststore is at most one of spark.ssl.trustStore,
//     spark.ssl.trustStoreBase64 or --truststore-secret-path, and needs
//     spark.ssl.trustStorePassword or --truststore-password;
//   - spark.ssl.protocol is one of Protocols, or TLS (the dcos-spark CLI's
//     default: Java then enables TLSv1.3 and TLSv1.2; Spark.Protocol keeps
//     it), default DefaultProtocol;
//   - spark.ssl.enabledAlgorithms, a comma-separated list of cipher
//     suites, is kept in CipherSuites and must be able to meet the protocol
//     (CheckSuites);
//   - spark.ssl.keyStoreType is JKS or PKCS12 (default JKS);
//     spark.ssl.trustStoreType, when set, must be the same, as keyship
//     writes both stores in one type.
//
// Every namespace of SparkNamespaces takes the same settings
// (spark.ssl.ui.keyStore, ...) and inherits those it leaves out from
// spark.ssl., as Spark's SSLOptions.parse(conf, ns, Some(defaults)) does.
// keyship ships one keystore and one truststore per job: a namespace that
// names other stores, passwords, types, protocol or suites than spark.ssl.
// (or than the first namespace, when spark.ssl. names none) is an error.
// The namespaces named are kept in Spark.Namespaces, with their own enabled
// switch, so that the settings are written for them too.
//
// keyStoreBase64 and trustStoreBase64 exist only in the DC/OS Spark fork of
// Spark 2.2 and before: with them SparkVersion is inferred as 2.2.
//
// Store settings hold refs (a plain path is a ref for the default backend)
// and passwords are literal unless written ${secret:REF}, as Parse explains;
// the dcos-spark flags follow the same rule (--keystore-secret-path is a
// DC/OS secret path, --keystore-password a password, as dcos-spark takes
// them). Giving a setting and its dcos-spark flag together is an error.
//
// Keys outside spark.ssl are ignored (a whole spark-defaults.conf may be
// given), and so are the spark.ssl settings that do not change the stores
// (port, needClientAuth, trustStoreReloadingEnabled, ...), in every
// namespace. Any other spark.ssl key is an error.
//
// Problems are reported together as an *Errors of *FieldError naming the
// setting as written, e.g. "spark.ssl.keyStorePassword" or
// "--truststore-password".
func ParseSpark(props map[string]string) (*Spec, error) {
	entries := map[string]sparkEntry{}
	var unknown []string
	for k, v := range props {
		switch {
		case strings.HasPrefix(k, sparkPrefix), slices.Contains(sparkFlags, k):
			entries[k] = sparkEntry{name: k, value: v}
		case isDCOSFlagTypo(k):
			unknown = append(unknown, k)
		}
	}
	p := &sparkParser{settings: settings{errs: &Errors{}}, entries: entries, rename: func(k string) string { return k }}
	p.errs.reportUnknown(unknown, "dcos-spark TLS flag", displayKey, func(k string) string { return guessKey(k, sparkFlags) },
		"known flags are "+strings.Join(sparkFlags, ", "))
	return p.parse()
}

// isDCOSFlagTypo reports whether k looks like one of the dcos-spark TLS flags
// without being one.
func isDCOSFlagTypo(k string) bool {
	if !strings.HasPrefix(k, "--") || slices.Contains(sparkFlags, k) {
		return false
	}
	for _, p := range []string{"--keystore", "--truststore", "--private-key", "--key-", "--trust"} {
		if strings.HasPrefix(strings.ToLower(k), p) {
			return true
		}
	}
	return false
}

// sparkEntry is one setting as given: its name in the user's words (a
// spark.ssl key, a dcos-spark flag, or a security.ssl key of the DC/OS Spark
// package's options) and its value.
type sparkEntry struct {
	name  string
	value string
}

type sparkParser struct {
	settings
	entries map[string]sparkEntry // by spark.ssl key or flag
	// rename gives the user's name of a key that is not set, for messages.
	rename func(key string) string
	// options is set for the DC/OS Spark package's options JSON.
	options bool
}

// get returns the setting of key; an empty value counts as not set.
func (p *sparkParser) get(key string) (sparkEntry, bool) {
	e, ok := p.entries[key]
	if !ok || strings.TrimSpace(e.value) == "" {
		return sparkEntry{}, false
	}
	e.value = strings.TrimSpace(e.value)
	return e, true
}

// choice is one of the settings that may give the same thing.
type choice struct {
	key  string
	read func(name, v string) (Field, bool)
}

// sparkItem is one store or password setting of a level, as read.
type sparkItem struct {
	name  string // as written; "" when not set
	key   string // the spark.ssl key or flag that gave it
	field Field
	ok    bool // set and valid
}

func (it sparkItem) set() bool { return it.name != "" }

// one reads the first of the given settings that is set, reporting the
// others that are set too.
func (p *sparkParser) one(what string, choices ...choice) sparkItem {
	var got sparkItem
	for _, c := range choices {
		e, ok := p.get(c.key)
		if !ok {
			continue
		}
		if got.set() {
			p.errs.add(e.name, "", fmt.Sprintf("set together with %s; give the %s once", got.name, what))
			continue
		}
		got = sparkItem{name: e.name, key: c.key}
		got.field, got.ok = c.read(e.name, e.value)
	}
	return got
}

// sparkText is a plain setting of a level: a type, the protocol or the
// suites, already checked.
type sparkText struct {
	name  string // as written; "" when not set or invalid
	value string
}

// sparkLevel is what spark.ssl. (ns "") or one spark.ssl.<ns>. sets.
type sparkLevel struct {
	ns                   string
	enabled              *bool
	enabledName          string
	ks, ksp, kp, ts, tsp sparkItem
	storeType, trustType sparkText
	protocol, suites     sparkText
	base64               string // the name of a keyStoreBase64/trustStoreBase64 setting, if any
}

// key returns the spark.ssl key of setting s (e.g. "keyStore") at l's level.
func (l *sparkLevel) key(s string) string {
	if l.ns == "" {
		return sparkPrefix + s
	}
	return sparkPrefix + l.ns + "." + s
}

// level reads the settings of one level; the dcos-spark flags belong to
// spark.ssl.
func (p *sparkParser) level(ns string) *sparkLevel {
	l := &sparkLevel{ns: ns}
	flag := func(f string, read func(string, string) (Field, bool)) []choice {
		if ns != "" {
			return nil
		}
		return []choice{{f, read}}
	}
	if e, ok := p.get(l.key("enabled")); ok {
		l.enabledName = e.name
		if b, ok := p.boolean(e.name, e.value); ok {
			l.enabled = &b
		}
	}
	l.ks = p.one("keystore", append([]choice{{l.key("keyStore"), p.fileRef}, {l.key("keyStoreBase64"), p.base64Store}},
		flag(flagKeystoreSecretPath, p.fileRef)...)...)
	l.ksp = p.one("keystore password", append([]choice{{l.key("keyStorePassword"), p.password}}, flag(flagKeystorePassword, p.password)...)...)
	l.kp = p.one("key password", append([]choice{{l.key("keyPassword"), p.password}}, flag(flagPrivateKeyPassword, p.password)...)...)
	l.ts = p.one("truststore", append([]choice{{l.key("trustStore"), p.fileRef}, {l.key("trustStoreBase64"), p.base64Store}},
		flag(flagTruststoreSecretPath, p.fileRef)...)...)
	l.tsp = p.one("truststore password", append([]choice{{l.key("trustStorePassword"), p.password}}, flag(flagTruststorePassword, p.password)...)...)
	for _, it := range []sparkItem{l.ks, l.ts} {
		if strings.HasSuffix(it.key, "Base64") {
			l.base64 = it.name
		}
	}
	return l
}

// params reads the store types, protocol and suites of a level, after its
// stores (so that problems are reported in the order of the documentation).
func (p *sparkParser) params(l *sparkLevel) {
	if e, ok := p.get(l.key("keyStoreType")); ok {
		if v := p.storeType(e.name, e.value); v != "" {
			l.storeType = sparkText{e.name, v}
		}
	}
	if e, ok := p.get(l.key("trustStoreType")); ok {
		if v := p.storeType(e.name, e.value); v != "" {
			l.trustType = sparkText{e.name, v}
		}
	}
	if e, ok := p.get(l.key("protocol")); ok {
		if e.value == ProtocolTLS {
			l.protocol = sparkText{e.name, ProtocolTLS}
		} else if v := p.protocol(e.name, e.value); v != "" {
			l.protocol = sparkText{e.name, v}
		}
	}
	if e, ok := p.get(l.key("enabledAlgorithms")); ok {
		l.suites = sparkText{e.name, strings.Join(splitSuites(e.value), ",")}
	}
}

// sameItem reports a level's setting that names another secret than the
// job's, and returns the job's: the first level's that is set.
func (p *sparkParser) sameItem(job *sparkItem, it sparkItem, what string) {
	switch {
	case !it.set():
	case !job.set():
		*job = it
	case job.ok && it.ok && !sameSecret(job.field, it.field):
		p.errs.add(it.name, "", fmt.Sprintf("names another %s than %s; keyship ships one %s per job, used by every namespace: "+
			"give the same, or leave this setting out (the namespace then takes %s, as Spark does)", what, job.name, what, job.name))
	}
}

// sameText is sameItem for a type, the protocol or the suites.
func (p *sparkParser) sameText(job *sparkText, t sparkText, what string) {
	switch {
	case t.name == "":
	case job.name == "":
		*job = t
	case job.value != t.value:
		p.errs.add(t.name, "", fmt.Sprintf("differs from %s; keyship writes one %s for every namespace: give the same, or leave this setting out", job.name, what))
	}
}

func (p *sparkParser) parse() (*Spec, error) {
	flagGiven := false
	for _, f := range sparkFlags {
		if _, ok := p.get(f); ok {
			flagGiven = true
		}
	}
	top := p.level("")
	var nss []*sparkLevel
	for _, ns := range SparkNamespaces {
		prefix := sparkPrefix + ns + "."
		for k := range p.entries {
			if strings.HasPrefix(k, prefix) {
				nss = append(nss, p.level(ns))
				break
			}
		}
	}

	// TLS is on when spark.ssl.enabled is, or a dcos-spark flag is given,
	// or a namespace turns it on for itself.
	enabled := flagGiven || top.enabled != nil && *top.enabled
	for _, l := range nss {
		if l.enabled != nil && *l.enabled {
			enabled = true
		}
	}
	if !enabled {
		switch {
		case top.enabled != nil:
			p.errs.add(top.enabledName, "", "TLS is not enabled: "+top.enabledName+" is false; set it to true")
		case top.enabledName == "":
			name := p.rename(sparkEnabled)
			p.errs.add(name, "", "TLS is not enabled: "+name+" is missing; set it to true")
		}
	}

	// The job's stores: spark.ssl.'s, or else the first namespace's that
	// names them; every other level must name the same.
	job := *top
	for _, l := range nss {
		p.sameItem(&job.ks, l.ks, "keystore")
		p.sameItem(&job.ksp, l.ksp, "keystore password")
		p.sameItem(&job.kp, l.kp, "key password")
		p.sameItem(&job.ts, l.ts, "truststore")
		p.sameItem(&job.tsp, l.tsp, "truststore password")
		if job.base64 == "" {
			job.base64 = l.base64
		}
	}

	if enabled {
		if !job.ks.set() {
			p.errs.add(p.rename(sparkKeyStore), "", "required (the keystore: "+p.rename(sparkKeyStore)+" holding its secret ref, "+
				p.rename(sparkKeyStoreBase64)+" holding it inline, or "+flagKeystoreSecretPath+")")
		}
		if job.ks.set() && !job.ksp.set() {
			p.errs.add(p.rename(sparkKeyStorePassword), "", "required (the keystore password, or "+flagKeystorePassword+")")
		}
		if job.ks.key == flagKeystoreSecretPath && !job.kp.set() {
			p.errs.add(flagPrivateKeyPassword, "", "required with "+flagKeystoreSecretPath+" (the private key password), as dcos-spark requires it")
		}
	}
	if job.ts.set() && !job.tsp.set() {
		p.errs.add(p.rename(sparkTrustStorePassword), "", "required when a truststore is set (the truststore password, or "+flagTruststorePassword+")")
	}
	if job.tsp.set() && !job.ts.set() {
		name := p.rename(sparkTrustStorePassword)
		if job.tsp.key == flagTruststorePassword {
			name = flagTruststorePassword
		}
		p.errs.add(name, "", "set without a truststore; set "+p.rename(sparkTrustStore)+" or "+flagTruststoreSecretPath+" too, or remove this setting")
	}

	p.params(top)
	job.storeType, job.trustType, job.protocol, job.suites = top.storeType, top.trustType, top.protocol, top.suites
	for _, l := range nss {
		p.params(l)
		p.sameText(&job.storeType, l.storeType, "keystore type")
		p.sameText(&job.trustType, l.trustType, "truststore type")
		p.sameText(&job.protocol, l.protocol, "protocol")
		p.sameText(&job.suites, l.suites, "cipher suite list")
	}
	protocol, protocolSetting, sparkProtocolName := DefaultProtocol, p.rename(sparkProtocol), ""
	if job.protocol.name != "" {
		protocolSetting = job.protocol.name
		protocol = job.protocol.value
		if protocol == ProtocolTLS {
			// Java's "TLS" enables TLSv1.3 and TLSv1.2; the checks hold
			// the key to TLS 1.2, which every key type must serve.
			protocol, sparkProtocolName = DefaultProtocol, ProtocolTLS
		}
	}
	var suites []string
	if job.suites.name != "" {
		suites = strings.Split(job.suites.value, ",")
		check := protocol
		if sparkProtocolName != "" {
			check = sparkProtocolName
		}
		if reason := CheckSuites(check, suites); reason != "" {
			p.errs.add(job.suites.name, "", reason)
		}
	}
	storeType := StoreTypeJKS
	if job.storeType.name != "" {
		storeType = job.storeType.value
	}
	if t := job.trustType; t.name != "" && t.value != storeType {
		p.errs.add(t.name, "", fmt.Sprintf("trust store type %s differs from the keystore type %s; keyship writes both stores in one type, set by %s",
			strings.ToUpper(t.value), strings.ToUpper(storeType), p.rename(sparkKeyStoreType)))
	}

	var unknown []string
	for k := range p.entries {
		if strings.HasPrefix(k, sparkPrefix) && !sparkKeyKnown(k) {
			unknown = append(unknown, k)
		}
	}
	p.errs.reportUnknown(unknown, "setting", func(k string) string { return displayKey(p.entries[k].name) },
		func(k string) string {
			if g := guessKey(k, allSparkKeys); g != "" {
				return p.rename(g)
			}
			return ""
		},
		"known settings are "+strings.Join(sparkKnown, ", ")+", and the same under spark.ssl.<namespace>. for "+strings.Join(SparkNamespaces, ", "))

	if len(p.errs.List) > 0 {
		return nil, p.errs
	}
	s := &Spec{
		Keystore:            Store{Secret: job.ks.field, Password: job.ksp.field},
		Protocol:            protocol,
		ProtocolSetting:     protocolSetting,
		StoreType:           storeType,
		CipherSuites:        suites,
		CipherSuitesSetting: job.suites.name,
		Spark:               &Spark{Enabled: top.enabled, Protocol: sparkProtocolName},
	}
	if job.kp.set() {
		s.Keystore.KeyPassword = new(job.kp.field)
	}
	if job.ts.set() {
		s.Truststore = &Store{Secret: job.ts.field, Password: job.tsp.field}
	}
	for _, l := range nss {
		s.Spark.Namespaces = append(s.Spark.Namespaces, SparkNamespace{Name: l.ns, Enabled: l.enabled})
	}
	switch {
	case p.options:
		s.SparkVersion = ConsumerVersion{Version{2, 2}, "inferred from the DC/OS Spark package options (security.ssl): the DC/OS Spark builds of Spark 2.2 and before take them"}
	case job.base64 != "":
		s.SparkVersion = ConsumerVersion{Version{2, 2}, "inferred from " + job.base64 + ": only the DC/OS Spark builds of Spark 2.2 and before read it"}
	}
	return s, nil
}

// allSparkKeys are every spark.ssl key keyship reads, in every namespace,
// for guessing what an unknown key meant.
var allSparkKeys = func() []string {
	out := slices.Clone(sparkKnown)
	for _, ns := range SparkNamespaces {
		for _, k := range sparkKnown {
			out = append(out, sparkPrefix+ns+"."+strings.TrimPrefix(k, sparkPrefix))
		}
	}
	return out
}()

// sparkKeyKnown reports whether key is a spark.ssl setting Spark reads, in
// spark.ssl. or a namespace: one keyship reads or one it leaves to Spark.
func sparkKeyKnown(key string) bool {
	rest := strings.TrimPrefix(key, sparkPrefix)
	setting := func(s string) bool {
		return slices.Contains(sparkKnown, sparkPrefix+s) || slices.Contains(sparkPassThrough, s)
	}
	if setting(rest) {
		return true
	}
	ns, s, ok := strings.Cut(rest, ".")
	return ok && slices.Contains(SparkNamespaces, ns) && setting(s)
}

// ReadSparkProperties reads Spark properties from a document that holds
// spark-defaults.conf lines, spark-submit arguments, or both:
//
//   - a line whose first non-space character is '-' holds arguments, split
//     like a POSIX shell does (quotes, backslashes): "--conf KEY=VALUE",
//     "--conf=KEY=VALUE", "-c KEY=VALUE" and "-DKEY=VALUE" set KEY; the
//     dcos-spark TLS flags (--keystore-secret-path, --keystore-password,
//     --private-key-password, --truststore-secret-path, --truststore-password)
//     are kept under their flag name, e.g. "--keystore-password", with the
//     next word (or the text after "=") as value; other arguments (--class,
//     the jar, ...) are skipped;
//   - any other line is a properties line, read as Java's Properties.load
//     reads spark-defaults.conf: "key value", "key=value" or "key: value";
//     '#' and '!' start comment lines; a line ending with a backslash
//     continues on the next; \t, \n, \uXXXX and the like are unescaped; Spark
//     trims the value, and so does keyship;
//   - a key set twice must get the same value both times.
//
// Problems are reported together as *Errors naming the line or the key,
// never a value.
func ReadSparkProperties(data []byte) (map[string]string, error) {
	return readSparkProperties(data).result()
}

// readSparkProperties is ReadSparkProperties, keeping what it read whatever
// the problems.
func readSparkProperties(data []byte) *collected {
	c := newCollected()
	for _, l := range logicalLines(data, true, true) {
		if isComment(l.text, true) {
			continue
		}
		if strings.HasPrefix(strings.TrimLeft(l.text, " \t\f"), "-") {
			readSparkArgs(c, l)
			continue
		}
		k, v := propertiesLine(l.text)
		if k == "" {
			c.errs.add(lineField(l.num), "", "a properties line needs a key")
			continue
		}
		c.set(k, strings.TrimSpace(v), l.num)
	}
	return c
}

// readSparkArgs reads the settings of one line of spark-submit arguments.
func readSparkArgs(c *collected, l logicalLine) {
	words, reason := shellWords(l.text)
	if reason != "" {
		c.errs.add(lineField(l.num), "", reason)
		return
	}
	conf := func(kv, flag string) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			c.errs.add(lineField(l.num), "", flag+" needs KEY=VALUE")
			return
		}
		c.set(k, strings.TrimSpace(v), l.num)
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		next := func() (string, bool) {
			if i+1 < len(words) {
				i++
				return words[i], true
			}
			c.errs.add(lineField(l.num), "", w+" needs a value")
			return "", false
		}
		flag, val, hasVal := strings.Cut(w, "=")
		switch {
		case w == "--conf" || w == "-c":
			if kv, ok := next(); ok {
				conf(kv, w)
			}
		case flag == "--conf" && hasVal:
			conf(val, flag)
		case strings.HasPrefix(w, "-D") && len(w) > 2:
			conf(w[2:], "-D")
		case slices.Contains(sparkFlags, flag):
			if hasVal {
				c.set(flag, val, l.num)
			} else if v, ok := next(); ok {
				c.set(flag, v, l.num)
			}
		case isDCOSFlagTypo(flag):
			c.errs.add(lineField(l.num), "", unknownReason("dcos-spark TLS flag "+displayKey(flag), guessKey(flag, sparkFlags),
				"known flags are "+strings.Join(sparkFlags, ", ")))
		}
	}
}

// propertiesLine splits one logical line of a Java properties file into its
// unescaped key and value.
func propertiesLine(line string) (string, string) {
	line = strings.TrimLeft(line, " \t\f")
	var key strings.Builder
	i := 0
	for i < len(line) {
		ch := line[i]
		if ch == '\\' && i+1 < len(line) {
			i++
			r, n := unescapeAt(line, i)
			key.WriteString(r)
			i += n
			continue
		}
		if ch == '=' || ch == ':' || ch == ' ' || ch == '\t' || ch == '\f' {
			break
		}
		key.WriteByte(ch)
		i++
	}
	for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\f') {
		i++
	}
	if i < len(line) && (line[i] == '=' || line[i] == ':') {
		i++
	}
	for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\f') {
		i++
	}
	var val strings.Builder
	for i < len(line) {
		if line[i] == '\\' && i+1 < len(line) {
			i++
			r, n := unescapeAt(line, i)
			val.WriteString(r)
			i += n
			continue
		}
		val.WriteByte(line[i])
		i++
	}
	return key.String(), val.String()
}

// unescapeAt unescapes the escape sequence whose backslash precedes s[i]; it
// returns the text and how many bytes of s it used from i.
func unescapeAt(s string, i int) (string, int) {
	switch s[i] {
	case 't':
		return "\t", 1
	case 'n':
		return "\n", 1
	case 'r':
		return "\r", 1
	case 'f':
		return "\f", 1
	case 'u':
		if i+5 <= len(s) {
			var r rune
			if _, err := fmt.Sscanf(s[i+1:i+5], "%04x", &r); err == nil && isHex4(s[i+1:i+5]) {
				return string(r), 5
			}
		}
		return "u", 1
	}
	return s[i : i+1], 1
}

func isHex4(s string) bool {
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return len(s) == 4
}

// sparkOptionsPrefix is where the DC/OS Spark package's options put the
// spark.ssl settings (seed 003): {"security": {"ssl": {"keyStoreBase64": ...}}}.
const sparkOptionsPrefix = "security.ssl."

// parseSparkOptions parses the DC/OS Spark package's TLS options JSON,
// {"security": {"ssl": {"enabled": true, "keyStoreBase64": "...",
// "keyStorePassword": "...", "keyPassword": "..."}}}, whose keys are the
// spark.ssl settings without their prefix. Keys outside security.ssl are
// ignored; settings are named "security.ssl.<key>" in errors.
func parseSparkOptions(data []byte) (*Spec, error) {
	var whole json.RawMessage
	if err := json.Unmarshal(data, &whole); err != nil {
		return nil, malformedAs("DC/OS Spark options JSON", data, err)
	}
	errs := &Errors{}
	top, ok := decodeObject(whole)
	if !ok {
		return nil, fmt.Errorf(`spec: DC/OS Spark options JSON must be an object {"security":{"ssl":{...}}}, got %s`, kindOf(whole))
	}
	sec, ok := decodeObject(top.vals["security"])
	if !ok {
		errs.add("security", "", `must be an object holding "ssl"`)
		return nil, errs
	}
	if mesos, ok := decodeObject(sec.vals["mesos"]); ok {
		if mssl, ok := decodeObject(mesos.vals["ssl"]); ok && string(bytes.TrimSpace(mssl.vals["enabled"])) == "true" {
			// Seed 003: the DC/OS Spark package option that turns on
			// libprocess TLS between the dispatcher and Mesos.
			errs.add("security.mesos.ssl.enabled", "", "keyship cannot honour this DC/OS Spark package option: it turns on TLS between the "+
				"Spark dispatcher and the Mesos master (libprocess, LIBPROCESS_SSL_*), with the node certificates DC/OS provisions, not "+
				"the job's spark.ssl stores keyship ships; set it in the package options you install Spark with, and leave it out of "+
				"the job's TLS request (for a libprocess process of your own, give keyship its LIBPROCESS_SSL_* settings and --emit libprocess)")
		}
	}
	ssl, ok := decodeObject(sec.vals["ssl"])
	if !ok {
		errs.add("security.ssl", "", "must be an object of spark.ssl settings without their spark.ssl. prefix")
		return nil, errs
	}
	p := &sparkParser{settings: settings{errs: errs}, entries: map[string]sparkEntry{}, options: true, rename: func(k string) string {
		return sparkOptionsPrefix + strings.TrimPrefix(k, sparkPrefix)
	}}
	keys := make([]string, 0, len(ssl.vals))
	for k := range ssl.vals {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range ssl.dups {
		errs.add(displayKey(sparkOptionsPrefix+k), "", "set more than once")
	}
	for _, k := range keys {
		raw := ssl.vals[k]
		name := sparkOptionsPrefix + k
		var v string
		switch kindOf(raw) {
		case "string":
			_ = json.Unmarshal(raw, &v)
		case "boolean", "number":
			v = string(bytes.TrimSpace(raw))
		case "null":
			continue
		default:
			errs.add(displayKey(name), "", "must be a string, number or boolean, got "+kindOf(raw))
			continue
		}
		p.entries[sparkPrefix+k] = sparkEntry{name: name, value: v}
	}
	return p.parse()
}
