#!/usr/bin/env bash
# pg.sh BARAM - `baram standalone` on PostgreSQL against itself on SQLite and
# ninja -j JOBS, in one run: `wide 2000` and `chain 300` (the shared gen.py
# workloads, body true), each with the home, the DAG folder, the ninja
# workload and the PostgreSQL cluster's data on tmpfs (/dev/shm) and on disk
# (/var/tmp). In each repetition ninja, then baram on SQLite, then baram on a
# fresh PostgreSQL database run in turn, so drift hits all three alike.
#
# Figures per store: trigger -> "run ended" wall (the daemon's log line, read
# as it arrives), and ready -> process started p50/p99/max: the daemon's own
# "scheduling latency" histogram, logged at SIGTERM (the time from an instance
# becoming ready, its upstreams' results durable, to its process running;
# in `wide` it includes the wait for one of the JOBS slots, so the chain is the
# figure of latency proper). The closing table is the issue's first one.
#
# Environment: REPS (5), JOBS (8), TMPS ("/dev/shm /var/tmp"), INIT (1: `baram
# init` each home, so standalone serves the API too; 0: no secret key, API off),
# BENCH_DIR (../shared/bench). The cluster is scripts/pg-cluster's (initdb
# --no-sync, fsync on), one per file system, started and removed by the driver.
# Prints markdown on stdout; progress on stderr. About 4 minutes on two cores.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BARAM=$(realpath "${1:?usage: pg.sh BARAM}")
BENCH_DIR=${BENCH_DIR:-$HERE/../../shared/bench}
[[ -f $BENCH_DIR/gen.py ]] || BENCH_DIR=$HERE/../shared/bench
[[ -f $BENCH_DIR/gen.py ]] || { echo "pg.sh: no shared bench/gen.py (set BENCH_DIR)" >&2; exit 2; }
command -v ninja >/dev/null || { echo "pg.sh: ninja not found" >&2; exit 2; }
REPS=${REPS:-5}
JOBS=${JOBS:-8}
TMPS=${TMPS:-/dev/shm /var/tmp}
INIT=${INIT:-1}
export BARAM BENCH_DIR
noinit=()
[[ $INIT == 0 ]] && noinit=(--no-init)

load() { cut -d' ' -f1-3 /proc/loadavg; }
out=$(mktemp -d) || exit 1
trap 'rm -rf "$out"' EXIT
echo "# baram on PostgreSQL vs SQLite vs ninja ($(date -u +%Y-%m-%dT%H:%MZ))"
echo
echo "- machine: $(nproc) cores, $(uname -sr)"
echo "- baram: $("$BARAM" --version 2>&1 | head -1) ($BARAM$(git -C "$HERE" rev-parse --short HEAD 2>/dev/null | sed 's/^/, tree at /'))"
echo "- ninja $(ninja --version); PostgreSQL: scripts/pg-cluster ($(ls -d /usr/lib/postgresql/*/bin | tail -1))"
echo "- command: \`REPS=$REPS JOBS=$JOBS TMPS='$TMPS' INIT=$INIT bench/pg.sh $BARAM\`"
echo
for tmp in $TMPS; do
  for shape in "wide 2000" "chain 300"; do
    read -r kind n <<<"$shape"
    echo "## $shape on $tmp"
    echo
    echo "- $(date -u +%H:%M:%SZ), load before: $(load); command: \`bench/daemon/drive.py latency --shape $kind --tasks $n --dbs sqlite,pg --tmp $tmp --reps $REPS --jobs $JOBS${noinit[*]:+ ${noinit[*]}}\`"
    echo
    python3 "$HERE/daemon/drive.py" latency --shape "$kind" --tasks "$n" --dbs sqlite,pg \
      --tmp "$tmp" --reps "$REPS" --jobs "$JOBS" "${noinit[@]}" | tee "$out/$kind.$(basename "$tmp")" ||
      echo "**failed** (see stderr)"
    echo "- load after: $(load)"
    echo
  done
done

# The closing table: the medians the driver printed ("PostgreSQL / SQLite wall" lines).
echo "## Summary (medians of $REPS repetitions)"
echo
echo "| workload | file system | PostgreSQL s | SQLite s | PG / SQLite | ninja -j $JOBS s | PG ready -> started p50 / p99 ms |"
echo "|---|---|---:|---:|---:|---:|---:|"
for tmp in $TMPS; do
  for kind in wide chain; do
    f=$out/$kind.$(basename "$tmp")
    n=$([[ $kind == wide ]] && echo 2000 || echo 300)
    python3 - "$f" "$kind $n" "$tmp" <<'PY'
import re, sys
text = open(sys.argv[1]).read() if sys.argv[1] else ""
w = re.search(r"PostgreSQL / SQLite wall \(median\): ([\d.]+) / ([\d.]+) s = ([\d.]+)x.*ninja ([\d.]+) s", text)
l = re.search(r"p50 ([\d.]+) ms .*p99 ([\d.]+) ms", text)
if not w:
    print("| %s | %s | failed | | | | |" % (sys.argv[2], sys.argv[3]))
else:
    print("| %s | %s | %s | %s | %sx | %s | %s / %s |" % (sys.argv[2], sys.argv[3], w.group(1),
          w.group(2), w.group(3), w.group(4), l.group(1) if l else "-", l.group(2) if l else "-"))
PY
  done
done
echo
echo "Targets (issue 11): PostgreSQL <= 1.5x SQLite; ready -> started p50 <= 2 ms, p99 <= 10 ms (chain)."
