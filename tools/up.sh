#!/usr/bin/env bash
# Takes a fresh Debian 12 machine to a running Cambium stack: installs dependencies,
# builds the product only (cambium and the three daemons: no tests, no benchmarks),
# installs it so that `cambium` is on PATH, and runs `cambium up` (pageserver,
# safekeepers, an endpoint on branch main), which prints the connection string.
# Extra arguments go to `cambium up`.
#   CAMBIUM_PREFIX      where to install (default: /usr/local, so /usr/local/bin/cambium)
#   CAMBIUM_STACK_BUILD build directory (default: build-stack; tools/test.sh's build/
#                       is left alone)
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=${CAMBIUM_PREFIX:-/usr/local}
build_dir=${CAMBIUM_STACK_BUILD:-build-stack}
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

start=$(date +%s)
tools/setup-deps.sh --product >&2
# Release: the configuration tools/test.sh builds and packages in CI. (RelWithDebInfo's
# debug info made this build about 30% slower on 2 cores.)
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAMBIUM_BUILD_TESTS=OFF \
  -DCAMBIUM_BUILD_BENCHMARKS=OFF -DCMAKE_INSTALL_PREFIX="$prefix" >&2
cmake --build "$build_dir" >&2
# Programs and docs only; the systemd units and /etc/cambium come with the package.
$SUDO cmake --install "$build_dir" --component Runtime >&2
echo "up.sh: built and installed into $prefix in $(($(date +%s) - start)) s" >&2

if [[ $(command -v cambium || true) != "$prefix/bin/cambium" ]]; then
  echo "up.sh: warning: $prefix/bin is not first on PATH; add it to run \`cambium\`" >&2
fi
exec "$prefix/bin/cambium" up "$@"
