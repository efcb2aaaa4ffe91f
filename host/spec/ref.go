package spec

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

var (
	backendPrefix = regexp.MustCompile(`^[a-z][a-z0-9_-]*:`)
	versionToken  = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

// ParseRef parses a secret reference of the form [backend:]path[#field][@version],
// for example "/spark/keystore" (default backend, DC/OS style),
// "file:spark/truststore.jks" or "vault:secret/spark/tls#keystore@3".
//
// The parts are taken in this order:
//   - backend: a leading name matching [a-z][a-z0-9_-]* followed by ":";
//     anything else (e.g. "/spark/keystore") has no backend;
//   - version: everything after the last "@"; it must be a non-empty token of
//     letters, digits, ".", "_" and "-" (e.g. "3" or "v2");
//   - field: everything after the last "#" of what remains; non-empty, no "/";
//   - path: the rest; required, valid UTF-8, no control characters, no
//     leading or trailing space, and no ".." segment.
//
// ParseRef(r.String()) returns r again for every r that ParseRef returned.
// A ref is not secret: errors quote it so that an operator can find it.
func ParseRef(s string) (Ref, error) {
	r, reason := parseRef(s)
	if reason != "" {
		return Ref{}, fmt.Errorf("secret ref %q: %s", Shorten(s), reason)
	}
	return r, nil
}

// parseRef is ParseRef with the reason of a failure returned in words,
// without the ref itself, so that callers can place it in a FieldError.
func parseRef(s string) (Ref, string) {
	if s == "" {
		return Ref{}, "empty; want [backend:]path[#field][@version]"
	}
	if !utf8.ValidString(s) {
		return Ref{}, "not valid UTF-8"
	}
	var r Ref
	rest := s
	if m := backendPrefix.FindString(rest); m != "" {
		r.Backend = m[:len(m)-1]
		rest = rest[len(m):]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		r.Version = rest[i+1:]
		rest = rest[:i]
		if r.Version == "" {
			return Ref{}, `empty version after "@"`
		}
		if !versionToken.MatchString(r.Version) {
			if strings.ContainsRune(r.Version, '#') {
				return Ref{}, fmt.Sprintf(`version %q is not a version: the "#field" goes before the "@version"`, Shorten(r.Version))
			}
			return Ref{}, fmt.Sprintf(`version %q may hold only letters, digits, ".", "_" and "-"`, Shorten(r.Version))
		}
	}
	if i := strings.LastIndexByte(rest, '#'); i >= 0 {
		r.Field = rest[i+1:]
		rest = rest[:i]
		if r.Field == "" {
			return Ref{}, `empty field after "#"`
		}
		if strings.ContainsRune(r.Field, '/') {
			return Ref{}, fmt.Sprintf(`field %q must not contain "/"`, Shorten(r.Field))
		}
		if hasControl(r.Field) {
			return Ref{}, "field contains a control character"
		}
	}
	r.Path = rest
	if reason := checkPath(r.Path); reason != "" {
		return Ref{}, reason
	}
	return r, ""
}

// checkPath returns why p is not a usable secret path, or "".
func checkPath(p string) string {
	switch {
	case p == "":
		return "empty path; want [backend:]path[#field][@version]"
	case strings.IndexByte(p, 0) >= 0:
		return "path contains a NUL byte"
	case hasControl(p):
		return "path contains a control character"
	case strings.TrimSpace(p) != p:
		return "path has leading or trailing space"
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == ".." {
			return `path contains a ".." segment`
		}
	}
	return ""
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

// String formats r as [backend:]path[#field][@version]. It holds no secret and
// may be logged.
func (r Ref) String() string {
	var b strings.Builder
	if r.Backend != "" {
		b.WriteString(r.Backend)
		b.WriteByte(':')
	}
	b.WriteString(r.Path)
	if r.Field != "" {
		b.WriteByte('#')
		b.WriteString(r.Field)
	}
	if r.Version != "" {
		b.WriteByte('@')
		b.WriteString(r.Version)
	}
	return b.String()
}
