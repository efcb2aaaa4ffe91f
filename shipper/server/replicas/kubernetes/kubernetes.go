// Package kubernetes keeps the state keyship serve replicas share in the
// Kubernetes API server of the cluster they run in (`keyship serve --ha
// kubernetes`), as Flink's Kubernetes HA services do: records in
// ConfigMaps, leadership in a coordination.k8s.io Lease held as client-go's
// leader election holds one (lease.go).
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
//
// The package speaks to the API server through client-go's REST client
// with a scheme of meta/v1 alone, as shipper/kube does, and decodes the two
// kinds it uses into its own structs. client-go's typed clients register
// every API group of k8s.io/api at package init, and its leaderelection
// package links the whole clientset and its informers: 380 packages whose
// init every keyship command paid, `keyship ship` included.
package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"

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

// coordinationGroup is the API group of Leases.
const coordinationGroup = "coordination.k8s.io"

// Rules is the Role the replicas' service account needs in their
// namespace: ConfigMaps for records, a Lease for leadership. Nothing else,
// nothing cluster-wide.
var Rules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "create", "update", "delete"}},
	{APIGroups: []string{coordinationGroup}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}},
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
	// LeaseDuration, RenewDeadline and RetryPeriod are those of client-go's
	// leader election (defaults 15s, 10s, 2s, as Flink's and the controller
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

// maxLabel bounds the cluster id and the election name, so that
// keyship-<cluster-id>-<kind>-<64 hex digits> stays a valid object name.
const maxLabel = 40

// isLabel reports whether s is a DNS-1123 label (lower-case letters,
// digits and '-', starting and ending with a letter or digit) of at most
// max characters. It is written out rather than a regexp: a bounded
// repetition compiled at package init cost every keyship command 300
// allocations.
func isLabel(s string, max int) bool {
	if s == "" || len(s) > max || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// The client's scheme knows meta/v1 alone (options and Status, which the
// REST client decodes errors from), for both group versions; it is built
// with the first State, not at package init.
var (
	coreV1         = schema.GroupVersion{Version: "v1"}
	coordinationV1 = schema.GroupVersion{Group: coordinationGroup, Version: "v1"}
	schemeOnce     sync.Once
	codecs         serializer.CodecFactory
)

func initScheme() {
	scheme := runtime.NewScheme()
	metav1.AddToGroupVersion(scheme, coreV1)
	metav1.AddToGroupVersion(scheme, coordinationV1)
	codecs = serializer.NewCodecFactory(scheme)
}

// restClient returns a REST client for gv's resources under apiPath.
func restClient(cfg *rest.Config, apiPath string, gv schema.GroupVersion) (*rest.RESTClient, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "keyship"
	}
	cfg.APIPath = apiPath
	cfg.GroupVersion = &gv
	cfg.ContentType = "application/json"
	cfg.NegotiatedSerializer = codecs.WithoutConversion()
	return rest.RESTClientFor(cfg)
}

// configMap is the part of a core/v1 ConfigMap keyship writes and reads.
type configMap struct {
	APIVersion string            `json:"apiVersion,omitempty"`
	Kind       string            `json:"kind,omitempty"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	BinaryData map[string][]byte `json:"binaryData,omitempty"`
}

// configMapList is a core/v1 ConfigMapList.
type configMapList struct {
	Metadata metav1.ListMeta `json:"metadata"`
	Items    []configMap     `json:"items"`
}

// State is a replicas.State in the Kubernetes API server.
type State struct {
	core      rest.Interface // core/v1: ConfigMaps
	coord     rest.Interface // coordination.k8s.io/v1: Leases
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
	if !isLabel(cfg.ClusterID, maxLabel) {
		return nil, fmt.Errorf("kubernetes: cluster id %q (--ha-cluster-id): want a DNS-1123 label of at most %d characters", cfg.ClusterID, maxLabel)
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
	schemeOnce.Do(initScheme)
	core, err := restClient(cfg.REST, "/api", coreV1)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	coord, err := restClient(cfg.REST, "/apis", coordinationV1)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &State{
		core: core, coord: coord, namespace: cfg.Namespace, cluster: cfg.ClusterID,
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

// body encodes r as the ConfigMap that holds it.
func (s *State) body(r replicas.Record) []byte {
	b, err := json.Marshal(configMap{
		APIVersion: "v1", Kind: "ConfigMap",
		Metadata: metav1.ObjectMeta{
			Name: s.objectName(r.Kind, r.Name), Namespace: s.namespace, ResourceVersion: string(r.Version),
			Labels: map[string]string{LabelManagedBy: managedBy, LabelClusterID: s.cluster, LabelKind: string(r.Kind)},
		},
		BinaryData: map[string][]byte{recordKey: r.Data},
	})
	if err != nil {
		panic("kubernetes: a ConfigMap does not encode: " + err.Error()) // strings and bytes always do
	}
	return b
}

// decodeAs reads a response's object, a kind (for the error), into a T.
func decodeAs[T any](res rest.Result, kind string) (*T, error) {
	raw, err := res.Raw()
	if err != nil {
		return nil, err
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("the API server's %s does not decode: %w", kind, err)
	}
	return &v, nil
}

// decode reads the ConfigMap of a response.
func decode(res rest.Result) (*configMap, error) { return decodeAs[configMap](res, "ConfigMap") }

func (s *State) record(kind replicas.Kind, name string, cm *configMap) replicas.Record {
	return replicas.Record{Kind: kind, Name: name, Data: cm.BinaryData[recordKey], Version: replicas.Version(cm.Metadata.ResourceVersion)}
}

// configMaps starts a request on the namespace's ConfigMaps.
func (s *State) configMaps(req *rest.Request) *rest.Request {
	return req.Namespace(s.namespace).Resource("configmaps")
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
		if err := s.configMaps(s.core.Post()).Body(s.body(r)).Do(ctx).Error(); err != nil {
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
		_ = s.configMaps(s.core.Delete()).Name(s.objectName(r.Kind, r.Name)).Do(undo).Error()
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
	cm, err := decode(s.configMaps(s.core.Get()).Name(s.objectName(kind, name)).Do(ctx))
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
	cm, err := decode(s.configMaps(s.core.Put()).Name(s.objectName(r.Kind, r.Name)).Body(s.body(r)).Do(ctx))
	if err != nil {
		return "", s.wrap("update", r.Kind, r.Name, err)
	}
	return replicas.Version(cm.Metadata.ResourceVersion), nil
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
	opts := metav1.DeleteOptions{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "DeleteOptions"}}
	if v != "" {
		rv := string(v)
		opts.Preconditions = &metav1.Preconditions{ResourceVersion: &rv}
	}
	body, err := json.Marshal(opts)
	if err != nil {
		return fmt.Errorf("kubernetes: delete options: %w", err)
	}
	if err := s.configMaps(s.core.Delete()).Name(s.objectName(kind, name)).Body(body).Do(ctx).Error(); err != nil {
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
	cont := ""
	for {
		req := s.configMaps(s.core.Get()).Param("labelSelector", sel).Param("limit", "500")
		if cont != "" {
			req = req.Param("continue", cont)
		}
		l, err := decodeAs[configMapList](req.Do(ctx), "ConfigMapList")
		if err != nil {
			return nil, s.wrap("list", kind, "records", err)
		}
		for i := range l.Items {
			cm := &l.Items[i]
			n := cm.Metadata.Name
			name := n[min(len(prefix), len(n)):]
			if len(n) <= len(prefix) || n[:len(prefix)] != prefix || replicas.CheckRecord(kind, name) != nil {
				continue // labelled by hand, not one of ours
			}
			out = append(out, s.record(kind, name, cm))
		}
		if l.Metadata.Continue == "" {
			return out, nil
		}
		cont = l.Metadata.Continue
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
