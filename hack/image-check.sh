#!/usr/bin/env bash
# Checks the image that `make image` built (`make image-check`):
#   1. it runs as 65532:65532 (the image's USER, and the uid/gid of the running process);
#   2. it has no shell (`podman run --entrypoint sh` and /bin/sh fail: not found);
#   3. `flagops version` prints the version it was built with (VERSION, or the image's
#      org.opencontainers.image.version label);
#   4. `flagops serve --dir` in it, with config/samples mounted read-only, serves flags to
#      this machine through a port published on 127.0.0.1: an OFREP evaluation of
#      billing.enabled is true for an allow-listed user and false for another;
# and prints the image size. It starts one container, removes it on exit, and can be run
# again. It waits by polling with a timeout (curl --retry), never with a fixed sleep.
#
#   IMG           the image to check (flagops:dev)
#   VERSION       the version expected (default: the image's label)
#   PODMAN_FLAGS  extra flags for podman run (see hack/image-lib.sh)
#
# The container uses slirp4netns, whose port forwarder needs no iptables rule and no bridge.
set -euo pipefail
# shellcheck source=hack/image-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/image-lib.sh"

IMG="${IMG:-flagops:dev}"
TIMEOUT=90 # seconds for the server to answer

fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
ok() { printf 'ok:   %s\n' "$*"; }

podman image exists "$IMG" || fail "no image $IMG: run make image first"
run=(podman run --rm "${PODMAN_FLAGS_ARRAY[@]}")

# 1a. The image's user.
user="$(podman image inspect --format '{{.Config.User}}' "$IMG")"
[[ $user == 65532:65532 ]] || fail "image user is '$user', want 65532:65532"
ok "image user is $user"

# 2. No shell. The runtime cannot find one to execute.
for sh in sh /bin/sh /bin/bash /busybox/sh; do
	if out="$("${run[@]}" --network none --entrypoint "$sh" "$IMG" -c true 2>&1)"; then
		fail "the image runs a shell: --entrypoint $sh succeeded"
	fi
	grep -qiE 'not found|no such file' <<<"$out" || fail "--entrypoint $sh failed for another reason than a missing shell: $out"
done
ok "no shell (sh, /bin/sh, /bin/bash, /busybox/sh: not found)"

# 3. The version.
want="${VERSION:-$(podman image inspect --format '{{index .Config.Labels "org.opencontainers.image.version"}}' "$IMG")}"
[[ -n $want ]] || fail "no VERSION given and no org.opencontainers.image.version label on $IMG"
got="$("${run[@]}" --network none "$IMG" version)"
[[ $got == "flagops $want" ]] || fail "flagops version printed '$got', want 'flagops $want'"
ok "flagops version prints '$got'"

# 4. serve --dir, reached from this machine through a published 127.0.0.1 port.
flags="$(mktemp -d "${TMPDIR:-/tmp}/flagops-image-check.XXXXXX")"
ctr=""
cleanup() {
	if [[ -n $ctr ]]; then podman rm -f "$ctr" >/dev/null 2>&1 || true; fi
	rm -rf "$flags"
}
trap cleanup EXIT
# A copy readable by 65532 whatever the checkout's permissions.
cp "$REPO_ROOT"/config/samples/*.yaml "$flags/"
chmod 0755 "$flags"
chmod 0644 "$flags"/*.yaml
ctr="$(podman run -d "${PODMAN_FLAGS_ARRAY[@]}" \
	--network slirp4netns:port_handler=slirp4netns -p 127.0.0.1::8080 \
	--read-only --cap-drop ALL --security-opt no-new-privileges \
	-v "$flags:/flags:ro" "$IMG" serve --dir /flags --evaluator-bind-address 0.0.0.0:8080)"
port="$(podman port "$ctr" 8080/tcp)"
port="${port##*:}"
[[ $port =~ ^[0-9]+$ ]] || fail "no published port for 8080: '$port'"
base="http://127.0.0.1:${port}"

# The process's user, read from the host: the container runs without a user namespace.
pid="$(podman inspect --format '{{.State.Pid}}' "$ctr")"
ids="$(awk '/^Uid:|^Gid:/ {print $1, $2, $3, $4, $5}' "/proc/$pid/status")"
[[ $ids == $'Uid: 65532 65532 65532 65532\nGid: 65532 65532 65532 65532' ]] ||
	fail "the process runs as $(tr '\n' ' ' <<<"$ids"), want 65532 for every uid and gid"
ok "the running process's uid and gid are 65532"

curl_retry=(curl -fsS --max-time 5 --retry 1000 --retry-delay 1 --retry-connrefused --retry-all-errors --retry-max-time "$TIMEOUT")
"${curl_retry[@]}" -o /dev/null "$base/readyz" ||
	fail "serve did not become ready at $base/readyz within ${TIMEOUT}s; logs: $(podman logs "$ctr" 2>&1 | tail -5)"

evaluate() { # evaluate FLAG TARGETING_KEY prints the OFREP value
	curl -fsS --max-time 10 -X POST -H 'Content-Type: application/json' \
		-d "{\"context\":{\"targetingKey\":\"$2\"}}" "$base/ofrep/v1/evaluate/flags/$1" |
		grep -oE '"value":(true|false)' | cut -d: -f2
}
v="$(evaluate billing.enabled staff-ada)"
[[ $v == true ]] || fail "billing.enabled for allow-listed staff-ada is $v, want true"
v="$(evaluate billing.enabled u-1)"
[[ $v == false ]] || fail "billing.enabled for u-1 is $v, want false (kill switch)"
ok "serve --dir answers OFREP on 127.0.0.1:${port}: billing.enabled is true for staff-ada, false for u-1"

size="$(podman image inspect --format '{{.Size}}' "$IMG")"
ok "image size: ${size} bytes ($((size / 1024 / 1024)) MiB; uncompressed, as podman reports it)"
echo "PASS: $IMG"
