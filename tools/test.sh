#!/usr/bin/env bash
# Installs dependencies, builds everything and runs every test.
#
# This is the README's test command and exactly what CI runs (.ci/run). It works on
# a fresh Debian 12 machine as root (CI) or as a user with sudo.
#   CAMBIUM_BUILD_DIR   build directory (default: build)
#   CAMBIUM_SANITIZE=1  build with ASan+UBSan (separate directory: build-asan)
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup-deps.sh

build_dir=${CAMBIUM_BUILD_DIR:-build}
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [[ ${CAMBIUM_SANITIZE:-0} == 1 ]]; then
  build_dir=${CAMBIUM_BUILD_DIR:-build-asan}
  cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=Debug -DCAMBIUM_SANITIZE=ON)
fi

start=$(date +%s)
cmake -S . -B "$build_dir" "${cmake_args[@]}"
cmake --build "$build_dir"
built=$(date +%s)
ctest --test-dir "$build_dir" --output-on-failure --no-tests=error -j "$(nproc)"
done_at=$(date +%s)
echo "test.sh: build $((built - start)) s, tests $((done_at - built)) s"
