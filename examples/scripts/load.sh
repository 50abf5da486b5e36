#!/bin/sh
# load.sh DS "REGION ORDERS AMOUNT" - "loads" one region's totals into the
# warehouse ($WAREHOUSE/DS/REGION.txt, written atomically through a rename)
# and prints "REGION ORDERS" for the report.
set -eu
ds=$1
set -- $2
region=$1 orders=$2 amount=$3
dir=${WAREHOUSE:?WAREHOUSE is not set}/$ds
mkdir -p "$dir"
printf '%s %s %s\n' "$region" "$orders" "$amount" > "$dir/.$region.tmp"
mv "$dir/.$region.tmp" "$dir/$region.txt"
echo "load: $region: $orders orders, $amount (try $BARAM_TRY)" >&2
printf '%s %s' "$region" "$orders"
