#!/bin/sh
# nightly_report.sh DS REGION - checks the load against the earlier steps and
# writes report_REGION.txt next to the day's data: rows extracted, valid and
# rejected, products and revenue. Reads $OUTPUT_LOAD (the revenue loaded) and
# the files of the earlier steps. Prints the report's one-line summary.
set -eu
ds=$1
region=$2
dir=${ETL_DATA:?ETL_DATA is not set}/$ds
part=$ETL_DATA/warehouse/sales/ds=$ds/$region.tsv
raw=$(awk 'END { print NR - 1 }' "$dir/raw_$region.csv")
valid=$(awk 'END { print NR - 1 }' "$dir/valid_$region.csv")
rejected=$(awk 'END { print NR - 1 }' "$dir/rejected_$region.csv")
units=$(awk -F '\t' '{ u += $5 } END { print u + 0 }' "$part")
revenue=$(awk -F '\t' '{ r += $6 } END { printf "%.2f", r }' "$part")
if [ $((valid + rejected)) -ne "$raw" ]; then
    echo "report: $raw rows extracted but $valid valid + $rejected rejected" >&2
    exit 1
fi
if [ "$revenue" != "${OUTPUT_LOAD:-}" ]; then
    echo "report: the warehouse holds $revenue, the load said '${OUTPUT_LOAD:-}'" >&2
    exit 1
fi
{
    echo "nightly_etl report for $ds, region $region (run $BARAM_RUN_ID)"
    echo "  orders extracted: $raw"
    echo "  valid / rejected: $valid / $rejected"
    echo "  units sold:       $units"
    echo "  revenue:          $revenue"
    echo "  top products:"
    sort -t "$(printf '\t')" -k6,6nr "$part" | awk -F '\t' 'NR <= 3 { printf "    %-14s %8.2f\n", $3, $6 }'
} > "$dir/.report_$region.txt"
mv "$dir/.report_$region.txt" "$dir/report_$region.txt"
cat "$dir/report_$region.txt" >&2
printf '%s %s: %s orders, %s units, revenue %s' "$ds" "$region" "$valid" "$units" "$revenue"
