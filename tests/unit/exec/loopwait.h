/*
 * loopwait.h - for tests of code on a libuv loop: run the loop until a
 * counter reaches a value, bounded in time. Header-only (static functions),
 * included by the exec tests that need it.
 */
#ifndef BARAM_TESTS_LOOPWAIT_H
#define BARAM_TESTS_LOOPWAIT_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

static void loopwait_on_guard(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

static void loopwait_on_tick(uv_timer_t *t)
{
}

/* Runs the loop until *n >= want or limit_ms passed; true if reached. A 2 ms ticker bounds each
 * uv_run(UV_RUN_ONCE): libuv 1.44 runs due timers and then still blocks in poll until the next
 * timer, so a condition met by a timer callback would otherwise be seen only later. */
static inline bool loopwait_until(uv_loop_t *loop, const int *n, int want, uint64_t limit_ms)
{
    bool expired = false;
    uv_timer_t guard, tick;
    uv_timer_init(loop, &guard);
    uv_timer_init(loop, &tick);
    guard.data = &expired;
    uv_timer_start(&guard, loopwait_on_guard, limit_ms, 0);
    uv_timer_start(&tick, loopwait_on_tick, 2, 2);
    while (*n < want && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *n >= want;
}

#endif
