/*
 * routes_read.c - the API's read routes (SPEC section 8; see api.h for the
 * table's rules): DAGs, their graph, import errors, runs, task instances and
 * their tries, task logs, pools, workers, health and the OpenAPI document.
 *
 * Everything is read from the store on the calling thread's own connection
 * (api_store): the DAG list comes from the `dags` table the scheduler keeps
 * (never from parsing the DAG folder per request); a DAG's tasks and graph
 * come from the version it was loaded with (dag_versions, parsed on demand).
 * A DAG that only has runs (made by `baram run`) is shown from its newest
 * run. Logs are read from the path logpath_find_log builds from the stored run's
 * own dag and id (never from the URL), checked to stay under HOME/logs; a try
 * without a local file (run by a worker elsewhere, PostgreSQL) is read from the
 * store's copy or from its worker (ops/trylog.h) with a short-lived token made
 * for the caller. Asking a worker that does not answer holds this thread for
 * TRYLOG_TIMEOUT_MS, at most once per worker every few seconds (trylog.c).
 *
 * Handlers run on the server's threads (api.h: threading); they keep no
 * state between requests but the DAG list's cache, which is the server's
 * (struct api_dags_cache).
 */
#include "api/api.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/diag.h"
#include "base/err.h"
#include "base/hmap.h"
#include "base/log.h"
#include "base/vec.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "dag/dag.h"
#include "dag/layout.h"
#include "dag/params.h"
#include "ops/ops.h"
#include "ops/runfilter.h"
#include "ops/runjson.h"
#include "ops/trylog.h"
#include "ops/versions.h"
#include "sched/logpath.h"
#include "sched/run.h"
#include "store/deliveries.h"
#include "store/store.h"
#include "store/versions.h"

#define LOG_CHUNK_MAX (1024 * 1024) /* bytes of log per call */
#define TRY_MAX       1000000

/* The OpenAPI document, embedded by src/api/embed_openapi.cmake. */
extern const char api_openapi_json[];
extern const size_t api_openapi_json_len;

/* ---- helpers ---- */

/* why: the store's words, for the log only. */
static void db_problem(struct api_resp *rs, const char *why, int r)
{
    log_error("api: store read failed", "code=%d error=%s", r, log_q(why));
    api_problem(rs, 500, "Internal Server Error", "the store could not be read");
}

static int page_args(struct api_req *rq, struct api_resp *rs, int64_t *limit, int64_t *offset)
{
    if (api_query_int(rq, rs, "limit", 1, API_LIMIT_MAX, API_LIMIT_DEFAULT, limit) < 0)
        return -EINVAL;
    if (api_query_int(rq, rs, "offset", 0, INT32_MAX, 0, offset) < 0)
        return -EINVAL;
    return 0;
}

static json_t *list_obj(const char *key, json_t *items, size_t total)
{
    json_t *o = json_object();
    json_object_set_new(o, key, items);
    json_object_set_new(o, "total_entries", json_integer((json_int_t)total));
    return o;
}

static json_t *str_json(const char *s)
{
    if (!s)
        return json_null();
    char *c = runjson_utf8_clean(s, strlen(s));
    json_t *j = json_string(c);
    free(c);
    return j;
}

static const char *kind_name(enum task_kind k)
{
    switch (k) {
    case TASK_RUN:
        return "run";
    case TASK_HTTP:
        return "http";
    case TASK_WAIT:
        return "wait";
    }
    return "run";
}

/* The DAG's row, or a stand-in made from its newest run when it only has runs. 0, or -1 after
 * filling rs (404 or 500). */
static int dagrow_find(struct api_resp *rs, struct store *s, const char *id, struct dag_rec *d)
{
    struct err se = {0};
    memset(d, 0, sizeof *d);
    int r = store_get_dag(s, id, d, &se);
    if (r == 0)
        return 0;
    if (r != -ENOENT) {
        db_problem(rs, err_msg(&se), r);
        return -1;
    }
    struct run_rec *runs = NULL;
    size_t n = 0;
    r = store_list_runs(s, id, 1, 0, &runs, &n, NULL, &se);
    if (r < 0) {
        db_problem(rs, err_msg(&se), r);
        return -1;
    }
    if (n == 0) {
        api_problem(rs, 404, "Not Found", "no DAG '%s'", id);
        return -1;
    }
    memset(d, 0, sizeof *d);
    d->dag_id = xstrdup(id);
    d->hash = runs[0].dag_hash ? xstrdup(runs[0].dag_hash) : NULL;
    d->path = runs[0].dag_path ? xstrdup(runs[0].dag_path) : NULL;
    store_free_runs(runs, n);
    return 0;
}

/* The DAG object of lists: the row, plus its newest run. */
#define DAG_RECENT_RUNS 10 /* runs listed in a DAG's recent_runs */

/* A DAG as lists show it; g is its loaded version (NULL: unknown, next_run is null). */
static json_t *dag_json(struct store *s, const struct dag_rec *d, const struct dag *g)
{
    json_t *o = json_object();
    json_object_set_new(o, "dag_id", str_json(d->dag_id));
    json_object_set_new(o, "path", str_json(d->path));
    json_object_set_new(o, "description", str_json(d->description));
    json_object_set_new(o, "schedule", str_json(d->schedule));
    json_object_set_new(o, "paused", json_boolean(d->paused));
    json_object_set_new(o, "hash", str_json(d->hash));
    json_object_set_new(o, "updated_at",
                        runjson_time(d->updated_at_ms > 0 ? d->updated_at_ms : -1));
    struct run_rec *runs = NULL;
    size_t n = 0;
    if (store_list_runs(s, d->dag_id, DAG_RECENT_RUNS, 0, &runs, &n, NULL, NULL) < 0)
        n = 0;
    json_object_set_new(o, "last_run", n > 0 ? runjson_summary(&runs[0]) : json_null());
    json_t *recent = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_object();
        json_object_set_new(r, "run_id", str_json(runs[i].run_id));
        json_object_set_new(r, "state", json_string(run_state_name(runs[i].state)));
        json_object_set_new(r, "logical_date", runjson_time(runs[i].logical_at_ms));
        json_array_append_new(recent, r);
    }
    json_object_set_new(o, "recent_runs", recent);
    store_free_runs(runs, n);
    json_object_set_new(o, "next_run", runjson_next_run(s, g));
    /* tz: the zone the schedule follows; null when the version is unknown */
    json_object_set_new(o, "timezone", g ? json_string(dag_timezone(g)) : json_null());
    return o;
}

/* Parses the DAG version hash (NULL: none): the dag, or NULL when it is not stored or does not
 * parse any more. */
static struct dag *version_load(struct store *s, const char *hash, const char *path)
{
    if (!hash)
        return NULL;
    char *src = NULL;
    size_t len = 0;
    if (store_get_dag_version(s, hash, &src, &len, NULL) < 0)
        return NULL;
    struct diag d;
    diag_init(&d);
    struct dag *g = dag_load_mem(src, len, path ? path : "dag.yaml", &d);
    diag_release(&d);
    free(src);
    return g;
}

static json_t *tasks_json(const struct dag *g)
{
    json_t *a = json_array();
    for (uint32_t i = 0; i < g->ntasks; i++) {
        const struct dag_task *t = &g->tasks[i];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(t->name));
        json_object_set_new(o, "kind", json_string(kind_name(t->kind)));
        json_t *up = json_array();
        for (uint32_t k = g->graph.up_start[i]; k < g->graph.up_start[i + 1]; k++)
            json_array_append_new(up, json_string(g->tasks[g->graph.up[k]].name));
        json_object_set_new(o, "upstream", up);
        json_object_set_new(o, "trigger_rule", json_string(trigger_rule_name(t->trigger)));
        json_object_set_new(o, "retries", json_integer(t->retries));
        json_object_set_new(o, "pool", json_string(t->pool ? t->pool : "default"));
        json_object_set_new(o, "priority", json_integer(t->priority));
        json_object_set_new(o, "mapped", json_boolean(t->mapped));
        json_object_set_new(o, "timeout_s",
                            t->timeout_ms > 0 ? json_real((double)t->timeout_ms / 1000.0)
                                              : json_null());
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *params_json(const struct dag *g)
{
    json_t *o = json_object();
    for (size_t i = 0; i < g->nparams; i++)
        json_object_set_new(o, g->params[i].name, str_json(g->params[i].value));
    return o;
}

/* The run named by segment 1 (of the DAG in segment 0): 0, or -1 after filling rs. */
static int run_find(struct api_resp *rs, struct store *s, const char *dag, const char *run_id,
                    struct run_rec *run)
{
    struct err se = {0};
    int r = store_get_run(s, run_id, run, &se);
    if (r == -ENOENT) {
        api_problem(rs, 404, "Not Found", "no run '%s' of DAG '%s'", run_id, dag);
        return -1;
    }
    if (r < 0) {
        db_problem(rs, err_msg(&se), r);
        return -1;
    }
    if (!run->dag_id || strcmp(run->dag_id, dag) != 0) {
        run_rec_release(run);
        api_problem(rs, 404, "Not Found", "no run '%s' of DAG '%s'", run_id, dag);
        return -1;
    }
    return 0;
}

/* ---- handlers ---- */

/* The DAG list is what dashboards and scripts poll: each server builds it at most every
 * DAGS_CACHE_MS for all its threads (each DAG's object serialized once), so a poll costs a
 * copy, not 1 + DAGs queries while the scheduler commits. It may be that old, except after a
 * write through this server (api_dags_changed): a client that pauses a DAG then reads the
 * list sees its change. The cache is the server's (api_start makes it, api_stop frees it):
 * two servers in one process, on two databases, never serve each other's list. */
#define DAGS_CACHE_MS 200

/* A DAG version the list's next_run needs, parsed once per hash and kept while the list shows
 * it. */
struct version {
    char *hash;
    struct dag *dag; /* NULL: could not be read or parsed */
    bool used;       /* by the build in progress */
};

struct api_dags_cache {
    pthread_rwlock_t lock;
    pthread_mutex_t build; /* one thread rebuilds; the others serve the old list meanwhile */
    /* Under lock. */
    int64_t built_ms; /* monotonic; 0: never */
    char **items;     /* serialized DAG objects, owned */
    size_t *lens;
    size_t n;
    char *first_page; /* the whole answer for the default query (offset 0, default limit) */
    size_t first_len;
    uint64_t gen; /* api_dags_changed calls: a build that saw it move is stale at once */
    /* Only the thread holding build: the versions, and their index by hash (rebuilt when a
     * build drops unused ones). */
    VEC(struct version) versions;
    struct hmap by_hash; /* hash -> index in versions */
};

struct api_dags_cache *api_dags_cache_new(void)
{
    struct api_dags_cache *c = xcalloc(1, sizeof(*c));
    pthread_rwlock_init(&c->lock, NULL);
    pthread_mutex_init(&c->build, NULL);
    hmap_init(&c->by_hash);
    return c;
}

void api_dags_cache_free(struct api_dags_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->items[i]);
    free(c->items);
    free(c->lens);
    free(c->first_page);
    hmap_release(&c->by_hash);
    for (size_t i = 0; i < c->versions.n; i++) {
        free(c->versions.v[i].hash);
        dag_free(c->versions.v[i].dag);
    }
    VEC_FREE(&c->versions);
    pthread_mutex_destroy(&c->build);
    pthread_rwlock_destroy(&c->lock);
    free(c);
}

static void dags_cache_page(const struct api_dags_cache *c, struct buf *b, size_t offset,
                            size_t limit)
{
    (void)!buf_add(b, "{\"dags\":[", 9);
    for (size_t i = offset, k = 0; i < c->n && i < offset + limit; i++, k++) {
        if (k)
            (void)!buf_addc(b, ',');
        (void)!buf_add(b, c->items[i], c->lens[i]);
    }
    (void)!buf_addf(b, "],\"total_entries\":%zu}", c->n);
}

static struct dag *versions_get(struct api_dags_cache *c, struct store *s, const struct dag_rec *d)
{
    if (!d->hash || !d->schedule)
        return NULL;
    uint32_t at;
    if (!hmap_get(&c->by_hash, d->hash, strlen(d->hash), &at)) {
        struct version e = {xstrdup(d->hash), version_load(s, d->hash, d->path), false};
        at = (uint32_t)c->versions.n;
        VEC_PUSH(&c->versions, e);
        (void)hmap_put(&c->by_hash, e.hash, strlen(e.hash), at);
    }
    c->versions.v[at].used = true;
    return c->versions.v[at].dag;
}

/* Drops the versions the last build did not use and clears the marks for the next. */
static void versions_sweep(struct api_dags_cache *c)
{
    size_t k = 0;
    hmap_release(&c->by_hash); /* rebuilt below: indices move */
    for (size_t i = 0; i < c->versions.n; i++) {
        struct version e = c->versions.v[i];
        if (!e.used) {
            free(e.hash);
            dag_free(e.dag);
            continue;
        }
        e.used = false;
        (void)hmap_put(&c->by_hash, e.hash, strlen(e.hash), (uint32_t)k);
        c->versions.v[k++] = e;
    }
    c->versions.n = k;
}

/* Rebuilds the list (build mutex held). */
static int dags_cache_fill(struct api_dags_cache *c, struct store *s, struct err *se)
{
    pthread_rwlock_rdlock(&c->lock);
    uint64_t gen = c->gen;
    pthread_rwlock_unlock(&c->lock);
    struct dag_rec *v = NULL;
    size_t n = 0;
    int r = store_list_dags(s, &v, &n, se);
    if (r < 0)
        return r;
    char **items = xcalloc(n ? n : 1, sizeof(char *));
    size_t *lens = xcalloc(n ? n : 1, sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        json_t *o = dag_json(s, &v[i], versions_get(c, s, &v[i]));
        items[i] = json_dumps(o, RUNJSON_DUMP_FLAGS);
        json_decref(o);
        if (!items[i])
            items[i] = xstrdup("null");
        lens[i] = strlen(items[i]);
    }
    store_free_dags(v, n);
    versions_sweep(c);
    pthread_rwlock_wrlock(&c->lock);
    for (size_t i = 0; i < c->n; i++)
        free(c->items[i]);
    free(c->items);
    free(c->lens);
    free(c->first_page);
    c->items = items;
    c->lens = lens;
    c->n = n;
    struct buf b = BUF_INIT(BUF_NO_MAX);
    dags_cache_page(c, &b, 0, API_LIMIT_DEFAULT);
    c->first_page = buf_detach(&b, &c->first_len);
    c->built_ms = c->gen == gen ? when_mono_ms() : 0;
    pthread_rwlock_unlock(&c->lock);
    return 0;
}

void api_dags_changed(struct api *a)
{
    struct api_dags_cache *c = api_dags_cache(a);
    pthread_rwlock_wrlock(&c->lock);
    c->built_ms = 0;
    c->gen++;
    pthread_rwlock_unlock(&c->lock);
}

static void get_dags(struct api_req *rq, struct api_resp *rs)
{
    int64_t limit, offset;
    if (page_args(rq, rs, &limit, &offset) < 0)
        return;
    struct api_dags_cache *c = api_dags_cache(rq->api);
    pthread_rwlock_rdlock(&c->lock);
    int64_t built = c->built_ms;
    pthread_rwlock_unlock(&c->lock);
    if (!built || when_mono_ms() - built >= DAGS_CACHE_MS) {
        /* one thread rebuilds; while a list exists the others do not wait for it */
        if (built ? pthread_mutex_trylock(&c->build) == 0 : pthread_mutex_lock(&c->build) == 0) {
            pthread_rwlock_rdlock(&c->lock);
            bool stale = !c->built_ms || when_mono_ms() - c->built_ms >= DAGS_CACHE_MS;
            pthread_rwlock_unlock(&c->lock);
            int r = 0;
            struct store *s = NULL;
            struct err se = {0};
            if (stale) {
                s = api_store(rq, rs);
                r = s ? dags_cache_fill(c, s, &se) : -1;
            }
            pthread_mutex_unlock(&c->build);
            if (r < 0) {
                if (s)
                    db_problem(rs, err_msg(&se), r);
                return;
            }
        }
    }
    pthread_rwlock_rdlock(&c->lock);
    if (offset == 0 && limit == API_LIMIT_DEFAULT) {
        rs->raw = xmemdup(c->first_page, c->first_len);
        rs->raw_len = c->first_len;
    } else {
        struct buf b = BUF_INIT(BUF_NO_MAX);
        dags_cache_page(c, &b, (size_t)offset, (size_t)limit);
        rs->raw = buf_detach(&b, &rs->raw_len);
    }
    pthread_rwlock_unlock(&c->lock);
    rs->status = 200;
    rs->content_type = "application/json";
}

static void get_dag(struct api_req *rq, struct api_resp *rs)
{
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    struct dag_rec d;
    if (dagrow_find(rs, s, rq->seg[0], &d) < 0)
        return;
    struct dag *g = version_load(s, d.hash, d.path);
    json_t *o = dag_json(s, &d, g);
    if (g) {
        if (!d.schedule)
            json_object_set_new(o, "schedule", str_json(g->schedule));
        if (!d.description)
            json_object_set_new(o, "description", str_json(g->description));
        json_object_set_new(o, "catchup", json_boolean(g->catchup));
        json_object_set_new(o, "max_active_runs", json_integer(g->max_active_runs));
        json_object_set_new(o, "start_date", runjson_time(g->start_at_ms));
        json_object_set_new(o, "end_date", runjson_time(g->end_at_ms));
        json_object_set_new(o, "params", params_json(g));
        json_object_set_new(o, "params_schema", params_schema_json(g));
        json_object_set_new(o, "tasks", tasks_json(g));
        dag_free(g);
    } else {
        json_object_set_new(o, "params", json_null());
        json_object_set_new(o, "params_schema", json_null());
        json_object_set_new(o, "tasks", json_null());
    }
    dag_rec_release(&d);
    api_json(rs, 200, o);
}

/* ---- versions (SPEC section 13): GET /api/v1/dags/{dag}/versions[/{hash}] ---- */

/* Replaces d->hash by the version the graph query names (?run= or ?hash=, not both): 0, or -1
 * after filling rs (400 a malformed or doubled argument, 404 no such run or version of this
 * DAG, 500). */
static int graph_version(struct api_req *rq, struct api_resp *rs, struct store *s,
                         struct dag_rec *d, char **current)
{
    *current = NULL;
    const char *run_id = api_query(rq, "run"), *hash = api_query(rq, "hash");
    if (run_id && hash) {
        api_problem(rs, 400, "Bad Request", "give 'run' or 'hash', not both");
        return -1;
    }
    if (run_id) {
        if (!*run_id || strlen(run_id) > OPS_RUN_ID_MAX) {
            api_problem(rs, 400, "Bad Request", "bad 'run': expected a run id");
            return -1;
        }
        struct run_rec run;
        if (run_find(rs, s, d->dag_id, run_id, &run) < 0)
            return -1;
        *current = d->hash; /* drawn instead when the run's version is not stored */
        d->hash = run.dag_hash ? xstrdup(run.dag_hash) : NULL;
        run_rec_release(&run);
        return 0;
    }
    if (!hash)
        return 0;
    if (!ops_version_hash_ok(hash)) {
        api_problem(rs, 400, "Bad Request", "bad 'hash': expected a version's hex hash");
        return -1;
    }
    char *src = NULL;
    size_t len = 0;
    struct err se = {0};
    int r = store_get_dag_version_of(s, d->dag_id, hash, &src, &len, &se);
    free(src);
    if (r == -ENOENT) {
        api_problem(rs, 404, "Not Found", "no version '%s' of DAG '%s'", hash, d->dag_id);
        return -1;
    }
    if (r < 0) {
        db_problem(rs, err_msg(&se), r);
        return -1;
    }
    free(d->hash);
    d->hash = xstrdup(hash);
    return 0;
}

static void get_versions(struct api_req *rq, struct api_resp *rs)
{
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    json_t *o = NULL;
    struct err se = {0};
    int r = ops_dag_versions(s, rq->seg[0], &o, &se);
    if (r == -ENOENT)
        api_problem(rs, 404, "Not Found", "%s", err_msg(&se));
    else if (r < 0)
        db_problem(rs, err_msg(&se), r);
    else
        api_json(rs, 200, o);
}

/* A version's source as JSON {"dag_id", "hash", "source"} (a DAG file is UTF-8 YAML; any
 * byte that is not is shown as U+FFFD). */
static void get_version(struct api_req *rq, struct api_resp *rs)
{
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    const char *dag = rq->seg[0], *hash = rq->seg[1];
    if (!ops_version_hash_ok(hash)) {
        api_problem(rs, 404, "Not Found", "no version '%.80s' of DAG '%s'", hash, dag);
        return;
    }
    char *src = NULL;
    size_t len = 0;
    struct err se = {0};
    int r = store_get_dag_version_of(s, dag, hash, &src, &len, &se);
    if (r == -ENOENT) {
        api_problem(rs, 404, "Not Found", "no version '%s' of DAG '%s'", hash, dag);
        return;
    }
    if (r < 0) {
        db_problem(rs, err_msg(&se), r);
        return;
    }
    char *clean = runjson_utf8_clean(src, len);
    free(src);
    json_t *o = json_object();
    json_object_set_new(o, "dag_id", str_json(dag));
    json_object_set_new(o, "hash", json_string(hash));
    json_object_set_new(o, "source", json_string(clean));
    free(clean);
    api_json(rs, 200, o);
}

static void get_graph(struct api_req *rq, struct api_resp *rs)
{
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    struct dag_rec d;
    if (dagrow_find(rs, s, rq->seg[0], &d) < 0)
        return;
    /* ?run=ID or ?hash=H (versions): the graph of that run's or that version's DAG, so a run
     * shows the tasks it ran even after the file changed. */
    char *current = NULL;
    if (graph_version(rq, rs, s, &d, &current) < 0) {
        dag_rec_release(&d);
        return;
    }
    struct dag *g = version_load(s, d.hash, d.path);
    if (!g && current) {
        /* a run whose version was never stored (a run recorded before versions were, or
         * written by hand): the DAG's current graph, its hash saying which one it is */
        free(d.hash);
        d.hash = current;
        current = NULL;
        g = version_load(s, d.hash, d.path);
    }
    free(current);
    if (!g) {
        api_problem(rs, 404, "Not Found", "the version of DAG '%s' is not stored", rq->seg[0]);
        dag_rec_release(&d);
        return;
    }
    uint32_t *order = xmalloc((g->ntasks ? g->ntasks : 1) * sizeof(*order));
    uint64_t crossings = layout_order(&g->graph, g->level, g->nlevels, order);
    json_t *nodes = json_array(), *edges = json_array();
    for (uint32_t i = 0; i < g->ntasks; i++) {
        uint32_t layer = g->level[i];
        json_t *n = json_object();
        json_object_set_new(n, "id", json_string(g->tasks[i].name));
        json_object_set_new(n, "kind", json_string(kind_name(g->tasks[i].kind)));
        json_object_set_new(n, "mapped", json_boolean(g->tasks[i].mapped));
        json_object_set_new(n, "layer", json_integer(layer));
        json_object_set_new(n, "order", json_integer(order[i]));
        json_array_append_new(nodes, n);
        for (uint32_t k = g->graph.down_start[i]; k < g->graph.down_start[i + 1]; k++) {
            json_t *e = json_object();
            json_object_set_new(e, "from", json_string(g->tasks[i].name));
            json_object_set_new(e, "to", json_string(g->tasks[g->graph.down[k]].name));
            json_array_append_new(edges, e);
        }
    }
    free(order);
    json_t *o = json_object();
    json_object_set_new(o, "dag_id", str_json(d.dag_id));
    json_object_set_new(o, "hash", str_json(d.hash));
    json_object_set_new(o, "layers", json_integer(g->nlevels));
    json_object_set_new(o, "crossings", json_integer((json_int_t)crossings));
    json_object_set_new(o, "nodes", nodes);
    json_object_set_new(o, "edges", edges);
    dag_free(g);
    dag_rec_release(&d);
    api_json(rs, 200, o);
}

/* ---- GET /api/v1/dags/{dag}/grid ---- */

#define GRID_RUNS_DEFAULT 25
#define GRID_RUNS_MAX     100

/* A task instance's state as one letter of the grid's "states" strings ('.' for none). */
static char grid_code(enum ti_state st)
{
    switch (st) {
    case TI_NONE:
        return '.';
    case TI_SCHEDULED:
        return 'c';
    case TI_QUEUED:
        return 'q';
    case TI_RUNNING:
        return 'r';
    case TI_SUCCESS:
        return 's';
    case TI_FAILED:
        return 'f';
    case TI_SKIPPED:
        return 'k';
    case TI_UPSTREAM_FAILED:
        return 'u';
    case TI_UP_FOR_RETRY:
        return 'y';
    case TI_STATE_COUNT:
        break;
    }
    return '.';
}

/* The grid view's data in one answer: the DAG's newest runs (newest first), every task
 * instance id seen in them (in first-seen order), and per run a string of one state letter
 * per task (legend in "codes") with the try numbers beside it. For a 2,000-task DAG and 25
 * runs that is about 150 KB instead of 25 run documents of 330 KB. */
static void get_grid(struct api_req *rq, struct api_resp *rs)
{
    struct err se = {0};
    int64_t limit;
    if (api_query_int(rq, rs, "limit", 1, GRID_RUNS_MAX, GRID_RUNS_DEFAULT, &limit) < 0)
        return;
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    struct dag_rec d;
    if (dagrow_find(rs, s, rq->seg[0], &d) < 0)
        return;
    struct run_rec *runs = NULL;
    size_t nruns = 0;
    int r = store_list_runs(s, d.dag_id, limit, 0, &runs, &nruns, NULL, &se);
    struct ti_rec **tis = xcalloc(nruns ? nruns : 1, sizeof(*tis));
    size_t *ntis = xcalloc(nruns ? nruns : 1, sizeof(*ntis));
    for (size_t i = 0; r == 0 && i < nruns; i++)
        r = store_list_tis(s, runs[i].run_id, &tis[i], &ntis[i], &se);
    if (r < 0) {
        db_problem(rs, err_msg(&se), r);
    } else {
        struct hmap index;
        hmap_init(&index);
        json_t *tasks = json_array();
        uint32_t ntasks = 0;
        for (size_t i = 0; i < nruns; i++)
            for (size_t k = 0; k < ntis[i]; k++) {
                const char *id = tis[i][k].task_id ? tis[i][k].task_id : "";
                uint32_t seen;
                if (!hmap_get(&index, id, strlen(id), &seen)) {
                    (void)hmap_put(&index, id, strlen(id), ntasks++);
                    json_array_append_new(tasks, json_string(id));
                }
            }
        json_t *cols = json_array();
        char *line = xmalloc((size_t)ntasks + 1);
        for (size_t i = 0; i < nruns; i++) {
            memset(line, '.', ntasks);
            line[ntasks] = 0;
            json_t *tries = json_array();
            int *tr = xcalloc(ntasks ? ntasks : 1, sizeof(*tr));
            for (size_t k = 0; k < ntis[i]; k++) {
                const char *id = tis[i][k].task_id ? tis[i][k].task_id : "";
                uint32_t at = 0;
                if (hmap_get(&index, id, strlen(id), &at)) {
                    line[at] = grid_code(tis[i][k].state);
                    tr[at] = tis[i][k].try_number;
                }
            }
            for (uint32_t t = 0; t < ntasks; t++)
                json_array_append_new(tries, json_integer(tr[t]));
            free(tr);
            json_t *col = runjson_summary(&runs[i]);
            json_object_set_new(col, "states", json_string(line));
            json_object_set_new(col, "tries", tries);
            json_array_append_new(cols, col);
        }
        free(line);
        hmap_release(&index);
        json_t *codes = json_object();
        for (int st = 0; st < TI_STATE_COUNT; st++) {
            char c[2] = {grid_code((enum ti_state)st), 0};
            json_object_set_new(codes, c, json_string(ti_state_name((enum ti_state)st)));
        }
        json_t *o = json_object();
        json_object_set_new(o, "dag_id", str_json(d.dag_id));
        json_object_set_new(o, "tasks", tasks);
        json_object_set_new(o, "codes", codes);
        json_object_set_new(o, "runs", cols);
        api_json(rs, 200, o);
    }
    for (size_t i = 0; i < nruns; i++)
        store_free_tis(tis[i], ntis[i]);
    free(tis);
    free(ntis);
    store_free_runs(runs, nruns);
    dag_rec_release(&d);
}

static void get_import_errors(struct api_req *rq, struct api_resp *rs)
{
    struct err se = {0};
    int64_t limit, offset;
    if (page_args(rq, rs, &limit, &offset) < 0)
        return;
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    struct import_error_rec *v = NULL;
    size_t n = 0;
    int r = store_list_import_errors(s, &v, &n, &se);
    if (r < 0) {
        db_problem(rs, err_msg(&se), r);
        return;
    }
    json_t *a = json_array();
    for (size_t i = (size_t)offset; i < n && i < (size_t)(offset + limit); i++) {
        json_t *o = json_object();
        json_object_set_new(o, "path", str_json(v[i].path));
        json_object_set_new(o, "line", json_integer(v[i].line));
        json_object_set_new(o, "col", json_integer(v[i].col));
        json_object_set_new(o, "message", str_json(v[i].message));
        json_object_set_new(o, "at", runjson_time(v[i].at_ms > 0 ? v[i].at_ms : -1));
        json_array_append_new(a, o);
    }
    store_free_import_errors(v, n);
    api_json(rs, 200, list_obj("import_errors", a, n));
}

/* Answers a page of runs ({"runs":[...],"total_entries"}) and frees them. */
static void runs_answer(struct api_resp *rs, struct run_rec *runs, size_t n, size_t total)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = runjson_summary(&runs[i]);
        json_object_set_new(o, "queued_at", runjson_time(runs[i].queued_at_ms));
        json_object_set_new(o, "hash", str_json(runs[i].dag_hash)); /* its version, as a run's */
        json_array_append_new(a, o);
    }
    store_free_runs(runs, n);
    api_json(rs, 200, list_obj("runs", a, total));
}

static void get_runs(struct api_req *rq, struct api_resp *rs)
{
    struct err se = {0};
    int64_t limit, offset;
    if (page_args(rq, rs, &limit, &offset) < 0)
        return;
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    struct run_rec *runs = NULL;
    size_t n = 0, total = 0;
    int r = store_list_runs(s, rq->seg[0], limit, offset, &runs, &n, &total, &se);
    if (r < 0) {
        db_problem(rs, err_msg(&se), r);
        return;
    }
    if (total == 0) {
        struct dag_rec d;
        r = store_get_dag(s, rq->seg[0], &d, &se);
        if (r == 0) {
            dag_rec_release(&d);
        } else {
            store_free_runs(runs, n);
            if (r == -ENOENT)
                api_problem(rs, 404, "Not Found", "no DAG '%s'", rq->seg[0]);
            else
                db_problem(rs, err_msg(&se), r);
            return;
        }
    }
    runs_answer(rs, runs, n, total);
}

/* GET /api/v1/runs: the runs of every DAG, newest logical date first (then newest queued), the
 * filters of ops/runfilter.h (?state=failed,running&dag=&from=&to=). */
static void get_all_runs(struct api_req *rq, struct api_resp *rs)
{
    struct err se = {0};
    int64_t limit, offset;
    if (page_args(rq, rs, &limit, &offset) < 0)
        return;
    static const char *const names[4] = {"query argument 'state'", "query argument 'from'",
                                         "query argument 'to'", "query argument 'dag'"};
    const char *dag = api_query(rq, "dag");
    struct run_filter f;
    if (runfilter_parse(&f, dag, api_query(rq, "state"), api_query(rq, "from"), api_query(rq, "to"),
                        names, &se) < 0) {
        api_problem(rs, 400, "Bad Request", "%s", err_msg(&se));
        return;
    }
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    struct run_rec *runs = NULL;
    size_t n = 0, total = 0;
    int r = store_find_runs(s, &f, limit, offset, &runs, &n, &total, &se);
    if (r < 0) {
        db_problem(rs, err_msg(&se), r);
        return;
    }
    runs_answer(rs, runs, n, total);
}

static void get_run(struct api_req *rq, struct api_resp *rs)
{
    struct err se = {0};
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    struct run_rec run;
    if (run_find(rs, s, rq->seg[0], rq->seg[1], &run) < 0)
        return;
    struct ti_rec *tis = NULL;
    size_t n = 0;
    int r = store_list_tis(s, run.run_id, &tis, &n, &se);
    if (r < 0) {
        run_rec_release(&run);
        db_problem(rs, err_msg(&se), r);
        return;
    }
    json_t *notes = NULL;
    r = runjson_notes(s, run.run_id, &notes, &se);
    if (r < 0) {
        store_free_tis(tis, n);
        run_rec_release(&run);
        db_problem(rs, err_msg(&se), r);
        return;
    }
    json_t *o = runjson_run(&run, tis, n);
    runjson_set_notes(json_object_get(o, "tasks"), notes);
    json_decref(notes);
    json_object_set_new(o, "queued_at", runjson_time(run.queued_at_ms));
    json_object_set_new(o, "hash", str_json(run.dag_hash));
    if (run.conf) {
        json_t *conf = json_loads(run.conf, 0, NULL);
        json_object_set_new(o, "conf", conf ? conf : json_null());
    } else {
        json_object_set_new(o, "conf", json_null());
    }
    store_free_tis(tis, n);
    run_rec_release(&run);
    api_json(rs, 200, o);
}

/* notify: the run's hook notifications (store/deliveries.h), oldest first. */
static void get_deliveries(struct api_req *rq, struct api_resp *rs)
{
    struct err se = {0};
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    struct run_rec run;
    if (run_find(rs, s, rq->seg[0], rq->seg[1], &run) < 0)
        return;
    struct delivery_rec *v = NULL;
    size_t n = 0;
    int r = store_list_deliveries(s, run.run_id, &v, &n, &se);
    run_rec_release(&run);
    if (r < 0) {
        db_problem(rs, err_msg(&se), r);
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct delivery_rec *d = &v[i];
        json_t *o = json_object();
        json_object_set_new(o, "task", str_json(d->task_id));
        json_object_set_new(o, "try",
                            d->try_number > 0 ? json_integer(d->try_number) : json_null());
        json_object_set_new(o, "hook", str_json(d->hook));
        json_object_set_new(o, "notifier", str_json(d->notifier));
        json_object_set_new(o, "attempts", json_integer(d->attempts));
        json_object_set_new(o, "state", str_json(d->state));
        json_object_set_new(o, "status", d->status ? json_integer(d->status) : json_null());
        json_object_set_new(o, "error", str_json(d->error));
        json_object_set_new(o, "created_at", runjson_time(d->created_at_ms));
        json_object_set_new(o, "updated_at", runjson_time(d->updated_at_ms));
        json_array_append_new(a, o);
    }
    deliveries_free(v, n);
    api_json(rs, 200, list_obj("deliveries", a, n));
}

static void get_tasks(struct api_req *rq, struct api_resp *rs)
{
    struct err se = {0};
    int64_t limit, offset;
    if (page_args(rq, rs, &limit, &offset) < 0)
        return;
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    struct run_rec run;
    if (run_find(rs, s, rq->seg[0], rq->seg[1], &run) < 0)
        return;
    struct ti_rec *tis = NULL;
    size_t n = 0;
    json_t *notes = NULL;
    int r = store_list_tis(s, run.run_id, &tis, &n, &se);
    if (r == 0 && (r = runjson_notes(s, run.run_id, &notes, &se)) < 0)
        store_free_tis(tis, n);
    run_rec_release(&run);
    if (r < 0) {
        db_problem(rs, err_msg(&se), r);
        return;
    }
    json_t *a = json_array();
    for (size_t i = (size_t)offset; i < n && i < (size_t)(offset + limit); i++)
        json_array_append_new(a, runjson_ti(&tis[i]));
    store_free_tis(tis, n);
    runjson_set_notes(a, notes);
    json_decref(notes);
    api_json(rs, 200, list_obj("tasks", a, n));
}

/* The task instance named by segment 2 of the run in segment 1: 0, or -1 after filling rs. */
static int ti_find(struct api_req *rq, struct api_resp *rs, struct store *s, struct run_rec *run,
                   struct ti_rec *ti)
{
    struct err se = {0};
    if (run_find(rs, s, rq->seg[0], rq->seg[1], run) < 0)
        return -1;
    int r = store_get_ti(s, run->run_id, rq->seg[2], ti, &se);
    if (r == 0)
        return 0;
    if (r == -ENOENT)
        api_problem(rs, 404, "Not Found", "no task '%s' in run '%s'", rq->seg[2], rq->seg[1]);
    else
        db_problem(rs, err_msg(&se), r);
    run_rec_release(run);
    return -1;
}

static void get_task(struct api_req *rq, struct api_resp *rs)
{
    struct err se = {0};
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    struct run_rec run;
    struct ti_rec ti;
    if (ti_find(rq, rs, s, &run, &ti) < 0)
        return;
    struct try_rec *tries = NULL;
    size_t n = 0;
    json_t *notes = NULL;
    int r = store_list_tries(s, run.run_id, ti.task_id, &tries, &n, &se);
    if (r == 0)
        r = runjson_notes(s, run.run_id, &notes, &se);
    if (r < 0) {
        db_problem(rs, err_msg(&se), r);
    } else {
        json_t *o = runjson_ti(&ti);
        runjson_set_notes(o, notes);
        json_decref(notes);
        json_object_set_new(o, "dag", str_json(run.dag_id));
        json_object_set_new(o, "run_id", str_json(run.run_id));
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, runjson_try(&tries[i]));
        json_object_set_new(o, "tries", a);
        api_json(rs, 200, o);
    }
    store_free_tries(tries, n);
    ti_rec_release(&ti);
    run_rec_release(&run);
}

/* Whether path (resolved) lies inside dir (resolved). */
static bool path_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && path[n] == '/';
}

#define LOG_TOKEN_TTL_MS 60000

/* A log route's answer: len bytes of log (data, taken) read from offset. */
static void log_answer(struct api_resp *rs, char *data, size_t len, int64_t offset)
{
    rs->status = 200;
    rs->raw = data;
    rs->raw_len = len;
    rs->content_type = "text/plain; charset=utf-8";
    rs->header_name = "X-Next-Offset";
    rs->header_value = xasprintf("%lld", (long long)(offset + (int64_t)len));
}

/* The answer of a log route for a try with no local file: the store's copy or its worker's
 * (ops/trylog.h), asked with a minute's viewer token in the caller's name (a worker checks it
 * with the home's secret.key, as this server does). Viewer whatever the caller's role: the
 * token travels to the worker's log_url, maybe over plain http, and reading a log is all it
 * is for. */
static void remote_log(struct api_req *rq, struct api_resp *rs, struct store *s,
                       const struct ti_rec *ti, int try_number, int64_t offset)
{
    char *token = NULL;
    int64_t exp_s;
    if (rq->opts->auth) {
        const char *name = auth_name_ok(rq->user.name) ? rq->user.name : "baram-api";
        if (auth_issue(rq->opts->auth, name, AUTH_VIEWER, LOG_TOKEN_TTL_MS, &token, &exp_s) < 0)
            token = NULL;
    }
    struct trylog_req q = {.run_id = ti->run_id,
                           .task_id = ti->task_id,
                           .try_number = try_number,
                           .offset = offset,
                           .max = LOG_CHUNK_MAX,
                           .token = token};
    char *data = NULL, *msg = NULL;
    size_t len = 0;
    enum trylog_source src;
    struct err e = {0};
    int r = trylog_read(s, &q, &data, &len, &src, &msg, &e);
    free(token);
    if (r == 0) {
        log_answer(rs, data, len, offset);
    } else if (r == -ENOENT) {
        api_problem(rs, 404, "Not Found", "no log for try %d of task '%s'", try_number,
                    ti->task_id);
    } else if (msg) {
        api_problem(rs, 502, "Bad Gateway", "%s", msg);
    } else {
        db_problem(rs, err_msg(&e), r);
    }
    free(msg);
}

static void get_logs(struct api_req *rq, struct api_resp *rs)
{
    int64_t want_try, offset;
    if (api_query_int(rq, rs, "try", 1, TRY_MAX, 0, &want_try) < 0 ||
        api_query_int(rq, rs, "offset", 0, INT64_MAX / 2, 0, &offset) < 0)
        return;
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    struct run_rec run;
    struct ti_rec ti;
    if (ti_find(rq, rs, s, &run, &ti) < 0)
        return;
    int try_number = want_try ? (int)want_try : ti.try_number;
    char *folder = NULL, *real = NULL, *logs_real = NULL;
    struct buf path = BUF_INIT(BUF_NO_MAX), logs = BUF_INIT(BUF_NO_MAX);
    int fd = -1;
    if (try_number < 1 || try_number > ti.try_number) {
        api_problem(rs, 404, "Not Found", "task '%s' has no try %d (tries so far: %d)", ti.task_id,
                    try_number, ti.try_number);
        goto out;
    }
    folder =
        logpath_find_log(rq->opts->home, run.dag_id, run.run_id, ti.task, ti.map_index, try_number);
    (void)!buf_adds(&path, folder);
    (void)!buf_addf(&logs, "%s/logs", rq->opts->home);
    real = realpath(path.data, NULL);
    logs_real = realpath(logs.data, NULL);
    if (!real && logs_real) {
        remote_log(rq, rs, s, &ti, try_number, offset);
        goto out;
    }
    if (!real || !logs_real || !path_under(real, logs_real)) {
        api_problem(rs, 404, "Not Found", "no log for try %d of task '%s'", try_number, ti.task_id);
        goto out;
    }
    fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        api_problem(rs, 404, "Not Found", "no log for try %d of task '%s'", try_number, ti.task_id);
        goto out;
    }
    size_t want = 0;
    if (offset < st.st_size)
        want = (size_t)(st.st_size - offset) < LOG_CHUNK_MAX ? (size_t)(st.st_size - offset)
                                                             : LOG_CHUNK_MAX;
    char *data = xmalloc(want + 1);
    size_t got = 0;
    while (got < want) {
        ssize_t k = pread(fd, data + got, want - got, (off_t)(offset + (int64_t)got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    log_answer(rs, data, got, offset);
out:
    if (fd >= 0)
        close(fd);
    free(folder);
    free(real);
    free(logs_real);
    buf_release(&path);
    buf_release(&logs);
    ti_rec_release(&ti);
    run_rec_release(&run);
}

static void get_pools(struct api_req *rq, struct api_resp *rs)
{
    int64_t limit, offset;
    if (page_args(rq, rs, &limit, &offset) < 0)
        return;
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    struct ops_pool *v = NULL;
    size_t n = 0;
    struct ops_err e = {0};
    if (ops_pools_list(s, rq->opts->pools, rq->opts->npools, &v, &n, &e) < 0) {
        db_problem(rs, err_msg(&e.err), ERR_DB);
        ops_err_release(&e);
        return;
    }
    json_t *a = json_array();
    for (size_t i = (size_t)offset; i < n && i < (size_t)(offset + limit); i++) {
        json_t *o = ops_pool_json(&v[i]);
        json_object_set_new(o, "updated_at", runjson_time(v[i].updated_at_ms));
        json_array_append_new(a, o);
    }
    ops_pools_free(v, n);
    api_json(rs, 200, list_obj("pools", a, n));
}

static void get_workers(struct api_req *rq, struct api_resp *rs)
{
    int64_t limit, offset;
    if (page_args(rq, rs, &limit, &offset) < 0)
        return;
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    json_t *all = NULL;
    struct err e = {0};
    if (runjson_workers(s, &all, &e) < 0) {
        db_problem(rs, err_msg(&e), ERR_DB);
        return;
    }
    size_t n = json_array_size(all);
    json_t *a = json_array();
    for (size_t i = (size_t)offset; i < n && i < (size_t)(offset + limit); i++)
        json_array_append(a, json_array_get(all, i));
    json_decref(all);
    api_json(rs, 200, list_obj("workers", a, n));
}

/* Liveness and the database: its backend, whether a round trip (SELECT 1) works on this
 * thread's connection (reconnected first when it was lost), and how long it took. */
static void get_health(struct api_req *rq, struct api_resp *rs)
{
    int64_t t0 = when_mono_ns();
    struct store *s = api_store(rq, rs);
    bool ok = s && store_ping(s, NULL) == 0;
    int64_t took_ns = when_mono_ns() - t0;
    json_t *db = json_object();
    json_object_set_new(
        db, "backend",
        json_string(s ? store_backend_name(s) : store_url_backend(rq->opts->store_url)));
    json_object_set_new(db, "reachable", json_boolean(ok));
    json_object_set_new(db, "latency_ms", ok ? json_real((double)took_ns / 1e6) : json_null());
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(ok ? "ok" : "error"));
    json_object_set_new(o, "store", json_string(ok ? "ok" : "error"));
    json_object_set_new(o, "database", db);
    api_json(rs, ok ? 200 : 503, o);
}

static void get_openapi(struct api_req *rq, struct api_resp *rs)
{
    rs->status = 200;
    rs->raw = xmemdup(api_openapi_json, api_openapi_json_len);
    rs->raw_len = api_openapi_json_len;
    rs->content_type = "application/json";
}

const struct api_route api_routes_read[] = {
    {"GET", "/api/v1/openapi.json", AUTH_NONE, get_openapi, 0},
    {"GET", "/api/v1/health", AUTH_NONE, get_health, API_ROUTE_UNPACED},
    {"GET", "/api/v1/dags", AUTH_VIEWER, get_dags, 0},
    {"GET", "/api/v1/dags/{dag}", AUTH_VIEWER, get_dag, 0},
    {"GET", "/api/v1/dags/{dag}/graph", AUTH_VIEWER, get_graph, 0},
    {"GET", "/api/v1/dags/{dag}/versions", AUTH_VIEWER, get_versions, 0},
    {"GET", "/api/v1/dags/{dag}/versions/{hash}", AUTH_VIEWER, get_version, 0},
    {"GET", "/api/v1/dags/{dag}/grid", AUTH_VIEWER, get_grid, 0},
    {"GET", "/api/v1/import-errors", AUTH_VIEWER, get_import_errors, 0},
    {"GET", "/api/v1/dags/{dag}/runs", AUTH_VIEWER, get_runs, 0},
    {"GET", "/api/v1/dags/{dag}/runs/{run}", AUTH_VIEWER, get_run, 0},
    {"GET", "/api/v1/dags/{dag}/runs/{run}/tasks", AUTH_VIEWER, get_tasks, 0},
    {"GET", "/api/v1/dags/{dag}/runs/{run}/deliveries", AUTH_VIEWER, get_deliveries, 0},
    {"GET", "/api/v1/dags/{dag}/runs/{run}/tasks/{task}", AUTH_VIEWER, get_task, 0},
    {"GET", "/api/v1/dags/{dag}/runs/{run}/tasks/{task}/logs", AUTH_VIEWER, get_logs, 0},
    {"GET", "/api/v1/runs", AUTH_VIEWER, get_all_runs, 0},
    {"GET", "/api/v1/pools", AUTH_VIEWER, get_pools, 0},
    {"GET", "/api/v1/workers", AUTH_VIEWER, get_workers, 0},
    {NULL, NULL, AUTH_NONE, NULL, 0},
};
