package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keyship/keyship/plugin"
)

// The client speaks core/v1 through client-go's REST client with a scheme
// of meta/v1 alone (options and Status): client-go's typed clientset would
// register every API group of k8s.io/api, which nearly tripled keyship's
// binary for one resource. The scheme is built with the first client, not
// at package init: every keyship ship links this package and would pay it.
var (
	coreV1      = schema.GroupVersion{Version: "v1"}
	secretsPath = "secrets"
	schemeOnce  sync.Once
	codecs      serializer.CodecFactory
	paramCodec  runtime.ParameterCodec
)

// initScheme builds the scheme, codecs and paramCodec (once, schemeOnce).
func initScheme() {
	scheme := runtime.NewScheme()
	metav1.AddToGroupVersion(scheme, coreV1)
	codecs = serializer.NewCodecFactory(scheme)
	paramCodec = runtime.NewParameterCodec(scheme)
}

// secretObject is the part of a core/v1 Secret keyship reads back.
type secretObject struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
	Data     map[string][]byte `json:"data"`
}

// Client applies and deletes keyship's Secrets through one API server.
type Client struct {
	rest rest.Interface
	// Namespace is the default namespace: the kubeconfig context's, or the
	// pod's own in a cluster ("default" when neither says).
	Namespace string
}

// NewClient connects with kubeconfig, or when it is "" with $KUBECONFIG or
// ~/.kube/config, or with the pod's service account inside a cluster
// (client-go's usual order).
func NewClient(kubeconfig string) (*Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes: no client configuration (--kubeconfig, $KUBECONFIG, ~/.kube/config or in-cluster): %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("kubernetes: the kubeconfig context's namespace: %w", err)
	}
	return NewClientForConfig(cfg, ns)
}

// NewClientForConfig connects with cfg; namespace is the default namespace.
func NewClientForConfig(cfg *rest.Config, namespace string) (*Client, error) {
	schemeOnce.Do(initScheme)
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "keyship"
	cfg.APIPath = "/api"
	cfg.GroupVersion = &coreV1
	cfg.NegotiatedSerializer = codecs.WithoutConversion()
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	return &Client{rest: rc, Namespace: namespace}, nil
}

// Applied is the Secret as the API server holds it after Apply.
type Applied struct {
	Namespace, Name string
	// UID identifies this Secret; Delete takes it as a precondition.
	UID types.UID
	// ResourceVersion changes with every change the server makes; the same
	// Plan applied again keeps it.
	ResourceVersion string
}

// Apply server-side-applies p's Secret in p.Namespace (the Client's default
// when empty) as field manager keyship, with strict field validation, and
// takes over fields other managers changed (force): keyship's Secrets are
// keyship's. It refuses a Secret of that name that is not keyship's
// (LabelManagedBy). Applying the same Plan again changes nothing.
//
// Errors wrap plugin.ErrPermissionDenied (the credentials may not read or
// write Secrets in the namespace, which the error names) or
// plugin.ErrUnavailable (the server did not answer); none holds secret
// bytes.
func (c *Client) Apply(ctx context.Context, p *Plan) (*Applied, error) {
	if p.Namespace == "" {
		p.Namespace = c.Namespace
	}
	cur, err := c.secret(c.rest.Get().Namespace(p.Namespace).Resource(secretsPath).Name(p.Name).Do(ctx))
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, c.wrap("read", p.Namespace, p.Name, err)
	case cur.Metadata.Labels[LabelManagedBy] != ManagedBy:
		return nil, fmt.Errorf("kubernetes: secret %q in namespace %q exists and is not keyship's (no label %s=%s): "+
			"keyship does not take it over; name another (--k8s-secret) or delete it", p.Name, p.Namespace, LabelManagedBy, ManagedBy)
	}
	manifest := p.Manifest()
	defer clear(manifest)
	force := true
	opts := &metav1.PatchOptions{FieldManager: FieldManager, Force: &force, FieldValidation: metav1.FieldValidationStrict}
	got, err := c.secret(c.rest.Patch(types.ApplyPatchType).Namespace(p.Namespace).Resource(secretsPath).Name(p.Name).
		VersionedParams(opts, paramCodec).Body([]byte(manifest)).Do(ctx))
	if err != nil {
		return nil, c.wrap("apply", p.Namespace, p.Name, err)
	}
	m := got.Metadata
	return &Applied{Namespace: m.Namespace, Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion}, nil
}

// secret decodes a Secret response, keeping its metadata and zeroing the
// decoded data.
func (c *Client) secret(res rest.Result) (*secretObject, error) {
	raw, err := res.Raw()
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	var s secretObject
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("kubernetes: the API server's Secret does not decode: %w", err)
	}
	for k := range s.Data {
		clear(s.Data[k])
	}
	s.Data = nil
	return &s, nil
}

// Delete deletes keyship's Secret namespace/name if it is still the one
// with uid (when uid is not empty): a Secret made anew under the same name
// is left alone. A Secret already gone is not an error.
func (c *Client) Delete(ctx context.Context, namespace, name string, uid types.UID) error {
	opts := &metav1.DeleteOptions{}
	if uid != "" {
		opts.Preconditions = &metav1.Preconditions{UID: &uid}
	}
	err := c.rest.Delete().Namespace(namespace).Resource(secretsPath).Name(name).Body(opts).Do(ctx).Error()
	if err == nil || apierrors.IsNotFound(err) || (uid != "" && apierrors.IsConflict(err)) {
		return nil
	}
	return c.wrap("delete", namespace, name, err)
}

// wrap makes an API error keyship's: it names the namespace and the
// Secret, and wraps the sentinel the host API maps to a gRPC code.
func (c *Client) wrap(op, namespace, name string, err error) error {
	var kind error
	switch {
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		kind = plugin.ErrPermissionDenied
	case apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsServiceUnavailable(err),
		apierrors.IsTooManyRequests(err), errors.Is(err, context.DeadlineExceeded), isConnection(err):
		kind = plugin.ErrUnavailable
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		kind = plugin.ErrInvalidConfig
	}
	if kind == nil {
		return fmt.Errorf("kubernetes: %s secret %q in namespace %q: %w", op, name, namespace, err)
	}
	return fmt.Errorf("kubernetes: %s secret %q in namespace %q: %w: %w", op, name, namespace, kind, err)
}

// isConnection reports whether err is a transport error, not an answer.
func isConnection(err error) bool {
	var se apierrors.APIStatus
	return !errors.As(err, &se)
}
