// Package spec turns a job's TLS request, in the dialect its users write,
// into one typed Spec: which secret refs hold the stores and passwords, and
// what the job wants built from them.
//
// The dialects are the DC/OS security.tls JSON (ParseDCOS), Spark properties
// and the dcos-spark TLS flags (ParseSpark, ReadSparkProperties), Flink's
// flink-conf.yaml (ParseFlink) and libprocess's LIBPROCESS_SSL_* environment
// (ParseLibprocess, ReadEnv). Parse detects the dialect of a document; inputs
// that mean the same thing give the same Spec, whatever their dialect (only
// Field.Name, the setting's name in the user's words, differs).
//
// Every parser reports all the problems of a request at once, as an *Errors
// of *FieldError, each naming the setting in the dialect's own words. No
// error holds a password or an inline store.
//
// Quickstart:
//
//	s, err := spec.Parse(doc, "") // detect the dialect
//	if err != nil {
//		// errors.As(err, new(*spec.Errors)) lists every problem.
//	}
//	req, err := spec.NewRequest("job-42", s, []spec.Task{
//		{ID: "driver", Role: spec.RoleDriver, Hosts: []string{"node1.example.com"}},
//	})
//	// req.Spec.Hosts now holds every task's hosts.
package spec

import (
	"fmt"
	"log/slog"
	"time"
)

// DefaultProtocol is the TLS protocol a Spec asks for when it names none.
const DefaultProtocol = "TLSv1.2"

// Spec is one job's TLS request, whatever dialect it came in.
type Spec struct {
	// Keystore is the job's own key and certificate. Required.
	Keystore Store
	// Truststore is what the job trusts, or nil when the job sets none.
	Truststore *Store
	// CABundle is the CA bundle that goes with the truststore, or nil.
	CABundle *Field
	// Protocol is the TLS protocol the job asks for, e.g. "TLSv1.2".
	Protocol string
	// ProtocolSetting names the setting Protocol comes from in the
	// request's dialect (security.tls.protocol, spark.ssl.protocol, ...),
	// so that a protocol problem names it; "" for a spec built in code.
	ProtocolSetting string
	// StoreType is the keystore type the consumer reads: "jks" (default) or "pkcs12".
	StoreType string
	// Passthrough says whether a keystore, truststore or CA bundle that a
	// backend holds as a JKS or PKCS12 store, that passes every check and
	// that is already in the format the consumer reads, ships as its exact
	// bytes (nil or true: the default) or is written anew by keyship
	// (false). Exact bytes let a shipper send a reference to the secret
	// instead of the bytes (a Mesos secret REFERENCE on DC/OS). The DC/OS
	// dialect's "passthrough" setting sets it.
	Passthrough *bool
	// Dialect is the dialect the request was read in (one of Dialects, set
	// by Parse), or "" for a Spec built in code.
	Dialect string
	// Hosts are the hostnames and IP addresses the keystore's certificate
	// must cover (the tasks' hosts, or keyship check --hosts). Empty means
	// the host check is not run. NewRequest fills it from the tasks when it
	// is empty.
	Hosts []string

	// VerifyHostname says whether the consumer checks the peer's hostname
	// against its certificate (Flink's security.ssl.verify-hostname), or is
	// nil when the request does not say: the consumer's default applies
	// (true for Flink).
	VerifyHostname *bool
	// Endpoints says which of the consumer's TLS endpoints use the stores,
	// when the request turns on only some of them (Flink's
	// security.ssl.internal.enabled and security.ssl.rest.enabled). nil
	// means every endpoint, as in every dialect that does not tell them
	// apart.
	Endpoints *Endpoints
	// Libprocess holds the libprocess TLS switches of a request in the
	// libprocess dialect (LIBPROCESS_SSL_*), or is nil: then a libprocess
	// emitter uses its own defaults.
	Libprocess *Libprocess

	// CipherSuites are the JSSE cipher suites the consumer enables, as the
	// request lists them (Flink's security.ssl.algorithms, Spark's
	// spark.ssl.enabledAlgorithms), or nil when it sets none: an emitter
	// then writes DefaultSuites(Protocol). Parsers check that they can meet
	// Protocol (CheckSuites).
	CipherSuites []string
	// CipherSuitesSetting names the setting CipherSuites comes from.
	CipherSuitesSetting string

	// SparkVersion and FlinkVersion are the releases of Spark and Flink
	// that settings are written for. A parser sets the one its dialect
	// tells (ParseSpark infers Spark 2.2 from keyStoreBase64; ParseFlink the
	// newest Flink that reads every key of the request); a caller may
	// override them (keyship ship --spark-version, --flink-version). Zero:
	// the newest release keyship targets.
	SparkVersion, FlinkVersion ConsumerVersion
	// Spark holds what a request in the Spark dialect says beyond the
	// stores, or is nil.
	Spark *Spark
	// Flink holds the per-component TLS switches of a request in the Flink
	// dialect, or is nil.
	Flink *Flink

	// Warnings are problems of the request that do not stop the job, in
	// words for an operator (a setting the consumer ignores, translated to
	// the one it reads). They hold no secret.
	Warnings []string
}

// Spark is what a Spark request says beyond its stores.
type Spark struct {
	// Enabled is spark.ssl.enabled as written, or nil (the dcos-spark flags
	// turn TLS on without it).
	Enabled *bool
	// Protocol is spark.ssl.protocol when it names no single version: "TLS"
	// (the dcos-spark CLI's default), with which Java enables TLSv1.3 and
	// TLSv1.2. Spec.Protocol is then TLSv1.2, the version keyship's checks
	// hold the key to; the Spark settings keep "TLS".
	Protocol string
	// Namespaces are Spark's per-service settings the request names
	// (spark.ssl.<ns>.*), in the order of SparkNamespaces. Their store
	// settings are the Spec's (a namespace that names other stores is an
	// error: keyship ships one keystore per job).
	Namespaces []SparkNamespace
}

// SparkNamespace is one spark.ssl.<Name> namespace of a request.
type SparkNamespace struct {
	// Name is the namespace: ui, standalone, historyServer, rpc, fs, mesos
	// or submission.
	Name string
	// Enabled is spark.ssl.<Name>.enabled as written, or nil: then Spark
	// takes spark.ssl.enabled (except for rpc, which defaults to false).
	Enabled *bool
}

// Flink holds the per-component TLS switches of a Flink request (seed 002:
// each turns TLS off for one component when false, and defaults to true).
// A nil Switch is not set.
type Flink struct {
	// Data is taskmanager.data.ssl.enabled (the data exchange).
	Data *Switch
	// Blob is blob.service.ssl.enabled (the blob server).
	Blob *Switch
	// RPC is akka.ssl.enabled, or pekko.ssl.enabled from Flink 1.18.
	RPC *Switch
	// ArtifactServer is mesos.resourcemanager.artifactserver.ssl.enabled
	// (Flink on Mesos, which Flink 1.14 removed).
	ArtifactServer *Switch
	// RESTAuth is security.ssl.rest.authentication-enabled: mutual TLS on
	// the REST endpoint (Flink 1.7+, FLINK-10371; default false).
	RESTAuth *Switch
	// PassThrough are the security.ssl settings the request gives that
	// keyship does not act on but Flink reads (security.ssl.provider,
	// security.ssl.internal.session-timeout, ...), as written, so that the
	// settings keyship writes carry them.
	PassThrough []KeyValue
}

// KeyValue is one setting as the request writes it.
type KeyValue struct {
	Key, Value string
}

// Switch is one boolean setting as the request gives it.
type Switch struct {
	// Setting is its name as written.
	Setting string
	On      bool
}

// Endpoints are the TLS endpoints of a consumer that tells them apart: Flink's
// internal connections (RPC, data exchange, blob server) and its REST
// endpoint (web UI, REST API, CLI).
type Endpoints struct {
	Internal bool
	REST     bool
}

// Libprocess holds the switches of libprocess's TLS (Mesos components and
// frameworks; the LIBPROCESS_SSL_* environment variables, or their legacy
// SSL_* names). A nil pointer or an empty string means the request does not
// set the switch. The files (CERT_FILE, KEY_FILE, CA_FILE) are not here: they
// are Spec.Keystore.Certificate, Spec.Keystore.Key and Spec.Truststore.
type Libprocess struct {
	// SupportDowngrade is SUPPORT_DOWNGRADE: accept non-TLS connections
	// (for a rolling upgrade).
	SupportDowngrade *bool
	// VerifyCert is VERIFY_CERT (or its newer name VERIFY_SERVER_CERT):
	// verify the certificates peers present.
	VerifyCert *bool
	// RequireCert is REQUIRE_CERT (or its newer name REQUIRE_CLIENT_CERT):
	// require a certificate from connecting clients. It implies VerifyCert.
	RequireCert *bool
	// VerifyIPAdd is VERIFY_IPADD: also accept a certificate whose IP
	// address SAN matches the peer.
	VerifyIPAdd *bool
	// VerificationDepth is VERIFICATION_DEPTH, the maximum certificate
	// chain depth (libprocess's default is 4). The Mesos documentation
	// (seed 004) calls it VERIFY_DEPTH, a name libprocess does not read.
	VerificationDepth *int
	// CADir is CA_DIR, a directory of hashed CA certificates on the agent.
	// keyship does not ship it; it is passed through.
	CADir string
	// Ciphers is CIPHERS, an OpenSSL cipher list separated by ":".
	Ciphers string
	// ECDHCurves is ECDH_CURVES: "auto" or curves separated by ":". The
	// Mesos documentation (seed 004) calls it ECDH_CURVE, a name libprocess
	// does not read.
	ECDHCurves string
	// HostnameValidationScheme is HOSTNAME_VALIDATION_SCHEME: "legacy" or
	// "openssl".
	HostnameValidationScheme string
	// EnableSSLv3, EnableTLS10 and EnableTLS11 are ENABLE_SSL_V3,
	// ENABLE_TLS_V1_0 and ENABLE_TLS_V1_1; a request may only turn them off.
	EnableSSLv3, EnableTLS10, EnableTLS11 *bool
	// EnableTLS12 and EnableTLS13 are ENABLE_TLS_V1_2 and ENABLE_TLS_V1_3.
	EnableTLS12, EnableTLS13 *bool
}

// Store is where a store's material comes from, with the refs of the
// passwords that open it. A keystore comes from exactly one of: Secret (a
// JKS, PKCS12 or PEM store in one secret), Key with Certificate (a PEM key
// and a PEM chain in separate secrets, as Vault PKI or a Kubernetes TLS
// secret keeps them), or Issue (a new certificate from the backend's CA).
type Store struct {
	// Secret holds the store's bytes; unset (Name "") when Key/Certificate
	// or Issue is used.
	Secret Field
	// Password opens Secret; for PEM inputs it is the password of the
	// stores keyship writes, and unset means keyship derives one from the
	// private key (secret, printable, and stable, so outputs stay
	// deterministic).
	Password Field
	// KeyPassword is the ref of the private key's password (keystores only).
	KeyPassword *Field
	// Key is a PEM private key (PKCS#1, PKCS#8, SEC1, or encrypted PKCS#8
	// opened with KeyPassword), or nil.
	Key *Field
	// Certificate is a PEM certificate chain, leaf first, or nil.
	Certificate *Field
	// Issue asks the backend's certificate authority for a certificate
	// covering Spec.Hosts, or is nil.
	Issue *Issue
}

// Issue asks a backend that can issue certificates (plugin.Issuer) for a new
// key and certificate for the job's hosts.
type Issue struct {
	// Field names the setting; its Ref is backend:path of the issuer, e.g.
	// vault:pki/issue/spark-node or dcos:ca.
	Field Field
	// TTL is the requested lifetime; 0 means the authority's default.
	TTL time.Duration
}

// Field is one setting of a Spec that holds a secret: its name in the user's
// dialect, so that every error can name it (e.g.
// "security.tls.keystore_secret"), and either the ref of the secret or, where
// the dialect carries the secret inline, its value.
type Field struct {
	// Name is the setting's full name in the user's dialect; "" means unset.
	Name string
	// Ref is the secret reference the setting holds (zero when Value is set).
	Ref Ref
	// Value is the setting's literal value when the dialect carries the
	// secret inline (Spark's spark.ssl.keyStoreBase64, a literal password in
	// flink-conf.yaml); nil when the setting holds a ref. Nothing is
	// resolved for an inline field.
	Value Sensitive
	// Encoding says how the secret's bytes are encoded: "" for raw bytes,
	// EncodingBase64 for base64 text (decoded by materialize).
	Encoding string
}

// EncodingBase64 marks a Field whose secret is base64 text.
const EncodingBase64 = "base64"

// IsSet reports whether the setting was given.
func (f Field) IsSet() bool { return f.Name != "" }

// Inline reports whether the setting carries its secret inline.
func (f Field) Inline() bool { return f.Value != nil }

// Sensitive is secret bytes: a password or a store's contents. It formats as
// "[redacted]" with every fmt verb and in log/slog, so that printing a Spec,
// Field or Bundle never shows it.
type Sensitive []byte

// Format writes "[redacted]" whatever the verb.
func (Sensitive) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

// LogValue keeps the bytes out of log/slog output.
func (Sensitive) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Ref is a parsed secret reference: [backend:]path[#field][@version].
// Backend is empty when the ref names none (the default backend applies).
type Ref struct {
	Backend string
	Path    string
	Field   string
	Version string
}

// PassesThrough reports whether stores ship as their exact bytes where they
// can (Passthrough unset or true).
func (s *Spec) PassesThrough() bool { return s.Passthrough == nil || *s.Passthrough }

// Fields lists every set field of s whose secret must be read from a
// backend (not inline, not an Issue), keystore first, in a fixed order.
func (s *Spec) Fields() []Field {
	var all []Field
	add := func(fs ...*Field) {
		for _, f := range fs {
			if f != nil && f.IsSet() {
				all = append(all, *f)
			}
		}
	}
	storeFields := func(st *Store) {
		add(&st.Secret, &st.Password, st.KeyPassword, st.Key, st.Certificate)
	}
	storeFields(&s.Keystore)
	if s.Truststore != nil {
		storeFields(s.Truststore)
	}
	add(s.CABundle)
	out := all[:0]
	for _, f := range all {
		if !f.Inline() {
			out = append(out, f)
		}
	}
	return out
}

// Issues lists the certificate issuances s asks for (at most one today: the
// keystore's).
func (s *Spec) Issues() []*Issue {
	if s.Keystore.Issue != nil {
		return []*Issue{s.Keystore.Issue}
	}
	return nil
}
