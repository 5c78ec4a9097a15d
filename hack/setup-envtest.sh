#!/usr/bin/env bash
# setup-envtest.sh builds the test control plane (kube-apiserver and etcd) from Go modules
# and prints the directory that holds them, for use as KUBEBUILDER_ASSETS.
#
# setup-envtest downloads release binaries from hosts that air-gapped machines cannot reach.
# This script needs only the Go module proxy (or a warm module cache):
#   - kube-apiserver comes from k8s.io/kubernetes, built in the module hack/envtest/apiserver;
#   - etcd comes from go.etcd.io/etcd/server/v3/etcdmain, built in hack/envtest/etcd.
#
# The result is cached outside the repository, keyed by version and by the build modules'
# go.sum, under ${FLAGOPS_ENVTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flagops/envtest}.
# A second run only checks the cache and takes well under a second.
#
# Usage: hack/setup-envtest.sh [--force]
# Stdout: the assets directory, and nothing else. Progress goes to stderr.
set -euo pipefail

K8S_VERSION=1.36.3
ETCD_VERSION=3.6.16

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mods="$root/hack/envtest"
cache_root=${FLAGOPS_ENVTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flagops/envtest}

# The cache key covers the module files as well as the versions, so that a change to either
# build module (a replace, a bumped dependency) produces a fresh build instead of a stale hit.
key=$(cat "$mods/apiserver/go.mod" "$mods/apiserver/go.sum" "$mods/etcd/go.mod" "$mods/etcd/go.sum" \
	| sha256sum | cut -c1-12)
dir="$cache_root/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-$key"

log() { printf 'setup-envtest: %s\n' "$*" >&2; }

complete() {
	[ -x "$1/kube-apiserver" ] && [ -x "$1/etcd" ] && [ -f "$1/.complete" ]
}

if [ "${1:-}" != "--force" ] && complete "$dir"; then
	echo "$dir"
	exit 0
fi

command -v go >/dev/null || { log "go is not on PATH; install Go 1.26 first"; exit 1; }

mkdir -p "$cache_root"
# Build into a temporary sibling and rename it into place, so that an interrupted build
# never leaves a directory that looks complete.
tmp=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

export CGO_ENABLED=0 GOFLAGS=-mod=mod

start=$(date +%s)
log "building etcd v$ETCD_VERSION (under a minute on first run)"
(cd "$mods/etcd" && go build -trimpath -ldflags '-s -w' -o "$tmp/etcd" .)

log "building kube-apiserver v$K8S_VERSION (about 4 minutes on first run)"
ldflags="-s -w"
ldflags+=" -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION"
ldflags+=" -X k8s.io/component-base/version.gitMajor=${K8S_VERSION%%.*}"
minor=${K8S_VERSION#*.}
ldflags+=" -X k8s.io/component-base/version.gitMinor=${minor%%.*}"
ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
(cd "$mods/apiserver" && go build -trimpath -ldflags "$ldflags" -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)

"$tmp/etcd" --version >/dev/null || { log "the built etcd does not run"; exit 1; }
"$tmp/kube-apiserver" --version >/dev/null || { log "the built kube-apiserver does not run"; exit 1; }
touch "$tmp/.complete"

rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
log "built in $(($(date +%s) - start))s: $dir"
echo "$dir"
