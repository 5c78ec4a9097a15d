#!/usr/bin/env bash
# Compares the store's write benchmarks of two revisions in the same run, to
# measure what the override index by flag key costs Apply:
#
#   hack/indexbench.sh                 # BASE=053f878 (before the index) against the work tree
#   ROUNDS=10 hack/indexbench.sh       # more rounds on a quiet machine
#
# It builds the evaluator's test binary of BASE (with evaluator/applybench_test.go of
# the work tree copied in: it uses only the store's public API) and of the work tree, then
# runs them alternately, BASE then HEAD, ROUNDS times, so that drift in the machine's
# speed hits both alike. It prints every run's ns/op, then per benchmark the median of
# each side and the median of the per-round ratios HEAD/BASE.
#
# Benchmarks: BenchmarkApply (one override upsert into 100,000 overrides of one flag)
# and BenchmarkApplyManyKeys (one override of 1-32 entries replaced in a store of 10,000
# flags and 100,000 overrides) with -benchtime=$APPLY_BENCHTIME; BenchmarkFlagChangeManyKeys
# (the type of one flag of that store changed, which re-validates the overrides naming it;
# BASE scans every object, so it is slow) with -benchtime=$FLAG_BENCHTIME;
# BenchmarkLoadManyKeys (that whole store applied in one batch, as the initial sync does;
# also reports the heap it holds) once per round.
set -euo pipefail

BASE=${BASE:-053f878}
ROUNDS=${ROUNDS:-5}
APPLY_BENCHTIME=${APPLY_BENCHTIME:-20000x}
FLAG_BENCHTIME=${FLAG_BENCHTIME:-50x}

root=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/base"
git -C "$root" archive "$BASE" | tar -x -C "$tmp/base"
cp "$root/evaluator/applybench_test.go" "$tmp/base/evaluator/"
(cd "$tmp/base" && go test -c -o "$tmp/BASE.test" ./evaluator)
(cd "$root" && go test -c -o "$tmp/HEAD.test" ./evaluator)

run() { # side pattern benchtime
	"$tmp/$1.test" -test.run='^$' -test.bench="$2" -test.benchtime="$3" -test.benchmem |
		awk -v side="$1" -v round="$r" '/^Benchmark/ { print round, side, $0 }'
}
for r in $(seq "$ROUNDS"); do
	for side in BASE HEAD; do
		run "$side" '^Benchmark(Apply|ApplyManyKeys)$' "$APPLY_BENCHTIME"
		run "$side" '^BenchmarkFlagChangeManyKeys$' "$FLAG_BENCHTIME"
		run "$side" '^BenchmarkLoadManyKeys$' 1x
	done
done | tee "$tmp/runs.txt"

echo
awk '
function median(list,   n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	round = $1; side = $2; name = $3; ns = $5
	vals[name, side] = vals[name, side] " " ns
	v[name, side, round] = ns
	names[name] = 1; rounds[round] = 1
	for (i = 6; i < NF; i++) if ($(i+1) == "heap-MiB") heap[name, side] = $i
}
END {
	printf "%-34s %16s %16s %12s\n", "benchmark (median ns/op)", "BASE", "HEAD", "HEAD/BASE"
	for (name in names) {
		ratios = ""
		for (round in rounds) if ((name, "BASE", round) in v && (name, "HEAD", round) in v)
			ratios = ratios " " v[name, "HEAD", round] / v[name, "BASE", round]
		printf "%-34s %16.0f %16.0f %12.3f\n", name, median(vals[name, "BASE"]), median(vals[name, "HEAD"]), median(ratios)
		if ((name, "BASE") in heap) printf "%-34s %16s %16s\n", "  heap held (MiB)", heap[name, "BASE"], heap[name, "HEAD"]
	}
}' "$tmp/runs.txt"
