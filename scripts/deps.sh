#!/bin/sh
# Installs what cancelproxy needs on Debian 12 (build, tests, demo), only
# the packages that are missing. Runs apt-get as root, or through sudo.
set -eu

PKGS="build-essential cmake pkg-config libevent-dev libssl-dev libcjson-dev
libcriterion-dev node-llhttp zlib1g-dev libnghttp2-dev
libhiredis-dev redis-server curl ca-certificates openssl python3 valgrind"
for opt in "$@"; do
	case "$opt" in
	--bench) PKGS="$PKGS nginx-light haproxy wrk jq" ;;
	# What some tests drive: a browser for the HTML report, man/groff
	# for the man pages, clang for the fuzz targets, a JDK for the h2c
	# test with Java's HttpClient (skipped without it), grpcio and h2 for
	# the gRPC tests.
	--tests) PKGS="$PKGS chromium groff man-db clang libclang-rt-14-dev default-jdk-headless python3-grpcio python3-h2" ;;
	# Node for the OpenAI SDK tests, unless a node is already on PATH.
	--sdk) command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs npm" ;;
	esac
done

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
else
	SUDO="sudo"
fi
echo "installing:$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
