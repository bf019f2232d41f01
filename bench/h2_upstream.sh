#!/usr/bin/env bash
# bench/h2_upstream.sh: HTTP/2 toward the model, side by side in one run:
# cancelproxy with "protocol": "h2", cancelproxy with "http/1.1" (its
# keep-alive pool), and nginx with a keep-alive HTTP/1.1 upstream (nginx
# 1.22 has no HTTP/2 upstream for proxy_pass). Each target has its own
# cancelproxy-mock. Measured: the upstream connections N concurrent
# streams used, cancel latency (client abort to the mock seeing its
# stream end: RST_STREAM for h2, FIN/RST for HTTP/1.1), CPU per SSE
# event relayed, and BIG_N concurrent HTTP/1.1 clients through
# cancelproxy with an HTTP/2 upstream.
#
#   bench/h2_upstream.sh               (BUILD=build by default; about 3 minutes)
#
# Everything listens on 127.0.0.1; every process it starts is killed at
# exit. The tables go to standard output.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
N=${N:-1000}			# concurrent streams: connections, cancel
REPS=${REPS:-3}			# cancel rounds (median of the p50/p99)
CPU_N=${CPU_N:-100}		# cpu: streams read to the end
CPU_TOKENS=${CPU_TOKENS:-2000}
BIG_N=${BIG_N:-15000}		# concurrent clients, h2 upstream only
BIG_TOKENS=${BIG_TOKENS:-10}
BIG_FIRST_MS=${BIG_FIRST_MS:-5000}
BIG_INTERVAL_MS=${BIG_INTERVAL_MS:-500}
TARGETS=${TARGETS:-"h2 http1 nginx"}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

T=$(mktemp -d /tmp/cp-h2bench.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
say() { echo "h2_upstream.sh: $*" >&2; }
fail() { say "$*"; exit 1; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
gcc -O2 -Wall -Wextra -Wno-unused-parameter -o "$T/loadgen" \
    "$ROOT/bench/loadgen.c" || fail "loadgen build"
[ -x "$BUILD/cancelproxy" ] && [ -x "$BUILD/cancelproxy-mock" ] ||
    fail "build first: BUILD_DIR=build scripts/build.sh"

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); \
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {	# port pid name
	local i
	for i in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || fail "$3 exited"
		sleep 0.05
	done
	fail "$3 did not listen on $1"
}

declare -A MPORT MPID PORT PID LOG
start_mock() {	# target
	local t=$1
	MPORT[$t]=$(free_port)
	LOG[$t]=$T/mock-$t.log
	"$BUILD/cancelproxy-mock" --listen "127.0.0.1:${MPORT[$t]}" \
	    --first-token-ms 50 --interval-ms 50 --tokens 20 --hop "mock-$t" \
	    --log "${LOG[$t]}" >>"$T/mock-$t.err" 2>&1 &
	MPID[$t]=$!
	PIDS+=("$!")
	wait_port "${MPORT[$t]}" "$!" "mock ($t)"
}
start_cancelproxy() {	# target protocol
	local t=$1 proto=$2
	PORT[$t]=$(free_port)
	cat > "$T/cp-$t.json" <<EOF
{
  "hop": "edge", "workers": 1,
  "listen": [ { "address": "127.0.0.1:${PORT[$t]}" } ],
  "upstreams": { "mock": {
    "url": "http://127.0.0.1:${MPORT[$t]}", "protocol": "$proto",
    "timeouts_ms": { "connect": 5000, "first_byte": 3600000, "idle": 3600000 },
    "keepalive": 1024,
    "h2": { "max_streams_per_conn": 1000, "max_conns": 64, "queue_max": 100000 }
  } },
  "routes": [ { "path_prefix": "/", "upstream": "mock" } ],
  "limits": { "max_connections": 100000 },
  "log": { "path": "$T/cp-$t.log", "level": "info" }
}
EOF
	"$BUILD/cancelproxy" -c "$T/cp-$t.json" >>"$T/cp-$t.err" 2>&1 &
	PID[$t]=$!
	PIDS+=("$!")
	wait_port "${PORT[$t]}" "$!" "cancelproxy ($t)"
}
start_nginx() {
	local d=$T/nginx user=""
	mkdir -p "$d/tmp"
	PORT[nginx]=$(free_port)
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
    upstream mock { server 127.0.0.1:${MPORT[nginx]}; keepalive 1024; }
    server {
        listen 127.0.0.1:${PORT[nginx]} backlog=4096;
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
	"$NGINX" -p "$d/" -e "$d/error.log" -c "$d/nginx.conf" >>"$d/stderr" 2>&1 &
	PIDS+=("$!")
	wait_port "${PORT[nginx]}" "$!" nginx
	PID[nginx]=$(cat "/proc/$!/task/$!/children" 2>/dev/null | tr -d ' ')
	[ -n "${PID[nginx]}" ] || fail "nginx has no worker"
	PIDS+=("${PID[nginx]}")	# a killed master leaves its worker behind
}

for t in $TARGETS; do
	start_mock "$t"
	case $t in
	h2) start_cancelproxy h2 h2 ;;
	http1) start_cancelproxy http1 http/1.1 ;;
	nginx) start_nginx ;;
	esac
done

field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# Distinct upstream connections the mock saw for request ids with prefix.
conns_for() {	# target prefix
	grep '"event":"mock_request"' "${LOG[$1]}" | grep "\"request_id\":\"$2" |
	    sed -n 's/.*"conn":\([0-9]*\).*/\1/p' | sort -u | wc -l
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : "-")}'; }

declare -A C_CONNS C_P50 C_P99 C_OPEN S_P50 S_P99 CPU_EV BIG
# Cancel rounds: gap 0 aborts all N at once (a burst: p50 is about the time
# to work through half of them); gap 1000 aborts one every millisecond
# with the others still open (the latency of one client's abort).
cancel() {	# target gap prefix-letter
	local t=$1 gap=$2 l=$3 r line p50s="" p99s="" open=0
	for r in $(seq 1 "$REPS"); do
		line=$("$T/loadgen" --mode cancel --target "127.0.0.1:${PORT[$t]}" \
		    --mock-log "${LOG[$t]}" --n "$N" --events 3 --abort fin \
		    --interval-ms 50 --tokens 100000 --prefix "$l$r-$t-" \
		    --abort-gap-us "$gap" --label "$t" --scenario cancel \
		    --pid "${PID[$t]}" --timeout-ms 120000 2>>"$T/loadgen.err" |
		    grep '^RESULT')
		[ -n "$line" ] || { say "$t: cancel round $r failed"; continue; }
		p50s="$p50s $(field "$line" p50_us)"
		p99s="$p99s $(field "$line" p99_us)"
		open=$(( open + $(field "$line" open) ))
		[ "$r" = 1 ] && [ "$l" = c ] && C_CONNS[$t]=$(conns_for "$t" "c1-$t-")
	done
	R_P50=$(echo $p50s | tr ' ' '\n' | median)
	R_P99=$(echo $p99s | tr ' ' '\n' | median)
	R_OPEN=$open
}
for t in $TARGETS; do
	cancel "$t" 0 c
	C_P50[$t]=$R_P50 C_P99[$t]=$R_P99 C_OPEN[$t]=$R_OPEN
	cancel "$t" 1000 s
	S_P50[$t]=$R_P50 S_P99[$t]=$R_P99
	C_OPEN[$t]=$(( ${C_OPEN[$t]} + R_OPEN ))
	line=$("$T/loadgen" --mode stream --target "127.0.0.1:${PORT[$t]}" \
	    --ref "127.0.0.1:${MPORT[$t]}" --mock-log "${LOG[$t]}" \
	    --mock-pid "${MPID[$t]}" --n "$CPU_N" --tokens "$CPU_TOKENS" \
	    --interval-ms 0 --first-token-ms 0 --prefix "cpu-$t-" --label "$t" \
	    --scenario cpu --pid "${PID[$t]}" --timeout-ms 120000 \
	    2>>"$T/loadgen.err" | grep '^RESULT')
	if [ -n "$line" ] && [ "$(field "$line" events)" -gt 0 ]; then
		CPU_EV[$t]=$(awk -v c="$(field "$line" target_cpu_ms)" \
		    -v e="$(field "$line" events)" -v f="$(field "$line" failed)" \
		    -v m="$(field "$line" mismatched)" \
		    'BEGIN {printf "%.2f (failed %d, mismatched %d)", c * 1000 / e, f, m}')
	else
		CPU_EV[$t]="-"
	fi
	say "$t: connections ${C_CONNS[$t]:-?}, burst p50 ${C_P50[$t]} p99 ${C_P99[$t]} us, one by one p50 ${S_P50[$t]} p99 ${S_P99[$t]} us, cpu/event ${CPU_EV[$t]} us"
done

big() {	# target
	"$T/loadgen" --mode stream --target "127.0.0.1:${PORT[$1]}" \
	    --ref "127.0.0.1:${MPORT[$1]}" --mock-log "${LOG[$1]}" \
	    --mock-pid "${MPID[$1]}" --n "$BIG_N" --tokens "$BIG_TOKENS" \
	    --first-token-ms "$BIG_FIRST_MS" --interval-ms "$BIG_INTERVAL_MS" \
	    --prefix "big-$1-" --label "$1" --scenario big --pid "${PID[$1]}" \
	    --max-pending 256 --timeout-ms 300000 2>>"$T/loadgen.err" |
	    grep '^RESULT'
}
for t in $TARGETS; do
	[ "$t" = h2 ] || continue
	line=$(big "$t")
	if [ -n "$line" ]; then
		BIG[$t]="completed $(field "$line" completed), failed $(field "$line" failed), mismatched $(field "$line" mismatched), peak open $(field "$line" peak_open), upstream connections $(conns_for "$t" "big-$t-")"
	else
		BIG[$t]="loadgen failed (see $T/loadgen.err)"
		KEEP=1
	fi
done

echo
echo "$N concurrent streams per target, 1 worker/process each, ulimit -n $NOFILE;"
echo "cancel latency in microseconds (median of $REPS rounds): the client's abort"
echo "to the mock seeing its stream end; burst = all $N at once, 1by1 = one"
echo "every millisecond; open = streams the mock never saw end."
printf '| %-34s | %s | %s | %s | %s | %s | %s | %s |\n' target "upstream conns" \
    "burst p50" "burst p99" "1by1 p50" "1by1 p99" open "CPU us per SSE event"
printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "---" "---" "---" "---" "---" "---" "---" "---"
for t in $TARGETS; do
	case $t in
	h2) name="cancelproxy, upstream h2" ;;
	http1) name="cancelproxy, upstream http/1.1" ;;
	nginx) name="nginx $("$NGINX" -v 2>&1 | sed 's/.*\///'), upstream http/1.1 keepalive" ;;
	esac
	printf '| %-34s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" \
	    "${C_CONNS[$t]:-?}" "${C_P50[$t]}" "${C_P99[$t]}" "${S_P50[$t]}" \
	    "${S_P99[$t]}" "${C_OPEN[$t]}" "${CPU_EV[$t]}"
done
for t in "${!BIG[@]}"; do
	echo
	echo "$BIG_N concurrent HTTP/1.1 clients, cancelproxy with an h2 upstream: ${BIG[$t]}"
done
