#!/usr/bin/env bash
# Installs dependencies, builds everything and runs every test; then builds the
# product as a Release (-O3, its own warnings), packages it (cpack -G DEB) and tests
# the package on a clean root (tests/packaging/deb_install_test.sh).
#
# This is the README's test command and exactly what CI runs (.ci/run). It works on
# a fresh Debian 12 machine as root (CI) or as a user with sudo.
#   CAMBIUM_BUILD_DIR         build directory (default: build)
#   CAMBIUM_RELEASE_BUILD_DIR the Release build and the package (default: build-release)
#   CAMBIUM_SANITIZE=1        build with ASan+UBSan (separate directory: build-asan), and
#                             skip the Release build and the package
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
if [[ ${CAMBIUM_SANITIZE:-0} == 1 ]]; then exit 0; fi

# The product as users get it: Release, no tests or benchmarks, installed under /usr.
release_dir=${CAMBIUM_RELEASE_BUILD_DIR:-build-release}
cmake -S . -B "$release_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAMBIUM_BUILD_TESTS=OFF \
  -DCAMBIUM_BUILD_BENCHMARKS=OFF -DCMAKE_INSTALL_PREFIX=/usr
cmake --build "$release_dir"
release_built=$(date +%s)
rm -f "$release_dir"/cambium_*.deb
cpack -G DEB -B "$release_dir" --config "$release_dir/CPackConfig.cmake"
debs=("$release_dir"/cambium_*.deb)
packaged=$(date +%s)
package_test=0
tests/packaging/deb_install_test.sh "${debs[0]}" || package_test=$?
# 77: skipped (not root; CI runs as root).
if ((package_test != 0 && package_test != 77)); then exit "$package_test"; fi
package_tested=$(date +%s)
echo "test.sh: release build $((release_built - done_at)) s, package $((packaged - release_built)) s" \
  "($(du -h "${debs[0]}" | cut -f1)), package test $((package_tested - packaged)) s"
