#!/bin/sh
# weekday.sh YYYY-MM-DD - prints the ISO day of the week, 1 (Monday) to
# 7 (Sunday). POSIX date cannot parse a date, so this is Sakamoto's method
# in awk.
set -eu
printf '%s\n' "$1" | awk -F- '
    NF != 3 { print "weekday: bad date" > "/dev/stderr"; exit 2 }
    {
        split("0 3 2 5 0 3 5 1 4 6 2 4", t, " ")
        y = $1 + 0; m = $2 + 0; d = $3 + 0
        if (m < 3) y -= 1
        w = (y + int(y / 4) - int(y / 100) + int(y / 400) + t[m] + d) % 7   # 0 = Sunday
        print (w == 0 ? 7 : w)
    }'
