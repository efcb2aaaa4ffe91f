package materialize

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"path"
	"strings"

	"github.com/keyship/keyship/host/spec"
)

// inputFormat is the format of a store input, told by its content.
type inputFormat int

const (
	formatUnknown inputFormat = iota
	formatJKS
	formatJCEKS
	formatPKCS12
	formatPEM
	formatDERCertificate
)

func (f inputFormat) String() string {
	switch f {
	case formatJKS:
		return "JKS"
	case formatJCEKS:
		return "JCEKS"
	case formatPKCS12:
		return "PKCS12"
	case formatPEM:
		return "PEM"
	case formatDERCertificate:
		return "DER certificate"
	}
	return "unknown"
}

// detectFormat tells the format of a store from its bytes: the JKS or JCEKS
// magic, a PKCS#12 PFX, PEM text, or a single DER certificate (as keytool
// -exportcert writes it). It never guesses base64: base64 text is
// formatUnknown, and base64Hint explains it.
func detectFormat(data []byte) inputFormat {
	if len(data) >= 4 {
		switch binary.BigEndian.Uint32(data) {
		case jksMagic:
			return formatJKS
		case jceksMagic:
			return formatJCEKS
		}
	}
	if len(data) > 0 && data[0] == 0x30 {
		if isPKCS12(data) {
			return formatPKCS12
		}
		if _, err := x509.ParseCertificate(data); err == nil {
			return formatDERCertificate
		}
		return formatUnknown
	}
	if isPEM(data) {
		return formatPEM
	}
	return formatUnknown
}

// dcosBase64Prefix starts the name of a DC/OS secret whose value is base64
// (DC/OS decodes it when it mounts the secret as a file).
const dcosBase64Prefix = "__dcos_base64__"

// isDCOSBase64 reports whether ref names a DC/OS base64 secret: the last
// element of its path starts with __dcos_base64__.
func isDCOSBase64(r spec.Ref) bool {
	return strings.HasPrefix(path.Base(r.Path), dcosBase64Prefix)
}

// errNotBase64 means a field declared base64 does not hold base64.
var errNotBase64 = errors.New("not valid base64")

// decodeBase64 decodes base64 text as secret stores and Spark hold it:
// standard or URL alphabet, padded or not, with line breaks and spaces
// anywhere (as base64(1) wraps it). The error never quotes the input. The
// caller owns (and zeroes) the result.
func decodeBase64(text []byte) ([]byte, error) {
	clean := make([]byte, 0, len(text))
	defer clear(clean)
	urlSafe := false
	for _, c := range text {
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			continue
		case c == '-' || c == '_':
			urlSafe = true
		case c == '+' || c == '/':
			if urlSafe {
				return nil, errNotBase64
			}
		case c == '=' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9':
		default:
			return nil, errNotBase64
		}
		clean = append(clean, c)
	}
	if i := bytes.IndexByte(clean, '='); i >= 0 {
		if len(clean)%4 != 0 || len(clean)-i > 2 || bytes.Count(clean[i:], []byte("=")) != len(clean)-i {
			return nil, errNotBase64
		}
		clean = clean[:i]
	}
	enc := base64.RawStdEncoding
	if urlSafe {
		enc = base64.RawURLEncoding
	}
	out := make([]byte, enc.DecodedLen(len(clean)))
	n, err := enc.Strict().Decode(out, clean)
	if err != nil || len(clean) == 0 {
		clear(out)
		return nil, errNotBase64
	}
	return out[:n], nil
}

// base64Hint explains data that is base64 text of a store when the spec
// did not say the field is base64, or returns "". It decodes only to name
// the format, and zeroes what it decoded.
func base64Hint(data []byte) string {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) < 8 || isPEM(trimmed) {
		return ""
	}
	dec, err := decodeBase64(trimmed)
	if err != nil {
		return ""
	}
	defer clear(dec)
	if f := detectFormat(dec); f != formatUnknown && f != formatPEM {
		return "it is base64 text of a " + f.String() + " store; store the binary bytes, or declare the setting base64 (Spark's *Base64 settings, a DC/OS secret named " + dcosBase64Prefix + "...)"
	}
	return ""
}
