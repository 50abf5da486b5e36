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

echo "## 100,000-task DAGs: validate and run (peak RSS)"
echo
echo "lattice 1000 100 is 100 layers of 1000 tasks, each needing 2 of the layer before."
echo "(wide 100000 validates, but no tool can run its final task: its command, 100000"
echo "upstream checks, is 2.2 MB, over Linux's 128 KiB limit for one argument of sh -c.)"
work=$(mktemp -d /dev/shm/baram-big.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 "$BENCH_DIR/gen.py" wide 100000 --out "$work/wide" >/dev/null
python3 "$BENCH_DIR/gen.py" lattice 1000 100 --out "$work/lat" >/dev/null
echo
echo '| step | wall s | peak RSS MiB |'
echo '|---|---:|---:|'
row() { # label, then the command
  local label=$1; shift
  /usr/bin/time -f '%e %M' -o "$work/t" "$@" >/dev/null 2>"$work/err" || { echo "| $label | failed: $(tail -1 "$work/err") | |"; return; }
  read -r wall rss <"$work/t"
  printf '| %s | %s | %.1f |\n' "$label" "$wall" "$(awk -v k="$rss" 'BEGIN{print k/1024}')"
}
row "validate wide 100000" "$BARAM" dags validate "$work/wide/dag.yaml"
row "validate lattice 1000x100" "$BARAM" dags validate "$work/lat/dag.yaml"
(cd "$work/lat" && row "run lattice 1000x100 (parallelism 8)" env BARAM_HOME="$work/home" \
  "$BARAM" run dag.yaml --parallelism 8 --quiet)

if [[ ${DAEMON:-0} == 1 ]]; then
  echo
  bash "$HERE/daemon.sh" "$BARAM" | sed 's/^#/##/'
fi

if [[ ${PG:-0} == 1 ]]; then
  echo
  bash "$HERE/pg.sh" "$BARAM" | sed 's/^#/##/'
fi
