// Package replicas is the state that keyship serve replicas share so that
// any of them answers for any job: the job records (what to rebuild a job's
// bundle from), the fetch grants (a hash of each token and its uses left)
// and the leadership of the one replica that refreshes watched jobs.
//
// It keeps that state on the engine the cluster already runs, as Flink's
// high-availability services do: ZooKeeper on Mesos and DC/OS
// (replicas/zookeeper), the Kubernetes API server on Kubernetes
// (replicas/kubernetes), or this process's memory (Memory, `--ha none`). Each
// implements State, a small versioned record store with leader election; the
// conformance suite replicas/replicastest runs against all three.
//
// Store is what a server uses: it seals every record (AES-256-GCM under a
// 32-byte key, bound to the record's kind and name), so the engine never
// holds a secret in clear, and builds single use across replicas on State's
// compare-and-set (Consume).
//
// What it guarantees: a grant's use is taken once across every client of
// one State (a lost compare-and-set reads again and finds it used), as
// long as the engine keeps its own promise (a ZooKeeper quorum, the API
// server's etcd). A use is taken before the file is served, so a fetch that
// fails after Consume is lost, never served twice. A leadership may end
// before its holder notices (a partition): the refresher's work must be
// safe to do twice, and Watch streams may see a bundle twice after a
// failover.
//
//	st, _ := zookeeper.Open(ctx, zookeeper.Config{Servers: quorum, Root: "/keyship", ClusterID: "default"})
//	store, _ := replicas.NewStore(st, key) // key: the 32 bytes of --ha-key
//	_ = store.Publish(ctx, job, grants)     // one ZooKeeper multi-op
//	g, err := store.Consume(ctx, sha256.Sum256(token), "keystore.jks")
package replicas

import (
	"context"
	"errors"
)

// Kind is the kind of a record; each kind is a namespace of names.
type Kind string

// The kinds of records replicas share.
const (
	// KindJob records are named by the hex SHA-256 of the job id.
	KindJob Kind = "job"
	// KindGrant records are named by the hex SHA-256 of the fetch token.
	KindGrant Kind = "grant"
)

// Kinds lists every Kind, in a fixed order.
var Kinds = []Kind{KindJob, KindGrant}

// Version is a record's version as its engine counts it (a ZooKeeper node's
// data version, a Kubernetes resourceVersion). It is opaque: only equality
// means anything. The zero Version on Delete means "whatever version".
type Version string

// Record is one record as State keeps it: sealed bytes under a kind and a
// name. Store makes and opens them; a State never sees a clear record.
type Record struct {
	Kind Kind
	// Name is 64 lowercase hex digits (a SHA-256).
	Name string
	// Data is the sealed record (see Store).
	Data []byte
	// Version is set by Get and List, and is the condition of Update.
	Version Version
}

// State is where replicas keep their shared records: a small versioned
// store with leader election. Every method is safe for concurrent use; ctx
// bounds each call.
type State interface {
	// Create writes records that must not exist yet. Where the engine has
	// transactions (Memory, ZooKeeper's multi-op) it writes all or none; on
	// Kubernetes it writes them in order and deletes what it wrote when one
	// fails. A record that exists fails the call with ErrExists.
	Create(ctx context.Context, records ...Record) error
	// Get returns the record, or ErrNotFound.
	Get(ctx context.Context, kind Kind, name string) (Record, error)
	// Update replaces r's data if its version is still r.Version (a
	// compare-and-set) and returns the new version; ErrConflict when another
	// write came first, ErrNotFound when it is gone.
	Update(ctx context.Context, r Record) (Version, error)
	// Delete removes the record if its version is v (any version when v is
	// ""); ErrNotFound when it does not exist, ErrConflict when its version
	// is another.
	Delete(ctx context.Context, kind Kind, name string, v Version) error
	// List returns every record of kind (for recovery after a restart and
	// for sweeping), in no particular order.
	List(ctx context.Context, kind Kind) ([]Record, error)
	// Campaign blocks until this client leads election (one leader at a time
	// among every client of the state), or ctx ends. The leadership ends
	// when the client's session or lease does (a crash, a partition), on
	// Resign, or on Close.
	Campaign(ctx context.Context, election string) (Leadership, error)
	// Close ends the client's leaderships and releases its connection. The
	// records stay.
	Close() error
}

// Leadership is won by State.Campaign.
type Leadership interface {
	// Done is closed when the leadership has ended, or may have: the leader
	// must stop acting as one. Campaign again to lead again.
	Done() <-chan struct{}
	// Resign ends the leadership now, so another client may take over
	// without waiting for a session or lease to expire.
	Resign(ctx context.Context) error
}

// The errors of State and Store, wrapped with context; match with errors.Is.
var (
	// ErrNotFound: no such record (for a grant: an unknown token).
	ErrNotFound = errors.New("replicas: record not found")
	// ErrExists: Create met a record that exists.
	ErrExists = errors.New("replicas: record exists")
	// ErrConflict: a compare-and-set lost to another write.
	ErrConflict = errors.New("replicas: record changed since it was read")
	// ErrUnavailable: the engine cannot answer now (no quorum, connection
	// lost, API server down); the only error worth retrying.
	ErrUnavailable = errors.New("replicas: shared state unavailable")
	// ErrSealed: a record does not open under this key (another --ha-key,
	// or it was altered).
	ErrSealed = errors.New("replicas: record does not open under this key")
	// ErrExpired: the grant's or job's time is over.
	ErrExpired = errors.New("replicas: expired")
	// ErrUsedUp: the grant has no use left for the file.
	ErrUsedUp = errors.New("replicas: no use left")
	// ErrClosed: the State was closed.
	ErrClosed = errors.New("replicas: closed")
)

// validName reports whether name is 64 lowercase hex digits.
func validName(name string) bool {
	if len(name) != 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// CheckRecord returns an error naming what is wrong with r's kind or name;
// States call it on every record they are given.
func CheckRecord(kind Kind, name string) error {
	if kind != KindJob && kind != KindGrant {
		return errors.New("replicas: unknown record kind " + string(kind))
	}
	if !validName(name) {
		return errors.New("replicas: record name must be 64 lowercase hex digits (a SHA-256)")
	}
	return nil
}
