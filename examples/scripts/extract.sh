#!/bin/sh
# extract.sh DS ROWS - "extracts" ROWS orders of day DS as CSV on stdout
# (order_id,region,amount,day). A stand-in for a database query: the data is
# made up, but the same date always gives the same rows (awk seeded by it).
set -eu
ds=$1
rows=$2
case $rows in '' | *[!0-9]*) echo "extract: rows must be a number, got '$rows'" >&2; exit 2 ;; esac
seed=$(printf '%s' "$ds" | tr -d -)
echo "extract: $rows orders for $ds" >&2
awk -v seed="$seed" -v rows="$rows" -v ds="$ds" 'BEGIN {
    srand(seed)
    split("north south east west", region, " ")
    print "order_id,region,amount,day"
    for (i = 1; i <= rows; i++)
        printf "%d,%s,%.2f,%s\n", i, region[int(rand() * 4) + 1], 5 + rand() * 195, ds
}'
