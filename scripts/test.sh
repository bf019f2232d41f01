#!/bin/sh
# Installs what is missing, builds, and runs every test (unit and
# integration) with ctest. BUILD_DIR and cmake arguments as in build.sh.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/build.sh "$@"
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j2 --timeout 900
