package spec

import (
	"strconv"
	"strings"
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
// quoted so that the message stays on one line.
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.Field)
	if e.Ref != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('(')
		if q := strconv.Quote(e.Ref); q[1:len(q)-1] == e.Ref && !strings.ContainsAny(e.Ref, " ()") {
			b.WriteString(e.Ref)
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
