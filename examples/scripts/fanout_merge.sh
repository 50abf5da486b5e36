#!/bin/sh
# fanout_merge.sh SHARDS SIZE - the fan-in of fanout.yaml: adds up the shards'
# sums from $OUTPUT_PROCESS (a JSON array of strings, one per instance),
# checks that every shard answered and that the total is n(n+1)/2 for
# n = SHARDS * SIZE, and prints the total.
set -eu
shards=$1
size=$2
printf '%s' "${OUTPUT_PROCESS:?OUTPUT_PROCESS is not set}" | tr -d '[]" \n' | tr ',' '\n' |
    awk -v shards="$shards" -v size="$size" '
        NF == 0 { next }
        !/^[0-9]+$/ { print "merge: not a number: " $0 > "/dev/stderr"; bad = 1; exit }
        { total += $0; got++ }
        END {
            if (bad) exit 1
            n = shards * size
            want = n * (n + 1) / 2
            printf "merge: %d of %d shards, total %.0f, expected %.0f\n", got, shards, total, want > "/dev/stderr"
            if (got != shards || total != want) { print "merge: MISMATCH" > "/dev/stderr"; exit 1 }
            printf "%.0f", total
        }'
