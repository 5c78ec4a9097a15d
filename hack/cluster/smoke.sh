#!/usr/bin/env bash
# smoke.sh checks the local cluster of cluster.sh end to end, as the issue that added it
# verified it by hand: it brings the cluster up, runs a 2-replica Deployment of the flagops
# image (`flagops serve --dir` over the samples, non-root, read-only root filesystem,
# seccomp RuntimeDefault) behind a Service, evaluates a flag through the Service from the
# host several times, has a pod reach the API server through the `kubernetes` Service,
# brings the cluster down and checks that nothing it made is left.
#
# Usage: hack/cluster/smoke.sh [IMAGE]   (default localhost/flagops:dev, from `make image`)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cluster="$root/hack/cluster/cluster.sh"
image=${1:-localhost/flagops:dev}
log() { printf 'smoke: %s\n' "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

podman image exists "$image" || fail "no image $image; run make image first"
start=$(date +%s)
"$cluster" up
trap '"$cluster" down' EXIT
eval "$("$cluster" env)"
log "cluster up in $(($(date +%s) - start))s"

# The image under a fixed test tag, and a client image holding only kubectl.
podman tag "$image" localhost/flagops:smoke
ctx=$(mktemp -d)
cp "$(command -v kubectl)" "$ctx/kubectl"
printf 'FROM scratch\nCOPY kubectl /kubectl\nUSER 65532:65532\nENTRYPOINT ["/kubectl"]\n' >"$ctx/Containerfile"
podman build -q --network none -t localhost/flagops-cluster/kubectl:smoke "$ctx" >/dev/null 2>&1
rm -rf "$ctx"
"$cluster" import localhost/flagops:smoke localhost/flagops-cluster/kubectl:smoke

kubectl create namespace smoke >/dev/null
args=()
for f in "$root"/config/samples/flagops_*.yaml; do args+=(--from-file "$f"); done
kubectl -n smoke create configmap flags "${args[@]}" >/dev/null
kubectl -n smoke apply -f - >/dev/null <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: flags}
spec:
  replicas: 2
  selector: {matchLabels: {app: flags}}
  template:
    metadata: {labels: {app: flags}}
    spec:
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: serve
        image: localhost/flagops:smoke
        imagePullPolicy: Never
        args: ["serve", "--dir", "/flags", "--evaluator-bind-address", "0.0.0.0:8080"]
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: ["ALL"]}}
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
        volumeMounts: [{name: flags, mountPath: /flags}]
      volumes: [{name: flags, configMap: {name: flags}}]
---
apiVersion: v1
kind: Service
metadata: {name: flags}
spec:
  selector: {app: flags}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: api-client}
spec:
  restartPolicy: Never
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: kubectl
    image: localhost/flagops-cluster/kubectl:smoke
    imagePullPolicy: Never
    args: ["get", "--raw", "/readyz"]
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: ["ALL"]}}
EOF
kubectl -n smoke rollout status deploy/flags --timeout=120s >/dev/null || fail "the Deployment did not become ready"
[ "$(kubectl -n smoke get deploy flags -o jsonpath='{.status.readyReplicas}')" = 2 ] || fail "not 2 ready replicas"

ip=$(kubectl -n smoke get svc flags -o jsonpath='{.spec.clusterIP}')
for i in $(seq 1 20); do
	out=$(curl -sS -m 5 -X POST -H 'Content-Type: application/json' -d '{"context":{"targetingKey":"user-42"}}' \
		"http://$ip/namespaces/default/ofrep/v1/evaluate/flags/beta.new_dashboard") || fail "request $i through the Service failed"
	case "$out" in
	*'"value":true'*) ;;
	*) fail "unexpected evaluation through the Service: $out" ;;
	esac
done
log "20 evaluations through Service $ip: beta.new_dashboard is true for user-42"

kubectl -n smoke wait --for=jsonpath='{.status.phase}'=Succeeded pod/api-client --timeout=120s >/dev/null ||
	fail "the pod did not reach the API server: $(kubectl -n smoke logs api-client 2>&1 | tail -3)"
[ "$(kubectl -n smoke logs api-client)" = ok ] || fail "the pod's /readyz answer: $(kubectl -n smoke logs api-client)"
log "a pod reached the API server through the kubernetes Service"

trap - EXIT
"$cluster" down
left=$( (iptables-save | grep -E 'KUBE-|CNI-|FLAGOPS-'; ip route | grep 198\\.1[89]; ip addr | grep 198\\.1[89]; ip netns list | grep cni-; grep flagops-cluster /proc/mounts) || true)
[ -z "$left" ] || fail "left behind after down: $left"
log "PASS in $(($(date +%s) - start))s"
