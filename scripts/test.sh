#!/bin/sh
# Installs what is missing, builds, and runs every test (unit and
# integration) with ctest. BUILD_DIR and cmake arguments as in build.sh.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh --sdk --tests
# The official OpenAI SDK and puppeteer-core (which drives Debian's
# chromium) for the real-client tests (npm registry).
if [ ! -d tests/sdk/node_modules/openai ] ||
    [ ! -d tests/sdk/node_modules/puppeteer-core ]; then
	(cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error)
fi
./scripts/build.sh "$@"
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j2 --timeout 900
