#!/usr/bin/env bash
# cluster.sh runs a one-node Kubernetes cluster on this machine, offline, from upstream parts:
# etcd and kube-apiserver (hack/setup-envtest.sh), kube-controller-manager, kube-scheduler,
# kube-proxy, kubelet and kubectl (built from k8s.io/kubernetes in hack/cluster/k8s),
# Debian's containerd and runc, and the CNI bridge plugin. It needs root, no internet, no
# Docker engine and no registry.
#
# Usage:
#   hack/cluster/cluster.sh up       build what is missing (cached), start, wait for the node
#   hack/cluster/cluster.sh down     stop everything it started and undo its network changes
#   hack/cluster/cluster.sh status   say whether the cluster is up
#   hack/cluster/cluster.sh env      print `export KUBECONFIG=...` and `PATH=...`
#   hack/cluster/cluster.sh import IMAGE...   copy podman images into the node's containerd
#
# Addresses: only RFC 2544 benchmark addresses, kept on this machine.
#   198.18.255.1/32 on lo     the API server's advertise address and the node's IP
#   198.18.0.0/24             pods, on the bridge flagops0 (gateway 198.18.0.1)
#   198.19.0.0/16             Services; routed to flagops0 so that kube-proxy's DNAT applies
#                             to the host's own connections
#   blackhole 198.18.0.0/15   everything else in the range goes nowhere, and a FORWARD rule
#                             drops pod packets bound for any other interface
#
# State (certificates, tokens, kubeconfigs, logs, etcd, containerd, kubelet) lives under
# FLAGOPS_CLUSTER_STATE (default /var/lib/flagops-cluster); binaries are cached under
# FLAGOPS_CLUSTER_CACHE (default ~/.cache/flagops/cluster), keyed by the build module.
set -euo pipefail

K8S_VERSION=1.36.3
NODE=flagops-node
API_IP=198.18.255.1
POD_CIDR=198.18.0.0/24
POD_GW=198.18.0.1
SVC_CIDR=198.19.0.0/16
RANGE=198.18.0.0/15
BRIDGE=flagops0
PAUSE_IMAGE=localhost/flagops-cluster/pause:1
ETCD_PORT=23790

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
state=${FLAGOPS_CLUSTER_STATE:-/var/lib/flagops-cluster}
cache_root=${FLAGOPS_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flagops/cluster}
key=$(cat "$root/hack/cluster/k8s/go.mod" "$root/hack/cluster/k8s/go.sum" "$root/hack/cluster/pause/main.go" | sha256sum | cut -c1-12)
bin="$cache_root/k8s-$K8S_VERSION-$key"
pki="$state/pki"
logs="$state/logs"
pids="$state/pids"
ctrd="$state/containerd"
sock="unix://$ctrd/containerd.sock"

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "run as root: the cluster changes addresses, routes and iptables"; }

# --- build -----------------------------------------------------------------------------

install_packages() {
	local missing=()
	for cmd in containerd:containerd runc:runc podman:podman conntrack:conntrack iptables:iptables openssl:openssl; do
		command -v "${cmd%%:*}" >/dev/null || missing+=("${cmd#*:}")
	done
	[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
}

build() {
	if [ -f "$bin/.complete" ]; then
		return
	fi
	command -v go >/dev/null || die "go is not on PATH; install Go 1.26 first"
	mkdir -p "$cache_root"
	local tmp start ldflags minor
	tmp=$(mktemp -d "$cache_root/.build.XXXXXX")
	start=$(date +%s)
	ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION"
	ldflags+=" -X k8s.io/component-base/version.gitMajor=${K8S_VERSION%%.*}"
	minor=${K8S_VERSION#*.}
	ldflags+=" -X k8s.io/component-base/version.gitMinor=${minor%%.*} -X k8s.io/component-base/version.gitTreeState=clean"
	for c in kubelet kube-controller-manager kube-scheduler kube-proxy kubectl; do
		log "building $c v$K8S_VERSION (minutes on the first run)"
		(cd "$root/hack/cluster/k8s" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" \
			-o "$tmp/$c" "k8s.io/kubernetes/cmd/$c") || { rm -rf "$tmp"; die "building $c failed"; }
	done
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$tmp/pause" ./hack/cluster/pause) ||
		{ rm -rf "$tmp"; die "building pause failed"; }
	touch "$tmp/.complete"
	rm -rf "$bin"
	mv "$tmp" "$bin"
	log "built in $(($(date +%s) - start))s: $bin"
}

# --- certificates, tokens and kubeconfigs ------------------------------------------------

gen_pki() {
	[ -f "$pki/.complete" ] && return
	rm -rf "$pki"
	mkdir -p "$pki"
	(
		cd "$pki"
		umask 077
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
			-subj "/CN=flagops-cluster-ca" 2>/dev/null
		cert() { # name, subject, extensions (or empty for a client certificate)
			openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
			printf '%s\n' "${3:-extendedKeyUsage=clientAuth}" >"$1.ext"
			openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" \
				-days 3650 -extfile "$1.ext" 2>/dev/null
			rm -f "$1.csr" "$1.ext"
		}
		cert apiserver "/CN=kube-apiserver" "subjectAltName=IP:$API_IP,IP:198.19.0.1,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth"
		cert kubelet "/CN=$NODE" "subjectAltName=IP:$API_IP,DNS:$NODE
extendedKeyUsage=serverAuth"
		cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
		openssl genrsa -out sa.key 2048 2>/dev/null
		openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
		tok() { openssl rand -hex 16; }
		{
			echo "$(tok),admin,admin,system:masters"
			echo "$(tok),system:node:$NODE,node,system:nodes"
			echo "$(tok),system:kube-controller-manager,kcm"
			echo "$(tok),system:kube-scheduler,scheduler"
			echo "$(tok),system:kube-proxy,proxy"
		} >tokens.csv
	)
	touch "$pki/.complete"
}

# kubeconfig NAME USER writes $state/NAME.kubeconfig for USER's token.
kubeconfig() {
	local token
	token=$(awk -F, -v u="$2" '$2 == u { print $1 }' "$pki/tokens.csv")
	cat >"$state/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: flagops
  cluster:
    server: https://$API_IP:6443
    certificate-authority: $pki/ca.crt
users:
- name: $2
  user:
    token: $token
contexts:
- name: flagops
  context: {cluster: flagops, user: "$2"}
current-context: flagops
EOF
	chmod 600 "$state/$1.kubeconfig"
}

# --- network -------------------------------------------------------------------------------

net_up() {
	ip addr show dev lo | grep -q " $API_IP/32" || ip addr add "$API_IP/32" dev lo
	if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
		ip link add "$BRIDGE" type bridge
	fi
	ip addr show dev "$BRIDGE" | grep -q " $POD_GW/24" || ip addr add "$POD_GW/24" dev "$BRIDGE"
	ip link set "$BRIDGE" up
	ip route replace "$SVC_CIDR" dev "$BRIDGE"
	ip route replace blackhole "$RANGE"
	# Pods reach the node, each other and Services, and nothing beyond this machine.
	iptables -N FLAGOPS-CLUSTER 2>/dev/null || iptables -F FLAGOPS-CLUSTER
	iptables -A FLAGOPS-CLUSTER -s "$RANGE" ! -o "$BRIDGE" -j DROP
	iptables -A FLAGOPS-CLUSTER -d "$RANGE" ! -o "$BRIDGE" -j DROP
	iptables -C FORWARD -j FLAGOPS-CLUSTER 2>/dev/null || iptables -I FORWARD 1 -j FLAGOPS-CLUSTER
	sysctl -qw net.ipv4.ip_forward=1
	if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
		sysctl -qw net.bridge.bridge-nf-call-iptables=1
	fi
	mkdir -p "$state/cni/net.d" "$state/cni/ipam"
	cat >"$state/cni/net.d/10-flagops.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "flagops",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GW"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$state/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

net_down() {
	ip route del "$SVC_CIDR" dev "$BRIDGE" 2>/dev/null || true
	ip route del blackhole "$RANGE" 2>/dev/null || true
	ip link del "$BRIDGE" 2>/dev/null || true
	ip addr del "$API_IP/32" dev lo 2>/dev/null || true
	while iptables -D FORWARD -j FLAGOPS-CLUSTER 2>/dev/null; do :; done
	iptables -F FLAGOPS-CLUSTER 2>/dev/null || true
	iptables -X FLAGOPS-CLUSTER 2>/dev/null || true
	# kube-proxy's chains and the CNI plugins' chains. iptables -S quotes what needs quoting,
	# so eval splits each rule back into its words.
	if [ -x "$bin/kube-proxy" ]; then
		"$bin/kube-proxy" --cleanup >/dev/null 2>&1 || true
	fi
	for table in nat filter mangle; do
		iptables -t "$table" -S 2>/dev/null | awk '/^-A / && / -j (KUBE|CNI)-/ { print }' | while read -r rule; do
			eval "iptables -t $table ${rule/-A/-D}" 2>/dev/null || true
		done
		iptables -t "$table" -S 2>/dev/null | awk '/^-N (KUBE|CNI)-/ { print $2 }' | while read -r chain; do
			iptables -t "$table" -F "$chain" 2>/dev/null || true
		done
		iptables -t "$table" -S 2>/dev/null | awk '/^-N (KUBE|CNI)-/ { print $2 }' | while read -r chain; do
			iptables -t "$table" -X "$chain" 2>/dev/null || true
		done
	done
}

# --- processes -----------------------------------------------------------------------------

# start NAME CMD... runs CMD in the background, logging to $logs/NAME.log.
start() {
	local name=$1
	shift
	if running "$name"; then
		return
	fi
	setsid "$@" >"$logs/$name.log" 2>&1 </dev/null &
	echo $! >"$pids/$name.pid"
}

running() {
	[ -f "$pids/$1.pid" ] && kill -0 "$(cat "$pids/$1.pid")" 2>/dev/null
}

stop() {
	local name=$1 pid i
	[ -f "$pids/$name.pid" ] || return 0
	pid=$(cat "$pids/$name.pid")
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		for i in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$pids/$name.pid"
}

# write_config FILE writes its standard input to FILE only when that changes FILE: kube-proxy
# exits when its configuration file is written, so a second `up` must leave it alone.
write_config() {
	local tmp
	tmp=$(mktemp "$1.XXXXXX")
	cat >"$tmp"
	if cmp -s "$tmp" "$1"; then
		rm -f "$tmp"
	else
		mv -f "$tmp" "$1"
	fi
}

# wait_for WHAT SECONDS CMD... polls CMD until it succeeds.
wait_for() {
	local what=$1 secs=$2 deadline
	shift 2
	deadline=$(($(date +%s) + secs))
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$deadline" ] || die "$what is not ready after ${secs}s; see $logs"
		sleep 0.5
	done
}

kubectl_() { "$bin/kubectl" --kubeconfig "$state/admin.kubeconfig" "$@"; }

containerd_config() {
	mkdir -p "$ctrd"
	containerd config default |
		sed -e "s#^root = .*#root = \"$ctrd/root\"#" \
			-e "s#^state = .*#state = \"$ctrd/state\"#" \
			-e "/^\[grpc\]/,/^\[/ s#^  address = .*#  address = \"$ctrd/containerd.sock\"#" \
			-e "/^\[ttrpc\]/,/^\[/ s#^  address = .*#  address = \"$ctrd/containerd-ttrpc.sock\"#" \
			-e "s#bin_dir = .*#bin_dir = \"/usr/lib/cni\"#" \
			-e "s#conf_dir = .*#conf_dir = \"$state/cni/net.d\"#" \
			-e "s#sandbox_image = .*#sandbox_image = \"$PAUSE_IMAGE\"#" \
			-e "s#restrict_oom_score_adj = .*#restrict_oom_score_adj = true#" \
			>"$ctrd/config.toml"
	grep -q "address = \"$ctrd/containerd.sock\"" "$ctrd/config.toml" || die "could not write the containerd config"
}

ctr_() { ctr --address "$ctrd/containerd.sock" -n k8s.io "$@"; }

# import_image IMAGE copies a podman image into the node's containerd.
import_image() {
	local tar
	tar=$(mktemp "$state/image.XXXXXX.tar")
	podman save -q --format oci-archive -o "$tar" "$1" >/dev/null
	ctr_ images import --base-name "${1%:*}" "$tar" >/dev/null 2>&1 || ctr_ images import "$tar" >/dev/null
	rm -f "$tar"
}

pause_image() {
	if ctr_ images ls -q 2>/dev/null | grep -qx "$PAUSE_IMAGE"; then
		return
	fi
	if ! podman image exists "$PAUSE_IMAGE"; then
		local ctx
		ctx=$(mktemp -d)
		cp "$bin/pause" "$ctx/pause"
		printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$ctx/Containerfile"
		podman build -q --network none -t "$PAUSE_IMAGE" "$ctx" >/dev/null 2>&1
		rm -rf "$ctx"
	fi
	import_image "$PAUSE_IMAGE"
}

up() {
	need_root
	local start_time
	start_time=$(date +%s)
	install_packages
	local assets
	assets=$("$root/hack/setup-envtest.sh")
	build
	mkdir -p "$state" "$logs" "$pids"
	gen_pki
	for c in admin:admin kubelet:system:node:$NODE kcm:system:kube-controller-manager \
		scheduler:system:kube-scheduler proxy:system:kube-proxy; do
		kubeconfig "${c%%:*}" "${c#*:}"
	done
	net_up

	log "starting etcd and kube-apiserver"
	start etcd "$assets/etcd" --data-dir "$state/etcd" --name flagops \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
		--initial-cluster flagops=http://127.0.0.1:23800 --unsafe-no-fsync
	start kube-apiserver "$assets/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
		--advertise-address "$API_IP" --bind-address "$API_IP" --secure-port 6443 \
		--service-cluster-ip-range "$SVC_CIDR" --authorization-mode Node,RBAC \
		--token-auth-file "$pki/tokens.csv" --client-ca-file "$pki/ca.crt" \
		--tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
		--service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
		--service-account-issuer https://kubernetes.default.svc \
		--kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
		--kubelet-client-key "$pki/apiserver-kubelet-client.key" \
		--kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP
	wait_for "kube-apiserver" 120 kubectl_ get --raw /readyz

	log "starting the controller manager, the scheduler and containerd"
	start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$state/kcm.kubeconfig" \
		--authentication-kubeconfig "$state/kcm.kubeconfig" --authorization-kubeconfig "$state/kcm.kubeconfig" \
		--service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
		--use-service-account-credentials --leader-elect=false --bind-address 127.0.0.1
	start kube-scheduler "$bin/kube-scheduler" --kubeconfig "$state/scheduler.kubeconfig" \
		--authentication-kubeconfig "$state/scheduler.kubeconfig" --authorization-kubeconfig "$state/scheduler.kubeconfig" \
		--leader-elect=false --bind-address 127.0.0.1
	containerd_config
	start containerd containerd --config "$ctrd/config.toml"
	wait_for "containerd" 60 ctr_ version
	pause_image

	log "starting kube-proxy and the kubelet"
	write_config "$state/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $state/proxy.kubeconfig
hostnameOverride: $NODE
mode: iptables
clusterCIDR: $POD_CIDR
iptables:
  masqueradeAll: true
conntrack:
  maxPerCore: 0
nodePortAddresses: ["$API_IP/32"]
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
EOF
	start kube-proxy "$bin/kube-proxy" --config "$state/kube-proxy.yaml"
	write_config "$state/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $API_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $pki/kubelet.crt
tlsPrivateKeyFile: $pki/kubelet.key
containerRuntimeEndpoint: $sock
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
serializeImagePulls: false
EOF
	start kubelet "$bin/kubelet" --config "$state/kubelet.yaml" --kubeconfig "$state/kubelet.kubeconfig" \
		--hostname-override "$NODE" --node-ip "$API_IP" --root-dir "$state/kubelet" --cert-dir "$pki"
	wait_for "the node" 180 node_ready
	# Pods need their namespace's service account, which the controller manager creates.
	wait_for "the default service account" 120 kubectl_ -n default get serviceaccount default
	log "up in $(($(date +%s) - start_time))s; use: eval \"\$($0 env)\""
}

node_ready() {
	[ "$(kubectl_ get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

down() {
	need_root
	if [ -d "$pids" ]; then
		# Pods first, while the kubelet and containerd still run, then the rest in reverse order.
		for name in kubelet kube-proxy; do stop "$name"; done
		if running containerd; then
			for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
		fi
		for name in containerd kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$name"; done
	fi
	# Leftover shims and pod mounts, and the pods' network namespaces.
	pkill -9 -f "containerd-shim-runc-v2 -namespace k8s.io -id .* -address $ctrd/containerd.sock" 2>/dev/null || true
	if [ -d "$state" ]; then
		grep -o " $state[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	fi
	for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ { print $1 }'); do
		ip netns pids "$ns" 2>/dev/null | grep -q . || ip netns del "$ns" 2>/dev/null || true
	done
	net_down
	rm -rf "$state"
	log "down"
}

status() {
	if [ -f "$state/admin.kubeconfig" ] && [ -x "$bin/kubectl" ] && node_ready 2>/dev/null; then
		echo "up: node $NODE is Ready; KUBECONFIG=$state/admin.kubeconfig"
	else
		echo "down"
		return 1
	fi
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
env)
	echo "export KUBECONFIG=$state/admin.kubeconfig"
	echo "export PATH=$bin:\$PATH"
	;;
import)
	shift
	for image in "$@"; do import_image "$image"; done
	;;
*)
	echo "usage: $0 up|down|status|env|import IMAGE..." >&2
	exit 2
	;;
esac
