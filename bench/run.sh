#!/usr/bin/env bash
# bench/run.sh: how fast a client's disconnect closes the model's stream
# (1000 aborts at once, and one at a time among 1000 open streams),
# through cancelproxy, nginx (proxy_buffering off) and HAProxy, against the
# floor of the client talking to cancelproxy-mock directly; how much memory
# each proxy holds per stream waiting for its first token; and, at 1 and 2
# workers, the CPU each spends per SSE event relayed, the non-streaming
# requests per second it serves, and 10,000 concurrent streams.
#
#   bench/run.sh            everything (about 9 minutes)
#   bench/run.sh --quick    everything, small (about 1.5 minutes)
#   bench/run.sh --only cpu,throughput   only these scenarios
#
# Everything listens on 127.0.0.1; every process it starts is killed at exit.
# See docs/bench.md for what is measured and how to read the tables.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}

N=${N:-1000}		# concurrent streams per cancel scenario
RSS_N=${RSS_N:-4000}	# streams parked in the first-token wait for RSS
REPS=${REPS:-5}		# rounds of the cancel scenarios (median is reported)
EVENTS=${EVENTS:-3}	# mid-stream: abort after this many SSE events
INTERVAL_MS=${INTERVAL_MS:-50}	# mid-stream token interval at the mock
WORKERS=${WORKERS:-1}	# cancelproxy workers = nginx worker_processes = haproxy nbthread
PIN=${PIN:-0}		# 1: proxies on CPU 1, mock and loadgen on CPU 0
NICE=${NICE:-0}		# e.g. -10: the bench's processes ahead of other work
SETTLE_MS=${SETTLE_MS:-200}
WAIT_MS=${WAIT_MS:-3000}	# how long to wait for the mock to see a stream go
MAX_PENDING=${MAX_PENDING:-64}
INSTALL=${INSTALL:-1}
SKIP_BUILD=${SKIP_BUILD:-0}
MAX_SECONDS=${MAX_SECONDS:-1200}	# the whole run, watchdog
TARGETS=${TARGETS:-"direct cancelproxy nginx haproxy haproxy-stock"}
OUT_DIR=${OUT_DIR:-}
ONLY=${ONLY:-rss,cancel,spaced,cpu,throughput,c10k}
# spaced: the cancel scenarios again, N streams open, aborted one at a time
# SPACED_GAP_US apart: the latency of one cancel, without a burst's queue.
SPACED_GAP_US=${SPACED_GAP_US:-1000}
SPACED_REPS=${SPACED_REPS:-2}
KEEPALIVE=${KEEPALIVE:-128}	# idle upstream connections kept (cancelproxy, nginx)
# The load scenarios (cpu, throughput, c10k), each at every SCALE_WORKERS.
LOAD_TARGETS=${LOAD_TARGETS:-"direct cancelproxy nginx haproxy"}
SCALE_WORKERS=${SCALE_WORKERS:-"1 2"}
CPU_N=${CPU_N:-100}		# cpu: concurrent streams, read to the end
CPU_TOKENS=${CPU_TOKENS:-2000}	# cpu: tokens per stream (+2 events: stop, [DONE])
CPU_INTERVAL_MS=${CPU_INTERVAL_MS:-0}
CPU_REPS=${CPU_REPS:-3}
PACED_N=${PACED_N:-1000}	# cpu, paced: streams, tokens, ms between tokens
PACED_TOKENS=${PACED_TOKENS:-100}
PACED_INTERVAL_MS=${PACED_INTERVAL_MS:-20}
TP_SECONDS=${TP_SECONDS:-10}	# throughput: wrk duration per run
TP_CONNS=${TP_CONNS:-64}
TP_THREADS=${TP_THREADS:-1}
TP_REPS=${TP_REPS:-3}
C10K_N=${C10K_N:-10000}		# c10k: concurrent streams
C10K_TOKENS=${C10K_TOKENS:-10}
C10K_FIRST_MS=${C10K_FIRST_MS:-3000}	# first token after this: all open at once
C10K_INTERVAL_MS=${C10K_INTERVAL_MS:-500}
C10K_WORKERS=${C10K_WORKERS:-2}	# which of SCALE_WORKERS run c10k

usage() {
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
	cat <<EOF
options:
  --only LIST       scenarios, comma-separated, of: rss cancel spaced cpu
                    throughput c10k (default all: $ONLY)
  --quick           N=100, RSS_N=1000, REPS=1; cpu 50 x 500 tokens and
                    300 x 50 paced, 1 round;
                    throughput 3 s, 1 round; c10k 2000 streams
  --n N             concurrent streams per cancel scenario (default $N)
  --rss-n N         streams for the RSS measurement (default $RSS_N)
  --reps R          rounds of the cancel scenarios (default $REPS)
  --workers W       event-loop threads/processes per proxy (default $WORKERS)
  --pin             pin the proxies to CPU 1, the mock and loadgen to CPU 0
  --nice N          run everything at this nice level (-10: ahead of other
                    work on a shared machine; needs root)
  --no-install      do not run apt-get
  --skip-build      use the binaries already in \$BUILD
  --out DIR         keep logs and results here (default: a new /tmp dir)
  --scale-workers "1 2"   worker counts of the cpu, throughput, c10k scenarios
  --cpu-n N --cpu-tokens N --cpu-reps R       cpu: streams, tokens, rounds
  --tp-seconds S --tp-conns C --tp-reps R     throughput: wrk per run, rounds
  --c10k-n N        c10k: concurrent streams (capped by ulimit -n)
environment: the same names in capitals, plus EVENTS, INTERVAL_MS, SETTLE_MS,
WAIT_MS, MAX_PENDING, MAX_SECONDS, TARGETS ("direct cancelproxy nginx haproxy
haproxy-stock": haproxy has "option abortonclose", haproxy-stock has not),
LOAD_TARGETS (the cpu, throughput, c10k targets: "$LOAD_TARGETS"),
CPU_INTERVAL_MS, PACED_N, PACED_TOKENS, PACED_INTERVAL_MS, TP_THREADS, C10K_TOKENS, C10K_FIRST_MS, C10K_INTERVAL_MS,
C10K_WORKERS, KEEPALIVE.
EOF
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--quick) N=100; RSS_N=1000; REPS=1; MAX_SECONDS=400
		CPU_N=50; CPU_TOKENS=500; CPU_REPS=1; TP_SECONDS=3; TP_REPS=1
		PACED_N=300; PACED_TOKENS=50
		C10K_N=2000; C10K_FIRST_MS=1500 ;;
	--only) ONLY=$2; shift ;;
	--scale-workers) SCALE_WORKERS=$2; shift ;;
	--cpu-n) CPU_N=$2; shift ;;
	--cpu-tokens) CPU_TOKENS=$2; shift ;;
	--cpu-reps) CPU_REPS=$2; shift ;;
	--tp-seconds) TP_SECONDS=$2; shift ;;
	--tp-conns) TP_CONNS=$2; shift ;;
	--tp-reps) TP_REPS=$2; shift ;;
	--c10k-n) C10K_N=$2; shift ;;
	--n) N=$2; shift ;;
	--rss-n) RSS_N=$2; shift ;;
	--reps) REPS=$2; shift ;;
	--workers) WORKERS=$2; shift ;;
	--pin) PIN=1 ;;
	--nice) NICE=$2; shift ;;
	--no-install) INSTALL=0 ;;
	--skip-build) SKIP_BUILD=1 ;;
	--out) OUT_DIR=$2; shift ;;
	-h|--help) usage 0 ;;
	*) echo "run.sh: unknown option $1" >&2; usage 2 ;;
	esac
	shift
done

ONLY=$(echo "$ONLY" | tr ' ' ',')
for sc in $(echo "$ONLY" | tr ',' ' '); do
	case $sc in
	rss|cancel|spaced|cpu|throughput|c10k) ;;
	*) echo "run.sh: --only: unknown scenario $sc (rss cancel spaced cpu throughput c10k)" >&2
	   exit 2 ;;
	esac
done
want() { case ",$ONLY," in *",$1,"*) return 0 ;; esac; return 1; }
WANT_A=0	# rss, cancel: TARGETS at WORKERS
WANT_B=0	# cpu, throughput, c10k: LOAD_TARGETS at each of SCALE_WORKERS
{ want rss || want cancel || want spaced; } && WANT_A=1
{ want cpu || want throughput || want c10k; } && WANT_B=1

# Percent of the machine's CPU time busy over one second (others' work too).
cpu_busy() {
	local a b
	a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
	local tot=0 idle i
	for i in 1 2 3 4 5 6 7 8; do tot=$(( tot + ${b[$i]} - ${a[$i]} )); done
	idle=$(( ${b[4]} - ${a[4]} + ${b[5]} - ${a[5]} ))
	[ "$tot" -gt 0 ] && echo $(( 100 * (tot - idle) / tot )) || echo "?"
}
say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

# ---- processes and cleanup ---------------------------------------------
PIDS=()
WATCHDOG=
POLICY_RC_CREATED=0

cleanup() {
	local p
	trap - EXIT INT TERM
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	sleep 0.3
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	[ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2>/dev/null
	if [ "$POLICY_RC_CREATED" = 1 ]; then
		rm -f /usr/sbin/policy-rc.d
	fi
	[ -n "${OUT_DIR:-}" ] && say "logs and raw results: $OUT_DIR"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# The whole run is bounded: past MAX_SECONDS the watchdog ends it.
( sleep "$MAX_SECONDS" </dev/null >/dev/null 2>&1 & sl=$!
  trap 'kill $sl 2>/dev/null; exit 0' TERM
  wait $sl && { echo "[bench] watchdog: $MAX_SECONDS s reached, stopping" >&2; kill -TERM $$; } ) &
WATCHDOG=$!

# ---- (a) install --------------------------------------------------------
PKGS="build-essential cmake pkg-config libevent-dev libssl-dev libcjson-dev node-llhttp nginx-light haproxy"
want throughput && PKGS="$PKGS wrk"
if [ "$INSTALL" = 1 ]; then
	missing=""
	for p in $PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		    missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		[ "$(id -u)" = 0 ] || fail "missing packages:$missing (run as root, or install them)"
		# Debian starts nginx and haproxy on install (nginx on *:80);
		# keep them from starting, as the bench starts its own.
		if [ ! -e /usr/sbin/policy-rc.d ]; then
			printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
			chmod +x /usr/sbin/policy-rc.d
			POLICY_RC_CREATED=1
		fi
		say "installing:$missing"
		apt-get update -qq || fail "apt-get update"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		    --no-install-recommends $missing >/dev/null || fail "apt-get install$missing"
	fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
WRK=$(command -v wrk || echo /usr/bin/wrk)
# Every target the selected scenarios use (at most 5: they share a port block).
ALL_TARGETS=""
[ "$WANT_A" = 1 ] && ALL_TARGETS="$TARGETS"
[ "$WANT_B" = 1 ] && for t in $LOAD_TARGETS; do
	case " $ALL_TARGETS " in *" $t "*) ;; *) ALL_TARGETS="$ALL_TARGETS $t" ;; esac
done
for t in $ALL_TARGETS; do
	case $t in
	nginx) [ -x "$NGINX" ] || fail "nginx not found" ;;
	haproxy*) [ -x "$HAPROXY" ] || fail "haproxy not found" ;;
	esac
done
if want throughput; then [ -x "$WRK" ] || fail "wrk not found (apt-get install wrk)"; fi

# ---- limits ---------------------------------------------------------------
need=$(( RSS_N * 2 + N * 2 + 1024 ))
[ "$need" -lt $(( C10K_N * 2 + 1024 )) ] && need=$(( C10K_N * 2 + 1024 ))
[ "$need" -lt 65536 ] && need=65536
ulimit -Hn "$need" 2>/dev/null
ulimit -n "$need" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
if [ "$WANT_A" = 1 ]; then
	[ "$NOFILE" -ge $(( RSS_N * 2 + 256 )) ] ||
	    fail "ulimit -n is $NOFILE; RSS_N=$RSS_N needs $(( RSS_N * 2 + 256 ))"
fi
# A proxy holds two descriptors per stream, in one process (cancelproxy's
# workers are threads, HAProxy's too): past the hard limit, which only
# CAP_SYS_RESOURCE can raise, C10K_N is capped and the table says so.
C10K_ASKED=$C10K_N
if [ $(( C10K_N * 2 + 200 )) -gt "$NOFILE" ]; then
	C10K_N=$(( (NOFILE - 200) / 2 ))
fi

# ---- (b) build ----------------------------------------------------------
if [ -z "$OUT_DIR" ]; then
	OUT_DIR=$(mktemp -d /tmp/cancelproxy-bench.XXXXXX)
else
	mkdir -p "$OUT_DIR"
fi
T=$OUT_DIR
if [ "$SKIP_BUILD" != 1 ]; then
	say "building cancelproxy (Release) in $BUILD"
	{ cmake -S "$ROOT" -B "$BUILD" -DCANCELPROXY_TESTS=OFF -DCMAKE_BUILD_TYPE=Release &&
	  cmake --build "$BUILD" -j2; } >"$T/build.log" 2>&1 ||
	    { tail -20 "$T/build.log" >&2; fail "build (see $T/build.log)"; }
fi
[ -x "$BUILD/cancelproxy" ] && [ -x "$BUILD/cancelproxy-mock" ] ||
    fail "no binaries in $BUILD"
gcc -O2 -Wall -Wextra -Wno-unused-parameter -o "$T/loadgen" "$ROOT/bench/loadgen.c" ||
    fail "loadgen build"

if [ "$NICE" != 0 ]; then
	renice -n "$NICE" -p $$ >/dev/null || fail "renice $NICE"
fi
CPU_PROXY=()
CPU_SIDE=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	CPU_PROXY=(taskset -c 1)
	CPU_SIDE=(taskset -c 0)
fi

# ---- (c) start everything -------------------------------------------------
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {	# port pid what
	local i
	for i in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || fail "$3 exited at start (see $T)"
		sleep 0.05
	done
	fail "$3 does not listen on 127.0.0.1:$1"
}
BASE=
for try in $(seq 1 50); do
	b=$(( 20000 + (RANDOM % 1200) * 10 ))
	ok=1
	for o in 0 1 2 3 4 5 6 7 8 9; do port_free $(( b + o )) || ok=0; done
	[ $ok = 1 ] && { BASE=$b; break; }
done
[ -n "$BASE" ] || fail "no free ports"

declare -A MOCK_PORT MOCK_PID PORT PIDS_OF LOG MAIN_PID
TD=$T	# where the running targets keep configs and logs (per phase)
i=0
[ "$(echo $ALL_TARGETS | wc -w)" -le 5 ] || fail "at most 5 targets in TARGETS and LOAD_TARGETS together"
for t in $ALL_TARGETS; do
	MOCK_PORT[$t]=$(( BASE + i ))
	PORT[$t]=$(( BASE + 5 + i ))
	i=$(( i + 1 ))
done
PORT[direct]=${MOCK_PORT[direct]:-0}

start_mock() {	# target
	local t=$1 log="$TD/mock-$1.log"
	touch "$log"
	"${CPU_SIDE[@]}" "$BUILD/cancelproxy-mock" --listen "127.0.0.1:${MOCK_PORT[$t]}" \
	    --first-token-ms 50 --interval-ms "$INTERVAL_MS" --tokens 20 \
	    --hop "mock-$t" --log "$log" >>"$TD/mock-$t.err" 2>&1 &
	MOCK_PID[$t]=$!
	PIDS+=("$!")
	LOG[$t]=$log
	wait_port "${MOCK_PORT[$t]}" "$!" "cancelproxy-mock ($t)"
}

start_cancelproxy() {
	mkdir -p "$TD/cancelproxy"
	cat > "$TD/cancelproxy/cancelproxy.json" <<EOF
{
  "hop": "edge",
  "workers": $WORKERS,
  "listen": [ { "address": "127.0.0.1:${PORT[cancelproxy]}" } ],
  "upstreams": {
    "mock": {
      "url": "http://127.0.0.1:${MOCK_PORT[cancelproxy]}",
      "timeouts_ms": { "connect": 5000, "first_byte": 3600000, "idle": 3600000, "total": 0 },
      "keepalive": $KEEPALIVE
    }
  },
  "routes": [ { "path_prefix": "/", "upstream": "mock" } ],
  "limits": { "max_connections": 100000 },
  "log": { "path": "$TD/cancelproxy/cancelproxy.log", "level": "info" }
}
EOF
	"${CPU_PROXY[@]}" "$BUILD/cancelproxy" -c "$TD/cancelproxy/cancelproxy.json" \
	    >>"$TD/cancelproxy/stderr.log" 2>&1 &
	PIDS+=("$!")
	PIDS_OF[cancelproxy]=$!
	MAIN_PID[cancelproxy]=$!
	wait_port "${PORT[cancelproxy]}" "$!" cancelproxy
}

start_nginx() {
	local d=$TD/nginx user=""
	mkdir -p "$d/tmp"
	[ "$(id -u)" = 0 ] && user="user $(id -un) $(id -gn);"
	cat > "$d/nginx.conf" <<EOF
# Generated by bench/run.sh: a streaming reverse proxy as nginx users set one up.
$user
worker_processes $WORKERS;
worker_rlimit_nofile $NOFILE;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections $NOFILE; use epoll; }
http {
    access_log $d/access.log;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    upstream mock {
        server 127.0.0.1:${MOCK_PORT[nginx]};
        keepalive $KEEPALIVE;
    }
    server {
        listen 127.0.0.1:${PORT[nginx]} backlog=4096;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }
    }
}
EOF
	"${CPU_PROXY[@]}" "$NGINX" -p "$d/" -e "$d/error.log" -c "$d/nginx.conf" \
	    >>"$d/stderr.log" 2>&1 &
	PIDS+=("$!")
	NGINX_MASTER=$!
	MAIN_PID[nginx]=$!
	wait_port "${PORT[nginx]}" "$!" nginx
	# RSS and CPU are the workers'; the master only supervises.
	local kids
	kids=$(cat "/proc/$NGINX_MASTER/task/$NGINX_MASTER/children" 2>/dev/null)
	[ -n "$kids" ] || fail "nginx has no worker processes"
	PIDS_OF[nginx]=$kids
}

# haproxy: with "option abortonclose", without which HAProxy does not watch
# the client while it waits for the server, and "option http-no-delay",
# without which it holds SSE events back (MSG_MORE: several events, up to
# ~200 ms, per write to the client); haproxy-stock: with neither.
start_haproxy() {	# target
	local t=$1 d=$TD/$1 aoc="    option abortonclose
    option http-no-delay"
	[ "$t" = haproxy-stock ] && aoc="    # option abortonclose, option http-no-delay: stock behaviour"
	mkdir -p "$d"
	cat > "$d/haproxy.cfg" <<EOF
# Generated by bench/run.sh: the same streaming reverse proxy in HAProxy.
global
    nbthread $WORKERS
    maxconn $(( NOFILE / 2 - 100 ))
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
$aoc
    maxconn $(( NOFILE / 2 - 100 ))
    timeout connect 5s
    timeout client 3600s
    timeout server 3600s
    timeout http-request 10s
    timeout http-keep-alive 75s
frontend fe
    bind 127.0.0.1:${PORT[$t]} backlog 4096
    default_backend be
backend be
    http-reuse safe
    server mock 127.0.0.1:${MOCK_PORT[$t]}
EOF
	"$HAPROXY" -c -f "$d/haproxy.cfg" >"$d/check.log" 2>&1 ||
	    { cat "$d/check.log" >&2; fail "$t config"; }
	"${CPU_PROXY[@]}" "$HAPROXY" -db -f "$d/haproxy.cfg" >>"$d/access.log" 2>>"$d/stderr.log" &
	PIDS+=("$!")
	PIDS_OF[$t]=$!
	MAIN_PID[$t]=$!
	wait_port "${PORT[$t]}" "$!" "$t"
}

start_target() {	# target: its mock, then the proxy in front of it
	start_mock "$1"
	case $1 in
	direct) PIDS_OF[direct]=${MOCK_PID[direct]}; MAIN_PID[direct]= ;;
	cancelproxy) start_cancelproxy ;;
	nginx) start_nginx ;;
	haproxy|haproxy-stock) start_haproxy "$1" ;;
	*) fail "unknown target $1" ;;
	esac
}

# Stops a target's proxy and mock (only these processes, by their ids).
stop_target() {
	local p keep=()
	for p in ${MAIN_PID[$1]} ${MOCK_PID[$1]}; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in ${MAIN_PID[$1]} ${MOCK_PID[$1]}; do
		for _ in $(seq 1 40); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		[ "$p" = "${MAIN_PID[$1]}" ] || [ "$p" = "${MOCK_PID[$1]}" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

BUSY_START=$(cpu_busy)
RESULTS=$T/results.txt		# rss, cancel
RESULTS_B=$T/results-load.txt	# cpu, throughput, c10k
: > "$RESULTS"
: > "$RESULTS_B"
{
	echo "# cancelproxy bench $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "# commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo ' (work tree has changes)')"
	echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
	echo "# $("$NGINX" -v 2>&1), $("$HAPROXY" -v 2>/dev/null | head -1 | cut -d' ' -f1-3), cancelproxy $("$BUILD/cancelproxy" -V 2>/dev/null | cut -d' ' -f2)"
	echo "# scenarios: $ONLY"
	[ "$WANT_A" = 1 ] && echo "# rss, cancel: N=$N RSS_N=$RSS_N REPS=$REPS EVENTS=$EVENTS INTERVAL_MS=$INTERVAL_MS WORKERS=$WORKERS PIN=$PIN NICE=$NICE ulimit-n=$NOFILE KEEPALIVE=$KEEPALIVE"
	[ "$WANT_B" = 1 ] && echo "# load: SCALE_WORKERS=\"$SCALE_WORKERS\" CPU_N=$CPU_N CPU_TOKENS=$CPU_TOKENS CPU_INTERVAL_MS=$CPU_INTERVAL_MS CPU_REPS=$CPU_REPS PACED_N=$PACED_N PACED_TOKENS=$PACED_TOKENS PACED_INTERVAL_MS=$PACED_INTERVAL_MS TP_SECONDS=$TP_SECONDS TP_CONNS=$TP_CONNS TP_THREADS=$TP_THREADS TP_REPS=$TP_REPS C10K_N=$C10K_N C10K_WORKERS=\"$C10K_WORKERS\" PIN=$PIN NICE=$NICE ulimit-n=$NOFILE KEEPALIVE=$KEEPALIVE"
	echo "# before starting: loadavg $(cut -d' ' -f1-3 /proc/loadavg), CPU ${BUSY_START}% busy with other work"
} > "$T/header.txt"
say "ports: $(for t in $ALL_TARGETS; do printf '%s=%s(mock %s) ' "$t" "${PORT[$t]}" "${MOCK_PORT[$t]}"; done)"
say "before starting: loadavg $(cut -d' ' -f1-3 /proc/loadavg), CPU ${BUSY_START}% busy with other work"
[ "${BUSY_START:-0}" != "?" ] && [ "${BUSY_START:-0}" -gt 20 ] &&
    say "WARNING: other work keeps the CPUs ${BUSY_START}% busy; the numbers will be noisy"

alive() {	# target
	local p
	for p in ${PIDS_OF[$1]}; do
		kill -0 "$p" 2>/dev/null || return 1
	done
}

# Runs one loadgen scenario against one target and keeps its RESULT line.
run_one() {	# target scenario rep n loadgen-args...
	local t=$1 s=$2 rep=$3 n=$4 pidargs="" p line
	shift 4
	for p in ${PIDS_OF[$t]}; do pidargs="$pidargs --pid $p"; done
	line=$(timeout 180 "${CPU_SIDE[@]}" "$T/loadgen" --target "127.0.0.1:${PORT[$t]}" \
	    --mock-log "${LOG[$t]}" --label "$t" --scenario "$s" --n "$n" \
	    --prefix "r$rep-$s-$t" --max-pending "$MAX_PENDING" \
	    --settle-ms "$SETTLE_MS" --wait-ms "$WAIT_MS" --timeout-ms 170000 \
	    --dump "$T/streams-$t-$s-r$rep.tsv" $pidargs "$@" 2>>"$T/loadgen.log" | grep '^RESULT')
	if [ -z "$line" ]; then
		say "  $t $s: loadgen failed (see $T/loadgen.log)"
		tail -2 "$T/loadgen.log" >&2
		return
	fi
	echo "$line rep=$rep" >> "$RESULTS"
	local open
	open=$(echo "$line" | sed -n 's/.* open=\([0-9]*\).*/\1/p')
	printf '  %-14s %-8s %s\n' "$t" "$s" "$(echo "$line" | tr ' ' '\n' |
	    grep -E '^(ready|open|p50_us|p99_us|max_us|kib_per_stream)=' | tr '\n' ' ')" >&2
	if ! alive "$t"; then
		say "  $t: PROCESS DIED during $s"
		echo "DIED target=$t scenario=$s rep=$rep" >> "$RESULTS"
		stop_target "$t"
		start_target "$t"
	elif [ "${open:-0}" -gt 0 ]; then
		# Streams the target left open would linger for the rest of
		# the run: start it (and its mock) afresh.
		say "  $t left $open upstream streams open; restarting it and its mock"
		stop_target "$t"
		start_target "$t"
	fi
}

# Warning and error lines in a target's own log, as it stands (in $TD).
log_warns() {	# target
	local c
	case $1 in
	cancelproxy) c=$(grep -c '"level":"\(warn\|error\)"' "$TD/cancelproxy/cancelproxy.log" 2>/dev/null) ;;
	nginx) c=$(grep -vc '^$' "$TD/nginx/error.log" 2>/dev/null) ;;
	haproxy*) c=$(grep -vc '^$' "$TD/$1/stderr.log" 2>/dev/null) ;;
	direct) c=$(grep -c '"level":"\(warn\|error\)"' "${LOG[direct]}" 2>/dev/null) ;;
	esac
	echo "${c:-0}"
}

# utime + stime of processes from /proc/PID/stat (all threads), in ms.
CLK_TCK=$(getconf CLK_TCK)
stat_ms() {	# pid...
	local p v tot=0
	for p in "$@"; do
		v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }')
		tot=$(( tot + ${v:-0} ))
	done
	echo $(( tot * 1000 / CLK_TCK ))
}

# After the target's process died: note it and start it (and its mock) anew.
check_alive() {	# target scenario rep results-file
	if ! alive "$1"; then
		say "  $1: PROCESS DIED during $2"
		echo "DIED target=$1 scenario=$2 rep=$3" >> "$4"
		stop_target "$1"
		start_target "$1"
	fi
}

# Streams read to the end through one target, each checked against the
# mock's own answer (loadgen --mode stream); keeps the RESULT line.
run_stream() {	# target scenario workers rep n loadgen-args...
	local t=$1 s=$2 w=$3 rep=$4 n=$5 pidargs="" p line
	shift 5
	for p in ${PIDS_OF[$t]}; do pidargs="$pidargs --pid $p"; done
	line=$(timeout 200 "${CPU_SIDE[@]}" "$T/loadgen" --mode stream \
	    --target "127.0.0.1:${PORT[$t]}" --ref "127.0.0.1:${MOCK_PORT[$t]}" \
	    --mock-log "${LOG[$t]}" --mock-pid "${MOCK_PID[$t]}" --label "$t" \
	    --scenario "$s" --n "$n" --prefix "w$w-r$rep-$s-$t" \
	    --max-pending "$MAX_PENDING" --wait-ms "$WAIT_MS" --timeout-ms 120000 \
	    $pidargs "$@" 2>>"$T/loadgen.log" | grep '^RESULT')
	if [ -z "$line" ]; then
		say "  $t $s: loadgen failed (see $T/loadgen.log)"
		tail -2 "$T/loadgen.log" >&2
		echo "FAILED target=$t scenario=$s workers=$w rep=$rep" >> "$RESULTS_B"
	else
		echo "$line workers=$w rep=$rep" >> "$RESULTS_B"
		printf '  %-14s %-9s %s\n' "$t" "$s" "$(echo "$line" | tr ' ' '\n' |
		    grep -E '^(completed|failed|mismatched|events|peak_open|target_cpu_stat_ms|loadgen_cpu_ms|stream_ms)=' |
		    tr '\n' ' ')" >&2
	fi
	check_alive "$t" "$s" "$rep" "$RESULTS_B"
}

# wrk against one target: requests per second, and the CPU the target, its
# mock and wrk itself spent. The target's logs are counted and emptied after.
run_wrk() {	# target workers rep
	local t=$1 w=$2 rep=$3 out="$T/wrk-$1-w$2-r$3.txt" c0 c1 m0 m1 line
	c0=$(stat_ms ${PIDS_OF[$t]})
	m0=$(stat_ms ${MOCK_PID[$t]})
	( timeout $(( TP_SECONDS + 30 )) "${CPU_SIDE[@]}" "$WRK" -t "$TP_THREADS" \
	    -c "$TP_CONNS" -d "${TP_SECONDS}s" --latency -s "$T/post.lua" \
	    "http://127.0.0.1:${PORT[$t]}/v1/chat/completions"
	  echo "exit=$?"
	  times ) > "$out" 2>&1
	c1=$(stat_ms ${PIDS_OF[$t]})
	m1=$(stat_ms ${MOCK_PID[$t]})
	line=$(awk -v t="$t" -v w="$w" -v rep="$rep" -v tcpu=$(( c1 - c0 )) \
	    -v mcpu=$(( m1 - m0 )) '
	function tms(v) {	# wrk latency ("850.00us", "1.47ms", "1.02s") -> ms
		if (v ~ /us$/) return v / 1000
		if (v ~ /ms$/) return v + 0
		if (v ~ /m$/) return v * 60000
		if (v ~ /s$/) return v * 1000
		return v + 0
	}
	function sec(v,    a) { split(v, a, "m"); return a[1] * 60 + a[2] }
	/Requests\/sec:/ { rps = $2 }
	/ requests in / { req = $1; secs = $4; sub(/s,$/, "", secs) }
	/Non-2xx or 3xx responses:/ { non2xx = $NF }
	/Socket errors:/ { gsub(",", ""); ec = $4; er = $6; ew = $8; et = $10 }
	$1 == "50%" { p50 = tms($2) }
	$1 == "99%" { p99 = tms($2) }
	/^exit=/ { ex = substr($0, 6) }
	/^[0-9]+m[0-9.]+s [0-9]+m[0-9.]+s$/ { tl[++nt] = $0 }
	END {
		split(tl[2], a, " ")
		printf "TP label=%s workers=%d rep=%d rps=%s requests=%d seconds=%s non2xx=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d p50_ms=%s p99_ms=%s target_cpu_ms=%d mock_cpu_ms=%d wrk_cpu_ms=%.0f wrk_exit=%s\n", t, w, rep, rps == "" ? 0 : rps, req, secs == "" ? 0 : secs, non2xx, ec, er, ew, et, p50 == "" ? "-" : p50, p99 == "" ? "-" : p99, tcpu, mcpu, 1000 * (sec(a[1]) + sec(a[2])), ex
	}' "$out")
	echo "$line" >> "$RESULTS_B"
	printf '  %-14s %s\n' "$t" "$(echo "$line" | tr ' ' '\n' |
	    grep -E '^(rps|non2xx|err_read|p99_ms|target_cpu_ms|wrk_cpu_ms)=' | tr '\n' ' ')" >&2
	# Hundreds of thousands of log lines per run: count, then empty them.
	WARNS_B[$t]=$(( ${WARNS_B[$t]:-0} + $(log_warns "$t") ))
	: > "${LOG[$t]}"
	case $t in
	cancelproxy) : > "$TD/cancelproxy/cancelproxy.log" ;;
	nginx) : > "$TD/nginx/access.log"; : > "$TD/nginx/error.log" ;;
	haproxy*) : > "$TD/$t/access.log"; : > "$TD/$t/stderr.log" ;;
	esac
	check_alive "$t" throughput "$rep" "$RESULTS_B"
}

FB="--events 0 --first-token-ms 600000"
# Mid-stream: first tokens spread over one interval, so that the streams'
# ticks do not line up and an abort lands at a random point between tokens.
MID="--events $EVENTS --first-token-ms $INTERVAL_MS --first-token-jitter-ms $INTERVAL_MS --interval-ms $INTERVAL_MS --tokens 1000000"

# ---- (d) scenarios ----------------------------------------------------------
CP_D2C=""
WARNS=""
if [ "$WANT_A" = 1 ]; then
TD=$T
for t in $TARGETS; do
	start_target "$t"
done
# Memory first, on fresh processes: N streams parked before the first token.
if want rss; then
	say "RSS: $RSS_N streams waiting for the first token"
	for t in $TARGETS; do
		[ "$t" = direct ] && continue
		run_one "$t" rss 0 "$RSS_N" --mode rss --abort rst $FB --settle-ms 500 \
		    --ready-timeout-ms 60000
	done
fi

# One round of the four cancel scenarios; targets interleaved so that
# background load hits all alike. With a gap, aborts come one at a time.
cancel_round() {	# rep reps label-prefix gap-us
	local rep=$1 reps=$2 pre=$3 gap=$4 s sargs t
	for s in fb-fin fb-rst mid-fin mid-rst; do
		case $s in
		fb-*) sargs=$FB ;;
		mid-*) sargs=$MID ;;
		esac
		say "${pre:+spaced }round $rep/$reps: $s, $N streams${pre:+, one abort every $gap us}"
		for t in $TARGETS; do
			run_one "$t" "$pre$s" "$rep" "$N" --abort "${s#*-}" $sargs \
			    --abort-gap-us "$gap"
		done
	done
}

# Cancel latency: N aborts at once.
want cancel && for rep in $(seq 1 "$REPS"); do
	cancel_round "$rep" "$REPS" "" 0
done

# One cancel at a time among N open streams: what a single client's abort
# costs, which the burst above hides behind its queue.
want spaced && for rep in $(seq 1 "$SPACED_REPS"); do
	cancel_round "$rep" "$SPACED_REPS" sp- "$SPACED_GAP_US"
done

# cancelproxy's own view: detect_to_close_us of its cancel records.
if [ -f "$T/cancelproxy/cancelproxy.log" ]; then
	CP_D2C=$(grep '"event":"cancel"' "$T/cancelproxy/cancelproxy.log" |
	    sed -n 's/.*"detect_to_close_us":\([0-9-]*\).*/\1/p' | sort -n |
	    awk 'function at(p,  i) { i = int(NR * p + 0.5); if (i < 1) i = 1; return v[i] }
	        { v[NR] = $1 }
	        END { if (NR) printf "%d cancel records, detect_to_close_us p50 %d, p99 %d, max %d", NR, at(0.5), at(0.99), v[NR] }')
fi
for t in $TARGETS; do
	WARNS="$WARNS $t=$(log_warns "$t")"
done
BUSY_A_END=$(cpu_busy)
LOAD_A_END=$(cut -d' ' -f1-3 /proc/loadavg)
for t in $TARGETS; do
	stop_target "$t"
done
fi

# ---- (d2) load: CPU per event, throughput, 10,000 streams, at each of
# SCALE_WORKERS; a fresh set of targets (and logs, in load-wW/) each time.
declare -A WARNS_B
if [ "$WANT_B" = 1 ]; then
cat > "$T/post.lua" <<'EOF'
-- bench/run.sh throughput: a small non-streaming chat completion, answered
-- at once by the mock (one token, no delay).
wrk.method = "POST"
wrk.body = '{"model":"m","stream":false,"messages":[{"role":"user","content":"hi"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Mock-Tokens"] = "1"
wrk.headers["X-Mock-First-Token-Ms"] = "0"
EOF
first_w=$(echo $SCALE_WORKERS | cut -d' ' -f1)
for w in $SCALE_WORKERS; do
	WORKERS_A=$WORKERS
	WORKERS=$w
	TD=$T/load-w$w
	mkdir -p "$TD"
	b=$(cpu_busy)
	echo "LOAD workers=$w loadavg=$(cut -d' ' -f1 /proc/loadavg) busy=$b" >> "$RESULTS_B"
	say "load scenarios at $w worker(s); before starting: loadavg $(cut -d' ' -f1-3 /proc/loadavg), CPU ${b}% busy with other work"
	for t in $LOAD_TARGETS; do
		start_target "$t"
	done
	if want cpu; then
		for rep in $(seq 1 "$CPU_REPS"); do
			say "cpu, $w worker(s), round $rep/$CPU_REPS: burst, $CPU_N streams x $CPU_TOKENS tokens, read to the end"
			for t in $LOAD_TARGETS; do
				run_stream "$t" cpu "$w" "$rep" "$CPU_N" --tokens "$CPU_TOKENS" \
				    --interval-ms "$CPU_INTERVAL_MS" --first-token-ms 0
			done
			say "cpu, $w worker(s), round $rep/$CPU_REPS: paced, $PACED_N streams x $PACED_TOKENS tokens, one per $PACED_INTERVAL_MS ms"
			for t in $LOAD_TARGETS; do
				run_stream "$t" cpu-paced "$w" "$rep" "$PACED_N" --tokens "$PACED_TOKENS" \
				    --interval-ms "$PACED_INTERVAL_MS" --first-token-ms "$PACED_INTERVAL_MS" \
				    --first-token-jitter-ms "$PACED_INTERVAL_MS"
			done
		done
	fi
	if want throughput; then
		for rep in $(seq 1 "$TP_REPS"); do
			say "throughput, $w worker(s), round $rep/$TP_REPS: wrk -c $TP_CONNS, ${TP_SECONDS} s each"
			for t in $LOAD_TARGETS; do
				# The floor is the mock alone: no workers to scale.
				[ "$t" = direct ] && [ "$w" != "$first_w" ] && continue
				run_wrk "$t" "$w" "$rep"
			done
		done
	fi
	if want c10k && case " $C10K_WORKERS " in *" $w "*) true ;; *) false ;; esac; then
		say "c10k, $w worker(s): $C10K_N concurrent streams"
		for t in $LOAD_TARGETS; do
			run_stream "$t" c10k "$w" 1 "$C10K_N" --tokens "$C10K_TOKENS" \
			    --interval-ms "$C10K_INTERVAL_MS" \
			    --first-token-ms "$C10K_FIRST_MS" --timeout-ms 150000
		done
	fi
	for t in $LOAD_TARGETS; do
		WARNS_B[$t]=$(( ${WARNS_B[$t]:-0} + $(log_warns "$t") ))
		stop_target "$t"
	done
	WORKERS=$WORKERS_A
done
TD=$T
fi

# The load tables: CPU per event and throughput side by side, with ratios
# to nginx at the same worker count; scaling; the load generators' own
# cost; the 10,000-stream run.
load_table() {
	local wb="" t
	for t in $LOAD_TARGETS; do wb="$wb $t=${WARNS_B[$t]:-0}"; done
	awk -v targets="$LOAD_TARGETS" -v sw="$SCALE_WORKERS" -v cpu_n="$CPU_N" \
	    -v cpu_tokens="$CPU_TOKENS" -v cpu_iv="$CPU_INTERVAL_MS" -v cpu_reps="$CPU_REPS" \
	    -v paced_n="$PACED_N" -v paced_tokens="$PACED_TOKENS" -v paced_iv="$PACED_INTERVAL_MS" \
	    -v tp_s="$TP_SECONDS" -v tp_c="$TP_CONNS" -v tp_t="$TP_THREADS" -v tp_reps="$TP_REPS" \
	    -v c10k_n="$C10K_N" -v c10k_asked="$C10K_ASKED" -v nofile="$NOFILE" \
	    -v c10k_tok="$C10K_TOKENS" -v c10k_first="$C10K_FIRST_MS" -v c10k_iv="$C10K_INTERVAL_MS" \
	    -v warns="$wb" -v want_cpu="$(want cpu && echo 1)" \
	    -v want_tp="$(want throughput && echo 1)" -v want_c10k="$(want c10k && echo 1)" '
	function kv(line, key,    m) {
		if (match(line, " " key "=[^ ]*"))
			return substr(line, RSTART + length(key) + 2, RLENGTH - length(key) - 2)
		return ""
	}
	function add(arr, key, val) { arr[key] = arr[key] (arr[key] == "" ? "" : ",") val }
	function med(list,    a, k, i, j, t) {
		k = split(list, a, ",")
		if (k == 0) return ""
		for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
	}
	function f(v, fmt) { return v == "" ? "-" : sprintf(fmt, v) }
	function ratio(a, b) { return (a == "" || b == "" || b <= 0) ? "-" : sprintf("%.2fx", a / b) }
	function vsn(t, a, b) { return t == "direct" ? "-" : ratio(a, b) }
	function name(t) { return t == "direct" ? "direct/floor" : t }
	function per(v, n) { return n > 0 ? v / n : 0 }
	/^LOAD / { w = kv($0, "workers"); loadl = loadl sprintf("  %s worker(s): loadavg %s, CPU %s%% busy with other work before the targets started\n", w, kv($0, "loadavg"), kv($0, "busy")) }
	/^DIED / { died = died "  " $0 "\n" }
	/^FAILED / { lgfail = lgfail "  " $0 "\n" }
	/^RESULT / {
		t = kv($0, "label"); s = kv($0, "scenario"); w = kv($0, "workers")
		k = s SUBSEP w SUBSEP t
		if (s == "cpu" || s == "cpu-paced") {
			ev = kv($0, "events") + 0; sm = kv($0, "stream_ms") + 0
			if (ev > 0) {
				add(cpu, k, 10000 * kv($0, "target_cpu_stat_ms") / ev)
				add(cpus, k, 10000 * kv($0, "target_cpu_ms") / ev)
				add(mcpu, k, 10000 * kv($0, "mock_cpu_ms") / ev)
				add(lcpu, k, 10000 * kv($0, "loadgen_cpu_ms") / ev)
				add(lpct, k, 100 * per(kv($0, "loadgen_cpu_ms"), sm))
				add(evps, k, 1000 * per(ev, sm))
				if (kv($0, "reads") > 0) add(evrd, k, ev / kv($0, "reads"))
			}
			cn[k] += kv($0, "n"); cok[k] += kv($0, "completed")
			cmis[k] += kv($0, "mismatched"); cmock[k] += kv($0, "mock_completed")
			cev[s] = kv($0, "ref_events")
			hascpu[k] = 1; hasw[w SUBSEP t] = 1
		} else if (s == "c10k") {
			zk[w SUBSEP t] = $0; hasz = 1
		}
	}
	/^TP / {
		t = kv($0, "label"); w = kv($0, "workers"); k = w SUBSEP t
		hastp[k] = 1; hasw[k] = 1
		add(rps, k, kv($0, "rps")); add(p50, k, kv($0, "p50_ms")); add(p99, k, kv($0, "p99_ms"))
		req = kv($0, "requests") + 0
		if (req > 0) {
			add(tcpu, k, 1000 * kv($0, "target_cpu_ms") / req)
			add(tmock, k, 1000 * kv($0, "mock_cpu_ms") / req)
			add(twrk, k, 1000 * kv($0, "wrk_cpu_ms") / req)
		}
		if (kv($0, "seconds") > 0) add(twpct, k, 100 * kv($0, "wrk_cpu_ms") / (1000 * kv($0, "seconds")))
		tnon[k] += kv($0, "non2xx"); tsock[k] += kv($0, "err_connect") + kv($0, "err_read") + kv($0, "err_write") + kv($0, "err_timeout")
		treq[k] += req
	}
	END {
		ntg = split(targets, tg, " "); nw = split(sw, wl, " ")
		if (want_cpu || want_tp) {
		printf "\nLoad: W = cancelproxy \"workers\" = nginx worker_processes = haproxy nbthread; ratios are to nginx at the same W.\n"
		if (want_cpu) {
			printf "burst: %d streams x %d tokens (%s events with stop and [DONE]), no delay between tokens: the mock writes as fast\n       as it can and a read picks up many events.\n", cpu_n, cpu_tokens, cev["cpu"] == "" ? "?" : cev["cpu"]
			printf "paced: %d streams x %d tokens (%s events), one every %s ms per stream, the streams'"'"' ticks spread: about one event\n       per read, as when a model streams.\n", paced_n, paced_tokens, cev["cpu-paced"] == "" ? "?" : cev["cpu-paced"], paced_iv
			printf "       Both read to the end, every body checked against the mock'"'"'s own answer (ids masked); %s round(s), medians.\n", cpu_reps
		}
		if (want_tp) printf "throughput: wrk -t%s -c%s -d%ss, POST /v1/chat/completions, stream false, 1 token, no delay; %s round(s), medians.\n", tp_t, tp_c, tp_s, tp_reps
		printf "CPU = utime + stime of the target'"'"'s processes, /proc/PID/stat, before and after each run.\n"
		printf "\n%-2s %-13s %9s %6s %9s %6s %9s | %8s %6s %6s %6s %8s %6s %6s\n", "", "", "CPU ms per 10k SSE events", "", "", "", "", "throughput", "", "", "", "", "", ""
		printf "%-2s %-13s %9s %6s %9s %6s %9s | %8s %6s %6s %6s %8s %6s %6s\n", "W", "target", "burst", "/nginx", "paced", "/nginx", "streams", "req/s", "/nginx", "p50 ms", "p99 ms", "cpu us/r", "/nginx", "errors"
		for (wi = 1; wi <= nw; wi++) {
			w = wl[wi]
			for (ti = 1; ti <= ntg; ti++) {
				t = tg[ti]; k = w SUBSEP t; nk = w SUBSEP "nginx"
				if (!(k in hasw)) continue
				kb = "cpu" SUBSEP k; kp = "cpu-paced" SUBSEP k
				nb = "cpu" SUBSEP nk; np = "cpu-paced" SUBSEP nk
				b = med(cpu[kb]); p = med(cpu[kp]); r = med(rps[k]); u = med(tcpu[k])
				okn = cok[kb] + cok[kp] - cmis[kb] - cmis[kp]; alln = cn[kb] + cn[kp]
				printf "%-2s %-13s %9s %6s %9s %6s %9s | %8s %6s %6s %6s %8s %6s %6s\n", w, name(t), f(b, "%.1f"), vsn(t, b, med(cpu[nb])), f(p, "%.1f"), vsn(t, p, med(cpu[np])), alln ? okn "/" alln : "-", f(r, "%.0f"), vsn(t, r, med(rps[nk])), f(med(p50[k]), "%.2f"), f(med(p99[k]), "%.2f"), f(u, "%.1f"), vsn(t, u, med(tcpu[nk])), (k in hastp) ? tnon[k] + tsock[k] : "-"
			}
		}
		printf "\nburst, paced: CPU ms the target spent per 10,000 SSE events relayed (for direct/floor: the mock alone).\n"
		printf "streams: read to the end and identical to the mock'"'"'s own answer / streams run, both cpu runs, all rounds.\n"
		printf "cpu us/r: the target'"'"'s CPU per request served during the wrk run. errors: non-2xx answers and socket\n"
		printf "errors (connect, read, write, timeout) that wrk counted, all rounds.\n"
		for (wi = 1; wi <= nw; wi++) for (ti = 1; ti <= ntg; ti++) {
			k = wl[wi] SUBSEP tg[ti]
			for (si = 1; si <= 2; si++) {
				sk = (si == 1 ? "cpu" : "cpu-paced") SUBSEP k
				if ((sk in hascpu) && (cok[sk] != cn[sk] || cmis[sk] > 0 || cmock[sk] != cn[sk]))
					probs = probs sprintf("  W=%s %s %s: %d of %d streams completed, %d differed from the mock'"'"'s answer, mock reports %d completed\n", wl[wi], tg[ti], si == 1 ? "burst" : "paced", cok[sk], cn[sk], cmis[sk], cmock[sk])
			}
			if ((k in hastp) && tnon[k] + tsock[k] > 0)
				probs = probs sprintf("  W=%s %s throughput: %d non-2xx, %d socket errors in %d requests\n", wl[wi], tg[ti], tnon[k], tsock[k], treq[k])
		}
		if (probs != "") printf "\nproblems:\n%s", probs
		if (nw > 1) {
			printf "\nScaling %s -> %s workers (ratio of the medians):\n", wl[1], wl[nw]
			for (ti = 1; ti <= ntg; ti++) {
				t = tg[ti]; if (t == "direct") continue
				a = wl[1] SUBSEP t; b = wl[nw] SUBSEP t
				printf "  %-12s burst %6s -> %6s (%5s)  paced %6s -> %6s (%5s)  req/s %6s -> %6s (%5s)\n", t, f(med(cpu["cpu" SUBSEP a]), "%.1f"), f(med(cpu["cpu" SUBSEP b]), "%.1f"), ratio(med(cpu["cpu" SUBSEP b]), med(cpu["cpu" SUBSEP a])), f(med(cpu["cpu-paced" SUBSEP a]), "%.1f"), f(med(cpu["cpu-paced" SUBSEP b]), "%.1f"), ratio(med(cpu["cpu-paced" SUBSEP b]), med(cpu["cpu-paced" SUBSEP a])), f(med(rps[a]), "%.0f"), f(med(rps[b]), "%.0f"), ratio(med(rps[b]), med(rps[a]))
			}
		}
		printf "\nThe load generators'"'"' and the mock'"'"'s own cost (medians):\n"
		printf "%-2s %-13s %-5s %9s %9s %9s %9s %7s %9s | %9s %9s %9s\n", "", "", "", "loadgen", "mock", "target", "events", "events", "loadgen", "wrk", "wrk", "mock"
		printf "%-2s %-13s %-5s %9s %9s %9s %9s %7s %9s | %9s %9s %9s\n", "W", "target", "run", "ms/10kev", "ms/10kev", "sched", "per s", "/read", "% of cpu", "% of cpu", "us/req", "us/req"
		for (wi = 1; wi <= nw; wi++) for (ti = 1; ti <= ntg; ti++) {
			w = wl[wi]; t = tg[ti]; k = w SUBSEP t
			if (!(k in hasw)) continue
			for (si = 1; si <= 2; si++) {
				sk = (si == 1 ? "cpu" : "cpu-paced") SUBSEP k
				printf "%-2s %-13s %-5s %9s %9s %9s %9s %7s %9s | %9s %9s %9s\n", w, name(t), si == 1 ? "burst" : "paced", f(med(lcpu[sk]), "%.1f"), f(med(mcpu[sk]), "%.1f"), f(med(cpus[sk]), "%.1f"), f(med(evps[sk]), "%.0f"), f(med(evrd[sk]), "%.1f"), f(med(lpct[sk]), "%.0f%%"), si == 1 ? f(med(twpct[k]), "%.0f%%") : "", si == 1 ? f(med(twrk[k]), "%.1f") : "", si == 1 ? f(med(tmock[k]), "%.1f") : ""
			}
		}
		printf "(loadgen, wrk: the load generator'"'"'s CPU per 10k events or per request, and as a share of one CPU over the run;\n"
		printf " target sched: the target'"'"'s CPU ms/10kev from schedstat (ns resolution) to check the /proc/PID/stat ticks;\n"
		printf " events/read: SSE events per read(2) of the load generator: how many events the target put in one write.)\n"
		}
		if (hasz) {
			printf "\n%d concurrent streams", c10k_n
			if (c10k_n + 0 < c10k_asked + 0) printf " (%s asked; capped: ulimit -n is %s here and cannot be raised, and a proxy\nholds two descriptors per stream in one process)", c10k_asked, nofile
			printf ":\n%s tokens each, the first after %s ms, then one every %s ms; read to the end and checked.\n", c10k_tok, c10k_first, c10k_iv
			printf "\n%-2s %-13s %7s %9s %9s %7s %10s %9s %7s %11s %11s\n", "W", "target", "streams", "peak open", "completed", "failed", "mismatched", "mock done", "wall s", "target cpu s", "loadgen cpu s"
			for (wi = 1; wi <= nw; wi++) for (ti = 1; ti <= ntg; ti++) {
				k = wl[wi] SUBSEP tg[ti]
				if (!(k in zk)) continue
				z = zk[k]
				printf "%-2s %-13s %7d %9d %9d %7d %10d %9d %7.1f %11.2f %11.2f\n", wl[wi], name(tg[ti]), kv(z, "n"), kv(z, "peak_open"), kv(z, "completed"), kv(z, "failed"), kv(z, "mismatched"), kv(z, "mock_completed"), kv(z, "stream_ms") / 1000, kv(z, "target_cpu_stat_ms") / 1000, kv(z, "loadgen_cpu_ms") / 1000
				if (kv(z, "failed") > 0) zf = zf sprintf("  W=%s %s: connect %d, status %d (last %d), closed early %d, io %d\n", wl[wi], tg[ti], kv(z, "fail_connect"), kv(z, "fail_status"), kv(z, "last_status"), kv(z, "fail_closed"), kv(z, "fail_io"))
			}
			if (zf != "") printf "failed streams:\n%s", zf
		}
		printf "\nload on the machine:\n%s", loadl
		printf "warnings/errors in the targets'"'"' logs during these runs:%s\n", warns
		if (died != "") printf "PROCESS DIED:\n%s", died
		if (lgfail != "") printf "loadgen failed:\n%s", lgfail
	}' "$RESULTS_B"
}

# ---- (e) the table --------------------------------------------------------
BUSY_END=$(cpu_busy)
{
	cat "$T/header.txt"
	echo "# after the runs (targets stopped): loadavg $(cut -d' ' -f1-3 /proc/loadavg), CPU ${BUSY_END}% busy"
	[ "$WANT_A" = 1 ] && awk -v reps="$REPS" -v n="$N" -v targets="$TARGETS" -v wait_ms="$WAIT_MS" \
	    -v gap_us="$SPACED_GAP_US" -v sp_reps="$SPACED_REPS" '
	function kv(line, key,    re, m) {
		if (match(line, " " key "=[^ ]*")) {
			m = substr(line, RSTART + length(key) + 2, RLENGTH - length(key) - 2)
			return m
		}
		return ""
	}
	function med(list,    a, k, i, j, t) {
		k = split(list, a, ",")
		for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		if (k == 0) return ""
		return a[int((k + 1) / 2)]
	}
	function ms(us) { return us == "" || us < 0 ? "-" : sprintf("%.2f", us / 1000) }
	function ratio(a, b) { return (a == "" || b == "" || b <= 0 || a < 0) ? "-" : sprintf("%.2fx", a / b) }
	/^DIED/ { died[kv(" " $0, "target")] = died[kv(" " $0, "target")] " " kv(" " $0, "scenario") }
	/^RESULT/ {
		t = kv($0, "label"); s = kv($0, "scenario"); key = s SUBSEP t
		if (s == "rss") {
			rb[t] = kv($0, "rss_before_kib"); ra[t] = kv($0, "rss_after_kib")
			kps[t] = kv($0, "kib_per_stream"); rready[t] = kv($0, "ready")
			rn[t] = kv($0, "n"); ropen[t] = kv($0, "open")
			rp50[t] = kv($0, "p50_us"); rp99[t] = kv($0, "p99_us")
			nk++
			next
		}
		if (!(key in seen)) nseen++
		seen[key] = 1
		for (f = 1; f <= 5; f++) {
			nm = (f == 1) ? "p50_us" : (f == 2) ? "p90_us" : (f == 3) ? "p99_us" : (f == 4) ? "max_us" : "target_cpu_ms"
			v[key, nm] = v[key, nm] (v[key, nm] == "" ? "" : ",") kv($0, nm)
		}
		if (kv($0, "aborted") + 0 > 0) cpus[key] = cpus[key] (cpus[key] == "" ? "" : ",") (1000 * kv($0, "cancel_cpu_ms") / kv($0, "aborted"))
		runq[key] = runq[key] (runq[key] == "" ? "" : ",") kv($0, "cancel_runq_ms")
		open[key] += kv($0, "open"); aborted[key] += kv($0, "aborted")
		failed[key] += kv($0, "failed"); early[key] += kv($0, "early")
		if (kv($0, "max_us") + 0 > mx[key] + 0) mx[key] = kv($0, "max_us")
		lcpu += kv($0, "loadgen_cpu_ms"); lwall += kv($0, "wall_ms"); nruns++
		spread[key] = spread[key] (spread[key] == "" ? "" : ",") kv($0, "abort_spread_us")
	}
	END {
		ntg = split(targets, tg, " ")
		nsc = split("fb-fin fb-rst mid-fin mid-rst sp-fb-fin sp-fb-rst sp-mid-fin sp-mid-rst", sc, " ")
		desc["fb-fin"] = "first byte, FIN"; desc["fb-rst"] = "first byte, RST"
		desc["mid-fin"] = "mid-stream, FIN"; desc["mid-rst"] = "mid-stream, RST"
		desc["sp-fb-fin"] = "1by1 fb, FIN"; desc["sp-fb-rst"] = "1by1 fb, RST"
		desc["sp-mid-fin"] = "1by1 mid, FIN"; desc["sp-mid-rst"] = "1by1 mid, RST"
		if (nseen) {
		printf "\nCancel latency: client abort -> the mock sees its upstream connection close.\n"
		printf "%d streams open per run. Burst (first four): all aborted at once, %s round(s). 1by1: aborted one at a time,\n", n, reps
		printf "one every %d us, %s round(s): the latency of a single cancel. p50/p90/p99: medians over rounds; max: the worst.\n", gap_us, sp_reps
		printf "\n%-16s %-14s %7s %6s %8s %8s %8s %8s %10s %10s %9s %7s %7s\n", "scenario", "target", "streams", "open", "p50 ms", "p90 ms", "p99 ms", "max ms", "p50/nginx", "p99/nginx", "+p99 ms", "cpu us", "runq ms"
		for (si = 1; si <= nsc; si++) {
			s = sc[si]
			np50 = med(v[s SUBSEP "nginx", "p50_us"]); np99 = med(v[s SUBSEP "nginx", "p99_us"])
			fp50 = med(v[s SUBSEP "direct", "p50_us"]); fp99 = med(v[s SUBSEP "direct", "p99_us"])
			for (ti = 1; ti <= ntg; ti++) {
				t = tg[ti]; key = s SUBSEP t
				if (!(key in seen)) continue
				p50 = med(v[key, "p50_us"]); p90 = med(v[key, "p90_us"]); p99 = med(v[key, "p99_us"])
				printf "%-16s %-14s %7d %6d %8s %8s %8s %8s %10s %10s %9s %7s %7s\n", desc[s], (t == "direct" ? "direct/floor" : t), aborted[key], open[key], ms(p50), ms(p90), ms(p99), ms(mx[key]), ratio(p50, np50), ratio(p99, np99), (t == "direct" || fp99 == "" || p99 == "" ? "-" : sprintf("%.2f", (p99 - fp99) / 1000)), (cpus[key] == "" ? "-" : sprintf("%.1f", med(cpus[key]))), (runq[key] == "" ? "-" : sprintf("%.1f", med(runq[key])))
				if (failed[key] > 0 || early[key] > 0) probs = probs sprintf("  %s %s: %d streams failed before the abort, %d closed upstream before it\n", s, t, failed[key], early[key])
			}
		}
		printf "\nopen = upstream streams the mock still had open %d ms after the last abort (left open).\n", wait_ms
		printf "+p99 ms = p99 minus the direct floor'"'"'s p99 in the same scenario: what the proxy adds.\n"
		printf "cpu us = CPU time the target used from the first abort until the mock had seen all, per aborted stream\n"
		printf "         (all threads, from /proc/PID/task/*/schedstat; median over rounds); for direct/floor it is the mock.\n"
		printf "runq ms = how long the target was runnable but waiting for a CPU in that window (schedstat): behind the\n"
		printf "          load generator, the mock, or other work on the machine (median over rounds).\n"
		if (probs != "") printf "\nproblems:\n%s", probs
		}
		if (nk) {
		printf "\nMemory per stream waiting for its first token (VmRSS, after - before) / streams:\n"
		printf "\n%-14s %7s %11s %11s %11s %10s %14s %14s\n", "target", "streams", "before MiB", "after MiB", "KiB/stream", "vs nginx", "cancel p50 ms", "cancel p99 ms"
		for (ti = 1; ti <= ntg; ti++) {
			t = tg[ti]
			if (!(t in kps)) continue
			printf "%-14s %7d %11.1f %11.1f %11.2f %10s %14s %14s\n", t, rready[t], rb[t] / 1024, ra[t] / 1024, kps[t], ratio(kps[t], kps["nginx"]), ms(rp50[t]), ms(rp99[t])
		}
		printf "(the cancel columns: all of them aborted with RST at once after the measurement; open: "
		for (ti = 1; ti <= ntg; ti++) if (tg[ti] in kps) printf "%s=%d ", tg[ti], ropen[tg[ti]]
		printf ")\n"
		}
		if (nseen) printf "\nloadgen overhead (cancel runs): %.0f ms CPU over %d runs (%.1f ms per run, %.1f%% of their %.1f s wall time);\n", lcpu, nruns, nruns ? lcpu / nruns : 0, lwall ? 100 * lcpu / lwall : 0, lwall / 1000
		if (nseen) {
		printf "time to issue all %d aborts (abort spread, median): ", n
		for (ti = 1; ti <= ntg; ti++) { key = "mid-rst" SUBSEP tg[ti]; if (key in seen) printf "%s %s ms  ", tg[ti], ms(med(spread[key])) }
		printf "\n"
		}
		for (t in died) printf "\nPROCESS DIED: %s during%s\n", t, died[t]
	}' "$RESULTS"
	[ -n "$CP_D2C" ] && echo "cancelproxy's own records: $CP_D2C"
	[ "$WANT_A" = 1 ] && echo "warnings/errors in the logs:$WARNS"
	[ "$WANT_B" = 1 ] && load_table
} | tee "$T/table.txt"
