#!/usr/bin/env bash
# End-to-end test of tools/object-store.sh against the real Ceph RADOS Gateway:
#   cold start in a fresh instance directory -> stdout is only sourceable NAME=value
#   lines -> start again is idempotent (same env) -> status/env -> PUT and GET of a
#   1 MB random object through s3cmd (a real S3 client, configured only from the
#   printed env) -> stop (status/env then fail, stop again succeeds) -> warm start
#   (same env) -> the object is still there, byte for byte -> stop --purge removes
#   the instance directory.
# Everything it starts is stopped and its temporary directory removed on any exit.
# Exit 0: pass; 1: fail; 77: skipped because the Ceph/s3cmd packages are missing.
# Takes about 15 s (cold start ~6 s, warm start ~3 s).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
script=${OBJECT_STORE_SCRIPT:-$here/../../tools/object-store.sh}

for tool in ceph-mon ceph-osd radosgw radosgw-admin s3cmd; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool is missing (tools/setup-deps.sh installs it)" >&2
    exit 77
  fi
done

tmp=$(mktemp -d /tmp/object-store-test.XXXXXX)
export CAMBIUM_OBJECT_STORE_DIR=$tmp/instance
export CAMBIUM_OBJECT_STORE_BUCKET=objstore-test
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_ENDPOINT_URL CAMBIUM_OBJECT_STORE

cleanup() {
  "$script" stop --purge >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

step() { echo "== $*" >&2; }
die() {
  echo "FAIL: $*" >&2
  for f in "$CAMBIUM_OBJECT_STORE_DIR"/log/*.log; do
    [[ -f $f ]] && { echo "--- tail of $f" >&2; tail -n 15 "$f" >&2; }
  done
  exit 1
}
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# start_timed OUTFILE: runs start, keeps stdout in OUTFILE, echoes the seconds taken.
start_timed() {
  local t0 t1
  t0=$(now)
  "$script" start >"$1" || die "start exited non-zero"
  t1=$(now)
  elapsed "$t0" "$t1"
}

# check_env FILE: only NAME=value lines, the four expected names, sources in bash.
check_env() {
  local file=$1
  if grep -vqE '^[A-Z_]+=' "$file"; then
    die "stdout has a line that is not NAME=value: $(grep -vE '^[A-Z_]+=' "$file" | head -1)"
  fi
  unset CAMBIUM_OBJECT_STORE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_ENDPOINT_URL
  # shellcheck source=/dev/null
  source <(grep -E '^[A-Z_]+=' "$file")
  [[ $AWS_ENDPOINT_URL =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || die "bad AWS_ENDPOINT_URL '$AWS_ENDPOINT_URL'"
  [[ $CAMBIUM_OBJECT_STORE == "s3://$CAMBIUM_OBJECT_STORE_BUCKET/"*"?endpoint=$AWS_ENDPOINT_URL&region=default" ]] ||
    die "bad CAMBIUM_OBJECT_STORE '$CAMBIUM_OBJECT_STORE'"
  [[ -n $AWS_ACCESS_KEY_ID && -n $AWS_SECRET_ACCESS_KEY ]] || die "missing S3 keys"
}

# A client configured only from the env: path-style, SigV4, no TLS.
s3() {
  local cfg=$tmp/s3cfg hostport=${AWS_ENDPOINT_URL#http://}
  printf '[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\nsignature_v2 = False\n' \
    "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$hostport" "$hostport" >"$cfg"
  s3cmd -c "$cfg" --no-progress "$@" >/dev/null
}

expect_fail() {
  if "$@" >/dev/null 2>&1; then die "expected failure: $*"; fi
}

bucket=$CAMBIUM_OBJECT_STORE_BUCKET
object=s3://$bucket/test/one-mb

step "cold start"
cold=$(start_timed "$tmp/env.1")
check_env "$tmp/env.1"

step "start again (idempotent)"
again=$(start_timed "$tmp/env.2")
cmp -s "$tmp/env.1" "$tmp/env.2" || die "second start printed a different env"
[[ $("$script" status) == running ]] || die "status does not say running"
"$script" env >"$tmp/env.3" || die "env failed on a running instance"
cmp -s "$tmp/env.1" "$tmp/env.3" || die "env differs from start's output"

step "PUT and GET 1 MB"
head -c 1048576 /dev/urandom >"$tmp/one-mb"
s3 put "$tmp/one-mb" "$object" || die "PUT failed"
s3 get --force "$object" "$tmp/one-mb.get" || die "GET failed"
cmp "$tmp/one-mb" "$tmp/one-mb.get" || die "GET returned different bytes"

step "stop"
"$script" stop || die "stop failed"
expect_fail "$script" status
expect_fail "$script" env
"$script" stop || die "stopping a stopped instance failed"
[[ -d $CAMBIUM_OBJECT_STORE_DIR ]] || die "stop removed the instance directory"

step "warm start"
warm=$(start_timed "$tmp/env.4")
check_env "$tmp/env.4"
cmp -s "$tmp/env.1" "$tmp/env.4" || echo "note: env changed across restart (a port was taken)" >&2

step "the object survived the restart"
rm -f "$tmp/one-mb.get"
s3 get --force "$object" "$tmp/one-mb.get" || die "GET after restart failed"
cmp "$tmp/one-mb" "$tmp/one-mb.get" || die "GET after restart returned different bytes"

step "stop --purge"
"$script" stop --purge || die "stop --purge failed"
[[ ! -e $CAMBIUM_OBJECT_STORE_DIR ]] || die "stop --purge left $CAMBIUM_OBJECT_STORE_DIR"
expect_fail "$script" status

echo "timings: start cold ${cold}s, start warm ${warm}s, start on a running instance ${again}s"
echo "object_store_script_test: 1 passed, 0 failed"
