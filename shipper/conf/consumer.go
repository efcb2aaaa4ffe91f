package conf

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
)

// The consumers settings can be written for (spec's, named here too for
// the callers of this package).
const (
	ConsumerSpark      = spec.ConsumerSpark
	ConsumerFlink      = spec.ConsumerFlink
	ConsumerLibprocess = spec.ConsumerLibprocess
)

// Consumers lists the consumers, for flag help.
var Consumers = spec.Consumers

// RoleFlinkSecrets is the role of the extra file that carries Flink's
// settings with their passwords (FlinkSecretFile).
const RoleFlinkSecrets materialize.Role = "flink-secrets"

// For returns consumer's settings for b's files in dir, for the release of
// the consumer s names (s.SparkVersion, s.FlinkVersion), and the extra files
// that must ship with the stores: Flink's fragment (FlinkSecretFile, every
// setting with its password), and for Spark 2.2 and before the properties
// with their passwords (SparkPropertiesFile), both 0600. Settings never hold
// passwords in Value.
func For(consumer string, b *materialize.Bundle, dir string, s Profile) ([]Setting, []materialize.File, error) {
	switch consumer {
	case ConsumerSpark:
		settings := Spark(b, dir, s)
		if !s.SparkVersion.Before(2, 3) {
			if err := sparkEnvPasswords(b); err != nil {
				return nil, nil, err
			}
			return settings, nil, nil
		}
		extra := materialize.File{Path: SparkPropertiesFile, Role: RoleSparkSecrets, Mode: materialize.FileMode, Contents: SparkFragment(settings)}
		return settings, []materialize.File{extra}, nil
	case ConsumerFlink:
		settings, err := Flink(b, dir, s)
		if err != nil {
			return nil, nil, err
		}
		extra := materialize.File{Path: FlinkSecretFile, Role: RoleFlinkSecrets, Mode: materialize.FileMode, Contents: FlinkFragment(settings, s)}
		return settings, []materialize.File{extra}, nil
	case ConsumerLibprocess:
		settings, err := Libprocess(b, dir, s)
		return settings, nil, err
	default:
		return nil, nil, fmt.Errorf("consumer %q: want spark, flink or libprocess", consumer)
	}
}

// sparkEnvPasswords refuses a non-ASCII password for Spark 2.3+, which
// reads the passwords from the task's environment (${env:NAME}, Spark's
// ConfigReader: System.getenv): Java 17 decodes the environment in the
// locale's charset (sun.jnu.encoding), ASCII under the POSIX locale a Mesos
// task gets, so the store would not open. Spark 2.2's properties file is
// read as UTF-8 and takes them.
func sparkEnvPasswords(b *materialize.Bundle) error {
	var bad []string
	for _, p := range []struct {
		env string
		pw  materialize.Sensitive
	}{{EnvKeystorePassword, b.KeystorePassword}, {EnvKeyPassword, b.KeyPassword}, {EnvTruststorePassword, b.TruststorePassword}} {
		if !isASCII(p.pw) {
			bad = append(bad, p.env)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("conf: the password in %s has non-ASCII characters: Spark 2.3+ reads it from the task's environment (${env:...}), which Java 17 decodes in the "+
		"locale's charset (sun.jnu.encoding: ASCII under the POSIX locale a Mesos task gets), so the store would not open "+
		"(\"keystore was tampered with, or password was incorrect\"); use an ASCII password", strings.Join(bad, ", "))
}

// Format formats settings for consumer's configuration on stdout, without
// a password: Spark properties, libprocess KEY=VALUE lines, and, where a
// fragment file carries the settings (Flink always; Spark when a setting is
// a literal password), the settings as comments ("#   key: value", a
// password as "(in <file>)"), so that nothing printed is pasted beside the
// fragment to give a key twice.
func Format(consumer string, settings []Setting) string {
	var b strings.Builder
	switch {
	case consumer == ConsumerFlink:
		for _, st := range settings {
			v := st.Value
			if st.Password != nil {
				v = "(in " + FlinkSecretFile + ", not printed)"
			}
			fmt.Fprintf(&b, "#   %s: %s\n", st.Key, v)
		}
	case consumer == ConsumerLibprocess:
		return Environment(settings)
	case slices.ContainsFunc(settings, func(st Setting) bool { return st.Password != nil }):
		for _, line := range strings.SplitAfter(Properties(settings), "\n") {
			if line != "" {
				b.WriteString("#   " + line)
			}
		}
		for _, st := range settings {
			if st.Password != nil {
				fmt.Fprintf(&b, "#   %s=(in %s, not printed)\n", st.Key, SparkPropertiesFile)
			}
		}
	default:
		return Properties(settings)
	}
	return b.String()
}

// Print returns what keyship prints on stdout for consumer's settings, as
// For wrote them for b's files in dir: comment lines that say which release
// they are for and why, where they go and, where a fragment file carries
// them, where it is (dir/FlinkSecretFile, dir/SparkPropertiesFile) and how
// to merge it; what the CA bundle file is for; the request's warnings; then
// Format's lines. It never holds a password.
func Print(consumer string, settings []Setting, b *materialize.Bundle, s Profile, dir string) string {
	var g strings.Builder
	note := func(format string, a ...any) { fmt.Fprintf(&g, "# "+format+"\n", a...) }
	for _, w := range s.Warnings {
		note("warning: %s", w)
	}
	if consumer == ConsumerSpark {
		for _, w := range spec.SparkNamespaceWarnings(s.asSpec()) {
			note("warning: %s", w)
		}
	}
	switch consumer {
	case ConsumerFlink:
		rel := flinkRelease{s.FlinkVersion.Version}
		note("Flink %s (%s): it reads %s%s.", rel, versionWhy(s.FlinkVersion, "--flink-version"), rel.file(), map[bool]string{
			true:  " with snakeyaml-engine (YAML 1.2, Core schema), and a key given twice stops it",
			false: " line by line (key: value; \"#\" starts a comment)",
		}[rel.standardYAML()])
		note("The complete TLS fragment, passwords included, is %s (0600). Merge it into $FLINK_CONF_DIR/%s once,", filepath.Join(dir, FlinkSecretFile), rel.file())
		note("after removing from that file the keys it sets (each is in the fragment once):")
		if rel.readsLegacyFirst() {
			note("Flink %s reads $FLINK_CONF_DIR/flink-conf.yaml INSTEAD of config.yaml when that file exists (GlobalConfiguration.loadConfiguration):", rel)
			note("remove or migrate a leftover flink-conf.yaml, or Flink ignores this fragment and runs without TLS.")
		}
		if !rel.storeTypes() && s.StoreType == spec.StoreTypePKCS12 {
			note("Flink %s opens the stores with the JVM's default type (PKCS12 from Java 9, which reads JKS too; JKS on Java 8): run it on Java 9 or later.", rel)
		}
	case ConsumerSpark:
		literal := s.SparkVersion.Before(2, 3)
		v := "3.x"
		if !s.SparkVersion.IsZero() {
			v = s.SparkVersion.String()
		}
		note("Spark %s (%s).", v, versionWhy(s.SparkVersion, "--spark-version"))
		if literal {
			note("Spark %s reads the spark.ssl passwords literally (${env:...} substitution came with Spark 2.3, SPARK-20379):", v)
			note("the complete properties, passwords included, are %s (0600); pass it to spark-submit --properties-file", filepath.Join(dir, SparkPropertiesFile))
			note("(it replaces spark-defaults.conf: add the job's other properties to it). It sets:")
		} else {
			note("Spark properties (spark-defaults.conf or --conf); the passwords come from the task's environment (${env:...}):")
			note("keyship serve and --emit mesos set %s, %s and %s; from this sandbox, e.g.", EnvKeystorePassword, EnvKeyPassword, EnvTruststorePassword)
			note("  export %s=\"$(cat %s)\"", EnvKeystorePassword, ShellQuote(filepath.Join(dir, KeystorePasswordFile)))
		}
		if slices.ContainsFunc(settings, func(st Setting) bool { return strings.HasPrefix(st.Key, "spark.mesos.") }) {
			note("The stores reach the driver and executors as Mesos secrets (spark.mesos.driver.secret.*, spark.mesos.executor.secret.*).")
		}
	}
	if consumer != ConsumerLibprocess {
		if f := b.File(materialize.RoleCABundle); f != nil {
			note("%s is the request's CA bundle (ca_bundle_secret) as a truststore, opened with the truststore password: no", filepath.Join(dir, f.Path))
			note("Spark or Flink setting reads it; give it to a client that must trust that CA (e.g. -Djavax.net.ssl.trustStore).")
		}
	}
	return g.String() + Format(consumer, settings)
}

// versionWhy says where a consumer version comes from.
func versionWhy(v spec.ConsumerVersion, flag string) string {
	switch {
	case v.From != "":
		return v.From
	case v.IsZero():
		return "the newest release keyship targets; pass " + flag + " for another"
	}
	return flag
}

// Outputs returns the store formats consumer reads beyond the spec's own
// store type: libprocess reads PEM key, certificate and CA files.
func Outputs(consumer string) []materialize.Format {
	if consumer == ConsumerLibprocess {
		return []materialize.Format{materialize.FormatPEM}
	}
	return nil
}
