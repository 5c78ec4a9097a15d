#!/usr/bin/env bash
# Builds local stand-ins for the Dockerfile's two public base images, for machines that
# reach no container registry, and prints them as build arguments:
#
#   BUILDER_IMAGE=localhost/flagops-standin-golang:1.26.11   (for golang:1.26.11)
#   BASE_IMAGE=localhost/flagops-standin-static:nonroot       (for gcr.io/distroless/static:nonroot)
#
# The builder is a minimal Debian root filesystem (debootstrap --variant=minbase from the
# Debian mirror, with ca-certificates) plus the Go toolchain of the pinned release, laid out
# as in the golang image: GOROOT /usr/local/go, GOPATH /go, GOTOOLCHAIN=local. The toolchain
# is the one `go` itself downloads for GOTOOLCHAIN=go<version> (golang.org/toolchain from
# the Go module proxy, checked against the checksum database), so it needs only the proxy.
#
# The static base is FROM scratch with what the flagops binary uses of distroless/static:
# the CA certificates (from the builder's Debian ca-certificates), /etc/passwd and
# /etc/group with root, nobody and nonroot (65532), /home/nonroot, /tmp (1777), USER
# 65532:65532. No tzdata: the binary loads no time zone (it has no time.LoadLocation).
#
# Each image is built once and reused while it exists (podman image exists); FORCE=1
# rebuilds both. Needs root (debootstrap), podman, Go, and the Debian mirror.
#   DEBIAN_SUITE   Debian release of the builder (bookworm)
#   DEBIAN_MIRROR  http://deb.debian.org/debian
set -euo pipefail
# shellcheck source=hack/image-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/image-lib.sh"

GO_VERSION="$(dockerfile_arg GO_VERSION)"
BUILDER="localhost/flagops-standin-golang:${GO_VERSION}"
BASE="localhost/flagops-standin-static:nonroot"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

log() { printf '%s\n' "$*" >&2; }

work="$(mktemp -d "${TMPDIR:-/var/tmp}/flagops-image-bases.XXXXXX")"
trap 'rm -rf "$work"' EXIT

build_builder() {
	command -v debootstrap >/dev/null || {
		log "error: debootstrap is required for the builder stand-in (apt-get install debootstrap)"
		exit 1
	}
	[[ $(id -u) == 0 ]] || { log "error: debootstrap needs root"; exit 1; }
	local goroot rootfs="$work/builder"
	log "Getting the go${GO_VERSION} toolchain"
	goroot="$(cd "$work" && GOTOOLCHAIN="go${GO_VERSION}" go env GOROOT)"
	[[ -x $goroot/bin/go ]] || { log "error: no go${GO_VERSION} toolchain at $goroot"; exit 1; }

	log "Bootstrapping Debian ${DEBIAN_SUITE} (minbase) from ${DEBIAN_MIRROR}"
	debootstrap --variant=minbase --include=ca-certificates \
		"$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 || {
		tail -20 "$work/debootstrap.log" >&2
		exit 1
	}
	rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
	mkdir -p "$rootfs/usr/local"
	cp -a "$goroot" "$rootfs/usr/local/go"
	chmod -R u+w "$rootfs/usr/local/go"
	install -d -m 1777 "$rootfs/go"

	log "Importing ${BUILDER}"
	tar --numeric-owner -C "$rootfs" -cf - . | podman import -q \
		--change "ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
		--change "ENV GOPATH=/go" \
		--change "ENV GOTOOLCHAIN=local" \
		--change "WORKDIR /go" \
		--change "CMD [\"bash\"]" \
		--message "flagops stand-in for golang:${GO_VERSION}: Debian ${DEBIAN_SUITE} minbase and go${GO_VERSION}" \
		- "$BUILDER" >/dev/null
}

build_base() {
	local rootfs="$work/static"
	install -d -m 0755 "$rootfs/etc/ssl/certs"
	install -d -m 1777 "$rootfs/tmp"
	install -d -m 0700 -o 65532 -g 65532 "$rootfs/home/nonroot"
	install -d -m 0700 "$rootfs/root"
	cat >"$rootfs/etc/passwd" <<-'EOT'
		root:x:0:0:root:/root:/sbin/nologin
		nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
		nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
	EOT
	cat >"$rootfs/etc/group" <<-'EOT'
		root:x:0:
		nobody:x:65534:
		tty:x:5:
		staff:x:50:
		nonroot:x:65532:
	EOT
	chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"
	# The certificates Debian's ca-certificates generated in the builder stand-in.
	podman run --rm "${PODMAN_FLAGS_ARRAY[@]}" --network none --entrypoint cat "$BUILDER" \
		/etc/ssl/certs/ca-certificates.crt >"$rootfs/etc/ssl/certs/ca-certificates.crt"
	[[ -s $rootfs/etc/ssl/certs/ca-certificates.crt ]] || { log "error: no CA certificates in $BUILDER"; exit 1; }
	chmod 0644 "$rootfs/etc/ssl/certs/ca-certificates.crt"

	log "Importing ${BASE}"
	tar --numeric-owner -C "$rootfs" -cf - . | podman import -q \
		--change "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin" \
		--change "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" \
		--change "USER 65532:65532" \
		--change "WORKDIR /home/nonroot" \
		--message "flagops stand-in for gcr.io/distroless/static:nonroot" \
		- "$BASE" >/dev/null
}

if [[ ${FORCE:-0} == 1 ]]; then
	podman rmi -f "$BASE" "$BUILDER" >/dev/null 2>&1 || true
fi
if podman image exists "$BUILDER"; then
	log "Reusing ${BUILDER}"
else
	build_builder
fi
if podman image exists "$BASE"; then
	log "Reusing ${BASE}"
else
	build_base
fi
printf 'BUILDER_IMAGE=%s\nBASE_IMAGE=%s\n' "$BUILDER" "$BASE"
