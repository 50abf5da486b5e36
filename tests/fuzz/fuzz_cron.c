/*
 * fuzz_cron.c - libFuzzer target for cron_parse() and cron_next(). The input
 * is the expression; a few cron_next() calls from instants across the
 * supported range must move strictly forward and land on fire times
 * (asking again from 1 ms before gives the same instant).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "dag/cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char expr[512];
    if (size >= sizeof(expr))
        size = sizeof(expr) - 1;
    memcpy(expr, data, size);
    expr[size] = 0;
    struct cron c;
    struct err err = {0};
    if (cron_parse(expr, &c, &err) != 0) {
        if (err.code != -EINVAL || !err.msg[0])
            abort();
        return 0;
    }
    static const int64_t starts[] = {
        0,
        -86400000LL * 365 * 30,
        1798761600000LL /* 2027 */,
        4102444800000LL /* 2100 */,
        253370764800000LL /* 9998 */,
        951782400000LL /* 2000-02-29 */,
        1,
    };
    for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
        int64_t t = starts[i];
        for (int k = 0; k < 4; k++) {
            int64_t n = cron_next(&c, t);
            if (n == -1)
                break;
            if (n <= t)
                abort();
            if (cron_next(&c, n - 1) != n)
                abort();
            t = n;
        }
    }
    return 0;
}
