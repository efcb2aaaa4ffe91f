package keystore

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestDecodeBase64(t *testing.T) {
	data := []byte{0xfe, 0xed, 0xfe, 0xed, 0xfb, 0xff, 0x00}
	std := base64.StdEncoding.EncodeToString(data)
	url := base64.RawURLEncoding.EncodeToString(data)
	for _, in := range []string{
		std, url, strings.TrimRight(std, "="),
		std[:4] + "\n" + std[4:] + "\r\n", " " + std + "\t",
	} {
		got, err := DecodeBase64([]byte(in))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("DecodeBase64(%q) = %x, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "   ", "a", "ab=c", "ab==c===", "/u3+7-_", "abc!", "-----BEGIN", std + "="} {
		if got, err := DecodeBase64([]byte(in)); err == nil {
			t.Errorf("DecodeBase64(%q) = %x, want an error", in, got)
		}
	}
}

func TestDetect(t *testing.T) {
	f := fx()
	for _, c := range []struct {
		name string
		data []byte
		want Format
	}{
		{"JKS", must(JKSKeystore("n", f.node.Key, f.node.Chain, []byte(storePass), []byte(storePass))), JKS},
		{"JCEKS", []byte{0xce, 0xce, 0xce, 0xce, 0, 0, 0, 2}, JCEKS},
		{"PKCS12", must(PKCS12Truststore(UniqueTrusted(trusted(f.node.Chain[1:]...)), []byte(storePass), "")), PKCS12},
		{"PEM", EncodePEMCertificates(f.node.Chain), PEM},
		{"PEM after text", append([]byte("Bag Attributes\n    friendlyName: node\n"), EncodePEMCertificates(f.node.Chain)...), PEM},
		{"DER certificate", f.ca.Cert.Raw, DERCertificate},
		{"DER other", []byte{0x30, 0x03, 0x02, 0x01, 0x01}, Unknown},
		{"base64 is never guessed", []byte(base64.StdEncoding.EncodeToString(f.ca.Cert.Raw)), Unknown},
		{"empty", nil, Unknown},
	} {
		if got := Detect(c.data); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestBase64Format(t *testing.T) {
	f := fx()
	ks := must(JKSKeystore("n", f.node.Key, f.node.Chain, []byte(storePass), []byte(storePass)))
	pemText := EncodePEMCertificates(f.node.Chain)
	for _, c := range []struct {
		name string
		data []byte
		want Format
	}{
		{"base64 of JKS", []byte(base64.StdEncoding.EncodeToString(ks)), JKS},
		{"wrapped base64 of a DER certificate", []byte(base64.StdEncoding.EncodeToString(f.ca.Cert.Raw)[:64] + "\n" + base64.StdEncoding.EncodeToString(f.ca.Cert.Raw)[64:] + "\n"), DERCertificate},
		{"base64 of PEM", []byte(base64.StdEncoding.EncodeToString(pemText)), PEM},
		{"PEM text", pemText, Unknown},
		{"too short", []byte("/u3+7Q"), Unknown},
		{"binary", ks, Unknown},
	} {
		if got := Base64Format(c.data); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
