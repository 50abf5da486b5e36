#!/usr/bin/env bash
# run.sh BARAM - the figures of `baram worker` (issue 12), side by side in one run, for
# bench/WORKERS-RESULTS.md:
#   throughput  wide 2000 x true and chain 300 x true: `baram scheduler` + one `baram worker
#               --slots 8` on PostgreSQL against `baram standalone --parallelism 8` on SQLite,
#               alternating in each repetition (tasks/s; ready -> process started per step)
#   rescue      kill -9 of a worker running 4 tries -> all 4 started again on another
#               worker, default timings (heartbeat 5s, dead_after 20s)
#   scale       1 -> 2 -> 4 workers of 8 slots on wide 2000 x sleep 0.2
#   protocol    the claim/finish protocol alone (bench/wq.sh, helper wq_bench beside BARAM:
#               tasks/s batched and not, ready -> claimed p50/p99), on TMP only
# The homes, DAG folders and the PostgreSQL cluster's data (scripts/pg-cluster, fsync on) are
# on TMP (default /dev/shm). Environment: REPS (3; rescue and scale: RESCUE_REPS 2,
# SCALE_REPS 1), SLOTS (8), WHAT ("throughput rescue scale"), TMP, BENCH_DIR
# (../shared/bench). Prints markdown on stdout; progress on stderr. About 6 minutes on two
# cores. The driver is bench/workers/figures.py (Python 3 standard library).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BARAM=$(realpath "${1:?usage: run.sh BARAM}")
BENCH_DIR=${BENCH_DIR:-$HERE/../../../shared/bench}
[[ -f $BENCH_DIR/gen.py ]] || BENCH_DIR=$HERE/../../shared/bench
[[ -f $BENCH_DIR/gen.py ]] || { echo "run.sh: no shared bench/gen.py (set BENCH_DIR)" >&2; exit 2; }
REPS=${REPS:-3}
RESCUE_REPS=${RESCUE_REPS:-2}
SCALE_REPS=${SCALE_REPS:-1}
SLOTS=${SLOTS:-8}
WHAT=${WHAT:-throughput protocol rescue scale}
TMP=${TMP:-/dev/shm}
export BARAM BENCH_DIR

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "# baram worker: figures ($(date -u +%Y-%m-%dT%H:%MZ))"
echo
echo "- machine: $(nproc) cores, $(uname -sr)"
echo "- baram: $("$BARAM" --version 2>&1 | head -1) ($BARAM$(git -C "$HERE" rev-parse --short HEAD 2>/dev/null | sed 's/^/, tree at /'))"
echo "- command: \`REPS=$REPS RESCUE_REPS=$RESCUE_REPS SCALE_REPS=$SCALE_REPS SLOTS=$SLOTS WHAT='$WHAT' TMP=$TMP bench/workers/run.sh $BARAM\`"
echo
rc=0
for what in $WHAT; do
  if [[ $what == protocol ]]; then
    wqb=$(dirname "$BARAM")/wq_bench
    echo "- $(date -u +%H:%M:%SZ), load before: $(load); command: \`TMPS=$TMP REPS=1 bench/wq.sh $wqb\`"
    echo
    if [[ -x $wqb ]]; then
      TMPS=$TMP REPS=1 "$HERE/../wq.sh" "$wqb" | sed 's/^#/##/' || rc=1
    else
      echo "**no $wqb** (cmake --build build/release --target wq_bench)"
      rc=1
    fi
    echo
    continue
  fi
  case $what in
  rescue) reps=$RESCUE_REPS ;;
  scale) reps=$SCALE_REPS ;;
  *) reps=$REPS ;;
  esac
  echo "- $(date -u +%H:%M:%SZ), load before: $(load); command: \`bench/workers/figures.py $what --tmp $TMP --reps $reps --slots $SLOTS\`"
  echo
  python3 "$HERE/figures.py" "$what" --tmp "$TMP" --reps "$reps" --slots "$SLOTS" || {
    echo "**$what failed** (see stderr)"
    rc=1
  }
  echo "- load after: $(load)"
  echo
done
exit $rc
