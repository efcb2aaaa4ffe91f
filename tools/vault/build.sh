#!/bin/sh
# build.sh builds the pinned HashiCorp Vault binary that keyship's Vault
# backend tests run as a real `vault server -dev`, unless it is already built.
#
# Output: ${XDG_CACHE_HOME:-$HOME/.cache}/keyship/vault-<version>/vault
# (the path backends/vault's tests look at after $VAULT_BIN and `vault` on PATH).
#
# A cold build downloads about 3-4 GB of Go modules and takes over ten
# minutes on a 2-core machine; later runs find the binary and return at once.
# The module's go.sum is committed, so downloads are verified with the
# default GOSUMDB settings.
set -eu

version=1.21.0
here=$(cd "$(dirname "$0")" && pwd)
out="${XDG_CACHE_HOME:-$HOME/.cache}/keyship/vault-$version/vault"

if [ -x "$out" ]; then
	echo "vault $version: $out (already built)"
	exit 0
fi

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
echo "vault $version: building into $out (cold builds take 10+ minutes) ..."
(cd "$here" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$tmp" .)
mv "$tmp" "$out"
echo "vault $version: built $out"
