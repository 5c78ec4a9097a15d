#!/usr/bin/env bash
# OFREP single evaluation over loopback: flagops against a bare net/http handler, and against
# flagops built with encoding/json in place of its hand-written request decoder and response
# encoders (-tags stdjson). The hand-written code stays only if it gains at least 15% end to
# end (issue 8).
#
# Three servers run pinned to one CPU (SERVER_CPU), the load generator (wrk, one thread) to
# another (LOAD_CPU), so that neither starves the other:
#   bare     hack/ofrepload/bare: drains the body, writes a constant OFREP response
#   flagops  flagops serve --dir config/samples
#   stdjson  the same, built with -tags stdjson
# Each round runs wrk against each server in turn for DURATION seconds, RUNS rounds in all,
# so that drift on a shared machine hits all three alike. It prints every run, the median
# req/s of each server, the server CPU time per request, and the ratios.
#
# Usage: hack/ofrepload.sh                      (the full measurement: 5 rounds of 10 s)
#        RUNS=1 DURATION=2 hack/ofrepload.sh    (a smoke run)
# Environment: RUNS (5), DURATION in seconds (10), CONNS (32), LOAD_CPU (0), SERVER_CPU (1),
# FLAG (checkout.layout), BODY (a context of user-7 with role user).
# Needs wrk and taskset; installs wrk with apt-get when it is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-5}
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
LOAD_CPU=${LOAD_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
FLAG=${FLAG:-checkout.layout}
BODY=${BODY:-'{"context":{"targetingKey":"user-7","role":"user"}}'}

if ! command -v wrk >/dev/null; then
	echo "==> Installing wrk" >&2
	apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
command -v taskset >/dev/null || { echo "error: taskset (util-linux) is required" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "==> Building" >&2
go build -o "$work/flagops" ./cmd/flagops
go build -tags stdjson -o "$work/flagops-stdjson" ./cmd/flagops
go build -o "$work/bare" ./hack/ofrepload/bare

# start NAME CMD...: runs a server on SERVER_CPU with its output in $work/NAME.log and waits
# for its address in the log ("address=HOST:PORT" from flagops, "listening on HOST:PORT" from
# bare).
declare -A url pid
start() {
	local name=$1
	shift
	taskset -c "$SERVER_CPU" "$@" >"$work/$name.log" 2>&1 &
	pid[$name]=$!
	pids+=("$!")
	local addr=""
	for _ in $(seq 100); do
		addr=$(grep -oE '(address=|listening on )127\.0\.0\.1:[0-9]+' "$work/$name.log" | head -1 | grep -oE '127\.0\.0\.1:[0-9]+' || true)
		[ -n "$addr" ] && break
		kill -0 "${pid[$name]}" 2>/dev/null || { cat "$work/$name.log" >&2; echo "error: $name exited" >&2; exit 1; }
		sleep 0.1
	done
	[ -n "$addr" ] || { cat "$work/$name.log" >&2; echo "error: $name did not start" >&2; exit 1; }
	url[$name]="http://$addr/ofrep/v1/evaluate/flags/$FLAG"
	# Check the answer once before loading it.
	local status
	status=$(curl -s -o "$work/$name.answer" -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d "$BODY" "${url[$name]}")
	[ "$status" = 200 ] || { cat "$work/$name.answer" >&2; echo "error: $name answered $status" >&2; exit 1; }
	echo "$name: $(cat "$work/$name.answer")" >&2
}

start bare "$work/bare" -addr 127.0.0.1:0
start flagops "$work/flagops" serve --dir config/samples --evaluator-bind-address 127.0.0.1:0
start stdjson "$work/flagops-stdjson" serve --dir config/samples --evaluator-bind-address 127.0.0.1:0

cat >"$work/post.lua" <<EOF
wrk.method = "POST"
wrk.body = [[$BODY]]
wrk.headers["Content-Type"] = "application/json"
EOF

# cputicks PID: user plus system CPU time of a process, in clock ticks.
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

servers=(bare flagops stdjson)
declare -A rps cpu
echo "==> $RUNS rounds of ${DURATION}s per server; wrk -t1 -c$CONNS on CPU $LOAD_CPU, servers on CPU $SERVER_CPU" >&2
printf '%-8s %-5s %12s %14s\n' server round req/s "CPU µs/req"
for round in $(seq "$RUNS"); do
	for s in "${servers[@]}"; do
		before=$(cputicks "${pid[$s]}")
		out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$work/post.lua" "${url[$s]}")
		after=$(cputicks "${pid[$s]}")
		if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
			echo "$out" >&2
			echo "error: $s had errors under load" >&2
			exit 1
		fi
		r=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
		n=$(awk '/requests in/ {print $1}' <<<"$out")
		c=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$n" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
		rps[$s]+="$r "
		cpu[$s]+="$c "
		printf '%-8s %-5s %12s %14s\n' "$s" "$round" "$r" "$c"
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo
printf '%-8s %14s %18s\n' server "median req/s" "median CPU µs/req"
declare -A med
for s in "${servers[@]}"; do
	med[$s]=$(median <<<"${rps[$s]}")
	printf '%-8s %14s %18s\n' "$s" "${med[$s]}" "$(median <<<"${cpu[$s]}")"
done
echo
awk -v b="${med[bare]}" -v f="${med[flagops]}" -v s="${med[stdjson]}" 'BEGIN {
	printf "flagops / bare:    %.2fx\n", f / b
	printf "stdjson / bare:    %.2fx\n", s / b
	printf "flagops / stdjson: %.2fx (the hand-written decoder and encoders; keep them only at >= 1.15x: %s)\n", f / s, (f / s >= 1.15) ? "keep" : "delete"
}'
