#!/bin/sh
# fanout_shard.sh "FIRST LAST" - one shard of fanout.yaml: prints the sum of
# the whole numbers FIRST..LAST (with awk, one by one, as real work would),
# after a 0.2 s pause that makes the pool's limit visible in the run's timing.
set -eu
set -f
# shellcheck disable=SC2086 # split "FIRST LAST" into two words (globbing is off)
set -- $1
[ $# -eq 2 ] || { echo "shard: expected 'FIRST LAST'" >&2; exit 2; }
for v in "$1" "$2"; do
    case $v in '' | *[!0-9]*) echo "shard: '$v' is not a number" >&2; exit 2 ;; esac
done
sleep 0.2
awk -v a="$1" -v b="$2" 'BEGIN { for (i = a; i <= b; i++) s += i; printf "%.0f", s }'
echo "shard $BARAM_TASK: $1..$2 done (try $BARAM_TRY)" >&2
