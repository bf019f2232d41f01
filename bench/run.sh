#!/usr/bin/env bash
# bench/run.sh: how fast a client's disconnect closes the model's stream,
# through cancelproxy, nginx (proxy_buffering off) and HAProxy, against the
# floor of the client talking to cancelproxy-mock directly; and how much
# memory each proxy holds per stream waiting for its first token.
#
#   bench/run.sh            full run: 1000 concurrent streams, RSS at 4000, 5 rounds
#   bench/run.sh --quick    100 concurrent streams, RSS at 1000, 1 round
#
# Everything listens on 127.0.0.1; every process it starts is killed at exit.
# See docs/bench.md for what is measured and how to read the table.
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
MAX_SECONDS=${MAX_SECONDS:-900}	# the whole run, watchdog
TARGETS=${TARGETS:-"direct cancelproxy nginx haproxy haproxy-stock"}
OUT_DIR=${OUT_DIR:-}

usage() {
	sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
	cat <<EOF
options:
  --quick           N=100, RSS_N=1000, REPS=1
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
environment: the same names in capitals, plus EVENTS, INTERVAL_MS, SETTLE_MS,
WAIT_MS, MAX_PENDING, MAX_SECONDS, TARGETS ("direct cancelproxy nginx haproxy
haproxy-stock": haproxy has "option abortonclose", haproxy-stock has not).
EOF
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--quick) N=100; RSS_N=1000; REPS=1; MAX_SECONDS=300 ;;
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
for t in $TARGETS; do
	case $t in
	nginx) [ -x "$NGINX" ] || fail "nginx not found" ;;
	haproxy*) [ -x "$HAPROXY" ] || fail "haproxy not found" ;;
	esac
done

# ---- limits ---------------------------------------------------------------
need=$(( RSS_N * 2 + N * 2 + 1024 ))
[ "$need" -lt 65536 ] && need=65536
ulimit -Hn "$need" 2>/dev/null
ulimit -n "$need" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
[ "$NOFILE" -ge $(( RSS_N * 2 + 256 )) ] ||
    fail "ulimit -n is $NOFILE; RSS_N=$RSS_N needs $(( RSS_N * 2 + 256 ))"

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
i=0
[ "$(echo $TARGETS | wc -w)" -le 5 ] || fail "at most 5 TARGETS"
for t in $TARGETS; do
	MOCK_PORT[$t]=$(( BASE + i ))
	PORT[$t]=$(( BASE + 5 + i ))
	i=$(( i + 1 ))
done
PORT[direct]=${MOCK_PORT[direct]:-0}

start_mock() {	# target
	local t=$1 log="$T/mock-$1.log"
	touch "$log"
	"${CPU_SIDE[@]}" "$BUILD/cancelproxy-mock" --listen "127.0.0.1:${MOCK_PORT[$t]}" \
	    --first-token-ms 50 --interval-ms "$INTERVAL_MS" --tokens 20 \
	    --hop "mock-$t" --log "$log" >>"$T/mock-$t.err" 2>&1 &
	MOCK_PID[$t]=$!
	PIDS+=("$!")
	LOG[$t]=$log
	wait_port "${MOCK_PORT[$t]}" "$!" "cancelproxy-mock ($t)"
}

start_cancelproxy() {
	mkdir -p "$T/cancelproxy"
	cat > "$T/cancelproxy/cancelproxy.json" <<EOF
{
  "hop": "edge",
  "workers": $WORKERS,
  "listen": [ { "address": "127.0.0.1:${PORT[cancelproxy]}" } ],
  "upstreams": {
    "mock": {
      "url": "http://127.0.0.1:${MOCK_PORT[cancelproxy]}",
      "timeouts_ms": { "connect": 5000, "first_byte": 3600000, "idle": 3600000, "total": 0 },
      "keepalive": 32
    }
  },
  "routes": [ { "path_prefix": "/", "upstream": "mock" } ],
  "limits": { "max_connections": 100000 },
  "log": { "path": "$T/cancelproxy/cancelproxy.log", "level": "info" }
}
EOF
	"${CPU_PROXY[@]}" "$BUILD/cancelproxy" -c "$T/cancelproxy/cancelproxy.json" \
	    >>"$T/cancelproxy/stderr.log" 2>&1 &
	PIDS+=("$!")
	PIDS_OF[cancelproxy]=$!
	MAIN_PID[cancelproxy]=$!
	wait_port "${PORT[cancelproxy]}" "$!" cancelproxy
}

start_nginx() {
	local d=$T/nginx user=""
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
events { worker_connections $(( NOFILE / 2 )); use epoll; }
http {
    access_log $d/access.log;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    upstream mock {
        server 127.0.0.1:${MOCK_PORT[nginx]};
        keepalive 32;
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
# the client while it waits for the server; haproxy-stock: without it.
start_haproxy() {	# target
	local t=$1 d=$T/$1 aoc="    option abortonclose"
	[ "$t" = haproxy-stock ] && aoc="    # option abortonclose: stock behaviour"
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
for t in $TARGETS; do
	start_target "$t"
done

RESULTS=$T/results.txt
: > "$RESULTS"
{
	echo "# cancelproxy bench $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "# commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo ' (work tree has changes)')"
	echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
	echo "# $("$NGINX" -v 2>&1), $("$HAPROXY" -v 2>/dev/null | head -1 | cut -d' ' -f1-3), cancelproxy $("$BUILD/cancelproxy" -V 2>/dev/null | cut -d' ' -f2)"
	echo "# N=$N RSS_N=$RSS_N REPS=$REPS EVENTS=$EVENTS INTERVAL_MS=$INTERVAL_MS WORKERS=$WORKERS PIN=$PIN NICE=$NICE ulimit-n=$NOFILE"
	echo "# before starting: loadavg $(cut -d' ' -f1-3 /proc/loadavg), CPU ${BUSY_START}% busy with other work"
} > "$T/header.txt"
say "ports: $(for t in $TARGETS; do printf '%s=%s(mock %s) ' "$t" "${PORT[$t]}" "${MOCK_PORT[$t]}"; done)"
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

FB="--events 0 --first-token-ms 600000"
# Mid-stream: first tokens spread over one interval, so that the streams'
# ticks do not line up and an abort lands at a random point between tokens.
MID="--events $EVENTS --first-token-ms $INTERVAL_MS --first-token-jitter-ms $INTERVAL_MS --interval-ms $INTERVAL_MS --tokens 1000000"

# ---- (d) scenarios ----------------------------------------------------------
# Memory first, on fresh processes: N streams parked before the first token.
say "RSS: $RSS_N streams waiting for the first token"
for t in $TARGETS; do
	[ "$t" = direct ] && continue
	run_one "$t" rss 0 "$RSS_N" --mode rss --abort rst $FB --settle-ms 500 \
	    --ready-timeout-ms 60000
done

# Cancel latency; targets interleaved so that background load hits all alike.
for rep in $(seq 1 "$REPS"); do
	for s in fb-fin fb-rst mid-fin mid-rst; do
		case $s in
		fb-*) sargs=$FB ;;
		mid-*) sargs=$MID ;;
		esac
		say "round $rep/$REPS: $s, $N streams"
		for t in $TARGETS; do
			run_one "$t" "$s" "$rep" "$N" --abort "${s#*-}" $sargs
		done
	done
done

# cancelproxy's own view: detect_to_close_us of its cancel records.
CP_D2C=""
if [ -f "$T/cancelproxy/cancelproxy.log" ]; then
	CP_D2C=$(grep '"event":"cancel"' "$T/cancelproxy/cancelproxy.log" |
	    sed -n 's/.*"detect_to_close_us":\([0-9-]*\).*/\1/p' | sort -n |
	    awk 'function at(p,  i) { i = int(NR * p + 0.5); if (i < 1) i = 1; return v[i] }
	        { v[NR] = $1 }
	        END { if (NR) printf "%d cancel records, detect_to_close_us p50 %d, p99 %d, max %d", NR, at(0.5), at(0.99), v[NR] }')
fi
WARNS=""
for t in $TARGETS; do
	case $t in
	cancelproxy) c=$(grep -c '"level":"\(warn\|error\)"' "$T/cancelproxy/cancelproxy.log" 2>/dev/null) ;;
	nginx) c=$(grep -vc '^$' "$T/nginx/error.log" 2>/dev/null) ;;
	haproxy*) c=$(grep -vc '^$' "$T/$t/stderr.log" 2>/dev/null) ;;
	direct) c=$(grep -c '"level":"\(warn\|error\)"' "${LOG[direct]}" 2>/dev/null) ;;
	esac
	WARNS="$WARNS $t=${c:-0}"
done

# ---- (e) the table --------------------------------------------------------
BUSY_END=$(cpu_busy)
{
	cat "$T/header.txt"
	echo "# after the runs (targets idle): loadavg $(cut -d' ' -f1-3 /proc/loadavg), CPU ${BUSY_END}% busy"
	awk -v reps="$REPS" -v n="$N" -v targets="$TARGETS" -v wait_ms="$WAIT_MS" '
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
			next
		}
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
		split("fb-fin fb-rst mid-fin mid-rst", sc, " ")
		desc["fb-fin"] = "first byte, FIN"; desc["fb-rst"] = "first byte, RST"
		desc["mid-fin"] = "mid-stream, FIN"; desc["mid-rst"] = "mid-stream, RST"
		printf "\nCancel latency: client abort -> the mock sees its upstream connection close.\n"
		printf "%d streams aborted at once per run; %s round(s); p50/p90/p99 are medians over rounds, max is the worst.\n", n, reps
		printf "\n%-16s %-14s %7s %6s %8s %8s %8s %8s %10s %10s %7s %7s\n", "scenario", "target", "streams", "open", "p50 ms", "p90 ms", "p99 ms", "max ms", "p50/nginx", "p99/nginx", "cpu us", "runq ms"
		for (si = 1; si <= 4; si++) {
			s = sc[si]
			np50 = med(v[s SUBSEP "nginx", "p50_us"]); np99 = med(v[s SUBSEP "nginx", "p99_us"])
			for (ti = 1; ti <= ntg; ti++) {
				t = tg[ti]; key = s SUBSEP t
				if (!(key in seen)) continue
				p50 = med(v[key, "p50_us"]); p90 = med(v[key, "p90_us"]); p99 = med(v[key, "p99_us"])
				printf "%-16s %-14s %7d %6d %8s %8s %8s %8s %10s %10s %7s %7s\n", desc[s], (t == "direct" ? "direct/floor" : t), aborted[key], open[key], ms(p50), ms(p90), ms(p99), ms(mx[key]), ratio(p50, np50), ratio(p99, np99), (cpus[key] == "" ? "-" : sprintf("%.1f", med(cpus[key]))), (runq[key] == "" ? "-" : sprintf("%.1f", med(runq[key])))
				if (failed[key] > 0 || early[key] > 0) probs = probs sprintf("  %s %s: %d streams failed before the abort, %d closed upstream before it\n", s, t, failed[key], early[key])
			}
		}
		printf "\nopen = upstream streams the mock still had open %d ms after the last abort (left open).\n", wait_ms
		printf "cpu us = CPU time the target used from the first abort until the mock had seen all, per aborted stream\n"
		printf "         (all threads, from /proc/PID/task/*/schedstat; median over rounds); for direct/floor it is the mock.\n"
		printf "runq ms = how long the target was runnable but waiting for a CPU in that window (schedstat): behind the\n"
		printf "          load generator, the mock, or other work on the machine (median over rounds).\n"
		if (probs != "") printf "\nproblems:\n%s", probs
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
		printf "\nloadgen overhead: %.0f ms CPU over %d runs (%.1f ms per run, %.1f%% of their %.1f s wall time);\n", lcpu, nruns, nruns ? lcpu / nruns : 0, lwall ? 100 * lcpu / lwall : 0, lwall / 1000
		printf "time to issue all %d aborts (abort spread, median): ", n
		for (ti = 1; ti <= ntg; ti++) { key = "mid-rst" SUBSEP tg[ti]; if (key in seen) printf "%s %s ms  ", tg[ti], ms(med(spread[key])) }
		printf "\n"
		for (t in died) printf "\nPROCESS DIED: %s during%s\n", t, died[t]
	}' "$RESULTS"
	[ -n "$CP_D2C" ] && echo "cancelproxy's own records: $CP_D2C"
	echo "warnings/errors in the logs:$WARNS"
} | tee "$T/table.txt"
