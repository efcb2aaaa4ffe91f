package spec

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
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

// The consumers of a job's stores: what reads the settings keyship writes.
const (
	ConsumerSpark      = "spark"      // spark.ssl.* properties
	ConsumerFlink      = "flink"      // security.ssl.* in Flink's configuration
	ConsumerLibprocess = "libprocess" // LIBPROCESS_SSL_* and PEM files
)

// Consumers lists the consumers.
var Consumers = []string{ConsumerSpark, ConsumerFlink, ConsumerLibprocess}

// ConsumerOf returns the consumer a request in dialect is for: Spark for the
// DC/OS and Spark dialects, Flink and libprocess for theirs.
func ConsumerOf(dialect string) string {
	switch dialect {
	case DialectFlink:
		return ConsumerFlink
	case DialectLibprocess:
		return ConsumerLibprocess
	default:
		return ConsumerSpark
	}
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
	// Consumer is what reads the job's settings (one of Consumers): the
	// Spec's dialect's (ConsumerOf), unless the caller asked for another.
	Consumer string
}

// The limits of a Request, the same for every caller.
const (
	// MaxJobIDLen is the longest job id, in bytes.
	MaxJobIDLen = 256
	// MaxDocumentLen is the largest TLS request document, in bytes.
	MaxDocumentLen = 1 << 20
	// MaxTasks is the most tasks one Request may name.
	MaxTasks = 10000
)

// Document is a job's TLS request as a caller hands it over: the document in
// its dialect, and what the dialects do not carry.
type Document struct {
	// JobID names the job. Required.
	JobID string
	// Data is the TLS request (DC/OS security.tls JSON, Spark properties,
	// Flink YAML or LIBPROCESS_SSL_* lines). Required.
	Data []byte
	// Dialect is Data's dialect (one of Dialects), or "" to detect it.
	Dialect string
	// Consumer is who reads the settings (one of Consumers), or "" for the
	// dialect's consumer.
	Consumer string
	// Tasks are the job's tasks; none for a local ship.
	Tasks []Task
	// Hosts are hosts the keystore's certificate must cover beside the
	// tasks' (keyship ship --hosts, keyship check --hosts).
	Hosts []string
}

// ReadRequest parses d.Data in its dialect and makes a Request of it with
// NewRequest: the one way a caller's request enters the pipeline.
func ReadRequest(d Document) (*Request, error) {
	errs := &Errors{}
	switch {
	case len(d.Data) == 0:
		errs.add("spec", "", "required: the job's TLS request")
	case len(d.Data) > MaxDocumentLen:
		errs.add("spec", "", fmt.Sprintf("larger than %d bytes", MaxDocumentLen))
	}
	if len(d.Tasks) > MaxTasks {
		errs.add("tasks", "", fmt.Sprintf("%d tasks; at most %d", len(d.Tasks), MaxTasks))
	}
	if d.Consumer != "" && !slices.Contains(Consumers, d.Consumer) {
		errs.add("consumer", "", fmt.Sprintf("%q is not one of %s", d.Consumer, strings.Join(Consumers, ", ")))
	}
	if len(errs.List) > 0 {
		return nil, errs
	}
	s, err := Parse(d.Data, d.Dialect)
	if err != nil {
		return nil, err
	}
	s.Hosts = append(s.Hosts, d.Hosts...)
	req, err := NewRequest(d.JobID, s, d.Tasks)
	if err != nil {
		return nil, err
	}
	req.Consumer = d.Consumer
	if req.Consumer == "" {
		req.Consumer = ConsumerOf(s.Dialect)
	}
	return req, nil
}

// NewRequest checks a job id, a Spec and tasks and makes them a Request.
//
// Host names are compared and kept in lower case, without a trailing dot; IP
// addresses in their canonical form, in the tasks and in s.Hosts. When s.Hosts is empty, the Request's
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
		// field names the task in an error; formatted only then, as a
		// Ship may name 10,000 tasks.
		field := func() string { return "tasks[" + strconv.Itoa(i) + "]" }
		switch {
		case t.ID == "":
			errs.add(field()+".id", "", "required")
		case strings.IndexFunc(t.ID, unicode.IsControl) >= 0:
			errs.add(field()+".id", "", "contains a control character")
		default:
			if j, dup := seen[t.ID]; dup {
				errs.add(field()+".id", "", fmt.Sprintf("%q is also the id of tasks[%d]; task ids must be unique in a job", Shorten(t.ID), j))
			} else {
				seen[t.ID] = i
			}
		}
		if !slices.Contains(Roles, t.Role) {
			reason := "required; one of " + strings.Join(Roles, ", ")
			if t.Role != "" {
				reason = fmt.Sprintf("role %q is not one of %s", Shorten(t.Role), strings.Join(Roles, ", "))
			}
			errs.add(field()+".role", "", reason)
		}
		out[i] = Task{ID: t.ID, Role: t.Role}
		for k, h := range t.Hosts {
			norm, reason := normalizeHost(h)
			if reason != "" {
				errs.add(fmt.Sprintf("%s.hosts[%d]", field(), k), "", reason)
				continue
			}
			out[i].Hosts = append(out[i].Hosts, norm)
			union = append(union, norm)
		}
	}
	var given []string
	if s != nil {
		for k, h := range s.Hosts {
			norm, reason := normalizeHost(h)
			if reason != "" {
				errs.add(fmt.Sprintf("hosts[%d]", k), "", reason)
				continue
			}
			given = append(given, norm)
		}
	}
	if len(errs.List) > 0 {
		return nil, errs
	}
	cp := *s
	cp.Hosts = given
	if len(given) == 0 && len(union) > 0 {
		slices.Sort(union)
		cp.Hosts = slices.Compact(union)
	}
	return &Request{JobID: jobID, Spec: &cp, Tasks: out, Consumer: ConsumerOf(s.Dialect)}, nil
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
