package spec

import (
	"slices"
	"strings"
)

// ProtocolTLS is the protocol name that names no single version: Java's
// SSLContext "TLS" enables TLSv1.3 and TLSv1.2 (the dcos-spark CLI sets
// spark.ssl.protocol=TLS). Only the Spark dialect accepts it.
const ProtocolTLS = "TLS"

// tls13Suites are the TLS 1.3 cipher suites, by their JSSE names (Java 11+,
// and 8u261+); no other suite can be negotiated with TLS 1.3, and none of
// them with an older protocol.
var tls13Suites = []string{"TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"}

// DefaultSuites returns the cipher suites keyship writes for protocol when a
// request lists none and the consumer's own default cannot meet it (Flink's
// security.ssl.algorithms defaults to TLS_RSA_WITH_AES_128_CBC_SHA, a TLS 1.2
// suite that also needs an RSA key):
//
//   - TLSv1.3: TLS_AES_256_GCM_SHA384 and TLS_AES_128_GCM_SHA256, which every
//     Java with TLS 1.3 supports (not CHACHA20, which Java 8 lacks: an
//     unknown name makes setEnabledCipherSuites throw);
//   - TLSv1.2: ECDHE with AES-GCM, for EC and RSA keys alike;
//   - TLS: both lists.
func DefaultSuites(protocol string) []string {
	tls12 := []string{
		"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
		"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	}
	tls13 := tls13Suites[:2]
	switch protocol {
	case "TLSv1.3":
		return slices.Clone(tls13)
	case ProtocolTLS:
		return append(slices.Clone(tls13), tls12...)
	}
	return tls12
}

// IsTLS13Suite reports whether suite is a TLS 1.3 cipher suite.
func IsTLS13Suite(suite string) bool { return slices.Contains(tls13Suites, suite) }

// CheckSuites returns why a consumer that enables only protocol and only
// suites (as Flink configures its SSLEngine: setEnabledProtocols([protocol]),
// setEnabledCipherSuites(suites)) cannot complete a handshake, or "" when it
// can: TLS 1.3 needs a TLS 1.3 suite, TLS 1.2 one of the others. Java's own
// words for the failure are "No appropriate protocol (protocol is disabled or
// cipher suites are inappropriate)".
func CheckSuites(protocol string, suites []string) string {
	if len(suites) == 0 {
		return ""
	}
	var has12, has13 bool
	for _, s := range suites {
		if IsTLS13Suite(s) {
			has13 = true
		} else {
			has12 = true
		}
	}
	switch {
	case protocol == "TLSv1.3" && !has13:
		return "lists no TLS 1.3 cipher suite (" + strings.Join(tls13Suites, ", ") + ") while the protocol is TLSv1.3, so Java fails the handshake with " +
			`"No appropriate protocol (protocol is disabled or cipher suites are inappropriate)"; add one, or leave the setting out and keyship writes TLS 1.3 suites`
	case protocol == "TLSv1.2" && !has12:
		return "lists only TLS 1.3 cipher suites while the protocol is TLSv1.2, so Java fails the handshake with " +
			`"No appropriate protocol (protocol is disabled or cipher suites are inappropriate)"; add a TLS 1.2 suite such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, or set the protocol to TLSv1.3`
	}
	return ""
}

// splitSuites splits a comma-separated suite list as Flink and Spark do
// (Spark trims and drops empty names; Flink splits on "," only, so keyship
// writes no spaces).
func splitSuites(v string) []string {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
