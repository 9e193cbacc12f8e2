#!/usr/bin/env bash
# Takes a fresh Debian 12 machine to a running Cambium stack: installs dependencies,
# builds, and runs `cambium up` (pageserver, safekeepers, an endpoint on branch main),
# which prints the connection string. Extra arguments go to `cambium up`.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup-deps.sh >&2
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
cmake --build build >&2

exec build/tools/cambium up "$@"
