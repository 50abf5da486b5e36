#!/usr/bin/env bash
# daemon.sh BARAM - benchmarks of the scheduler daemon (`baram standalone`),
# the figures in bench/DAEMON-RESULTS.md:
#   latency     a chain of 300 `true` tasks run by the daemon after one
#               `dags trigger`: the daemon's own "scheduling latency" log line
#               (ready -> process started, p50/p99) and the wall time, with
#               ninja on the same chain (the shared gen.py workload)
#   startup     a folder of 100 DAG files of 10 tasks: exec -> "scheduler up",
#               exec -> a triggered run started, VmRSS, CPU over 10 idle s
#   throughput  50 runs of a 200-task lattice (10,000 task instances) queued
#               by 50 `dags trigger` calls at once, against ninja -j N on one
#               graph holding 50 copies of the same 200 tasks
# each with the home, the DAG folder and the ninja workload on tmpfs
# (/dev/shm) and on disk (/var/tmp).
#
# Environment: REPS (3), JOBS (8: --parallelism and ninja -j), WHAT (the
# list above), TMPS ("/dev/shm /var/tmp"), SETTLE (0: seconds between two
# throughput repetitions, see README), BENCH_DIR (../shared/bench).
# Prints markdown on stdout; progress on stderr. The driver is
# bench/daemon/drive.py (Python 3 standard library).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BARAM=$(realpath "${1:?usage: daemon.sh BARAM}")
BENCH_DIR=${BENCH_DIR:-$HERE/../../shared/bench}
[[ -f $BENCH_DIR/gen.py ]] || BENCH_DIR=$HERE/../shared/bench
[[ -f $BENCH_DIR/gen.py ]] || { echo "daemon.sh: no shared bench/gen.py (set BENCH_DIR)" >&2; exit 2; }
command -v ninja >/dev/null || { echo "daemon.sh: ninja not found" >&2; exit 2; }
REPS=${REPS:-3}
JOBS=${JOBS:-8}
WHAT=${WHAT:-latency startup throughput}
TMPS=${TMPS:-/dev/shm /var/tmp}
SETTLE=${SETTLE:-0}
export BARAM BENCH_DIR

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "# baram daemon benchmarks ($(date -u +%Y-%m-%dT%H:%MZ))"
echo
echo "- machine: $(nproc) cores, $(uname -sr), $(awk '/MemTotal/{printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo)"
echo "- baram: $("$BARAM" --version 2>&1 | head -1) ($BARAM$(git -C "$HERE" rev-parse --short HEAD 2>/dev/null | sed 's/^/, tree at /')$(git -C "$HERE" diff --quiet HEAD -- ../src 2>/dev/null || echo ' + uncommitted src changes'))"
echo "- ninja $(ninja --version); python $(python3 -c 'import platform; print(platform.python_version())')"
echo "- binary built $(date -u -r "$BARAM" +%Y-%m-%dT%H:%MZ)"
echo "- command: \`REPS=$REPS JOBS=$JOBS WHAT='$WHAT' TMPS='$TMPS' SETTLE=$SETTLE bench/daemon.sh $BARAM\`"
echo
for what in $WHAT; do
  case $what in
    latency) echo "## 1. Scheduling latency: chain 300" ;;
    startup) echo "## 2. Start-up, idle RSS and idle CPU: 100 DAG files" ;;
    throughput) echo "## 3. Throughput: 50 concurrent runs of 200 tasks" ;;
    *) echo "daemon.sh: unknown WHAT '$what'" >&2; exit 2 ;;
  esac
  echo
  extra=()
  [[ $what == throughput && $SETTLE != 0 ]] && extra=(--settle "$SETTLE")
  for tmp in $TMPS; do
    echo "- $(date -u +%H:%M:%SZ), load before: $(load); command: \`bench/daemon/drive.py $what --tmp $tmp --reps $REPS --jobs $JOBS${extra[*]:+ ${extra[*]}}\`"
    echo
    python3 "$HERE/daemon/drive.py" "$what" --tmp "$tmp" --reps "$REPS" --jobs "$JOBS" "${extra[@]}" \
      || echo "**failed** (see stderr)"
    echo "- load after: $(load)"
    echo
  done
done
