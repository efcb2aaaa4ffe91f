// Package conf writes the settings a consumer pastes into its configuration
// so that it reads the shipped files where they are in the task: Spark
// properties (spark.ssl.*, and spark.mesos.*.secret.* when Mesos resolves the
// secrets by reference), Flink configuration (security.ssl.*) and the
// libprocess environment (LIBPROCESS_SSL_*), each for the release of the
// consumer the request names (Profile.SparkVersion, FlinkVersion): the keys
// that release reads, in the form its own parser reads back unchanged. What
// the settings are written from is the Bundle and the consumer's Profile,
// read once from the request (ProfileOf); nothing here re-reads the Spec.
//
// Settings never hold a password where it could be printed: Spark 2.3+
// refers to the passwords through ${env:NAME} (the variables of
// shipper/mesos), libprocess reads PEM files that need none, and Flink and
// Spark 2.2, which read passwords only literally, get the complete settings
// in a fragment (FlinkFragment, SparkFragment) that ships as a 0600 file and
// is never printed; what is printed (Print) says where that file is and
// where it goes, and lists the settings as comments.
//
// Quickstart:
//
//	p := conf.ProfileOf(req.Spec) // once per request
//	settings, extra, err := conf.For(conf.ConsumerFlink, bundle, ".keyship", p)
//	fmt.Print(conf.Print(conf.ConsumerFlink, settings, bundle, p, ".keyship")) // no passwords
//	// ship extra (.keyship/flink-ssl.yaml, 0600) with the stores
package conf

import (
	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/shipper/mesos"
)

// Setting is one key = value of a consumer's configuration.
type Setting struct {
	Key   string
	Value string
	// Password holds the value instead of Value when the setting is a
	// password that the consumer can only read literally (Flink). Only
	// SecretYAML writes it; the formatters for stdout leave the setting
	// out.
	Password materialize.Sensitive
}

// The environment variables that carry the store passwords into the task
// (set by shipper/mesos's secret variables). Settings refer to them rather
// than holding passwords.
const (
	EnvKeystorePassword   = mesos.EnvKeystorePassword
	EnvKeyPassword        = mesos.EnvKeyPassword
	EnvTruststorePassword = mesos.EnvTruststorePassword
)

// The files beside the stores that hold their passwords, when the
// passwords ship as files too (the Spark REFERENCE case, keyship ship's
// sandbox).
const (
	KeystorePasswordFile   = mesos.KeystorePasswordFile
	KeyPasswordFile        = mesos.KeyPasswordFile
	TruststorePasswordFile = mesos.TruststorePasswordFile
)

// The roles of the Bundle files that each consumer reads, in one place so
// that following materialize's names is a one-line change.
const (
	roleKeystore   = materialize.RoleKeystore
	roleTruststore = materialize.RoleTruststore
	roleKeyPEM     = materialize.RoleKeyPEM
	roleCertPEM    = materialize.RoleCertPEM
	roleCAPEM      = materialize.RoleCAPEM
)
