package watch

import (
	"fmt"
	"math"
	"time"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
)

// RenewalTime is when a certificate valid from notBefore to notAfter is
// renewed: renewBefore before notAfter when renewBefore is positive and
// shorter than the certificate's lifetime, else at 2/3 of the lifetime
// (a third of it before notAfter), truncated to the second. This is
// cert-manager's rule (pkg/util/pki/renewaltime.go): a renewBefore that
// does not fit the lifetime falls back to the default rather than renewing
// at once, forever.
func RenewalTime(notBefore, notAfter time.Time, renewBefore time.Duration) time.Time {
	lifetime := notAfter.Sub(notBefore)
	before := lifetime / 3
	if renewBefore > 0 && renewBefore < lifetime {
		before = renewBefore
	}
	return notAfter.Add(-before).Truncate(time.Second)
}

// expiring is a certificate read from a backend, which keyship cannot
// renew, and when the watch last warned about it.
type expiring struct {
	what     string // "keystore certificate", "trusted certificate"
	field    spec.Field
	subject  string
	serial   string
	notAfter time.Time
	warned   time.Time
}

func certsToWatch(what string, f spec.Field, certs []materialize.CertInfo) []expiring {
	out := make([]expiring, 0, len(certs))
	for _, c := range certs {
		out = append(out, expiring{what: what, field: f, subject: c.Subject, serial: c.SerialNumber, notAfter: c.NotAfter})
	}
	return out
}

// warnEvery is how often a certificate near its NotAfter is warned about
// again: daily, hourly in its last two days.
func warnEvery(left time.Duration) time.Duration {
	if left < 48*time.Hour {
		return time.Hour
	}
	return 24 * time.Hour
}

// warnExpiring warns about the backend-read certificates of the shipped set
// that expire within Options.ExpiryWarning: at the first refresh that finds
// them there, then again a day (an hour, near the end) later, with the days
// left, since keyship cannot renew what it did not issue.
func (j *Job) warnExpiring(now time.Time) {
	if j.opts.ExpiryWarning < 0 {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for i := range j.watched {
		e := &j.watched[i]
		left := e.notAfter.Sub(now)
		if left > j.opts.ExpiryWarning || (!e.warned.IsZero() && now.Sub(e.warned) < warnEvery(left)) {
			continue
		}
		e.warned = now
		args := []any{"job", j.req.JobID, "field", e.field.Name, "subject", e.subject, "serial", e.serial,
			"not_after", e.notAfter.UTC().Format(time.RFC3339), "days_left", daysLeft(left)}
		if !e.field.Inline() && e.field.Ref != (spec.Ref{}) {
			args = append(args, "ref", e.field.Ref.String())
		}
		msg := fmt.Sprintf("%s expires in %s; keyship did not issue it and cannot renew it: rotate it in the secret store (the watch ships the new one)", e.what, daysText(left))
		if left <= 0 {
			msg = fmt.Sprintf("%s has EXPIRED; keyship did not issue it and cannot renew it: rotate it in the secret store (the watch ships the new one)", e.what)
		}
		j.logger.Warn(msg, args...)
	}
}

// daysLeft is left in whole days, rounded down; negative once expired.
func daysLeft(left time.Duration) int {
	return int(math.Floor(left.Hours() / 24))
}

func daysText(left time.Duration) string {
	switch d := daysLeft(left); {
	case d >= 2:
		return fmt.Sprintf("%d days", d)
	case d == 1:
		return "1 day"
	default:
		return fmt.Sprintf("%s (less than a day)", left.Round(time.Minute))
	}
}
