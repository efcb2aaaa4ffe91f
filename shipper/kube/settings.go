package kube

import (
	"fmt"
	"strings"

	"github.com/keyship/keyship/shipper/conf"
)

// consumerSettings are the settings that make the consumer's pods mount the
// Secret at p.MountPath and see its passwords as environment variables:
//
// Spark on Kubernetes (Spark 3.x and 4.x; resource-managers/kubernetes/core/
// src/main/scala/org/apache/spark/deploy/k8s/Config.scala,
// KUBERNETES_{DRIVER,EXECUTOR}_SECRETS_PREFIX and
// KUBERNETES_{DRIVER,EXECUTOR}_SECRET_KEY_REF_PREFIX; applied by
// features/MountSecretsFeatureStep.scala and EnvSecretsFeatureStep.scala,
// whose key ref is "name:key", split at ':' into exactly two parts):
//
//	spark.kubernetes.driver.secrets.NAME=/mount/path
//	spark.kubernetes.executor.secrets.NAME=/mount/path
//	spark.kubernetes.driver.secretKeyRef.KEYSHIP_KEYSTORE_PASSWORD=NAME:keystore.password
//	spark.kubernetes.executor.secretKeyRef.KEYSHIP_KEYSTORE_PASSWORD=NAME:keystore.password
//	... (key.password, truststore.password)
//
// followed by conf.Spark's spark.ssl.* settings, whose passwords are
// ${env:KEYSHIP_*_PASSWORD}: Spark's SSLOptions reads them with
// getWithSubstitution, in the driver and in each executor, from the
// variables above.
//
// Flink native Kubernetes (Flink 1.13 to 2.x; flink-kubernetes/src/main/java/
// org/apache/flink/kubernetes/configuration/KubernetesConfigOptions.java,
// KUBERNETES_SECRETS "foo:/opt/secrets-foo,bar:/opt/secrets-bar" and
// KUBERNETES_ENV_SECRET_KEY_REF "env:FOO_ENV,secret:foo_secret,key:foo_key;env:...";
// applied to the JobManager and TaskManager pods by MountSecretsDecorator and
// EnvSecretsDecorator):
//
//	kubernetes.secrets: NAME:/mount/path
//	kubernetes.env.secretKeyRef: env:KEYSHIP_KEYSTORE_PASSWORD,secret:NAME,key:keystore.password;...
//
// followed by conf.Flink's security.ssl.* settings. Flink reads passwords
// only from its configuration, never from the environment (see FlinkPasswords).
//
// libprocess gets conf.Libprocess's settings alone: nothing in Mesos reads a
// Kubernetes setting.
func consumerSettings(p *Plan) []conf.Setting {
	var out []conf.Setting
	switch p.Consumer {
	case conf.ConsumerSpark:
		for _, task := range []string{"driver", "executor"} {
			out = append(out, conf.Setting{Key: "spark.kubernetes." + task + ".secrets." + p.Name, Value: p.MountPath})
		}
		for _, task := range []string{"driver", "executor"} {
			for _, k := range p.passwordKeys() {
				out = append(out, conf.Setting{Key: "spark.kubernetes." + task + ".secretKeyRef." + k.Env, Value: p.Name + ":" + k.Name})
			}
		}
	case conf.ConsumerFlink:
		out = append(out, conf.Setting{Key: "kubernetes.secrets", Value: p.Name + ":" + p.MountPath})
		var refs []string
		for _, k := range p.passwordKeys() {
			refs = append(refs, fmt.Sprintf("env:%s,secret:%s,key:%s", k.Env, p.Name, k.Name))
		}
		if len(refs) > 0 {
			out = append(out, conf.Setting{Key: "kubernetes.env.secretKeyRef", Value: strings.Join(refs, ";")})
		}
	}
	return out
}

// passwordKeys are the Plan's password keys, in the order keystore, key,
// truststore.
func (p *Plan) passwordKeys() []Key {
	var out []Key
	for _, name := range []string{KeyKeystorePassword, KeyKeyPassword, KeyTruststorePassword} {
		if k := p.Key(name); k != nil {
			out = append(out, *k)
		}
	}
	return out
}

// FlinkPasswords says how the store passwords reach Flink on Kubernetes,
// for the comment above the printed settings.
//
// Flink reads security.ssl.*-password only from its configuration: it has
// no substitution of environment variables or files. In native Kubernetes
// mode the JobManager copies the submitting client's configuration into the
// ConfigMap flink-config-<cluster-id>, mounts it read-only, and passes
// JobManager-only -D values on to the TaskManager pods' arguments; so a
// password given to Flink in the usual ways ends up in a ConfigMap or a pod
// spec, readable by whoever can read those. keyship puts it in neither: the
// Secret carries conf.FlinkSecretFile (every security.ssl.* setting with the
// passwords, pointing at the mount path), mounted with the stores, and the
// passwords as keys (exposed as KEYSHIP_*_PASSWORD by
// kubernetes.env.secretKeyRef). The image's entrypoint (kubernetes.entry.path)
// merges the fragment into a writable copy of the configuration before Flink
// starts, e.g.
//
//	cp -rL "$FLINK_CONF_DIR" /tmp/flink-conf
//	cat /etc/keyship/tls/flink-ssl.yaml >> /tmp/flink-conf/config.yaml   # flink-conf.yaml before 1.19
//	export FLINK_CONF_DIR=/tmp/flink-conf
//	exec /docker-entrypoint.sh "$@"
//
// With the Flink Kubernetes Operator the same applies (its flinkConfiguration
// lands in the same ConfigMap). Where a readable ConfigMap is acceptable,
// the fragment's lines can instead go into the submitting client's
// configuration.
func FlinkPasswords(p *Plan) string {
	return fmt.Sprintf("Flink reads passwords only from its configuration: they are not in these settings; "+
		"Secret %s carries them in %s/%s (mounted by kubernetes.secrets), which the image's entrypoint appends to a writable copy of "+
		"the configuration before Flink starts (native Kubernetes mounts the configuration read-only from a ConfigMap)",
		p.Name, p.MountPath, conf.FlinkSecretFile)
}
