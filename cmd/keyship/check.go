package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/shipper"
)

type checkFlags struct {
	specPath      string
	dialect       string
	hosts         []string
	json          bool
	timeout       time.Duration
	expiryWarning time.Duration
	deadline      string
}

func newCheckCmd(g *globals) *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "check --spec FILE [--hosts h1,h2] [--json]",
		Short: "Run the pre-flight checks of a job's TLS spec, ship nothing",
		Long: `check reads a job's TLS request as ship does, reads every secret it names, and
runs the checks ship runs before anything ships: the stores open with their
passwords and the key with its password; exactly one private key, matching its
certificate; the chain verifies against the truststore; the certificate covers
every host; nothing expires too soon; the protocol is TLSv1.2 or TLSv1.3 and
the key can serve it with one of the listed cipher suites; the passwords are
ones the stores take (printable ASCII for PKCS12, ISO 8859-1 for JKS).

It prints every problem at once, in the words the JVM would use at the first
handshake ("unable to find valid certification path to requested target",
"No name matching <host> found", "Cannot recover key", "keystore was tampered
with, or password was incorrect"), each naming the setting and its secret ref,
and exits 1 when any check fails. It never prints a secret or a password.`,
		Example: `  keyship check --config keyship.yaml --spec job.json --hosts node1.example.com,node2.example.com
  keyship check --spec flink-conf.yaml --hosts "$(hostname -f)" --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return g.check(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.specPath, "spec", "", "the job's TLS spec: security.tls JSON, Spark properties, flink-conf.yaml or LIBPROCESS_SSL_* lines (required)")
	fl.StringVar(&f.dialect, "dialect", "", "the spec's dialect: dcos, spark, flink or libprocess (default: detect from the content)")
	fl.StringSliceVar(&f.hosts, "hosts", nil, "hostnames and IP addresses the keystore's certificate must cover (comma-separated)")
	fl.BoolVar(&f.json, "json", false, "print the result as JSON")
	deadlineVar(fl, &f.timeout, "timeout", defaultShipTimeout, "deadline for reading the secrets and checking (positive)")
	fl.DurationVar(&f.expiryWarning, "expiry-warning", materialize.DefaultExpiryWarning, "warn about certificates that expire within this time")
	fl.StringVar(&f.deadline, "deadline", "", "fail when a certificate expires before this time: RFC 3339 (2025-06-30T00:00:00Z) or a duration from now (72h)")
	_ = cmd.MarkFlagRequired("spec")
	return cmd
}

// checkReport is what check prints: for people, or as JSON.
type checkReport struct {
	OK       bool                   `json:"ok"`
	Spec     string                 `json:"spec"`
	Dialect  string                 `json:"dialect,omitempty"`
	Hosts    []string               `json:"hosts,omitempty"`
	Problems []shipper.Problem      `json:"problems"`
	Warnings []string               `json:"warnings"`
	Chain    []materialize.CertInfo `json:"chain,omitempty"`
	Trusted  []materialize.CertInfo `json:"trusted,omitempty"`
}

// errChecksFailed makes keyship exit 1 after check printed the problems.
var errChecksFailed = errors.New("checks failed")

func (g *globals) check(ctx context.Context, f checkFlags) error {
	deadline, err := parseDeadline(f.deadline, time.Now())
	if err != nil {
		return usageError{err}
	}
	rep := &checkReport{Spec: f.specPath, Hosts: f.hosts, Problems: []shipper.Problem{}, Warnings: []string{}}
	err = g.runChecks(ctx, f, deadline, rep)
	if err != nil {
		problems := shipper.Problems(err)
		if problems == nil {
			return err // not the spec's problem: config, plugin, usage
		}
		rep.Problems = append(rep.Problems, problems...)
		var me *materialize.Error
		if errors.As(err, &me) {
			rep.Warnings = append(rep.Warnings, me.Warnings...)
		}
	}
	rep.OK = len(rep.Problems) == 0
	if f.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.print(g.stdout)
	}
	if !rep.OK {
		return fmt.Errorf("%w: %d problems", errChecksFailed, len(rep.Problems))
	}
	return nil
}

// runChecks reads the spec and runs the host's build, which checks
// everything, and fills rep from a good bundle. The bundle is zeroed at once:
// nothing ships.
func (g *globals) runChecks(ctx context.Context, f checkFlags, deadline time.Time, rep *checkReport) error {
	req, err := readRequest(f.specPath, f.dialect, "", f.hosts)
	if err != nil {
		return err
	}
	rep.Dialect = req.Spec.Dialect
	rep.Hosts = req.Spec.Hosts
	h, ctx, done, err := g.startHost(ctx, f.timeout)
	if err != nil {
		return err
	}
	defer done()
	warn := f.expiryWarning
	if warn == 0 {
		warn = -1 // --expiry-warning 0 turns the warning off
	}
	sh, err := shipper.Prepare(ctx, h, req, shipper.Options{ChecksOnly: true,
		Build: materialize.Options{ExpiryWarning: warn, Deadline: deadline}})
	if err != nil {
		return err
	}
	defer sh.Zero()
	b := sh.Bundle
	rep.Warnings = append(rep.Warnings, b.Warnings...)
	rep.Chain, rep.Trusted = b.Chain, b.Trusted
	return nil
}

// parseDeadline reads --deadline: an RFC 3339 time, or a duration from now.
func parseDeadline(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(d), nil
	}
	return time.Time{}, fmt.Errorf("--deadline %q: want an RFC 3339 time (2025-06-30T00:00:00Z) or a duration from now (72h)", v)
}

// print writes the report for people: each problem and warning on its own
// line, then a summary.
func (r *checkReport) print(w io.Writer) {
	for _, p := range r.Problems {
		fe := fmt.Sprintf("%s: %s", p.Field, p.Reason)
		if p.Ref != "" {
			fe = fmt.Sprintf("%s (%s): %s", p.Field, p.Ref, p.Reason)
		}
		fmt.Fprintf(w, "FAIL %s\n", fe)
	}
	for _, warning := range r.Warnings {
		fmt.Fprintf(w, "WARN %s\n", warning)
	}
	if len(r.Chain) > 0 {
		leaf := r.Chain[0]
		names := append(append([]string{}, leaf.DNSNames...), ipStrings(leaf)...)
		covers := strings.Join(names, ", ")
		if covers == "" {
			covers = leaf.Subject
		}
		fmt.Fprintf(w, "OK   keystore: %s, issued by %s, valid until %s, covers %s\n",
			leaf.Subject, leaf.Issuer, leaf.NotAfter.UTC().Format(time.RFC3339), covers)
	}
	if len(r.Trusted) > 0 {
		var subjects []string
		for _, c := range r.Trusted {
			subjects = append(subjects, c.Subject)
		}
		fmt.Fprintf(w, "OK   trusted: %s\n", strings.Join(subjects, "; "))
	}
	hosts := "no hosts given (--hosts)"
	if len(r.Hosts) > 0 {
		hosts = "hosts " + strings.Join(r.Hosts, ", ")
	}
	if r.OK {
		fmt.Fprintf(w, "ok: every check passes for %s (%s); %d warnings\n", r.Spec, hosts, len(r.Warnings))
		return
	}
	fmt.Fprintf(w, "%d problems, %d warnings in %s (%s): the job's TLS would fail; fix them before it ships\n",
		len(r.Problems), len(r.Warnings), r.Spec, hosts)
}

func ipStrings(c materialize.CertInfo) []string {
	var out []string
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}
