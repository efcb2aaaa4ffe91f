package keystore

import (
	"bytes"
	"encoding/base64"
	"errors"
)

// ErrNotBase64 means text that should be base64 is not.
var ErrNotBase64 = errors.New("not valid base64")

// DecodeBase64 decodes base64 text as secret stores and Spark hold it:
// standard or URL alphabet, padded or not, with line breaks and spaces
// anywhere (as base64(1) wraps it). The error never quotes the input. The
// caller owns (and zeroes) the result.
func DecodeBase64(text []byte) ([]byte, error) {
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
				return nil, ErrNotBase64
			}
		case c == '=' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9':
		default:
			return nil, ErrNotBase64
		}
		clean = append(clean, c)
	}
	if i := bytes.IndexByte(clean, '='); i >= 0 {
		if len(clean)%4 != 0 || len(clean)-i > 2 || bytes.Count(clean[i:], []byte("=")) != len(clean)-i {
			return nil, ErrNotBase64
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
		return nil, ErrNotBase64
	}
	return out[:n], nil
}

// Base64Format tells the format of the store that data holds as base64
// text, so that a message can say so when nobody declared the data base64.
// It is Unknown for data that is not base64 text, too short to tell, or PEM
// text. It decodes only to detect, and zeroes what it decoded.
func Base64Format(data []byte) Format {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) < 8 || isPEM(trimmed) {
		return Unknown
	}
	dec, err := DecodeBase64(trimmed)
	if err != nil {
		return Unknown
	}
	defer clear(dec)
	return Detect(dec)
}
