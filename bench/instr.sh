#!/usr/bin/env bash
# bench/instr.sh: user-space instructions the proxy spends per request and
# per relayed SSE event, counted by callgrind. Counts are repeatable for the
# same binary and inputs whatever else the machine is doing, so two builds
# can be compared on a busy machine where wall-clock benchmarks cannot.
#
#   bench/instr.sh BUILD_DIR [BUILD_DIR2 ...]
#
# For each build: the proxy (1 worker) runs under callgrind in front of that
# build's cancelproxy-mock; one curl process sends R non-streaming chat
# requests on one keep-alive connection, then S streaming requests of T
# tokens each, INTERVAL_MS apart (one event per read). A run with no requests gives the start-up and shut-down
# cost, which is taken off. Prints instructions per request and per event.
set -euo pipefail

R=${R:-2000}		# non-streaming requests
S=${S:-10}		# streaming requests
T=${T:-50}		# tokens per stream (each an SSE event, plus 2)
INTERVAL_MS=${INTERVAL_MS:-10}	# between tokens: one event per read, even
			# with the proxy slowed down by callgrind

[ $# -ge 1 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
command -v valgrind >/dev/null || { echo "instr.sh: needs valgrind" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

wait_port() {	# FILE: the port of the first "listening" record in FILE
	local i
	for i in $(seq 1 200); do
		if grep -q '"listening"' "$1" 2>/dev/null; then
			grep -m1 '"listening"' "$1" | sed 's/.*"address":"[^"]*:\([0-9]*\)".*/\1/'
			return 0
		fi
		sleep 0.05
	done
	echo "instr.sh: no listening record in $1" >&2
	return 1
}

# total Ir of one proxy run: $1 build, $2 requests, $3 streams
run() {
	local b=$1 nreq=$2 nstream=$3 mport pport out
	out=$tmp/cg.$RANDOM
	"$b/cancelproxy-mock" --listen 127.0.0.1:0 --first-token-ms 0 \
	    --interval-ms 0 --tokens "$T" --log "$tmp/mock.log" &
	pids+=($!)
	mport=$(wait_port "$tmp/mock.log")
	cat >"$tmp/conf.json" <<EOF
{ "hop": "bench", "workers": 1, "listen": [ { "address": "127.0.0.1:0" } ],
  "upstreams": { "mock": { "url": "http://127.0.0.1:$mport" } },
  "routes": [ { "path_prefix": "/v1/", "upstream": "mock" } ],
  "log": { "path": "$tmp/proxy.log", "level": "info" } }
EOF
	: >"$tmp/proxy.log"
	valgrind --tool=callgrind --callgrind-out-file="$out" \
	    "$b/cancelproxy" -c "$tmp/conf.json" 2>"$tmp/vg.err" &
	local vp=$!
	pport=$(wait_port "$tmp/proxy.log")
	if [ "$nreq" -gt 0 ]; then
		curl -s -o /dev/null -H 'Content-Type: application/json' \
		    -d '{"model":"mock-1","messages":[{"role":"user","content":"hi"}]}' \
		    "http://127.0.0.1:$pport/v1/chat/completions?r=[1-$nreq]"
	fi
	if [ "$nstream" -gt 0 ]; then
		curl -s -o /dev/null -H 'Content-Type: application/json' \
		    -H "X-Mock-Interval-Ms: $INTERVAL_MS" \
		    -d '{"model":"mock-1","stream":true,"messages":[{"role":"user","content":"hi"}]}' \
		    "http://127.0.0.1:$pport/v1/chat/completions?s=[1-$nstream]"
	fi
	kill -TERM "$vp"
	wait "$vp" || true
	kill "${pids[-1]}" 2>/dev/null || true
	local got
	got=$(grep -c '"event":"request"' "$tmp/proxy.log" || true)
	[ "$got" -eq $((nreq + nstream)) ] || {
		echo "instr.sh: $got request records, expected $((nreq + nstream))" >&2
		exit 1
	}
	grep -m1 '^summary:' "$out" | awk '{print $2}'
}

printf '%-40s %14s %14s\n' build instr/request instr/event
for b in "$@"; do
	b=$(cd "$b" && pwd)
	base=$(run "$b" 0 0)
	reqs=$(run "$b" "$R" 0)
	strs=$(run "$b" 0 "$S")
	per_req=$(( (reqs - base) / R ))
	# a stream is one request and T+2 events; take its request cost off
	per_ev=$(( (strs - base - S * per_req) / (S * (T + 2)) ))
	printf '%-40s %14d %14d\n' "$b" "$per_req" "$per_ev"
done
