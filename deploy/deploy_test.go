// Package deploy_test checks the deployment files under deploy/: the
// Kubernetes objects are dry-run on the real kube-apiserver (kubetest), and
// their Role is the one the replicas' state needs; the Marathon app runs 3
// instances behind a VIP with ZooKeeper at master.mesos:2181.
package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	rbacv1client "k8s.io/client-go/kubernetes/typed/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/keyship/keyship/shipper/kube/kubetest"
	"github.com/keyship/keyship/shipper/server/replicas/kubernetes"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kubetest.Stop()
	os.Exit(code)
}

// objects is deploy/kubernetes/keyship-replicas.yaml, decoded strictly
// (an unknown field fails).
type objects struct {
	sa      *corev1.ServiceAccount
	role    *rbacv1.Role
	binding *rbacv1.RoleBinding
	deploy  *appsv1.Deployment
	svc     *corev1.Service
}

func readKubernetes(t *testing.T) objects {
	t.Helper()
	data, err := os.ReadFile("kubernetes/keyship-replicas.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var o objects
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		var into any
		switch meta.Kind {
		case "ServiceAccount":
			o.sa = &corev1.ServiceAccount{}
			into = o.sa
		case "Role":
			o.role = &rbacv1.Role{}
			into = o.role
		case "RoleBinding":
			o.binding = &rbacv1.RoleBinding{}
			into = o.binding
		case "Deployment":
			o.deploy = &appsv1.Deployment{}
			into = o.deploy
		case "Service":
			o.svc = &corev1.Service{}
			into = o.svc
		default:
			t.Fatalf("keyship-replicas.yaml: kind %q: only namespaced ServiceAccount, Role, RoleBinding, Deployment and Service belong here", meta.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, into); err != nil {
			t.Fatalf("keyship-replicas.yaml, %s: %v", meta.Kind, err)
		}
	}
	if o.sa == nil || o.role == nil || o.binding == nil || o.deploy == nil || o.svc == nil {
		t.Fatalf("keyship-replicas.yaml lacks an object: %+v", o)
	}
	return o
}

// TestKubernetesObjects checks what the file promises: 3 replicas with
// --ha kubernetes under the service account the Role is bound to, and a
// Role that is exactly the replicas' state's Rules.
func TestKubernetesObjects(t *testing.T) {
	o := readKubernetes(t)
	if !reflect.DeepEqual(o.role.Rules, kubernetes.Rules) {
		t.Errorf("the Role's rules\n%+v\ndiffer from shipper/server/replicas/kubernetes.Rules\n%+v", o.role.Rules, kubernetes.Rules)
	}
	if o.binding.RoleRef.Kind != "Role" || o.binding.RoleRef.Name != o.role.Name ||
		len(o.binding.Subjects) != 1 || o.binding.Subjects[0].Kind != "ServiceAccount" || o.binding.Subjects[0].Name != o.sa.Name {
		t.Errorf("the RoleBinding does not bind Role %s to ServiceAccount %s: %+v", o.role.Name, o.sa.Name, o.binding)
	}
	if r := o.deploy.Spec.Replicas; r == nil || *r != 3 {
		t.Errorf("Deployment replicas %v, want 3", r)
	}
	pod := o.deploy.Spec.Template.Spec
	if pod.ServiceAccountName != o.sa.Name {
		t.Errorf("pods run as %q, want the bound service account %q", pod.ServiceAccountName, o.sa.Name)
	}
	args := pod.Containers[0].Args
	for _, want := range []string{"--ha=kubernetes", "--ha-kubernetes-namespace=$(POD_NAMESPACE)", "--fetch-url=https://" + o.svc.Name + ".$(POD_NAMESPACE).svc:8443"} {
		if !slices.Contains(args, want) {
			t.Errorf("the container's args lack %s: %q", want, args)
		}
	}
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--ha-key=") }) {
		t.Error("the container's args lack --ha-key (serve refuses --ha without it)")
	}
	if !reflect.DeepEqual(o.svc.Spec.Selector, o.deploy.Spec.Template.Labels) {
		t.Errorf("the Service selects %v, the pods are labelled %v", o.svc.Spec.Selector, o.deploy.Spec.Template.Labels)
	}
}

// TestKubernetesDryRun creates every object with a server-side dry run on
// the real kube-apiserver (validation and admission, strict fields), in a
// fresh namespace.
func TestKubernetesDryRun(t *testing.T) {
	c := kubetest.Start(t)
	o := readKubernetes(t)
	ns := c.Namespace(t, "deploy")
	ctx := context.Background()
	opts := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}
	core := c.Core(t)
	rc, err := rbacv1client.NewForConfig(c.Admin)
	if err != nil {
		t.Fatal(err)
	}
	ac, err := appsv1client.NewForConfig(c.Admin)
	if err != nil {
		t.Fatal(err)
	}
	for what, create := range map[string]func() error{
		"ServiceAccount": func() error { _, err := core.ServiceAccounts(ns).Create(ctx, o.sa, opts); return err },
		"Role":           func() error { _, err := rc.Roles(ns).Create(ctx, o.role, opts); return err },
		"RoleBinding":    func() error { _, err := rc.RoleBindings(ns).Create(ctx, o.binding, opts); return err },
		"Deployment":     func() error { _, err := ac.Deployments(ns).Create(ctx, o.deploy, opts); return err },
		"Service":        func() error { _, err := core.Services(ns).Create(ctx, o.svc, opts); return err },
	} {
		if err := create(); err != nil {
			t.Errorf("server-side dry run of the %s: %v", what, err)
		}
	}
	// The dry run wrote nothing.
	if _, err := ac.Deployments(ns).Get(ctx, o.deploy.Name, metav1.GetOptions{}); err == nil {
		t.Error("the dry run created the Deployment")
	}
}

// marathonApp is the part of a Marathon app definition the test reads.
type marathonApp struct {
	ID        string `json:"id"`
	Instances int    `json:"instances"`
	Container struct {
		PortMappings []struct {
			Name          string            `json:"name"`
			ContainerPort int               `json:"containerPort"`
			Labels        map[string]string `json:"labels"`
		} `json:"portMappings"`
	} `json:"container"`
	Args        []string   `json:"args"`
	Constraints [][]string `json:"constraints"`
}

// TestMarathonApp: 3 instances on distinct agents, a VIP per served port,
// --fetch-url at the fetch port's VIP, ZooKeeper at master.mesos:2181.
func TestMarathonApp(t *testing.T) {
	data, err := os.ReadFile("marathon/keyship.json")
	if err != nil {
		t.Fatal(err)
	}
	var app marathonApp
	if err := json.Unmarshal(data, &app); err != nil {
		t.Fatalf("marathon/keyship.json: %v", err)
	}
	if app.Instances != 3 {
		t.Errorf("instances %d, want 3", app.Instances)
	}
	if !slices.ContainsFunc(app.Constraints, func(c []string) bool { return slices.Equal(c, []string{"hostname", "UNIQUE"}) }) {
		t.Error("no hostname UNIQUE constraint: two replicas may share an agent")
	}
	vips := map[string]string{} // port name -> VIP
	for _, pm := range app.Container.PortMappings {
		for k, v := range pm.Labels {
			if strings.HasPrefix(k, "VIP_") {
				vips[pm.Name] = v
			}
		}
	}
	fetchVIP, ok := vips["fetch"]
	if !ok || vips["api"] == "" {
		t.Fatalf("VIPs %v: want one for the api and one for the fetch port", vips)
	}
	// A named VIP /NAME:PORT is NAME.marathon.l4lb.thisdcos.directory:PORT.
	name, port, _ := strings.Cut(strings.TrimPrefix(fetchVIP, "/"), ":")
	for _, want := range []string{
		"--fetch-url=https://" + name + ".marathon.l4lb.thisdcos.directory:" + port,
		"--ha=zookeeper", "--ha-zookeeper-quorum=master.mesos:2181",
	} {
		if !slices.Contains(app.Args, want) {
			t.Errorf("args lack %s: %q", want, app.Args)
		}
	}
	if !slices.ContainsFunc(app.Args, func(a string) bool { return strings.HasPrefix(a, "--ha-key=") }) {
		t.Error("args lack --ha-key")
	}
}
