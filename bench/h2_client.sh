#!/usr/bin/env bash
# bench/h2_client.sh: HTTP/2 from the client, side by side: cancelproxy, nginx
# ("listen ... http2", proxy_buffering off) and HAProxy ("proto h2"), all
# HTTP/2 with prior knowledge in front of cancelproxy-mock over HTTP/1.1.
#
#   memory    RSS per open HTTP/2 stream parked in the first-token wait
#             (RSS_N streams over 40 connections, h2load)
#   c10k      C10K streams over 100 connections at once (h2load -m 100):
#             how many succeed
#   cpu       CPU per relayed SSE event: 100 streams of EVENTS events each
#   cancel    one RST_STREAM among CANCEL_N open streams over 10
#             connections (bench/h2_cancel.py): the mock's gone_mono_us
#             minus the client's time right before the frame was written;
#             p50 and p99 over CANCELS cancels
#
#   bench/h2_client.sh [TARGET...]      default: direct cancelproxy nginx haproxy
#   PHASES=cancel bench/h2_client.sh     only some of: memory c10k cpu cancel
#
# direct is the floor: h2load and the cancel client talk HTTP/2 to the mock
# itself (its memory and CPU columns are the mock's).
#
# BUILD (default build) holds cancelproxy and cancelproxy-mock. Everything
# listens on 127.0.0.1 and is killed at exit.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
RSS_N=${RSS_N:-4000}
C10K=${C10K:-10000}
EVENTS=${EVENTS:-200}
CANCEL_N=${CANCEL_N:-1000}
CANCELS=${CANCELS:-100}
TARGETS=${*:-direct cancelproxy nginx haproxy}
PHASES=${PHASES:-memory c10k cpu cancel}	# a subset: PHASES=cancel
has() { case " $PHASES " in *" $1 "*) return 0 ;; esac; return 1; }
TD=$(mktemp -d /tmp/cp-h2bench.XXXXXX)
PIDS=()

ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$TD"
}
trap cleanup EXIT

fail() { echo "h2_client.sh: $*" >&2; exit 1; }

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {	# port
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	fail "nothing listens on $1"
}

rss_kib() {	# pids...
	local s=0 p
	for p in "$@"; do
		s=$((s + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
	done
	echo "$s"
}

cpu_ticks() {	# pids...: utime + stime
	local s=0 p
	for p in "$@"; do
		s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "$s"
}

MOCK_PID=""
MOCK_LOG=""
start_mock() {	# first_token_ms interval_ms tokens
	local port
	port=$(free_port)
	MOCK_LOG=$TD/mock-$port.log
	"$BUILD/cancelproxy-mock" --listen "127.0.0.1:$port" --first-token-ms "$1" \
	    --interval-ms "$2" --tokens "$3" --log "$MOCK_LOG" >/dev/null 2>&1 &
	MOCK_PID=$!
	PIDS+=("$!")
	wait_port "$port"
	MOCK_PORT=$port
}

PROXY_PIDS=""
start_proxy() {	# target
	local t=$1 d=$TD/$1
	PORT=$(free_port)
	mkdir -p "$d/tmp"
	case $t in
	direct)
		# The floor: the client speaks HTTP/2 to the mock itself.
		PORT=$MOCK_PORT
		PROXY_PIDS=$MOCK_PID
		return
		;;
	cancelproxy)
		cat > "$d/conf.json" <<EOF
{ "hop": "bench", "workers": 1,
  "listen": [{ "address": "127.0.0.1:$PORT" }],
  "upstreams": { "mock": { "url": "http://127.0.0.1:$MOCK_PORT",
    "timeouts_ms": { "first_byte": 600000, "idle": 600000 } } },
  "routes": [{ "path_prefix": "/", "upstream": "mock" }],
  "limits": { "max_connections": 60000,
    "http2": { "max_concurrent_streams": 128 } },
  "log": { "path": "$d/proxy.log" } }
EOF
		"$BUILD/cancelproxy" -c "$d/conf.json" >/dev/null 2>&1 &
		PIDS+=("$!")
		PROXY_PIDS=$!
		;;
	nginx)
		local user=""
		[ "$(id -u)" = 0 ] && user="user $(id -un) $(id -gn);"
		cat > "$d/nginx.conf" <<EOF
$user
worker_processes 1;
worker_rlimit_nofile $NOFILE;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections $NOFILE; use epoll; }
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    upstream mock { server 127.0.0.1:$MOCK_PORT; keepalive 128; }
    server {
        listen 127.0.0.1:$PORT http2 backlog=4096;
        http2_max_concurrent_streams 128;
        keepalive_requests 100000;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 3600s;
        }
    }
}
EOF
		/usr/sbin/nginx -p "$d/" -e "$d/error.log" -c "$d/nginx.conf" >/dev/null 2>&1 &
		PIDS+=("$!")
		wait_port "$PORT"
		PROXY_PIDS=$(cat "/proc/$!/task/$!/children")
		PIDS+=($PROXY_PIDS)
		return
		;;
	haproxy)
		cat > "$d/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $((NOFILE / 2 - 100))
defaults
    mode http
    option abortonclose
    option http-no-delay
    maxconn $((NOFILE / 2 - 100))
    timeout connect 5s
    timeout client 3600s
    timeout server 3600s
frontend fe
    bind 127.0.0.1:$PORT proto h2 backlog 4096
    default_backend be
backend be
    http-reuse safe
    server mock 127.0.0.1:$MOCK_PORT
EOF
		/usr/sbin/haproxy -db -f "$d/haproxy.cfg" >/dev/null 2>&1 &
		PIDS+=("$!")
		PROXY_PIDS=$!
		;;
	esac
	wait_port "$PORT"
}

stop_all() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	PIDS=()
}
# Background jobs are not reported when they are killed.
set +m

BODY=$TD/body.json
printf '{"model":"mock-1","stream":true,"messages":[{"role":"user","content":"hi"}]}' > "$BODY"

printf "%-12s %10s %10s %12s %10s %12s %12s %10s %10s\n" target "rss KiB" "KiB/strm" "c10k ok" "c10k err" "cpu us/ev" "cancel p50" "p99 ms" cancels
for t in $TARGETS; do
	after=- kps=- ok=- err=0 failed=0 cpu=- p50=- p99=- n=-
	if has memory; then
	# memory: streams parked in the first-token wait.
	start_mock 600000 50 1
	start_proxy "$t"
	sleep 0.3
	before=$(rss_kib $PROXY_PIDS)
	h2load -c 40 -m 100 -n "$RSS_N" -d "$BODY" -H 'content-type: application/json' \
	    "http://127.0.0.1:$PORT/v1/chat/completions" >/dev/null 2>&1 &
	H=$!
	PIDS+=("$H")
	for _ in $(seq 600); do
		[ "$(grep -c mock_request "$MOCK_LOG" 2>/dev/null)" -ge "$RSS_N" ] && break
		sleep 0.05
	done
	sleep 0.5
	after=$(rss_kib $PROXY_PIDS)
	opened=$(grep -c mock_request "$MOCK_LOG")
	kps=$(awk -v a="$after" -v b="$before" -v n="$opened" 'BEGIN { printf "%.2f", n ? (a - b) / n : 0 }')
	stop_all
	fi
	if has c10k; then
	# c10k: every stream answered (5 tokens, first after 2 s).
	start_mock 2000 20 5
	start_proxy "$t"
	out=$(h2load -c 100 -m 100 -n "$C10K" -d "$BODY" -H 'content-type: application/json' \
	    "http://127.0.0.1:$PORT/v1/chat/completions" 2>&1)
	ok=$(echo "$out" | sed -n 's/.* \([0-9]*\) succeeded.*/\1/p')
	err=$(echo "$out" | sed -n 's/.* \([0-9]*\) errored.*/\1/p')
	failed=$(echo "$out" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
	stop_all

	fi
	if has cpu; then
	# cpu: 100 streams of EVENTS events, 1 ms apart.
	start_mock 0 1 "$EVENTS"
	start_proxy "$t"
	c0=$(cpu_ticks $PROXY_PIDS)
	h2load -c 10 -m 10 -n 100 -d "$BODY" -H 'content-type: application/json' \
	    "http://127.0.0.1:$PORT/v1/chat/completions" >/dev/null 2>&1
	c1=$(cpu_ticks $PROXY_PIDS)
	hz=$(getconf CLK_TCK)
	cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" -v n=$((100 * (EVENTS + 2))) \
	    'BEGIN { printf "%.2f", (b - a) * 1e6 / hz / n }')
	stop_all

	fi
	if has cancel; then
	# cancel: one RST_STREAM at a time among CANCEL_N open streams.
	start_mock 600000 50 1
	start_proxy "$t"
	/usr/bin/python3 "$ROOT/bench/h2_cancel.py" "$PORT" "$CANCEL_N" 10 "$CANCELS" 3 \
	    > "$TD/rst.jsonl" 2>"$TD/rst.err"
	sleep 0.5
	lat=$(/usr/bin/python3 - "$TD/rst.jsonl" "$MOCK_LOG" <<'EOF'
import json, sys
rst = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rst[r["request_id"]] = r["rst_mono_us"]
d = []
for line in open(sys.argv[2]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if r.get("event") == "mock_stream" and r.get("request_id") in rst and r.get("gone_mono_us"):
        d.append(r["gone_mono_us"] - rst[r["request_id"]])
d.sort()
if not d:
    print("- - 0")
else:
    p = lambda q: d[min(len(d) - 1, int(q * len(d)))] / 1000.0
    print("%.3f %.3f %d" % (p(0.5), p(0.99), len(d)))
EOF
)
	stop_all
	read -r p50 p99 n <<< "$lat"
	fi
	printf "%-12s %10s %10s %12s %10s %12s %12s %10s %10s\n" "$t" "$after" "$kps" \
	    "${ok:-?}/$C10K" "$((${err:-0} + ${failed:-0}))" "$cpu" "$p50" "$p99" "$n"
done
