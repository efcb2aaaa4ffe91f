#!/bin/sh
# build.sh builds the pinned kube-apiserver that keyship's Kubernetes tests
# apply Secrets to, unless it is already built.
#
# Output: ${XDG_CACHE_HOME:-$HOME/.cache}/keyship/kube-apiserver-<version>/kube-apiserver
# (the path shipper/kube/kubetest looks at after $KUBE_APISERVER_BIN and
# kube-apiserver on PATH).
#
# A cold build downloads about a minute of Go modules and compiles for 6+
# minutes on a 2-core machine (more when the machine is shared); later runs
# find the binary and return at once. The module's go.sum is committed, so
# downloads are verified with the default GOSUMDB settings.
set -eu

version=1.37.2
here=$(cd "$(dirname "$0")" && pwd)
out="${XDG_CACHE_HOME:-$HOME/.cache}/keyship/kube-apiserver-$version/kube-apiserver"

if [ -x "$out" ]; then
	echo "kube-apiserver $version: $out (already built)"
	exit 0
fi

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
echo "kube-apiserver $version: building into $out (cold builds take 7+ minutes) ..."
(cd "$here" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$tmp" .)
mv "$tmp" "$out"
echo "kube-apiserver $version: built $out"
