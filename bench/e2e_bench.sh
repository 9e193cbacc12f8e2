#!/usr/bin/env bash
# End-to-end benchmark of Cambium against vanilla PostgreSQL 15 with the same settings, in
# the same run: every target of performance issue 11, as vanilla-vs-Cambium ratios.
#   1. pgbench TPC-B, CLIENTS clients: tps;
#   2. pgbench TPC-B, 1 client: latency per transaction;
#   3. select-only (-S) with the data in shared buffers, and with a working set larger
#      than shared buffers: tps;
#   4. `pgbench -i` (bulk load) into a new database: wall time;
#   5. Cambium's CPU (shim, pageserver, safekeepers; Postgres excluded) and context
#      switches per committed transaction during the TPC-B run of 1;
#   6. `cambium endpoint start` on a new branch to the first answered query: on a
#      checkpointed large database, and after 10 s of TPC-B writes since the last
#      checkpoint against vanilla's crash restart (pg_ctl stop -m immediate) with the
#      same writes;
#   7. `cambium branch create` wall time (process start included), small vs large main.
# Each result is one greppable line ("ratio X.XX" where there is a vanilla counterpart);
# a markdown table of all of them comes last. A part that fails says so, the run goes on,
# and the script exits 1 at the end, keeping the logs in /tmp/cambium-e2e-logs-*.
#
# Usage: bench/e2e_bench.sh [BUILD_DIR]   (default: build). Needs root (FUSE, and
# Postgres runs as user postgres). Environment knobs (QUICK=1 changes the defaults to a
# ~5-minute run: DURATION=5 LARGE_SCALE=20 BULK_SCALE=5 SELECT_LARGE_SCALE=10 RUNS=2
# BRANCHES=5 WARMUP=2; an explicit knob still wins):
#   SMALL_SCALE (default 7, ~100 MB: fits in shared_buffers=128MB)
#   SELECT_LARGE_SCALE (default 50, ~750 MB)   BULK_SCALE (default 50)
#   LARGE_SCALE (default 135, ~2 GB)   DURATION (pgbench seconds, default 30)
#   WARMUP (select-only warm-up seconds, default 5)   CLIENTS (default 4)
#   BRANCHES (branch creations per size, default 30)   RUNS (first-query runs, default 5)
#   WRITE_SECONDS (TPC-B seconds since the checkpoint before a first query, default 10)
#   SHIM_TOML (settings for every endpoint's shim, D/shim.toml; default none)
#   PARTS (comma-separated part functions to run, e.g. part_small_pgbench,part_bulk;
#   default all; parts that need the large database need part_large_init too)
set -Eeuo pipefail
shopt -s inherit_errexit  # a failure inside $(...) fails the assignment
BUILD=${1:-build}
if [[ ${QUICK:-0} == 1 ]]; then
  : "${DURATION:=5}" "${LARGE_SCALE:=20}" "${BULK_SCALE:=5}" "${SELECT_LARGE_SCALE:=10}"
  : "${RUNS:=2}" "${BRANCHES:=5}" "${WARMUP:=2}"
fi
SMALL_SCALE=${SMALL_SCALE:-7}
SELECT_LARGE_SCALE=${SELECT_LARGE_SCALE:-50}
BULK_SCALE=${BULK_SCALE:-50}
LARGE_SCALE=${LARGE_SCALE:-135}
DURATION=${DURATION:-30}
WARMUP=${WARMUP:-5}
CLIENTS=${CLIENTS:-4}
BRANCHES=${BRANCHES:-30}
RUNS=${RUNS:-5}
WRITE_SECONDS=${WRITE_SECONDS:-10}
PGBIN=/usr/lib/postgresql/15/bin
SETTINGS="-c shared_buffers=128MB -c checkpoint_timeout=60s -c max_wal_size=1GB -c wal_writer_delay=10ms"

log() { printf '%s\n' "$*" >&2; }
die() { log "e2e_bench: $*"; exit 1; }
[[ $EUID == 0 ]] || die "needs root (FUSE; Postgres runs as user postgres)"
[[ -x $BUILD/tools/cambium ]] || die "no $BUILD/tools/cambium (pass the build directory)"
CAMBIUM=$(realpath "$BUILD/tools/cambium")
for tool in jq bc runuser; do command -v "$tool" >/dev/null || die "needs $tool"; done
# The CLI starts the daemons and shims from the build directory: a rebuild during the run
# would mix versions, so the end of the run says if one happened.
BINARIES=("$BUILD"/{tools/cambium,pageserver/cambium-pageserver,safekeeper/cambium-safekeeper,compute-shim/cambium-shim})
binaries_stamp() { stat -c '%n %Y %s' "${BINARIES[@]}"; }
BINARIES_AT_START=$(binaries_stamp)

WORK=$(mktemp -d /tmp/cambium-e2e-XXXXXX)
chmod 755 "$WORK"
DATA="$WORK/cambium"
VDIR="$WORK/vanilla"
VDATA="$VDIR/pgdata"
SUMMARY="$WORK/summary"
: >"$SUMMARY"

vanilla_ctl() { runuser -u postgres -- "$PGBIN/pg_ctl" -D "$VDATA" -l "$VDIR/postgres.log" "$@"; }
cleanup() {
  local rc=$?
  trap - ERR
  log "cleaning up $WORK"
  "$CAMBIUM" down --data-dir "$DATA" >/dev/null 2>&1 || log "cambium down failed"
  if [[ -f $VDATA/postmaster.pid ]]; then vanilla_ctl -m immediate stop >/dev/null 2>&1 || true; fi
  if ((rc)); then  # keep the logs (not the data) of a failed run
    local keep
    keep=$(mktemp -d /tmp/cambium-e2e-logs-XXXXXX)
    (cd "$WORK" && find . -maxdepth 1 -name '*.log' -exec cp {} "$keep" \; &&
      find vanilla cambium/logs cambium/endpoints -type f \( -name '*.log' -o -name '*.out' \) \
        -exec cp --parents {} "$keep" \;) 2>/dev/null || true
    log "logs of the failed run kept in $keep"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
on_err() { log "error: \`$BASH_COMMAND\` failed (exit $1) in ${FUNCNAME[1]:-main}, line $2"; }
trap 'on_err $? $LINENO' ERR

ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int(NR*p/100+0.999); if(i<1)i=1; print a[i]}'; }
maximum() { sort -n | tail -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
# One row of the final table; KEY orders the rows.
row() { printf '%s\t| %s | %s | %s | %s | %s |\n' "$@" >>"$SUMMARY"; }
sql() { "$PGBIN/psql" -X -q -At "$1" -c "$2"; }
with_db() { echo "${1%/postgres}/$2"; }  # URL of database $2 on the server of URL $1

# --- vanilla Postgres with the same settings, restartable through pg_ctl -------------
free_port() {
  while :; do
    local p=$((RANDOM % 20000 + 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
mkdir -p "$VDIR" && chown postgres "$VDIR"
runuser -u postgres -- "$PGBIN/initdb" -N -A trust -D "$VDATA" -U postgres --locale=C >/dev/null
VPORT=$(free_port)
VOPTS="-p $VPORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$VDIR $SETTINGS"
vanilla_ctl -o "$VOPTS" -w start >/dev/null
VANILLA="postgresql://postgres@127.0.0.1:$VPORT/postgres"

# --- Cambium -----------------------------------------------------------------------
# SHIM_TOML: settings for every endpoint's shim (D/shim.toml), e.g. an A/B run with
# SHIM_TOML='writeback-cache = false'.
if [[ -n ${SHIM_TOML:-} ]]; then
  mkdir -p "$DATA" && chmod 755 "$DATA" && printf '%s\n' "$SHIM_TOML" >"$DATA/shim.toml"
  log "shim settings: $SHIM_TOML"
fi
MAIN=$("$CAMBIUM" up --data-dir "$DATA" --json | jq -r .connection_string)
[[ $MAIN == postgresql://* ]] || die "cambium up printed no connection string"
log "cambium main: $MAIN   vanilla: $VANILLA"
for s in shared_buffers max_wal_size checkpoint_timeout wal_buffers wal_writer_delay; do
  echo "setting $s: vanilla $(sql "$VANILLA" "SHOW $s")   cambium $(sql "$MAIN" "SHOW $s")"
done

# --- helpers -------------------------------------------------------------------------
# Runs pgbench with its output in $WORK/pgbench-LABEL.log; fails, showing the output,
# when pgbench fails or prints no tps.
run_pgbench() {  # label, pgbench args...
  local label=$1 out="$WORK/pgbench-$1.log"
  shift
  if ! "$PGBIN/pgbench" "$@" >"$out" 2>&1 || ! grep -q '^tps = ' "$out"; then
    log "pgbench $label failed:"
    tail -20 "$out" >&2
    return 1
  fi
}
pgb_tps() { sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$WORK/pgbench-$1.log" | head -1; }
pgb_latency() { sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$WORK/pgbench-$1.log" | head -1; }
pgb_txns() { sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$WORK/pgbench-$1.log" | head -1; }

init_both() {  # database, scale: pgbench -i on both sides (untimed but logged), CHECKPOINT
  local db=$1 scale=$2 target url t0
  for target in vanilla cambium; do
    url=$VANILLA
    [[ $target == cambium ]] && url=$MAIN
    url=$(with_db "$url" "$db")
    t0=$(date +%s%N)
    if ! "$PGBIN/pgbench" -i -q -s "$scale" "$url" >"$WORK/init-$target-$db.log" 2>&1; then
      log "pgbench -i -s $scale into $db on $target failed:"
      tail -20 "$WORK/init-$target-$db.log" >&2
      return 1
    fi
    log "$target: pgbench -i -s $scale ($db) took $(ms_since "$t0") ms"
    sql "$url" CHECKPOINT
  done
}

# Wait until URL answers the first query; prints nothing, fails after 5 minutes.
wait_first_query() {
  local deadline=$((SECONDS + 300))
  until "$PGBIN/psql" -X -q -At "$1" -c "SELECT count(*) FROM pgbench_branches" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { log "no answer from $1"; return 1; }
    sleep 0.01
  done
}

# --- per-process CPU and context switches of Cambium's daemons and the main shim ------
cambium_pids() {  # "name pid" lines
  "$CAMBIUM" status --json --data-dir "$DATA" | jq -r '
    (.endpoints[] | select(.name == "main") | "shim \(.shim_pid)"),
    "pageserver \(.pageserver.pid)",
    (.safekeepers[] | "\(.name) \(.pid)")'
}
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }  # utime+stime
ctx_switches() {  # voluntary + nonvoluntary, over the threads alive now
  { awk '/ctxt_switches/ {s += $2} END {print s + 0}' /proc/"$1"/task/*/status 2>/dev/null || true; }
}
snapshot() {  # "name pid ticks ctxsw" lines
  local name pid
  while read -r name pid; do
    [[ $pid =~ ^[1-9][0-9]*$ && -d /proc/$pid ]] || { log "$name: no process ($pid)"; return 1; }
    echo "$name $pid $(cpu_ticks "$pid") $(ctx_switches "$pid")"
  done
}
# Waits (at most 60 s) until Cambium's daemons and the main shim use less than 20% of a
# core together over a second: WAL ingest, compaction or GC left over from the previous
# part would otherwise be measured by the next one.
quiesce() {
  local t0=$SECONDS a b busy
  while ((SECONDS - t0 < 60)); do
    a=$(cambium_pids | snapshot | awk '{s += $3} END {print s}')
    sleep 1
    b=$(cambium_pids | snapshot | awk '{s += $3} END {print s}')
    busy=$(awk -v d=$((b - a)) -v hz="$(getconf CLK_TCK)" 'BEGIN {print (d / hz > 0.2)}')
    ((busy)) || { log "cambium quiet after $((SECONDS - t0)) s"; return 0; }
  done
  log "cambium still busy after 60 s; measuring anyway"
}
cpu_report() {  # before-file, after-file, transactions, totals-file ("us ctxsw")
  local hz
  hz=$(getconf CLK_TCK)
  [[ $3 =~ ^[1-9][0-9]*$ ]] || { log "no transaction count"; return 1; }
  join <(sort "$1") <(sort "$2") | awk -v hz="$hz" -v n="$3" -v totals="$4" '
    { if ($2 != $5) restarted = restarted " " $1
      us = ($6 - $3) * 1e6 / hz / n; cs = ($7 - $4) / n
      printf "cambium cpu per tpcb txn %-10s %8.1f us/txn %6.1f ctxsw/txn\n", $1, us, cs
      tus += us; tcs += cs }
    END { printf "cambium cpu per tpcb txn total      %8.1f us/txn %6.1f ctxsw/txn (%d txns, goal <= 250 us)\n", tus, tcs, n
          if (restarted != "") printf "WARNING: restarted during the run:%s\n", restarted
          printf "%.1f %.1f\n", tus, tcs > totals }'
}

# --- the parts -----------------------------------------------------------------------
part_small_pgbench() {  # targets 1, 2, 3 (in shared buffers), 5
  init_both postgres "$SMALL_SCALE"
  quiesce
  local flags=(-n -c "$CLIENTS" -j 2 -T "$DURATION") v c
  # 1 + 5: TPC-B with CLIENTS clients; Cambium's processes sampled around its run.
  run_pgbench vanilla-tpcb "${flags[@]}" "$VANILLA"
  cambium_pids | snapshot >"$WORK/cpu.before"
  run_pgbench cambium-tpcb "${flags[@]}" "$MAIN"
  cambium_pids | snapshot >"$WORK/cpu.after"
  v=$(printf %.1f "$(pgb_tps vanilla-tpcb)") c=$(printf %.1f "$(pgb_tps cambium-tpcb)")
  printf 'tpcb %d clients scale %d: vanilla %s tps   cambium %s tps   ratio %s\n' \
    "$CLIENTS" "$SMALL_SCALE" "$v" "$c" "$(ratio "$c" "$v")"
  row 1 "TPC-B, $CLIENTS clients, scale $SMALL_SCALE (tps)" "$v" "$c" "$(ratio "$c" "$v")" ">= 0.75 (issue 5)"
  local tus tcs
  cpu_report "$WORK/cpu.before" "$WORK/cpu.after" "$(pgb_txns cambium-tpcb)" "$WORK/cpu.totals"
  read -r tus tcs <"$WORK/cpu.totals"
  row 5 "Cambium CPU per TPC-B txn outside Postgres, $CLIENTS clients" - "$tus µs, $tcs ctx sw" - "<= 250 µs"

  # 2: one client, latency per transaction.
  flags=(-n -c 1 -j 1 -T "$DURATION")
  run_pgbench vanilla-tpcb1 "${flags[@]}" "$VANILLA"
  run_pgbench cambium-tpcb1 "${flags[@]}" "$MAIN"
  quiesce
  v=$(pgb_latency vanilla-tpcb1) c=$(pgb_latency cambium-tpcb1)
  printf 'tpcb 1 client latency: vanilla %s ms   cambium %s ms   ratio %s (goal <= 1.3; %.1f vs %.1f tps)\n' \
    "$v" "$c" "$(ratio "$c" "$v")" "$(pgb_tps vanilla-tpcb1)" "$(pgb_tps cambium-tpcb1)"
  row 2 "TPC-B, 1 client, latency per transaction (ms)" "$v" "$c" "$(ratio "$c" "$v")" "<= 1.3"

  select_only "in shared buffers" "$SMALL_SCALE" postgres 3
}

select_only() {  # what, scale, database, row key
  local what=$1 scale=$2 db=$3 key=$4 v c vurl murl
  vurl=$(with_db "$VANILLA" "$db") murl=$(with_db "$MAIN" "$db")
  local flags=(-n -S -c "$CLIENTS" -j 2)
  quiesce
  run_pgbench "vanilla-select-warmup-$db" "${flags[@]}" -T "$WARMUP" "$vurl"
  run_pgbench "cambium-select-warmup-$db" "${flags[@]}" -T "$WARMUP" "$murl"
  run_pgbench "vanilla-select-$db" "${flags[@]}" -T "$DURATION" "$vurl"
  run_pgbench "cambium-select-$db" "${flags[@]}" -T "$DURATION" "$murl"
  v=$(printf %.1f "$(pgb_tps "vanilla-select-$db")") c=$(printf %.1f "$(pgb_tps "cambium-select-$db")")
  printf 'select-only %s, scale %d: vanilla %s tps   cambium %s tps   ratio %s\n' \
    "$what" "$scale" "$v" "$c" "$(ratio "$c" "$v")"
  local goal=-
  [[ $key == 3 ]] && goal=">= 0.95 (issue 5)"
  row "$key" "select-only, $what, scale $scale (tps)" "$v" "$c" "$(ratio "$c" "$v")" "$goal"
}

branch_create_times() {  # label; prints a line, leaves the p50 (µs) in $WORK/branch-p50-LABEL
  local label=$1 times=() i t0 p50 p99
  for i in $(seq 1 "$BRANCHES"); do
    t0=$(date +%s%N)
    "$CAMBIUM" branch create "b-$label-$i" --data-dir "$DATA" >/dev/null
    times+=($((($(date +%s%N) - t0) / 1000)))
  done
  p50=$(printf '%s\n' "${times[@]}" | median)
  p99=$(printf '%s\n' "${times[@]}" | pct 99)
  printf 'branch create on %-6s main: p50 %8.1f ms   p99 %8.1f ms   (%d branches, process start included)\n' \
    "$label" "$(echo "$p50/1000" | bc -l)" "$(echo "$p99/1000" | bc -l)" "$BRANCHES"
  for i in $(seq 1 "$BRANCHES"); do
    "$CAMBIUM" branch delete "b-$label-$i" --data-dir "$DATA" >/dev/null
  done
  echo "$p50" >"$WORK/branch-p50-$label"
}

part_branch_small() {
  sql "$MAIN" CHECKPOINT
  quiesce
  branch_create_times small
}

part_bulk() {  # target 4: pgbench -i into a new database, no DROP of old tables timed
  local target url t0 v c
  for target in vanilla cambium; do
    url=$VANILLA
    [[ $target == cambium ]] && url=$MAIN
    sql "$url" "CREATE DATABASE bulk"
    quiesce
    t0=$(date +%s%N)
    if ! "$PGBIN/pgbench" -i -q -s "$BULK_SCALE" "$(with_db "$url" bulk)" >"$WORK/bulk-$target.log" 2>&1; then
      log "pgbench -i -s $BULK_SCALE into bulk on $target failed:"
      tail -20 "$WORK/bulk-$target.log" >&2
      return 1
    fi
    ms_since "$t0" >"$WORK/bulk-ms-$target"
    # Where the time went, per step (pgbench's own "done in ... (drop tables ..., ...)").
    echo "bulk load steps, $target: $(grep -o 'done in.*' "$WORK/bulk-$target.log")"
    sql "$(with_db "$url" bulk)" CHECKPOINT  # not timed; the other side starts with no dirty backlog
  done
  v=$(<"$WORK/bulk-ms-vanilla") c=$(<"$WORK/bulk-ms-cambium")
  printf 'bulk load pgbench -i -s %d: vanilla %.2f s   cambium %.2f s   ratio %s (goal <= 1.5)\n' \
    "$BULK_SCALE" "$(echo "$v/1000" | bc -l)" "$(echo "$c/1000" | bc -l)" "$(ratio "$c" "$v")"
  row 4 "bulk load, pgbench -i -s $BULK_SCALE into a new database (s)" \
    "$(printf %.2f "$(echo "$v/1000" | bc -l)")" "$(printf %.2f "$(echo "$c/1000" | bc -l)")" \
    "$(ratio "$c" "$v")" "<= 1.5"
}

part_select_large() {  # target 3, working set larger than shared buffers
  local db=bulk
  if [[ $SELECT_LARGE_SCALE != "$BULK_SCALE" || ! -f $WORK/bulk-ms-cambium ]]; then
    db=sel
    for url in "$VANILLA" "$MAIN"; do sql "$url" "CREATE DATABASE sel"; done
    init_both sel "$SELECT_LARGE_SCALE"
  fi
  echo "select database size: vanilla $(sql "$VANILLA" "SELECT pg_size_pretty(pg_database_size('$db'))")   cambium $(sql "$MAIN" "SELECT pg_size_pretty(pg_database_size('$db'))")"
  select_only "larger than shared buffers" "$SELECT_LARGE_SCALE" "$db" 3b
}

drop_extra_databases() {
  local url db
  for url in "$VANILLA" "$MAIN"; do
    for db in bulk sel; do
      "$PGBIN/psql" -X -q "$url" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db"
    done
  done
}

part_large_init() {
  init_both postgres "$LARGE_SCALE"
  echo "large main size: $(sql "$MAIN" "SELECT pg_size_pretty(pg_database_size('postgres'))") (scale $LARGE_SCALE)"
  touch "$WORK/large-loaded"
}

needs_large() { [[ -f $WORK/large-loaded ]] || { log "skipped: the large database did not load"; return 1; }; }

part_branch_large() {
  needs_large
  quiesce
  branch_create_times large
  local small large r
  [[ -f $WORK/branch-p50-small ]] || { log "no small p50 to compare with"; return 1; }
  small=$(<"$WORK/branch-p50-small") large=$(<"$WORK/branch-p50-large")
  r=$(ratio "$large" "$small")
  printf 'branch create p50: small %.1f ms   large %.1f ms   ratio %s (goal <= 1.3, p50 < 50 ms)\n' \
    "$(echo "$small/1000" | bc -l)" "$(echo "$large/1000" | bc -l)" "$r"
  row 7 "branch create p50, scale $SMALL_SCALE vs scale $LARGE_SCALE main (ms; ratio large/small)" - \
    "$(printf '%.1f / %.1f' "$(echo "$small/1000" | bc -l)" "$(echo "$large/1000" | bc -l)")" "$r" \
    "<= 1.3, p50 < 50 ms"
}

# Creates branch NAME of main, times endpoint start + first query, prints ms; stops the
# endpoint and deletes the branch.
cambium_first_query() {  # name
  local name=$1 t0 url ms
  "$CAMBIUM" branch create "$name" --data-dir "$DATA" >/dev/null
  t0=$(date +%s%N)
  url=$("$CAMBIUM" endpoint start "$name" --data-dir "$DATA" --json | jq -r .connection_string)
  [[ $url == postgresql://* ]] || { log "endpoint start $name printed no connection string"; return 1; }
  wait_first_query "$url"
  ms=$(ms_since "$t0")
  "$CAMBIUM" endpoint stop "$name" --data-dir "$DATA" >/dev/null
  "$CAMBIUM" branch delete "$name" --data-dir "$DATA" >/dev/null
  echo "$ms"
}

part_first_query_checkpointed() {  # target 6a
  needs_large
  sql "$MAIN" CHECKPOINT
  local times=() i p50 mx ms
  for i in $(seq 1 "$RUNS"); do
    quiesce
    ms=$(cambium_first_query "fq-ckpt-$i")
    times+=("$ms")
  done
  p50=$(printf '%s\n' "${times[@]}" | median | xargs printf %.0f)
  mx=$(printf '%s\n' "${times[@]}" | maximum)
  printf 'first query after endpoint start on a new branch, checkpointed scale %d: p50 %.0f ms   max %.0f ms   (%d runs: %s)\n' \
    "$LARGE_SCALE" "$p50" "$mx" "$RUNS" "${times[*]}"
  row 6 "endpoint start → first query on a new branch, checkpointed scale $LARGE_SCALE, p50 (max) ms" \
    - "$p50 ($mx)" - -
}

part_first_query_after_writes() {  # target 6b
  needs_large
  local vt=() ct=() i t0 lsn0 vwal=() cwal=() x
  for i in $(seq 1 "$RUNS"); do
    # Vanilla: the same writes, then a crash (immediate stop) and a restart with replay.
    sql "$VANILLA" CHECKPOINT
    lsn0=$(sql "$VANILLA" "SELECT pg_current_wal_lsn()")
    run_pgbench "vanilla-writes-$i" -n -c "$CLIENTS" -j 2 -T "$WRITE_SECONDS" "$VANILLA"
    x=$(sql "$VANILLA" "SELECT (pg_current_wal_lsn() - '$lsn0') / 1048576")
    vwal+=("$x")
    vanilla_ctl -m immediate stop >/dev/null
    t0=$(date +%s%N)
    vanilla_ctl -o "$VOPTS" -W start >/dev/null
    wait_first_query "$VANILLA"
    x=$(ms_since "$t0")
    vt+=("$x")
    # Cambium: a new branch of main at the head, WRITE_SECONDS of writes after the checkpoint.
    sql "$MAIN" CHECKPOINT
    lsn0=$(sql "$MAIN" "SELECT pg_current_wal_lsn()")
    run_pgbench "cambium-writes-$i" -n -c "$CLIENTS" -j 2 -T "$WRITE_SECONDS" "$MAIN"
    x=$(sql "$MAIN" "SELECT (pg_current_wal_lsn() - '$lsn0') / 1048576")
    cwal+=("$x")
    x=$(cambium_first_query "fq-writes-$i")
    ct+=("$x")
  done
  local vp vm cp cm r
  vp=$(printf '%s\n' "${vt[@]}" | median | xargs printf %.0f) vm=$(printf '%s\n' "${vt[@]}" | maximum)
  cp=$(printf '%s\n' "${ct[@]}" | median | xargs printf %.0f) cm=$(printf '%s\n' "${ct[@]}" | maximum)
  r=$(ratio "$cp" "$vp")
  printf 'first query after %d s of writes since the checkpoint: vanilla crash restart p50 %.0f ms max %.0f ms   cambium new branch p50 %.0f ms max %.0f ms   ratio %s (goal <= 1.5)\n' \
    "$WRITE_SECONDS" "$vp" "$vm" "$cp" "$cm" "$r"
  echo "  runs (ms): vanilla ${vt[*]}   cambium ${ct[*]}"
  echo "  WAL since the checkpoint (MiB): vanilla $(printf '%.0f ' "${vwal[@]}")  cambium $(printf '%.0f ' "${cwal[@]}")"
  row 6b "first query after $WRITE_SECONDS s of TPC-B since the checkpoint: vanilla crash restart vs new branch, p50 (max) ms" \
    "$vp ($vm)" "$cp ($cm)" "$r" "<= 1.5"
}

# Runs a part in a subshell with set -e; a failure is reported and the run goes on.
FAILED=()
part() {  # title, function
  local title=$1 rc
  shift
  if [[ -n ${PARTS:-} && ",$PARTS," != *",$1,"* ]]; then return 0; fi
  echo "== $title ==   (load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores)"
  trap - ERR
  set +e
  (
    set -e
    trap 'on_err $? $LINENO' ERR
    "$@"
  )
  rc=$?
  set -e
  trap 'on_err $? $LINENO' ERR
  if ((rc)); then
    echo "!! FAILED: $title (exit $rc); see the error above. Continuing."
    FAILED+=("$title")
    row 99 "$title" FAILED FAILED - -
  fi
}

part "small database (scale $SMALL_SCALE): TPC-B, latency, select-only in shared buffers, CPU" part_small_pgbench
part "branch create on the small main" part_branch_small
part "bulk load (scale $BULK_SCALE)" part_bulk
part "select-only larger than shared buffers (scale $SELECT_LARGE_SCALE)" part_select_large
part "drop the bulk/select databases" drop_extra_databases
part "large database (scale $LARGE_SCALE)" part_large_init
part "branch create on the large main" part_branch_large
part "first query on a checkpointed large database" part_first_query_checkpointed
part "first query after $WRITE_SECONDS s of writes" part_first_query_after_writes

echo
echo "== summary (ratio: cambium/vanilla; for branch create large/small) =="
echo "| target | vanilla | cambium | ratio | goal |"
echo "|---|---|---|---|---|"
sort -t$'\t' -k1,1V "$SUMMARY" | cut -f2-
if [[ $(binaries_stamp) != "$BINARIES_AT_START" ]]; then
  echo "WARNING: Cambium's binaries in $BUILD changed during the run; the numbers may mix versions"
fi
if ((${#FAILED[@]})); then
  echo "FAILED parts: ${FAILED[*]}"
  exit 1
fi
