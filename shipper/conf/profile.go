package conf

import "github.com/keyship/keyship/host/spec"

// Profile is what a consumer's settings are written from besides the
// Bundle: the consumer's release and the TLS choices of the request (the
// protocol, suites, store type, endpoints and component switches, the
// dialect's own settings) and its warnings. It is read once from the
// request's Spec (ProfileOf), so that no setting re-reads the Spec. Its
// fields are the Spec's, by the same names; a new consumer rule that needs
// another one adds it here and to ProfileOf.
type Profile struct {
	Protocol            string
	StoreType           string
	VerifyHostname      *bool
	Endpoints           *spec.Endpoints
	Libprocess          *spec.Libprocess
	CipherSuites        []string
	CipherSuitesSetting string
	SparkVersion        spec.ConsumerVersion
	FlinkVersion        spec.ConsumerVersion
	Spark               *spec.Spark
	Flink               *spec.Flink
	Warnings            []string
}

// ProfileOf reads the consumer's profile from s; a nil s is the zero
// Profile (the defaults: the newest releases, TLS as each consumer does it).
func ProfileOf(s *spec.Spec) Profile {
	if s == nil {
		return Profile{}
	}
	return Profile{
		Protocol: s.Protocol, StoreType: s.StoreType, VerifyHostname: s.VerifyHostname,
		Endpoints: s.Endpoints, Libprocess: s.Libprocess,
		CipherSuites: s.CipherSuites, CipherSuitesSetting: s.CipherSuitesSetting,
		SparkVersion: s.SparkVersion, FlinkVersion: s.FlinkVersion,
		Spark: s.Spark, Flink: s.Flink, Warnings: s.Warnings,
	}
}

// asSpec is the profile as a Spec, for host/spec's helpers that read one
// (spec.SparkNamespaceWarnings): only the profile's fields are set.
func (p Profile) asSpec() *spec.Spec {
	return &spec.Spec{
		Protocol: p.Protocol, StoreType: p.StoreType, VerifyHostname: p.VerifyHostname,
		Endpoints: p.Endpoints, Libprocess: p.Libprocess,
		CipherSuites: p.CipherSuites, CipherSuitesSetting: p.CipherSuitesSetting,
		SparkVersion: p.SparkVersion, FlinkVersion: p.FlinkVersion,
		Spark: p.Spark, Flink: p.Flink, Warnings: p.Warnings,
	}
}
