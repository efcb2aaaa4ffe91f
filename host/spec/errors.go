package spec

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// FieldError is one problem with one setting of a spec. It names the setting
// and, where there is one, the secret ref it holds, and says what is wrong in
// the words an operator searches for. It never carries secret bytes.
//
// Other packages (materialize, for its checks of the fetched stores) build
// FieldErrors directly: Field is the setting's full name, e.g.
// "security.tls.keystore_password"; Ref is the ref as written, or empty; Reason
// is what is wrong.
type FieldError struct {
	Field  string
	Ref    string
	Reason string
}

// Error formats e as "<field> (<ref>): <reason>", without the ref part when
// Ref is empty. A ref that needs escaping (spaces, control characters) is
// quoted so that the message stays on one line, and a long one is cut
// (Shorten).
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.Field)
	if e.Ref != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('(')
		ref := Shorten(e.Ref)
		if q := strconv.Quote(ref); q[1:len(q)-1] == ref && !strings.ContainsAny(ref, " ()") {
			b.WriteString(ref)
		} else {
			b.WriteString(q)
		}
		b.WriteByte(')')
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Errors is every problem found in one spec, in a fixed order (settings in the
// order of their dialect's documentation, then unknown settings by name).
// Use errors.As(err, &*Errors) to get the list, or errors.As(err, &*FieldError)
// for the first problem.
type Errors struct {
	List []*FieldError
}

// Error joins the problems, one per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, fe := range e.List {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems as errors, so that errors.Is and errors.As see
// each FieldError.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(e.List))
	for i, fe := range e.List {
		out[i] = fe
	}
	return out
}

// add appends one problem.
func (e *Errors) add(field, ref, reason string) {
	e.List = append(e.List, &FieldError{Field: field, Ref: ref, Reason: reason})
}

// maxShown is how much of a long ref or value a message shows.
const maxShown = 96

// Shorten returns s, or, when s is longer than a message should quote (a
// ref of a megabyte would flood a terminal), its first bytes followed by
// "...[N bytes]". It cuts on a rune boundary.
func Shorten(s string) string {
	if len(s) <= maxShown {
		return s
	}
	cut := maxShown - 32
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "...[" + strconv.Itoa(len(s)) + " bytes]"
}
