#!/usr/bin/env bash
# What keeping the pageserver's history in an object store costs (issue 14), in one run
# against the same stack without one:
#   1. `cambium branch create` wall time (process start included): a branch is
#      acknowledged only once an upload covers it, so this is the price of
#      "no acknowledged branch on one disk only";
#   2. `pgbench -i -s SCALE` wall time (uploads run beside the ingest);
#   3. TPC-B tps for DURATION seconds (4 clients);
#   4. bytes and objects in the store after the load, and `pageserver rebuild` time.
# The object store is a real Ceph RGW on loopback (tools/object-store.sh). Needs root.
#
# Usage: bench/object_store_bench.sh [BUILD_DIR]   (default: build)
#   SCALE (default 10)  DURATION (default 15)  BRANCHES (default 10)
set -Eeuo pipefail
BUILD=${1:-build}
SCALE=${SCALE:-10}
DURATION=${DURATION:-15}
BRANCHES=${BRANCHES:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLI=$(readlink -f "$BUILD/tools/cambium")
WORK=$(mktemp -d /tmp/cambium-os-bench.XXXX)
chmod 755 "$WORK"
export CAMBIUM_OBJECT_STORE_DIR="$WORK/rgw" CAMBIUM_OBJECT_STORE_BUCKET=bench
cleanup() {
  for d in "$WORK"/plain "$WORK"/remote; do [[ -d $d ]] && "$CLI" down --data-dir "$d" >/dev/null 2>&1; done
  "$ROOT/tools/object-store.sh" stop --purge >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
url_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["connection_string"])'; }

# One stack: up (extra args), load, branches, TPC-B. Prints "branch_ms load_ms tps".
run_stack() {
  local dir=$1; shift
  mkdir -p "$dir"; chmod 755 "$dir"
  local url; url=$("$CLI" up --data-dir "$dir" --json "$@" 2>"$dir.up.err" | url_of)
  local t0; t0=$(ms)
  pgbench -q -i -s "$SCALE" "$url" >/dev/null 2>&1
  local load=$(($(ms) - t0))
  local times=()
  for i in $(seq 1 "$BRANCHES"); do
    t0=$(ms)
    "$CLI" branch create "b$i" --parent main --data-dir "$dir" >/dev/null
    times+=($(($(ms) - t0)))
  done
  local branch; branch=$(printf '%s\n' "${times[@]}" | median)
  local tps; tps=$(pgbench -n -c 4 -j 2 -T "$DURATION" "$url" 2>/dev/null | awk '/^tps/ {print int($3)}')
  echo "$branch $load $tps"
}

echo "object_store_bench: scale $SCALE, $BRANCHES branches, TPC-B ${DURATION}s, build $BUILD"
read -r plain_branch plain_load plain_tps < <(run_stack "$WORK/plain")
"$CLI" down --data-dir "$WORK/plain" >/dev/null

set -a
eval "$("$ROOT/tools/object-store.sh" start)"
set +a
read -r remote_branch remote_load remote_tps < <(run_stack "$WORK/remote" --object-store "$CAMBIUM_OBJECT_STORE")
sleep 12  # one upload interval: the store catches up
objects=$(s3cmd --host="${AWS_ENDPOINT_URL#http://}" --host-bucket= --no-ssl \
  --access_key="$AWS_ACCESS_KEY_ID" --secret_key="$AWS_SECRET_ACCESS_KEY" du -r "s3://bench" 2>/dev/null |
  awk '{print $1, $2}')
t0=$(ms)
"$CLI" pageserver rebuild --data-dir "$WORK/remote" >/dev/null
rebuild=$(($(ms) - t0))
local_bytes=$(du -sb "$WORK/remote/pageserver" | cut -f1)

ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}')" "$1" "$2"; }
echo "branch create p50: ${plain_branch} ms without, ${remote_branch} ms with the object store; ratio $(ratio "$remote_branch" "$plain_branch")"
echo "pgbench -i -s $SCALE: ${plain_load} ms without, ${remote_load} ms with; ratio $(ratio "$remote_load" "$plain_load")"
echo "TPC-B 4 clients: ${plain_tps} tps without, ${remote_tps} tps with; ratio $(ratio "$remote_tps" "$plain_tps")"
echo "object store after the load: ${objects} (bytes, objects); pageserver data after rebuild: ${local_bytes} bytes"
echo "pageserver rebuild (stop, delete, restore, restart endpoints): ${rebuild} ms"
