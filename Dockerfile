# The flagops image: one static binary on a distroless base, running as the non-root user
# 65532, with no shell. Build it with `make image` (podman) or `docker build .`; see
# docs/development.md.
#
# The base images are build arguments. The defaults are the public images; where no
# registry is reachable, hack/image-bases.sh builds local stand-ins for both.
#
# Go is pinned to a patch release: go1.26.9 and go1.26.10 fix standard-library
# vulnerabilities that earlier go1.26 releases have. hack/image-bases.sh reads GO_VERSION
# from this line, so bump it here only.
ARG GO_VERSION=1.26.11
ARG BUILDER_IMAGE=docker.io/library/golang:${GO_VERSION}
ARG BASE_IMAGE=gcr.io/distroless/static:nonroot

FROM ${BUILDER_IMAGE} AS builder
ARG GO_VERSION
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
# Where `go mod download` gets the modules. Unset, Go's defaults apply (proxy.golang.org
# and sum.golang.org); `make image` points GOPROXY at the host's module cache instead.
ARG GOPROXY
ARG GOSUMDB
ENV GOTOOLCHAIN=local CGO_ENABLED=0 GOCACHE=/root/.cache/go-build

# Refuse a builder whose Go is not the pinned release.
RUN v="$(go env GOVERSION)" && [ "$v" = "go${GO_VERSION}" ] || \
    { echo "error: the builder has ${v:-no Go}, the Dockerfile pins go${GO_VERSION}" >&2; exit 1; }

WORKDIR /workspace
# Module downloads get their own layer, rebuilt only when go.mod or go.sum change. The
# main module's go.mod replaces the Go SDK's modules (sdk/go, sdk/go/inprocess) by their
# directories, whose go.mod it reads.
COPY go.mod go.sum ./
COPY sdk/go/go.mod sdk/go/go.sum ./sdk/go/
COPY sdk/go/inprocess/go.mod sdk/go/inprocess/go.sum ./sdk/go/inprocess/
RUN go mod download

# .dockerignore keeps the context to the Go packages of cmd/flagops and the manifests it
# embeds (config/crd).
COPY . .
# The Go build cache is a cache mount: a rebuild after a source change compiles only what
# changed (podman and Docker BuildKit keep it between builds; it is not in the image).
RUN --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/flagops ./cmd/flagops

FROM ${BASE_IMAGE}
ARG VERSION=dev
LABEL org.opencontainers.image.title=flagops \
      org.opencontainers.image.version=${VERSION}
COPY --from=builder /out/flagops /flagops
USER 65532:65532
ENTRYPOINT ["/flagops"]
