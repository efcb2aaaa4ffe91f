#!/usr/bin/env bash
# install-deps.sh installs the real peers keyship's tests talk to when they
# are missing: Java 17 (keytool, javac, java), OpenSSL and curl; SnakeYAML
# (the YAML parser Flink reads its configuration with; shipper/conf's tests
# load keyship's Flink fragments through it); and Jackson databind (with core
# and annotations), which the JVM client in clients/java compiles against; and
# etcd, the store of the kube-apiserver that tools/kube builds; ZooKeeper;
# Python's grpcio and protobuf, and protoc with grpc_python_plugin. It uses
# apt-get and needs root; elsewhere it says what to install and fails.
set -euo pipefail

missing=()
for tool in keytool javac java; do
	command -v "$tool" >/dev/null 2>&1 || { missing+=(openjdk-17-jdk-headless); break; }
done
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
[ -f /usr/share/java/snakeyaml.jar ] || missing+=(libyaml-snake-java)
# Jackson, as Spark and Flink ship it; clients/java compiles against it.
[ -f /usr/share/java/jackson-databind.jar ] || missing+=(libjackson2-databind-java)
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
# ZooKeeper 3.8, the engine `keyship serve --ha zookeeper` keeps its replicas'
# state in; the HA tests start a 3-node ensemble of it on loopback ports.
[ -f /usr/share/zookeeper/bin/zkServer.sh ] || [ -d /usr/share/zookeeper ] || missing+=(zookeeper)
# gRPC and protobuf for Python: examples/python-backend, the plugin written in
# another language that `keyship plugin test` runs against in make test.
/usr/bin/python3 -c 'import grpc, google.protobuf' >/dev/null 2>&1 || missing+=(python3-grpcio python3-protobuf)
# protoc and grpc_python_plugin of the same releases, for `make generate`'s
# Python stubs (Debian's python3-grpc-tools is 1.14, whose protoc writes code
# that python3-protobuf 4.21 refuses).
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
command -v grpc_python_plugin >/dev/null 2>&1 || missing+=(protobuf-compiler-grpc)

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps: need ${missing[*]}; install them (apt-get install ${missing[*]}) and rerun" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
