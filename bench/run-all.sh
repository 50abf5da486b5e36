#!/usr/bin/env bash
# run-all.sh BARAM - the benchmarks behind the figures in bench/RESULTS.md.
# Uses the shared workload generator and runner (../shared/bench, or
# $BENCH_DIR): the same workload for baram, ninja, make and floor (the bare
# process-spawn floor), timed side by side in one run, tmpfs and disk.
# Prints markdown on stdout; progress on stderr.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BARAM=$(realpath "${1:?usage: run-all.sh BARAM}")
BENCH_DIR=${BENCH_DIR:-$HERE/../../shared/bench}
[[ -x $BENCH_DIR/run.sh ]] || BENCH_DIR=$HERE/../shared/bench
[[ -f $BENCH_DIR/run.sh ]] || { echo "run-all.sh: no shared bench/run.sh (set BENCH_DIR)" >&2; exit 2; }
REPS=${REPS:-5}
TOOLS=${TOOLS:-ninja,make,baram,floor}
export BARAM

echo "# baram benchmarks ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
echo
for tmp in "" /var/tmp; do
  where=${tmp:-tmpfs}
  for shape in "wide 2000" "chain 300"; do
    echo "## $shape, body true, jobs 8, on $where"
    bash "$BENCH_DIR/run.sh" $shape --body true --jobs 8 --reps "$REPS" --tools "$TOOLS" \
      ${tmp:+--tmp $tmp}
    echo
  done
done

echo "## 100,000-task DAG: validate and run (peak RSS)"
work=$(mktemp -d /dev/shm/baram-big.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 "$BENCH_DIR/gen.py" wide 100000 --out "$work/wl" >/dev/null
echo
echo '| step | wall s | peak RSS MiB |'
echo '|---|---:|---:|'
/usr/bin/time -f '%e %M' -o "$work/t1" "$BARAM" dags validate "$work/wl/dag.yaml" >/dev/null 2>&1
read -r wall rss <"$work/t1"; printf '| validate wide 100000 | %s | %.1f |\n' "$wall" "$(awk -v k="$rss" 'BEGIN{print k/1024}')"
(cd "$work/wl" && BARAM_HOME=$work/home /usr/bin/time -f '%e %M' -o "$work/t2" \
  "$BARAM" run dag.yaml --parallelism 8 --quiet >/dev/null 2>&1)
read -r wall rss <"$work/t2"; printf '| run wide 100000 (jobs 8) | %s | %.1f |\n' "$wall" "$(awk -v k="$rss" 'BEGIN{print k/1024}')"
