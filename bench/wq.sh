#!/usr/bin/env bash
# wq.sh WQ_BENCH - the claim/finish protocol of `baram worker` alone (bench/wq_bench.c, no
# processes), on a throwaway PostgreSQL cluster (scripts/pg-cluster, fsync on) per file
# system: tmpfs (/dev/shm) and disk (/var/tmp). REPS (3) runs of wq_bench on a fresh
# database each, N (20000) tries each. WQ_BENCH: the release build's
# (cmake --preset release && cmake --build build/release --target wq_bench).
# Prints markdown on stdout (bench/WQ-RESULTS.md); progress on stderr.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=$(realpath "${1:?usage: wq.sh WQ_BENCH}")
REPS=${REPS:-3}
N=${N:-20000}
TMPS=${TMPS:-/dev/shm /var/tmp}
CLUSTER=$HERE/../scripts/pg-cluster

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "# The worker protocol alone: claim/finish on PostgreSQL ($(date -u +%Y-%m-%dT%H:%MZ))"
echo
echo "- machine: $(nproc) cores, $(uname -sr); PostgreSQL: scripts/pg-cluster ($(ls -d /usr/lib/postgresql/*/bin | tail -1)), fsync on"
echo "- tree at $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null); command: \`REPS=$REPS N=$N TMPS='$TMPS' bench/wq.sh $1\`"
echo
for tmp in $TMPS; do
  dir=$(mktemp -d "$tmp/wqbench.XXXXXX") || exit 1
  chmod 755 "$dir"
  if ! "$CLUSTER" start "$dir"; then
    echo "**cluster on $tmp failed**"
    rm -rf "$dir"
    continue
  fi
  echo "## $tmp"
  echo
  for rep in $(seq 1 "$REPS"); do
    echo "wq.sh: $tmp run $rep" >&2
    psql -h "$dir" -U postgres -qc "DROP DATABASE IF EXISTS wqb" -c "CREATE DATABASE wqb" >/dev/null
    echo "Run $rep, load before $(load):"
    echo
    "$BENCH" "postgresql:///wqb?host=$dir&user=postgres" "$N" || echo "**failed**"
    echo
  done
  "$CLUSTER" destroy "$dir"
done
