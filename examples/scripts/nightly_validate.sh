#!/bin/sh
# nightly_validate.sh DS REGION MAX_BAD_PERCENT - splits raw_REGION.csv into
# valid_REGION.csv and rejected_REGION.csv (a row is valid when it has six
# fields, a positive whole quantity and a price). Prints "VALID REJECTED".
# Fails when the file is empty, has no header, or when more than
# MAX_BAD_PERCENT of its rows are rejected: better no load than a bad one.
set -eu
ds=$1
region=$2
max_bad=$3
case $max_bad in '' | *[!0-9]*) echo "validate: max_bad must be a whole number, got '$max_bad'" >&2; exit 2 ;; esac
dir=${ETL_DATA:?ETL_DATA is not set}/$ds
raw=$dir/raw_$region.csv
[ -s "$raw" ] || { echo "validate: $raw is missing or empty" >&2; exit 1; }
awk -F, -v valid="$dir/valid_$region.csv" -v rejected="$dir/rejected_$region.csv" '
    NR == 1 {
        if ($0 != "order_id,day,region,sku,qty,unit_price") { print "validate: bad header: " $0 > "/dev/stderr"; exit 1 }
        print > valid; print $0 ",reason" > rejected; next
    }
    NF != 6                              { print $0 ",fields" > rejected; bad++; next }
    $5 !~ /^[0-9]+$/ || $5 + 0 < 1       { print $0 ",qty" > rejected; bad++; next }
    $6 !~ /^[0-9]+(\.[0-9]+)?$/          { print $0 ",price" > rejected; bad++; next }
    { print > valid; good++ }
    END { printf "%d %d\n", good, bad }
' "$raw" > "$dir/.counts_$region"
read -r good bad < "$dir/.counts_$region"
rm -f "$dir/.counts_$region"
total=$((good + bad))
echo "validate: $good valid, $bad rejected of $total rows (limit $max_bad%)" >&2
if [ "$total" -eq 0 ]; then
    echo "validate: no rows for $ds" >&2
    exit 1
fi
if [ $((bad * 100)) -gt $((max_bad * total)) ]; then
    echo "validate: too many bad rows, refusing to load" >&2
    exit 1
fi
printf '%s %s' "$good" "$bad"
