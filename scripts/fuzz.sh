#!/bin/sh
# fuzz.sh: builds cancelproxy's libFuzzer targets with clang
# (-fsanitize=fuzzer,address,undefined) straight from the sources, replays
# the kept crash reproducers, then fuzzes each target for a bounded time.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS is the time per target (default 60). TARGETs default to all:
#   request   bytes from a client, through the real request path in-process
#   h2        HTTP/2 frames from a client after the preface, in-process
#   response  bytes from an upstream, through the real response path
#   h2upstream  HTTP/2 frames from an upstream, through upstream_h2.c
#   sse       the SSE event splitter and the usage readers, directly
#   conf      the config loader (conf_load on a file)
#   note      cancel notes: cancel_note_parse, cancel_error_parse, verify
#   logscan   cancelproxy-log's line scanner (tools/log/logtool_scan.c)
#   body      request bodies through session_body_read(), held against
#             cJSON read last-member-wins: the same model, or a refusal
#   record    client bytes (target, model, headers) through the real
#             request path; every record line must be strict UTF-8 JSON
#
# Environment:
#   FUZZ_BUILD_DIR  where objects, binaries, the growing corpora and crash
#                   artifacts go (default build-fuzz in the repository)
#   FUZZ_JOBS       parallel fuzzing processes per target (default 1)
#   FUZZ_ARGS       more libFuzzer flags
#   CC              the compiler (default clang)
#   FUZZ_CFLAGS     more compiler flags, e.g. -fno-sanitize=float-cast-overflow
#                   to fuzz past a known bug (objects are rebuilt when it
#                   changes)
#
# It prints, per target, the executions, the corpus size and whether it
# crashed, and exits 1 if any target crashed (the reproducer's path is
# printed; copy it to tests/fuzz/crashes/TARGET/ to keep it as a
# regression case), 2 if the build failed.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-60}
[ $# -gt 0 ] && shift
TARGETS=${*:-request h2 response h2upstream sse conf note logscan body record}
B=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
# The targets run from their own directory: a relative path would break.
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
CC=${CC:-clang}
JOBS=${FUZZ_JOBS:-1}
LLHTTP=${LLHTTP_SRC_DIR:-/usr/share/llhttp}
LLHTTP_INC=${LLHTTP_INC_DIR:-/usr/share/include/llhttp}

case $SECS in *[!0-9]*|'') echo "fuzz.sh: SECONDS must be a number" >&2; exit 2;; esac

if ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n){return 0;}' |
    $CC -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
	echo "fuzz.sh: $CC cannot build with -fsanitize=fuzzer" \
	    "(apt-get install clang)" >&2
	exit 2
fi

PKGS="libevent libevent_openssl libevent_pthreads openssl libcjson hiredis libnghttp2"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
CFLAGS="-g -O1 -std=gnu11 -fno-omit-frame-pointer $SAN -D_GNU_SOURCE
  -DCANCELPROXY_VERSION=\"fuzz\" -I$ROOT -I$LLHTTP_INC
  $(pkg-config --cflags $PKGS) -Wno-unused-parameter ${FUZZ_CFLAGS:-}"
LIBS="$(pkg-config --libs $PKGS) -lz -lpthread -lm"

mkdir -p "$B/obj" "$B/bin"

# A header changed since the last build: rebuild every object.
if [ -f "$B/obj/.stamp" ] && [ -n "$(find "$ROOT/conf" "$ROOT/proxy" \
    "$ROOT/downstream" "$ROOT/upstream" "$ROOT/cancel_chain" "$ROOT/tools" \
    "$ROOT/tests/fuzz" -name '*.h' -newer "$B/obj/.stamp" -print 2>/dev/null)" ]
then
	rm -f "$B"/obj/*.o
fi
# Other flags than last time: rebuild every object.
if [ "$(cat "$B/obj/.flags" 2>/dev/null)" != "$CC $CFLAGS" ]; then
	rm -f "$B"/obj/*.o
	echo "$CC $CFLAGS" >"$B/obj/.flags"
fi
touch "$B/obj/.stamp.new"

# Compiles one source to an object with coverage instrumentation, when the
# source is newer than the object.
compile() {	# src obj
	if [ ! -f "$2" ] || [ "$1" -nt "$2" ]; then
		# shellcheck disable=SC2086
		$CC $CFLAGS -fsanitize=fuzzer-no-link -c "$1" -o "$2" || return 1
	fi
}

echo "== building in $B"
LIBOBJS=""
for src in "$ROOT"/conf/*.c "$ROOT"/proxy/*.c "$ROOT"/downstream/*.c \
    "$ROOT"/upstream/*.c "$ROOT"/cancel_chain/*.c; do
	case $src in */proxy/main.c) continue;; esac
	obj=$B/obj/$(echo "${src#"$ROOT"/}" | tr / _).o
	compile "$src" "$obj" || { echo "fuzz.sh: build failed: $src" >&2; exit 2; }
	LIBOBJS="$LIBOBJS $obj"
done
for src in "$LLHTTP"/api.c "$LLHTTP"/http.c "$LLHTTP"/llhttp.c; do
	obj=$B/obj/llhttp_$(basename "$src" .c).o
	if [ ! -f "$obj" ]; then
		# shellcheck disable=SC2086
		$CC $CFLAGS -w -fsanitize=fuzzer-no-link -c "$src" -o "$obj" ||
		    exit 2
	fi
	LIBOBJS="$LIBOBJS $obj"
done
rm -f "$B/libcp.a"
# shellcheck disable=SC2086
ar rcs "$B/libcp.a" $LIBOBJS

# target -> the extra sources it needs
extra() {
	case $1 in
	request|response|record|h2|h2upstream) echo "$ROOT/tests/fuzz/fuzz_rig.c";;
	logscan) echo "$ROOT/tools/log/logtool_scan.c";;
	*) echo "";;
	esac
}

for t in $TARGETS; do
	src=$ROOT/tests/fuzz/fuzz_$t.c
	[ -f "$src" ] || { echo "fuzz.sh: no target $t ($src)" >&2; exit 2; }
	objs=""
	for e in $src $(extra "$t"); do
		obj=$B/obj/fz_$(basename "$e" .c).o
		compile "$e" "$obj" || { echo "fuzz.sh: build failed: $e" >&2; exit 2; }
		objs="$objs $obj"
	done
	# shellcheck disable=SC2086
	$CC $SAN -fsanitize=fuzzer -o "$B/bin/fuzz_$t" $objs "$B/libcp.a" \
	    $LIBS || { echo "fuzz.sh: link failed: $t" >&2; exit 2; }
done

mv "$B/obj/.stamp.new" "$B/obj/.stamp"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
summary=""
for t in $TARGETS; do
	bin=$B/bin/fuzz_$t
	seeds=$ROOT/tests/fuzz/corpus/$t
	work=$B/corpus/$t
	art=$B/artifacts/$t
	mkdir -p "$work" "$art"
	jobs=""
	[ "$JOBS" -gt 1 ] && jobs="-jobs=$JOBS -workers=$JOBS"
	dict=""
	[ -f "$ROOT/tests/fuzz/$t.dict" ] && dict="-dict=$ROOT/tests/fuzz/$t.dict"

	# Kept reproducers must not crash any more.
	if [ -d "$ROOT/tests/fuzz/crashes/$t" ] &&
	    [ -n "$(ls -A "$ROOT/tests/fuzz/crashes/$t" 2>/dev/null)" ]; then
		echo "== $t: replaying tests/fuzz/crashes/$t"
		if ! "$bin" -runs=1 "$ROOT"/tests/fuzz/crashes/"$t"/* \
		    >"$B/replay-$t.log" 2>&1; then
			echo "   a kept reproducer still crashes: see" \
			    "$B/replay-$t.log"
			status=1
		fi
	fi

	echo "== $t: fuzzing for ${SECS}s"
	log=$B/fuzz-$t.log
	set +e
	# shellcheck disable=SC2086
	(cd "$B" && exec "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix="$art/" \
	    $jobs $dict ${FUZZ_ARGS:-} \
	    "$work" "$seeds") >"$log" 2>&1
	rc=$?
	set -e
	# -jobs writes one fuzz-N.log per job; sum their final stats.
	logs=$log
	[ "$JOBS" -gt 1 ] && logs="$log $(ls "$B"/fuzz-[0-9]*.log 2>/dev/null || true)"
	execs=$(cat $logs | sed -n 's/^stat::number_of_executed_units: *//p' |
	    awk '{s += $1} END {print s + 0}')
	rate=$(cat $logs | sed -n 's/^stat::average_exec_per_sec: *//p' |
	    awk '{s += $1} END {print s + 0}')
	corpus=$(ls "$work" | wc -l)
	crashes=$(ls "$art" | grep -c -E '^(crash|leak|timeout|oom)-' || true)
	if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
		status=1
		verdict="FAILED (exit $rc, $crashes artifact(s) in $art)"
		grep -m1 -E 'ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error|fuzz_rig:' \
		    "$log" | sed 's/^/   /' || true
	else
		verdict="ok"
	fi
	[ "$JOBS" -gt 1 ] && rm -f "$B"/fuzz-[0-9]*.log
	line=$(printf '%-9s %12s execs %8s/s  corpus %6s  %s' "$t" "$execs" \
	    "$rate" "$corpus" "$verdict")
	echo "   $line"
	summary="$summary
$line"
done
echo "== summary ($SECS s per target)$summary"
exit $status
