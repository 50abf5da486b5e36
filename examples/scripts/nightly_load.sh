#!/bin/sh
# nightly_load.sh DS REGION - "loads" the day's summary into the (toy)
# warehouse: the partition $ETL_DATA/warehouse/sales/ds=DS/REGION.tsv is
# replaced as a whole (written aside, then renamed), so loading a day twice
# gives the same result and a reader never sees half a partition. Prints the
# revenue loaded.
set -eu
ds=$1
region=$2
src=${ETL_DATA:?ETL_DATA is not set}/$ds/summary_$region.tsv
part=$ETL_DATA/warehouse/sales/ds=$ds
mkdir -p "$part"
cp "$src" "$part/.$region.tsv.tmp"
mv "$part/.$region.tsv.tmp" "$part/$region.tsv"
revenue=$(awk -F '\t' '{ r += $6 } END { printf "%.2f", r }' "$part/$region.tsv")
echo "load: $(awk 'END { print NR }' "$part/$region.tsv") rows, revenue $revenue -> $part/$region.tsv" >&2
printf '%s' "$revenue"
