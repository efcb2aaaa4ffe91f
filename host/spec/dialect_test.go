package spec

import (
	"strings"
	"testing"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"seed 000", seed000, DialectDCOS},
		{"seed 000 with a BOM", "\xef\xbb\xbf" + seed000, DialectDCOS},
		{"seed 002 standalone", seed002Standalone, DialectFlink},
		{"seed 002 YARN", seed002YARN, DialectFlink},
		{"nested Flink", "security:\n  ssl:\n    internal:\n      enabled: true\n", DialectFlink},
		{"flow-style Flink (not JSON)", "{security.ssl.enabled: true}", DialectFlink},
		{"seed 003 options", seed003Options, DialectSpark},
		{"seed 003 properties", seed003Properties, DialectSpark},
		{"Java properties with colons are not Flink", "spark.ssl.enabled: true\nspark.ssl.keyStore: /ks\n", DialectSpark},
		{"dcos-spark flags", "--keystore-secret-path=/spark/keystore --keystore-password x", DialectSpark},
		{"seed 004", seed004Downgrade, DialectLibprocess},
		{"seed 004 legacy names", "SSL_ENABLED=true SSL_KEY_FILE=/k SSL_CERT_FILE=/c", DialectLibprocess},
	}
	for _, tt := range tests {
		got, err := Detect([]byte(tt.doc))
		if err != nil || got != tt.want {
			t.Errorf("%s: Detect = %q, %v; want %s", tt.name, got, err, tt.want)
		}
	}
}

func TestDetectFails(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"empty", " \n", "empty TLS request"},
		{"JSON of neither", `{"security":{"kerberos":{}}}`, `needs "security": {"tls": ...}`},
		{"JSON of both", `{"security":{"tls":{},"ssl":{}}}`, "could be dcos or spark; pass --dialect"},
		{"nothing known", "hello: world\n", "cannot tell the dialect"},
		{"OpenSSL's SSL_CERT_FILE alone", "SSL_DIR=/x\n", "cannot tell the dialect"},
		{"Spark and libprocess", "spark.ssl.enabled=true\nLIBPROCESS_SSL_ENABLED=true\n", "could be spark or libprocess; pass --dialect"},
		{"Flink and Spark", "security.ssl.enabled: true\nspark.ssl.enabled: true\n", "could be flink or spark"},
	}
	for _, tt := range tests {
		d, err := Detect([]byte(tt.doc))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Detect = %q, %v; want an error containing %q", tt.name, d, err, tt.want)
			continue
		}
		if _, perr := Parse([]byte(tt.doc), ""); perr == nil || perr.Error() != err.Error() {
			t.Errorf("%s: Parse(\"\") = %v, want the Detect error", tt.name, perr)
		}
	}
	if _, err := Parse([]byte(seed000), "yaml"); err == nil || !strings.Contains(err.Error(), `unknown dialect "yaml"; use one of dcos, spark, flink, libprocess`) {
		t.Errorf("Parse with an unknown dialect: %v", err)
	}
}

func TestParseForcedDialect(t *testing.T) {
	// A forced dialect reads the document in it, whatever it looks like.
	if _, err := Parse([]byte(seed002Standalone), DialectSpark); err == nil || !strings.Contains(err.Error(), "spark.ssl.enabled is missing") {
		t.Errorf("Flink YAML read as Spark: %v", err)
	}
	if _, err := Parse([]byte("spark.ssl.enabled=true\nLIBPROCESS_SSL_ENABLED=true LIBPROCESS_SSL_KEY_FILE=/k LIBPROCESS_SSL_CERT_FILE=/c\n"), "LIBPROCESS"); err != nil {
		t.Errorf("forced libprocess: %v", err)
	}
	if _, err := Parse([]byte("A=1\nA=2\n"), DialectLibprocess); err == nil {
		t.Error("ReadEnv's error was dropped")
	}
	if _, err := Parse([]byte("spark.a=1\nspark.a=2\n"), DialectSpark); err == nil {
		t.Error("ReadSparkProperties's error was dropped")
	}
}
