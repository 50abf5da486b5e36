#!/usr/bin/env bash
# startup.sh BARAM [BARAM...] - start-up time and idle memory of each binary, side by side:
#   start-up   `baram --version` and `baram runs list` on an empty home (hyperfine, -N, 200 runs)
#   idle RSS   `baram scheduler` and `baram standalone` with a folder of 100 DAG files of
#              10 tasks (bench/daemon/drive.py's folder), VmRSS after "scheduler up" + IDLE s
#   libraries  how many shared objects the process has mapped when idle
# Home and folder on /dev/shm. Prints markdown on stdout. Needs hyperfine (Debian package).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
[[ $# -ge 1 ]] || { echo "usage: startup.sh BARAM [BARAM...]" >&2; exit 2; }
command -v hyperfine >/dev/null || { echo "startup.sh: hyperfine not found (apt-get install hyperfine)" >&2; exit 2; }
BENCH_DIR=${BENCH_DIR:-$HERE/../../shared/bench}
[[ -f $BENCH_DIR/gen.py ]] || BENCH_DIR=$HERE/../shared/bench
IDLE=${IDLE:-3}
ROOT=$(mktemp -d /dev/shm/baram-startup.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT

# 100 DAG files of 10 tasks, as bench/daemon/drive.py makes them.
mkdir -p "$ROOT/dags"
i=0
for shape in "chain 10" "wide 9" "lattice 5 2" "tree 2 2"; do
  python3 "$BENCH_DIR/gen.py" $shape --out "$ROOT/g$i" --name tmpl >/dev/null
  i=$((i + 1))
done
for n in $(seq 0 99); do
  sed "s/^dag: tmpl$/dag: folder_$(printf %03d "$n")/" "$ROOT/g$((n % 4))/dag.yaml" \
    > "$ROOT/dags/dag_$(printf %03d "$n").yaml"
done

rss_of() { # BARAM ROLE -> "rss_kib libs"
  local bin=$1 role=$2 home="$ROOT/home-$RANDOM" log
  BARAM_ADMIN_PASSWORD=startup-bench "$bin" init --home "$home" >/dev/null 2>&1
  printf 'dags: %s\n' "$ROOT/dags" > "$home/baram.yaml"
  log="$home/daemon.log"
  local flags=()
  [[ $role == standalone ]] && flags=(--listen 127.0.0.1:0)
  setsid "$bin" "$role" --home "$home" "${flags[@]}" </dev/null >/dev/null 2>"$log" &
  local pid=$!
  for _ in $(seq 1 500); do grep -q 'msg="scheduler up"' "$log" && break; sleep 0.02; done
  sleep "$IDLE"
  local rss libs
  rss=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status")
  libs=$(awk '$6 ~ /\.so/ {print $6}' "/proc/$pid/maps" | sort -u | wc -l)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null
  echo "$rss $libs"
}

echo "# start-up and idle memory ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r))"
echo
echo "| binary | shared libraries (ldd) | \`--version\` ms (mean ± σ) | \`runs list\` ms | scheduler idle RSS MiB (libs mapped) | standalone idle RSS MiB (libs mapped) |"
echo "|---|---:|---:|---:|---:|---:|"
for bin in "$@"; do
  bin=$(realpath "$bin")
  home="$ROOT/cli-$RANDOM"; BARAM_ADMIN_PASSWORD=startup-bench "$bin" init --home "$home" >/dev/null 2>&1
  nlibs=$(ldd "$bin" | wc -l)
  v=$(hyperfine -N -w 20 -r 200 --export-json "$ROOT/v.json" "$bin --version" >/dev/null 2>&1 &&
      python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.2f ± %.2f" % (r["mean"]*1e3, r["stddev"]*1e3))' "$ROOT/v.json")
  l=$(hyperfine -N -w 20 -r 200 --export-json "$ROOT/l.json" "$bin runs list --home $home" >/dev/null 2>&1 &&
      python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.2f ± %.2f" % (r["mean"]*1e3, r["stddev"]*1e3))' "$ROOT/l.json")
  read -r srss slibs < <(rss_of "$bin" scheduler)
  read -r arss alibs < <(rss_of "$bin" standalone)
  printf '| %s | %s | %s | %s | %.1f (%s) | %.1f (%s) |\n' "$bin" "$nlibs" "$v" "$l" \
    "$(echo "$srss/1024" | bc -l)" "$slibs" "$(echo "$arss/1024" | bc -l)" "$alibs"
done
