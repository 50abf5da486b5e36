#!/bin/sh
# nightly_extract.sh DS REGION - "extracts" the orders of day DS in REGION
# from the (made-up) shop database into $ETL_DATA/DS/raw_REGION.csv and prints
# the number of rows. The same day and region always give the same rows (awk
# is seeded by them); about one row in twenty is broken on purpose (a missing
# price or a zero quantity) so that `validate` has something to reject.
# With FLAKY=yes the first try fails like a database that is not up yet:
# that is what the task's retries are for.
set -eu
ds=$1
region=$2
case $ds in [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]) ;; *) echo "extract: bad date '$ds'" >&2; exit 2 ;; esac
case $region in '' | *[!a-z]*) echo "extract: region must be lower-case letters, got '$region'" >&2; exit 2 ;; esac
if [ "${FLAKY:-no}" = yes ] && [ "${BARAM_TRY:-1}" -eq 1 ]; then
    echo "extract: could not connect to the orders database (try $BARAM_TRY): retrying later" >&2
    exit 75
fi
dir=${ETL_DATA:?ETL_DATA is not set}/$ds
mkdir -p "$dir"
seed=$(printf '%s%s' "$ds" "$region" | cksum | awk '{ print $1 % 1000000 }')
awk -v seed="$seed" -v ds="$ds" -v region="$region" 'BEGIN {
    srand(seed)
    split("kimchi-jar bibimbap-kit gochujang tteok-500g soju-glass", sku, " ")
    rows = 30 + int(rand() * 30)
    print "order_id,day,region,sku,qty,unit_price"
    for (i = 1; i <= rows; i++) {
        qty = 1 + int(rand() * 5)
        price = sprintf("%.2f", 2 + rand() * 38)
        r = rand()
        if (r < 0.02) price = ""
        else if (r < 0.04) qty = 0
        printf "%s-%s-%04d,%s,%s,%s,%d,%s\n", region, ds, i, ds, region, sku[int(rand() * 5) + 1], qty, price
    }
}' > "$dir/.raw_$region.csv"
mv "$dir/.raw_$region.csv" "$dir/raw_$region.csv"
rows=$(awk 'END { print NR - 1 }' "$dir/raw_$region.csv")
echo "extract: $rows orders of $ds in $region -> $dir/raw_$region.csv" >&2
printf '%s' "$rows"
