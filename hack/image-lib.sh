# shellcheck shell=bash
# Shared by the hack/image-*.sh scripts (sourced, not run): the repository root, the pinned
# versions and base images read from the Dockerfile, and podman's flags on this machine.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# dockerfile_arg NAME prints the default of `ARG NAME=...` in the Dockerfile, with
# ${GO_VERSION} expanded: the Dockerfile is the one place the versions are written.
dockerfile_arg() {
	local line value
	line="$(grep -m1 -E "^ARG $1=" "$REPO_ROOT/Dockerfile")" || {
		echo "error: no 'ARG $1=' in $REPO_ROOT/Dockerfile" >&2
		return 1
	}
	value="${line#ARG "$1"=}"
	# shellcheck disable=SC2016 # the literal text ${GO_VERSION}
	if [[ $value == *'${GO_VERSION}'* ]]; then
		value="${value//'${GO_VERSION}'/$(dockerfile_arg GO_VERSION)}"
	fi
	printf '%s\n' "$value"
}

# PODMAN_FLAGS are added to every `podman build` and `podman run`. The default suits this
# project's CI machines (cgroup v1 VMs where crun fails): runc, with explicit ulimits.
if [[ -z ${PODMAN_FLAGS+set} ]]; then
	PODMAN_FLAGS=""
	if command -v runc >/dev/null; then
		PODMAN_FLAGS="--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
	fi
fi
# shellcheck disable=SC2034 # used by the scripts that source this file
read -r -a PODMAN_FLAGS_ARRAY <<<"$PODMAN_FLAGS"

command -v podman >/dev/null || {
	echo "error: podman is required (Debian: apt-get install podman runc)" >&2
	exit 1
}
