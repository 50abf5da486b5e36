#!/bin/sh
# report.sh DS - checks that every extracted order of the day was loaded:
# the loads' counts must add up to the extract's rows, and each loaded region
# must have its file in the warehouse. Reads $OUTPUT_EXTRACT (the CSV) and
# $OUTPUT_LOAD (the loads' outputs as a JSON array: ["east 12", ...]).
set -eu
ds=$1
extracted=$(printf '%s\n' "$OUTPUT_EXTRACT" | awk -F, 'NR > 1 && NF == 4 { n++ } END { print n + 0 }')
loads=$(printf '%s' "$OUTPUT_LOAD" | tr ',' '\n' | tr -d '[]"')
loaded=$(printf '%s\n' "$loads" | awk '{ n += $2 } END { print n + 0 }')
for region in $(printf '%s\n' "$loads" | awk '{ print $1 }'); do
    if [ ! -f "$WAREHOUSE/$ds/$region.txt" ]; then
        echo "report: $region is missing from the warehouse" >&2
        exit 1
    fi
done
echo "report for $ds: loads said $OUTPUT_LOAD"
echo "report for $ds: $extracted orders extracted, $loaded loaded"
if [ "$extracted" != "$loaded" ]; then
    echo "report: MISMATCH" >&2
    exit 1
fi
