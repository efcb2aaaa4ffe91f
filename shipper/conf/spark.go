// Package conf writes the settings a consumer pastes into its configuration
// so that it reads the shipped stores: Spark properties today.
package conf

import (
	"path/filepath"
	"strings"

	"github.com/keyship/keyship/host/materialize"
)

// Setting is one key = value line of a consumer's configuration.
type Setting struct {
	Key   string
	Value string
}

// The environment variables that carry the store passwords into the task.
// Settings refer to them rather than holding passwords.
const (
	EnvKeystorePassword   = "KEYSHIP_KEYSTORE_PASSWORD"
	EnvKeyPassword        = "KEYSHIP_KEY_PASSWORD"
	EnvTruststorePassword = "KEYSHIP_TRUSTSTORE_PASSWORD"
)

// Spark returns the spark.ssl.* properties that make Spark use b's stores
// from dir, the directory they are shipped to. Passwords are not written
// into the properties: they refer to the EnvKeystorePassword, EnvKeyPassword
// and EnvTruststorePassword variables with Spark's ${env:NAME} substitution,
// which spark.ssl.* settings honour.
func Spark(b *materialize.Bundle, dir, protocol string) []Setting {
	out := []Setting{{"spark.ssl.enabled", "true"}}
	if f := b.File(materialize.RoleKeystore); f != nil {
		out = append(out,
			Setting{"spark.ssl.keyStore", filepath.Join(dir, f.Path)},
			Setting{"spark.ssl.keyStoreType", storeType(f.Path)},
			Setting{"spark.ssl.keyStorePassword", "${env:" + EnvKeystorePassword + "}"},
			Setting{"spark.ssl.keyPassword", "${env:" + EnvKeyPassword + "}"},
		)
	}
	if f := b.File(materialize.RoleTruststore); f != nil {
		out = append(out,
			Setting{"spark.ssl.trustStore", filepath.Join(dir, f.Path)},
			Setting{"spark.ssl.trustStoreType", storeType(f.Path)},
			Setting{"spark.ssl.trustStorePassword", "${env:" + EnvTruststorePassword + "}"},
		)
	}
	if protocol != "" {
		out = append(out, Setting{"spark.ssl.protocol", protocol})
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

// Properties formats settings as key=value lines (spark-defaults.conf style).
func Properties(settings []Setting) string {
	var b strings.Builder
	for _, s := range settings {
		b.WriteString(s.Key)
		b.WriteByte('=')
		b.WriteString(s.Value)
		b.WriteByte('\n')
	}
	return b.String()
}
