#!/usr/bin/env bash
# Builds the flagops image from the shipped Dockerfile with podman (`make image`).
#
#   IMG            the tag to build (flagops:dev)
#   VERSION        what `flagops version` prints (git describe --tags --always --dirty)
#   IMAGE_BASES    public: the Dockerfile's public base images (golang, distroless/static);
#                  local: the stand-ins of hack/image-bases.sh;
#                  auto (default): public if both can be found or pulled, else local.
#   IMAGE_GOPROXY  empty (default): the builder gets the modules from this machine's Go
#                  module cache, mounted read-only as a file:// GOPROXY, so the build is
#                  offline (the script runs `go mod download` first; go.sum checks every
#                  module). Otherwise a GOPROXY value for the builder, e.g.
#                  https://proxy.golang.org,direct, which then needs the network.
#   PODMAN_FLAGS   extra flags for podman build (see hack/image-lib.sh)
set -euo pipefail
# shellcheck source=hack/image-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/image-lib.sh"
cd "$REPO_ROOT"

IMG="${IMG:-flagops:dev}"
VERSION="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
IMAGE_BASES="${IMAGE_BASES:-auto}"
IMAGE_GOPROXY="${IMAGE_GOPROXY:-}"

log() { printf '==> %s\n' "$*" >&2; }

# found_or_pulled IMAGE succeeds when IMAGE is in local storage or can be pulled now.
found_or_pulled() {
	podman image exists "$1" || timeout 600 podman pull -q "$1" >/dev/null 2>&1
}

# Older podman leaves TARGETOS and TARGETARCH unset; the binary is for this machine.
args=(--build-arg "VERSION=${VERSION}" --build-arg TARGETOS=linux --build-arg "TARGETARCH=$(go env GOARCH)")

if [[ $IMAGE_BASES == auto ]]; then
	IMAGE_BASES=local
	if found_or_pulled "$(dockerfile_arg BUILDER_IMAGE)" && found_or_pulled "$(dockerfile_arg BASE_IMAGE)"; then
		IMAGE_BASES=public
	fi
fi
case "$IMAGE_BASES" in
public)
	log "Base images: public ($(dockerfile_arg BUILDER_IMAGE), $(dockerfile_arg BASE_IMAGE))"
	;;
local)
	bases="$(hack/image-bases.sh)"
	log "Base images: local stand-ins ($(paste -sd ' ' <<<"$bases"))"
	while read -r arg; do args+=(--build-arg "$arg"); done <<<"$bases"
	;;
*)
	echo "error: IMAGE_BASES=$IMAGE_BASES: want public, local or auto" >&2
	exit 1
	;;
esac

if [[ -z $IMAGE_GOPROXY ]]; then
	go mod download
	modcache="$(go env GOMODCACHE)/cache/download"
	log "Go modules: from ${modcache} (offline)"
	# GOSUMDB=off: the modules are checked against go.sum, which lists every one of them.
	# --network none: the build needs no network, so it gets none (and podman creates no
	# bridge and no iptables rules for it).
	args+=(--network none --volume "${modcache}:/gomodproxy:ro"
		--build-arg GOPROXY=file:///gomodproxy --build-arg GOSUMDB=off)
else
	log "Go modules: GOPROXY=${IMAGE_GOPROXY}"
	args+=(--build-arg "GOPROXY=${IMAGE_GOPROXY}")
fi

log "Building ${IMG} (version ${VERSION})"
start=$(date +%s)
podman build "${PODMAN_FLAGS_ARRAY[@]}" "${args[@]}" -t "$IMG" -f Dockerfile .
log "Built ${IMG} in $(($(date +%s) - start))s; size $(podman image inspect --format '{{.Size}}' "$IMG") bytes"
