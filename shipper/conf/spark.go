package conf

import (
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/shipper/mesos"
)

// Spark returns the spark.ssl.* properties that make Spark use b's stores
// from dir, the directory they are shipped to (relative paths are relative
// to the task's working directory, the Mesos sandbox). Passwords are not
// written into the properties: they refer to the EnvKeystorePassword,
// EnvKeyPassword and EnvTruststorePassword variables with Spark's
// ${env:NAME} substitution, which spark.ssl.*Password settings honour
// (SSLOptions reads them with getWithSubstitution).
func Spark(b *materialize.Bundle, dir, protocol string) []Setting {
	out := []Setting{{Key: "spark.ssl.enabled", Value: "true"}}
	if f := b.File(roleKeystore); f != nil {
		out = append(out,
			Setting{Key: "spark.ssl.keyStore", Value: filepath.Join(dir, f.Path)},
			Setting{Key: "spark.ssl.keyStoreType", Value: storeType(f.Path)},
			Setting{Key: "spark.ssl.keyStorePassword", Value: "${env:" + EnvKeystorePassword + "}"},
			Setting{Key: "spark.ssl.keyPassword", Value: "${env:" + EnvKeyPassword + "}"},
		)
	}
	if f := b.File(roleTruststore); f != nil {
		out = append(out,
			Setting{Key: "spark.ssl.trustStore", Value: filepath.Join(dir, f.Path)},
			Setting{Key: "spark.ssl.trustStoreType", Value: storeType(f.Path)},
			Setting{Key: "spark.ssl.trustStorePassword", Value: "${env:" + EnvTruststorePassword + "}"},
		)
	}
	if protocol != "" {
		out = append(out, Setting{Key: "spark.ssl.protocol", Value: protocol})
	}
	return out
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
// otherwise. Password settings are left out: Spark's never have one.
func Properties(settings []Setting) string {
	var b strings.Builder
	for _, s := range settings {
		if s.Password != nil {
			continue
		}
		b.WriteString(escapeProperty(s.Key, true))
		b.WriteByte('=')
		b.WriteString(escapeProperty(s.Value, false))
		b.WriteByte('\n')
	}
	return b.String()
}

// escapeProperty escapes s for a Java properties line: backslashes, line
// breaks and tabs always; "=", ":", "#", "!" and spaces in a key; a leading
// space, "#" or "!" in a value.
func escapeProperty(s string, key bool) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\f':
			b.WriteString(`\f`)
		case key && strings.ContainsRune("=: #!", r), !key && i == 0 && strings.ContainsRune(" #!", r):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
