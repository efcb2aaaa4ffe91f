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
// package's (seed 003: the dispatcher decodes them into files).
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
	sparkTrustStoreType, sparkProtocol,
}

var sparkFlags = []string{
	flagKeystoreSecretPath, flagKeystorePassword, flagPrivateKeyPassword,
	flagTruststoreSecretPath, flagTruststorePassword,
}

// sparkPassThrough are spark.ssl settings that Spark reads and keyship
// leaves to Spark: they do not change which stores are built.
var sparkPassThrough = []string{
	"spark.ssl.port", "spark.ssl.needClientAuth", "spark.ssl.enabledAlgorithms",
	"spark.ssl.trustStoreReloadingEnabled", "spark.ssl.trustStoreReloadIntervalMs",
	"spark.ssl.openSslEnabled", "spark.ssl.privateKey", "spark.ssl.privateKeyPassword",
	"spark.ssl.certChain",
}

// sparkNamespaces are Spark's per-service overrides, spark.ssl.<ns>.*; keyship
// leaves them to Spark.
var sparkNamespaces = []string{"ui", "standalone", "historyServer", "rpc", "fs"}

// ParseSpark parses a Spark job's TLS settings, as properties (keys and
// values as in spark-defaults.conf or --conf pairs; see ReadSparkProperties
// for reading them from a document) into a Spec:
//
//   - spark.ssl.enabled must be true; it may be left out when a dcos-spark
//     flag is given, as `dcos spark run` sets it then;
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
//   - spark.ssl.protocol is one of Protocols (default DefaultProtocol);
//   - spark.ssl.keyStoreType is JKS or PKCS12 (default JKS);
//     spark.ssl.trustStoreType, when set, must be the same, as keyship
//     writes both stores in one type.
//
// Store settings hold refs (a plain path is a ref for the default backend)
// and passwords are literal unless written ${secret:REF}, as Parse explains;
// the dcos-spark flags follow the same rule (--keystore-secret-path is a
// DC/OS secret path, --keystore-password a password, as dcos-spark takes
// them). Giving a setting and its dcos-spark flag together is an error.
//
// Keys outside spark.ssl are ignored (a whole spark-defaults.conf may be
// given), and so are the spark.ssl settings that do not change the stores
// (port, needClientAuth, enabledAlgorithms, ...) and the per-service
// overrides spark.ssl.ui.*, spark.ssl.standalone.*, spark.ssl.historyServer.*
// and spark.ssl.rpc.*. Any other spark.ssl key is an error.
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
	slices.Sort(unknown)
	for _, k := range unknown {
		p.unknownFlag(k)
	}
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

func (p *sparkParser) unknownFlag(k string) {
	reason := "unknown dcos-spark TLS flag; known flags are " + strings.Join(sparkFlags, ", ")
	if g := guessKey(k, sparkFlags); g != "" {
		reason = "unknown dcos-spark TLS flag; did you mean " + g + "?"
	}
	p.errs.add(displayKey(k), "", reason)
}

// choice is one of the settings that may give the same thing.
type choice struct {
	key  string
	read func(name, v string) (Field, bool)
}

// one reads the first of the given settings that is set, reporting the
// others that are set too. It returns the field (unset when none), whether
// one was set, and the key that was used.
func (p *sparkParser) one(what string, choices ...choice) (Field, bool, string) {
	var (
		got     Field
		usedKey string
		usedAs  string
		found   bool
	)
	for _, c := range choices {
		e, ok := p.get(c.key)
		if !ok {
			continue
		}
		if found {
			p.errs.add(e.name, "", fmt.Sprintf("set together with %s; give the %s once", usedAs, what))
			continue
		}
		found, usedKey, usedAs = true, c.key, e.name
		if f, ok := c.read(e.name, e.value); ok {
			got = f
		}
	}
	return got, found, usedKey
}

func (p *sparkParser) parse() (*Spec, error) {
	flagGiven := false
	for _, f := range sparkFlags {
		if _, ok := p.get(f); ok {
			flagGiven = true
		}
	}
	enabled := true
	if e, ok := p.get(sparkEnabled); ok {
		if b, ok := p.boolean(e.name, e.value); ok && !b {
			p.errs.add(e.name, "", "TLS is not enabled: "+e.name+" is false; set it to true")
			enabled = false
		} else if !ok {
			enabled = false
		}
	} else if !flagGiven {
		name := p.rename(sparkEnabled)
		p.errs.add(name, "", "TLS is not enabled: "+name+" is missing; set it to true")
		enabled = false
	}

	ks, ksSet, ksKey := p.one("keystore",
		choice{sparkKeyStore, p.fileRef},
		choice{sparkKeyStoreBase64, p.base64Store},
		choice{flagKeystoreSecretPath, p.fileRef})
	ksp, kspSet, _ := p.one("keystore password",
		choice{sparkKeyStorePassword, p.password},
		choice{flagKeystorePassword, p.password})
	kp, kpSet, _ := p.one("key password",
		choice{sparkKeyPassword, p.password},
		choice{flagPrivateKeyPassword, p.password})
	ts, tsSet, _ := p.one("truststore",
		choice{sparkTrustStore, p.fileRef},
		choice{sparkTrustStoreBase64, p.base64Store},
		choice{flagTruststoreSecretPath, p.fileRef})
	tsp, tspSet, tspKey := p.one("truststore password",
		choice{sparkTrustStorePassword, p.password},
		choice{flagTruststorePassword, p.password})

	if enabled {
		if !ksSet {
			p.errs.add(p.rename(sparkKeyStore), "", "required (the keystore: "+p.rename(sparkKeyStore)+" holding its secret ref, "+
				p.rename(sparkKeyStoreBase64)+" holding it inline, or "+flagKeystoreSecretPath+")")
		}
		if ksSet && !kspSet {
			p.errs.add(p.rename(sparkKeyStorePassword), "", "required (the keystore password, or "+flagKeystorePassword+")")
		}
		if ksKey == flagKeystoreSecretPath && !kpSet {
			p.errs.add(flagPrivateKeyPassword, "", "required with "+flagKeystoreSecretPath+" (the private key password), as dcos-spark requires it")
		}
	}
	if tsSet && !tspSet {
		p.errs.add(p.rename(sparkTrustStorePassword), "", "required when a truststore is set (the truststore password, or "+flagTruststorePassword+")")
	}
	if tspSet && !tsSet {
		name := p.rename(sparkTrustStorePassword)
		if tspKey == flagTruststorePassword {
			name = flagTruststorePassword
		}
		p.errs.add(name, "", "set without a truststore; set "+p.rename(sparkTrustStore)+" or "+flagTruststoreSecretPath+" too, or remove this setting")
	}

	protocol, protocolSetting := DefaultProtocol, sparkProtocol
	if e, ok := p.get(sparkProtocol); ok {
		protocolSetting = e.name
		if v := p.protocol(e.name, e.value); v != "" {
			protocol = v
		}
	}
	storeType := StoreTypeJKS
	if e, ok := p.get(sparkKeyStoreType); ok {
		if v := p.storeType(e.name, e.value); v != "" {
			storeType = v
		}
	}
	if e, ok := p.get(sparkTrustStoreType); ok {
		if v := p.storeType(e.name, e.value); v != "" && v != storeType {
			p.errs.add(e.name, "", fmt.Sprintf("trust store type %s differs from the keystore type %s; keyship writes both stores in one type, set by %s",
				strings.ToUpper(v), strings.ToUpper(storeType), p.rename(sparkKeyStoreType)))
		}
	}

	var unknown []string
	for k := range p.entries {
		if strings.HasPrefix(k, sparkPrefix) && !slices.Contains(sparkKnown, k) && !sparkIgnored(k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		name := p.entries[k].name
		reason := "unknown setting; known settings are " + strings.Join(sparkKnown, ", ")
		if g := guessKey(k, sparkKnown); g != "" {
			reason = "unknown setting; did you mean " + p.rename(g) + "?"
		}
		p.errs.add(displayKey(name), "", reason)
	}

	if len(p.errs.List) > 0 {
		return nil, p.errs
	}
	s := &Spec{
		Keystore:        Store{Secret: ks, Password: ksp},
		Protocol:        protocol,
		ProtocolSetting: protocolSetting,
		StoreType:       storeType,
	}
	if kpSet {
		s.Keystore.KeyPassword = new(kp)
	}
	if tsSet {
		s.Truststore = &Store{Secret: ts, Password: tsp}
	}
	return s, nil
}

// sparkIgnored reports whether key is a spark.ssl setting that keyship leaves
// to Spark.
func sparkIgnored(key string) bool {
	if slices.Contains(sparkPassThrough, key) {
		return true
	}
	rest := strings.TrimPrefix(key, sparkPrefix)
	ns, _, ok := strings.Cut(rest, ".")
	return ok && slices.Contains(sparkNamespaces, ns)
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
			reason := "unknown dcos-spark TLS flag " + displayKey(flag) + "; known flags are " + strings.Join(sparkFlags, ", ")
			if g := guessKey(flag, sparkFlags); g != "" {
				reason = "unknown dcos-spark TLS flag " + displayKey(flag) + "; did you mean " + g + "?"
			}
			c.errs.add(lineField(l.num), "", reason)
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
	ssl, ok := decodeObject(sec.vals["ssl"])
	if !ok {
		errs.add("security.ssl", "", "must be an object of spark.ssl settings without their spark.ssl. prefix")
		return nil, errs
	}
	p := &sparkParser{settings: settings{errs: errs}, entries: map[string]sparkEntry{}, rename: func(k string) string {
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
