#!/usr/bin/env bash
# Installs the build and test dependencies of Cambium from Debian 12 packages.
#
#   tools/setup-deps.sh            everything tools/test.sh needs
#   tools/setup-deps.sh --product  only what building and running the product needs
#                                  (tools/up.sh): no test, benchmark or browser
#                                  packages, about half the download on a fresh machine
#
# Idempotent: asks dpkg which packages are missing and installs only those, so a
# second run on a prepared machine does nothing and needs no network. Runs as
# root (CI) or through sudo.
set -euo pipefail

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

product_packages=(
  # build; dpkg-dev for dpkg-shlibdeps (the Debian package's library dependencies)
  build-essential cmake ninja-build ccache pkg-config git dpkg-dev
  # storage, rpc, libraries
  librocksdb-dev liblz4-dev liburing-dev libxxhash-dev
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libabsl-dev libfuse3-dev fuse3
  libcli11-dev nlohmann-json3-dev libtomlplusplus-dev libspdlog-dev
  # tokens (RAND_bytes, SHA-256, CRYPTO_memcmp)
  libssl-dev
  # the daemons' HTTP endpoints (/metrics, /healthz, /readyz)
  libcpp-httplib-dev
  # the object store client (S3 over HTTP(S); its XML answers)
  libcurl4-openssl-dev libxml2-dev
  # the Postgres that computes run, psql, and libpq for the CLI (and tests/chaos)
  postgresql-15 postgresql-client-15 libpq-dev
  # the placement of tenants over several pageservers (`up --pageservers N`)
  etcd-server
  procps util-linux
)
test_packages=(
  # the TLS test's certificate
  openssl
  # tests and benchmarks; prometheus for promtool and the scrape test (the tests run
  # their own; under systemd the package also enables a prometheus service on :9090)
  googletest libgtest-dev libgmock-dev libbenchmark-dev prometheus
  # Postgres tools the tests use (pg_waldump, pg_controldata, amcheck)
  postgresql-contrib
  # process utilities used by tests (fuser); jq and bc for bench/
  psmisc jq bc
  chromium chromium-driver  # the console's browser test (tests/console), through WebDriver
  # tools/object-store.sh: a real S3 endpoint on loopback (Ceph RADOS Gateway), s3cmd client
  ceph-mon ceph-osd radosgw ceph-common s3cmd
)
case "${1:-}" in
  "") packages=("${product_packages[@]}" "${test_packages[@]}") ;;
  --product) packages=("${product_packages[@]}") ;;
  *)
    echo "usage: $0 [--product]" >&2
    exit 2
    ;;
esac

# apt-get, waiting up to 10 minutes for another apt or dpkg (unattended-upgrades,
# cloud-init, a second setup-deps) instead of failing. DPkg::Lock::Timeout makes apt
# wait for dpkg's lock; apt 2.6 does not apply it to the package lists' lock that
# `update` takes, so a refusal naming a lock is retried here.
apt_get() {
  local deadline=$((SECONDS + 600)) err
  err=$(mktemp)
  while ! $SUDO apt-get -o DPkg::Lock::Timeout=600 "$@" 2>"$err"; do
    if grep -q 'Could not get lock' "$err" && ((SECONDS < deadline)); then
      echo "setup-deps: another apt or dpkg holds its lock; waiting" >&2
      sleep 5
      continue
    fi
    cat "$err" >&2
    rm -f "$err"
    return 1
  done
  cat "$err" >&2
  rm -f "$err"
}

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup-deps: all ${#packages[@]} packages present"
else
  echo "setup-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_get update -qq
  # The Debian postgresql package creates and starts a default cluster; we never
  # use it (tests create their own), so do not let it start one.
  if [[ ! -e /etc/postgresql-common/createcluster.conf ]] || ! grep -q '^create_main_cluster = false' /etc/postgresql-common/createcluster.conf 2>/dev/null; then
    $SUDO mkdir -p /etc/postgresql-common
    echo 'create_main_cluster = false' | $SUDO tee -a /etc/postgresql-common/createcluster.conf >/dev/null
  fi
  apt_get install -y -qq --no-install-recommends "${missing[@]}"
fi

# FUSE: root mounts with allow_other for the postgres user; fuse.conf must allow it
# for non-root mounts, and the device must exist.
if [[ -f /etc/fuse.conf ]] && ! grep -q '^user_allow_other' /etc/fuse.conf; then
  if [[ $(id -u) -eq 0 ]]; then echo user_allow_other >>/etc/fuse.conf; fi
fi
[[ -e /dev/fuse ]] || echo "setup-deps: warning: /dev/fuse is missing; shim tests will be skipped" >&2
exit 0
