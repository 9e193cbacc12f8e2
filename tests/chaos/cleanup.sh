#!/bin/sh
# Removes every trace of one chaos stack, whatever state it was left in (a test that
# failed, timed out or was killed): cleanup.sh ROOT
#
# ROOT is the stack's root directory (unique: mkdtemp); ROOT/data is its tmpfs and
# the CLI's --data-dir. Only processes of this stack are touched: those whose
# command line names a path in ROOT or in the stack's runtime directory (daemons,
# the supervisor, shims, postmasters), or that have a file or their working
# directory there (Postgres backends).
# Order matters: resume stopped processes, kill them all (twice: the supervisor may
# start a daemon while it dies), unmount the FUSE mounts below ROOT/data (deepest
# first), then the tmpfs, then remove ROOT.
# Idempotent; never fails.
root=${1:?usage: cleanup.sh ROOT}
data="$root/data"

# One grep over every command line (arguments are NUL-separated; the path is
# inside one argument): a fork per process is too slow on a loaded machine. The
# pattern comes from a file so that grep's own command line does not match.
pattern=$(mktemp)
trap 'rm -f "$pattern"' EXIT
printf '%s/\n' "$root" >"$pattern"
# Postgres runs outside the data directory, in the stack's runtime directory
# (/run/cambium/HASH, whose data_dir file names the data directory; see
# docs/operations.md): its mounts, sockets and postmasters are this stack's too.
runtime=""
for f in /run/cambium/*/data_dir; do
  [ -f "$f" ] && [ "$(cat "$f" 2>/dev/null)" = "$data" ] && runtime="${f%/data_dir}"
done
[ -n "$runtime" ] && printf '%s/\n' "$runtime" >>"$pattern"
stack_pids() {
  {
    grep -lsaF -f "$pattern" /proc/[0-9]*/cmdline 2>/dev/null |
      sed -n 's|^/proc/\([0-9]*\)/cmdline$|\1|p'
    find /proc/[0-9]*/cwd /proc/[0-9]*/fd -maxdepth 1 -lname "$root/*" 2>/dev/null |
      sed -n 's|^/proc/\([0-9]*\)/.*|\1|p'
    [ -n "$runtime" ] && find /proc/[0-9]*/cwd /proc/[0-9]*/fd -maxdepth 1 -lname "$runtime/*" \
      2>/dev/null | sed -n 's|^/proc/\([0-9]*\)/.*|\1|p'
  } | sort -u | grep -vx "$$"
}

signal_all() {
  for pid in $(stack_pids); do
    kill "-$1" -- "-$pid" 2>/dev/null
    kill "-$1" "$pid" 2>/dev/null
  done
}

# No `cambium down`: a clean shutdown of a stack left in any state can take minutes
# (an endpoint that cannot checkpoint), and nothing here depends on it.
signal_all CONT
signal_all KILL
sleep 0.5
signal_all KILL

# FUSE mounts (endpoints) in the runtime directory, then those inside the tmpfs
# (data directories of older versions), deepest first, then the tmpfs itself.
if [ -n "$runtime" ]; then
  for m in $(awk -v d="$runtime" 'index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r); do
    fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  awk -v d="$runtime" 'index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/mounts ||
    rm -rf "$runtime"
fi
mounts() { awk -v d="$data" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r; }
for m in $(mounts); do
  [ "$m" = "$data" ] && continue
  fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
done
for _ in 1 2 3 4 5; do
  mountpoint -q "$data" 2>/dev/null || break
  umount "$data" 2>/dev/null || { sleep 1; umount -l "$data" 2>/dev/null; }
done
if ! mountpoint -q "$data" 2>/dev/null; then rm -rf "$root"; fi
exit 0
