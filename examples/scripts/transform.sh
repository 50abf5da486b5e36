#!/bin/sh
# transform.sh - reads the orders CSV on stdin, writes one line per region:
# "REGION ORDERS AMOUNT", sorted by region. Fails on a malformed row.
set -eu
awk -F, '
    NR == 1 { if ($1 != "order_id") { print "transform: no header" > "/dev/stderr"; exit 1 }; next }
    NF == 0 { next }
    NF != 4 { printf "transform: line %d has %d fields\n", NR, NF > "/dev/stderr"; exit 1 }
    { orders[$2]++; amount[$2] += $3 }
    END { for (r in orders) printf "%s %d %.2f\n", r, orders[r], amount[r] }
' | sort
echo "transform: done" >&2
