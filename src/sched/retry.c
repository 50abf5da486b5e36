/*
 * retry.c - the retry delay; see retry.h. Computed in double and clamped
 * before converting back, so a large backoff^try saturates at the cap (or at
 * a year when there is no cap) instead of overflowing.
 */
#include "sched/retry.h"

#include <math.h>

#define RETRY_MAX_MS ((int64_t)366 * 24 * 3600 * 1000)

int64_t retry_delay_ms(int64_t delay_ms, double backoff, int64_t max_ms, int failed_try)
{
    if (delay_ms <= 0)
        return 0;
    if (!(backoff >= 1.0)) /* also NaN */
        backoff = 1.0;
    if (failed_try < 1)
        failed_try = 1;
    double d = (double)delay_ms * pow(backoff, (double)(failed_try - 1));
    double cap = max_ms > 0 ? (double)max_ms : (double)RETRY_MAX_MS;
    if (!(d <= cap)) /* also inf */
        d = cap;
    return (int64_t)d;
}
