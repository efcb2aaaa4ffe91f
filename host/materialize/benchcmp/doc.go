// Package benchcmp holds the comparative benchmark of issue 3: materializing
// a JKS keystore and a JKS truststore from a PEM key, certificate and CA with
// the keyship binary (a cold process: start, resolve through the file
// backend, build, check, write the sandbox) against the manual pipeline
// operators run today (openssl pkcs12 -export, keytool -importkeystore,
// keytool -importcert), side by side, reporting how many times faster
// keyship is (target: 50×).
//
// Run it with
//
//	go test -run '^$' -bench KeyshipVsManual -benchtime 5x ./host/materialize/benchcmp/
//
// or as part of make bench, which prints the ratio in its report. It builds
// the keyship binary itself unless KEYSHIP_BIN names one, and skips when
// openssl or keytool is missing.
package benchcmp
