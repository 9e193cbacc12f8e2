#!/usr/bin/env bash
# Runs the chaos suite (tests/chaos/README.md) outside ctest: long runs, one seed,
# a given sequence. Builds what it needs first. Runs as root.
#
#   tests/chaos/run.sh                     the CI seed set (0,1)
#   tests/chaos/run.sh --seed 7            one round, seed 7, on a fresh stack
#   tests/chaos/run.sh --seeds 4,9,12      these rounds in order
#   tests/chaos/run.sh --rounds 50         50 rounds, seeds BASE..BASE+49 (BASE random
#                      [--base B]          unless given; printed)
#   options: --build DIR (default build), --scale S (pgbench scale, default 1),
#            --faults K (faults per round, default 6),
#            --only F1,F2 (only these fault classes, e.g. disk-full),
#            --gc-ways W1,W2 (drop, truncate, vacuum_full: how the GC probes go),
#            --stack-rounds K (rounds per stack, default 4), --artifacts DIR,
#            --cleanup (remove stacks left by a killed run, then exit)
set -euo pipefail
cd "$(dirname "$0")/../.."

build=build
unset CAMBIUM_CHAOS_SEED CAMBIUM_CHAOS_SEEDS CAMBIUM_CHAOS_ROUNDS CAMBIUM_CHAOS_BASE CAMBIUM_CHAOS_ONLY
rounds=""
base=""
while (($#)); do
  case $1 in
    --seed) export CAMBIUM_CHAOS_SEED=$2; shift 2 ;;
    --seeds) export CAMBIUM_CHAOS_SEEDS=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --scale) export CAMBIUM_CHAOS_SCALE=$2; shift 2 ;;
    --gc-ways) export CAMBIUM_CHAOS_GC_WAYS=$2; shift 2 ;;
    --only) export CAMBIUM_CHAOS_ONLY=$2; shift 2 ;;
    --faults) export CAMBIUM_CHAOS_FAULTS=$2; shift 2 ;;
    --stack-rounds) export CAMBIUM_CHAOS_STACK_ROUNDS=$2; shift 2 ;;
    --artifacts) export CAMBIUM_CHAOS_ARTIFACTS=$2; shift 2 ;;
    --cleanup)
      for root in "${TMPDIR:-/tmp}"/cambium-chaos-*; do
        [[ -d $root ]] && tests/chaos/cleanup.sh "$root"
      done
      exit 0 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -n $rounds ]]; then
  export CAMBIUM_CHAOS_ROUNDS=$rounds
  export CAMBIUM_CHAOS_BASE=${base:-$((RANDOM * 32768 + RANDOM))}
  echo "run.sh: $rounds rounds from seed $CAMBIUM_CHAOS_BASE"
fi
export CAMBIUM_CHAOS_ARTIFACTS=${CAMBIUM_CHAOS_ARTIFACTS:-$PWD/$build/chaos-artifacts}

if [[ ! -f $build/build.ninja ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
ninja -C "$build" -j2 chaos_test cambium >/dev/null
echo "run.sh: logs of failing rounds go to $CAMBIUM_CHAOS_ARTIFACTS"
exec "$build/tests/chaos_test" --gtest_color=no
