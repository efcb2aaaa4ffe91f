package conf

import (
	"fmt"

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

// For returns consumer's settings for b's files in dir, and the extra files
// that must ship with the stores (Flink's 0600 secret fragment). Settings
// never hold passwords in Value.
func For(consumer string, b *materialize.Bundle, dir string, s *spec.Spec) ([]Setting, []materialize.File, error) {
	switch consumer {
	case ConsumerSpark:
		return Spark(b, dir, s.Protocol), nil, nil
	case ConsumerFlink:
		settings, err := Flink(b, dir, s)
		if err != nil {
			return nil, nil, err
		}
		extra := materialize.File{Path: FlinkSecretFile, Role: RoleFlinkSecrets, Mode: materialize.FileMode, Contents: SecretYAML(settings)}
		return settings, []materialize.File{extra}, nil
	case ConsumerLibprocess:
		settings, err := Libprocess(b, dir, s)
		return settings, nil, err
	default:
		return nil, nil, fmt.Errorf("consumer %q: want spark, flink or libprocess", consumer)
	}
}

// Format formats settings for consumer's configuration on stdout: Spark
// properties, Flink YAML or libprocess KEY=VALUE lines. Passwords are left
// out (Flink's are comments pointing at FlinkSecretFile).
func Format(consumer string, settings []Setting) string {
	switch consumer {
	case ConsumerFlink:
		return YAML(settings)
	case ConsumerLibprocess:
		return Environment(settings)
	default:
		return Properties(settings)
	}
}

// Outputs returns the store formats consumer reads beyond the spec's own
// store type: libprocess reads PEM key, certificate and CA files.
func Outputs(consumer string) []materialize.Format {
	if consumer == ConsumerLibprocess {
		return []materialize.Format{materialize.FormatPEM}
	}
	return nil
}
