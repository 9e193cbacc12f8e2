#!/usr/bin/env bash
# `cambium changes` against the same answer obtained without it (issue 12's benchmark),
# in the same run on one stack: which tables changed over SECONDS of pgbench TPC-B on a
# database of SCALE (default 135, ~2 GB)?
#   A. `cambium changes main --since T1 --until T2`: the pageserver decodes the WAL
#      between the two points; bytes read = the WAL in the range (its "range" line).
#   B. two branches at T1 and T2 with an endpoint each (time travel), and a content
#      hash of every user table at both: bytes read = twice the tables' size.
# Prints both wall times, both byte counts, their ratios, and whether the two answers
# (the set of user tables that changed) agree. Exit 1 if they do not.
#
# Usage: bench/changes_bench.sh [BUILD_DIR]   (default: build). Needs root. Knobs:
#   SCALE (default 135; QUICK=1: 10)   SECONDS_OF_LOAD (default 60; QUICK=1: 10)
#   CLIENTS (default 4)
set -Eeuo pipefail
BUILD=${1:-build}
if [[ ${QUICK:-0} == 1 ]]; then : "${SCALE:=10}" "${SECONDS_OF_LOAD:=10}"; fi
SCALE=${SCALE:-135}
SECONDS_OF_LOAD=${SECONDS_OF_LOAD:-60}
CLIENTS=${CLIENTS:-4}
PGBIN=/usr/lib/postgresql/15/bin

log() { printf '%s\n' "$*" >&2; }
die() { log "changes_bench: $*"; exit 1; }
[[ $EUID == 0 ]] || die "needs root (FUSE; Postgres runs as user postgres)"
[[ -x $BUILD/tools/cambium ]] || die "no $BUILD/tools/cambium (pass the build directory)"
for tool in jq bc; do command -v "$tool" >/dev/null || die "needs $tool"; done
CAMBIUM=$(realpath "$BUILD/tools/cambium")
DATA=$(mktemp -d /tmp/cambium-changes-bench.XXXX)
chmod 755 "$DATA"
cli() { "$CAMBIUM" --data-dir "$DATA" "$@"; }
cleanup() { cli down >/dev/null 2>&1 || true; rm -rf "$DATA"; }
trap cleanup EXIT
now_ms() { date +%s%3N; }
psql_() { psql -X -At -v ON_ERROR_STOP=1 "$@"; }

log "stack up; pgbench -i -s $SCALE"
MAIN=$(cli up --json 2>/dev/null | jq -r .connection_string)
"$PGBIN/pgbench" -q -i -s "$SCALE" "$MAIN" >/dev/null 2>&1
psql_ "$MAIN" -c "CREATE TABLE untouched AS SELECT g FROM generate_series(1, 100000) g" >/dev/null
psql_ "$MAIN" -c "CHECKPOINT" >/dev/null
sleep 1
T1=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
sleep 1
log "pgbench TPC-B, $CLIENTS clients, ${SECONDS_OF_LOAD}s"
"$PGBIN/pgbench" -n -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_OF_LOAD" "$MAIN" >/dev/null 2>&1
sleep 1
T2=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
sleep 2  # archived

# A: the WAL between the two points.
start=$(now_ms)
cli changes main --since "$T1" --until "$T2" --json >"$DATA/changes.ndjson" 2>/dev/null
a_ms=$(($(now_ms) - start))
a_bytes=$(head -n 1 "$DATA/changes.ndjson" | jq .wal_bytes_read)
a_tables=$(jq -r 'select(.type == "relation" and .kind == "table") | .name' "$DATA/changes.ndjson" |
  sort | tr '\n' ' ')

# B: time travel to both points and compare every table's contents.
hash_sql="SELECT string_agg(format('%s.%s', n.nspname, c.relname), ' ' ORDER BY 1) FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'"
start=$(now_ms)
declare -A content
b_bytes=0
for point in T1 T2; do
  cli branch create "at-$point" --at "${!point}" >/dev/null 2>&1
  url=$(cli endpoint start "at-$point" --json 2>/dev/null | jq -r .connection_string)
  for table in $(psql_ "$url" -c "$hash_sql"); do
    content["$point $table"]=$(psql_ "$url" -c \
      "SELECT count(*) || ':' || coalesce(sum(hashtext(t::text)::bigint), 0) FROM $table t")
    b_bytes=$((b_bytes + $(psql_ "$url" -c "SELECT pg_relation_size('$table')")))
  done
done
b_tables=""
for key in "${!content[@]}"; do
  [[ $key == T1\ * ]] || continue
  table=${key#T1 }
  [[ ${content["T2 $table"]:-} != "${content[$key]}" ]] && b_tables+="$table"$'\n'
done
b_ms=$(($(now_ms) - start))
b_tables=$(printf '%s' "$b_tables" | sort | tr '\n' ' ')

log "changes:     $a_ms ms, $a_bytes bytes read; tables: $a_tables"
log "time travel: $b_ms ms, $b_bytes bytes read; tables: $b_tables"
printf 'changes_bench scale=%s load=%ss: changes %d ms %d B | time travel %d ms %d B | time ratio %s bytes ratio %s\n' \
  "$SCALE" "$SECONDS_OF_LOAD" "$a_ms" "$a_bytes" "$b_ms" "$b_bytes" \
  "$(echo "scale=3; $a_ms / $b_ms" | bc)" "$(echo "scale=4; $a_bytes / $b_bytes" | bc)"
if [[ $a_tables != "$b_tables" ]]; then
  echo "changes_bench: the answers differ: changes [$a_tables] vs time travel [$b_tables]"
  exit 1
fi
echo "changes_bench: same answer ($a_tables)"
