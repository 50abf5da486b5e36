/*
 * store.c - the front of the store: picks a backend from the url in
 * store_open, then forwards every call through the backend's function table
 * (struct store_backend, store_int.h). Also the record release functions,
 * which all backends share.
 *
 * A struct store owns its backend connection; one thread uses it at a time.
 */
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "base/fault.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "store/pg_int.h"
#include "store/store_int.h"

struct store {
    const struct store_backend *be; /* static */
    void *db;                       /* owned: the backend's connection */
};

const struct store_backend *store__backend(struct store *s)
{
    return s->be;
}

void *store__conn(struct store *s)
{
    return s->db;
}

void run_rec_release(struct run_rec *r)
{
    if (!r)
        return;
    free(r->run_id);
    free(r->dag_id);
    free(r->conf);
    free(r->dag_hash);
    free(r->dag_path);
    free(r->owner);
    memset(r, 0, sizeof(*r));
}

void ti_rec_release(struct ti_rec *t)
{
    if (!t)
        return;
    free(t->run_id);
    free(t->task_id);
    free(t->task);
    free(t->output);
    free(t->message);
    free(t->pool);
    free(t->worker);
    memset(t, 0, sizeof(*t));
}

void try_rec_release(struct try_rec *t)
{
    if (!t)
        return;
    free(t->run_id);
    free(t->task_id);
    free(t->hostname);
    free(t->worker);
    memset(t, 0, sizeof(*t));
}

void dag_rec_release(struct dag_rec *d)
{
    if (!d)
        return;
    free(d->dag_id);
    free(d->path);
    free(d->hash);
    free(d->schedule);
    free(d->description);
    memset(d, 0, sizeof(*d));
}

void import_error_rec_release(struct import_error_rec *e)
{
    if (!e)
        return;
    free(e->path);
    free(e->message);
    memset(e, 0, sizeof(*e));
}

void pool_rec_release(struct pool_rec *p)
{
    if (!p)
        return;
    free(p->name);
    memset(p, 0, sizeof(*p));
}

void revocation_rec_release(struct revocation_rec *r)
{
    if (!r)
        return;
    free(r->jti);
    free(r->name);
    memset(r, 0, sizeof(*r));
}

void user_rec_release(struct user_rec *u)
{
    if (!u)
        return;
    free(u->name);
    free(u->role);
    free(u->password_hash);
    memset(u, 0, sizeof(*u));
}

void run_request_release(struct run_request *q)
{
    if (!q)
        return;
    free(q->run_id);
    free(q->kind);
    memset(q, 0, sizeof(*q));
}

int store__txn_end(const struct store_backend *be, void *db, bool own, int r, struct err *e)
{
    if (!own)
        return r;
    if (r < 0) {
        be->rollback(db);
        return r;
    }
    return be->commit(db, e);
}

int64_t store__now_or(int64_t at_ms)
{
    return at_ms > 0 ? at_ms : when_now_ms();
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static bool is_pg(const char *url)
{
    return has_prefix(url, "postgresql://") || has_prefix(url, "postgres://");
}

const char *store_describe(const char *url, char *buf, size_t n)
{
    if (url && is_pg(url))
        pg__where(url, buf, n);
    else
        snprintf(buf, n, "%s",
                 !url                           ? ""
                 : has_prefix(url, "sqlite://") ? url + strlen("sqlite://")
                 : has_prefix(url, "sqlite:")   ? url + strlen("sqlite:")
                                                : url);
    return buf;
}

/* Wraps a backend's freshly opened connection. */
static int store_wrap(const struct store_backend *be, void *db, struct store **out)
{
    struct store *s = xmalloc(sizeof(*s));
    s->be = be;
    s->db = db;
    *out = s;
    return 0;
}

/* The SQLite file of url (a path, sqlite:PATH or sqlite:///PATH); NULL with e filled when it
 * names none. */
static const char *sqlite_file(const char *url, struct err *e)
{
    const char *path = has_prefix(url, "sqlite:") ? url + strlen("sqlite:") : url;
    if (has_prefix(path, "//"))
        path += 2; /* sqlite:///abs/path, as in SQLAlchemy urls */
    if (!*path)
        (void)err_set(e, -EINVAL, "no database path given after 'sqlite:'");
    return *path ? path : NULL;
}

static int open_url(const char *url, bool create, struct store **out, struct err *e)
{
    *out = NULL;
    if (!url || !*url)
        return err_set(e, -EINVAL, "no database given: set 'db' in baram.yaml or BARAM_DB");
    void *db = NULL;
    int r;
    /* Never echo a postgresql url: it may hold a password (store__pg_open says HOST/DB). */
    if (is_pg(url)) {
        if (FAULT(FP_STORE_OPEN))
            return err_set(e, ERR_DB, "cannot open database: injected fault FP_STORE_OPEN");
        r = create ? store__pg_open(url, &db, e) : store__pg_open_existing(url, &db, e);
        if (r < 0)
            return r;
        return store_wrap(&store__pg_backend, db, out);
    }
    const char *path = sqlite_file(url, e);
    if (!path)
        return -EINVAL;
    if (!create && access(path, F_OK) < 0)
        return err_set(e, -ENOENT,
                       "no database at '%s' (nothing has run in this home yet; set --home or "
                       "BARAM_HOME, or run 'baram init')",
                       path);
    if (FAULT(FP_STORE_OPEN))
        return err_set(e, ERR_DB, "cannot open database: injected fault FP_STORE_OPEN");
    if ((r = store__sqlite_open(path, &db, e)) < 0)
        return r;
    return store_wrap(&store__sqlite_backend, db, out);
}

int store_open(const char *url, struct store **out, struct err *e)
{
    return open_url(url, true, out, e);
}

int store_open_existing(const char *url, struct store **out, struct err *e)
{
    return open_url(url, false, out, e);
}

const char *store_backend_name(struct store *s)
{
    return s->be->name;
}

const char *store_url_backend(const char *url)
{
    return url && (has_prefix(url, "postgresql://") || has_prefix(url, "postgres://"))
               ? store__pg_backend.name
               : store__sqlite_backend.name;
}

int store_ping(struct store *s, struct err *e)
{
    return s->be->ping(s->db, e);
}

void store_close(struct store *s)
{
    if (!s)
        return;
    s->be->close(s->db);
    free(s);
}

int store_begin(struct store *s, struct err *e)
{
    return s->be->begin(s->db, e);
}

int store_commit(struct store *s, struct err *e)
{
    return s->be->commit(s->db, e);
}

void store_rollback(struct store *s)
{
    s->be->rollback(s->db);
}

int store_put_run(struct store *s, const struct run_rec *r, struct err *e)
{
    return s->be->put_run(s->db, r, e);
}

int store_put_ti(struct store *s, const struct ti_rec *t, struct err *e)
{
    return s->be->put_ti(s->db, t, e);
}

int store_put_try(struct store *s, const struct try_rec *t, struct err *e)
{
    return s->be->put_try(s->db, t, e);
}

int store_put_dag_version(struct store *s, const char *hash, const char *dag_id, const char *source,
                          size_t len, struct err *e)
{
    return s->be->put_dag_version(s->db, hash, dag_id, source, len, e);
}

int store_get_run(struct store *s, const char *run_id, struct run_rec *out, struct err *e)
{
    return s->be->get_run(s->db, run_id, out, e);
}

int store_get_ti(struct store *s, const char *run_id, const char *task_id, struct ti_rec *out,
                 struct err *e)
{
    return s->be->get_ti(s->db, run_id, task_id, out, e);
}

int store_list_runs(struct store *s, const char *dag_id, int64_t limit, int64_t offset,
                    struct run_rec **out, size_t *n, size_t *total, struct err *e)
{
    struct run_filter f = {.dag_id = dag_id};
    return s->be->list_runs(s->db, &f, limit, offset, out, n, total, e);
}

int store_find_runs(struct store *s, const struct run_filter *f, int64_t limit, int64_t offset,
                    struct run_rec **out, size_t *n, size_t *total, struct err *e)
{
    return s->be->list_runs(s->db, f, limit, offset, out, n, total, e);
}

const char *run_filter_states(const struct run_filter *f, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int st = 0; st < RUN_STATE_COUNT && f->states; st++) {
        if (!(f->states & RUN_STATE_BIT(st)))
            continue;
        int w = snprintf(buf + k, n - k, "%s%s,", k ? "" : ",", run_state_name(st));
        if (w < 0 || (size_t)w >= n - k)
            break;
        k += (size_t)w;
    }
    return buf;
}

int store_list_tis(struct store *s, const char *run_id, struct ti_rec **out, size_t *n,
                   struct err *e)
{
    return s->be->list_tis(s->db, run_id, out, n, e);
}

int store_list_tries(struct store *s, const char *run_id, const char *task_id, struct try_rec **out,
                     size_t *n, struct err *e)
{
    return s->be->list_tries(s->db, run_id, task_id, out, n, e);
}

int store_get_dag_version(struct store *s, const char *hash, char **source, size_t *len,
                          struct err *e)
{
    return s->be->get_dag_version(s->db, hash, source, len, e);
}

void store_free_runs(struct run_rec *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        run_rec_release(&v[i]);
    free(v);
}

void store_free_tis(struct ti_rec *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        ti_rec_release(&v[i]);
    free(v);
}

void store_free_tries(struct try_rec *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        try_rec_release(&v[i]);
    free(v);
}

/* ---- the scheduler's tables ---- */

int store_put_dag(struct store *s, const struct dag_rec *d, struct err *e)
{
    return s->be->put_dag(s->db, d, e);
}

int store_set_paused(struct store *s, const char *dag_id, bool paused, struct err *e)
{
    return s->be->set_paused(s->db, dag_id, paused, e);
}

int store_get_dag(struct store *s, const char *dag_id, struct dag_rec *out, struct err *e)
{
    return s->be->get_dag(s->db, dag_id, out, e);
}

int store_list_dags(struct store *s, struct dag_rec **out, size_t *n, struct err *e)
{
    return s->be->list_dags(s->db, out, n, e);
}

int store_set_import_errors(struct store *s, const char *path, const struct import_error_rec *v,
                            size_t n, struct err *e)
{
    return s->be->set_import_errors(s->db, path, v, n, e);
}

int store_list_import_errors(struct store *s, struct import_error_rec **out, size_t *n,
                             struct err *e)
{
    return s->be->list_import_errors(s->db, out, n, e);
}

int store_set_pool(struct store *s, const char *name, int slots, struct err *e)
{
    return s->be->set_pool(s->db, name, slots, e);
}

int store_list_pools(struct store *s, struct pool_rec **out, size_t *n, struct err *e)
{
    return s->be->list_pools(s->db, out, n, e);
}

int store_pool_usage(struct store *s, const char *pool, struct pool_usage *u, struct err *e)
{
    return s->be->pool_usage(s->db, pool, u, e);
}

int store_put_request(struct store *s, const char *run_id, const char *kind, struct err *e)
{
    return s->be->put_request(s->db, run_id, kind, e);
}

int store_delete_request(struct store *s, const char *run_id, const char *kind, struct err *e)
{
    return s->be->delete_request(s->db, run_id, kind, e);
}

int store_take_requests(struct store *s, int64_t sched_id, struct run_request **out, size_t *n,
                        struct err *e)
{
    return s->be->take_requests(s->db, sched_id, out, n, e);
}

int store_list_unfinished_runs(struct store *s, struct run_rec **out, size_t *n, struct err *e)
{
    return s->be->list_unfinished_runs(s->db, out, n, e);
}

int store_last_logical(struct store *s, const char *dag_id, enum run_type type, int64_t *at_ms,
                       struct err *e)
{
    return s->be->last_logical(s->db, dag_id, type, at_ms, e);
}

int store_has_run_at(struct store *s, const char *dag_id, int64_t logical_at_ms, bool *exists,
                     struct err *e)
{
    return s->be->has_run_at(s->db, dag_id, logical_at_ms, exists, e);
}

int store_claim_run(struct store *s, const char *prefix, int64_t at_ms, const struct run_rec *rec,
                    char *id, size_t idsz, struct err *e)
{
    return s->be->claim_run(s->db, prefix, at_ms, rec, id, idsz, e);
}

int store_delete_ti(struct store *s, const char *run_id, const char *task_id, struct err *e)
{
    return s->be->delete_ti(s->db, run_id, task_id, e);
}

void node_rec_release(struct node_rec *n)
{
    if (!n)
        return;
    free(n->role);
    free(n->name);
    free(n->hostname);
    free(n->queues);
    free(n->home);
    free(n->state);
    free(n->log_url);
    free(n->host_key);
    memset(n, 0, sizeof(*n));
}

void store_free_nodes(struct node_rec *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        node_rec_release(&v[i]);
    free(v);
}

bool store_shared(const struct store *s)
{
    return s->be->shared;
}

void store_set_dead_after(int64_t dead_after_ms)
{
    pg__set_limits(dead_after_ms);
}

int store_node_register(struct store *s, const struct node_rec *n, int64_t *id, struct err *e)
{
    *id = 0;
    if (!n->role || (strcmp(n->role, "scheduler") != 0 && strcmp(n->role, "worker") != 0) ||
        !n->name || !*n->name || !n->hostname)
        return err_set(e, -EINVAL,
                       "cannot register: a role (scheduler or worker), a name and a "
                       "hostname are needed");
    return s->be->node_register(s->db, n, id, e);
}

int store_node_heartbeat(struct store *s, int64_t id, bool *alive, struct err *e)
{
    *alive = false;
    return s->be->node_heartbeat(s->db, id, alive, e);
}

int store_node_stop(struct store *s, int64_t id, struct err *e)
{
    return s->be->node_stop(s->db, id, e);
}

int store_list_nodes(struct store *s, struct node_rec **out, size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    return s->be->list_nodes(s->db, out, n, e);
}

int store_live_schedulers(struct store *s, int64_t fresh_ms, const char *host, const char *home,
                          int64_t *n, struct err *e)
{
    return s->be->live_schedulers(s->db, fresh_ms, host, home, n, e);
}

int store_lost_scheduler(struct store *s, const char *run_id, char **name, struct err *e)
{
    *name = NULL;
    return s->be->lost_scheduler(s->db, run_id, name, e);
}

int store_unserved_tis(struct store *s, const char *run_id, struct ti_unserved **out, size_t *n,
                       struct err *e)
{
    *out = NULL;
    *n = 0;
    return s->be->unserved_tis ? s->be->unserved_tis(s->db, run_id, out, n, e) : 0;
}

void store_free_unserved(struct ti_unserved *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].task_id);
        free(v[i].queue);
    }
    free(v);
}

int store_reap_nodes(struct store *s, int64_t dead_after_ms, size_t *reaped, struct err *e)
{
    size_t k = 0;
    int r = s->be->reap_nodes(s->db, dead_after_ms, &k, e);
    if (reaped)
        *reaped = k;
    return r;
}

int store_claim_runs(struct store *s, int64_t id, int limit, size_t *claimed, struct err *e)
{
    size_t k = 0;
    int r = limit > 0 ? s->be->claim_runs(s->db, id, limit, &k, e) : 0;
    if (claimed)
        *claimed = k;
    return r;
}

int store_take_run(struct store *s, int64_t id, const char *run_id, bool *taken, struct err *e)
{
    *taken = false;
    return s->be->take_run(s->db, id, run_id, taken, e);
}

int store_list_owned_runs(struct store *s, int64_t id, struct run_rec **out, size_t *n,
                          struct err *e)
{
    *out = NULL;
    *n = 0;
    return s->be->list_owned_runs(s->db, id, out, n, e);
}

int store_fence(struct store *s, int64_t id, struct err *e)
{
    return s->be->fence(s->db, id, e);
}

int store_put_user(struct store *s, const struct user_rec *u, struct err *e)
{
    return s->be->put_user(s->db, u, e);
}

int store_add_user(struct store *s, const struct user_rec *u, struct err *e)
{
    return s->be->add_user(s->db, u, e);
}

int store_get_user(struct store *s, const char *name, struct user_rec *out, struct err *e)
{
    return s->be->get_user(s->db, name, out, e);
}

int store_list_users(struct store *s, struct user_rec **out, size_t *n, struct err *e)
{
    return s->be->list_users(s->db, out, n, e);
}

int store_delete_user(struct store *s, const char *name, struct err *e)
{
    return s->be->delete_user(s->db, name, e);
}

int store_count_users(struct store *s, const char *role, int64_t *count, struct err *e)
{
    return s->be->count_users(s->db, role, count, e);
}

int store_revoke_token(struct store *s, const char *jti, const char *name, int64_t exp_at_ms,
                       struct err *e)
{
    return s->be->revoke_token(s->db, jti, name, exp_at_ms, e);
}

int store_revoke_user(struct store *s, const char *name, int64_t before_s, struct err *e)
{
    return s->be->revoke_user(s->db, name, before_s, e);
}

int store_revocation_gen(struct store *s, int64_t *gen, struct err *e)
{
    return s->be->revocation_gen(s->db, gen, e);
}

int store_list_revocations(struct store *s, int64_t after_gen, struct revocation_rec **out,
                           size_t *n, struct err *e)
{
    return s->be->list_revocations(s->db, after_gen, out, n, e);
}

int store_purge_revocations(struct store *s, int64_t before_ms, int64_t *purged, struct err *e)
{
    return s->be->purge_revocations(s->db, before_ms, purged, e);
}

#define FREE_VEC(fn, T, release)                                                                   \
    void fn(T *v, size_t n)                                                                        \
    {                                                                                              \
        for (size_t i = 0; v && i < n; i++)                                                        \
            release(&v[i]);                                                                        \
        free(v);                                                                                   \
    }

FREE_VEC(store_free_dags, struct dag_rec, dag_rec_release)
FREE_VEC(store_free_import_errors, struct import_error_rec, import_error_rec_release)
FREE_VEC(store_free_pools, struct pool_rec, pool_rec_release)
FREE_VEC(store_free_requests, struct run_request, run_request_release)
FREE_VEC(store_free_users, struct user_rec, user_rec_release)
FREE_VEC(store_free_revocations, struct revocation_rec, revocation_rec_release)
