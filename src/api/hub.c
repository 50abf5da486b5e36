/*
 * hub.c - the event hub (see hub.h): a pump thread filling a ring of SSE
 * frames from the store's event log, and subscribers reading it.
 *
 * The ring holds formatted frames ("id: N\nevent: KIND\ndata: {...}\n\n")
 * in id order; evicted_upto is the id of the newest frame dropped from it
 * (or the log's last id when the hub started): a subscriber whose position
 * is below it has missed frames the ring no longer has.
 */
#include "api/hub.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <uv.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "store/events.h"
#include "store/listen.h"
#include "store/store.h"

#define HUB_PAGE  1000        /* events read from the store per query */
#define HUB_CHUNK (64 * 1024) /* bytes of frames gathered per hub_read */

struct hub_frame {
    int64_t id;
    char *dag;  /* owned, may be NULL */
    char *run;  /* owned */
    char *text; /* owned: the whole SSE frame */
    size_t len;
};

struct hub {
    pthread_mutex_t mu;
    pthread_cond_t cond;    /* new frames, a subscriber, or stop */
    struct hub_frame *ring; /* cap slots */
    size_t cap, start, count;
    int64_t last_id;      /* the newest id read from the store */
    int64_t evicted_upto; /* frames with id <= this are not in the ring */
    size_t nsubs;
    bool stopping;
    /* The pump reads nothing while nobody listens, so its position goes stale: the first
     * subscriber after a quiet time asks it to jump to the log's end (resync_gen) and waits
     * until it has (synced_gen). */
    uint64_t resync_gen, synced_gen;
    bool stale;
    uint64_t bell; /* hub_notify calls: the pump reads at once when it moved */
    int poll_ms;   /* the pump reads this often when nobody calls hub_notify */
    char *store_url;
    struct store *store; /* the pump's */
    pthread_t thread;
    struct hub_sub *armed; /* subscribers waiting for something to read (hub_arm), a list */
    /* PostgreSQL: a thread whose loop LISTENs on baram_events (store/listen.h) and rings the
     * bell, so events committed by a scheduler in another process or host stream at once. */
    bool listening;
    pthread_t lthread;
    uv_loop_t lloop;
    uv_async_t lstop; /* asks the thread to stop its listener */
    struct listener *listener;
};

struct hub_sub {
    struct hub *h;
    int64_t last_id;     /* the last id delivered (or skipped by the filters) */
    char *dag, *run;     /* filters, owned, may be NULL */
    bool catchup;        /* resumed from an id: read what the ring lacks from the store */
    bool over;           /* the stream ends once pend is sent */
    struct store *store; /* for catching up, opened on need */
    char *pend;
    size_t pend_len, pend_off;
    int64_t sent_ms; /* monotonic time of the last bytes given (for keep-alives) */
    /* Armed (in h->armed, under h->mu): wake(wake_ud) is called once there may be something
     * to read, then the subscriber is disarmed. */
    void (*wake)(void *ud);
    void *wake_ud;
    struct hub_sub *armed_prev, *armed_next;
    bool is_armed;
};

/* The SSE frame of one event. */
static char *hub_format(const struct event_rec *e, size_t *len)
{
    char at[32];
    when_format_iso(e->at_ms, at, sizeof(at));
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(e->id));
    json_object_set_new(o, "type", json_string(event_kind_name(e->kind)));
    json_object_set_new(o, "dag", e->dag_id ? json_string(e->dag_id) : json_null());
    json_object_set_new(o, "run_id", json_string(e->run_id ? e->run_id : ""));
    if (e->kind == EVENT_TI) {
        json_object_set_new(o, "task_id", json_string(e->task_id ? e->task_id : ""));
        json_object_set_new(o, "try", json_integer(e->try_number));
    }
    json_object_set_new(o, "state", json_string(e->state ? e->state : ""));
    json_object_set_new(o, "at", json_string(at));
    char *data = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    char *text = xasprintf("id: %lld\nevent: %s\ndata: %s\n\n", (long long)e->id,
                           event_kind_name(e->kind), data ? data : "{}");
    free(data);
    *len = strlen(text);
    return text;
}

static void hub_frame_free(struct hub_frame *f)
{
    free(f->dag);
    free(f->run);
    free(f->text);
    memset(f, 0, sizeof(*f));
}

/* Disarms s (under mu). */
static void hub_disarm(struct hub *h, struct hub_sub *s)
{
    if (!s->is_armed)
        return;
    if (s->armed_prev)
        s->armed_prev->armed_next = s->armed_next;
    else
        h->armed = s->armed_next;
    if (s->armed_next)
        s->armed_next->armed_prev = s->armed_prev;
    s->armed_prev = s->armed_next = NULL;
    s->is_armed = false;
}

/* Wakes the armed subscribers (under mu): all of them, or those whose keep-alive is due. */
static void hub_wake(struct hub *h, bool all)
{
    int64_t now = when_mono_ms();
    for (struct hub_sub *s = h->armed, *next; s; s = next) {
        next = s->armed_next;
        if (!all && now - s->sent_ms < HUB_KEEPALIVE_MS)
            continue;
        hub_disarm(h, s);
        s->wake(s->wake_ud);
    }
}

/* Appends read events to the ring (under mu). */
static void hub_append(struct hub *h, const struct event_rec *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (h->count == h->cap) {
            struct hub_frame *old = &h->ring[h->start];
            h->evicted_upto = old->id;
            hub_frame_free(old);
            h->start = (h->start + 1) % h->cap;
            h->count--;
        }
        struct hub_frame *f = &h->ring[(h->start + h->count) % h->cap];
        f->id = v[i].id;
        f->dag = v[i].dag_id ? xstrdup(v[i].dag_id) : NULL;
        f->run = xstrdup(v[i].run_id ? v[i].run_id : "");
        f->text = hub_format(&v[i], &f->len);
        h->count++;
        h->last_id = v[i].id;
    }
}

/* The pump's wait between reads (under mu): until hub_notify moves the bell past seen, a
 * resync (the first subscriber after a quiet time) or a stop is asked, or poll_ms pass. */
static void hub_pause(struct hub *h, uint64_t seen)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += h->poll_ms / 1000;
    until.tv_nsec += (long)(h->poll_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (h->bell == seen && !h->stopping && h->resync_gen == h->synced_gen)
        if (pthread_cond_timedwait(&h->cond, &h->mu, &until) == ETIMEDOUT)
            break;
}

static void *hub_pump(void *arg)
{
    struct hub *h = arg;
    struct err se; /* on this thread's stack (the default, 8 MiB) */
    se.code = 0;
    for (;;) {
        pthread_mutex_lock(&h->mu);
        while (h->nsubs == 0 && !h->stopping)
            pthread_cond_wait(&h->cond, &h->mu); /* nobody listens: no reads at all */
        bool stop = h->stopping;
        uint64_t seen = h->bell; /* a notify from now on is read by the next round */
        uint64_t want_sync = h->resync_gen != h->synced_gen ? h->resync_gen : 0;
        int64_t after = h->last_id;
        pthread_mutex_unlock(&h->mu);
        if (stop)
            break;
        if (want_sync) {
            int64_t end = after;
            if (events_last_id(h->store, &end, NULL) < 0)
                end = after;
            pthread_mutex_lock(&h->mu);
            for (size_t i = 0; i < h->count; i++)
                hub_frame_free(&h->ring[(h->start + i) % h->cap]);
            h->start = h->count = 0;
            h->last_id = h->evicted_upto = end;
            h->synced_gen = want_sync;
            pthread_cond_broadcast(&h->cond);
            pthread_mutex_unlock(&h->mu);
            continue;
        }
        struct event_rec *v = NULL;
        size_t n = 0;
        int lr = events_list(h->store, after, NULL, NULL, HUB_PAGE, &v, &n, &se);
        if (lr < 0) {
            if (lr != -EAGAIN) /* else appenders still at it: read again at the next round */
                log_warn("event hub cannot read the event log", "err=%s", log_q(err_msg(&se)));
            n = 0;
        }
        pthread_mutex_lock(&h->mu);
        if (n > 0) {
            hub_append(h, v, n);
            pthread_cond_broadcast(&h->cond);
        }
        hub_wake(h, n > 0); /* new frames: everyone; else those owed a keep-alive */
        if (n < HUB_PAGE)   /* else more to read at once */
            hub_pause(h, seen);
        pthread_mutex_unlock(&h->mu);
        events_free(v, n);
    }
    return NULL;
}

/* ---- the listener's thread (PostgreSQL) ---- */

static void hub_on_events(void *ud, const char *channel)
{
    (void)channel;
    hub_notify(ud);
}

static void hub_on_relisten(void *ud)
{
    hub_notify(ud); /* events may have committed while nobody listened */
}

static void hub_lstop(uv_async_t *a)
{
    struct hub *h = a->data;
    listen_stop(h->listener);
    h->listener = NULL;
    uv_close((uv_handle_t *)a, NULL);
}

static void *hub_lmain(void *arg)
{
    struct hub *h = arg;
    uv_run(&h->lloop, UV_RUN_DEFAULT);
    return NULL;
}

/* Starts listening when the store has notifications: 0 (listening or nothing to listen to),
 * or a negative code with *e filled. */
static int hub_listen(struct hub *h, struct err *e)
{
    if (!listen_url_is_pg(h->store_url))
        return 0;
    int r = uv_loop_init(&h->lloop);
    if (r < 0)
        return err_set(e, r, "cannot start the event hub's listener: %s", uv_strerror(r));
    uv_async_init(&h->lloop, &h->lstop, hub_lstop);
    h->lstop.data = h;
    const char *channels[] = {EVENTS_CHANNEL_EVENTS};
    r = listen_start(&h->lloop, h->store_url, channels, 1, hub_on_events, hub_on_relisten, h,
                     &h->listener, e);
    if (r == 0 && (r = -pthread_create(&h->lthread, NULL, hub_lmain, h)) < 0)
        (void)err_set(e, r, "cannot start the event hub's listener: %s", strerror(-r));
    if (r < 0) {
        listen_stop(h->listener);
        h->listener = NULL;
        uv_close((uv_handle_t *)&h->lstop, NULL);
        uv_run(&h->lloop, UV_RUN_DEFAULT); /* the handles close */
        uv_loop_close(&h->lloop);
        return r;
    }
    h->listening = true;
    return 0;
}

static void hub_unlisten(struct hub *h)
{
    if (!h->listening)
        return;
    h->listening = false;
    uv_async_send(&h->lstop);
    pthread_join(h->lthread, NULL);
    uv_loop_close(&h->lloop);
}

int hub_start(const char *store_url, struct hub **out, struct err *e)
{
    struct hub *h = xcalloc(1, sizeof(*h));
    h->store_url = xstrdup(store_url);
    int rc = store_open(store_url, &h->store, e);
    if (rc < 0) {
        free(h->store_url);
        free(h);
        return rc;
    }
    struct err se = {0};
    if ((rc = events_last_id(h->store, &h->last_id, &se)) < 0) {
        (void)err_set(e, rc, "cannot read the event log: %s", err_msg(&se));
        store_close(h->store);
        free(h->store_url);
        free(h);
        return rc;
    }
    h->evicted_upto = h->last_id;
    h->stale = true; /* the pump reads only while someone listens */
    h->cap = HUB_RING;
    const char *env = getenv("BARAM_EVENTS_RING"); /* tests: a small ring overflows soon */
    int64_t cap;
    if (env && parse_int64(env, 16, 1000000, &cap) == 0)
        h->cap = (size_t)cap;
    h->ring = xcalloc(h->cap, sizeof(*h->ring));
    h->poll_ms = HUB_POLL_MS;
    env = getenv("BARAM_EVENTS_POLL_MS"); /* tests: a poll too slow to hide a missed notify */
    int64_t poll;
    if (env && parse_int64(env, 1, 3600000, &poll) == 0)
        h->poll_ms = (int)poll;
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cond, &a);
    pthread_condattr_destroy(&a);
    if ((rc = pthread_create(&h->thread, NULL, hub_pump, h)) != 0) {
        (void)err_set(e, -rc, "cannot start the event hub: %s", strerror(rc));
        store_close(h->store);
        free(h->ring);
        free(h->store_url);
        free(h);
        return -rc;
    }
    if ((rc = hub_listen(h, e)) < 0) {
        hub_stop(h);
        return rc;
    }
    *out = h;
    return 0;
}

void hub_close(struct hub *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_broadcast(&h->cond);
    hub_wake(h, true); /* their streams end */
    pthread_mutex_unlock(&h->mu);
}

void hub_notify(struct hub *h)
{
    pthread_mutex_lock(&h->mu);
    h->bell++;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->mu);
}

void hub_stop(struct hub *h)
{
    if (!h)
        return;
    hub_unlisten(h);
    hub_close(h);
    pthread_join(h->thread, NULL);
    /* Subscribers still reading see 'stopping' and end; their owner frees them. */
    for (size_t i = 0; i < h->count; i++)
        hub_frame_free(&h->ring[(h->start + i) % h->cap]);
    free(h->ring);
    store_close(h->store);
    pthread_mutex_lock(&h->mu);
    size_t left = h->nsubs;
    pthread_mutex_unlock(&h->mu);
    if (left == 0) {
        pthread_cond_destroy(&h->cond);
        pthread_mutex_destroy(&h->mu);
        free(h->store_url);
        free(h);
    } else {
        /* The server stops its connections before the hub; should one remain, leak the small
         * hub rather than free a mutex in use. */
        log_warn("event hub stopped with subscribers left", "n=%zu", left);
    }
}

struct hub_sub *hub_subscribe(struct hub *h, int64_t last_id, const char *dag, const char *run)
{
    struct hub_sub *s = xcalloc(1, sizeof(*s));
    s->h = h;
    s->sent_ms = when_mono_ms();
    s->dag = dag ? xstrdup(dag) : NULL;
    s->run = run ? xstrdup(run) : NULL;
    pthread_mutex_lock(&h->mu);
    h->nsubs++;
    if (h->nsubs == 1 && h->stale) {
        h->resync_gen++;
        h->stale = false;
        pthread_cond_broadcast(&h->cond); /* the pump wakes and jumps to the log's end */
    }
    /* Every subscriber arriving before that jump is done waits for it, not just the first. */
    while (h->synced_gen < h->resync_gen && !h->stopping)
        pthread_cond_wait(&h->cond, &h->mu);
    if (last_id < 0 || last_id > h->last_id) {
        s->last_id = h->last_id;
    } else {
        s->last_id = last_id;
        s->catchup = true;
    }
    pthread_cond_broadcast(&h->cond); /* the pump starts reading */
    pthread_mutex_unlock(&h->mu);
    return s;
}

void hub_unsubscribe(struct hub_sub *s)
{
    if (!s)
        return;
    struct hub *h = s->h;
    pthread_mutex_lock(&h->mu);
    hub_disarm(h, s);
    if (--h->nsubs == 0)
        h->stale = true; /* the pump stops reading: its position will be old */
    pthread_mutex_unlock(&h->mu);
    if (s->store)
        store_close(s->store);
    free(s->pend);
    free(s->dag);
    free(s->run);
    free(s);
}

size_t hub_subscribers(struct hub *h)
{
    pthread_mutex_lock(&h->mu);
    size_t n = h->nsubs;
    pthread_mutex_unlock(&h->mu);
    return n;
}

static bool hub_match(const struct hub_sub *s, const char *dag, const char *run)
{
    if (s->dag && (!dag || strcmp(s->dag, dag) != 0))
        return false;
    if (s->run && (!run || strcmp(s->run, run) != 0))
        return false;
    return true;
}

static ssize_t hub_give(struct hub_sub *s, char *buf, size_t max)
{
    size_t n = s->pend_len - s->pend_off;
    if (n > max)
        n = max;
    memcpy(buf, s->pend + s->pend_off, n);
    s->pend_off += n;
    s->sent_ms = when_mono_ms();
    if (s->pend_off == s->pend_len) {
        free(s->pend);
        s->pend = NULL;
        s->pend_len = s->pend_off = 0;
    }
    return (ssize_t)n;
}

static void hub_set_pend(struct hub_sub *s, struct buf *b)
{
    s->pend = buf_detach(b, &s->pend_len);
    s->pend_off = 0;
}

/* Catching up from the store (outside the lock): one page after s->last_id. 1 (frames in
 * s->pend), 0 (nothing left in the store after it), 2 (nothing final yet: again later), -1. */
static int hub_catchup(struct hub_sub *s)
{
    if (!s->store) {
        if (store_open(s->h->store_url, &s->store, NULL) < 0)
            return -1;
    }
    struct event_rec *v = NULL;
    size_t n = 0;
    int lr = events_list(s->store, s->last_id, s->dag, s->run, 500, &v, &n, NULL);
    if (lr == -EAGAIN)
        return 2;
    if (lr < 0)
        return -1;
    struct buf b = BUF_INIT(BUF_NO_MAX);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        char *t = hub_format(&v[i], &len);
        (void)!buf_add(&b, t, len);
        free(t);
        s->last_id = v[i].id;
    }
    events_free(v, n);
    if (n == 0) {
        s->catchup = false; /* the store has nothing older left for us: the ring takes over */
        buf_release(&b);
        return 0;
    }
    hub_set_pend(s, &b);
    return 1;
}

ssize_t hub_read(struct hub_sub *s, char *buf, size_t max)
{
    if (s->pend)
        return hub_give(s, buf, max);
    if (s->over)
        return -1;
    struct hub *h = s->h;
    for (;;) {
        pthread_mutex_lock(&h->mu);
        if (h->stopping) {
            pthread_mutex_unlock(&h->mu);
            return -1;
        }
        if (s->last_id < h->evicted_upto) {
            pthread_mutex_unlock(&h->mu);
            if (s->catchup) {
                int r = hub_catchup(s);
                if (r == 1)
                    return hub_give(s, buf, max);
                if (r == 2)
                    return 0; /* read again soon: it is never skipped */
                if (r < 0)
                    return -1;
                /* nothing in the store after our id (pruned?): skip to the ring */
                pthread_mutex_lock(&h->mu);
                if (s->last_id < h->evicted_upto)
                    s->last_id = h->evicted_upto;
                pthread_mutex_unlock(&h->mu);
                continue;
            }
            struct buf b = BUF_INIT(BUF_NO_MAX);
            (void)!buf_addf(&b,
                            "event: overflow\ndata: {\"reason\":\"this client fell more than %zu "
                            "events behind; reconnect with Last-Event-ID: %lld\"}\n\n",
                            h->cap, (long long)s->last_id);
            hub_set_pend(s, &b);
            s->over = true;
            return hub_give(s, buf, max);
        }
        s->catchup = false;
        /* frames after s->last_id: binary search on the ring's ids */
        size_t lo = 0, hi = h->count;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (h->ring[(h->start + mid) % h->cap].id <= s->last_id)
                lo = mid + 1;
            else
                hi = mid;
        }
        struct buf b = BUF_INIT(BUF_NO_MAX);
        for (size_t i = lo; i < h->count && b.len < HUB_CHUNK; i++) {
            const struct hub_frame *f = &h->ring[(h->start + i) % h->cap];
            if (hub_match(s, f->dag, f->run))
                (void)!buf_add(&b, f->text, f->len);
            s->last_id = f->id;
        }
        pthread_mutex_unlock(&h->mu);
        if (b.len > 0) {
            hub_set_pend(s, &b);
            return hub_give(s, buf, max);
        }
        buf_release(&b);
        if (when_mono_ms() - s->sent_ms >= HUB_KEEPALIVE_MS) {
            struct buf k = BUF_INIT(64);
            (void)!buf_adds(&k, ": keep-alive\n\n");
            hub_set_pend(s, &k);
            return hub_give(s, buf, max);
        }
        return 0;
    }
}

bool hub_arm(struct hub_sub *s, void (*wake)(void *ud), void *ud)
{
    struct hub *h = s->h;
    if (s->pend || s->over)
        return false;
    pthread_mutex_lock(&h->mu);
    bool ready = h->stopping || h->last_id > s->last_id || s->last_id < h->evicted_upto ||
                 when_mono_ms() - s->sent_ms >= HUB_KEEPALIVE_MS;
    if (!ready && !s->is_armed) {
        s->wake = wake;
        s->wake_ud = ud;
        s->armed_prev = NULL;
        s->armed_next = h->armed;
        if (h->armed)
            h->armed->armed_prev = s;
        h->armed = s;
        s->is_armed = true;
    }
    pthread_mutex_unlock(&h->mu);
    return !ready;
}
