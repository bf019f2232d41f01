#!/usr/bin/env bash
# bench/log/run.sh: how long `cancelproxy-log stats` takes on a generated
# log of 1,000,000 records, against the jq pipelines an operator would write
# for the same answers. Not a test: it prints a table to paste in the docs.
#
#   bench/log/run.sh                   1,000,000 records; the tool 3 times,
#                                      each jq pipeline once
#   RECORDS=200000 bench/log/run.sh    a smaller log
#   GB=1 bench/log/run.sh              also a log of about 1 GiB (tool only;
#                                      JQ_GB=1 runs the jq by-kind on it too)
#
# Environment: BUILD (default build/) holds cancelproxy-log, or set
# CANCELPROXY_LOG to the binary; REPS, JQ_REPS (rounds, median reported);
# OUT_DIR keeps the logs and raw timings (default: a temporary directory,
# removed at the end). Needs jq and a C compiler (Debian: jq, gcc).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/log
BUILD=${BUILD:-$ROOT/build}
TOOL=${CANCELPROXY_LOG:-$BUILD/cancelproxy-log}
RECORDS=${RECORDS:-1000000}
REPS=${REPS:-3}
JQ_REPS=${JQ_REPS:-1}
GB=${GB:-0}
JQ_GB=${JQ_GB:-0}
KEEP=0
if [ -n "${OUT_DIR:-}" ]; then
	KEEP=1
	mkdir -p "$OUT_DIR"
else
	OUT_DIR=$(mktemp -d /tmp/cp-logbench.XXXXXX)
fi

say() { printf '[bench/log %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }
cleanup() { [ "$KEEP" = 1 ] || rm -rf "$OUT_DIR"; }
trap cleanup EXIT

command -v jq >/dev/null || fail "jq is missing (apt-get install jq)"
command -v cc >/dev/null || fail "no C compiler (apt-get install gcc)"
[ -x /usr/bin/time ] || fail "/usr/bin/time is missing (apt-get install time)"
[ -x "$TOOL" ] || fail "$TOOL not found: build it (cmake --build build) or set CANCELPROXY_LOG"

cc -O2 -o "$OUT_DIR/genlog" "$HERE/genlog.c" -lm
LOG=$OUT_DIR/bench.log
say "generating $RECORDS records"
"$OUT_DIR/genlog" "$RECORDS" > "$LOG"
SIZE=$(stat -c %s "$LOG")

# Runs a shell command n times; prints "median_seconds max_rss_kb".
measure() {
	local n=$1 cmd=$2 i t
	local times=() rss=0
	for ((i = 0; i < n; i++)); do
		/usr/bin/time -f '%e %M' -o "$OUT_DIR/time.txt" sh -c "$cmd" \
		    > /dev/null
		read -r t r < "$OUT_DIR/time.txt"
		times+=("$t")
		[ "$r" -gt "$rss" ] && rss=$r
	done
	printf '%s\n' "${times[@]}" | sort -n |
	    awk -v rss="$rss" '{ v[NR] = $1 } END { printf "%s %s\n", v[int((NR + 1) / 2)], rss }'
}

row() {	# what, command, result of measure
	local what=$1 cmd=${2//|/\\|} s=${3% *} kb=${3#* }
	printf '| %s | `%s` | %s s | %d MiB |\n' "$what" "$cmd" "$s" $(( (kb + 1023) / 1024 ))
}

# The answers must agree before the times mean anything: cancels per
# origin kind from the tool and from the full jq pipeline.
say "checking that the tool and jq agree"
"$TOOL" stats --json "$LOG" | jq -S '.by.kind | map({(.name): .cancels}) | add' \
    > "$OUT_DIR/tool-kinds.json"
jq -c -f "$HERE/select.jq" "$LOG" | jq -s -f "$HERE/stats.jq" > "$OUT_DIR/jq-stats.json"
jq -S '.kind | map_values(.cancels)' "$OUT_DIR/jq-stats.json" > "$OUT_DIR/jq-kinds.json"
cmp -s "$OUT_DIR/tool-kinds.json" "$OUT_DIR/jq-kinds.json" ||
    fail "cancels per kind differ: $(diff "$OUT_DIR/tool-kinds.json" "$OUT_DIR/jq-kinds.json")"
jq -S '.model | map_values(.cancels)' "$OUT_DIR/jq-stats.json" > "$OUT_DIR/jq-models.json"
"$TOOL" stats --json --by model "$LOG" | jq -S '.by.model | map({(.name): .cancels}) | add' \
    > "$OUT_DIR/tool-models.json"
cmp -s "$OUT_DIR/tool-models.json" "$OUT_DIR/jq-models.json" ||
    fail "cancels per model differ (the join)"

jq -c 'select(.event == "cancel") | [.origin.kind, .detect_to_close_us]' "$LOG" |
    jq -s -f "$HERE/by_kind.jq" | jq -S 'map_values(.cancels)' > "$OUT_DIR/jq-by-kind.json"
cmp -s "$OUT_DIR/tool-kinds.json" "$OUT_DIR/jq-by-kind.json" ||
    fail "cancels per kind differ from by_kind.jq"

say "timing cancelproxy-log stats ($REPS rounds)"
T_TEXT=$(measure "$REPS" "'$TOOL' stats '$LOG'")
T_JSON=$(measure "$REPS" "'$TOOL' stats --json '$LOG'")
say "timing jq ($JQ_REPS round(s); this takes a while)"
SEL_KIND="select(.event == \"cancel\") | [.origin.kind, .detect_to_close_us]"
T_JQ_KIND=$(measure "$JQ_REPS" "jq -c '$SEL_KIND' '$LOG' | jq -s -f '$HERE/by_kind.jq'")
T_JQ_FULL=$(measure "$JQ_REPS" "jq -c -f '$HERE/select.jq' '$LOG' | jq -s -f '$HERE/stats.jq'")

CPU=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
echo
echo "$(printf "%'d" "$RECORDS") records, $(( SIZE / 1048576 )) MiB," \
    "$(grep -c '"event":"cancel"' "$LOG") cancels; $(nproc) CPUs ($CPU);" \
    "$(jq --version); median of $REPS (tool) and $JQ_REPS (jq) round(s)."
echo
echo "| what | command | time | max RSS |"
echo "| --- | --- | --- | --- |"
row "all five tables, histograms" "cancelproxy-log stats LOG" "$T_TEXT"
row "the same as JSON" "cancelproxy-log stats --json LOG" "$T_JSON"
row "jq: cancels and close percentiles by kind only" "jq -c '$SEL_KIND' LOG | jq -s -f by_kind.jq" "$T_JQ_KIND"
row "jq: what stats computes (five dimensions, model join)" \
    "jq -c -f select.jq LOG | jq -s -f stats.jq" "$T_JQ_FULL"

if [ "$GB" = 1 ]; then
	N=$(( RECORDS * 1073741824 / SIZE + 1 ))
	say "generating about 1 GiB ($N records)"
	"$OUT_DIR/genlog" "$N" > "$OUT_DIR/big.log"
	BIG=$(stat -c %s "$OUT_DIR/big.log")
	T_BIG=$(measure "$REPS" "'$TOOL' stats '$OUT_DIR/big.log'")
	echo
	echo "$(printf "%'d" "$N") records, $(( BIG / 1048576 )) MiB:"
	echo
	echo "| what | command | time | max RSS |"
	echo "| --- | --- | --- | --- |"
	row "all five tables, histograms" "cancelproxy-log stats LOG" "$T_BIG"
	if [ "$JQ_GB" = 1 ]; then
		T_BIG_JQ=$(measure 1 "jq -c '$SEL_KIND' '$OUT_DIR/big.log' | jq -s -f '$HERE/by_kind.jq'")
		row "jq: by kind only" "jq -c '$SEL_KIND' LOG | jq -s -f by_kind.jq" "$T_BIG_JQ"
	fi
	rm -f "$OUT_DIR/big.log"
fi
