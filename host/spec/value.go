package spec

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// How the Spark, Flink and libprocess dialects tell a secret ref from a
// literal value. These dialects were written for files on local disk and
// literal passwords; keyship reads them with one rule, the same in every
// dialect, and never guesses from the look of a value:
//
//   - A setting that names a file (a keystore, a truststore, a PEM key,
//     certificate or CA file, a DC/OS secret path) always holds a secret ref.
//     A plain value such as "/etc/node.keystore" or "certs/node.keystore" is
//     a ref for the default backend (see ParseRef); "${secret:REF}" is the
//     same ref written explicitly.
//   - A setting that holds a password is a literal password, carried inline
//     (Field.Value), unless its whole value is "${secret:REF}": then it is the
//     secret ref REF. Any other "${name:...}" form, such as Spark's
//     "${env:NAME}", is an error, because keyship cannot read what it refers
//     to and would otherwise take the text itself for the password.
//   - Spark's keyStoreBase64 and trustStoreBase64 hold the store itself,
//     inline and base64-encoded (Field.Value with Encoding EncodingBase64).
//
// The "${secret:...}" form follows Spark's own "${env:NAME}" substitution
// syntax, so that it reads naturally in spark-defaults.conf, and it cannot be
// mistaken for a backend prefix of a ref ("secret:" could be one).
const (
	refOpen  = "${secret:"
	refClose = "}"
)

// substitution matches a whole value of the form ${name:...}.
var substitution = regexp.MustCompile(`^\$\{[A-Za-z][A-Za-z0-9_.-]*:.*\}$`)

// explicitRef returns REF when v is "${secret:REF}".
func explicitRef(v string) (string, bool) {
	if strings.HasPrefix(v, refOpen) && strings.HasSuffix(v, refClose) && len(v) >= len(refOpen)+len(refClose) {
		return v[len(refOpen) : len(v)-len(refClose)], true
	}
	return "", false
}

// settings collects the problems of one dialect's settings and turns their
// values into Fields by the rules above. Reasons never hold the value of a
// password or of an inline store.
type settings struct {
	errs *Errors
}

// fileRef reads a setting that names a file: its value is a secret ref,
// plain or written as ${secret:REF}.
func (p *settings) fileRef(name, v string) (Field, bool) {
	raw := v
	if r, ok := explicitRef(v); ok {
		raw = r
	}
	ref, reason := parseRef(raw)
	if reason != "" {
		p.errs.add(name, raw, reason)
		return Field{}, false
	}
	return Field{Name: name, Ref: ref}, true
}

// password reads a setting that holds a password: a literal, or
// ${secret:REF}.
func (p *settings) password(name, v string) (Field, bool) {
	if r, ok := explicitRef(v); ok {
		ref, reason := parseRef(r)
		if reason != "" {
			p.errs.add(name, r, reason)
			return Field{}, false
		}
		return Field{Name: name, Ref: ref}, true
	}
	if substitution.MatchString(v) {
		p.errs.add(name, "", "keyship cannot read a ${...} substitution other than ${secret:REF}; "+
			"write the password itself, or ${secret:REF} for a secret ref")
		return Field{}, false
	}
	return Field{Name: name, Value: Sensitive(v)}, true
}

// base64Store reads a setting that holds a store inline as base64 text.
// Whitespace (line breaks of `base64` output) is dropped.
func (p *settings) base64Store(name, v string) (Field, bool) {
	text := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, v)
	if _, err := base64.StdEncoding.DecodeString(text); err != nil {
		p.errs.add(name, "", "not valid base64 (standard alphabet, with padding); encode the store with `base64 -w0 keystore`")
		return Field{}, false
	}
	return Field{Name: name, Value: Sensitive(text), Encoding: EncodingBase64}, true
}

// boolean reads true or false, in any letter case. The value is not echoed:
// it may be a password written in the wrong place.
func (p *settings) boolean(name, v string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	p.errs.add(name, "", "must be true or false")
	return false, false
}

// protocol reads a TLS protocol name, or returns "" after reporting it. The
// value is not echoed (nor anywhere else in the Spark, Flink and libprocess
// dialects, whose settings may hold literal passwords).
func (p *settings) protocol(name, v string) string {
	if slices.Contains(Protocols, v) {
		return v
	}
	p.errs.add(name, "", "protocol is not accepted; use "+strings.Join(Protocols, " or "))
	return ""
}

// storeType reads a Java KeyStore type, JKS or PKCS12 in any letter case.
func (p *settings) storeType(name, v string) string {
	switch lv := strings.ToLower(v); lv {
	case StoreTypeJKS, StoreTypePKCS12:
		return lv
	}
	p.errs.add(name, "", "store type is not supported; use JKS or PKCS12")
	return ""
}

// sameSecret reports whether two fields name the same secret: the same ref,
// or the same inline value with the same encoding.
func sameSecret(a, b Field) bool {
	if a.Inline() != b.Inline() || a.Encoding != b.Encoding {
		return false
	}
	if a.Inline() {
		return string(a.Value) == string(b.Value)
	}
	return a.Ref == b.Ref
}

// reportUnknown reports each of keys, settings the dialect does not read, in
// the order of their names: the error names the setting as name(k) gives it
// and says "unknown <what>; did you mean <guess(k)>?" when guess finds the
// setting it probably meant, or else "unknown <what>; <reads>". It is the
// one "unknown setting" message of every dialect.
func (e *Errors) reportUnknown(keys []string, what string, name, guess func(string) string, reads string) {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	for _, k := range keys {
		e.add(name(k), "", unknownReason(what, guess(k), reads))
	}
}

// unknownReason is the reason reportUnknown gives.
func unknownReason(what, guess, reads string) string {
	if guess != "" {
		return "unknown " + what + "; did you mean " + guess + "?"
	}
	return "unknown " + what + "; " + reads
}

// guessKey returns the known key that key probably meant (another letter
// case, "-" or "_" for each other or left out, or a typo of at most two
// letters), or "".
func guessKey(key string, known []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(s))
	}
	n := norm(key)
	for _, k := range known {
		if norm(k) == n {
			return k
		}
	}
	if len(n) > 64 {
		return ""
	}
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(n, norm(k)); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// displayKey quotes a key that would not print on one line, and cuts a
// long one (Shorten).
func displayKey(key string) string {
	key = Shorten(key)
	if q := fmt.Sprintf("%q", key); q[1:len(q)-1] != key || key == "" || strings.ContainsAny(key, " \t") {
		return q
	}
	return key
}
