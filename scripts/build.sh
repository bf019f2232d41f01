#!/bin/sh
# Configures and builds cancelproxy into build/ (or $BUILD_DIR); extra
# arguments go to cmake, e.g. -DCANCELPROXY_SANITIZE=ON.
set -eu
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
