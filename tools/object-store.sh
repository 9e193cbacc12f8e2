#!/usr/bin/env bash
# A real S3-compatible object store on loopback for tests and local stacks: Ceph's
# RADOS Gateway from Debian 12 (one ceph-mon, one ceph-osd on bluestore, one radosgw
# with the beast frontend). No mgr, no systemd, no containers, no network, no mock.
#
#   tools/object-store.sh start          start (or reuse) the instance; print its env
#   tools/object-store.sh env            print the env of the running instance
#   tools/object-store.sh status         "running" and exit 0, or exit 1
#   tools/object-store.sh stop           stop its daemons, keep the data
#   tools/object-store.sh stop --purge   stop and delete the instance directory
#   tools/object-store.sh purge          same as stop --purge
#
#   source <(tools/object-store.sh start)
#
# Guarantees:
# - One instance per directory, $CAMBIUM_OBJECT_STORE_DIR (default
#   /tmp/cambium-object-store-$(id -u)). Config, data, logs (log/), admin sockets
#   and pid files (run/), ports and keys all live in it, so instances coexist, and
#   nothing is written to /etc/ceph, /var/lib/ceph, /var/log/ceph or /var/run/ceph.
# - stdout carries only NAME=value lines that bash can source (values needing it are
#   single-quoted); progress and errors go to stderr:
#     CAMBIUM_OBJECT_STORE='s3://BUCKET/PREFIX?endpoint=http://127.0.0.1:PORT&region=default'
#   PREFIX is new at every start that starts the gateway (cambium-TIME-RANDOM), the
#   same for env and for a start of a running instance.
#     AWS_ACCESS_KEY_ID=...
#     AWS_SECRET_ACCESS_KEY=...
#     AWS_ENDPOINT_URL=http://127.0.0.1:PORT
#   Clients must use path-style addressing; any SigV4 region is accepted.
# - start is idempotent: on a running instance it only prints the env. The first
#   start picks free loopback ports and generates the S3 keys (stored 0600); later
#   starts of the same directory reuse them (a port that is no longer free is
#   replaced). Data is on bluestore in a sparse file and survives stop/start.
#   The bucket is $CAMBIUM_OBJECT_STORE_BUCKET (default: the one recorded by the
#   previous start, else "cambium"), created with a real S3 request (s3cmd).
# - A failed start prints one line "object-store: REASON" and the tail of the
#   relevant log to stderr, stops every daemon that attempt started, exits 1.
# - stop stops exactly the daemons recorded in run/*.pid (after checking that each
#   pid still runs this instance's config), SIGTERM then SIGKILL after a timeout,
#   and waits until they are gone. Stopping a stopped instance succeeds.
# - Runs as root (daemons keep root; no --setuser) or as a normal user.
#
# Needs: ceph-mon ceph-osd radosgw ceph-common s3cmd (tools/setup-deps.sh).
# Environment: CAMBIUM_OBJECT_STORE_DIR, CAMBIUM_OBJECT_STORE_BUCKET,
# CAMBIUM_OBJECT_STORE_TIMEOUT (seconds each readiness wait may take, default 120).
set -euo pipefail

readonly PROG=object-store
# Absolute: the daemons chdir to / and the pid check compares command lines.
DIR=$(realpath -m -- "${CAMBIUM_OBJECT_STORE_DIR:-/tmp/cambium-object-store-$(id -u)}")
readonly DIR
readonly CONF=$DIR/ceph.conf
readonly STATE=$DIR/instance.env     # fsid, osd uuid, ports, bucket (sourced)
readonly KEYS=$DIR/s3-keys.env       # S3 access and secret key (0600, sourced)
readonly S3CFG=$DIR/s3cmd.cfg        # s3cmd config for this instance (0600)
readonly MARKER=$DIR/.cambium-object-store
readonly INITIALIZED=$DIR/initialized
readonly TIMEOUT=${CAMBIUM_OBJECT_STORE_TIMEOUT:-120}
[[ $TIMEOUT =~ ^[0-9]+$ ]] || { echo "object-store: CAMBIUM_OBJECT_STORE_TIMEOUT must be seconds" >&2; exit 2; }
# The key prefix handed out (CAMBIUM_OBJECT_STORE): a new one whenever start starts
# the gateway, recorded in instance.env for env and an idempotent start.
PREFIX=""
readonly S3_USER=cambium
readonly BLOCK_SIZE=$((10 * 1024 * 1024 * 1024)) # sparse; real use grows with data
readonly PORT_MIN=20000 PORT_MAX=32000            # below the kernel's ephemeral range
readonly DAEMONS=(mon osd rgw)                    # start order; stopped in reverse

PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3

# Instance state, loaded from $STATE and $KEYS.
FSID="" OSD_UUID="" MON_PORT="" RGW_PORT="" BUCKET="" PREFIX=""
ACCESS_KEY="" SECRET_KEY=""
WANT_BUCKET=""
STARTED=() # daemons this invocation launched; stopped again if start fails
FAILED=no  # fail() already printed the reason
ERR_AT=""  # the command that made set -e stop the script

log() { echo "$PROG: $*" >&2; }

# fail REASON [LOGFILE...]: the tail of each log that exists; in a failing start,
# stop what it started; then the one-line reason, last, and exit 1.
fail() {
  local reason=$1 f
  shift
  for f in "$@"; do
    if [[ -s $f ]]; then
      echo "--- last lines of $f" >&2
      tail -n 25 "$f" >&2
    fi
  done
  stop_started
  log "$reason"
  FAILED=yes
  exit 1
}

# --- daemons ----------------------------------------------------------------------

# ceph_name DAEMON: Ceph's name for it ($name in ceph.conf, its log and socket).
ceph_name() {
  case $1 in
    mon) echo mon.a ;;
    osd) echo osd.0 ;;
    rgw) echo client.rgw ;;
  esac
}
# daemon_argv DAEMON: sets ARGV to its command line; "-c CONF" comes first, which
# pid_alive relies on.
daemon_argv() {
  case $1 in
    mon) ARGV=(ceph-mon -c "$CONF" -i a -f) ;;
    osd) ARGV=(ceph-osd -c "$CONF" -i 0 -f) ;;
    rgw) ARGV=(radosgw -c "$CONF" -n client.rgw -f) ;;
  esac
}
pid_file() { echo "$DIR/run/$1.pid"; }
daemon_log() { echo "$DIR/log/$(ceph_name "$1").log"; }
daemon_out() { echo "$DIR/log/$1.out"; }
asok() { echo "$DIR/run/$(ceph_name "$1").asok"; }

# pid_alive PID: the process exists, is not a zombie (PID 1 may reap late),
# and still runs this instance's config (guards against pid reuse).
pid_alive() {
  local pid=$1 stat
  local -a args
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  { read -r stat <"/proc/$pid/stat" && mapfile -d '' args <"/proc/$pid/cmdline"; } 2>/dev/null ||
    return 1
  stat=${stat##*) }
  [[ ${stat%% *} != [ZX] && ${#args[@]} -ge 3 && ${args[1]} == -c && ${args[2]} == "$CONF" ]]
}

daemon_pid() { cat "$(pid_file "$1")" 2>/dev/null || true; }
daemon_alive() { pid_alive "$(daemon_pid "$1")"; }

all_alive() {
  local d
  for d in "${DAEMONS[@]}"; do daemon_alive "$d" || return 1; done
}

# launch DAEMON: start it detached (own session, no inherited descriptors, so a
# caller reading our stdout through a pipe is not held open) and record its pid.
launch() {
  local d=$1 pid out
  local -a ARGV
  daemon_argv "$d"
  out=$(daemon_out "$d")
  log "starting $(ceph_name "$d")"
  (
    for fd in "/proc/$BASHPID/fd/"*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid "${ARGV[@]}" </dev/null >>"$out" 2>&1
  ) &
  pid=$!
  echo "$pid" >"$(pid_file "$d")"
  STARTED+=("$d")
}

ensure_running() {
  local d
  for d in "$@"; do daemon_alive "$d" || launch "$d"; done
}

# wait_gone PID TENTHS: waits up to TENTHS tenths of a second for PID to be gone.
wait_gone() {
  local pid=$1 i
  for ((i = 0; i < $2; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
}

# stop_daemon DAEMON: SIGTERM, wait up to 30 s, then SIGKILL and wait again.
stop_daemon() {
  local d=$1 pid
  pid=$(daemon_pid "$d")
  if pid_alive "$pid"; then
    log "stopping $(ceph_name "$d") (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 300
    if pid_alive "$pid"; then
      log "$(ceph_name "$d") ignored SIGTERM for 30 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 100
      pid_alive "$pid" && fail "$(ceph_name "$d") (pid $pid) survived SIGKILL"
    fi
  fi
  rm -f "$(pid_file "$d")"
}

# Stopped in reverse order: the OSD tells the mon it is going, which takes 5 s
# (osd_mon_shutdown_timeout) when the mon is already gone.
stop_daemons() {
  local i
  for ((i = $# ; i > 0; i--)); do stop_daemon "${!i}"; done
}

# --- readiness --------------------------------------------------------------------

# asok_field DAEMON COMMAND FIELD: one field of an admin-socket command's JSON reply.
asok_field() {
  "$PY" - "$(asok "$1")" "$2" "$3" <<'EOF' 2>/dev/null
import json, socket, struct, sys
path, prefix, field = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(path)
s.sendall(json.dumps({"prefix": prefix}).encode() + b"\0")
def recv(n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise SystemExit(1)
        buf += chunk
    return buf
(length,) = struct.unpack(">I", recv(4))
print(json.loads(recv(length)).get(field, ""))
EOF
}

mon_leader() { [[ $(asok_field mon mon_status state) == leader ]]; }
osd_active() { [[ $(asok_field osd status state) == active ]]; }

# http_ok PORT: the gateway answers GET / (anonymous ListBuckets) with 200.
http_ok() {
  local fd line
  exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&"$fd"
  IFS= read -r -t 5 line <&"$fd" || line=""
  while read -r -t 5 _ <&"$fd"; do :; done # the whole reply, so radosgw logs no EPIPE
  exec {fd}>&-
  [[ $line == "HTTP/1."?" 200"* ]]
}
rgw_ready() { http_ok "$RGW_PORT" 2>/dev/null; }

# wait_for DAEMON WHAT CHECK...: poll CHECK until it passes; fail at once if the
# daemon dies, or after $TIMEOUT seconds.
wait_for() {
  local d=$1 what=$2 deadline=$((SECONDS + TIMEOUT))
  shift 2
  until "$@"; do
    daemon_alive "$d" || fail "$(ceph_name "$d") exited while waiting for $what" \
      "$(daemon_out "$d")" "$(daemon_log "$d")"
    ((SECONDS < deadline)) || fail "timed out after ${TIMEOUT}s waiting for $what" \
      "$(daemon_log "$d")"
    sleep 0.1
  done
}

# --- state ------------------------------------------------------------------------

load_state() {
  # shellcheck source=/dev/null
  [[ -f $STATE ]] && source "$STATE"
  # shellcheck source=/dev/null
  [[ -f $KEYS ]] && source "$KEYS"
  return 0
}

save_state() {
  local tmp=$STATE.tmp
  printf 'FSID=%s\nOSD_UUID=%s\nMON_PORT=%s\nRGW_PORT=%s\nBUCKET=%s\nPREFIX=%s\n' \
    "$FSID" "$OSD_UUID" "$MON_PORT" "$RGW_PORT" "$BUCKET" "$PREFIX" >"$tmp"
  mv "$tmp" "$STATE"
}

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

ensure_keys() {
  [[ -n $ACCESS_KEY && -n $SECRET_KEY ]] && return 0
  ACCESS_KEY=CAMB$(random_hex 8 | tr a-f A-F)
  SECRET_KEY=$(random_hex 20)
  (
    umask 077
    printf 'ACCESS_KEY=%s\nSECRET_KEY=%s\n' "$ACCESS_KEY" "$SECRET_KEY" >"$KEYS"
  )
}

port_free() {
  "$PY" - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
EOF
}

# pick_port [EXCLUDE]: a free loopback port in [PORT_MIN, PORT_MAX).
pick_port() {
  local port i
  for ((i = 0; i < 100; i++)); do
    port=$((PORT_MIN + (RANDOM * 32768 + RANDOM) % (PORT_MAX - PORT_MIN)))
    [[ $port == "${1:-}" ]] && continue
    if port_free "$port"; then
      echo "$port"
      return 0
    fi
  done
  fail "no free loopback port found in $PORT_MIN-$PORT_MAX"
}

# Bucket names: 3-63 characters of lower-case letters, digits, dots and dashes.
requested_bucket() {
  local b=${CAMBIUM_OBJECT_STORE_BUCKET:-${BUCKET:-cambium}}
  [[ $b =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] ||
    fail "invalid bucket name '$b' (3-63 characters: a-z 0-9 . -)"
  echo "$b"
}

write_conf() {
  local tmp=$CONF.tmp
  cat >"$tmp" <<EOF
# Written by tools/object-store.sh on every start; edits are lost.
[global]
fsid = $FSID
mon_host = [v2:127.0.0.1:$MON_PORT]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_msgr1 = false
ms_bind_ipv6 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
keyring = $DIR/keyring
run_dir = $DIR/run
pid_file = $DIR/run/\$name.ceph-pid
log_file = $DIR/log/\$name.log
mon_cluster_log_file = $DIR/log/cluster.log
crash_dir = $DIR/crash
mon_data = $DIR/mon
osd_data = $DIR/osd
rgw_data = $DIR/rgw
# a single mon settles proposals quickly
paxos_propose_interval = 0.1
paxos_min_wait = 0.01
mon_data_avail_warn = 2
mon_data_avail_crit = 1
# one OSD holds every pool
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_max_pg_per_osd = 1000
osd_crush_chooseleaf_type = 0
# bluestore on a sparse file; memory kept small
osd_objectstore = bluestore
bluestore_block_create = true
bluestore_block_size = $BLOCK_SIZE
osd_memory_target = 939524096
bluestore_cache_autotune = false
bluestore_cache_size = 67108864
osd_op_num_shards = 2
osd_op_num_threads_per_shard = 1

[mon]
admin_socket = $DIR/run/\$name.asok

[osd]
admin_socket = $DIR/run/\$name.asok

[client.rgw]
admin_socket = $DIR/run/\$name.asok
rgw_frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw_thread_pool_size = 32
EOF
  mv "$tmp" "$CONF"
}

write_s3cfg() {
  (
    umask 077
    cat >"$S3CFG" <<EOF
[default]
access_key = $ACCESS_KEY
secret_key = $SECRET_KEY
host_base = 127.0.0.1:$RGW_PORT
host_bucket = 127.0.0.1:$RGW_PORT
use_https = False
signature_v2 = False
bucket_location = US
EOF
  )
}

print_env() {
  echo "CAMBIUM_OBJECT_STORE='s3://$BUCKET/${PREFIX:-cambium}?endpoint=http://127.0.0.1:$RGW_PORT&region=default'"
  echo "AWS_ACCESS_KEY_ID=$ACCESS_KEY"
  echo "AWS_SECRET_ACCESS_KEY=$SECRET_KEY"
  echo "AWS_ENDPOINT_URL=http://127.0.0.1:$RGW_PORT"
}

# --- start ------------------------------------------------------------------------

# run_logged OUT CMD...: run a one-shot ceph tool, its output appended to OUT.
run_logged() {
  local out=$1
  shift
  "$@" </dev/null >>"$out" 2>&1
}

# First start (or a first start that failed half-way): new cluster, mon and OSD.
create_cluster() {
  local out=$DIR/log/create.out
  log "creating a new cluster in $DIR"
  rm -rf "$DIR/mon" "$DIR/osd" "$DIR/rgw" "$DIR/monmap"
  mkdir -p "$DIR/mon" "$DIR/osd" "$DIR/rgw"
  FSID=$(cat /proc/sys/kernel/random/uuid)
  OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
  save_state
  write_conf
  run_logged "$out" monmaptool --create --fsid "$FSID" \
    --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" ||
    fail "monmaptool --create failed" "$out"
  run_logged "$out" ceph-mon -c "$CONF" -i a --mkfs --monmap "$DIR/monmap" ||
    fail "ceph-mon --mkfs failed" "$out"
  launch mon
  wait_for mon "the monitor to lead" mon_leader
  run_logged "$out" ceph -c "$CONF" --connect-timeout 30 osd new "$OSD_UUID" 0 ||
    fail "ceph osd new failed" "$out"
  run_logged "$out" ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" ||
    fail "ceph-osd --mkfs failed" "$out" "$(daemon_log osd)"
}

# The monitor's address is in its store: moving it to a new port rewrites the map.
move_mon() {
  local out=$DIR/log/create.out old=$MON_PORT
  MON_PORT=$(pick_port "$RGW_PORT")
  log "mon port $old is taken; moving the monitor to $MON_PORT"
  rm -f "$DIR/monmap"
  run_logged "$out" monmaptool --create --fsid "$FSID" \
    --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" ||
    fail "monmaptool --create failed" "$out"
  run_logged "$out" ceph-mon -c "$CONF" -i a --inject-monmap "$DIR/monmap" ||
    fail "ceph-mon --inject-monmap failed" "$out"
}

# Ports: picked once, reused while free; only checked for daemons that are down.
choose_ports() {
  if [[ -n $MON_PORT ]] && ! daemon_alive mon && ! port_free "$MON_PORT"; then
    if [[ -f $INITIALIZED ]]; then
      move_mon
    else
      MON_PORT=""
    fi
  fi
  [[ -n $MON_PORT ]] || MON_PORT=$(pick_port "$RGW_PORT")
  if [[ -n $RGW_PORT ]] && ! daemon_alive rgw && ! port_free "$RGW_PORT"; then
    log "rgw port $RGW_PORT is taken; picking another"
    RGW_PORT=""
  fi
  [[ -n $RGW_PORT ]] || RGW_PORT=$(pick_port "$MON_PORT")
}

ensure_user() {
  local out=$DIR/log/create.out
  run_logged "$out" radosgw-admin -c "$CONF" user info --uid="$S3_USER" && return 0
  log "creating S3 user $S3_USER"
  run_logged "$out" radosgw-admin -c "$CONF" user create --uid="$S3_USER" \
    --display-name="Cambium tests" --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" ||
    fail "radosgw-admin user create failed" "$out"
}

# Creating a bucket one already owns succeeds on RGW, so this is idempotent.
ensure_bucket() {
  local want=$WANT_BUCKET out=$DIR/log/s3cmd.out
  [[ $want == "$BUCKET" && -f $DIR/bucket-created ]] && return 0
  log "creating bucket $want"
  run_logged "$out" s3cmd -c "$S3CFG" mb "s3://$want" ||
    fail "creating bucket $want failed (s3cmd mb)" "$out" "$(daemon_log rgw)"
  BUCKET=$want
  save_state
  touch "$DIR/bucket-created"
}

require_tools() {
  local t missing=()
  for t in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool s3cmd setsid; do
    command -v "$t" >/dev/null || missing+=("$t")
  done
  ((${#missing[@]} == 0)) ||
    fail "missing ${missing[*]}: install ceph-mon ceph-osd radosgw ceph-common s3cmd (tools/setup-deps.sh)"
}

# One start/stop at a time per instance. The lock descriptor is closed in launch(),
# so daemons do not inherit (and hold) it.
take_lock() {
  exec {LOCK_FD}>"$DIR/lock"
  flock -w 300 "$LOCK_FD" || fail "another start/stop of $DIR holds its lock"
}

# Stops the daemons this start launched (once; only from the main shell, not from
# a command substitution that failed).
stop_started() {
  local started
  [[ $BASHPID == "$$" ]] && ((${#STARTED[@]} > 0)) || return 0
  started=("${STARTED[@]}")
  STARTED=()
  log "start failed; stopping what it started: ${started[*]}"
  stop_daemons "${started[@]}" || true
}

on_start_exit() {
  local rc=$1
  ((rc != 0)) || return 0
  stop_started
  [[ $FAILED == yes ]] || log "start failed (exit $rc)${ERR_AT:+ at $ERR_AT}"
}

cmd_start() {
  require_tools
  if [[ ! -d $DIR ]]; then
    mkdir -p "$DIR"
    chmod 700 "$DIR" # keys and data: the invoking user's only
  fi
  [[ -f $MARKER || -z $(ls -A "$DIR") ]] ||
    fail "$DIR exists and is not an object-store instance directory"
  touch "$MARKER"
  mkdir -p "$DIR/run" "$DIR/log" "$DIR/crash"
  take_lock
  load_state
  WANT_BUCKET=$(requested_bucket)
  if [[ -f $INITIALIZED ]] && all_alive && [[ $WANT_BUCKET == "$BUCKET" ]]; then
    print_env
    return 0
  fi
  set -o errtrace
  trap 'ERR_AT="line $LINENO: $BASH_COMMAND"' ERR
  trap 'on_start_exit $?' EXIT
  ensure_keys
  touch "$DIR/keyring"
  [[ -f $INITIALIZED ]] || stop_daemons "${DAEMONS[@]}"
  # A new prefix per start of the gateway: a new stack never meets an older stack's
  # history (`cambium up --object-store` refuses a prefix that holds one), while a
  # stack keeps the URL it recorded, and the data stays.
  PREFIX="cambium-$(date -u +%Y%m%d%H%M%S)-$(od -An -N2 -tx2 /dev/urandom | tr -d ' ')"
  choose_ports
  if [[ ! -f $INITIALIZED ]]; then
    rm -f "$DIR/bucket-created"
    create_cluster
  fi
  save_state
  write_conf
  write_s3cfg
  # The OSD starts with the mon (it waits for it); radosgw only once the OSD is
  # active, else its first attempts to reach its pools time out and cost seconds.
  ensure_running mon osd
  wait_for osd "the OSD to become active" osd_active
  ensure_running rgw
  wait_for rgw "radosgw to answer on 127.0.0.1:$RGW_PORT" rgw_ready
  ensure_user
  touch "$INITIALIZED"
  ensure_bucket
  trap - EXIT ERR
  log "ready: http://127.0.0.1:$RGW_PORT (instance $DIR)"
  print_env
}

# --- other commands ---------------------------------------------------------------

cmd_stop() {
  local purge=$1
  if [[ -d $DIR ]]; then
    if [[ $purge == yes && ! -f $MARKER && -n $(ls -A "$DIR") ]]; then
      fail "refusing to purge $DIR: not an object-store instance directory"
    fi
    if [[ -f $MARKER ]]; then
      take_lock
      stop_daemons "${DAEMONS[@]}"
    fi
    if [[ $purge == yes ]]; then
      rm -rf "$DIR"
      log "purged $DIR"
    fi
  fi
}

cmd_env() {
  load_state
  if ! [[ -f $INITIALIZED ]] || ! all_alive; then fail "not running (instance $DIR)"; fi
  print_env
}

cmd_status() {
  load_state
  if [[ -f $INITIALIZED ]] && all_alive; then
    echo running
  else
    echo stopped
    return 1
  fi
}

usage() {
  echo "usage: $0 start | stop [--purge] | purge | env | status" >&2
  exit 2
}

main() {
  case "${1:-}" in
    start) (($# == 1)) || usage; cmd_start ;;
    stop)
      case "${2:-}" in
        "") cmd_stop no ;;
        --purge) cmd_stop yes ;;
        *) usage ;;
      esac
      ;;
    purge) (($# == 1)) || usage; cmd_stop yes ;;
    env) (($# == 1)) || usage; cmd_env ;;
    status) (($# == 1)) || usage; cmd_status ;;
    *) usage ;;
  esac
}

main "$@"
