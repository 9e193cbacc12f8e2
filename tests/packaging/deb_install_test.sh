#!/usr/bin/env bash
# The Debian package on a clean root: installs cambium_*.deb with dpkg into a
# throwaway directory, checks where its files land and what postinst made, verifies
# the systemd units, then starts the pageserver and safekeeper 1 exactly as their
# units' ExecStart lines say (as the units' user, paths moved into the throwaway
# root, free ports) until /readyz answers 200, and stops them with the units'
# KillSignal. Ends with a purge. The host is not touched: no systemd, no network.
#
#   tests/packaging/deb_install_test.sh build-release/cambium_0.1.0_amd64.deb
#
# Needs root (dpkg, chown to the package's user). Exit 0 = passed, 77 = skipped.
set -euo pipefail

deb=$(realpath "${1:?usage: $0 PACKAGE.deb}")
if [[ $(id -u) -ne 0 ]]; then
  echo "deb_install_test: SKIPPED: needs root (dpkg --root, chown)"
  exit 77
fi

root=$(mktemp -d /tmp/cambium-deb-test.XXXXXX)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$root"
}
trap cleanup EXIT

log() { echo "deb_install_test: $*"; }
fail() {
  echo "deb_install_test: FAILED: $*" >&2
  exit 1
}

# --- A clean root: an empty dpkg database and the accounts base-passwd provides.
chmod 0755 "$root"  # the daemons run as the package's user and must reach their files
mkdir -p "$root"/var/lib/dpkg/{info,updates,triggers} "$root"/var/log "$root"/etc
touch "$root"/var/lib/dpkg/{status,available}
printf 'root:x:0:0:root:/root:/bin/bash\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf 'root:*:19000:0:99999:7:::\n' >"$root/etc/shadow"
printf 'root:*::\n' >"$root/etc/gshadow"
chmod 0640 "$root/etc/shadow" "$root/etc/gshadow"

# Maintainer scripts run on the host with DPKG_ROOT set (the root has no shell to
# chroot into); they honour it. Dependencies are not in this root: forced.
dpkg_root=(dpkg --root="$root" --force-script-chrootless --force-depends --force-unsafe-io)

log "installing $(basename "$deb") into $root"
"${dpkg_root[@]}" -i "$deb" >"$root/dpkg-install.log" 2>&1 ||
  fail "dpkg -i: $(cat "$root/dpkg-install.log")"
status=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}' cambium)
[[ $status == "install ok installed" ]] || fail "package status is \"$status\""

# --- Control data: library dependencies from dpkg-shlibdeps (RocksDB is linked
# statically: Debian's CMake package exports the static library), and the programs run.
depends=$(dpkg-deb -f "$deb" Depends)
for dep in postgresql-15 fuse3 passwd libgrpc++ libabsl libfuse3; do
  [[ $depends == *"$dep"* ]] || fail "Depends lacks $dep: $depends"
done
conffiles=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Conffiles}' cambium)

# --- Files where the issue says, and what postinst made.
for f in /usr/bin/cambium /usr/bin/cambium-pageserver /usr/bin/cambium-safekeeper \
  /usr/bin/cambium-shim; do
  [[ -x $root$f ]] || fail "$f is missing or not executable"
done
unit_dir=""
for d in /usr/lib/systemd/system /lib/systemd/system; do
  [[ -f $root$d/cambium-pageserver.service ]] && unit_dir=$d
done
[[ -n $unit_dir ]] || fail "cambium-pageserver.service is not in /usr/lib/systemd/system"
[[ -f $root$unit_dir/cambium-safekeeper@.service ]] || fail "cambium-safekeeper@.service missing"
for f in cambium.toml pageserver.toml safekeeper-1.toml safekeeper-2.toml safekeeper-3.toml; do
  [[ -f $root/etc/cambium/$f ]] || fail "/etc/cambium/$f missing"
  [[ $conffiles == *"/etc/cambium/$f "* ]] || fail "/etc/cambium/$f is not a conffile"
done
grep -q '^data_dir = "/var/lib/cambium"$' "$root/etc/cambium/cambium.toml" ||
  fail "cambium.toml does not set data_dir = \"/var/lib/cambium\""
uid=$(awk -F: '$1 == "cambium" { print $3 }' "$root/etc/passwd")
gid=$(awk -F: '$1 == "cambium" { print $4 }' "$root/etc/passwd")
[[ -n $uid && -n $gid ]] || fail "postinst did not create the user cambium"
for id in service admin; do
  token="$root/etc/cambium/$id.token"
  [[ $(stat -c '%a %u' "$token" 2>/dev/null) == "600 $uid" ]] ||
    fail "$id.token is not 0600 and owned by cambium: $(stat -c '%a %u' "$token" 2>&1)"
  grep -Eq "^cmb_${id}_[0-9a-f]{64}$" "$token" || fail "$id.token is not cmb_${id}_<64 hex>"
done
[[ $(stat -c '%a %u' "$root/var/lib/cambium") == "700 0" ]] || fail "/var/lib/cambium is not 0700 root"
"$root/usr/bin/cambium" --version >/dev/null || fail "cambium --version"
log "files, conffiles, user, tokens and state directory are in place"

# --- Installing again (what an upgrade runs) keeps the user and the secrets.
before=$(cat "$root/etc/passwd" "$root"/etc/cambium/*.token)
"${dpkg_root[@]}" -i "$deb" >"$root/dpkg-reinstall.log" 2>&1 ||
  fail "dpkg -i again: $(cat "$root/dpkg-reinstall.log")"
[[ $(cat "$root/etc/passwd" "$root"/etc/cambium/*.token) == "$before" ]] ||
  fail "installing again changed the user or the secrets"
log "installing again keeps the user and the secrets"

# --- systemd's own check of the units, where systemd-analyze exists. It needs the
# programs the units name, which are in the root, so it runs on copies with those
# paths moved into the root.
if command -v systemd-analyze >/dev/null; then
  verify_dir="$root/verify"
  mkdir -p "$verify_dir"
  for u in cambium-pageserver.service cambium-safekeeper@.service; do
    sed "s#^ExecStart=/#ExecStart=$root/#" "$root$unit_dir/$u" >"$verify_dir/$u"
  done
  # verify needs instances, not templates.
  cp "$verify_dir/cambium-safekeeper@.service" "$verify_dir/cambium-safekeeper@1.service"
  if ! out=$(cd "$verify_dir" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify \
    --man=no ./cambium-pageserver.service ./cambium-safekeeper@1.service 2>&1); then
    fail "systemd-analyze verify: $out"
  fi
  # Warnings about the host (no systemd as PID 1, the unit's user unknown to the
  # host) are not the units' fault; anything naming our units is.
  if grep -i 'cambium' <<<"$out" | grep -vi "user cambium\|\"cambium\"" | grep -q .; then
    fail "systemd-analyze verify: $out"
  fi
  log "systemd-analyze verify: units ok"
else
  log "systemd-analyze not installed: units not verified"
fi

# --- Start the daemons as their units would.

# Value of KEY in the [Service] section of a unit file (the last one wins).
unit_value() {
  awk -F= -v key="$2" '/^\[/ { s = $0 } s == "[Service]" && $1 == key { sub(/^[^=]*=/, ""); v = $0 }
    END { print v }' "$1"
}

# Expands the unit specifiers the units use: %i (instance), %S (state root), %%.
expand() {
  local text=$1 instance=$2
  text=${text//%i/$instance}
  text=${text//%S//var/lib}
  text=${text//%%/%}
  [[ $text != *%* ]] || fail "unit uses a specifier this test does not know: $text"
  echo "$text"
}

free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  fail "no free port"
}

# The HTTP status of GET http://127.0.0.1:PORT/PATH, or nothing.
http_status() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 0
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
    IFS=' ' read -r -t 5 _ code _ <&3 || true
    echo "${code:-}"
  ) 2>/dev/null
}

# The configuration points at /etc/cambium and fixed ports: move every absolute
# path into the root and every loopback port to a free one (one mapping for all
# files, so the pageserver's safekeeper list still names safekeeper 1).
declare -A port_map
for f in "$root"/etc/cambium/*.toml; do
  for port in $(grep -Eo '127\.0\.0\.1:[0-9]+' "$f" | cut -d: -f2); do
    [[ -n ${port_map[$port]:-} ]] || port_map[$port]=$(free_port)
  done
done
for f in "$root"/etc/cambium/*.toml; do
  sed -i -E "s#\"/#\"$root/#g" "$f"
  for port in "${!port_map[@]}"; do sed -i "s#127\.0\.0\.1:$port\b#127.0.0.1:${port_map[$port]}#g" "$f"; done
done

# Starts UNIT (instance INSTANCE) as systemd would; sets started_pid, started_http.
start_unit() {
  local unit=$1 instance=$2 file="$root$unit_dir/$1"
  local exec_start user states state mode word
  exec_start=$(expand "$(unit_value "$file" ExecStart)" "$instance")
  exec_start=${exec_start#[-@:+!]}
  user=$(unit_value "$file" User)
  [[ $user == cambium ]] || fail "$unit runs as \"$user\", not cambium"
  # StateDirectory=: systemd creates each, owned by User=, with StateDirectoryMode=.
  states=$(expand "$(unit_value "$file" StateDirectory)" "$instance")
  mode=$(unit_value "$file" StateDirectoryMode)
  for state in $states; do
    install -d -m "${mode:-0755}" -o "$uid" -g "$gid" "$root/var/lib/$state"
  done
  local argv=()
  for word in $exec_start; do
    [[ $word == /* ]] && word="$root$word"
    argv+=("$word")
  done
  log "starting $unit as $user: ${argv[*]}"
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "${argv[@]}" \
    >"$root/${unit/@/-$instance}.log" 2>&1 &
  started_pid=$!
  pids+=("$started_pid")
  # The config file named on the command line says where /readyz is.
  local config
  config=$(sed -E 's/.*--config ([^ ]+).*/\1/' <<<"${argv[*]}")
  started_http=$(sed -nE 's/^http-listen = "127\.0\.0\.1:([0-9]+)"/\1/p' "$config")
  started_listen=$(sed -nE 's/^listen = "127\.0\.0\.1:([0-9]+)"/\1/p' "$config")
}

# Waits until PID listens on its gRPC port and /readyz on its HTTP port says 200.
wait_ready() {
  local name=$1 pid=$2 listen=$3 http=$4 log_file=$5
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || fail "$name exited: $(cat "$log_file")"
    if (exec 3<>"/dev/tcp/127.0.0.1/$listen") 2>/dev/null &&
      [[ $(http_status "$http" /readyz) == 200 ]]; then
      log "$name is ready (gRPC 127.0.0.1:$listen, /readyz 200 on 127.0.0.1:$http)"
      return
    fi
    sleep 0.2
  done
  fail "$name not ready after 60 s: $(cat "$log_file")"
}

# Stops PID with the unit's KillSignal and expects a clean exit within TimeoutStopSec.
stop_unit() {
  local unit=$1 pid=$2 signal timeout rc=0
  signal=$(unit_value "$root$unit_dir/$unit" KillSignal)
  timeout=$(unit_value "$root$unit_dir/$unit" TimeoutStopSec)
  kill -s "${signal:-SIGTERM}" "$pid"
  for _ in $(seq 1 $((${timeout:-90} * 5))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -0 "$pid" 2>/dev/null && fail "$unit did not stop within ${timeout:-90} s of ${signal:-SIGTERM}"
  wait "$pid" || rc=$?
  [[ $rc -eq 0 ]] || fail "$unit exited $rc after ${signal:-SIGTERM}"
  log "$unit stopped cleanly on ${signal:-SIGTERM}"
}

start_unit cambium-safekeeper@.service 1
sk_pid=$started_pid
wait_ready "safekeeper 1" "$sk_pid" "$started_listen" "$started_http" "$root/cambium-safekeeper-1.service.log"
start_unit cambium-pageserver.service ""
ps_pid=$started_pid
wait_ready pageserver "$ps_pid" "$started_listen" "$started_http" "$root/cambium-pageserver.service.log"
stop_unit cambium-pageserver.service "$ps_pid"
stop_unit cambium-safekeeper@.service "$sk_pid"
pids=()
[[ -f $root/var/lib/cambium-pageserver/CURRENT ]] ||
  fail "the pageserver's store is not in its StateDirectory: $(ls -la "$root/var/lib/cambium-pageserver")"
[[ $(stat -c %u "$root/var/lib/cambium-pageserver/CURRENT") == "$uid" ]] ||
  fail "the pageserver's store is not owned by cambium"

# --- Purge: programs, units, conffiles and secrets go; data and the user stay.
"${dpkg_root[@]}" -P cambium >"$root/dpkg-purge.log" 2>&1 || fail "dpkg -P: $(cat "$root/dpkg-purge.log")"
for f in /usr/bin/cambium "$unit_dir/cambium-pageserver.service" /etc/cambium/pageserver.toml \
  /etc/cambium/service.token /etc/cambium; do
  [[ ! -e $root$f ]] || fail "$f is still there after purge"
done
[[ -d $root/var/lib/cambium-pageserver ]] || fail "purge removed the pageserver's data"
log "purge removed programs, units, configuration and secrets, kept the data"
log "PASSED"
