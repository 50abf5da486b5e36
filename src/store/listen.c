/*
 * listen.c - the PostgreSQL listener (see listen.h).
 *
 * States: connecting (a job on the thread pool: pg__connect, then LISTEN on
 * each channel, blocking there), listening (the connection is the loop's,
 * non-blocking, its socket on a uv_poll), waiting to retry (the timer).
 * The timer also paces the checks while listening: every LISTEN_CHECK_MS a
 * `SELECT count(*) FROM pg_listening_channels()` is sent; its answer must
 * come within LISTEN_CHECK_WAIT_MS and count every channel, else the
 * connection counts as lost.
 *
 * Ownership: the listener owns its connection and its handles. The poll
 * handle is made per connection (on its socket) and freed by its close
 * callback. listen_stop marks it stopping; it frees itself once its timer,
 * its poll handle and a connect job in flight are all done (pending).
 */
#include "store/listen.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/xalloc.h"
#include "store/pg_int.h"
#include "store/store.h"

struct listener {
    uv_loop_t *loop;
    char *url;
    char **channels;
    size_t nchannels;
    listen_notify_fn on_notify;
    listen_resync_fn on_resync;
    void *ud;
    char where[PG_WHERE_MAX];

    uv_timer_t timer; /* retry backoff, or the next check / the check's deadline */
    uv_poll_t *poll;  /* on the connection's socket while listening */
    PGconn *pg;       /* while listening */
    bool checking;    /* a check was sent, its answer not yet read */
    int check_ms, check_wait_ms;
    bool flushing; /* output waits for the socket to be writable */
    int retry_ms;
    bool lost_said; /* the outage was logged (once per outage) */

    bool connecting; /* a connect job is in flight */
    uv_work_t work;
    PGconn *job_pg; /* the job's result */
    char *job_err;  /* or why it failed, owned */
    bool stopping;
    int pending; /* handles closing and jobs in flight, before the free */
};

bool listen_url_is_pg(const char *url)
{
    return strcmp(store_url_backend(url), "postgresql") == 0;
}

static void listen_connect(struct listener *l);
static void listen_lost(struct listener *l, const char *why);

static void listen_free(struct listener *l)
{
    for (size_t i = 0; i < l->nchannels; i++)
        free(l->channels[i]);
    free(l->channels);
    free(l->url);
    free(l);
}

static void listen_unpend(struct listener *l)
{
    if (--l->pending == 0 && l->stopping)
        listen_free(l);
}

static void listen_timer_closed(uv_handle_t *h)
{
    listen_unpend(h->data);
}

static void listen_poll_closed(uv_handle_t *h)
{
    struct listener *l = h->data;
    free(h);
    listen_unpend(l);
}

/* Drops the connection: its poll handle closes, the connection is finished. */
static void listen_drop(struct listener *l)
{
    if (l->poll) {
        uv_poll_stop(l->poll);
        l->pending++;
        uv_close((uv_handle_t *)l->poll, listen_poll_closed);
        l->poll = NULL;
    }
    if (l->pg) {
        PQfinish(l->pg);
        l->pg = NULL;
    }
    l->checking = l->flushing = false;
}

/* ---- connecting, on the thread pool ---- */

static void listen_job(uv_work_t *w)
{
    struct listener *l = w->data;
    struct err e;
    e.code = 0;
    PGconn *pg = NULL;
    if (pg__connect(l->url, &pg, &e) < 0) {
        l->job_err = xstrdup(err_msg(&e));
        return;
    }
    for (size_t i = 0; i < l->nchannels; i++) {
        char *id = PQescapeIdentifier(pg, l->channels[i], strlen(l->channels[i]));
        char *sql = xasprintf("LISTEN %s", id ? id : "\"\"");
        PQfreemem(id);
        int r = pg__exec(pg, sql, "listen for wake-ups", &e);
        free(sql);
        if (r < 0) {
            l->job_err = xstrdup(err_msg(&e));
            PQfinish(pg);
            return;
        }
    }
    l->job_pg = pg;
}

static void listen_on_poll(uv_poll_t *h, int status, int events);
static void listen_on_timer(uv_timer_t *t);

static void listen_poll_events(struct listener *l)
{
    if (l->poll)
        uv_poll_start(l->poll, UV_READABLE | (l->flushing ? UV_WRITABLE : 0), listen_on_poll);
}

static void listen_job_done(uv_work_t *w, int status)
{
    struct listener *l = w->data;
    l->connecting = false;
    PGconn *pg = l->job_pg;
    char *why = l->job_err;
    l->job_pg = NULL;
    l->job_err = NULL;
    if (l->stopping) {
        if (pg)
            PQfinish(pg);
        free(why);
        listen_unpend(l);
        return;
    }
    l->pending--; /* not stopping: never the last one (the timer is open) */
    if (status < 0 || !pg) {
        if (!l->lost_said) {
            l->lost_said = true;
            log_warn("cannot listen for wake-ups from PostgreSQL; trying again", "db=%s error=%s",
                     log_q(l->where), log_q(why ? why : "cancelled"));
        }
        free(why);
        uv_timer_start(&l->timer, listen_on_timer, (uint64_t)l->retry_ms, 0);
        l->retry_ms = l->retry_ms * 2 > LISTEN_RETRY_MAX_MS ? LISTEN_RETRY_MAX_MS : l->retry_ms * 2;
        return;
    }
    free(why);
    l->poll = xcalloc(1, sizeof(*l->poll));
    if (PQsetnonblocking(pg, 1) != 0 || uv_poll_init(l->loop, l->poll, PQsocket(pg)) < 0) {
        free(l->poll);
        l->poll = NULL;
        PQfinish(pg);
        listen_lost(l, "cannot poll the connection's socket");
        return;
    }
    l->poll->data = l;
    l->pg = pg;
    if (l->lost_said)
        log_info("listening for wake-ups from PostgreSQL again", "db=%s", log_q(l->where));
    l->lost_said = false;
    l->retry_ms = LISTEN_RETRY_MIN_MS;
    listen_poll_events(l);
    uv_timer_start(&l->timer, listen_on_timer, (uint64_t)l->check_ms, 0);
    l->on_resync(l->ud); /* anything before the LISTEN went unheard */
}

static void listen_connect(struct listener *l)
{
    l->connecting = true;
    l->pending++;
    l->work.data = l;
    int r = uv_queue_work(l->loop, &l->work, listen_job, listen_job_done);
    if (r < 0) {
        l->connecting = false;
        l->pending--;
        uv_timer_start(&l->timer, listen_on_timer, (uint64_t)l->retry_ms, 0);
    }
}

/* The connection is gone (or useless): drop it, say so once, and reconnect after a pause. */
static void listen_lost(struct listener *l, const char *why)
{
    listen_drop(l);
    if (!l->lost_said) {
        l->lost_said = true;
        log_warn("lost the PostgreSQL connection listening for wake-ups; reconnecting",
                 "db=%s error=%s", log_q(l->where), log_q(why));
    }
    uv_timer_start(&l->timer, listen_on_timer, (uint64_t)l->retry_ms, 0);
}

/* ---- listening ---- */

/* Reads what arrived: the check's answer, notifications. 0, or -1 when the connection is lost
 * (handled). */
static int listen_read(struct listener *l)
{
    char why[512];
    if (!PQconsumeInput(l->pg) || PQstatus(l->pg) == CONNECTION_BAD) {
        snprintf(why, sizeof why, "%s", PQerrorMessage(l->pg));
        why[strcspn(why, "\n")] = '\0';
        listen_lost(l, why[0] ? why : "connection closed");
        return -1;
    }
    while (!PQisBusy(l->pg)) {
        PGresult *r = PQgetResult(l->pg);
        if (!r)
            break;
        bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
                  strtoull(PQgetvalue(r, 0, 0), NULL, 10) >= l->nchannels;
        PQclear(r);
        if (!l->checking)
            continue;
        l->checking = false;
        if (!ok) {
            listen_lost(l, "the connection no longer listens to its channels");
            return -1;
        }
        uv_timer_start(&l->timer, listen_on_timer, (uint64_t)l->check_ms, 0);
    }
    PGnotify *n;
    while (l->pg && (n = PQnotifies(l->pg))) {
        l->on_notify(l->ud, n->relname);
        PQfreemem(n);
    }
    return 0;
}

static void listen_flush(struct listener *l)
{
    int f = PQflush(l->pg);
    if (f < 0) {
        listen_lost(l, "cannot send to PostgreSQL");
        return;
    }
    bool want = f == 1;
    if (want != l->flushing) {
        l->flushing = want;
        listen_poll_events(l);
    }
}

static void listen_on_poll(uv_poll_t *h, int status, int events)
{
    struct listener *l = h->data;
    if (l->stopping || !l->pg || h != l->poll)
        return;
    if (status < 0) {
        listen_lost(l, uv_strerror(status));
        return;
    }
    if ((events & UV_WRITABLE) && l->flushing) {
        listen_flush(l);
        if (!l->pg)
            return;
    }
    if (events & UV_READABLE)
        (void)listen_read(l);
}

static void listen_on_timer(uv_timer_t *t)
{
    struct listener *l = t->data;
    if (l->stopping)
        return;
    if (!l->pg) {
        if (!l->connecting)
            listen_connect(l);
        return;
    }
    if (l->checking) {
        listen_lost(l, "no answer to a check in time (a half-open connection?)");
        return;
    }
    if (!PQsendQuery(l->pg, "SELECT count(*) FROM pg_listening_channels()")) {
        listen_lost(l, "cannot send a check");
        return;
    }
    l->checking = true;
    uv_timer_start(&l->timer, listen_on_timer, (uint64_t)l->check_wait_ms, 0);
    listen_flush(l);
}

int listen_start(uv_loop_t *loop, const char *url, const char *const *channels, size_t n,
                 listen_notify_fn on_notify, listen_resync_fn on_resync, void *ud,
                 struct listener **out, struct err *e)
{
    *out = NULL;
    if (!listen_url_is_pg(url))
        return -ENOTSUP;
    struct listener *l = xcalloc(1, sizeof(*l));
    l->loop = loop;
    l->url = xstrdup(url);
    l->channels = xcalloc(n ? n : 1, sizeof(*l->channels));
    for (size_t i = 0; i < n; i++)
        l->channels[i] = xstrdup(channels[i]);
    l->nchannels = n;
    l->on_notify = on_notify;
    l->on_resync = on_resync;
    l->ud = ud;
    l->retry_ms = LISTEN_RETRY_MIN_MS;
    l->check_ms = LISTEN_CHECK_MS;
    l->check_wait_ms = LISTEN_CHECK_WAIT_MS;
    const char *env = getenv("BARAM_LISTEN_CHECK_MS"); /* tests: find a dead peer sooner */
    int64_t v;
    if (env && parse_int64(env, 100, 3600000, &v) == 0) {
        l->check_ms = (int)v;
        l->check_wait_ms = (int)(v / 2 < LISTEN_CHECK_WAIT_MS ? v / 2 : LISTEN_CHECK_WAIT_MS);
    }
    pg__where(url, l->where, sizeof l->where);
    int r = uv_timer_init(loop, &l->timer);
    if (r < 0) {
        listen_free(l);
        return err_set(e, r, "cannot listen for wake-ups: %s", uv_strerror(r));
    }
    l->timer.data = l;
    l->pending = 1; /* the timer, closed by listen_stop */
    listen_connect(l);
    *out = l;
    return 0;
}

void listen_stop(struct listener *l)
{
    if (!l || l->stopping)
        return;
    l->stopping = true;
    listen_drop(l);
    uv_timer_stop(&l->timer);
    if (l->connecting)
        (void)uv_cancel((uv_req_t *)&l->work); /* else its done callback frees what it made */
    uv_close((uv_handle_t *)&l->timer, listen_timer_closed);
}
