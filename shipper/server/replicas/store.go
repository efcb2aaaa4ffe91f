package replicas

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Job is what a replica needs to ship a job it did not build: the request
// to build it again from (store bytes are deterministic, so every replica
// builds the same bytes), the versions it was built from, when it expires,
// and the Kubernetes Secrets to delete then.
type Job struct {
	// ID is the server's key of the job (its job id and spec digest); the
	// record's name is its SHA-256.
	ID      string  `json:"id"`
	Request Request `json:"request"`
	// Versions are the versions of the secrets the bundle was built from,
	// by ref; a refresh that sees others rebuilds.
	Versions map[string]string `json:"versions,omitempty"`
	// Generation counts the job's rebuilds (a watched job's refreshes), so a
	// replica sees that a new bundle is due.
	Generation uint64 `json:"generation,omitempty"`
	// Update is why the leader shipped the generation: the other replicas
	// stream it with the bundle they build from the record.
	Update  *Update   `json:"update,omitempty"`
	Expires time.Time `json:"expires"`
	// Secrets are the Kubernetes Secrets shipped for the job, deleted when
	// it expires.
	Secrets []Secret `json:"secrets,omitempty"`
	// Watched is set once a Watch call follows the job: the replica that
	// refreshes keeps it fresh, whichever replica the Watch came to.
	Watched bool `json:"watched,omitempty"`
}

// Request is the job's request as a Ship or Watch call made it.
type Request struct {
	Spec    []byte `json:"spec"`
	Dialect string `json:"dialect,omitempty"`
	// Consumer is the consumer the request named ("" for the dialect's).
	Consumer string `json:"consumer,omitempty"`
	Tasks    []Task `json:"tasks"`
	// Targets are the host API's target names (TARGET_FETCH, …).
	Targets []string `json:"targets,omitempty"`
	// ConsumerRelease is the consumer's release (e.g. "4.0.1" for Spark):
	// the Spark release the request named, FlinkRelease the Flink one (a
	// request may name both).
	ConsumerRelease string `json:"consumer_release,omitempty"`
	FlinkRelease    string `json:"flink_release,omitempty"`
	FetchUses       int    `json:"fetch_uses,omitempty"`
	// Kubernetes is the TARGET_KUBERNETES part of the request.
	Kubernetes *KubernetesTarget `json:"kubernetes,omitempty"`
}

// Task is one task of the job.
type Task struct {
	ID    string   `json:"id"`
	Role  string   `json:"role"`
	Hosts []string `json:"hosts,omitempty"`
}

// KubernetesTarget is where the job's Secret goes.
type KubernetesTarget struct {
	Namespace string `json:"namespace,omitempty"`
	Secret    string `json:"secret,omitempty"`
	MountPath string `json:"mount_path,omitempty"`
	Persist   bool   `json:"persist,omitempty"`
	// Operator and PEM are the request's (what the Secret holds and how
	// it is mounted).
	Operator string `json:"operator,omitempty"`
	PEM      bool   `json:"pem,omitempty"`
}

// Update is why a watched job's generation shipped, as the leader's Watch
// streams got it.
type Update struct {
	// Reason is the watch's reason ("changed", "renewed").
	Reason string `json:"reason"`
	// Changes are the settings whose secret changed (reason "changed").
	Changes []Change `json:"changes,omitempty"`
	// RenewAt is when the leader renews the certificate keyship issued;
	// zero when it issued none.
	RenewAt time.Time `json:"renew_at,omitzero"`
}

// Change is one setting whose secret's version changed (versions are
// opaque and never secret).
type Change struct {
	Field string `json:"field"`
	Ref   string `json:"ref"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
}

// Secret is a Kubernetes Secret a job owns: deleted when the job expires if
// its UID is still this one.
type Secret struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
}

// Grant is one task's fetch grant: the SHA-256 of its token (never the
// token), and each file's uses left.
type Grant struct {
	TokenHash [32]byte `json:"-"`
	JobID     string   `json:"job_id"`
	Task      string   `json:"task"`
	// Uses are the uses left, by file name.
	Uses    map[string]int `json:"uses"`
	Expires time.Time      `json:"expires"`
}

// JobName returns the record name of the job id.
func JobName(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// GrantName returns the record name of a token's hash.
func GrantName(tokenHash [32]byte) string { return hex.EncodeToString(tokenHash[:]) }

// Store is the typed, sealed view of a State that a server uses. It is safe
// for concurrent use.
type Store struct {
	state State
	seal  *sealer
	now   func() time.Time
}

// StoreOption changes a Store.
type StoreOption func(*Store)

// WithClock sets the store's clock (for tests of expiry).
func WithClock(now func() time.Time) StoreOption { return func(s *Store) { s.now = now } }

// NewStore returns a Store over state that seals under key (KeySize bytes,
// the bytes of --ha-key). It keeps its own copy of nothing but the cipher.
func NewStore(state State, key []byte, opts ...StoreOption) (*Store, error) {
	sl, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	s := &Store{state: state, seal: sl, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// State returns the State under the store.
func (s *Store) State() State { return s.state }

func (s *Store) jobRecord(j *Job) (Record, error) {
	if j.ID == "" {
		return Record{}, errors.New("replicas: a job record needs its job id")
	}
	plain, err := json.Marshal(j)
	if err != nil {
		return Record{}, err
	}
	defer clear(plain)
	name := JobName(j.ID)
	data, err := s.seal.seal(KindJob, name, j.Expires, plain)
	return Record{Kind: KindJob, Name: name, Data: data}, err
}

func (s *Store) grantRecord(g *Grant) (Record, error) {
	if g.JobID == "" || g.Task == "" {
		return Record{}, errors.New("replicas: a grant needs its job id and task")
	}
	plain, err := json.Marshal(g)
	if err != nil {
		return Record{}, err
	}
	name := GrantName(g.TokenHash)
	data, err := s.seal.seal(KindGrant, name, g.Expires, plain)
	return Record{Kind: KindGrant, Name: name, Data: data}, err
}

func (s *Store) openJob(r Record) (*Job, error) {
	plain, err := s.seal.open(KindJob, r.Name, r.Data)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	var j Job
	if err := json.Unmarshal(plain, &j); err != nil {
		return nil, fmt.Errorf("replicas: job record %s: %w", short(r.Name), err)
	}
	if JobName(j.ID) != r.Name {
		return nil, fmt.Errorf("%w: job record %s holds another job", ErrSealed, short(r.Name))
	}
	return &j, nil
}

func (s *Store) openGrant(r Record) (*Grant, error) {
	plain, err := s.seal.open(KindGrant, r.Name, r.Data)
	if err != nil {
		return nil, err
	}
	var g Grant
	if err := json.Unmarshal(plain, &g); err != nil {
		return nil, fmt.Errorf("replicas: grant record %s: %w", short(r.Name), err)
	}
	if _, err := hex.Decode(g.TokenHash[:], []byte(r.Name)); err != nil {
		return nil, fmt.Errorf("replicas: grant record name %s: %w", short(r.Name), err)
	}
	return &g, nil
}

// Publish writes what one Ship shares: job's record, unless it exists (an
// earlier Ship of the job, or another replica's), and the grants of the
// Ship's tasks — on ZooKeeper in one multi-op. Pass a nil job when its
// record is known to exist (this replica wrote or read it): a job given
// whose record exists costs a failed write before the grants' (on
// ZooKeeper, two transactions instead of one).
func (s *Store) Publish(ctx context.Context, job *Job, grants []Grant) error {
	_, err := s.PublishFirst(ctx, job, grants)
	return err
}

// PublishFirst is Publish, and reports whether this call created the job's
// record (false when job is nil or its record existed): the caller then
// knows the record is its own, with its expiry, without reading it.
func (s *Store) PublishFirst(ctx context.Context, job *Job, grants []Grant) (first bool, err error) {
	recs := make([]Record, 0, len(grants)+1)
	if job != nil {
		r, err := s.jobRecord(job)
		if err != nil {
			return false, err
		}
		recs = append(recs, r)
	}
	for i := range grants {
		r, err := s.grantRecord(&grants[i])
		if err != nil {
			return false, err
		}
		recs = append(recs, r)
	}
	err = s.state.Create(ctx, recs...)
	if job == nil || !errors.Is(err, ErrExists) {
		return job != nil && err == nil, err
	}
	// The job's record exists: did it make the whole write fail?
	if _, gerr := s.state.Get(ctx, KindJob, recs[0].Name); gerr != nil {
		return false, err
	}
	if len(recs) == 1 {
		return false, nil
	}
	return false, s.state.Create(ctx, recs[1:]...)
}

// Job returns the job's record and its version, or ErrNotFound.
func (s *Store) Job(ctx context.Context, id string) (*Job, Version, error) {
	r, err := s.state.Get(ctx, KindJob, JobName(id))
	if err != nil {
		return nil, "", err
	}
	j, err := s.openJob(r)
	return j, r.Version, err
}

// UpdateJob replaces the job's record if it is still at version v (a
// refresh's new versions, a later expiry, a Secret to delete) and returns
// the new version; ErrConflict when another replica wrote it first.
func (s *Store) UpdateJob(ctx context.Context, j *Job, v Version) (Version, error) {
	r, err := s.jobRecord(j)
	if err != nil {
		return "", err
	}
	r.Version = v
	return s.state.Update(ctx, r)
}

// DeleteJob removes the job's record (its grants expire on their own).
func (s *Store) DeleteJob(ctx context.Context, id string) error {
	return s.state.Delete(ctx, KindJob, JobName(id), "")
}

// Jobs returns every job record that has not expired: what a replica
// recovers after a restart.
func (s *Store) Jobs(ctx context.Context) ([]*Job, error) {
	recs, err := s.state.List(ctx, KindJob)
	if err != nil {
		return nil, err
	}
	now := s.now()
	jobs := make([]*Job, 0, len(recs))
	for _, r := range recs {
		if exp, ok := SealedExpiry(r.Data); ok && !now.Before(exp) {
			continue
		}
		j, err := s.openJob(r)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// Due returns every job record whose expiry has passed and that no sweep
// has deleted yet: what a replica must still clean up (the job's Secrets)
// before it sweeps.
func (s *Store) Due(ctx context.Context) ([]*Job, error) {
	recs, err := s.state.List(ctx, KindJob)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var jobs []*Job
	for _, r := range recs {
		if exp, ok := SealedExpiry(r.Data); !ok || now.Before(exp) {
			continue
		}
		j, err := s.openJob(r)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// Grant returns the grant of a token's hash and its version, or
// ErrNotFound. It does not check expiry or uses.
func (s *Store) Grant(ctx context.Context, tokenHash [32]byte) (*Grant, Version, error) {
	r, err := s.state.Get(ctx, KindGrant, GrantName(tokenHash))
	if err != nil {
		return nil, "", err
	}
	g, err := s.openGrant(r)
	return g, r.Version, err
}

// Consume uses the grant of tokenHash once for file, if it has a use left
// and has not expired, and returns it (its job id and task say what to
// serve). Across every client of the state each use is taken once: the
// write is a compare-and-set on the version read, retried when another
// replica's write came first. Errors: ErrNotFound (unknown token or file),
// ErrExpired, ErrUsedUp.
func (s *Store) Consume(ctx context.Context, tokenHash [32]byte, file string) (*Grant, error) {
	name := GrantName(tokenHash)
	// Each lost compare-and-set means another client took a use, so the
	// loop ends after at most as many rounds as the grant has uses.
	for {
		r, err := s.state.Get(ctx, KindGrant, name)
		if err != nil {
			return nil, err
		}
		g, err := s.openGrant(r)
		if err != nil {
			return nil, err
		}
		if !s.now().Before(g.Expires) {
			return g, ErrExpired
		}
		left, ok := g.Uses[file]
		if !ok {
			return g, fmt.Errorf("%w: no file %q in the grant", ErrNotFound, file)
		}
		if left <= 0 {
			return g, ErrUsedUp
		}
		g.Uses[file] = left - 1
		nr, err := s.grantRecord(g)
		if err != nil {
			return nil, err
		}
		nr.Version = r.Version
		if _, err := s.state.Update(ctx, nr); errors.Is(err, ErrConflict) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		} else if err != nil {
			return nil, err
		}
		return g, nil
	}
}

// Sweep deletes every job and grant record whose expiry has passed, reading
// only their clear headers, except a job record that still lists Secrets
// (their deletion is due or failed: the caller deletes them and updates
// the record first); a record written since it was listed (a job given a
// later expiry) is left. It returns how many it deleted. Any replica may
// sweep; the leader does it on a timer.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	now := s.now()
	n := 0
	for _, kind := range Kinds {
		recs, err := s.state.List(ctx, kind)
		if err != nil {
			return n, err
		}
		for _, r := range recs {
			exp, ok := SealedExpiry(r.Data)
			if !ok || now.Before(exp) {
				continue
			}
			if kind == KindJob {
				// A record that does not open (another key) is swept as
				// before: no replica could delete its Secrets.
				if j, err := s.openJob(r); err == nil && len(j.Secrets) > 0 {
					continue
				}
			}
			switch err := s.state.Delete(ctx, kind, r.Name, r.Version); {
			case err == nil:
				n++
			case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict):
			default:
				return n, err
			}
		}
	}
	return n, nil
}

// Ping reads one record that does not exist: nil when the state answers
// (ErrNotFound), else why it did not (e.g. ErrUnavailable), for readiness.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.state.Get(ctx, KindJob, JobName("keyship readiness probe"))
	if err == nil || errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// Campaign is State.Campaign.
func (s *Store) Campaign(ctx context.Context, election string) (Leadership, error) {
	return s.state.Campaign(ctx, election)
}
