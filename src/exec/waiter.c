/*
 * waiter.c - `wait` sensors on the event loop; see waiter.h.
 *
 * Key idea: a waiter is a tiny state machine driven by three events: the
 * tick timer (start a check), the end of a check (met: finish; not met: arm
 * the tick again) and the deadline timer (finish as timed out, cancelling an
 * http check in flight). Only one check is ever in flight.
 *
 * Lifetime: after done has run the waiter is "finished" but its memory lives
 * on until both timers have closed and a file check still on the thread pool
 * (uv_fs_t cannot be withdrawn once running) has come back; `pending` counts
 * those. Loop thread only.
 */
#include "exec/waiter.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "exec/httptask.h"

struct waiter {
    uv_loop_t *loop;              /* borrowed */
    struct httptask_client *http; /* borrowed */
    char *file;                   /* owned, or NULL */
    char *url;                    /* owned, or NULL */
    int64_t every_ms, timeout_ms;
    uv_timer_t tick, deadline;
    uv_fs_t fs;
    bool fs_busy;
    struct httptask *probe; /* the http check in flight, or NULL */
    char *last;             /* owned: what the last check found, for the timeout message */
    unsigned checks;
    int64_t started_ms;
    bool finished;
    unsigned pending; /* close callbacks due, plus 1 while fs_busy after finishing */
    waiter_done_fn *done;
    void *arg;
};

static void waiter_format_ms(int64_t ms, char *out, size_t cap)
{
    if (ms >= 3600000 && ms % 3600000 == 0)
        snprintf(out, cap, "%lldh", (long long)(ms / 3600000));
    else if (ms >= 60000 && ms % 60000 == 0)
        snprintf(out, cap, "%lldm", (long long)(ms / 60000));
    else if (ms >= 1000 && ms % 1000 == 0)
        snprintf(out, cap, "%llds", (long long)(ms / 1000));
    else
        snprintf(out, cap, "%lldms", (long long)ms);
}

static void waiter_set_last(struct waiter *w, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void waiter_set_last(struct waiter *w, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    free(w->last);
    w->last = xstrdup(tmp);
}

static void waiter_release(struct waiter *w)
{
    free(w->file);
    free(w->url);
    free(w->last);
    free(w);
}

static void waiter_closed(uv_handle_t *h)
{
    struct waiter *w = h->data;
    if (--w->pending == 0)
        waiter_release(w);
}

static void waiter_finish_at(struct waiter *w, enum waiter_outcome outcome, const char *msg,
                             int64_t trial_in_ms)
{
    w->finished = true;
    if (w->probe) {
        struct httptask *p = w->probe;
        w->probe = NULL;
        httptask_cancel(p); /* its callback sees w->finished and returns */
    }
    uv_timer_stop(&w->tick);
    uv_timer_stop(&w->deadline);
    struct waiter_result res = {
        .outcome = outcome,
        .message = msg,
        .checks = w->checks,
        .elapsed_ms = (int64_t)uv_now(w->loop) - w->started_ms,
        .trial_in_ms = trial_in_ms,
    };
    w->done(w->arg, &res);
    w->pending += 2;
    if (w->fs_busy)
        w->pending++; /* dropped by waiter_on_stat */
    uv_close((uv_handle_t *)&w->tick, waiter_closed);
    uv_close((uv_handle_t *)&w->deadline, waiter_closed);
}

static void waiter_finish(struct waiter *w, enum waiter_outcome outcome, const char *msg)
{
    waiter_finish_at(w, outcome, msg, 0);
}

static void waiter_on_tick(uv_timer_t *t);

/* A check ended without meeting the condition: try again after every_ms. */
static void waiter_not_yet(struct waiter *w)
{
    uv_timer_start(&w->tick, waiter_on_tick, (uint64_t)w->every_ms, 0);
}

static void waiter_on_stat(uv_fs_t *req)
{
    struct waiter *w = req->data;
    int r = (int)req->result;
    uv_fs_req_cleanup(req);
    w->fs_busy = false;
    if (w->finished) {
        if (--w->pending == 0)
            waiter_release(w);
        return;
    }
    w->checks++;
    if (r == 0) {
        char msg[1200];
        snprintf(msg, sizeof(msg), "file '%s' exists", w->file);
        waiter_finish(w, WAITER_MET, msg);
        return;
    }
    if (r == UV_ENOENT)
        waiter_set_last(w, "file '%s' does not exist", w->file);
    else
        waiter_set_last(w, "cannot check file '%s': %s", w->file, uv_strerror(r));
    waiter_not_yet(w);
}

static void waiter_on_probe(void *arg, const struct httptask_result *res)
{
    struct waiter *w = arg;
    if (w->finished)
        return; /* waiter_finish cancelled this check */
    w->probe = NULL;
    if (res->cancelled) {
        /* Cancelled from outside: the httptask client is being freed. */
        waiter_finish(w, WAITER_CANCELLED, "cancelled");
        return;
    }
    if (res->circuit_open) {
        waiter_finish_at(w, WAITER_CIRCUIT_OPEN, res->message, res->trial_in_ms);
        return;
    }
    w->checks++;
    if (res->ok) {
        char msg[1200];
        snprintf(msg, sizeof(msg), "%s answered %d", w->url, res->status);
        waiter_finish(w, WAITER_MET, msg);
        return;
    }
    waiter_set_last(w, "last check: %s", res->message);
    waiter_not_yet(w);
}

static void waiter_check(struct waiter *w)
{
    if (w->file) {
        w->fs.data = w;
        int r = uv_fs_stat(w->loop, &w->fs, w->file, waiter_on_stat);
        if (r < 0) {
            waiter_set_last(w, "cannot check file '%s': %s", w->file, uv_strerror(r));
            waiter_not_yet(w);
            return;
        }
        w->fs_busy = true;
        return;
    }
    struct httptask_req req = {
        .method = "GET",
        .url = w->url,
        .timeout_ms = WAITER_HTTP_TIMEOUT_MS,
    };
    /* httptask_start never fails synchronously: bad URLs come back through waiter_on_probe. */
    if (httptask_start(w->http, &req, waiter_on_probe, w, &w->probe) < 0)
        waiter_not_yet(w);
}

static void waiter_on_tick(uv_timer_t *t)
{
    waiter_check(t->data);
}

static void waiter_on_deadline(uv_timer_t *t)
{
    struct waiter *w = t->data;
    char when[32], msg[1400];
    waiter_format_ms(w->timeout_ms, when, sizeof(when));
    if (w->last)
        snprintf(msg, sizeof(msg), "timed out after %s: %s", when, w->last);
    else
        snprintf(msg, sizeof(msg), "timed out after %s: no check completed", when);
    waiter_finish(w, WAITER_TIMED_OUT, msg);
}

int waiter_start(uv_loop_t *loop, struct httptask_client *http, const struct waiter_opts *o,
                 waiter_done_fn *done, void *arg, struct waiter **out)
{
    if (out)
        *out = NULL;
    if (!o->file == !o->http_url || (o->http_url && !http))
        return -EINVAL;
    struct waiter *w = xcalloc(1, sizeof(*w));
    w->loop = loop;
    w->http = http;
    w->file = o->file ? xstrdup(o->file) : NULL;
    w->url = o->http_url ? xstrdup(o->http_url) : NULL;
    w->every_ms = o->every_ms < WAITER_MIN_EVERY_MS ? WAITER_MIN_EVERY_MS : o->every_ms;
    w->timeout_ms = o->timeout_ms;
    /* The loop's cached time may be stale (a long callback ran before us): the deadline counts
     * from now. */
    uv_update_time(loop);
    w->started_ms = (int64_t)uv_now(loop);
    w->done = done;
    w->arg = arg;
    uv_timer_init(loop, &w->tick);
    uv_timer_init(loop, &w->deadline);
    w->tick.data = w;
    w->deadline.data = w;
    if (w->timeout_ms > 0)
        uv_timer_start(&w->deadline, waiter_on_deadline, (uint64_t)w->timeout_ms, 0);
    /* The first check starts on the next loop turn, so done never runs from in here. */
    uv_timer_start(&w->tick, waiter_on_tick, 0, 0);
    if (out)
        *out = w;
    return 0;
}

void waiter_cancel(struct waiter *w)
{
    if (w->finished)
        return;
    waiter_finish(w, WAITER_CANCELLED, "cancelled");
}

const char *waiter_outcome_name(enum waiter_outcome o)
{
    static const char *const names[] = {
#define X(e, s) [e] = s,
        WAITER_OUTCOME_TABLE(X)
#undef X
    };
    if ((unsigned)o >= sizeof(names) / sizeof(names[0]))
        return "unknown";
    return names[o];
}
