/*
 * events.c - the event log (events.h) in front of the backends: the records'
 * helpers, and each call forwarded to the store's backend (store_int.h), as
 * store.c does for the rest of the store. Threads: those of the store used.
 */
#include "store/events.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "store/store_int.h"

struct events_w {
    const struct store_backend *be; /* static */
    void *w;                        /* owned: the backend's prepared appends */
};

const char *event_kind_name(enum event_kind k)
{
    return k == EVENT_RUN ? "run" : "task_instance";
}

void event_rec_release(struct event_rec *e)
{
    free(e->dag_id);
    free(e->run_id);
    free(e->task_id);
    free(e->state);
    memset(e, 0, sizeof(*e));
}

void events_free(struct event_rec *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        event_rec_release(&v[i]);
    free(v);
}

int events_w_open(struct store *s, struct events_w **out, struct err *e)
{
    *out = NULL;
    const struct store_backend *be = store__backend(s);
    void *w = NULL;
    int r = be->events_w_open(store__conn(s), &w, e);
    if (r < 0)
        return r;
    struct events_w *ew = xcalloc(1, sizeof(*ew));
    ew->be = be;
    ew->w = w;
    *out = ew;
    return 0;
}

void events_w_close(struct events_w *w)
{
    if (!w)
        return;
    w->be->events_w_close(w->w);
    free(w);
}

int events_w_put(struct events_w *w, enum event_kind kind, const char *dag_id, const char *run_id,
                 const char *task_id, const char *state, int try_number, int64_t at_ms,
                 struct err *e)
{
    return w->be->events_w_put(w->w, kind, dag_id, run_id, task_id, state, try_number, at_ms, e);
}

int events_put(struct store *s, enum event_kind kind, const char *dag_id, const char *run_id,
               const char *task_id, const char *state, int try_number, int64_t at_ms, struct err *e)
{
    return store__backend(s)->events_put(store__conn(s), kind, dag_id, run_id, task_id, state,
                                         try_number, at_ms, e);
}

int events_w_flush(struct events_w *w, struct err *e)
{
    return w->be->events_w_flush ? w->be->events_w_flush(w->w, e) : 0;
}

int events_notify(struct store *s, const char *channel, struct err *e)
{
    const struct store_backend *be = store__backend(s);
    return be->notify ? be->notify(store__conn(s), channel, e) : -ENOTSUP;
}

int events_w_prune(struct events_w *w, struct err *e)
{
    return w->be->events_w_prune(w->w, EVENTS_KEEP, e);
}

int events_list(struct store *s, int64_t after_id, const char *dag_id, const char *run_id,
                size_t limit, struct event_rec **out, size_t *n, struct err *e)
{
    return store__backend(s)->events_list(store__conn(s), after_id, dag_id, run_id, limit, out, n,
                                          e);
}

int events_last_id(struct store *s, int64_t *id, struct err *e)
{
    return store__backend(s)->events_last_id(store__conn(s), id, e);
}

int events_count_tis(struct store *s, int64_t counts[TI_STATE_COUNT], struct err *e)
{
    for (int i = 0; i < TI_STATE_COUNT; i++)
        counts[i] = 0;
    return store__backend(s)->count_tis(store__conn(s), counts, e);
}

int events_count_runs(struct store *s, int64_t counts[RUN_STATE_COUNT], struct err *e)
{
    for (int i = 0; i < RUN_STATE_COUNT; i++)
        counts[i] = 0;
    return store__backend(s)->count_runs(store__conn(s), counts, e);
}
