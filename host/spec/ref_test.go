package spec

import (
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in   string
		want Ref
	}{
		{"/spark/keystore", Ref{Path: "/spark/keystore"}},
		{"file:spark/truststore.jks", Ref{Backend: "file", Path: "spark/truststore.jks"}},
		{"vault:secret/spark/tls#keystore", Ref{Backend: "vault", Path: "secret/spark/tls", Field: "keystore"}},
		{"vault:secret/spark/tls#keystore@3", Ref{Backend: "vault", Path: "secret/spark/tls", Field: "keystore", Version: "3"}},
		{"vault:secret/x@v2.1-rc_1", Ref{Backend: "vault", Path: "secret/x", Version: "v2.1-rc_1"}},
		{"dcos_secrets-2:/a", Ref{Backend: "dcos_secrets-2", Path: "/a"}},
		{"/spark/keystore#f", Ref{Path: "/spark/keystore", Field: "f"}},
		// Only a lower-case name followed by ":" is a backend.
		{"Vault:secret/x", Ref{Path: "Vault:secret/x"}},
		{"/a:b", Ref{Path: "/a:b"}},
		{"9p:x", Ref{Path: "9p:x"}},
		{"vault:a:b", Ref{Backend: "vault", Path: "a:b"}},
		// The last "@" and the last "#" split.
		{"a@b@1", Ref{Path: "a@b", Version: "1"}},
		{"a#b#c", Ref{Path: "a#b", Field: "c"}},
		{"a#f@x@1", Ref{Path: "a", Field: "f@x", Version: "1"}},
		{"..x/y..", Ref{Path: "..x/y.."}},
		{"vault:/", Ref{Backend: "vault", Path: "/"}},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in)
		if err != nil {
			t.Errorf("ParseRef(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseRef(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if s := got.String(); s != tt.in {
			t.Errorf("ParseRef(%q).String() = %q", tt.in, s)
		}
	}
}

func TestParseRefErrors(t *testing.T) {
	tests := []struct {
		in, want string // want: the whole message, or a part of it
	}{
		{"x@", `secret ref "x@": empty version after "@"`},
		{"", `secret ref "": empty; want [backend:]path[#field][@version]`},
		{"vault:", "empty path"},
		{"vault:#f", "empty path"},
		{"@3", "empty path"},
		{"#f@3", "empty path"},
		{"x#", `empty field after "#"`},
		{"x#@3", `empty field after "#"`},
		{"x#a/b", `field "a/b" must not contain "/"`},
		{"x@1#f", `the "#field" goes before the "@version"`},
		{"x@a/b", `version "a/b" may hold only letters`},
		{"x@ 1", `version " 1" may hold only letters`},
		{"a/../b", `path contains a ".." segment`},
		{"..", `".." segment`},
		{"file:../etc/passwd", `".." segment`},
		{"/spark/..", `".." segment`},
		{"a\x00b", "NUL"},
		{"a\nb", "control character"},
		{"a\x7fb", "control character"},
		{"a\u0085b", "control character"},
		{"x#a\tb", "field contains a control character"},
		{" /spark/keystore", "leading or trailing space"},
		{"/spark/keystore ", "leading or trailing space"},
		{"a\xffb", "not valid UTF-8"},
	}
	for _, tt := range tests {
		r, err := ParseRef(tt.in)
		if err == nil {
			t.Errorf("ParseRef(%q) = %+v, want error containing %q", tt.in, r, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseRef(%q) error %q, want it to contain %q", tt.in, err, tt.want)
		}
		if r != (Ref{}) {
			t.Errorf("ParseRef(%q) returned %+v with its error", tt.in, r)
		}
		if strings.ContainsAny(err.Error(), "\n\x00") {
			t.Errorf("ParseRef(%q) error %q is not one printable line", tt.in, err)
		}
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{
		"", "/spark/keystore", "file:spark/truststore.jks", "vault:secret/spark/tls#keystore@3",
		"x@", "a@b@1", "a#b#c", "vault:a:b", "a/../b", "x@1#f", "a\x00b", "Vault:x", " a", "a\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		back, err := ParseRef(r.String())
		if err != nil {
			t.Fatalf("ParseRef(%q) = %+v, but its String %q does not parse: %v", s, r, r.String(), err)
		}
		if back != r {
			t.Fatalf("ParseRef(%q) = %+v; round trip through %q gives %+v", s, r, r.String(), back)
		}
		if r.String() != s {
			t.Fatalf("ParseRef(%q).String() = %q", s, r.String())
		}
	})
}
