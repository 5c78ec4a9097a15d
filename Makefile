# flagops Makefile. `make help` lists the targets.

# Image to build and deploy, and the version `flagops version` prints in it.
IMG ?= flagops:dev
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# Pinned tool versions. Tools are installed into ./bin by `go install`, so the only
# prerequisite on a new machine is Go itself.
CONTROLLER_TOOLS_VERSION ?= v0.21.0
KUSTOMIZE_VERSION ?= v5.8.1
# kube-api-linter has no tagged versions: this pseudo-version is commit 092fe0c72997
# (2026-07-16). Its own entry point, cmd/golangci-lint-kube-api-linter, is golangci-lint v2
# (the version in the linter's go.mod, v2.5.0) with the linter registered as a module plugin:
# the binary `golangci-lint custom` builds, installed by `go install` from the module proxy
# instead of a git clone of golangci-lint, and with its own go.mod, not ours.
KUBE_API_LINTER_VERSION ?= v0.0.0-20260716143926-092fe0c72997
KUBE_SCORE_VERSION ?= v1.20.0
# helm, built from helm.sh/helm/v3 on the module proxy (its own module graph, not ours): the
# chart's tests run `helm lint` and `helm template` with it (docs/deploy.md#helm).
HELM_VERSION ?= v3.21.4
# The Kubernetes version helm renders for: a helm built by go install assumes 1.20, which the
# chart's kubeVersion (>= 1.32) refuses. That of the test control plane.
HELM_KUBE_VERSION ?= 1.36.3
# make lint-go: staticcheck, errcheck and ineffassign, each a small build of its own (golangci-lint
# with the same linters takes about four times as long to build and to run; docs/development.md).
STATICCHECK_VERSION ?= v0.8.2
ERRCHECK_VERSION ?= v1.30.0
INEFFASSIGN_VERSION ?= v0.2.0
# govulncheck and its database are pinned in hack/govulncheck.sh.
# krew, built from sigs.k8s.io/krew on the module proxy (its own module graph, not ours): the
# krew manifest's test (hack/krewgen) installs the plugin with it, offline (docs/kubectl-plugin.md).
# Not KREW_VERSION, which is the version the manifest describes.
KREW_CLI_VERSION ?= v0.4.3

LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)
KUBE_API_LINTER ?= $(LOCALBIN)/golangci-lint-kube-api-linter-$(KUBE_API_LINTER_VERSION)
KUBE_SCORE ?= $(LOCALBIN)/kube-score-$(KUBE_SCORE_VERSION)
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)
KREW ?= $(LOCALBIN)/kubectl-krew-$(KREW_CLI_VERSION)
# kubectl, built from k8s.io/kubernetes through the local cluster's module (hack/cluster/k8s),
# with the flags hack/cluster/cluster.sh uses, so that the cluster's build reuses the cache:
# the kubectl plugin's tests run it (plugin discovery and argument passing).
KUBECTL_VERSION ?= 1.36.3
KUBECTL ?= $(LOCALBIN)/kubectl-v$(KUBECTL_VERSION)
STATICCHECK ?= $(LOCALBIN)/staticcheck-$(STATICCHECK_VERSION)
ERRCHECK ?= $(LOCALBIN)/errcheck-$(ERRCHECK_VERSION)
INEFFASSIGN ?= $(LOCALBIN)/ineffassign-$(INEFFASSIGN_VERSION)

GO ?= go
# go.mod's toolchain line names the lowest Go release without the standard-library
# vulnerabilities that `make vuln` reports in earlier ones. A machine whose go env says
# GOTOOLCHAIN=local ignores that line; auto lets the go command switch to that release
# (downloaded once from the Go module proxy, checked against the checksum database) when the
# Go on PATH is older. An explicit GOTOOLCHAIN in the environment wins.
export GOTOOLCHAIN ?= auto
# Packages under test: everything in the main module. The modules under hack/envtest are
# build recipes for the test control plane and are not part of it.
PKGS ?= ./...
# The Go SDK (sdk/go, docs/sdk.md) is a module of its own, so that applications using it do
# not pull in the main module's dependencies, and so is its in-process provider
# (sdk/go/inprocess), which needs the evaluator core: fmt, vet, tidy, test, bench and lint-go
# run on the packages SDK_PKGS of each (empty leaves them out).
SDK_PKGS ?= ./...
SDK_MODULES := sdk/go sdk/go/inprocess
# $(call sdk-run,command) runs command in each SDK module, unless SDK_PKGS is empty.
sdk-run = $(if $(SDK_PKGS),$(foreach m,$(SDK_MODULES),(cd $(m) && $(1)) &&) true)
# Extra flags for `go test`, e.g. TESTFLAGS='-run TestFoo -v'.
TESTFLAGS ?=
# Benchmark selection and time for `make bench`.
BENCH ?= .
BENCHTIME ?= 1s

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs, RBAC and webhook configurations from the API types and kubebuilder markers.
	$(CONTROLLER_GEN) rbac:roleName=flagops-manager-role crd:allowDangerousTypes=false webhook paths="./api/..." paths="./controllers/..." paths="./internal/webhook/..." paths="./internal/certs/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac output:webhook:artifacts:config=config/webhook

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods for the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run gofmt on the code.
	$(GO) fmt ./...
	$(call sdk-run,$(GO) fmt $(SDK_PKGS))

.PHONY: vet
vet: ## Run go vet on the code.
	$(GO) vet ./...
	$(call sdk-run,$(GO) vet $(SDK_PKGS))

# Build tags to lint with: e2e adds the end-to-end suite to the default build. ineffassign
# has no -tags flag and takes them from GOFLAGS.
LINT_TAGS ?= e2e

.PHONY: lint
lint: lint-go lint-api ## Run every linter: lint-go and lint-api.

.PHONY: lint-go
lint-go: staticcheck errcheck ineffassign ## Lint all Go code: staticcheck (its default checks), errcheck (unchecked errors) and ineffassign.
	$(STATICCHECK) -tags '$(LINT_TAGS)' $(PKGS)
	$(ERRCHECK) -tags '$(LINT_TAGS)' $(PKGS)
	GOFLAGS='$(strip $(shell $(GO) env GOFLAGS) -tags=$(LINT_TAGS))' $(INEFFASSIGN) $(PKGS)
	$(call sdk-run,$(STATICCHECK) $(SDK_PKGS) && $(ERRCHECK) $(SDK_PKGS) && $(INEFFASSIGN) $(SDK_PKGS))

.PHONY: lint-api
lint-api: kube-api-linter ## Check the API types against the Kubernetes API conventions (kube-api-linter; settings and reasons in hack/kube-api-linter.yaml).
	$(KUBE_API_LINTER) run -c hack/kube-api-linter.yaml ./api/...

.PHONY: vuln
vuln: ## Scan for known vulnerabilities that the code reaches, offline (hack/govulncheck.sh: pinned govulncheck and database, cached).
	hack/govulncheck.sh $(PKGS)

.PHONY: kube-score
kube-score: kustomize kube-score-bin helm ## Check config/default, and the chart rendered with its default values, with kube-score; a finding fails unless fixed or ignored with a reason (kube-score/ignore).
	$(KUSTOMIZE) build config/default | $(KUBE_SCORE) score --output-format ci --exit-one-on-warning - \
		| { grep -v '^\[OK\]\|^\[SKIPPED\]' || echo "kube-score: config/default: no findings"; }
	$(HELM) template flagops charts/flagops --namespace flagops-system --kube-version $(HELM_KUBE_VERSION) \
		| $(KUBE_SCORE) score --output-format ci --exit-one-on-warning - \
		| { grep -v '^\[OK\]\|^\[SKIPPED\]' || echo "kube-score: charts/flagops: no findings"; }

.PHONY: tidy
tidy: ## Tidy go.mod and go.sum (and the SDK modules').
	$(GO) mod tidy
	$(foreach m,$(SDK_MODULES),(cd $(m) && $(GO) mod tidy) &&) true

.PHONY: chart
chart: manifests kustomize ## Generate the Helm chart's templates, values.yaml and Chart.yaml (charts/flagops) from config/default.
	$(GO) run ./hack/chartgen chart -kustomize $(KUSTOMIZE)

.PHONY: verify
verify: manifests generate fmt tidy kustomize chart krew-manifest ## Regenerate everything (CRDs, RBAC, webhooks, DeepCopy, the chart, the krew manifest), check the kustomizations build, and fail if the tree is dirty.
	@for k in config/default config/overlays/certmanager config/crd config/samples config/samples/sidecar-app config/evaluator config/console config/argocd; do \
		$(KUSTOMIZE) build $$k >/dev/null || { echo "error: kustomize build $$k failed" >&2; exit 1; }; \
	done
	@if [ -n "$$(git status --porcelain)" ]; then \
		echo "error: the tree is dirty after 'make manifests generate fmt tidy chart krew-manifest'; generated files are stale:" >&2; \
		git status --porcelain >&2; \
		git --no-pager diff --stat >&2; \
		exit 1; \
	fi

# The console's vendored htmx (internal/console/static/htmx.min.js, recorded in htmx.txt).
HTMX_VERSION ?= 2.0.11

.PHONY: htmx
htmx: ## Refresh the console's vendored htmx from npm (HTMX_VERSION), recording its version and sha256 in internal/console/static/htmx.txt.
	hack/vendor-htmx.sh $(HTMX_VERSION)

.PHONY: console-screenshots
console-screenshots: ## Write the console's screenshots, docs/images/console-*.png, from its browser test on envtest (needs chromium).
	@assets="$$(hack/setup-envtest.sh)"; KUBEBUILDER_ASSETS="$$assets" CONSOLE_SCREENSHOTS=1 $(GO) test ./internal/console/ -run 'TestConsoleInBrowser' -count=1

.PHONY: envtest
envtest: ## Build (once, then cached) the test control plane and print its directory.
	@hack/setup-envtest.sh

# The OFREP client test runs the OpenFeature JavaScript SDK (test/ofrep); its npm packages are
# installed from the lock file once, and again only when the lock file changes.
OFREP_HARNESS := test/ofrep/node_modules/.package-lock.json
$(OFREP_HARNESS): test/ofrep/package-lock.json
	cd test/ofrep && npm ci --no-audit --no-fund --loglevel=error
# The same for the OFREP web provider test (test/ofrepweb).
OFREPWEB_HARNESS := test/ofrepweb/node_modules/.package-lock.json
$(OFREPWEB_HARNESS): test/ofrepweb/package-lock.json
	cd test/ofrepweb && npm ci --no-audit --no-fund --loglevel=error
# The same for the React example (examples/react), which test/ofrepweb's TestReactApp bundles
# with esbuild and runs in headless Chromium.
REACT_EXAMPLE := examples/react/node_modules/.package-lock.json
$(REACT_EXAMPLE): examples/react/package-lock.json
	cd examples/react && npm ci --no-audit --no-fund --loglevel=error

# The chart's tests (hack/chartgen) run helm and kustomize: HELM and KUSTOMIZE name them; the
# krew manifest's test (hack/krewgen) installs the plugin with the krew KREW names.
.PHONY: test
test: manifests generate fmt vet helm kustomize kubectl krew $(OFREP_HARNESS) $(OFREPWEB_HARNESS) $(REACT_EXAMPLE) ## Run every test, on a real kube-apiserver and etcd built by hack/setup-envtest.sh.
	@assets="$$(hack/setup-envtest.sh)"; \
	echo "KUBEBUILDER_ASSETS=$$assets"; \
	KUBEBUILDER_ASSETS="$$assets" HELM="$(HELM)" KUSTOMIZE="$(KUSTOMIZE)" KUBECTL="$(KUBECTL)" KREW="$(KREW)" $(GO) test $(PKGS) -coverprofile cover.out $(TESTFLAGS)
	$(call sdk-run,$(GO) test $(SDK_PKGS) -coverprofile cover.out $(TESTFLAGS))

.PHONY: demo
demo: ## Run flagops on a local control plane (CRDs, webhooks, manager, samples) and print commands to try; Ctrl-C stops it.
	@assets="$$(hack/setup-envtest.sh)"; KUBEBUILDER_ASSETS="$$assets" $(GO) run ./hack/demo

# Flags of `make scale`, e.g. make scale SCALE_ARGS="-n 10000 -devices 1000".
SCALE_ARGS ?= -out scale.json

.PHONY: scale
scale: ## Measure flagops with 100,000 overrides on envtest (hack/scale, docs/capacity.md); not part of `make test`.
	@assets="$$(hack/setup-envtest.sh)"; KUBEBUILDER_ASSETS="$$assets" nice -n 10 $(GO) run ./hack/scale $(SCALE_ARGS)

# Flags of `make soak`, e.g. make soak SOAK_ARGS="-duration 10m -seed 2 -out soak.json". The
# target's own default replaces sdk-soak's (a SOAK_ARGS on the command line replaces both).
soak: SOAK_ARGS = -out soak.json

.PHONY: soak
soak: ## Soak two manager replicas, 2,000 streams and three writers under a seeded schedule of faults, 30 minutes by default (hack/soak; SOAK_ARGS; docs/capacity.md); not part of `make test`.
	@assets="$$(hack/setup-envtest.sh)"; KUBEBUILDER_ASSETS="$$assets" nice -n 10 $(GO) run ./hack/soak $(SOAK_ARGS)

.PHONY: soak-ci
soak-ci: ## The soak with faults for 3 minutes, as CI runs it (hack/soak -duration 3m).
	@assets="$$(hack/setup-envtest.sh)"; KUBEBUILDER_ASSETS="$$assets" $(GO) run ./hack/soak -duration 3m -out soak-ci.json

.PHONY: bench
bench: ## Run the Go benchmarks (speed targets live here, never in unit tests).
	$(GO) test -run='^$$' -bench='$(BENCH)' -benchmem -benchtime=$(BENCHTIME) $(PKGS)
	$(call sdk-run,$(GO) test -run='^$$' -bench='$(BENCH)' -benchmem -benchtime=$(BENCHTIME) $(SDK_PKGS))

.PHONY: bench-react
bench-react: $(REACT_EXAMPLE) ## Run examples/react in headless Chromium and fail if a flag change takes more than 1 s from the file write to the page (docs/sdk-browser.md).
	REACT_CHANGE_BOUND=1s $(GO) test -count=1 -run '^TestReactApp$$' -v ./test/ofrepweb/

SOAK_ARGS ?= -duration 10m -restarts 5
.PHONY: sdk-soak
sdk-soak: ## Soak the Go provider against flagops serve --dir, restarting the server (hack/sdk-soak; SOAK_ARGS, default 10 minutes, 5 restarts; docs/benchmarks.md).
	$(GO) run ./hack/sdk-soak $(SOAK_ARGS)

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the flagops binary into ./bin.
	$(GO) build -o $(LOCALBIN)/flagops ./cmd/flagops

.PHONY: kubectl-flagops
kubectl-flagops: ## Build the kubectl plugin and its completion shim into ./bin (with ./bin on PATH: kubectl flagops --help; docs/kubectl-plugin.md).
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(LOCALBIN)/kubectl-flagops ./cmd/kubectl-flagops
	$(GO) build -o $(LOCALBIN)/kubectl_complete-flagops ./cmd/kubectl_complete-flagops

# The krew manifest's version: the chart's, unless given.
KREW_VERSION ?= v$(shell sed -n 's/^version: //p' charts/flagops/Chart.yaml)
# A directory with the release archives (make krew-archives), whose digests the manifest gets.
KREW_DIST ?=

.PHONY: krew-manifest
krew-manifest: ## Write the krew manifest hack/krew/flagops.yaml for KREW_VERSION (digests from KREW_DIST's archives, else placeholders).
	$(GO) run ./hack/krewgen -version $(KREW_VERSION) $(if $(KREW_DIST),-dist $(KREW_DIST))

.PHONY: krew-archives
krew-archives: ## Build the plugin's release archives for krew into dist/krew (every platform; slow).
	$(GO) run ./hack/krewgen -build -version $(KREW_VERSION) -dist dist/krew

.PHONY: run
run: manifests generate fmt vet ## Run the manager against the cluster in ~/.kube/config (without webhooks, which the API server cannot reach here, and without context tokens).
	$(GO) run ./cmd/flagops manager --enable-webhooks=false --insecure-no-auth

.PHONY: docker-build
docker-build: ## Build the container image with a Docker engine, from the public base images and Go module proxy.
	docker build --build-arg VERSION=$(VERSION) -t $(IMG) .

# make image: which base images (public, local stand-ins from hack/image-bases.sh, or auto:
# public when they can be pulled), and where the builder gets Go modules (empty: this
# machine's module cache, offline; else a GOPROXY value). docs/development.md.
IMAGE_BASES ?= auto
IMAGE_GOPROXY ?=
# make e2e: 1 brings the local cluster down after the suite.
E2E_DOWN ?=
# make e2e: how the suite installs flagops: kubectl (apply -k of config/default through its
# overlay) or helm (helm install of charts/flagops).
E2E_INSTALL ?= kubectl

.PHONY: image
image: ## Build the image IMG (flagops:dev) from the Dockerfile with podman; offline if need be (IMAGE_BASES, IMAGE_GOPROXY).
	IMG='$(IMG)' VERSION='$(VERSION)' IMAGE_BASES='$(IMAGE_BASES)' IMAGE_GOPROXY='$(IMAGE_GOPROXY)' hack/image-build.sh

.PHONY: image-bases
image-bases: ## Build (once, then cached) the local stand-ins for the Dockerfile's base images.
	hack/image-bases.sh

.PHONY: image-check
image-check: ## Check the image IMG: user 65532, no shell, its version, serve --dir through a published port; print its size.
	IMG='$(IMG)' hack/image-check.sh

##@ Local cluster

.PHONY: cluster-up
cluster-up: ## Start a one-node cluster on this machine, offline (root; docs/development.md).
	hack/cluster/cluster.sh up

# The end-to-end suite in the local cluster (test/e2e-cluster, build tag e2e): brings the
# cluster up if it is down and leaves it up unless E2E_DOWN=1 (docs/development.md).
.PHONY: e2e
e2e: image helm ## Run the end-to-end suite in the local cluster (up if down; E2E_DOWN=1 brings it down after; E2E_INSTALL=helm installs with the chart) on the image flagops:dev.
	@[ '$(IMG)' = flagops:dev ] || { echo "error: the suite runs localhost/flagops:dev; leave IMG alone" >&2; exit 1; }
	E2E_DOWN='$(E2E_DOWN)' E2E_INSTALL='$(E2E_INSTALL)' HELM='$(HELM)' $(GO) test -tags e2e -count=1 -timeout 40m ./test/e2e-cluster/ -v -ginkgo.v $(TESTFLAGS)

.PHONY: cluster-smoke
cluster-smoke: ## Bring the local cluster up, run the image $(IMG) in it behind a Service, check, bring it down.
	hack/cluster/smoke.sh localhost/$(IMG)

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and undo its addresses, routes and iptables rules.
	hack/cluster/cluster.sh down

##@ Deployment

.PHONY: install
install: manifests kustomize ## Install the CRDs and admission policies into the cluster in ~/.kube/config.
	$(KUSTOMIZE) build config/crd | kubectl apply --server-side -f -

.PHONY: uninstall
uninstall: manifests kustomize ## Remove the CRDs (and every flag and override) from the cluster.
	$(KUSTOMIZE) build config/crd | kubectl delete --ignore-not-found -f -

.PHONY: deploy
deploy: manifests kustomize ## Deploy the manager and the evaluator to the cluster in ~/.kube/config (docs/deploy.md).
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	cd config/evaluator && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default | kubectl apply --server-side -f -

# make release-manifests: the image that dist/install.yaml runs, e.g. IMG=ghcr.io/flagops/flagops:v0.1.0.
.PHONY: release-manifests
release-manifests: manifests kustomize ## Write dist/install.yaml (everything, with the image IMG) and dist/crds.yaml (CRDs and admission policies), for kubectl apply --server-side -f.
	$(GO) run ./hack/chartgen release -kustomize $(KUSTOMIZE) -image '$(IMG)' -out dist

.PHONY: undeploy
undeploy: kustomize ## Remove the manager and the evaluator from the cluster.
	$(KUSTOMIZE) build config/default | kubectl delete --ignore-not-found -f -

##@ Tools

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into ./bin.
$(CONTROLLER_GEN): | $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: kustomize
kustomize: $(KUSTOMIZE) ## Install kustomize into ./bin.
$(KUSTOMIZE): | $(LOCALBIN)
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

.PHONY: kube-score-bin
kube-score-bin: $(KUBE_SCORE) ## Install kube-score into ./bin.
$(KUBE_SCORE): | $(LOCALBIN)
	$(call go-install-tool,$(KUBE_SCORE),github.com/zegl/kube-score/cmd/kube-score,$(KUBE_SCORE_VERSION))

.PHONY: kubectl
kubectl: $(KUBECTL) ## Build kubectl into ./bin, from k8s.io/kubernetes (hack/cluster/k8s's module).
$(KUBECTL): | $(LOCALBIN)
	cd hack/cluster/k8s && CGO_ENABLED=0 GOFLAGS=-mod=mod $(GO) build -trimpath \
		-ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v$(KUBECTL_VERSION) -X k8s.io/component-base/version.gitTreeState=clean" \
		-o $(KUBECTL).tmp k8s.io/kubernetes/cmd/kubectl && mv $(KUBECTL).tmp $(KUBECTL)

.PHONY: helm
helm: $(HELM) ## Install helm into ./bin.
$(HELM): | $(LOCALBIN)
	$(call go-install-tool,$(HELM),helm.sh/helm/v3/cmd/helm,$(HELM_VERSION))

.PHONY: krew
krew: $(KREW) ## Install krew (kubectl-krew) into ./bin.
$(KREW): | $(LOCALBIN)
	$(call go-install-tool,$(KREW),sigs.k8s.io/krew/cmd/krew,$(KREW_CLI_VERSION))

.PHONY: staticcheck
staticcheck: $(STATICCHECK) ## Install staticcheck into ./bin.
$(STATICCHECK): | $(LOCALBIN)
	$(call go-install-tool,$(STATICCHECK),honnef.co/go/tools/cmd/staticcheck,$(STATICCHECK_VERSION))

.PHONY: errcheck
errcheck: $(ERRCHECK) ## Install errcheck into ./bin.
$(ERRCHECK): | $(LOCALBIN)
	$(call go-install-tool,$(ERRCHECK),github.com/kisielk/errcheck,$(ERRCHECK_VERSION))

.PHONY: ineffassign
ineffassign: $(INEFFASSIGN) ## Install ineffassign into ./bin.
$(INEFFASSIGN): | $(LOCALBIN)
	$(call go-install-tool,$(INEFFASSIGN),github.com/gordonklaus/ineffassign,$(INEFFASSIGN_VERSION))

.PHONY: kube-api-linter
kube-api-linter: $(KUBE_API_LINTER) ## Install golangci-lint with kube-api-linter into ./bin.
$(KUBE_API_LINTER): | $(LOCALBIN)
	$(call go-install-tool,$(KUBE_API_LINTER),sigs.k8s.io/kube-api-linter/cmd/golangci-lint-kube-api-linter,$(KUBE_API_LINTER_VERSION))

# go-install-tool installs a pinned Go tool into ./bin under a versioned name, so that a
# version bump in this file always installs the new version.
# $1 - target path with version suffix; $2 - package; $3 - version
define go-install-tool
@[ -f "$(1)" ] || { \
set -e; \
package=$(2)@$(3) ; \
echo "Installing $${package}" ; \
rm -f $(1) ; \
GOBIN=$(LOCALBIN) $(GO) install $${package} ; \
mv $(LOCALBIN)/$$(basename "$$(echo "$(2)" | sed "s/\/v[0-9]*$$//")") $(1) ; \
}
endef
