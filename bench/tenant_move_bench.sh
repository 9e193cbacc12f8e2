#!/usr/bin/env bash
# Moving a tenant between two pageservers (`cambium tenant move`, issue 14): for each
# size, how long the tenant's storage is paused (export + attach + finish), how long
# commits stall (the largest gap between acknowledgements of a one-row insert loop
# running through the move), and the same bytes written, synced and read back through
# the local disk in the same run (the physical floor of a move through a local store).
#
# Usage: bench/tenant_move_bench.sh [BUILD_DIR]   (default: build). Needs root.
# Knobs: SCALES (pgbench scales, default "7 135": ~100 MB and ~2 GB), OBJECT_STORE
# (an --object-store URL for the stack; default none: the transfer store is
# DATA/transfers on the local disk).
set -Eeuo pipefail
BUILD=${1:-build}
SCALES=${SCALES:-"7 135"}
CAMBIUM=$(realpath "$BUILD/tools/cambium")
[[ $EUID == 0 ]] || { echo "needs root" >&2; exit 1; }
DATA=$(mktemp -d /tmp/cambium-move-bench.XXXX)
chmod 755 "$DATA"
cleanup() { "$CAMBIUM" --data-dir "$DATA" down >/dev/null 2>&1 || true; rm -rf "$DATA"; }
trap cleanup EXIT
cli() { "$CAMBIUM" --data-dir "$DATA" "$@"; }

up_args=(up --pageservers 2 --json)
[[ -n ${OBJECT_STORE:-} ]] && up_args+=(--object-store "$OBJECT_STORE")
cli "${up_args[@]}" >"$DATA/up.json"
URL=$(jq -r .connection_string "$DATA/up.json")
psql -X -q "$URL" -c "CREATE TABLE acks(id bigint primary key)"

# The floor: write N bytes with fdatasync, then read them back (O_DIRECT both ways).
floor_ms() {
  local mb=$(( ($1 + 1048575) / 1048576 )) start end
  start=$(date +%s%N)
  dd if=/dev/zero of="$DATA/floor" bs=1M count="$mb" oflag=direct conv=fdatasync status=none
  dd if="$DATA/floor" of=/dev/null bs=1M iflag=direct status=none
  end=$(date +%s%N)
  rm -f "$DATA/floor"
  echo $(( (end - start) / 1000000 ))
}

to=pageserver1
printf '| scale | bytes moved | pause ms | export ms | attach ms | largest commit gap ms | floor (write+sync+read) ms | pause / floor |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for scale in $SCALES; do
  pgbench -q -i -s "$scale" "$URL" >/dev/null 2>&1
  psql -X -q "$URL" -c CHECKPOINT
  acks="$DATA/acks-$scale"
  : >"$acks"
  ( i=0; while :; do i=$((i + 1)); psql -X -q "$URL" -c "INSERT INTO acks VALUES ($scale * 1000000 + $i)" \
      >/dev/null 2>&1 && date +%s%N >>"$acks"; done ) &
  writer=$!
  sleep 2
  cli tenant move default --to "$to" --json >"$DATA/move.json"
  sleep 2
  kill "$writer"; wait "$writer" 2>/dev/null || true
  gap=$(awk 'NR > 1 { d = ($1 - p) / 1e6; if (d > m) m = d } { p = $1 } END { printf "%d", m }' "$acks")
  bytes=$(jq .bytes "$DATA/move.json")
  pause=$(jq .pause_ms "$DATA/move.json")
  floor=$(floor_ms "$bytes")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$scale" "$bytes" "$pause" \
    "$(jq .export_ms "$DATA/move.json")" "$(jq .attach_ms "$DATA/move.json")" "$gap" "$floor" \
    "$(echo "scale=2; $pause / ($floor + 1)" | bc)"
  to=$([[ $to == pageserver1 ]] && echo pageserver || echo pageserver1)
done
