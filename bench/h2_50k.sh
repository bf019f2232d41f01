#!/usr/bin/env bash
# bench/h2_50k.sh: N concurrent streams with HTTP/2 on both sides of
# cancelproxy: h2load opens C connections of M streams each (prior
# knowledge), every stream waits FIRST_MS for its first token at the mock,
# so all N are open at once; the proxy multiplexes them to the mock over
# HTTP/2. Prints h2load's tally, the proxy's peak RSS and the upstream
# connections it used. Everything listens on 127.0.0.1 and is killed at
# exit.
#
#   bench/h2_50k.sh            (BUILD=build; N=50000 C=500 M=100)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
N=${N:-50000}
C=${C:-500}
M=${M:-100}
FIRST_MS=${FIRST_MS:-8000}
TD=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$TD"
}
trap cleanup EXIT
set +m	# killed background jobs are not reported
command -v h2load >/dev/null || { echo "h2_50k.sh: needs h2load (nghttp2-client)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null

port_of() {	# the port of the first "listening" record in $1
	for _ in $(seq 200); do
		grep -q '"listening"' "$1" 2>/dev/null && {
			grep -m1 '"listening"' "$1" | sed 's/.*"port":\([0-9]*\).*/\1/'
			return 0
		}
		sleep 0.05
	done
	return 1
}

"$BUILD/cancelproxy-mock" --listen 127.0.0.1:0 --first-token-ms "$FIRST_MS" \
    --interval-ms 20 --tokens 5 --log "$TD/mock.log" &
PIDS+=($!)
MPORT=$(port_of "$TD/mock.log") || { echo "h2_50k.sh: no mock" >&2; exit 1; }
cat >"$TD/proxy.json" <<CONF
{ "hop": "bench", "workers": 2, "listen": [ { "address": "127.0.0.1:0" } ],
  "limits": { "max_connections": 100000, "http2": { "max_concurrent_streams": $M } },
  "upstreams": { "mock": { "url": "http://127.0.0.1:$MPORT", "protocol": "h2",
    "timeouts_ms": { "first_byte": 600000 },
    "h2": { "max_streams_per_conn": 100, "max_conns": 1000, "queue_max": 1000000 } } },
  "routes": [ { "path_prefix": "/", "upstream": "mock" } ],
  "log": { "path": "-", "level": "info" } }
CONF
"$BUILD/cancelproxy" -c "$TD/proxy.json" >"$TD/proxy.out" 2>&1 &
PP=$!
PIDS+=($PP)
PPORT=$(port_of "$TD/proxy.out")
[ -n "$PPORT" ] || { echo "h2_50k.sh: no proxy" >&2; cat "$TD/proxy.out"; exit 1; }
printf '{"model":"mock-1","stream":true,"messages":[{"role":"user","content":"hi"}]}' >"$TD/body.json"
peak=0
( while kill -0 $PP 2>/dev/null; do
	r=$(awk '/VmRSS/ {print $2}' /proc/$PP/status 2>/dev/null)
	[ -n "$r" ] && [ "$r" -gt "$peak" ] && peak=$r && echo "$peak" >"$TD/peak"
	sleep 0.2
  done ) &
PIDS+=($!)
h2load -c "$C" -m "$M" -n "$N" -t 2 -d "$TD/body.json" \
    -H 'content-type: application/json' \
    "http://127.0.0.1:$PPORT/v1/chat/completions" >"$TD/h2load.out" 2>&1
grep -E "^requests:|^status codes:" "$TD/h2load.out"
echo "mock: $(grep -c '"mock_stream"' "$TD/mock.log") streams answered," \
    "$(grep '"mock_stream"' "$TD/mock.log" | grep -c '"outcome":"completed"') completed," \
    "on $(grep -o '"conn":[0-9]*' "$TD/mock.log" | sort -u | wc -l) upstream connections"
echo "proxy peak RSS: $(cat "$TD/peak" 2>/dev/null) KiB"
