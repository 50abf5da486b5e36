/*
 * retain.c - the scheduler's retention timer (retain.h).
 */
#include "daemon/retain.h"

#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "base/err.h"
#include "base/log.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "ops/retention.h"
#include "store/store.h"

struct retain {
    struct retain_opts o;
    uv_timer_t timer;
    uv_work_t req;
    bool busy;
    /* the pass's results (thread pool, then read on the loop) */
    struct retention_counts c;
    bool skipped;
    int rc;
    struct err err;
};

static void retain_work(uv_work_t *req)
{
    struct retain *r = req->data;
    memset(&r->c, 0, sizeof r->c);
    r->skipped = false;
    struct store *s = NULL;
    if ((r->rc = store_open(r->o.store_url, &s, &r->err)) < 0)
        return;
    int64_t now = when_now_ms();
    struct retention_opts ro = {
        .home = r->o.home,
        .runs_before_ms = r->o.runs_ms > 0 ? now - r->o.runs_ms : 0,
        .logs_before_ms = r->o.logs_ms > 0 ? now - r->o.logs_ms : 0,
    };
    r->rc = ops_retention(s, &ro, &r->c, &r->skipped, &r->err);
    store_close(s);
}

static void retain_after(uv_work_t *req, int status)
{
    struct retain *r = req->data;
    r->busy = false;
    if (status < 0 && r->rc == 0)
        r->rc = status;
    if (r->rc < 0)
        log_warn("retention failed (tried again at the next pass)", "err=%s",
                 log_q(err_msg(&r->err)));
    else if (r->skipped)
        log_debug("retention: another scheduler applies it", NULL);
    else if (r->c.runs || r->c.log_runs || r->c.log_files)
        log_info("retention applied",
                 "runs=%lld task_instances=%lld log_runs=%lld files=%lld "
                 "bytes=%lld",
                 (long long)r->c.runs, (long long)r->c.tis, (long long)r->c.log_runs,
                 (long long)r->c.log_files, (long long)r->c.bytes);
    if (r->o.idle)
        r->o.idle(r->o.ud);
}

static void retain_on_timer(uv_timer_t *t)
{
    struct retain *r = t->data;
    if (r->busy)
        return;
    r->busy = true;
    r->req.data = r;
    if (uv_queue_work(t->loop, &r->req, retain_work, retain_after) < 0)
        r->busy = false;
}

struct retain *retain_start(uv_loop_t *loop, const struct retain_opts *o)
{
    if (o->runs_ms <= 0 && o->logs_ms <= 0)
        return NULL;
    struct retain *r = xcalloc(1, sizeof(*r));
    r->o = *o;
    uint64_t every = (uint64_t)(o->every_ms > 0 ? o->every_ms : 3600 * 1000);
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, retain_on_timer, 0, every);
    return r;
}

bool retain_busy(const struct retain *r)
{
    return r && r->busy;
}

void retain_stop(struct retain *r)
{
    if (r)
        uv_timer_stop(&r->timer);
}

static void retain_closed(uv_handle_t *h)
{
    free(h->data);
}

void retain_close(struct retain *r)
{
    if (!r)
        return;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, retain_closed);
}
