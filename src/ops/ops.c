/*
 * ops.c - trigger, backfill, pause, cancel, clear and pool size as
 * functions on an open store (see ops.h), shared by the CLI and the API.
 *
 * Key idea: a request is rows in the store, written in one transaction,
 * then the doorbell; the scheduler (when one runs) is the only one that
 * acts on them, except for cancel and clear, which write the outcome
 * themselves when no scheduler holds the home's lock (cancel) or the run
 * has ended (clear: nobody else touches an ended run).
 *
 * Messages are built here word for word as the CLI printed them before the
 * move (tests/e2e compare them); the API shows them as the problem detail.
 * Any thread, on the caller's store; everything returned is malloc'd.
 */
#include "ops/ops.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/diag.h"
#include "base/err.h"
#include "base/suggest.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "dag/dag.h"
#include "dag/params.h"
#include "dag/plan.h"
#include "ops/audit.h"
#include "ops/dagdir.h"
#include "ops/schedlock.h"
#include "sched/run.h"
#include "sched/sched.h"
#include "store/events.h"
#include "store/store.h"

#define CANCEL_POLL_MS 20
#define SUGGEST_RUNS   1000

/* ---- errors ---- */

static const char *const kind_names[] = {
#define X(name, text) text,
    OPS_KIND_TABLE(X)
#undef X
};

const char *ops_kind_name(enum ops_kind k)
{
    return (size_t)k < sizeof kind_names / sizeof kind_names[0] ? kind_names[k] : "?";
}

void ops_err_release(struct ops_err *e)
{
    if (!e)
        return;
    free(e->diag);
    free(e->detail);
    free(e->suggest);
    memset(e, 0, sizeof *e);
}

void ops_err_print(const struct ops_err *e, FILE *f, const char *cmd)
{
    const char *p = e->err.msg;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        fprintf(f, "baram %s: %.*s\n", cmd, len, p);
        p = nl ? nl + 1 : NULL;
    }
    if (e->diag)
        fputs(e->diag, f);
}

/* Sets e (replacing what it held) and returns code. A message past ERR_MSG_MAX - 1 bytes is
 * cut there. */
static int PRINTF_LIKE(4, 5)
    fail(struct ops_err *e, enum ops_kind kind, int code, const char *fmt, ...)
{
    ops_err_release(e);
    e->kind = kind;
    e->err.code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->err.msg, sizeof e->err.msg, fmt, ap);
    va_end(ap);
    return code;
}

/* A store call's failure, which it wrote into e->err, as OPS_STORE: ERR_DB. */
/* Wakes the schedulers after a change they act on (a request, a new run, a pause, a pool):
 * NOTIFY baram_wake where the store has notifications (PostgreSQL: schedulers on any host
 * listen), else the home's doorbell. A lost wake-up costs at most their periodic look. */
static void ops_ring(struct store *s, const char *home_dir)
{
    if (events_notify(s, EVENTS_CHANNEL_WAKE, NULL) == -ENOTSUP)
        schedlock_ring(home_dir);
}

static int fail_store(struct ops_err *e)
{
    struct err keep = e->err;
    ops_err_release(e);
    e->kind = OPS_STORE;
    return err_set(&e->err, ERR_DB, "%s", keep.code ? err_msg(&keep) : err_str(ERR_DB));
}

/* The diagnostics as diag_print writes them, malloc'd. */
static char *diag_text(const struct diag *d)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    for (size_t i = 0; i < d->n; i++) {
        char *line = diag_format(&d->v[i]);
        (void)!buf_addf(&b, "%s\n", line);
        free(line);
    }
    return buf_detach(&b, NULL);
}

/* The problems of d without their positions (see ops_err.detail). */
static char *diag_detail(const struct diag *d)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    for (size_t i = 0; i < d->n; i++) {
        const struct diag_entry *x = &d->v[i];
        char *msg = diag_message(x);
        (void)!buf_addf(&b, "%s%s: %s", i ? "; " : "", diag_level_name(x->level), msg);
        free(msg);
    }
    return buf_detach(&b, NULL);
}

void ops_names_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- conf ---- */

int ops_conf_check(const json_t *conf, const char *label, struct ops_err *e)
{
    if (!conf)
        return 0;
    if (!json_is_object(conf))
        return fail(e, OPS_BAD_INPUT, -EINVAL,
                    "%s must be a JSON object of params, like '{\"name\": \"value\"}'", label);
    /* One line per bad value, whole lines only: past ERR_MSG_MAX, the rest are counted. */
    struct buf b = BUF_INIT(sizeof e->err.msg - 64);
    size_t more = 0;
    const char *name;
    json_t *val;
    json_object_foreach((json_t *)conf, name, val)
    {
        if (!json_is_null(val)) /* arrays and objects: for typed params (params_check) */
            continue;
        if (more || buf_addf(&b, "%s%s param '%s' must be a string, number or boolean, not null",
                             b.len ? "\n" : "", label, name) < 0)
            more++;
    }
    if (b.len == 0 && more == 0) {
        buf_release(&b);
        return 0;
    }
    if (more)
        fail(e, OPS_BAD_INPUT, -EINVAL, "%s%s(%zu more not shown)", b.data, b.len ? "\n" : "",
             more);
    else
        fail(e, OPS_BAD_INPUT, -EINVAL, "%s", b.data);
    buf_release(&b);
    return -EINVAL;
}

int ops_conf_parse(const char *text, const char *label, json_t **out, struct ops_err *e)
{
    *out = NULL;
    if (!text)
        return 0;
    json_error_t jerr;
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!o)
        return fail(e, OPS_BAD_INPUT, -EINVAL, "%s is not valid JSON: %s (at character %d)", label,
                    jerr.text, jerr.position);
    if (ops_conf_check(o, label, e) < 0) {
        json_decref(o);
        return -EINVAL;
    }
    *out = o;
    return 0;
}

/* The params of a checked conf: names and values point into *holder (json_decref it). */
static void conf_params(const json_t *conf, json_t **holder, struct params_override **out,
                        size_t *n)
{
    *holder = json_object();
    *out = xcalloc((conf ? json_object_size(conf) : 0) + 1, sizeof **out);
    *n = 0;
    if (!conf)
        return;
    const char *name;
    json_t *val;
    json_object_foreach((json_t *)conf, name, val)
    {
        char *text = json_is_string(val) ? xstrdup(json_string_value(val))
                     : json_is_boolean(val)
                         ? xstrdup(json_is_true(val) ? "true" : "false")
                         : json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT | PARAMS_JSON_REALS);
        json_object_set_new(*holder, name, json_string(text ? text : ""));
        free(text);
    }
    json_object_foreach(*holder, name, val)
    {
        (*out)[*n].name = name;
        (*out)[*n].value = json_string_value(val);
        (*out)[*n].from =
            json_is_string(json_object_get(conf, name)) ? PARAMS_FROM_STRING : PARAMS_FROM_JSON;
        (*n)++;
    }
}

/* ---- the DAG folder ---- */

struct folder {
    struct dagdir_file *files; /* owned */
    size_t nfiles;
};

static void folder_release(struct folder *f)
{
    dagdir_free_files(f->files, f->nfiles);
    memset(f, 0, sizeof *f);
}

static int folder_scan(struct folder *f, const char *dir, struct ops_err *e)
{
    memset(f, 0, sizeof *f);
    struct err se = {0};
    int r = dagdir_scan(dir, &f->files, &f->nfiles, &se);
    if (r < 0)
        fail(e, OPS_UNAVAILABLE, r, "%s", se.msg[0] ? se.msg : "cannot read the DAG folder");
    return r;
}

static const struct dagdir_file *folder_find(const struct folder *f, const char *dag_id)
{
    for (size_t i = 0; i < f->nfiles; i++)
        if (f->files[i].dag && strcmp(f->files[i].dag->id, dag_id) == 0)
            return &f->files[i];
    return NULL;
}

/* Whether path is a file directly in dir (both as given, or both resolved). */
static bool folder_holds(const char *dir, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return false;
    char *parent = xstrndup(path, (size_t)(slash - path));
    char *a = realpath(parent, NULL), *b = realpath(dir, NULL);
    bool same = a && b && strcmp(a, b) == 0;
    free(a);
    free(b);
    free(parent);
    return same;
}

/* The DAG dag_id's file in dir: through the path the scheduler recorded for it (one file
 * parsed, whatever the size of the folder), else by scanning the whole folder (a DAG never
 * recorded, moved to another file, or a folder other than the scheduler's). 0 with *file
 * (borrowed from f), or what ops_no_dag or folder_scan return, with e. */
static int folder_find_dag(struct folder *f, struct store *s, const char *dir, const char *dag_id,
                           const struct dagdir_file **file, struct ops_err *e)
{
    memset(f, 0, sizeof *f);
    struct dag_rec rec;
    if (store_get_dag(s, dag_id, &rec, NULL) == 0) {
        if (rec.path && folder_holds(dir, rec.path) && dagdir_load(rec.path, &f->files) == 0) {
            f->nfiles = 1;
            if (f->files[0].dag && strcmp(f->files[0].dag->id, dag_id) == 0) {
                dag_rec_release(&rec);
                *file = &f->files[0];
                return 0;
            }
            folder_release(f);
        }
        dag_rec_release(&rec);
    }
    int r = folder_scan(f, dir, e);
    if (r < 0)
        return r;
    *file = folder_find(f, dag_id);
    return *file ? 0 : ops_no_dag(s, f->files, f->nfiles, dir, dag_id, e);
}

int ops_no_dag(struct store *s, const struct dagdir_file *files, size_t nfiles, const char *dir,
               const char *dag_id, struct ops_err *e)
{
    struct dag_rec *recs = NULL;
    size_t nrecs = 0;
    if (s && store_list_dags(s, &recs, &nrecs, NULL) < 0)
        nrecs = 0;
    const char **ids = xcalloc(nfiles + nrecs + 1, sizeof *ids);
    size_t n = 0;
    for (size_t i = 0; i < nfiles; i++)
        if (files[i].dag)
            ids[n++] = files[i].dag->id;
    const char *failed_path = NULL;
    for (size_t i = 0; i < nrecs; i++) {
        ids[n++] = recs[i].dag_id;
        if (strcmp(recs[i].dag_id, dag_id) == 0 && recs[i].path)
            failed_path = recs[i].path;
    }
    const char *near = suggest_closest(dag_id, ids, n);
    if (failed_path)
        fail(e, OPS_NOT_FOUND, -ENOENT,
             "DAG '%s' is not loaded from folder '%s' (its file '%s' is gone or has errors; see "
             "'baram dags list')",
             dag_id, dir, failed_path);
    else if (near)
        fail(e, OPS_NOT_FOUND, -ENOENT, "no DAG '%s' in folder '%s' (did you mean '%s'?)", dag_id,
             dir, near);
    else
        fail(e, OPS_NOT_FOUND, -ENOENT, "no DAG '%s' in folder '%s'; see 'baram dags list'", dag_id,
             dir);
    if (near && !failed_path)
        e->suggest = xstrdup(near);
    free(ids);
    store_free_dags(recs, nrecs);
    return -ENOENT;
}

static bool dag_paused(struct store *s, const char *dag_id)
{
    struct dag_rec d;
    if (store_get_dag(s, dag_id, &d, NULL) < 0)
        return false;
    bool p = d.paused;
    dag_rec_release(&d);
    return p;
}

/* A queue request's DAG: found in the folder, conf checked against its params. */
struct queued {
    struct folder folder;
    const struct dagdir_file *file; /* borrowed from folder */
    json_t *holder;
    struct params_override *params;
    size_t nparams;
    char *conf; /* owned: the conf as recorded, or NULL */
};

static void queued_release(struct queued *q)
{
    folder_release(&q->folder);
    json_decref(q->holder);
    free(q->params);
    free(q->conf);
    memset(q, 0, sizeof *q);
}

/* The record of a run of q's DAG queued now for logical (borrowing q's strings). */
static struct run_rec queued_rec(const struct queued *q, enum run_type type, int64_t logical,
                                 int64_t now)
{
    const struct dag *d = q->file->dag;
    return (struct run_rec){
        .dag_id = d->id,
        .state = RUN_QUEUED,
        .type = type,
        .logical_at_ms = logical,
        .queued_at_ms = now,
        .started_at_ms = -1,
        .ended_at_ms = -1,
        .conf = q->conf,
        .dag_hash = (char *)d->hash,
        .dag_path = q->file->path,
    };
}

static int queued_open(struct queued *q, struct store *s, const char *dir, const char *dag_id,
                       const json_t *conf, struct ops_err *e)
{
    memset(q, 0, sizeof *q);
    int r = ops_conf_check(conf, "conf", e);
    if (r < 0)
        return r;
    if ((r = folder_find_dag(&q->folder, s, dir, dag_id, &q->file, e)) < 0)
        return r;
    conf_params(conf, &q->holder, &q->params, &q->nparams);
    struct diag d;
    diag_init(&d);
    r = params_check(q->file->dag, q->params, q->nparams, &d);
    if (r < 0) {
        ops_err_release(e);
        e->kind = OPS_BAD_INPUT;
        e->err.code = -EINVAL;
        e->diag = diag_text(&d);
        e->detail = diag_detail(&d);
        r = -EINVAL;
    }
    diag_release(&d);
    if (r == 0)
        q->conf = params_conf_json(q->file->dag, q->params, q->nparams);
    return r;
}

/* ---- trigger, backfill ---- */

int ops_trigger(struct store *s, const char *home_dir, const char *dags_folder, const char *dag_id,
                const json_t *conf, int64_t logical_at_ms, struct ops_run *out, struct ops_err *e)
{
    struct err *se = &e->err;
    memset(out, 0, sizeof *out);
    struct queued q;
    int r = queued_open(&q, s, dags_folder, dag_id, conf, e);
    if (r < 0) {
        queued_release(&q);
        return r;
    }
    const struct dag *d = q.file->dag;
    int64_t now = when_now_ms();
    int64_t logical = logical_at_ms < 0 ? now : logical_at_ms;
    struct run_rec rec = queued_rec(&q, RUN_MANUAL, logical, now);
    if ((r = store_begin(s, se)) < 0 ||
        (r = store_put_dag_version(s, d->hash, d->id, d->source, d->source_len, se)) < 0 ||
        (r = store_claim_run(s, "manual__", now, &rec, out->run_id, sizeof out->run_id, se)) < 0 ||
        (r = store_commit(s, se)) < 0) {
        r = fail_store(e);
        store_rollback(s);
        queued_release(&q);
        return r;
    }
    ops_ring(s, home_dir);
    out->logical_at_ms = logical;
    out->paused = dag_paused(s, d->id);
    queued_release(&q);
    return 0;
}

void ops_backfill_release(struct ops_backfill *b)
{
    if (!b)
        return;
    ops_names_free(b->run_ids, b->nrun_ids);
    memset(b, 0, sizeof *b);
}

int ops_backfill(struct store *s, const char *home_dir, const char *dags_folder, const char *dag_id,
                 const json_t *conf, const struct ops_range *range, struct ops_backfill *out,
                 struct ops_err *e)
{
    struct err *se = &e->err;
    memset(out, 0, sizeof *out);
    char fbuf[32], tbuf[32];
    when_format_iso(range->from_at_ms, fbuf, sizeof fbuf);
    when_format_iso(range->to_at_ms, tbuf, sizeof tbuf);
    const char *from_s = range->from_text ? range->from_text : fbuf;
    const char *to_s = range->to_text ? range->to_text : tbuf;
    if (range->from_at_ms > range->to_at_ms)
        return fail(e, OPS_BAD_INPUT, -EINVAL, "--from %s is after --to %s", from_s, to_s);
    struct queued q;
    int64_t *dates = NULL;
    size_t ndates = 0, cap = 0, idcap = 0;
    int r = queued_open(&q, s, dags_folder, dag_id, conf, e);
    if (r < 0)
        goto out;
    const struct dag *d = q.file->dag;
    if (!d->schedule) {
        r = fail(e, OPS_BAD_INPUT, -EINVAL,
                 "DAG '%s' has no schedule, so it has no dates to backfill (use 'baram dags "
                 "trigger %s' for a manual run)",
                 d->id, d->id);
        goto out;
    }
    /* The DAG has no dates before its start or after its end: a range wholly outside them is
     * a mistake to say, a range partly outside is cut to them (out says so). */
    char sbuf[32];
    if (d->start_at_ms >= 0 && range->to_at_ms < d->start_at_ms) {
        when_format_iso(d->start_at_ms, sbuf, sizeof sbuf);
        r = fail(e, OPS_BAD_INPUT, -EINVAL,
                 "--to %s is before DAG '%s' starts (start: %s): it has no dates to backfill", to_s,
                 d->id, sbuf);
        goto out;
    }
    if (d->end_at_ms >= 0 && range->from_at_ms > d->end_at_ms) {
        when_format_iso(d->end_at_ms, sbuf, sizeof sbuf);
        r = fail(e, OPS_BAD_INPUT, -EINVAL,
                 "--from %s is after DAG '%s' ends (end: %s): it has no dates to backfill", from_s,
                 d->id, sbuf);
        goto out;
    }
    out->start_at_ms = d->start_at_ms > range->from_at_ms ? d->start_at_ms : -1;
    out->end_at_ms = d->end_at_ms >= 0 && d->end_at_ms < range->to_at_ms ? d->end_at_ms : -1;
    /* The scheduler's own dates (plan.h), within start..end. */
    for (int64_t t = plan_first_from(d, range->from_at_ms); t != PLAN_NEVER && t <= range->to_at_ms;
         t = plan_after(d, t)) {
        size_t max_runs = range->max_runs ? range->max_runs : OPS_BACKFILL_MAX;
        if (ndates == max_runs) {
            r = fail(e, OPS_BAD_INPUT, -EINVAL,
                     "more than %zu runs from %s to %s: backfill a narrower range at a time",
                     max_runs, from_s, to_s);
            goto out;
        }
        xgrow((void **)&dates, &cap, ndates + 1, sizeof *dates);
        dates[ndates++] = t;
    }
    int64_t now = when_now_ms();
    if ((r = store_begin(s, se)) < 0 ||
        (r = store_put_dag_version(s, d->hash, d->id, d->source, d->source_len, se)) < 0)
        goto dberr;
    for (size_t i = 0; i < ndates; i++) {
        bool exists = false;
        if ((r = store_has_run_at(s, d->id, dates[i], &exists, se)) < 0)
            goto dberr;
        if (exists) {
            out->skipped++;
            continue;
        }
        struct run_rec rec = queued_rec(&q, RUN_BACKFILL, dates[i], now);
        char id[OPS_RUN_ID_MAX];
        if ((r = store_claim_run(s, "backfill__", dates[i], &rec, id, sizeof id, se)) < 0)
            goto dberr;
        xgrow((void **)&out->run_ids, &idcap, out->nrun_ids + 1, sizeof *out->run_ids);
        out->run_ids[out->nrun_ids++] = xstrdup(id);
    }
    if ((r = store_commit(s, se)) < 0)
        goto dberr;
    ops_ring(s, home_dir);
    out->paused = out->nrun_ids && dag_paused(s, d->id);
    goto out;
dberr:
    r = fail_store(e);
    store_rollback(s);
    ops_backfill_release(out);
out:
    free(dates);
    queued_release(&q);
    return r;
}

/* ---- pause ---- */

int ops_set_paused(struct store *s, const char *home_dir, const char *dags_folder,
                   const char *dag_id, bool paused, struct ops_err *e)
{
    struct err *se = &e->err;
    /* A DAG the scheduler recorded needs no look at the folder; another must be in it. */
    struct folder f = {0};
    struct dag_rec d;
    int r = store_get_dag(s, dag_id, &d, se);
    if (r == 0) {
        dag_rec_release(&d);
    } else if (r == -ENOENT) {
        const struct dagdir_file *file;
        if ((r = folder_find_dag(&f, s, dags_folder, dag_id, &file, e)) < 0)
            goto out;
    } else {
        r = fail_store(e);
        goto out;
    }
    if (store_set_paused(s, dag_id, paused, se) < 0) {
        r = fail_store(e);
        goto out;
    }
    ops_ring(s, home_dir);
out:
    folder_release(&f);
    return r;
}

/* ---- runs ---- */

/* "no WHAT 'NAME'" with a did-you-mean among names[0..n) (else tail after it): -ENOENT. */
static int no_such(struct ops_err *e, const char *what, const char *name, const char **names,
                   size_t n, const char *tail)
{
    const char *near = n ? suggest_closest(name, names, n) : NULL;
    if (near) {
        fail(e, OPS_NOT_FOUND, -ENOENT, "no %s '%s' (did you mean '%s'?)", what, name, near);
        e->suggest = xstrdup(near);
    } else {
        fail(e, OPS_NOT_FOUND, -ENOENT, "no %s '%s'%s", what, name, tail);
    }
    return -ENOENT;
}

/* "no run" with a did-you-mean among the newest runs: -ENOENT. */
static int no_run(struct store *s, const char *run_id, struct ops_err *e)
{
    struct run_rec *runs = NULL;
    size_t n = 0;
    if (store_list_runs(s, NULL, SUGGEST_RUNS, 0, &runs, &n, NULL, NULL) < 0)
        n = 0;
    const char **ids = xcalloc(n ? n : 1, sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = runs[i].run_id;
    int r = no_such(e, "run", run_id, ids, n, "; see 'baram runs list'");
    free(ids);
    store_free_runs(runs, n);
    return r;
}

/* Loads the run: 0, or -ENOENT / ERR_DB with e. */
static int get_run(struct store *s, const char *run_id, struct run_rec *run, struct ops_err *e)
{
    struct err *se = &e->err;
    int r = store_get_run(s, run_id, run, se);
    if (r == -ENOENT)
        return no_run(s, run_id, e);
    if (r < 0)
        return fail_store(e);
    return 0;
}

/* The event of a run's or an instance's new state, written here rather than by the
 * scheduler's writer: in the caller's transaction, so the event stream (and the web UI)
 * sees a clear or a cancel the CLI or the API made. A store without an event log: 0. */
static int note_run(struct store *s, const struct run_rec *run, struct err *se)
{
    int r = events_put(s, EVENT_RUN, run->dag_id, run->run_id, NULL, run_state_name(run->state), 0,
                       when_now_ms(), se);
    return r == -ENOTSUP ? 0 : r;
}

static int note_ti(struct store *s, const struct ti_rec *t, struct err *se)
{
    int r = events_put(s, EVENT_TI, NULL, t->run_id, t->task_id, ti_state_name(t->state),
                       t->try_number, when_now_ms(), se);
    return r == -ENOTSUP ? 0 : r;
}

/* Marks the run cancelled without a scheduler: the run ends now, running task instances
 * (and their running tries) fail with "cancelled", not started ones go back to none. One
 * transaction; *run is read again inside it. 0, -EALREADY when it had ended meanwhile, or a
 * store error. */
static int cancel_here(struct store *s, struct run_rec *run, struct err *se)
{
    struct ti_rec *tis = NULL;
    size_t n = 0;
    int64_t now = when_now_ms();
    int r = store_begin(s, se);
    if (r < 0)
        return r;
    /* Read again under the write lock: it may have ended since it was first read. */
    struct run_rec fresh;
    if ((r = store_get_run(s, run->run_id, &fresh, se)) < 0)
        goto fail;
    run_rec_release(run);
    *run = fresh;
    if (run_state_finished(run->state)) {
        r = -EALREADY;
        goto fail;
    }
    if ((r = store_list_tis(s, run->run_id, &tis, &n, se)) < 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        struct ti_rec *t = &tis[i];
        if (t->state == TI_RUNNING) {
            struct try_rec *tries = NULL;
            size_t nt = 0;
            if ((r = store_list_tries(s, run->run_id, t->task_id, &tries, &nt, se)) < 0)
                goto fail;
            for (size_t k = 0; k < nt && r == 0; k++) {
                if (tries[k].state != TI_RUNNING)
                    continue;
                tries[k].state = TI_FAILED;
                tries[k].exit_code = -1;
                tries[k].ended_at_ms = now;
                r = store_put_try(s, &tries[k], se);
            }
            store_free_tries(tries, nt);
            if (r < 0)
                goto fail;
            t->state = TI_FAILED;
            t->exit_code = -1;
            t->ended_at_ms = now;
            free(t->message);
            t->message = xstrdup("cancelled");
        } else if (t->state == TI_SCHEDULED || t->state == TI_QUEUED ||
                   t->state == TI_UP_FOR_RETRY) {
            t->state = TI_NONE;
        } else {
            continue;
        }
        if ((r = store_put_ti(s, t, se)) < 0 || (r = note_ti(s, t, se)) < 0)
            goto fail;
    }
    run->state = RUN_CANCELLED;
    run->ended_at_ms = now;
    if ((r = store_put_run(s, run, se)) < 0 || (r = note_run(s, run, se)) < 0 ||
        (r = store_commit(s, se)) < 0)
        goto fail;
    store_free_tis(tis, n);
    return 0;
fail:
    store_rollback(s);
    store_free_tis(tis, n);
    return r;
}

void ops_hostname(char *buf, size_t n)
{
    if (n < 2 || gethostname(buf, n - 1) < 0 || !buf[0])
        snprintf(buf, n, "localhost");
    buf[n - 1] = '\0';
}

bool ops_scheduler_running(struct store *s, const char *home_dir, int64_t dead_after_ms)
{
    if (schedlock_held(home_dir))
        return true; /* one runs on this home */
    if (!store_shared(s))
        return false;
    /* A row of this home whose heartbeat is still fresh is of a scheduler that has just died
     * (its lock is free): not counted. */
    char host[256];
    ops_hostname(host, sizeof host);
    char *home = realpath(home_dir, NULL);
    int64_t n = 0;
    bool live = store_live_schedulers(s, dead_after_ms, host, home, &n, NULL) == 0 && n > 0;
    free(home);
    return live;
}

int ops_cancel(struct store *s, const char *home_dir, int64_t dead_after_ms, const char *run_id,
               int64_t wait_ms, struct ops_cancel *out, struct ops_err *e)
{
    struct err *se = &e->err;
    memset(out, 0, sizeof *out);
    struct run_rec run;
    int r = get_run(s, run_id, &run, e);
    if (r < 0)
        return r;
    if (run_state_finished(run.state)) {
        r = fail(e, OPS_CONFLICT, -EALREADY, "run '%s' already ended (%s)", run_id,
                 run_state_name(run.state));
    } else if (run.owner && strcmp(run.owner, "cli") == 0) {
        r = fail(e, OPS_CONFLICT, -EBUSY,
                 "run '%s' is running in the foreground under 'baram run', not under the "
                 "scheduler: stop it there (Ctrl-C in its terminal)",
                 run_id);
    } else if (ops_scheduler_running(s, home_dir, dead_after_ms)) {
        if (store_put_request(s, run_id, "cancel", se) < 0) {
            r = fail_store(e);
            goto out;
        }
        ops_ring(s, home_dir);
        int64_t deadline = when_mono_ms() + (wait_ms > 0 ? wait_ms : 0);
        enum run_state st = run.state;
        while (!run_state_finished(st) && when_mono_ms() < deadline) {
            struct timespec pause = {0, CANCEL_POLL_MS * 1000 * 1000};
            nanosleep(&pause, NULL);
            struct run_rec now;
            if (store_get_run(s, run_id, &now, NULL) == 0) {
                st = now.state;
                run_rec_release(&now);
            }
        }
        if (run_state_finished(st) && st != RUN_CANCELLED) {
            r = fail(e, OPS_CONFLICT, -EALREADY,
                     "run '%s' ended as %s before it could be cancelled", run_id,
                     run_state_name(st));
        } else {
            out->state = st;
            out->requested = st != RUN_CANCELLED;
        }
    } else if ((r = cancel_here(s, &run, se)) < 0) {
        if (r == -EALREADY)
            r = fail(e, OPS_CONFLICT, -EALREADY, "run '%s' already ended (%s)", run_id,
                     run_state_name(run.state));
        else
            r = fail_store(e);
    } else {
        out->state = RUN_CANCELLED;
        out->direct = true;
    }
out:
    run_rec_release(&run);
    return r;
}

/* ---- clear ---- */

/* A parsed mark request: task NULL for the run's. */
struct mark_req {
    bool success, downstream;
    const char *task;
};

int ops_cancel_stored(struct store *s, const char *run_id, struct ops_err *e)
{
    struct err *se = &e->err;
    struct run_rec run;
    int r = get_run(s, run_id, &run, e);
    if (r < 0)
        return r;
    r = cancel_here(s, &run, se);
    if (r == -EALREADY)
        r = 0; /* it had ended */
    else if (r < 0)
        r = fail_store(e);
    run_rec_release(&run);
    return r;
}

void ops_clear_release(struct ops_clear *c)
{
    if (!c)
        return;
    ops_names_free(c->tasks, c->ntasks);
    memset(c, 0, sizeof *c);
}

static int no_task(const struct dag *dag, const char *path, const char *name, struct ops_err *e)
{
    const char **names = xcalloc(dag->ntasks ? dag->ntasks : 1, sizeof *names);
    for (uint32_t i = 0; i < dag->ntasks; i++)
        names[i] = dag->tasks[i].name;
    const char *near = suggest_closest(name, names, dag->ntasks);
    if (near) {
        fail(e, OPS_NOT_FOUND, -ENOENT, "no task '%s' in '%s' (did you mean '%s'?)", name, path,
             near);
        e->suggest = xstrdup(near);
    } else {
        fail(e, OPS_NOT_FOUND, -ENOENT, "no task '%s' in '%s'", name, path);
    }
    free(names);
    return -ENOENT;
}

/* Resets the instances of the tasks marked in set; adds the number of rows to *nrows. */
static int clear_rows(struct store *s, const struct dag *dag, const bool *set, const char *run_id,
                      size_t *nrows, struct err *se)
{
    struct ti_rec *tis = NULL;
    size_t n = 0;
    int r = store_list_tis(s, run_id, &tis, &n, se);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n && r == 0; i++) {
        struct ti_rec *t = &tis[i];
        uint32_t k;
        if (!dag_find(dag, t->task ? t->task : t->task_id, &k) || !set[k])
            continue;
        (*nrows)++;
        if (dag->tasks[k].mapped) {
            r = store_delete_ti(s, run_id, t->task_id, se);
            continue;
        }
        t->state = TI_NONE;
        t->max_tries = t->try_number + dag->tasks[k].retries + 1;
        t->exit_code = -1;
        free(t->output);
        t->output = NULL;
        t->output_len = 0;
        free(t->message);
        t->message = NULL;
        t->scheduled_at_ms = t->queued_at_ms = t->started_at_ms = t->ended_at_ms = -1;
        if ((r = store_put_ti(s, t, se)) == 0)
            r = note_ti(s, t, se);
    }
    store_free_tis(tis, n);
    return r;
}

/* The request kind that asks the scheduler to clear task (and downstream) of a live run. */
#define OPS_CLEAR_KIND      STORE_REQUEST_LASTING ":"
#define OPS_CLEAR_DOWN_KIND STORE_REQUEST_LASTING "+:"

/* What a clear works on: the run, the DAG version it started with, and the set of tasks to
 * clear (task, plus everything downstream of it when asked). */
struct clear_plan {
    struct run_rec run;
    struct dag *dag;
    char *src;
    bool *set;
    size_t nset;
};

static void clear_plan_release(struct clear_plan *p)
{
    free(p->set);
    dag_free(p->dag);
    free(p->src);
    run_rec_release(&p->run);
    memset(p, 0, sizeof *p);
}

static int clear_plan_make(struct store *s, const char *run_id, const char *task, bool downstream,
                           struct clear_plan *p, struct ops_err *e)
{
    struct err *se = &e->err;
    memset(p, 0, sizeof *p);
    int r = get_run(s, run_id, &p->run, e);
    if (r < 0)
        return r;
    size_t len = 0;
    r = p->run.dag_hash ? store_get_dag_version(s, p->run.dag_hash, &p->src, &len, se) : -ENOENT;
    if (r == -ENOENT)
        return fail(e, OPS_CONFLICT, -ENODATA,
                    "the DAG version the run started with is not in the database");
    if (r < 0)
        return fail_store(e);
    struct diag d;
    diag_init(&d);
    const char *path = p->run.dag_path ? p->run.dag_path : "dag.yaml";
    p->dag = dag_load_mem(p->src, len, path, &d);
    if (!p->dag) {
        r = fail(e, OPS_CONFLICT, -ENODATA, "the DAG version of run %s no longer loads:", run_id);
        e->diag = diag_text(&d);
        e->detail = diag_detail(&d);
    }
    diag_release(&d);
    if (!p->dag)
        return r;
    const struct dag *dag = p->dag;
    uint32_t root;
    if (!dag_find(dag, task, &root))
        return no_task(dag, path, task, e);
    /* The set: TASK, plus everything reachable downstream (breadth first over the CSR). */
    p->set = xcalloc(dag->ntasks, sizeof *p->set);
    uint32_t *queue = xcalloc(dag->ntasks, sizeof *queue);
    size_t qh = 0, qt = 0;
    p->set[root] = true;
    queue[qt++] = root;
    while (downstream && qh < qt) {
        uint32_t v = queue[qh++];
        for (uint32_t k = dag->graph.down_start[v]; k < dag->graph.down_start[v + 1]; k++) {
            uint32_t w = dag->graph.down[k];
            if (!p->set[w]) {
                p->set[w] = true;
                queue[qt++] = w;
            }
        }
    }
    free(queue);
    p->nset = qt;
    return 0;
}

/* Resets the chosen instances (set) of run and writes it with state st, no end and no owner (the
 * scheduler resumes it, whoever ran it before), in the caller's open transaction; *nrows adds the
 * instances reset. A finished run queued again is queued now (as Airflow does): its deadline
 * counts from the clear. */
static int clear_apply(struct store *s, const struct dag *dag, const bool *set,
                       const struct run_rec *in, enum run_state st, size_t *nrows, struct err *se)
{
    struct run_rec run = *in;
    if (st == RUN_QUEUED && run_state_finished(in->state))
        run.queued_at_ms = when_now_ms();
    run.state = st;
    run.ended_at_ms = -1;
    run.owner = NULL;
    int r = clear_rows(s, dag, set, run.run_id, nrows, se);
    if (r == 0)
        r = store_put_run(s, &run, se);
    if (r == 0)
        r = note_run(s, &run, se);
    return r;
}

/* Resets the plan's instances and gives the run state st, in one transaction; with kind, the
 * request that asked for it goes in the same transaction (when it is gone it was carried out
 * already: nothing is done, *nrows 0). */
static int clear_plan_commit(struct store *s, struct clear_plan *p, enum run_state st,
                             const char *kind, size_t *nrows, struct ops_err *e)
{
    struct err *se = &e->err;
    *nrows = 0;
    int r = store_begin(s, se);
    if (r == 0 && kind && (r = store_delete_request(s, p->run.run_id, kind, se)) == 0) {
        store_rollback(s);
        return 0;
    }
    if (r < 0 || (r = clear_apply(s, p->dag, p->set, &p->run, st, nrows, se)) < 0 ||
        (r = store_commit(s, se)) < 0) {
        store_rollback(s);
        *nrows = 0;
        return fail_store(e);
    }
    return 0;
}

/* A live run's clear waits for the instances it resets: none may be in flight. */
static int clear_plan_idle(struct store *s, const struct clear_plan *p, struct ops_err *e)
{
    struct err *se = &e->err;
    struct ti_rec *tis = NULL;
    size_t n = 0;
    if (store_list_tis(s, p->run.run_id, &tis, &n, se) < 0)
        return fail_store(e);
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        uint32_t k;
        const struct ti_rec *t = &tis[i];
        if (!dag_find(p->dag, t->task ? t->task : t->task_id, &k) || !p->set[k])
            continue;
        if (t->state == TI_QUEUED || t->state == TI_RUNNING || t->state == TI_UP_FOR_RETRY)
            r = fail(e, OPS_CONFLICT, -EBUSY,
                     "task instance %s is %s: clear it once it has ended (or cancel the run)",
                     t->task_id, ti_state_name(t->state));
    }
    store_free_tis(tis, n);
    return r;
}

int ops_clear(struct store *s, const char *home_dir, int64_t dead_after_ms, const char *run_id,
              const char *task, bool downstream, struct ops_clear *out, struct ops_err *e)
{
    struct err *se = &e->err;
    memset(out, 0, sizeof *out);
    struct clear_plan p;
    int r = clear_plan_make(s, run_id, task, downstream, &p, e);
    if (r < 0)
        goto out;
    bool live = !run_state_finished(p.run.state);
    if (live && p.run.owner && strcmp(p.run.owner, "cli") == 0) {
        r = fail(e, OPS_CONFLICT, -EBUSY,
                 "run %s is running in the foreground under 'baram run': clear its tasks once "
                 "it ends",
                 run_id);
        goto out;
    }
    if (live && ops_scheduler_running(s, home_dir, dead_after_ms)) {
        /* The scheduler runs it: it stops starting the run's tasks, lets the tries in flight
         * end, then clears and resumes the run (daemon.c). */
        if ((r = clear_plan_idle(s, &p, e)) < 0)
            goto out;
        char *kind = xasprintf("%s%s", downstream ? OPS_CLEAR_DOWN_KIND : OPS_CLEAR_KIND, task);
        r = store_put_request(s, run_id, kind, se);
        free(kind);
        if (r < 0) {
            r = fail_store(e);
            goto out;
        }
        out->requested = true;
    } else if ((r = clear_plan_commit(s, &p, RUN_QUEUED, NULL, &out->nrows, e)) < 0) {
        goto out;
    }
    ops_ring(s, home_dir);
    out->tasks = xcalloc(p.nset, sizeof *out->tasks);
    for (uint32_t k = 0; k < p.dag->ntasks; k++)
        if (p.set[p.dag->topo[k]])
            out->tasks[out->ntasks++] = xstrdup(p.dag->tasks[p.dag->topo[k]].name);
out:
    clear_plan_release(&p);
    return r;
}

bool ops_clear_request_parse(const char *kind, const char **task, bool *downstream)
{
    size_t n = strlen(OPS_CLEAR_KIND), nd = strlen(OPS_CLEAR_DOWN_KIND);
    if (strncmp(kind, OPS_CLEAR_KIND, n) == 0 && kind[n]) {
        *task = kind + n;
        *downstream = false;
        return true;
    }
    if (strncmp(kind, OPS_CLEAR_DOWN_KIND, nd) == 0 && kind[nd]) {
        *task = kind + nd;
        *downstream = true;
        return true;
    }
    return false;
}

static bool mark_parse(const char *kind, struct mark_req *q);
static int mark_apply(struct store *s, const char *run_id, const char *kind,
                      const struct mark_req *q, size_t *nrows, bool *ended, struct ops_err *e);

int ops_clear_apply(struct store *s, const char *run_id, const char *kind, size_t *nrows,
                    bool *ended, struct ops_err *e)
{
    struct err *se = &e->err;
    *nrows = 0;
    const char *task;
    bool downstream;
    struct mark_req mq;
    if (mark_parse(kind, &mq))
        return mark_apply(s, run_id, kind, &mq, nrows, ended, e);
    if (!ops_clear_request_parse(kind, &task, &downstream)) {
        (void)!store_delete_request(s, run_id, kind, NULL);
        return fail(e, OPS_BAD_INPUT, -EINVAL, "not a clear request: '%s'", kind);
    }
    struct clear_plan p;
    int r = clear_plan_make(s, run_id, task, downstream, &p, e);
    if (r == 0 && p.run.state == RUN_CANCELLED) {
        /* cancelled meanwhile: the cancel wins, the request goes */
        if ((r = store_delete_request(s, run_id, kind, se)) >= 0)
            r = fail(e, OPS_CONFLICT, -ECANCELED, "run %s was cancelled", run_id);
        else
            r = fail_store(e);
    } else if (r == 0) {
        /* A queued run stays queued; one that ran (it drained, or ended meanwhile) is resumed
         * at once, like any running run, with the version it started with. */
        r = clear_plan_commit(s, &p, p.run.state == RUN_QUEUED ? RUN_QUEUED : RUN_RUNNING, kind,
                              nrows, e);
    } else if (r == -ENOENT || r == -ENODATA) {
        (void)!store_delete_request(s, run_id, kind, NULL); /* it can never apply */
    }
    clear_plan_release(&p);
    return r;
}

/* ---- mark ---- */

/* The request kinds of a mark of a live run: lasting, like a clear's (the scheduler drains the
 * run, stops the marked tasks' tries, then applies it): "clear~mark:S[+]:TASK" for a task (S
 * 's' success or 'f' failed, '+' downstream too), "clear~run:S" for the run. */
#define OPS_MARK_KIND     STORE_REQUEST_LASTING "~mark:"
#define OPS_MARK_RUN_KIND STORE_REQUEST_LASTING "~run:"

void ops_mark_release(struct ops_mark *m)
{
    if (!m)
        return;
    ops_names_free(m->tasks, m->ntasks);
    memset(m, 0, sizeof *m);
}

static bool mark_parse(const char *kind, struct mark_req *q)
{
    memset(q, 0, sizeof *q);
    size_t n = strlen(OPS_MARK_KIND), nr = strlen(OPS_MARK_RUN_KIND);
    const char *p;
    if (strncmp(kind, OPS_MARK_RUN_KIND, nr) == 0) {
        p = kind + nr;
        if ((p[0] != 's' && p[0] != 'f') || p[1])
            return false;
        q->success = p[0] == 's';
        return true;
    }
    if (strncmp(kind, OPS_MARK_KIND, n) != 0)
        return false;
    p = kind + n;
    if (p[0] != 's' && p[0] != 'f')
        return false;
    q->success = p[0] == 's';
    p++;
    if (*p == '+') {
        q->downstream = true;
        p++;
    }
    if (*p != ':' || !p[1])
        return false;
    q->task = p + 1;
    return true;
}

bool ops_mark_request_parse(const char *kind)
{
    struct mark_req q;
    return mark_parse(kind, &q);
}

bool ops_mark_request_tasks(const struct dag *dag, const char *kind, bool *set)
{
    struct mark_req q;
    if (!mark_parse(kind, &q))
        return false;
    if (!q.task) {
        for (uint32_t k = 0; k < dag->ntasks; k++)
            set[k] = true;
        return true;
    }
    uint32_t root;
    if (!dag_find(dag, q.task, &root))
        return true; /* the apply says it */
    set[root] = true;
    for (uint32_t i = 0; q.downstream && i < dag->ntasks; i++) { /* topological order */
        uint32_t v = dag->topo[i];
        if (!set[v])
            continue;
        for (uint32_t k = dag->graph.down_start[v]; k < dag->graph.down_start[v + 1]; k++)
            set[dag->graph.down[k]] = true;
    }
    return true;
}

/* Fails the tries of run_id's instance task_id still recorded as running (their processes
 * are gone: stopped by the scheduler, or no scheduler runs). */
static int mark_end_tries(struct store *s, const char *run_id, const char *task_id, int64_t now,
                          struct err *se)
{
    struct try_rec *tries = NULL;
    size_t nt = 0;
    int r = store_list_tries(s, run_id, task_id, &tries, &nt, se);
    for (size_t k = 0; k < nt && r == 0; k++) {
        if (tries[k].state != TI_RUNNING)
            continue;
        tries[k].state = TI_FAILED;
        tries[k].exit_code = -1;
        tries[k].ended_at_ms = now;
        r = store_put_try(s, &tries[k], se);
    }
    store_free_tries(tries, nt);
    return r;
}

/* Gives the instances of the tasks in set a final state: every one (all) or only the
 * unfinished ones; one that has started (a try, or in flight) becomes started, one that has
 * not becomes pending. An unmapped task without a row gets one. Adds to *nrows. */
static int mark_rows(struct store *s, const struct dag *dag, const bool *set, const char *run_id,
                     bool all, enum ti_state started, enum ti_state pending, const char *msg,
                     size_t *nrows, struct err *se)
{
    struct ti_rec *tis = NULL;
    size_t n = 0;
    int64_t now = when_now_ms();
    int r = store_list_tis(s, run_id, &tis, &n, se);
    if (r < 0)
        return r;
    bool *seen = xcalloc(dag->ntasks ? dag->ntasks : 1, sizeof *seen);
    for (size_t i = 0; i < n && r == 0; i++) {
        struct ti_rec *t = &tis[i];
        uint32_t k;
        if (!dag_find(dag, t->task ? t->task : t->task_id, &k) || !set[k])
            continue;
        seen[k] = true;
        if (!all && ti_state_finished(t->state))
            continue;
        bool began = t->try_number > 0 || t->state == TI_RUNNING || t->state == TI_QUEUED;
        if ((r = mark_end_tries(s, run_id, t->task_id, now, se)) < 0)
            break;
        t->state = began ? started : pending;
        if (t->ended_at_ms < 0 || all)
            t->ended_at_ms = now;
        free(t->message);
        t->message = xstrdup(msg);
        (*nrows)++;
        if ((r = store_put_ti(s, t, se)) == 0)
            r = note_ti(s, t, se);
    }
    for (uint32_t k = 0; k < dag->ntasks && r == 0; k++) {
        const struct dag_task *dt = &dag->tasks[k];
        if (!set[k] || seen[k] || dt->mapped)
            continue;
        struct ti_rec t = {
            .run_id = (char *)run_id,
            .task_id = dt->name,
            .task = dt->name,
            .map_index = -1,
            .state = pending,
            .max_tries = dt->retries + 1,
            .exit_code = -1,
            .message = (char *)msg,
            .priority = dt->priority,
            .pool = dt->pool ? dt->pool : "default",
            .scheduled_at_ms = -1,
            .queued_at_ms = -1,
            .started_at_ms = -1,
            .ended_at_ms = now,
        };
        (*nrows)++;
        if ((r = store_put_ti(s, &t, se)) == 0)
            r = note_ti(s, &t, se);
    }
    free(seen);
    store_free_tis(tis, n);
    return r;
}

/* The plan's tasks in topological order (malloc'd names), *n of them. */
static char **plan_names(const struct clear_plan *p, size_t *n)
{
    char **v = xcalloc(p->dag->ntasks ? p->dag->ntasks : 1, sizeof *v);
    *n = 0;
    for (uint32_t k = 0; k < p->dag->ntasks; k++)
        if (p->set[p->dag->topo[k]])
            v[(*n)++] = xstrdup(p->dag->tasks[p->dag->topo[k]].name);
    return v;
}

/* Records the mark in the audit log, in the caller's open transaction (who NULL: nothing). */
static int mark_audit(struct store *s, const struct audit_who *who, const struct clear_plan *p,
                      const struct mark_req *q, bool requested, struct err *se)
{
    if (!who)
        return 0;
    const char *st = q->success ? "success" : "failed";
    json_t *d;
    if (q->task) {
        size_t n;
        char **names = plan_names(p, &n);
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, json_string(names[i]));
        ops_names_free(names, n);
        d = json_pack("{s:s, s:b, s:o, s:b}", "state", st, "downstream", q->downstream, "tasks", a,
                      "requested", requested);
    } else {
        d = json_pack("{s:s, s:b}", "state", st, "requested", requested);
    }
    int r = audit_record(s, who, "mark", p->run.dag_id, p->run.run_id, q->task, d);
    return r < 0 ? err_set(se, ERR_DB, "cannot write the audit log") : 0;
}

/* Applies the mark q to the plan's run in one transaction, with its audit row (who); with kind,
 * the request that asked for it goes in it too (when it is gone it was carried out already:
 * nothing done). A run's mark ends the run; a task's leaves the run's state as it is. */
static int mark_commit(struct store *s, struct clear_plan *p, const struct mark_req *q,
                       const char *kind, const struct audit_who *who, size_t *nrows,
                       struct ops_err *e)
{
    struct err *se = &e->err;
    struct run_rec run = p->run;
    bool live = !run_state_finished(run.state);
    *nrows = 0;
    int r = store_begin(s, se);
    if (r == 0 && kind && (r = store_delete_request(s, run.run_id, kind, se)) == 0) {
        store_rollback(s);
        return 0;
    }
    const char *msg = q->success ? "marked success" : "marked failed";
    if (r >= 0) {
        r = 0;
        if (q->task)
            r = mark_rows(s, p->dag, p->set, run.run_id, true, q->success ? TI_SUCCESS : TI_FAILED,
                          q->success ? TI_SUCCESS : TI_FAILED, msg, nrows, se);
        else if (live)
            r = mark_rows(s, p->dag, p->set, run.run_id, false, q->success ? TI_SUCCESS : TI_FAILED,
                          q->success ? TI_SUCCESS : TI_SKIPPED, msg, nrows, se);
    }
    if (r == 0 && !q->task) {
        run.state = q->success ? RUN_SUCCESS : RUN_FAILED;
        run.owner = NULL;
        if (live || run.ended_at_ms < 0)
            run.ended_at_ms = when_now_ms();
        if ((r = store_put_run(s, &run, se)) == 0)
            r = note_run(s, &run, se);
    }
    if (r == 0)
        r = mark_audit(s, who, p, q, false, se);
    if (r < 0 || (r = store_commit(s, se)) < 0) {
        store_rollback(s);
        *nrows = 0;
        return fail_store(e);
    }
    return 0;
}

/* Both marks: the plan (the run, its DAG version, the tasks), then the request or the
 * change. */
static int mark_do(struct store *s, const char *home_dir, int64_t dead_after_ms, const char *run_id,
                   const struct mark_req *q, const char *kind, const struct audit_who *who,
                   struct ops_mark *out, struct ops_err *e)
{
    struct err *se = &e->err;
    memset(out, 0, sizeof *out);
    struct clear_plan p;
    /* A run's mark works on every task: any one names the plan, then the set is all. */
    int r = clear_plan_make(s, run_id, q->task ? q->task : "", q->downstream, &p, e);
    if (r == -ENOENT && !q->task && p.dag) {
        ops_err_release(e);
        r = 0;
    }
    if (r < 0)
        goto out;
    if (!q->task) {
        free(p.set);
        p.set = xcalloc(p.dag->ntasks ? p.dag->ntasks : 1, sizeof *p.set);
        for (uint32_t k = 0; k < p.dag->ntasks; k++)
            p.set[k] = true;
        p.nset = p.dag->ntasks;
    }
    bool live = !run_state_finished(p.run.state);
    if (live && p.run.owner && strcmp(p.run.owner, "cli") == 0) {
        r = fail(e, OPS_CONFLICT, -EBUSY,
                 "run %s is running in the foreground under 'baram run': mark it once it ends",
                 run_id);
        goto out;
    }
    if (live && ops_scheduler_running(s, home_dir, dead_after_ms)) {
        /* The scheduler runs it: it stops the marked tasks' tries, lets its other tries in
         * flight end, then applies the mark and goes on (daemon.c). */
        if ((r = store_begin(s, se)) < 0 || (r = store_put_request(s, run_id, kind, se)) < 0 ||
            (r = mark_audit(s, who, &p, q, true, se)) < 0 || (r = store_commit(s, se)) < 0) {
            store_rollback(s);
            r = fail_store(e);
            goto out;
        }
        out->requested = true;
    } else if ((r = mark_commit(s, &p, q, NULL, who, &out->nrows, e)) < 0) {
        goto out;
    }
    ops_ring(s, home_dir);
    out->run_state = q->task || out->requested ? p.run.state
                     : q->success              ? RUN_SUCCESS
                                               : RUN_FAILED;
    if (q->task)
        out->tasks = plan_names(&p, &out->ntasks);
out:
    clear_plan_release(&p);
    return r;
}

int ops_mark_task(struct store *s, const char *home_dir, int64_t dead_after_ms, const char *run_id,
                  const char *task, enum ti_state state, bool downstream,
                  const struct audit_who *who, struct ops_mark *out, struct ops_err *e)
{
    memset(out, 0, sizeof *out);
    if (state != TI_SUCCESS && state != TI_FAILED)
        return fail(e, OPS_BAD_INPUT, -EINVAL, "bad state '%s': expected success or failed",
                    ti_state_name(state));
    struct mark_req q = {.success = state == TI_SUCCESS, .downstream = downstream, .task = task};
    char *kind =
        xasprintf("%s%c%s:%s", OPS_MARK_KIND, q.success ? 's' : 'f', downstream ? "+" : "", task);
    int r = mark_do(s, home_dir, dead_after_ms, run_id, &q, kind, who, out, e);
    free(kind);
    return r;
}

int ops_mark_run(struct store *s, const char *home_dir, int64_t dead_after_ms, const char *run_id,
                 enum run_state state, const struct audit_who *who, struct ops_mark *out,
                 struct ops_err *e)
{
    memset(out, 0, sizeof *out);
    if (state != RUN_SUCCESS && state != RUN_FAILED)
        return fail(e, OPS_BAD_INPUT, -EINVAL, "bad state '%s': expected success or failed",
                    run_state_name(state));
    struct mark_req q = {.success = state == RUN_SUCCESS};
    char *kind = xasprintf("%s%c", OPS_MARK_RUN_KIND, q.success ? 's' : 'f');
    int r = mark_do(s, home_dir, dead_after_ms, run_id, &q, kind, who, out, e);
    free(kind);
    return r;
}

/* The scheduler's side of a mark request (ops_clear_apply calls it), once the run stands
 * still. */
static int mark_apply(struct store *s, const char *run_id, const char *kind,
                      const struct mark_req *q, size_t *nrows, bool *ended, struct ops_err *e)
{
    struct err *se = &e->err;
    struct clear_plan p;
    int r = clear_plan_make(s, run_id, q->task ? q->task : "", q->downstream, &p, e);
    if (r == -ENOENT && !q->task && p.dag) {
        ops_err_release(e);
        r = 0;
    }
    if (r == 0 && !q->task) {
        free(p.set);
        p.set = xcalloc(p.dag->ntasks ? p.dag->ntasks : 1, sizeof *p.set);
        for (uint32_t k = 0; k < p.dag->ntasks; k++)
            p.set[k] = true;
    }
    if (r == 0 && p.run.state == RUN_CANCELLED) {
        if ((r = store_delete_request(s, run_id, kind, se)) >= 0)
            r = fail(e, OPS_CONFLICT, -ECANCELED, "run %s was cancelled", run_id);
        else
            r = fail_store(e);
    } else if (r == 0) {
        r = mark_commit(s, &p, q, kind, NULL, nrows, e); /* recorded when requested */
        /* A run's mark ends it; a task's leaves a run that ended meanwhile ended. */
        if (r == 0 && (!q->task || run_state_finished(p.run.state)))
            *ended = true;
    } else if (r == -ENOENT || r == -ENODATA) {
        (void)!store_delete_request(s, run_id, kind, NULL); /* it can never apply */
    }
    clear_plan_release(&p);
    return r;
}

/* ---- clear over a date range ---- */

void ops_clear_range_release(struct ops_clear_range *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nruns; i++) {
        free(c->runs[i].run_id);
        ops_names_free(c->runs[i].tasks, c->runs[i].ntasks);
    }
    free(c->runs);
    memset(c, 0, sizeof *c);
}

/* The DAG the store knows as dag_id, loaded from its latest version; a did-you-mean among the
 * store's DAGs when there is none. */
static int range_dag(struct store *s, const char *dag_id, struct dag **out, struct ops_err *e)
{
    struct err *se = &e->err;
    struct dag_rec rec;
    *out = NULL;
    int r = store_get_dag(s, dag_id, &rec, se);
    if (r == -ENOENT) {
        struct dag_rec *v = NULL;
        size_t n = 0;
        if (store_list_dags(s, &v, &n, NULL) < 0)
            n = 0;
        const char **names = xcalloc(n ? n : 1, sizeof *names);
        for (size_t i = 0; i < n; i++)
            names[i] = v[i].dag_id;
        r = no_such(e, "DAG", dag_id, names, n, "");
        free(names);
        store_free_dags(v, n);
        return r;
    }
    if (r < 0)
        return fail_store(e);
    char *src = NULL;
    size_t len = 0;
    r = rec.hash ? store_get_dag_version(s, rec.hash, &src, &len, se) : -ENOENT;
    if (r == 0) {
        struct diag d;
        diag_init(&d);
        *out = dag_load_mem(src, len, rec.path ? rec.path : "dag.yaml", &d);
        diag_release(&d);
    }
    free(src);
    dag_rec_release(&rec);
    if (r < 0 && r != -ENOENT)
        return fail_store(e);
    return 0; /* a version that no longer loads: no task check */
}

/* Runs read per page when a clear looks for the runs of its range. */
#define RANGE_PAGE 500

static int range_run_cmp(const void *a, const void *b)
{
    const struct run_rec *x = a, *y = b;
    if (x->logical_at_ms != y->logical_at_ms)
        return x->logical_at_ms < y->logical_at_ms ? -1 : 1;
    return strcmp(x->run_id, y->run_id);
}

/* Every run of dag_id whose logical date is in the range, oldest first, page by page (a run
 * a page shift showed twice, once): 0 and *out (store_free_runs), or OPS_STORE. */
static int range_runs(struct store *s, const char *dag_id, const struct ops_clear_range_opts *o,
                      struct run_rec **out, size_t *n, struct ops_err *e)
{
    struct run_filter f = {.dag_id = dag_id,
                           .has_from = true,
                           .has_to = true,
                           .from_ms = o->from_at_ms,
                           .to_ms = o->to_at_ms};
    struct run_rec *all = NULL;
    size_t nall = 0;
    for (int64_t off = 0;;) {
        struct run_rec *page = NULL;
        size_t k = 0;
        if (store_find_runs(s, &f, RANGE_PAGE, off, &page, &k, NULL, &e->err) < 0) {
            store_free_runs(all, nall);
            return fail_store(e);
        }
        if (k) {
            all = xrealloc(all, (nall + k) * sizeof *all);
            memcpy(all + nall, page, k * sizeof *page); /* the records move: page is freed bare */
            nall += k;
        }
        free(page);
        off += (int64_t)k;
        if (k < RANGE_PAGE)
            break;
    }
    if (nall)
        qsort(all, nall, sizeof *all, range_run_cmp);
    size_t m = 0;
    for (size_t i = 0; i < nall; i++) {
        if (m && strcmp(all[m - 1].run_id, all[i].run_id) == 0)
            run_rec_release(&all[i]);
        else
            all[m++] = all[i];
    }
    *out = all;
    *n = m;
    return 0;
}

/* The DAG versions a range clear loaded, each once (dag NULL: gone, or no longer loads). */
struct range_versions {
    char **hash;
    struct dag **dag;
    size_t n;
};

static void range_versions_release(struct range_versions *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->hash[i]);
        dag_free(v->dag[i]);
    }
    free(v->hash);
    free(v->dag);
}

/* The DAG version run started with (*out NULL when it cannot be cleared: no version, or one
 * that no longer loads): 0, or OPS_STORE. */
static int range_version(struct store *s, struct range_versions *v, const struct run_rec *run,
                         const struct dag **out, struct ops_err *e)
{
    *out = NULL;
    if (!run->dag_hash)
        return 0;
    for (size_t i = v->n; i-- > 0;) /* the last loaded first: runs in a row share theirs */
        if (strcmp(v->hash[i], run->dag_hash) == 0) {
            *out = v->dag[i];
            return 0;
        }
    char *src = NULL;
    size_t len = 0;
    int r = store_get_dag_version(s, run->dag_hash, &src, &len, &e->err);
    if (r < 0 && r != -ENOENT)
        return fail_store(e);
    struct dag *d = NULL;
    if (r == 0) {
        struct diag dg;
        diag_init(&dg);
        d = dag_load_mem(src, len, run->dag_path ? run->dag_path : "dag.yaml", &dg);
        diag_release(&dg);
    }
    free(src);
    v->hash = xrealloc(v->hash, (v->n + 1) * sizeof *v->hash);
    v->dag = xrealloc(v->dag, (v->n + 1) * sizeof *v->dag);
    v->hash[v->n] = xstrdup(run->dag_hash);
    v->dag[v->n++] = d;
    *out = d;
    return 0;
}

/* A run a range clear resets: its entry in the answer, its DAG version and the tasks to reset. */
struct range_item {
    size_t at; /* in out->runs */
    const struct dag *dag;
    bool *set; /* owned */
};

/* Resets the items' runs in one transaction, each read again inside it (one that is no longer
 * finished, cleared or resumed meanwhile, is left and listed as skipped), with the audit row
 * (who NULL: none). On a failure nothing is changed: OPS_STORE saying so. */
static int range_commit(struct store *s, const char *dag_id, const struct ops_clear_range_opts *o,
                        const struct range_item *items, size_t n, struct ops_clear_range *out,
                        struct ops_err *e)
{
    struct err *se = &e->err;
    size_t cleared = 0, skipped = 0;
    int r = store_begin(s, se);
    if (r < 0)
        goto fail;
    for (size_t i = 0; i < n && r == 0; i++) {
        struct ops_clear_range_run *cr = &out->runs[items[i].at];
        struct run_rec fresh;
        r = store_get_run(s, cr->run_id, &fresh, se);
        if (r == -ENOENT) { /* deleted meanwhile (retention): nothing to run again */
            cr->skipped = true;
            r = 0;
            continue;
        }
        if (r < 0)
            break;
        if (!run_state_finished(fresh.state))
            cr->skipped = true;
        else if ((r = clear_apply(s, items[i].dag, items[i].set, &fresh, RUN_QUEUED, &cr->nrows,
                                  se)) == 0)
            out->nrows += cr->nrows, cleared++;
        run_rec_release(&fresh);
    }
    for (size_t i = 0; i < out->nruns; i++)
        skipped += out->runs[i].skipped;
    if (r == 0 && o->who &&
        audit_record(s, o->who, "clear", dag_id, NULL, o->task,
                     json_pack("{s:s, s:s, s:s?, s:b, s:I, s:I, s:I}", "from", o->from_text, "to",
                               o->to_text, "task", o->task, "only_failed", o->only_failed, "runs",
                               (json_int_t)cleared, "skipped", (json_int_t)skipped,
                               "task_instances", (json_int_t)out->nrows)) < 0)
        r = err_set(se, ERR_DB, "cannot write the audit log");
    if (r == 0 && (r = store_commit(s, se)) == 0)
        return 0;
    store_rollback(s);
fail:
    for (size_t i = 0; i < out->nruns; i++)
        out->runs[i].nrows = 0;
    out->nrows = 0;
    fail_store(e);
    struct err keep = e->err;
    return err_set(&e->err, ERR_DB, "%s; nothing was cleared", err_msg(&keep));
}

int ops_clear_range(struct store *s, const char *home_dir, const char *dag_id,
                    const struct ops_clear_range_opts *o, struct ops_clear_range *out,
                    struct ops_err *e)
{
    memset(out, 0, sizeof *out);
    if (o->from_at_ms > o->to_at_ms)
        return fail(e, OPS_BAD_INPUT, -EINVAL, "bad range: from %s is after to %s",
                    o->from_text ? o->from_text : "?", o->to_text ? o->to_text : "?");
    struct dag *cur = NULL;
    int r = range_dag(s, dag_id, &cur, e);
    if (r < 0)
        return r;
    if (o->task && cur) {
        uint32_t k;
        if (!dag_find(cur, o->task, &k)) {
            r = no_task(cur, dag_id, o->task, e);
            dag_free(cur);
            return r;
        }
    }
    dag_free(cur);
    /* Everything is read first; the runs are then reset together, in one transaction. */
    struct run_rec *runs = NULL;
    size_t nruns = 0;
    if ((r = range_runs(s, dag_id, o, &runs, &nruns, e)) < 0)
        return r;
    struct range_versions vers = {0};
    struct range_item *items = NULL;
    size_t nitems = 0;
    for (size_t i = 0; i < nruns && r == 0; i++) {
        const struct run_rec *run = &runs[i];
        const struct dag *dag = NULL;
        if ((r = range_version(s, &vers, run, &dag, e)) < 0 || !dag)
            continue; /* no version: it cannot be cleared, the others can */
        uint32_t only = 0;
        bool has_only = o->task && dag_find(dag, o->task, &only);
        if (o->task && !has_only)
            continue;
        bool *set = xcalloc(dag->ntasks ? dag->ntasks : 1, sizeof *set);
        if (o->only_failed) {
            struct ti_rec *tis = NULL;
            size_t nt = 0;
            if (store_list_tis(s, run->run_id, &tis, &nt, &e->err) < 0) {
                free(set);
                r = fail_store(e);
                break;
            }
            for (size_t k = 0; k < nt; k++) {
                uint32_t t;
                if ((tis[k].state == TI_FAILED || tis[k].state == TI_UPSTREAM_FAILED) &&
                    dag_find(dag, tis[k].task ? tis[k].task : tis[k].task_id, &t) &&
                    (!has_only || t == only))
                    set[t] = true;
            }
            store_free_tis(tis, nt);
        } else {
            for (uint32_t k = 0; k < dag->ntasks; k++)
                set[k] = !has_only || k == only;
        }
        struct ops_clear_range_run cr = {.run_id = xstrdup(run->run_id),
                                         .logical_at_ms = run->logical_at_ms};
        for (uint32_t k = 0; k < dag->ntasks; k++)
            if (set[dag->topo[k]]) {
                cr.tasks = xrealloc(cr.tasks, (cr.ntasks + 1) * sizeof *cr.tasks);
                cr.tasks[cr.ntasks++] = xstrdup(dag->tasks[dag->topo[k]].name);
            }
        if (!cr.ntasks) {
            free(cr.run_id);
            free(set);
            continue;
        }
        cr.skipped = !run_state_finished(run->state); /* live: `tasks clear` clears it through
                                                        its scheduler */
        if (cr.skipped) {
            free(set);
        } else {
            items = xrealloc(items, (nitems + 1) * sizeof *items);
            items[nitems++] = (struct range_item){.at = out->nruns, .dag = dag, .set = set};
        }
        out->runs = xrealloc(out->runs, (out->nruns + 1) * sizeof *out->runs);
        out->runs[out->nruns++] = cr;
    }
    if (r == 0 && !o->dry_run && nitems)
        r = range_commit(s, dag_id, o, items, nitems, out, e);
    bool any = false;
    for (size_t i = 0; i < nitems; i++) {
        any = any || !out->runs[items[i].at].skipped;
        free(items[i].set);
    }
    free(items);
    range_versions_release(&vers);
    store_free_runs(runs, nruns);
    if (r == 0 && !o->dry_run && any)
        ops_ring(s, home_dir);
    return r;
}

json_t *ops_clear_range_json(const char *dag_id, const struct ops_clear_range *c, bool dry_run)
{
    json_t *runs = json_array();
    for (size_t i = 0; i < c->nruns; i++) {
        const struct ops_clear_range_run *x = &c->runs[i];
        json_t *tasks = json_array();
        for (size_t k = 0; k < x->ntasks; k++)
            json_array_append_new(tasks, json_string(x->tasks[k]));
        char iso[32];
        when_format_iso(x->logical_at_ms, iso, sizeof iso);
        json_array_append_new(runs, json_pack("{s:s, s:s, s:o, s:I, s:b}", "run_id", x->run_id,
                                              "logical_date", iso, "tasks", tasks, "task_instances",
                                              (json_int_t)x->nrows, "skipped", x->skipped));
    }
    return json_pack("{s:s, s:b, s:o, s:I}", "dag", dag_id, "dry_run", dry_run, "runs", runs,
                     "task_instances", (json_int_t)c->nrows);
}

/* ---- pools ---- */

int ops_pool_check(const char *name, struct ops_err *e)
{
    size_t n = strlen(name);
    bool ok = n > 0 && n <= DAG_ID_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char c = name[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '.' || c == '-';
    }
    if (ok)
        return 0;
    return fail(e, OPS_BAD_INPUT, -EINVAL,
                "bad pool name '%.200s%s': use 1 to %d characters of [A-Za-z0-9_.-]", name,
                n > 200 ? "..." : "", DAG_ID_MAX);
}

/* Sets name's entry, adding it when new. */
static void pool_put(struct ops_pool **v, size_t *n, size_t *cap, const char *name, int slots,
                     const char *source, int64_t updated_at_ms)
{
    size_t i = 0;
    while (i < *n && strcmp((*v)[i].name, name) != 0)
        i++;
    if (i == *n) {
        xgrow((void **)v, cap, *n + 1, sizeof **v);
        (*v)[(*n)++] = (struct ops_pool){.name = xstrdup(name)};
    }
    (*v)[i].slots = slots;
    (*v)[i].source = source;
    (*v)[i].updated_at_ms = updated_at_ms;
}

static int pool_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ops_pool *)a)->name, ((const struct ops_pool *)b)->name);
}

int ops_pools_list(struct store *s, const struct run_pool *cfg, size_t ncfg, struct ops_pool **out,
                   size_t *n, struct ops_err *e)
{
    struct err *se = &e->err;
    *out = NULL;
    *n = 0;
    struct pool_rec *recs = NULL;
    size_t nrecs = 0;
    if (s && store_list_pools(s, &recs, &nrecs, se) < 0)
        return fail_store(e);
    struct ops_pool *v = NULL;
    size_t nv = 0, cap = 0;
    pool_put(&v, &nv, &cap, "default", SCHED_POOL_DEFAULT_SLOTS, "default", -1);
    for (size_t i = 0; i < ncfg; i++)
        if (cfg[i].name)
            pool_put(&v, &nv, &cap, cfg[i].name, cfg[i].slots, "config", -1);
    for (size_t i = 0; i < nrecs; i++)
        pool_put(&v, &nv, &cap, recs[i].name, recs[i].slots, "store",
                 recs[i].updated_at_ms > 0 ? recs[i].updated_at_ms : -1);
    store_free_pools(recs, nrecs);
    qsort(v, nv, sizeof *v, pool_cmp);
    for (size_t i = 0; s && i < nv; i++) {
        if (store_pool_usage(s, v[i].name, &v[i].use, se) < 0) {
            ops_pools_free(v, nv);
            return fail_store(e);
        }
    }
    *out = v;
    *n = nv;
    return 0;
}

json_t *ops_pool_json(const struct ops_pool *p)
{
    int busy = p->use.queued + p->use.running;
    return json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:s}", "name", p->name, "slots", p->slots,
                     "running", p->use.running, "queued", p->use.queued, "scheduled",
                     p->use.scheduled, "open", p->slots > busy ? p->slots - busy : 0, "source",
                     p->source);
}

void ops_pools_free(struct ops_pool *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

int ops_pool_set(struct store *s, const char *home_dir, const char *name, int64_t slots,
                 struct ops_err *e)
{
    struct err *se = &e->err;
    int r = ops_pool_check(name, e);
    if (r < 0)
        return r;
    if (slots < 0 || slots > OPS_POOL_SLOTS_MAX)
        return fail(e, OPS_BAD_INPUT, -EINVAL,
                    "bad slots %lld: expected a whole number from 0 to %d", (long long)slots,
                    OPS_POOL_SLOTS_MAX);
    if (store_set_pool(s, name, (int)slots, se) < 0)
        return fail_store(e);
    ops_ring(s, home_dir); /* a running scheduler applies it at once */
    return 0;
}
