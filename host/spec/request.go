package spec

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode"
)

// The roles a Task may have.
const (
	RoleDriver      = "driver"      // a Spark driver
	RoleExecutor    = "executor"    // a Spark executor
	RoleJobManager  = "jobmanager"  // a Flink JobManager (the AppMaster on Mesos)
	RoleTaskManager = "taskmanager" // a Flink TaskManager
	RoleComponent   = "component"   // a Mesos component or framework speaking libprocess
)

// Roles lists the roles a Task may have.
var Roles = []string{RoleDriver, RoleExecutor, RoleJobManager, RoleTaskManager, RoleComponent}

// Task is one task of a job that gets the job's stores: a driver, an
// executor, a JobManager, a TaskManager, a libprocess component.
type Task struct {
	// ID is the task's id, unique in the job. Required.
	ID string
	// Role is one of Roles. Required.
	Role string
	// Hosts are the hostnames or IP addresses the task may run on. The
	// keystore's certificate must cover each of them.
	Hosts []string
}

// Request is one job's TLS request: the Spec (from any dialect) and the tasks
// that get its stores. The dialects carry no tasks, so the tasks stay here,
// beside the Spec, and every task of a job shares the job's one Spec and
// one build.
type Request struct {
	// JobID names the job, e.g. a Spark submission id or a Flink job id.
	JobID string
	// Spec is the job's TLS request. NewRequest makes it a copy of the one
	// it is given, so that filling Hosts never changes the caller's Spec.
	Spec *Spec
	// Tasks are the job's tasks, in the caller's order.
	Tasks []Task
}

// MaxJobIDLen is the longest job id a Request accepts, in bytes.
const MaxJobIDLen = 256

// NewRequest checks a job id, a Spec and tasks and makes them a Request.
//
// Host names are compared and kept in lower case, without a trailing dot; IP
// addresses in their canonical form. When s.Hosts is empty, the Request's
// Spec.Hosts is the union of the tasks' hosts, sorted; when s.Hosts is set
// (keyship check --hosts), it is kept as given. Zero tasks are allowed: a
// request for the CLI's ship has none.
//
// All problems are reported together as an *Errors whose FieldErrors name
// the field, e.g. "tasks[1].role" or "tasks[0].hosts[2]".
func NewRequest(jobID string, s *Spec, tasks []Task) (*Request, error) {
	errs := &Errors{}
	switch {
	case jobID == "":
		errs.add("job_id", "", "required")
	case len(jobID) > MaxJobIDLen:
		errs.add("job_id", "", fmt.Sprintf("longer than %d bytes", MaxJobIDLen))
	case strings.IndexFunc(jobID, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }) >= 0:
		errs.add("job_id", "", "contains a control character or invalid UTF-8")
	}
	if s == nil {
		errs.add("spec", "", "required")
	}
	seen := map[string]int{}
	var union []string
	out := make([]Task, len(tasks))
	for i, t := range tasks {
		field := fmt.Sprintf("tasks[%d]", i)
		switch {
		case t.ID == "":
			errs.add(field+".id", "", "required")
		case strings.IndexFunc(t.ID, unicode.IsControl) >= 0:
			errs.add(field+".id", "", "contains a control character")
		default:
			if j, dup := seen[t.ID]; dup {
				errs.add(field+".id", "", fmt.Sprintf("%q is also the id of tasks[%d]; task ids must be unique in a job", Shorten(t.ID), j))
			} else {
				seen[t.ID] = i
			}
		}
		if !slices.Contains(Roles, t.Role) {
			reason := "required; one of " + strings.Join(Roles, ", ")
			if t.Role != "" {
				reason = fmt.Sprintf("role %q is not one of %s", Shorten(t.Role), strings.Join(Roles, ", "))
			}
			errs.add(field+".role", "", reason)
		}
		out[i] = Task{ID: t.ID, Role: t.Role}
		for k, h := range t.Hosts {
			norm, reason := normalizeHost(h)
			if reason != "" {
				errs.add(fmt.Sprintf("%s.hosts[%d]", field, k), "", reason)
				continue
			}
			out[i].Hosts = append(out[i].Hosts, norm)
			union = append(union, norm)
		}
	}
	if len(errs.List) > 0 {
		return nil, errs
	}
	cp := *s
	if len(cp.Hosts) == 0 && len(union) > 0 {
		slices.Sort(union)
		cp.Hosts = slices.Compact(union)
	}
	return &Request{JobID: jobID, Spec: &cp, Tasks: out}, nil
}

// normalizeHost returns h as a lower-case DNS name without a trailing dot, or
// as a canonical IP address, or why it is neither.
func normalizeHost(h string) (string, string) {
	if h == "" {
		return "", "empty host name"
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		if ip.Zone() != "" {
			return "", fmt.Sprintf("%q: an IP address with a zone cannot be in a certificate", Shorten(h))
		}
		return ip.Unmap().String(), ""
	}
	name := strings.ToLower(strings.TrimSuffix(h, "."))
	if len(name) > 253 {
		return "", "host name longer than 253 characters"
	}
	for label := range strings.SplitSeq(name, ".") {
		if !validLabel(label) {
			return "", fmt.Sprintf("%q is not a host name (letters, digits and \"-\" in dot-separated labels of at most 63) or an IP address", Shorten(h))
		}
	}
	return name, ""
}

// validLabel reports whether l is an RFC 1123 host name label ("_" is
// accepted too, as some cluster DNS names use it).
func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, c := range []byte(l) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
