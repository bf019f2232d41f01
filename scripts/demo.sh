#!/bin/sh
# The demo: cancelproxy-mock (a streaming model), cancelproxy in front of it
# (examples/demo.json), a client that hangs up mid-stream, and the cancel
# record the proxy writes. Installs and builds what is missing first.
# --browser: then keeps both running and serves examples/chat.html on
# http://127.0.0.1:18800 (another origin) until Ctrl-C.
set -eu
BROWSER=0
[ "${1:-}" = "--browser" ] && BROWSER=1
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/build.sh >"${TMPDIR:-/tmp}/cancelproxy-build.log" 2>&1 ||
	{ cat "${TMPDIR:-/tmp}/cancelproxy-build.log"; exit 1; }
B=${BUILD_DIR:-build}
T=$(mktemp -d)
PAGE=
trap 'kill $MOCK $PROXY $PAGE 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$T"' EXIT INT TERM

export DEMO_API_KEY=sk-demo-not-a-real-key
"$B"/cancelproxy-mock --listen 127.0.0.1:18000 --first-token-ms 300 \
	--interval-ms 100 --tokens 100 >"$T/mock.log" &
MOCK=$!
"$B"/cancelproxy -c examples/demo.json >"$T/proxy.log" &
PROXY=$!
for i in $(seq 50); do
	grep -q '"listening"' "$T/proxy.log" 2>/dev/null &&
	    grep -q '"listening"' "$T/mock.log" 2>/dev/null && break
	sleep 0.1
done

echo "== a client asks for 100 tokens (one per 100 ms) and hangs up after 1 second:"
curl -sN --max-time 1 http://127.0.0.1:18080/v1/chat/completions \
	-H 'Content-Type: application/json' \
	-d '{"model":"mock-1","stream":true,"messages":[{"role":"user","content":"hi"}]}' \
	| sed -un 's/.*"content":"\([^"]*\)".*/\1/p' | tr -d '\n' || true
echo
sleep 0.3
echo
echo "== the proxy's cancel record"
grep '"event":"cancel"' "$T/proxy.log" || { echo "no cancel record"; cat "$T/proxy.log"; exit 1; }
echo
echo "== the proxy's request record"
grep '"event":"request"' "$T/proxy.log"
echo
echo "== what the model server saw"
grep '"event":"mock_stream"' "$T/mock.log"

[ "$BROWSER" = 1 ] || exit 0
/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory examples 18800 \
	>"$T/page.log" 2>&1 &
PAGE=$!
echo
echo "== the browser demo: open http://127.0.0.1:18800/chat.html"
echo "   press Send, then Stop; the page shows the cancel record. Ctrl-C ends."
wait "$PROXY"
