#!/bin/sh
# Installs what is missing, builds, and runs every test (unit and
# integration) with ctest. BUILD_DIR and cmake arguments as in build.sh.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh --sdk --tests
# The real clients (npm registry: the OpenAI, Vercel AI and Anthropic SDKs,
# puppeteer-core for Debian's chromium, @grpc/grpc-js). npm ci runs again whenever
# package-lock.json changed since the last install (a stamp remembers it).
# No browser is ever downloaded.
if [ ! -d tests/sdk/node_modules/openai ] ||
    ! cmp -s tests/sdk/package-lock.json tests/sdk/node_modules/.cp-lock-stamp; then
	(cd tests/sdk && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund \
	    --loglevel=error && cp package-lock.json node_modules/.cp-lock-stamp)
fi
./scripts/build.sh "$@"
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j2 --timeout 900
