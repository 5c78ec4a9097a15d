#!/usr/bin/env bash
# govulncheck.sh scans the main module for known vulnerabilities, offline: it fails when the
# code calls a function that the Go vulnerability database lists as vulnerable.
#
# govulncheck normally reads the database from its web service. Here both the scanner and the
# database come from the Go module proxy, at pinned versions:
#   - govulncheck is built from golang.org/x/vuln at GOVULNCHECK_VERSION;
#   - the database is built from the OSV reports in the module golang.org/x/vulndb (data/osv)
#     at VULNDB_VERSION, by that module's own indexer, cmd/indexdb, into the layout that
#     `govulncheck -db file://DIR` reads (index/db.json, index/modules.json, ID/GO-*.json).
# Both are cached outside the repository, keyed by the two versions, under
# ${FLAGOPS_VULN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flagops/vuln}. To take newer reports,
# bump VULNDB_VERSION to a newer pseudo-version of golang.org/x/vulndb.
#
# The scan itself runs with GOPROXY=off and a file:// database: it reads only the module
# cache and the local database. Before it, the script downloads the main module's
# dependencies and the Go toolchain that go.mod asks for, if they are not there yet.
#
# Usage: hack/govulncheck.sh [--force] [govulncheck flags and packages]  (default: ./...)
#   --force  rebuilds the cached scanner and database.
# Exit status: 0 when no vulnerable code is reachable; 3 (govulncheck's) when some is; other
# values on errors.
set -euo pipefail

GOVULNCHECK_VERSION=v1.10.0
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${FLAGOPS_VULN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flagops/vuln}
dir="$cache_root/govulncheck-$GOVULNCHECK_VERSION-vulndb-$VULNDB_VERSION"

log() { printf 'govulncheck: %s\n' "$*" >&2; }

force=
if [ "${1:-}" = "--force" ]; then
	force=1
	shift
fi
[ $# -gt 0 ] || set -- ./...

command -v go >/dev/null || { log "go is not on PATH; install Go 1.26 first"; exit 1; }
# As in the Makefile: go.mod's toolchain line applies unless GOTOOLCHAIN says otherwise.
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"

complete() {
	[ -x "$1/bin/govulncheck" ] && [ -f "$1/db/index/db.json" ] && [ -f "$1/.complete" ]
}

if [ -n "$force" ] || ! complete "$dir"; then
	mkdir -p "$cache_root"
	# Build into a temporary sibling and rename it into place, so that an interrupted build
	# never leaves a directory that looks complete.
	tmp=$(mktemp -d "$cache_root/.build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	start=$(date +%s)
	# Outside the main module, so that its go.mod plays no part in the tools' builds.
	cd "$tmp"
	log "building govulncheck $GOVULNCHECK_VERSION"
	GOBIN="$tmp/bin" go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION"
	log "building the vulnerability database from golang.org/x/vulndb $VULNDB_VERSION (a few minutes on first run)"
	GOBIN="$tmp/tools" go install "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION"
	src=$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$src/data/osv" ] || { log "error: no data/osv in golang.org/x/vulndb@$VULNDB_VERSION (at '$src')"; exit 1; }
	"$tmp/tools/indexdb" -vulns "$src/data/osv" -out "$tmp/db"
	rm -rf "$tmp/tools"
	touch "$tmp/.complete"
	cd "$root"
	rm -rf "$dir"
	mv "$tmp" "$dir"
	trap - EXIT
	log "built in $(($(date +%s) - start))s: $dir"
fi

cd "$root"
# The modules and the toolchain that the scan needs; both are no-ops when already present.
go mod download
# govulncheck checks the standard library of the Go that `go env GOVERSION` names, which is the
# toolchain that go.mod selects when GOTOOLCHAIN allows it. Fixed here, so that the offline
# scan cannot silently skip the standard library if the go command fails there.
goversion=$(go env GOVERSION)
[ -n "$goversion" ] || { log "error: go env GOVERSION printed nothing"; exit 1; }
log "scanning $* with $goversion and the database of golang.org/x/vulndb $VULNDB_VERSION, offline"
GOPROXY=off GOVERSION="$goversion" "$dir/bin/govulncheck" -db "file://$dir/db" "$@"
