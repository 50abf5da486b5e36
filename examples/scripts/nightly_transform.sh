#!/bin/sh
# nightly_transform.sh DS REGION - sums the valid rows per product into
# summary_REGION.tsv: "day region sku orders units revenue", sorted by
# product. Prints the number of products.
set -eu
ds=$1
region=$2
dir=${ETL_DATA:?ETL_DATA is not set}/$ds
awk -F, -v OFS='\t' '
    NR == 1 { next }
    { orders[$4]++; units[$4] += $5; revenue[$4] += $5 * $6; day = $2; reg = $3 }
    END { for (s in orders) printf "%s\t%s\t%s\t%d\t%d\t%.2f\n", day, reg, s, orders[s], units[s], revenue[s] }
' "$dir/valid_$region.csv" | sort -t "$(printf '\t')" -k3,3 > "$dir/.summary_$region.tsv"
mv "$dir/.summary_$region.tsv" "$dir/summary_$region.tsv"
n=$(awk 'END { print NR }' "$dir/summary_$region.tsv")
echo "transform: $n products -> $dir/summary_$region.tsv" >&2
printf '%s' "$n"
