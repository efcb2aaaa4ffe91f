package spec

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestFieldsSkipsUnsetInlineAndIssue(t *testing.T) {
	s := &Spec{
		Keystore: Store{
			Key:         &Field{Name: "k.key", Ref: Ref{Path: "/key"}},
			Certificate: &Field{Name: "k.cert", Ref: Ref{Path: "/cert"}},
			Password:    Field{Name: "k.pw", Value: Sensitive("inline-pw")},
		},
		Truststore: &Store{Secret: Field{Name: "t.secret", Ref: Ref{Path: "/ts"}}, Password: Field{Name: "t.pw", Ref: Ref{Path: "/tpw"}}},
		CABundle:   &Field{Name: "ca", Ref: Ref{Path: "/ca"}},
	}
	var names []string
	for _, f := range s.Fields() {
		names = append(names, f.Name)
	}
	if got, want := strings.Join(names, ","), "k.key,k.cert,t.secret,t.pw,ca"; got != want {
		t.Errorf("Fields() = %s, want %s", got, want)
	}
	if s.Issues() != nil {
		t.Error("Issues() of a spec without Issue")
	}
	s.Keystore.Issue = &Issue{Field: Field{Name: "k.issue", Ref: Ref{Backend: "vault", Path: "pki/issue/r"}}}
	if len(s.Issues()) != 1 {
		t.Error("Issues() lost the keystore's issue")
	}
}

func TestSensitiveNeverFormats(t *testing.T) {
	f := Field{Name: "spark.ssl.keyStorePassword", Value: Sensitive("canary-value-1")}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "value", f.Value)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s %q %x", f, f, f, f.Value, f.Value, f.Value), logged.String()} {
		if strings.Contains(out, "canary-value-1") || strings.Contains(out, fmt.Sprintf("%x", "canary-value-1")) {
			t.Fatalf("a Sensitive value was printed: %s", out)
		}
	}
}
