package conf

import (
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/shipper/mesos"
)

// SparkPropertiesFile is the name, beside the stores, of the Spark
// properties with their passwords (SparkFragment) that Spark 2.2 and before
// need, shipped 0600 for spark-submit --properties-file.
const SparkPropertiesFile = "spark-ssl.properties"

// RoleSparkSecrets is the role of the extra file that carries Spark's
// settings with their passwords (SparkPropertiesFile).
const RoleSparkSecrets materialize.Role = "spark-secrets"

// Spark returns the spark.ssl.* properties that make the Spark release
// s.SparkVersion names (zero: Spark 3.x) use b's stores from dir, the
// directory they are shipped to (relative paths are relative to the task's
// working directory, the Mesos sandbox):
//
//   - spark.ssl.enabled (true, or false when the request turned it off for
//     all but some namespaces), keyStore, keyStoreType, keyStorePassword,
//     keyPassword, trustStore, trustStoreType, trustStorePassword, protocol
//     (s.Spark.Protocol, e.g. TLS, else s.Protocol) and enabledAlgorithms
//     (s.CipherSuites, when the request lists them);
//   - the same under spark.ssl.<ns>. for each namespace s.Spark names, so
//     that they replace what the job's configuration had there; a namespace
//     the request turns off gets only its enabled=false.
//
// How the passwords reach Spark: from Spark 2.3 (SPARK-20379: SSLOptions
// reads them with getWithSubstitution, ConfigReader) they refer to the
// EnvKeystorePassword, EnvKeyPassword and EnvTruststorePassword variables
// with ${env:NAME}, so that no password is in the properties. Spark 2.2 and
// before read them literally (conf.getOption): then the password settings
// carry them in Setting.Password, never in Value, and SparkFragment writes
// the whole properties, passwords included, to ship as a 0600 file
// (SparkPropertiesFile) for spark-submit --properties-file.
func Spark(b *materialize.Bundle, dir string, s Profile) []Setting {
	literal := s.SparkVersion.Before(2, 3)
	var out []Setting
	password := func(key, env string, v materialize.Sensitive) {
		switch {
		case v == nil:
		case literal:
			out = append(out, Setting{Key: key, Password: v})
		default:
			out = append(out, Setting{Key: key, Value: "${env:" + env + "}"})
		}
	}
	protocol := s.Protocol
	if s.Spark != nil && s.Spark.Protocol != "" {
		protocol = s.Spark.Protocol
	}
	level := func(p string) {
		if f := b.File(roleKeystore); f != nil {
			out = append(out,
				Setting{Key: p + "keyStore", Value: filepath.Join(dir, f.Path)},
				Setting{Key: p + "keyStoreType", Value: storeType(f.Path)})
			password(p+"keyStorePassword", EnvKeystorePassword, b.KeystorePassword)
			password(p+"keyPassword", EnvKeyPassword, b.KeyPassword)
		}
		if f := b.File(roleTruststore); f != nil {
			out = append(out,
				Setting{Key: p + "trustStore", Value: filepath.Join(dir, f.Path)},
				Setting{Key: p + "trustStoreType", Value: storeType(f.Path)})
			password(p+"trustStorePassword", EnvTruststorePassword, b.TruststorePassword)
		}
		if protocol != "" {
			out = append(out, Setting{Key: p + "protocol", Value: protocol})
		}
		if len(s.CipherSuites) > 0 {
			out = append(out, Setting{Key: p + "enabledAlgorithms", Value: strings.Join(s.CipherSuites, ",")})
		}
	}
	enabled := s.Spark == nil || s.Spark.Enabled == nil || *s.Spark.Enabled
	out = append(out, Setting{Key: "spark.ssl.enabled", Value: fmt.Sprint(enabled)})
	level("spark.ssl.")
	if s.Spark != nil {
		for _, ns := range s.Spark.Namespaces {
			p := "spark.ssl." + ns.Name + "."
			if ns.Enabled != nil {
				out = append(out, Setting{Key: p + "enabled", Value: fmt.Sprint(*ns.Enabled)})
				if !*ns.Enabled {
					continue
				}
			}
			level(p)
		}
	}
	return out
}

// SparkMesos returns the Spark properties for a driver and executors that
// get the files as Mesos secret volumes, when every file of p ships by
// reference: Spark's settings (Spark) pointing at p.Dir, the files' place in
// the container, and the spark.mesos.{driver,executor}.secret.* properties
// (SparkSecrets) that make Spark ask Mesos for them. ok is false, and there
// are no settings, when a file ships by value: keyship built it, so it must
// reach the task another way (a sandbox, keyship serve's fetch URIs), where
// Spark's settings point at it; ok is false for Spark 2.2 and before too,
// which have no spark.mesos.*.secret.* (SPARK-22131, Spark 2.3). left are
// the items the properties do not carry: passwords by value, which the task
// then needs in its environment.
func SparkMesos(b *materialize.Bundle, s Profile, p *mesos.Plan) (settings []Setting, left []mesos.Item, ok bool) {
	if s.SparkVersion.Before(2, 3) {
		return nil, nil, false
	}
	for _, it := range p.Items {
		if it.Env == "" && it.Ref == nil {
			return nil, nil, false
		}
	}
	secrets, rest := SparkSecrets(p)
	for _, it := range rest {
		if it.Env == "" {
			// A file SparkSecrets cannot name (a key of a secret, a ","):
			// Spark cannot mount it.
			return nil, nil, false
		}
	}
	return append(Spark(b, p.Dir, s), secrets...), rest, true
}

// storeType is the Java KeyStore type name of a store file, from its name.
func storeType(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".p12", ".pfx", ".pkcs12":
		return "PKCS12"
	default:
		return "JKS"
	}
}

// SparkSecrets returns the spark.mesos.driver.secret.* and
// spark.mesos.executor.secret.* properties that make Spark ask Mesos for the
// items of p that ship by reference, so that the driver and its executors get
// them from the secret store without the bytes passing through the
// dispatcher. Items SparkSecrets cannot carry are returned: items that ship
// by value (Spark's spark.mesos.*.secret.values would put their bytes into
// the properties) and references with a key (Spark's secrets name a whole
// secret) or with a "," in a name or path (the lists are comma-separated).
// They must reach the task another way (fetch URIs, a sandbox).
//
// Spark's rules (docs/running-on-mesos.md, "spark.mesos.[driver|executor].
// secret.{names,filenames,envkeys}", Spark 2.3+;
// MesosSchedulerBackendUtil.getSecretVolume/getSecretEnvVar): names is a
// comma-separated list of secrets; filenames and envkeys, when given, must
// list exactly one destination per name (illegalSecretInput), relative to
// the container's work directory. So:
//   - every referenced file gets its path in the task as filename;
//   - a referenced password gets a filename too (KeystorePasswordFile, ...
//     in the files' directory), because filenames covers every name;
//   - when any password is referenced, envkeys lists its variable
//     (EnvKeystorePassword, ..., which Spark's ${env:...} settings read) and
//     a placeholder KEYSHIP_FILE_<ROLE> for each file, which nothing reads:
//     Spark needs one key per name, as the dcos-spark CLI's
//     DCOS_SPARK_KEYSTORE placeholder shows.
//
// When the job already sets these properties (its own secrets), the lists
// must be joined in the same order, and envkeys given for all or none.
func SparkSecrets(p *mesos.Plan) ([]Setting, []mesos.Item) {
	var (
		names, files, envs []string
		left               []mesos.Item
		anyPassword        bool
	)
	for _, it := range p.Items {
		if it.Ref == nil || it.Ref.Key != "" || strings.Contains(it.Ref.Name, ",") {
			left = append(left, it)
			continue
		}
		file, env := it.Path, fileEnv(it.Role)
		if it.Env != "" {
			file, env, anyPassword = path.Join(p.Dir, passwordFile(it.Env)), it.Env, true
		}
		if strings.Contains(file, ",") {
			left = append(left, it)
			continue
		}
		names, files, envs = append(names, it.Ref.Name), append(files, file), append(envs, env)
	}
	if len(names) == 0 {
		return nil, left
	}
	var out []Setting
	for _, task := range []string{"driver", "executor"} {
		prefix := "spark.mesos." + task + ".secret."
		out = append(out,
			Setting{Key: prefix + "names", Value: strings.Join(names, ",")},
			Setting{Key: prefix + "filenames", Value: strings.Join(files, ",")})
		if anyPassword {
			out = append(out, Setting{Key: prefix + "envkeys", Value: strings.Join(envs, ",")})
		}
	}
	return out, left
}

// passwordFile is the file beside the stores that holds the password of
// variable env.
func passwordFile(env string) string {
	switch env {
	case EnvKeystorePassword:
		return KeystorePasswordFile
	case EnvKeyPassword:
		return KeyPasswordFile
	case EnvTruststorePassword:
		return TruststorePasswordFile
	}
	return strings.ToLower(env)
}

var notEnvChar = regexp.MustCompile(`[^A-Z0-9_]`)

// fileEnv is the placeholder variable of a file in Spark's envkeys.
func fileEnv(r materialize.Role) string {
	return "KEYSHIP_FILE_" + notEnvChar.ReplaceAllString(strings.ToUpper(string(r)), "_")
}

// Properties formats settings as key=value lines (spark-defaults.conf and
// --properties-file style), escaping what Java's Properties.load would read
// otherwise. Password settings are left out: they are in SparkFragment.
func Properties(settings []Setting) string {
	var b []byte
	for _, s := range settings {
		if s.Password != nil {
			continue
		}
		b = appendProperty(b, []byte(s.Key), true)
		b = append(b, '=')
		b = appendProperty(b, []byte(s.Value), false)
		b = append(b, '\n')
	}
	return string(b)
}

// SparkFragment formats settings as a properties file with the passwords
// written in: the file to ship as a 0600 SparkPropertiesFile for Spark 2.2
// and before, read by spark-submit --properties-file (Utils.
// getPropertiesFromFile: Properties.load of UTF-8, values trimmed). It holds
// secrets: never print or log it, and zero it once shipped.
func SparkFragment(settings []Setting) materialize.Sensitive {
	header := "# keyship: the TLS properties for Spark 2.2 and before, passwords included; spark-submit --properties-file\n"
	n := len(header)
	for _, s := range settings {
		n += 2*(len(s.Key)+len(s.Value)+len(s.Password)) + 2
	}
	// One allocation, so that no partial copy of a password is left behind.
	b := make([]byte, 0, n)
	b = append(b, header...)
	for _, s := range settings {
		v := []byte(s.Value)
		if s.Password != nil {
			v = s.Password
		}
		b = appendProperty(b, []byte(s.Key), true)
		b = append(b, '=')
		b = appendProperty(b, v, false)
		b = append(b, '\n')
	}
	return b
}

// appendProperty appends s escaped for a Java properties line: backslashes,
// line breaks and tabs always; "=", ":", "#", "!" and spaces in a key; a
// leading space, "#" or "!" in a value. Bytes of multi-byte UTF-8 runes are
// never escaped.
func appendProperty(b, s []byte, key bool) []byte {
	for i, c := range s {
		switch {
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\f':
			b = append(b, '\\', 'f')
		case key && strings.IndexByte("=: #!", c) >= 0, !key && i == 0 && strings.IndexByte(" #!", c) >= 0:
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return b
}
