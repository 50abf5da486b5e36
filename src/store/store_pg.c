/*
 * store_pg.c - the PostgreSQL backend of the store (store.h, store_int.h,
 * pg_int.h).
 *
 * One struct pg_conn is one libpq connection, used by one thread at a time.
 * Records keep the SQLite backend's semantics exactly: times are bigint ms,
 * NULL for -1; states are stored by name; writes are whole-row upserts
 * (INSERT ... ON CONFLICT DO UPDATE), so every JSON shape is the same on both
 * backends.
 *
 * Errors return ERR_DB (-ECONNRESET when the connection is gone, -ENOENT for a
 * missing row) and fill the caller's struct err (may be NULL) with a message
 * for people naming "PostgreSQL at HOST/DB", never the URL.
 */
#include "store/pg_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/xalloc.h"

struct pg_conn {
    PGconn *pg;               /* owned */
    char where[PG_WHERE_MAX]; /* "PostgreSQL at HOST/DB" */
    bool in_tx;               /* a transaction begun by pg_begin is open */
};

PGconn *store__pg(void *conn)
{
    return conn ? ((struct pg_conn *)conn)->pg : NULL;
}

const char *store__pg_where(void *conn)
{
    return conn ? ((struct pg_conn *)conn)->where : "PostgreSQL";
}

static void pg_close(void *db)
{
    struct pg_conn *c = db;
    if (!c)
        return;
    PQfinish(c->pg);
    free(c);
}

int store__pg_open(const char *url, void **db, struct err *e)
{
    *db = NULL;
    struct pg_conn *c = xcalloc(1, sizeof(*c));
    pg__where(url, c->where, sizeof c->where);
    int r = pg__connect(url, &c->pg, e);
    if (r == 0)
        r = migrate_pg(c->pg, c->where, e);
    if (r < 0) {
        pg_close(c);
        return r;
    }
    *db = c;
    return 0;
}

/* ---- transactions ---- */

static int pg_begin(void *db, struct err *e)
{
    struct pg_conn *c = db;
    char what[PG_WHERE_MAX + 64];
    snprintf(what, sizeof what, "start a transaction on %s", c->where);
    int r = pg__exec(c->pg, "BEGIN", what, e);
    c->in_tx = r == 0;
    return r;
}

static void pg_rollback(void *db)
{
    struct pg_conn *c = db;
    if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        PQclear(PQexec(c->pg, "ROLLBACK"));
    c->in_tx = false;
}

/* On failure the transaction is rolled back, so the caller can simply retry the batch. */
static int pg_commit(void *db, struct err *e)
{
    struct pg_conn *c = db;
    char what[PG_WHERE_MAX + 64];
    snprintf(what, sizeof what, "commit to %s", c->where);
    int r = pg__exec(c->pg, "COMMIT", what, e);
    if (r < 0)
        pg_rollback(c);
    c->in_tx = false;
    return r;
}

/* ---- not written yet ---- */

static int not_yet(struct err *e, const char *what)
{
    return err_set(e, -ENOTSUP, "the PostgreSQL store cannot %s yet", what);
}

static int pg_put_run(void *db, const struct run_rec *r, struct err *e)
{
    return not_yet(e, "put_run");
}

static int pg_put_ti(void *db, const struct ti_rec *t, struct err *e)
{
    return not_yet(e, "put_ti");
}

static int pg_put_try(void *db, const struct try_rec *t, struct err *e)
{
    return not_yet(e, "put_try");
}

static int pg_put_dag_version(void *db, const char *hash, const char *dag_id, const char *source,
                              size_t len, struct err *e)
{
    return not_yet(e, "put_dag_version");
}

static int pg_get_run(void *db, const char *run_id, struct run_rec *out, struct err *e)
{
    return not_yet(e, "get_run");
}

static int pg_get_ti(void *db, const char *run_id, const char *task_id, struct ti_rec *out,
                     struct err *e)
{
    return not_yet(e, "get_ti");
}

static int pg_list_runs(void *db, const char *dag_id, int64_t limit, int64_t offset,
                        struct run_rec **out, size_t *n, size_t *total, struct err *e)
{
    return not_yet(e, "list_runs");
}

static int pg_list_tis(void *db, const char *run_id, struct ti_rec **out, size_t *n, struct err *e)
{
    return not_yet(e, "list_tis");
}

static int pg_list_tries(void *db, const char *run_id, const char *task_id, struct try_rec **out,
                         size_t *n, struct err *e)
{
    return not_yet(e, "list_tries");
}

static int pg_get_dag_version(void *db, const char *hash, char **source, size_t *len, struct err *e)
{
    return not_yet(e, "get_dag_version");
}

static int pg_put_dag(void *db, const struct dag_rec *d, struct err *e)
{
    return not_yet(e, "put_dag");
}

static int pg_set_paused(void *db, const char *dag_id, bool paused, struct err *e)
{
    return not_yet(e, "set_paused");
}

static int pg_get_dag(void *db, const char *dag_id, struct dag_rec *out, struct err *e)
{
    return not_yet(e, "get_dag");
}

static int pg_list_dags(void *db, struct dag_rec **out, size_t *n, struct err *e)
{
    return not_yet(e, "list_dags");
}

static int pg_set_import_errors(void *db, const char *path, const struct import_error_rec *v,
                                size_t n, struct err *e)
{
    return not_yet(e, "set_import_errors");
}

static int pg_list_import_errors(void *db, struct import_error_rec **out, size_t *n, struct err *e)
{
    return not_yet(e, "list_import_errors");
}

static int pg_set_pool(void *db, const char *name, int slots, struct err *e)
{
    return not_yet(e, "set_pool");
}

static int pg_list_pools(void *db, struct pool_rec **out, size_t *n, struct err *e)
{
    return not_yet(e, "list_pools");
}

static int pg_pool_usage(void *db, const char *pool, int *used, struct err *e)
{
    return not_yet(e, "pool_usage");
}

static int pg_put_request(void *db, const char *run_id, const char *kind, struct err *e)
{
    return not_yet(e, "put_request");
}

static int pg_take_requests(void *db, struct run_request **out, size_t *n, struct err *e)
{
    return not_yet(e, "take_requests");
}

static int pg_delete_request(void *db, const char *run_id, const char *kind, struct err *e)
{
    return not_yet(e, "delete_request");
}

static int pg_list_unfinished_runs(void *db, struct run_rec **out, size_t *n, struct err *e)
{
    return not_yet(e, "list_unfinished_runs");
}

static int pg_last_logical(void *db, const char *dag_id, enum run_type type, int64_t *at_ms,
                           struct err *e)
{
    return not_yet(e, "last_logical");
}

static int pg_has_run_at(void *db, const char *dag_id, int64_t logical_at_ms, bool *exists,
                         struct err *e)
{
    return not_yet(e, "has_run_at");
}

static int pg_claim_run(void *db, const char *prefix, int64_t at_ms, const struct run_rec *rec,
                        char *id, size_t idsz, struct err *e)
{
    return not_yet(e, "claim_run");
}

static int pg_delete_ti(void *db, const char *run_id, const char *task_id, struct err *e)
{
    return not_yet(e, "delete_ti");
}

static int pg_put_user(void *db, const struct user_rec *u, struct err *e)
{
    return not_yet(e, "put_user");
}

static int pg_get_user(void *db, const char *name, struct user_rec *out, struct err *e)
{
    return not_yet(e, "get_user");
}

static int pg_list_users(void *db, struct user_rec **out, size_t *n, struct err *e)
{
    return not_yet(e, "list_users");
}

static int pg_delete_user(void *db, const char *name, struct err *e)
{
    return not_yet(e, "delete_user");
}

static int pg_count_users(void *db, const char *role, int64_t *count, struct err *e)
{
    return not_yet(e, "count_users");
}

static int pg_revoke_token(void *db, const char *jti, const char *name, int64_t exp_at_ms,
                           struct err *e)
{
    return not_yet(e, "revoke_token");
}

static int pg_revoke_user(void *db, const char *name, int64_t before_s, struct err *e)
{
    return not_yet(e, "revoke_user");
}

static int pg_revocation_gen(void *db, int64_t *gen, struct err *e)
{
    return not_yet(e, "revocation_gen");
}

static int pg_list_revocations(void *db, int64_t after_gen, struct revocation_rec **out, size_t *n,
                               struct err *e)
{
    return not_yet(e, "list_revocations");
}

static int pg_purge_revocations(void *db, int64_t before_ms, int64_t *purged, struct err *e)
{
    return not_yet(e, "purge_revocations");
}

const struct store_backend store__pg_backend = {
    .name = "postgresql",
    .close = pg_close,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .put_run = pg_put_run,
    .put_ti = pg_put_ti,
    .put_try = pg_put_try,
    .put_dag_version = pg_put_dag_version,
    .get_run = pg_get_run,
    .get_ti = pg_get_ti,
    .list_runs = pg_list_runs,
    .list_tis = pg_list_tis,
    .list_tries = pg_list_tries,
    .get_dag_version = pg_get_dag_version,
    .put_dag = pg_put_dag,
    .set_paused = pg_set_paused,
    .get_dag = pg_get_dag,
    .list_dags = pg_list_dags,
    .set_import_errors = pg_set_import_errors,
    .list_import_errors = pg_list_import_errors,
    .set_pool = pg_set_pool,
    .list_pools = pg_list_pools,
    .pool_usage = pg_pool_usage,
    .put_request = pg_put_request,
    .take_requests = pg_take_requests,
    .delete_request = pg_delete_request,
    .list_unfinished_runs = pg_list_unfinished_runs,
    .last_logical = pg_last_logical,
    .has_run_at = pg_has_run_at,
    .claim_run = pg_claim_run,
    .delete_ti = pg_delete_ti,
    .put_user = pg_put_user,
    .get_user = pg_get_user,
    .list_users = pg_list_users,
    .delete_user = pg_delete_user,
    .count_users = pg_count_users,
    .revoke_token = pg_revoke_token,
    .revoke_user = pg_revoke_user,
    .revocation_gen = pg_revocation_gen,
    .list_revocations = pg_list_revocations,
    .purge_revocations = pg_purge_revocations,
    .events_w_open = events_pg_w_open,
    .events_w_close = events_pg_w_close,
    .events_w_put = events_pg_w_put,
    .events_w_prune = events_pg_w_prune,
    .events_list = events_pg_list,
    .events_last_id = events_pg_last_id,
    .count_tis = events_pg_count_tis,
    .count_runs = events_pg_count_runs,
    .events_put = events_pg_put,
    .events_w_flush = events_pg_w_flush,
    .notify = events_pg_notify,
    .ping = events_pg_ping,
};
