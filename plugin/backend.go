package plugin

import (
	"context"
	"time"
)

// Backend is a secret store seen through keyship. Implementations must be safe
// for concurrent use: the host calls Get from many goroutines at once.
//
// Every method that does I/O takes ctx first and must return promptly once ctx
// is done. Errors should wrap one of the sentinels in errors.go so that the
// host can tell "not found" from "try again later" across the wire.
type Backend interface {
	// Info describes the backend. It must not do I/O that can fail.
	Info(ctx context.Context) (Info, error)
	// Configure applies the backend's settings. The host calls it once, before
	// any Get. Unknown or malformed settings must return an error wrapping
	// ErrInvalidConfig that names the setting.
	Configure(ctx context.Context, config map[string]string) error
	// Get fetches a batch of refs. The result has exactly len(refs) entries, in
	// the same order; a ref that cannot be read sets Result.Err and does not fail
	// the others. A non-nil error means the whole batch failed.
	Get(ctx context.Context, refs []Ref) ([]Result, error)
}

// Lister is the optional interface of a backend that can list the refs under a
// prefix. A backend that does not implement it reports ErrUnsupported.
type Lister interface {
	// List returns the paths directly under prefix, sorted; directories end in
	// "/". Paths are full, as they would be written in a ref ("/spark/keystore"
	// under prefix "/spark"), not names relative to prefix.
	List(ctx context.Context, prefix string) ([]string, error)
}

// Ref names one secret inside a backend. The backend name is not part of it:
// the host has already chosen the backend.
type Ref struct {
	// Path is the secret's path in the store, e.g. "/spark/keystore" or
	// "secret/spark/tls". Required.
	Path string
	// Field selects one field of a structured secret (Vault KV), or is empty.
	Field string
	// Version asks for a specific version, or is empty for the current one.
	Version string
}

// String formats r as path[#field][@version]. It holds no secret.
func (r Ref) String() string {
	s := r.Path
	if r.Field != "" {
		s += "#" + r.Field
	}
	if r.Version != "" {
		s += "@" + r.Version
	}
	return s
}

// Secret is the content of one ref.
type Secret struct {
	// Data is the secret's bytes, exactly as stored (binary-safe).
	Data []byte
	// Version is opaque to the host. It changes whenever Data changes and must
	// not reveal Data: never a plain hash of a password. A keyed HMAC or the
	// store's own version number is fine.
	Version string
	// Metadata is non-secret information (content type, creation time, ...).
	Metadata map[string]string
}

// Result is the outcome for one ref of a Get batch: Secret, or Err.
type Result struct {
	Secret Secret
	Err    error
}

// Info describes a backend.
type Info struct {
	// Name is the backend's short name, e.g. "file" or "vault". Required.
	Name string
	// Version is the backend's own release version. Required.
	Version string
	// ProtocolVersions lists the backend protocol versions it speaks.
	ProtocolVersions []uint32
	// Capabilities lists optional features, e.g. CapabilityList.
	Capabilities []string
}

// CapabilityList is the capability of a backend that implements Lister.
const CapabilityList = "list"

// Issuer is the optional interface of a backend whose store has a
// certificate authority (Vault PKI, the DC/OS CA). Each call issues a new
// certificate, so the host calls it once per job and host set.
type Issuer interface {
	// Issue returns a new private key and certificate chain for req's hosts.
	Issue(ctx context.Context, req IssueRequest) (Issued, error)
}

// CapabilityIssue is the capability of a backend that implements Issuer.
const CapabilityIssue = "issue"

// CapabilityMesosReference is the capability of a backend whose secrets the
// Mesos secret resolver of the cluster can read itself, by the ref's path
// (DC/OS Secrets): the host may then ship a secret's exact bytes as a Mesos
// Secret of type REFERENCE instead of a VALUE, so the bytes never pass
// through the launcher or the TaskInfo.
const CapabilityMesosReference = "mesos-reference"

// IssueRequest asks for a certificate for a set of hosts.
type IssueRequest struct {
	// Path says where to issue from, in the backend's terms (a Vault PKI
	// role path "pki/issue/spark-node", a DC/OS CA profile). Required.
	Path string
	// CommonName is the subject CN; empty means the first DNS name.
	CommonName string
	// DNSNames and IPAddresses are the subject alternative names; at least
	// one of them is required.
	DNSNames    []string
	IPAddresses []string
	// TTL is the requested lifetime; 0 means the authority's default.
	TTL time.Duration
}

// Issued is a freshly issued key and certificate chain.
type Issued struct {
	// PrivateKey is PKCS#8 DER. Secret: zero it when done.
	PrivateKey []byte
	// Chain is DER certificates, leaf first.
	Chain [][]byte
	// CACertificates are the authority's CA certificates (DER).
	CACertificates [][]byte
	// Version is opaque, e.g. the leaf's serial number.
	Version string
}
