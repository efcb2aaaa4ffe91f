// Package kubernetes keeps the state keyship serve replicas share in the
// Kubernetes API server of the cluster they run in (`keyship serve --ha
// kubernetes`), as Flink's Kubernetes HA services do: records in
// ConfigMaps, leadership in a coordination.k8s.io Lease through client-go's
// leader election.
//
// Each record is one ConfigMap in the replicas' namespace,
//
//	keyship-<cluster-id>-job-<sha256 of the job key>      binaryData.record: the sealed job record
//	keyship-<cluster-id>-grant-<sha256 of the token>      binaryData.record: the sealed grant
//
// labelled app.kubernetes.io/managed-by=keyship, keyship.io/cluster-id and
// keyship.io/kind. A compare-and-set is an update at the ConfigMap's
// resourceVersion (a delete, a precondition on it). The records are sealed
// before they get here, so they need no Secret: ConfigMaps keep the Role
// from needing list on the namespace's Secrets. The Role (Rules) is
// namespaced; nothing is cluster-wide.
//
// The API server has no multi-object transaction: Create writes its records
// in order (the first, a Ship's job record, alone; its grants then at
// once) and deletes what it wrote when one fails.
package kubernetes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/keyship/keyship/shipper/server/replicas"
)

// Labels on every object this package writes.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelClusterID = "keyship.io/cluster-id"
	LabelKind      = "keyship.io/kind"
	managedBy      = "keyship"
	recordKey      = "record"
)

// Rules is the Role the replicas' service account needs in their
// namespace: ConfigMaps for records, a Lease for leadership. Nothing else,
// nothing cluster-wide.
var Rules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "create", "update", "delete"}},
	{APIGroups: []string{coordinationv1.GroupName}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}},
}

// Config says where the state lives and how leadership is held.
type Config struct {
	// REST is the client configuration (in a pod, rest.InClusterConfig;
	// otherwise keyship's --kubeconfig).
	REST *rest.Config
	// Namespace is the replicas' namespace (--ha-kubernetes-namespace).
	Namespace string
	// ClusterID separates keyship deployments in one namespace
	// (--ha-cluster-id, default "default").
	ClusterID string
	// Identity names this replica in Leases (default: the hostname, which
	// in a pod is its name); each campaign adds a random suffix.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod are client-go leader
	// election's (defaults 15s, 10s, 2s, as Flink's and the controller
	// managers'): a crashed leader's Lease is taken over within
	// LeaseDuration plus RetryPeriod.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// The defaults of Config's lease timings.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// createParallelism bounds the concurrent creates of one Create.
const createParallelism = 16

var (
	clusterIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)
	electionPattern  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)
)

// State is a replicas.State in the Kubernetes API server.
type State struct {
	cms       corev1client.ConfigMapInterface
	leases    coordinationv1client.LeasesGetter
	namespace string
	cluster   string
	identity  string
	timing    [3]time.Duration

	ctx    context.Context // cancelled by Close: ends every election
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	runs   sync.WaitGroup
}

var _ replicas.State = (*State)(nil)

// Open returns the state in cfg.Namespace. It makes no call: a missing
// Role shows on the first one, as a permission error naming the Role.
func Open(cfg Config) (*State, error) {
	if cfg.REST == nil {
		return nil, errors.New("kubernetes: no client configuration (--kubeconfig, or in-cluster)")
	}
	if cfg.Namespace == "" {
		return nil, errors.New("kubernetes: no namespace (--ha-kubernetes-namespace)")
	}
	if cfg.ClusterID == "" {
		cfg.ClusterID = "default"
	}
	if !clusterIDPattern.MatchString(cfg.ClusterID) {
		return nil, fmt.Errorf("kubernetes: cluster id %q (--ha-cluster-id): want a DNS-1123 label of at most 40 characters", cfg.ClusterID)
	}
	if cfg.Identity == "" {
		cfg.Identity, _ = os.Hostname()
	}
	if cfg.LeaseDuration <= 0 {
		cfg.LeaseDuration = DefaultLeaseDuration
	}
	if cfg.RenewDeadline <= 0 {
		cfg.RenewDeadline = DefaultRenewDeadline
	}
	if cfg.RetryPeriod <= 0 {
		cfg.RetryPeriod = DefaultRetryPeriod
	}
	core, err := corev1client.NewForConfig(cfg.REST)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	coord, err := coordinationv1client.NewForConfig(cfg.REST)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &State{
		cms: core.ConfigMaps(cfg.Namespace), leases: coord, namespace: cfg.Namespace, cluster: cfg.ClusterID,
		identity: cfg.Identity, timing: [3]time.Duration{cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod},
		ctx: ctx, cancel: cancel,
	}, nil
}

func (s *State) objectName(kind replicas.Kind, name string) string {
	return "keyship-" + s.cluster + "-" + string(kind) + "-" + name
}

func (s *State) check(ctx context.Context) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return replicas.ErrClosed
	}
	return ctx.Err()
}

// wrap maps an API error: the sentinels of replicas, and a permission error
// that names the Role.
func (s *State) wrap(op string, kind replicas.Kind, name string, err error) error {
	what := fmt.Sprintf("kubernetes: %s %s %s in namespace %s", op, kind, name, s.namespace)
	var ne net.Error
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: %s: %v", replicas.ErrNotFound, what, err)
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%w: %s: %v", replicas.ErrExists, what, err)
	case apierrors.IsConflict(err):
		return fmt.Errorf("%w: %s: %v", replicas.ErrConflict, what, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: %v (the replicas need a Role there with configmaps get, list, create, update, delete and leases get, create, update; see deploy/kubernetes)", what, err)
	case apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsTooManyRequests(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err), errors.As(err, &ne):
		return fmt.Errorf("%w: %s: %v", replicas.ErrUnavailable, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (s *State) configMap(r replicas.Record) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: s.objectName(r.Kind, r.Name), Namespace: s.namespace, ResourceVersion: string(r.Version),
			Labels: map[string]string{LabelManagedBy: managedBy, LabelClusterID: s.cluster, LabelKind: string(r.Kind)},
		},
		BinaryData: map[string][]byte{recordKey: r.Data},
	}
}

func (s *State) record(kind replicas.Kind, name string, cm *corev1.ConfigMap) replicas.Record {
	return replicas.Record{Kind: kind, Name: name, Data: cm.BinaryData[recordKey], Version: replicas.Version(cm.ResourceVersion)}
}

// Create implements replicas.State: the first record alone, then the
// others concurrently; on a failure, what it wrote is deleted.
func (s *State) Create(ctx context.Context, records ...replicas.Record) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	for _, r := range records {
		if err := replicas.CheckRecord(r.Kind, r.Name); err != nil {
			return err
		}
	}
	if len(records) == 0 {
		return nil
	}
	create := func(r replicas.Record) error {
		r.Version = ""
		_, err := s.cms.Create(ctx, s.configMap(r), metav1.CreateOptions{})
		if err != nil {
			return s.wrap("create", r.Kind, r.Name, err)
		}
		return nil
	}
	if err := create(records[0]); err != nil {
		return err
	}
	rest := records[1:]
	errs := make([]error, len(rest))
	sem := make(chan struct{}, createParallelism)
	var wg sync.WaitGroup
	for i, r := range rest {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = create(r)
		}()
	}
	wg.Wait()
	var first error
	for _, err := range errs {
		if err != nil {
			first = err
			break
		}
	}
	if first == nil {
		return nil
	}
	// Undo, with a context of its own: ctx may be what failed.
	undo, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, r := range append([]replicas.Record{records[0]}, rest...) {
		if i > 0 && errs[i-1] != nil {
			continue
		}
		_ = s.cms.Delete(undo, s.objectName(r.Kind, r.Name), metav1.DeleteOptions{})
	}
	return first
}

// Get implements replicas.State.
func (s *State) Get(ctx context.Context, kind replicas.Kind, name string) (replicas.Record, error) {
	if err := s.check(ctx); err != nil {
		return replicas.Record{}, err
	}
	if err := replicas.CheckRecord(kind, name); err != nil {
		return replicas.Record{}, err
	}
	cm, err := s.cms.Get(ctx, s.objectName(kind, name), metav1.GetOptions{})
	if err != nil {
		return replicas.Record{}, s.wrap("get", kind, name, err)
	}
	return s.record(kind, name, cm), nil
}

// Update implements replicas.State: an update at r.Version, the
// ConfigMap's resourceVersion.
func (s *State) Update(ctx context.Context, r replicas.Record) (replicas.Version, error) {
	if err := s.check(ctx); err != nil {
		return "", err
	}
	if err := replicas.CheckRecord(r.Kind, r.Name); err != nil {
		return "", err
	}
	if r.Version == "" {
		return "", errors.New("kubernetes: Update needs the version read")
	}
	cm, err := s.cms.Update(ctx, s.configMap(r), metav1.UpdateOptions{})
	if err != nil {
		return "", s.wrap("update", r.Kind, r.Name, err)
	}
	return replicas.Version(cm.ResourceVersion), nil
}

// Delete implements replicas.State: a delete with the resourceVersion as
// its precondition.
func (s *State) Delete(ctx context.Context, kind replicas.Kind, name string, v replicas.Version) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := replicas.CheckRecord(kind, name); err != nil {
		return err
	}
	opts := metav1.DeleteOptions{}
	if v != "" {
		rv := string(v)
		opts.Preconditions = &metav1.Preconditions{ResourceVersion: &rv}
	}
	if err := s.cms.Delete(ctx, s.objectName(kind, name), opts); err != nil {
		return s.wrap("delete", kind, name, err)
	}
	return nil
}

// List implements replicas.State: the ConfigMaps with the cluster's and the
// kind's labels, 500 a page.
func (s *State) List(ctx context.Context, kind replicas.Kind) ([]replicas.Record, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	sel := labels.SelectorFromSet(labels.Set{LabelManagedBy: managedBy, LabelClusterID: s.cluster, LabelKind: string(kind)}).String()
	prefix := s.objectName(kind, "")
	var out []replicas.Record
	opts := metav1.ListOptions{LabelSelector: sel, Limit: 500}
	for {
		l, err := s.cms.List(ctx, opts)
		if err != nil {
			return nil, s.wrap("list", kind, "records", err)
		}
		for i := range l.Items {
			cm := &l.Items[i]
			name := cm.Name[min(len(prefix), len(cm.Name)):]
			if len(cm.Name) <= len(prefix) || cm.Name[:len(prefix)] != prefix || replicas.CheckRecord(kind, name) != nil {
				continue // labelled by hand, not one of ours
			}
			out = append(out, s.record(kind, name, cm))
		}
		if l.Continue == "" {
			return out, nil
		}
		opts.Continue = l.Continue
	}
}

// leadership is one campaign's elector, from its start until Run returns.
type leadership struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the elector's Run returns
}

// Done implements replicas.Leadership.
func (l *leadership) Done() <-chan struct{} { return l.done }

// Resign implements replicas.Leadership: the Lease is released (its holder
// cleared), so the next candidate takes it at its next try.
func (l *leadership) Resign(ctx context.Context) error {
	l.cancel()
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Campaign implements replicas.State with client-go's leader election on
// the Lease keyship-<cluster-id>-<election>.
func (s *State) Campaign(ctx context.Context, election string) (replicas.Leadership, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if !electionPattern.MatchString(election) {
		return nil, fmt.Errorf("kubernetes: election name %q: want a DNS-1123 label of at most 40 characters", election)
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	won := make(chan struct{})
	l := &leadership{done: make(chan struct{})}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: "keyship-" + s.cluster + "-" + election, Namespace: s.namespace},
		Client:     s.leases,
		LockConfig: resourcelock.ResourceLockConfig{Identity: s.identity + "_" + hex.EncodeToString(suffix[:])},
		Labels:     map[string]string{LabelManagedBy: managedBy, LabelClusterID: s.cluster},
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          lock,
		LeaseDuration: s.timing[0], RenewDeadline: s.timing[1], RetryPeriod: s.timing[2],
		ReleaseOnCancel: true,
		Name:            "keyship-" + s.cluster + "-" + election,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { close(won) },
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	runCtx, cancel := context.WithCancel(s.ctx)
	l.cancel = cancel
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		return nil, replicas.ErrClosed
	}
	s.runs.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.runs.Done()
		le.Run(runCtx)
		close(l.done)
	}()
	select {
	case <-won:
		return l, nil
	case <-l.done:
		cancel()
		if s.check(context.Background()) != nil {
			return nil, replicas.ErrClosed
		}
		return nil, fmt.Errorf("%w: kubernetes: the election ended before it was won", replicas.ErrUnavailable)
	case <-ctx.Done():
		cancel()
		<-l.done
		return nil, ctx.Err()
	}
}

// Close implements replicas.State: every election ends, releasing its
// Lease when it leads (bounded by the renew deadline).
func (s *State) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.runs.Wait()
	return nil
}
