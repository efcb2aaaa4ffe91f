package kube

import (
	"strings"

	"sigs.k8s.io/yaml"
)

// VolumeName is the pod volume of the Secret in the operator fragments.
const VolumeName = "keyship-tls"

// FlinkMainContainer is the container of a Flink pod template that Flink
// merges its own main container into (flink-kubernetes
// KubernetesPodTemplateOptions / Constants.MAIN_CONTAINER_NAME, and the
// Flink Kubernetes Operator's podTemplate documentation).
const FlinkMainContainer = "flink-main-container"

// SparkApplication is the fragment of a Kubeflow Spark Operator
// SparkApplication (sparkoperator.k8s.io/v1beta2; api/v1beta2/
// sparkapplication_types.go, spark-operator 1.x and 2.x) that ships p:
// spec.sparkConf holds the spark.ssl.* settings, and spec.driver and
// spec.executor each mount the Secret (secrets: name, path, secretType
// Generic, the type that needs no special handling) and read the passwords
// (env with valueFrom.secretKeyRef; the older envSecretKeyRefs map is
// deprecated). The operator turns secrets into Spark's
// spark.kubernetes.*.secrets.* itself. The fragment holds no secret bytes.
func SparkApplication(p *Plan) ([]byte, error) {
	sparkConf := map[string]string{}
	for _, s := range p.Settings {
		if s.Password == nil && strings.HasPrefix(s.Key, "spark.ssl.") {
			sparkConf[s.Key] = s.Value
		}
	}
	pod := map[string]any{
		"secrets": []map[string]string{{"name": p.Name, "path": p.MountPath, "secretType": "Generic"}},
	}
	if env := p.envFromSecret(); len(env) > 0 {
		pod["env"] = env
	}
	return yaml.Marshal(map[string]any{"spec": map[string]any{"sparkConf": sparkConf, "driver": pod, "executor": pod}})
}

// FlinkDeployment is the fragment of a Flink Kubernetes Operator
// FlinkDeployment (flink.apache.org/v1beta1, operator 1.x) that ships p:
// spec.flinkConfiguration holds the security.ssl.* settings without
// passwords, and spec.podTemplate mounts the Secret read-only at
// p.MountPath in FlinkMainContainer and sets the password variables from it
// (PodTemplate; the operator merges it into the JobManager and TaskManager
// pods). The passwords reach Flink as FlinkPasswords says. The fragment holds
// no secret bytes.
func FlinkDeployment(p *Plan) ([]byte, error) {
	flinkConf := map[string]string{}
	for _, s := range p.Settings {
		if s.Password == nil && strings.HasPrefix(s.Key, "security.ssl.") {
			flinkConf[s.Key] = s.Value
		}
	}
	return yaml.Marshal(map[string]any{"spec": map[string]any{"flinkConfiguration": flinkConf, "podTemplate": p.PodTemplate(FlinkMainContainer)}})
}

// PodTemplate is a pod template (core/v1 PodTemplateSpec, as YAML/JSON
// maps) whose container named container mounts the Secret read-only at
// p.MountPath and has the password variables.
func (p *Plan) PodTemplate(container string) map[string]any {
	c := map[string]any{
		"name":         container,
		"volumeMounts": []any{map[string]any{"name": VolumeName, "mountPath": p.MountPath, "readOnly": true}},
	}
	if env := p.envFromSecret(); len(env) > 0 {
		c["env"] = env
	}
	return map[string]any{"spec": map[string]any{
		"containers": []any{c},
		"volumes":    []any{map[string]any{"name": VolumeName, "secret": map[string]any{"secretName": p.Name}}},
	}}
}

// envFromSecret is the password variables as container env entries
// (core/v1 EnvVar with valueFrom.secretKeyRef).
func (p *Plan) envFromSecret() []any {
	var env []any
	for _, k := range p.passwordKeys() {
		env = append(env, map[string]any{"name": k.Env, "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": p.Name, "key": k.Name}}})
	}
	return env
}
