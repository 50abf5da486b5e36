/*
 * retry.h - how long a failed try waits before the next one (SPEC section
 * 2): retry_delay * retry_backoff^(try - 1), capped by max_retry_delay.
 * Pure arithmetic, saturating instead of overflowing. Any thread.
 */
#ifndef BARAM_SCHED_RETRY_H
#define BARAM_SCHED_RETRY_H

#include <stdint.h>

/* Delay in ms before the try after try number `failed_try` (1-based). max_ms <= 0: no cap.
 * A backoff below 1 (or not a number) counts as 1. Never negative. */
int64_t retry_delay_ms(int64_t delay_ms, double backoff, int64_t max_ms, int failed_try);

#endif
