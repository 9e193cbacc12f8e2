#!/usr/bin/env bash
# End-to-end benchmark of Cambium against vanilla PostgreSQL 15, in the same run:
#   1. pgbench TPC-B and select-only (-S) on a Cambium endpoint vs a local cluster with
#      the same settings, as ratios;
#   2. `cambium branch create` wall time (process start included), p50/p99, on a
#      small and a large main;
#   3. time from `cambium endpoint start` on a new branch to the first answered query,
#      with and without writes since the last checkpoint.
#
# Usage: bench/e2e_bench.sh [BUILD_DIR]   (default: build). Needs root (FUSE, and
# Postgres runs as user postgres). Environment knobs:
#   SMALL_SCALE (default 7, ~100 MB)  LARGE_SCALE (default 135, ~2 GB)
#   DURATION (pgbench seconds, default 30)  CLIENTS (default 4)  BRANCHES (default 30)
set -euo pipefail
BUILD=${1:-build}
CAMBIUM=$(realpath "$BUILD/tools/cambium")
PGBIN=/usr/lib/postgresql/15/bin
SMALL_SCALE=${SMALL_SCALE:-7}
LARGE_SCALE=${LARGE_SCALE:-135}
DURATION=${DURATION:-30}
CLIENTS=${CLIENTS:-4}
BRANCHES=${BRANCHES:-30}
WORK=$(mktemp -d /tmp/cambium-e2e-XXXXXX)
chmod 755 "$WORK"
DATA="$WORK/cambium"
SETTINGS=(-c shared_buffers=128MB -c checkpoint_timeout=60s -c max_wal_size=1GB)

cleanup() {
  "$CAMBIUM" down --data-dir "$DATA" >/dev/null 2>&1 || true
  [[ -n ${VANILLA_PID:-} ]] && kill -INT "$VANILLA_PID" 2>/dev/null && sleep 3
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '%s\n' "$*" >&2; }
tps() { sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int(NR*p/100+0.999); if(i<1)i=1; print a[i]}'; }

# --- vanilla Postgres with the same settings ---------------------------------------
mkdir -p "$WORK/vanilla" && chown postgres "$WORK/vanilla"
runuser -u postgres -- "$PGBIN/initdb" -N -D "$WORK/vanilla/pgdata" -U postgres --locale=C >/dev/null
free_port() {
  while :; do
    local p=$((RANDOM % 20000 + 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
VPORT=$(free_port)
runuser -u postgres -- "$PGBIN/postgres" -D "$WORK/vanilla/pgdata" -p "$VPORT" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories="$WORK/vanilla" "${SETTINGS[@]}" >"$WORK/vanilla/log" 2>&1 &
VANILLA_PID=$!
until "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$VPORT"; do sleep 0.2; done
VANILLA="postgresql://postgres@127.0.0.1:$VPORT/postgres"

# --- Cambium -----------------------------------------------------------------------
MAIN=$("$CAMBIUM" up --data-dir "$DATA" --json | sed -n 's/.*"connection_string": "\(.*\)".*/\1/p' | head -1)
log "cambium main: $MAIN   vanilla: $VANILLA"

# Runs pgbench, prints its tps; on failure shows its output on stderr and prints 0.
run_pgbench() {  # label, pgbench args...
  local label=$1 out; shift
  out="$WORK/pgbench-$label.log"
  if ! "$PGBIN/pgbench" "$@" >"$out" 2>&1; then
    log "pgbench $label failed:"; tail -20 "$out" >&2
  fi
  tps <"$out" | grep . || echo 0
}

bench_pair() {  # scale
  local scale=$1
  for target in vanilla cambium; do
    local url=$VANILLA; [[ $target == cambium ]] && url=$MAIN
    local t0; t0=$(date +%s%N)
    "$PGBIN/pgbench" -i -q -s "$scale" "$url" >/dev/null 2>&1
    log "$target: pgbench -i -s $scale took $(ms_since "$t0") ms"
    "$PGBIN/psql" -X -q "$url" -c "CHECKPOINT" >/dev/null
  done
  for mode in tpcb select; do
    local flags=(-n -c "$CLIENTS" -j 2 -T "$DURATION"); [[ $mode == select ]] && flags+=(-S)
    local v c
    v=$(run_pgbench "vanilla-$mode" "${flags[@]}" "$VANILLA")
    c=$(run_pgbench "cambium-$mode" "${flags[@]}" "$MAIN")
    printf 'pgbench %-6s scale %-4s vanilla %10.1f tps   cambium %10.1f tps   ratio %.2f\n' \
      "$mode" "$scale" "$v" "$c" "$(echo "$c / $v" | bc -l)"
  done
}

branch_create_times() {  # label; sets BRANCH_P50 (microseconds)
  local label=$1 times=()
  for i in $(seq 1 "$BRANCHES"); do
    local t0; t0=$(date +%s%N)
    "$CAMBIUM" branch create "b-$label-$i" --data-dir "$DATA" >/dev/null
    times+=($(( ($(date +%s%N) - t0) / 1000 )))
  done
  local p50 p99
  p50=$(printf '%s\n' "${times[@]}" | median)
  p99=$(printf '%s\n' "${times[@]}" | pct 99)
  printf 'branch create on %-14s p50 %8.1f ms   p99 %8.1f ms   (%d branches, process start included)\n' \
    "$label" "$(echo "$p50/1000" | bc -l)" "$(echo "$p99/1000" | bc -l)" "$BRANCHES"
  for i in $(seq 1 "$BRANCHES"); do "$CAMBIUM" branch delete "b-$label-$i" --data-dir "$DATA" >/dev/null; done
  BRANCH_P50=$p50
}

first_query() {  # label
  local label=$1
  "$CAMBIUM" branch create "fq-$label" --data-dir "$DATA" >/dev/null
  local t0; t0=$(date +%s%N)
  local url
  url=$("$CAMBIUM" endpoint start "fq-$label" --data-dir "$DATA" --json | sed -n 's/.*"connection_string": "\(.*\)".*/\1/p' | head -1)
  "$PGBIN/psql" -X -q -At "$url" -c "SELECT count(*) FROM pgbench_branches" >/dev/null
  printf 'endpoint start on a new branch -> first query (%s): %d ms\n' "$label" "$(ms_since "$t0")"
  "$CAMBIUM" endpoint stop "fq-$label" --data-dir "$DATA" >/dev/null
  "$CAMBIUM" branch delete "fq-$label" --data-dir "$DATA" >/dev/null
}

echo "== small database (scale $SMALL_SCALE) =="
bench_pair "$SMALL_SCALE"
first_query "small-after-the-pgbench-runs"
"$PGBIN/psql" -X -q "$MAIN" -c "CHECKPOINT" >/dev/null
sleep 3
branch_create_times small
SMALL_P50=$BRANCH_P50
first_query "small-checkpointed"

echo "== large database (scale $LARGE_SCALE) =="
"$PGBIN/pgbench" -i -q -s "$LARGE_SCALE" "$MAIN" >/dev/null 2>&1
"$PGBIN/psql" -X -q "$MAIN" -c "CHECKPOINT" >/dev/null
echo "main size: $("$PGBIN/psql" -X -At "$MAIN" -c "SELECT pg_size_pretty(pg_database_size('postgres'))")"
sleep 3
branch_create_times large
LARGE_P50=$BRANCH_P50
printf 'branch create p50 ratio large/small: %.2f\n' "$(echo "$LARGE_P50 / $SMALL_P50" | bc -l)"
first_query "large-checkpointed"
"$PGBIN/psql" -X -q "$MAIN" -c "CHECKPOINT" >/dev/null
"$PGBIN/pgbench" -n -c "$CLIENTS" -j 2 -T 10 "$MAIN" >/dev/null 2>&1
sleep 3
first_query "large-10s-of-writes-after-checkpoint"
