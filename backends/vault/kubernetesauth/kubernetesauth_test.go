// Package kubernetesauth_test runs the Vault backend's kubernetes auth
// method against the real thing: a real Vault's auth/kubernetes engine
// reviews, through the TokenReview API of a real kube-apiserver, the
// service account token a keyship replica in a pod would present.
package kubernetesauth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	rbacv1client "k8s.io/client-go/kubernetes/typed/rbac/v1"

	"github.com/keyship/keyship/backends/vault"
	"github.com/keyship/keyship/backends/vault/vaulttest"
	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/shipper/kube/kubetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kubetest.Stop()
	os.Exit(code)
}

// serviceAccountToken creates service account name in ns and returns a
// token for it from the TokenRequest API (what the kubelet mounts at
// /var/run/secrets/kubernetes.io/serviceaccount/token).
func serviceAccountToken(t *testing.T, c *kubetest.Cluster, ns, name string) string {
	t.Helper()
	ctx := context.Background()
	core := c.Core(t)
	if _, err := core.ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ttl := int64(600) // the API's minimum
	tr, err := core.ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s/%s: %v", ns, name, err)
	}
	return tr.Status.Token
}

func tokenFile(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKubernetesLogin(t *testing.T) {
	v := vaulttest.Start(t, vaulttest.Options{})
	c := kubetest.Start(t)
	ctx := context.Background()
	ns := c.Namespace(t, "vault-auth")

	// Vault's reviewer: a service account allowed to create TokenReviews
	// (the system:auth-delegator ClusterRole; Vault's setup, not keyship's).
	reviewer := serviceAccountToken(t, c, ns, "vault-reviewer")
	rc, err := rbacv1client.NewForConfig(c.Admin)
	if err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-vault-reviewer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "vault-reviewer", Namespace: ns}},
	}
	if _, err := rc.ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.ClusterRoleBindings().Delete(ctx, crb.Name, metav1.DeleteOptions{}) })

	root := v.Client(t)
	if err := root.Sys().EnableAuthWithOptions("kubernetes", &api.EnableAuthOptions{Type: "kubernetes"}); err != nil {
		t.Fatal(err)
	}
	write := func(path string, data map[string]any) {
		t.Helper()
		if _, err := root.Logical().Write(path, data); err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
	}
	write("auth/kubernetes/config", map[string]any{
		"kubernetes_host":    c.Server,
		"kubernetes_ca_cert": string(c.Admin.TLSClientConfig.CAData),
		"token_reviewer_jwt": reviewer,
		// Not in a pod: no local service account files to read.
		"disable_local_ca_jwt": true,
	})
	if err := root.Sys().PutPolicy("ha-key-read", `path "secret/data/keyship/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	write("auth/kubernetes/role/keyship", map[string]any{
		"bound_service_account_names":      "keyship",
		"bound_service_account_namespaces": ns,
		"token_policies":                   "ha-key-read",
		"token_ttl":                        "1h",
	})
	if _, err := root.KVv2("secret").Put(ctx, "keyship/ha-key", map[string]any{"key": "0123456789abcdef0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}

	login := func(token string) plugin.Result {
		t.Helper()
		b := vault.NewWithLogger(hclog.NewNullLogger())
		if err := b.Configure(ctx, map[string]string{
			"address": v.Addr, "auth.method": vault.MethodKubernetes, "auth.role": "keyship", "auth.jwt_file": tokenFile(t, token),
		}); err != nil {
			t.Fatalf("Configure: %v", err)
		}
		defer func() { _ = b.Close() }()
		res, err := b.Get(ctx, []plugin.Ref{{Path: "secret/keyship/ha-key", Field: "key"}})
		if err != nil {
			t.Fatalf("Get: batch error %v", err)
		}
		return res[0]
	}

	// The replica's service account: Vault reviews its token with the API
	// server and lets it read the ha key.
	keyship := serviceAccountToken(t, c, ns, "keyship")
	if r := login(keyship); r.Err != nil || string(r.Secret.Data) != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("read through a kubernetes login: %v", r.Err)
	}
	// Another service account of the namespace is refused, and the error
	// does not quote its token.
	other := serviceAccountToken(t, c, ns, "other")
	r := login(other)
	if !errors.Is(r.Err, plugin.ErrPermissionDenied) {
		t.Fatalf("login as another service account: %v, want ErrPermissionDenied", r.Err)
	}
	if strings.Contains(r.Err.Error(), other) {
		t.Error("the error quotes the service account token")
	}
	// A token the API server did not sign is refused by its review.
	forged := keyship[:strings.LastIndexByte(keyship, '.')+1] + "AAAA"
	if r := login(forged); !errors.Is(r.Err, plugin.ErrPermissionDenied) {
		t.Fatalf("login with a forged token: %v, want ErrPermissionDenied", r.Err)
	}
}
