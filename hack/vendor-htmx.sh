#!/usr/bin/env bash
# vendor-htmx.sh refreshes the console's one vendored script, htmx, from npm: it packs
# htmx.org@VERSION in a scratch directory (npm checks the tarball against the registry's
# integrity), copies its dist/htmx.min.js to internal/console/static/htmx.min.js, and records
# the version and the file's sha256 in internal/console/static/htmx.txt, which the console's
# tests check the embedded file against.
#
# Usage: hack/vendor-htmx.sh VERSION   (make htmx HTMX_VERSION=...)
set -euo pipefail

version=${1:?usage: hack/vendor-htmx.sh VERSION}
root=$(cd "$(dirname "$0")/.." && pwd)
dest=$root/internal/console/static
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

(cd "$scratch" && npm pack --silent "htmx.org@$version" >/dev/null && tar xzf "htmx.org-$version.tgz")
src=$scratch/package/dist/htmx.min.js
[ -s "$src" ] || { echo "error: htmx.org@$version has no dist/htmx.min.js" >&2; exit 1; }
sum=$(sha256sum "$src" | cut -d' ' -f1)
cp "$src" "$dest/htmx.min.js.tmp" && mv "$dest/htmx.min.js.tmp" "$dest/htmx.min.js"
printf 'htmx.org %s\nsha256 %s htmx.min.js\n' "$version" "$sum" > "$dest/htmx.txt.tmp" && mv "$dest/htmx.txt.tmp" "$dest/htmx.txt"
echo "internal/console/static/htmx.min.js: htmx.org $version, sha256 $sum" >&2
