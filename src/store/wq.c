/*
 * wq.c - the work queue between schedulers and workers on PostgreSQL (see wq.h), sent with
 * libpq on the connection of a struct store (pg_int.h). Each call is one statement: a
 * plpgsql function of migration pg/0010 when the step takes several (claim, finish,
 * withdraw, sweep, adopt, submit), so it costs one round trip and one commit however many
 * tries it carries. Arrays go as one text parameter each ("{a,b}" literals, pg__arr_*);
 * a finish's outputs and logs go as one binary bytea parameter with offsets, so a log of
 * megabytes is neither escaped nor doubled.
 *
 * Any thread that may block, one at a time per store (store.h).
 */
#include "store/wq.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/xalloc.h"
#include "store/pg_int.h"
#include "store/store.h"
#include "store/store_int.h"

bool wq_supported(struct store *s)
{
    return s && store__backend(s) == &store__pg_backend;
}

static int wq_nosup(struct err *e)
{
    return err_set(e, -ENOTSUP, "workers need PostgreSQL (db: postgresql://...)");
}

static PGconn *wq_conn(struct store *s)
{
    return store__pg(store__conn(s));
}

/* Appends to b, which has no maximum: cannot fail. */
#define WQ_ADD(x)                                                                                  \
    do {                                                                                           \
        if ((x) < 0) {                                                                             \
        }                                                                                          \
    } while (0)

static void wq_bufs_init(struct buf *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf_init(&a[i], BUF_NO_MAX);
}

static void wq_bufs_release(struct buf *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf_release(&a[i]);
}

static char *wq_dup(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : xstrdup(PQgetvalue(r, row, col));
}

static int64_t wq_num(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static bool wq_bool(const PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && strcmp(PQgetvalue(r, row, col), "t") == 0;
}

/* Rows of r as wq_kill (columns run, task, try from col0): malloc'd, NULL when none. */
static struct wq_kill *wq_keys(const PGresult *r, int col0, const char *run_id, size_t *n)
{
    int k = PQntuples(r), m = 0;
    struct wq_kill *v = k > 0 ? xcalloc((size_t)k, sizeof *v) : NULL;
    for (int i = 0; i < k; i++) {
        if (PQgetisnull(r, i, col0 + 1))
            continue;
        v[m].run_id = run_id ? xstrdup(run_id) : wq_dup(r, i, col0);
        v[m].task_id = wq_dup(r, i, col0 + 1);
        v[m].try_number = (int)wq_num(r, i, col0 + 2);
        m++;
    }
    *n = (size_t)m;
    if (m == 0) {
        free(v);
        v = NULL;
    }
    return v;
}

/* Marks flags[pos - 1] for each row of r (1-based positions in column 0, of n); flags may be
 * NULL. */
static void wq_positions(const PGresult *r, bool *flags, size_t n)
{
    for (int i = 0; flags && i < PQntuples(r); i++) {
        int64_t pos = wq_num(r, i, 0);
        if (pos >= 1 && (size_t)pos <= n)
            flags[pos - 1] = true;
    }
}

/* Length of the valid UTF-8 sequence at s (n > 0 bytes left), 0 when invalid (or NUL). */
static size_t wq_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t min;
    if (c == 0)
        return 0;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        len = 2, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        len = 3, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        len = 4, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    uint32_t cp = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Whether s is valid UTF-8 (a text or jsonb column refuses anything else). */
static bool wq_utf8_valid(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0, k; i < n; i += k)
        if ((k = wq_utf8_seq((const unsigned char *)s + i, n - i)) == 0)
            return false;
    return true;
}

/* s as valid UTF-8 (a text column refuses anything else): each invalid byte becomes '?'.
 * malloc'd; NULL for NULL. */
static char *wq_utf8(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *o = xstrdup(s);
    for (size_t i = 0; i < n;) {
        size_t k = wq_utf8_seq((const unsigned char *)s + i, n - i);
        if (k == 0) {
            o[i++] = '?';
            continue;
        }
        i += k;
    }
    return o;
}

/* ---- submit ---- */

/* The SQLSTATE a function of 0010 raises for a scheduler that is not active any more
 * (object_not_in_prerequisite_state). */
#define WQ_NOT_ACTIVE "55000"

static const char sql_submit[] = "SELECT * FROM baram_wq_submit($1, $2::text[], $3::text[], "
                                 "$4::int[], $5::text[], $6::text[], $7::int[], $8::text[])";

int wq_submit(struct store *s, int64_t sched_id, const struct wq_item *v, size_t n, struct err *e)
{
    if (!wq_supported(s))
        return wq_nosup(e);
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!v[i].spec || !*v[i].spec || strcmp(v[i].spec, "{}") == 0)
            return err_set(e, -EINVAL, "try %d of %s in run %s has no spec: it cannot be queued",
                           v[i].try_number, v[i].task_id, v[i].run_id);
        /* One bad spec would fail the whole statement: refuse it here, naming its try. */
        if (!wq_utf8_valid(v[i].spec))
            return err_set(e, -EINVAL,
                           "the spec of try %d of %s in run %s is not valid UTF-8: it cannot be "
                           "queued",
                           v[i].try_number, v[i].task_id, v[i].run_id);
    }
    struct buf a[7];
    wq_bufs_init(a, 7);
    for (size_t i = 0; i < n; i++) {
        pg__arr_str(&a[0], v[i].run_id);
        pg__arr_str(&a[1], v[i].task_id);
        pg__arr_int(&a[2], v[i].try_number);
        pg__arr_str(&a[3], v[i].queue && *v[i].queue ? v[i].queue : "default");
        pg__arr_str(&a[4], v[i].pool && *v[i].pool ? v[i].pool : "default");
        pg__arr_int(&a[5], v[i].priority);
        pg__arr_str(&a[6], v[i].spec);
    }
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, sched_id);
    const char *p[8] = {id};
    for (size_t i = 0; i < 7; i++)
        p[i + 1] = pg__arr_end(&a[i]);
    PGconn *c = wq_conn(s);
    PGresult *res = PQexecParams(c, sql_submit, 8, NULL, p, NULL, NULL, 0);
    wq_bufs_release(a, 7);
    int r = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (st && strcmp(st, WQ_NOT_ACTIVE) == 0)
            r = err_set(e, -ESTALE,
                        "scheduler %" PRId64 " is no longer active: its tries are not handed "
                        "out",
                        sched_id);
        else
            r = pg__fail(c, res, "queueing tries for workers", e);
    }
    PQclear(res);
    return r;
}

/* ---- claim ---- */

void wq_free_claimed(struct wq_claimed *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].run_id);
        free(v[i].task_id);
        free(v[i].spec);
    }
    free(v);
}

/* Appends the claimed rows of res (columns col..col+3: run, task, try, spec; rows whose run
 * is NULL skipped) to *out. */
static void wq_claimed_fill(const PGresult *res, int col, struct wq_claimed **out, size_t *n)
{
    int k = PQntuples(res), m = 0;
    for (int i = 0; i < k; i++)
        m += !PQgetisnull(res, i, col);
    if (m == 0)
        return;
    *out = xcalloc((size_t)m, sizeof **out);
    for (int i = 0; i < k; i++) {
        if (PQgetisnull(res, i, col))
            continue;
        struct wq_claimed *c = &(*out)[(*n)++];
        c->run_id = wq_dup(res, i, col);
        c->task_id = wq_dup(res, i, col + 1);
        c->try_number = (int)wq_num(res, i, col + 2);
        c->spec = wq_dup(res, i, col + 3);
    }
}

/* The finish (and claim) of wq_finish, wq_claim and wq_finish_claim in one statement: the
 * finish of v[0..n) when n > 0, then a claim of up to max when queues is not NULL. */
static int wq_finish_claim_run(struct store *s, int64_t worker_id, const char *worker_name,
                               const struct wq_end *v, size_t n, bool *accepted,
                               const char *const *queues, size_t nqueues, int max,
                               struct wq_claimed **out, size_t *nout, struct err *e);

int wq_claim(struct store *s, int64_t worker_id, const char *worker_name, const char *const *queues,
             size_t nqueues, int max, struct wq_claimed **out, size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    if (!wq_supported(s))
        return wq_nosup(e);
    if (max <= 0 || nqueues == 0)
        return 0;
    return wq_finish_claim_run(s, worker_id, worker_name, NULL, 0, NULL, queues, nqueues, max, out,
                               n, e);
}

/* ---- finish ---- */

/* Appends p[0..len) to the blob and its 1-based offset and length to the arrays (-1: none). */
static void wq_blob_add(struct buf *blob, struct buf *off, struct buf *len, const char *p, size_t n)
{
    if (!p) {
        pg__arr_int(off, 0);
        pg__arr_int(len, -1);
        return;
    }
    pg__arr_int(off, (int64_t)blob->len + 1);
    pg__arr_int(len, (int64_t)n);
    WQ_ADD(buf_add(blob, p, n));
}

/* The finish's arguments $1..$16: the worker, 14 arrays, the blob of outputs and logs. */
#define WQ_SQL_FINISH                                                                              \
    "baram_wq_finish($1, $2::text[], $3::text[], $4::int[], $5::int[], $6::int[], $7::bool[], "    \
    "$8::bool[], $9::bool[], $10::int8[], $11::text[], $12::int[], $13::int[], $14::int[], "       \
    "$15::int[], $16::bytea)"
/* The claim's: $1 (the worker), then its name, queues and max. */
#define WQ_SQL_CLAIM(name, queues, max)                                                            \
    "baram_wq_claim($1, " name ", " queues "::text[], " max "::int)"

/* Finish only: the positions accepted. Claim only, or both (finish first: its rows go, then
 * the claim fills the slots they freed; UNION ALL runs its branches in order): a row is a
 * position (column 0) or a claimed try (columns 1-4). */
static const char sql_finish[] = "SELECT f FROM " WQ_SQL_FINISH " AS f";
static const char sql_claim[] = "SELECT NULL::int, c.* FROM " WQ_SQL_CLAIM("$2", "$3", "$4") " c";
static const char sql_finish_claim[] =
    "SELECT f, NULL, NULL, NULL::int, NULL FROM " WQ_SQL_FINISH " AS f UNION ALL "
    "SELECT NULL, c.* FROM " WQ_SQL_CLAIM("$17", "$18", "$19") " c";

enum { WQ_FIN_ARRAYS = 14, WQ_MAX_PARAMS = 19 };

static int wq_finish_claim_run(struct store *s, int64_t worker_id, const char *worker_name,
                               const struct wq_end *v, size_t n, bool *accepted,
                               const char *const *queues, size_t nqueues, int max,
                               struct wq_claimed **out, size_t *nout, struct err *e)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += (v[i].output ? v[i].output_len : 0) + (v[i].log ? v[i].log_len : 0);
    /* int offsets on the server (substring): a batch stays well under 2 GiB. */
    if (total >= (size_t)1 << 30)
        return err_set(e, ERR_TOO_BIG,
                       "finishing %zu tries: %zu bytes of logs and outputs in one "
                       "batch (at most 1 GiB)",
                       n, total);
    struct buf a[WQ_FIN_ARRAYS], blob, q;
    wq_bufs_init(a, WQ_FIN_ARRAYS);
    buf_init(&blob, BUF_NO_MAX);
    buf_init(&q, BUF_NO_MAX);
    for (size_t i = 0; i < n; i++) {
        pg__arr_str(&a[0], v[i].run_id);
        pg__arr_str(&a[1], v[i].task_id);
        pg__arr_int(&a[2], v[i].try_number);
        pg__arr_int(&a[3], v[i].exit_code);
        pg__arr_int(&a[4], v[i].term_signal);
        pg__arr_bool(&a[5], v[i].timed_out);
        pg__arr_bool(&a[6], v[i].killed);
        pg__arr_bool(&a[7], v[i].met);
        pg__arr_int(&a[8], v[i].hold_ms);
        char *msg = wq_utf8(v[i].message);
        pg__arr_str(&a[9], msg);
        free(msg);
        wq_blob_add(&blob, &a[10], &a[11], v[i].output, v[i].output_len);
        wq_blob_add(&blob, &a[12], &a[13], v[i].log, v[i].log_len);
    }
    for (size_t i = 0; queues && i < nqueues; i++)
        pg__arr_str(&q, queues[i]);
    char id[24], mx[24];
    snprintf(id, sizeof id, "%" PRId64, worker_id);
    snprintf(mx, sizeof mx, "%d", max);
    const char *p[WQ_MAX_PARAMS] = {id};
    int lens[WQ_MAX_PARAMS] = {0}, fmts[WQ_MAX_PARAMS] = {0};
    int np = 1;
    const char *sql = sql_claim, *what = "claiming tries";
    if (n > 0) {
        for (size_t i = 0; i < WQ_FIN_ARRAYS; i++)
            p[np++] = pg__arr_end(&a[i]);
        p[np] = blob.data;
        lens[np] = (int)blob.len;
        fmts[np++] = 1; /* binary: the bytes as they are */
        sql = queues ? sql_finish_claim : sql_finish;
        what = "reporting the ends of tries";
    }
    if (queues) {
        p[np++] = worker_name;
        p[np++] = pg__arr_end(&q);
        p[np++] = mx;
    }
    PGconn *c = wq_conn(s);
    PGresult *res = PQexecParams(c, sql, np, NULL, p, lens, fmts, 0);
    wq_bufs_release(a, WQ_FIN_ARRAYS);
    buf_release(&blob);
    buf_release(&q);
    int r = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        r = pg__fail(c, res, what, e);
    } else {
        if (n > 0)
            wq_positions(res, accepted, n);
        if (queues)
            wq_claimed_fill(res, 1, out, nout);
    }
    PQclear(res);
    return r;
}

int wq_finish(struct store *s, int64_t worker_id, const struct wq_end *v, size_t n, bool *accepted,
              struct err *e)
{
    for (size_t i = 0; accepted && i < n; i++)
        accepted[i] = false;
    if (!wq_supported(s))
        return wq_nosup(e);
    if (n == 0)
        return 0;
    return wq_finish_claim_run(s, worker_id, NULL, v, n, accepted, NULL, 0, 0, NULL, NULL, e);
}

int wq_finish_claim(struct store *s, int64_t worker_id, const char *worker_name,
                    const struct wq_end *v, size_t n, bool *accepted, const char *const *queues,
                    size_t nqueues, int max, struct wq_claimed **out, size_t *nout, struct err *e)
{
    for (size_t i = 0; accepted && i < n; i++)
        accepted[i] = false;
    *out = NULL;
    *nout = 0;
    if (!wq_supported(s))
        return wq_nosup(e);
    if (max <= 0 || nqueues == 0)
        return n == 0 ? 0 : wq_finish(s, worker_id, v, n, accepted, e);
    return wq_finish_claim_run(s, worker_id, worker_name, v, n, accepted, queues, nqueues, max, out,
                               nout, e);
}

/* ---- heartbeat ---- */

void wq_free_kills(struct wq_kill *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].run_id);
        free(v[i].task_id);
    }
    free(v);
}

/* One row always (the LEFT JOIN): alive, then the keys of the worker's running rows and
 * whether their kill was requested (NULL when none). The heartbeat's UPDATE waits for a sweep
 * holding the worker's row, then re-checks the state: a worker declared dead meanwhile is
 * told so. */
static const char sql_heartbeat[] =
    "WITH hb AS (UPDATE workers SET heartbeat_at = now(), "
    "state = CASE WHEN $2::bool THEN 'draining' ELSE state END "
    "WHERE id = $1 AND state IN ('active', 'draining') RETURNING id) "
    "SELECT EXISTS (SELECT 1 FROM hb), q.run_id, q.task_id, q.try_number, q.kill_requested "
    "FROM (SELECT 1) one LEFT JOIN ti_queue q ON q.worker_id = $1 AND q.state = 'running'";

int wq_heartbeat(struct store *s, int64_t worker_id, bool draining, bool *alive,
                 struct wq_kill **kills, size_t *nkills, struct err *e)
{
    struct wq_kill *rows = NULL;
    size_t nrows = 0;
    int r = wq_heartbeat_rows(s, worker_id, draining, alive, kills, nkills, &rows, &nrows, e);
    wq_free_kills(rows, nrows);
    return r;
}

int wq_heartbeat_rows(struct store *s, int64_t worker_id, bool draining, bool *alive,
                      struct wq_kill **kills, size_t *nkills, struct wq_kill **running,
                      size_t *nrunning, struct err *e)
{
    *alive = false;
    *kills = *running = NULL;
    *nkills = *nrunning = 0;
    if (!wq_supported(s))
        return wq_nosup(e);
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, worker_id);
    const char *p[] = {id, draining ? "t" : "f"};
    PGresult *res = NULL;
    int r =
        pg__exec_params(wq_conn(s), sql_heartbeat, 2, p, "recording a worker's heartbeat", &res, e);
    if (r < 0)
        return r;
    *alive = PQntuples(res) > 0 && wq_bool(res, 0, 0);
    int rows = PQntuples(res);
    if (rows > 0 && !PQgetisnull(res, 0, 2)) {
        *running = xcalloc((size_t)rows, sizeof(**running));
        *kills = xcalloc((size_t)rows, sizeof(**kills));
    }
    for (int i = 0; *running && i < rows; i++) {
        struct wq_kill x = {wq_dup(res, i, 1), wq_dup(res, i, 2), (int)wq_num(res, i, 3)};
        if (wq_bool(res, i, 4))
            (*kills)[(*nkills)++] =
                (struct wq_kill){xstrdup(x.run_id), xstrdup(x.task_id), x.try_number};
        (*running)[(*nrunning)++] = x;
    }
    if (*nkills == 0) {
        free(*kills);
        *kills = NULL;
    }
    PQclear(res);
    return 0;
}

/* ---- withdraw ---- */

int wq_withdraw(struct store *s, const struct wq_kill *v, size_t n, bool *withdrawn, struct err *e)
{
    for (size_t i = 0; withdrawn && i < n; i++)
        withdrawn[i] = false;
    if (!wq_supported(s))
        return wq_nosup(e);
    if (n == 0)
        return 0;
    struct buf a[3];
    wq_bufs_init(a, 3);
    for (size_t i = 0; i < n; i++) {
        pg__arr_str(&a[0], v[i].run_id);
        pg__arr_str(&a[1], v[i].task_id);
        pg__arr_int(&a[2], v[i].try_number);
    }
    const char *p[] = {pg__arr_end(&a[0]), pg__arr_end(&a[1]), pg__arr_end(&a[2])};
    PGresult *res = NULL;
    int r = pg__exec_params(wq_conn(s),
                            "SELECT * FROM baram_wq_withdraw($1::text[], $2::text[], $3::int[])", 3,
                            p, "withdrawing tries", &res, e);
    wq_bufs_release(a, 3);
    if (r < 0)
        return r;
    if (withdrawn)
        wq_positions(res, withdrawn, n);
    PQclear(res);
    return 0;
}

/* ---- the inbox ---- */

void wq_free_results(struct wq_result *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].run_id);
        free(v[i].task_id);
        free(v[i].worker);
        free(v[i].message);
        free(v[i].output);
    }
    free(v);
}

/* Rows a worker's claim or finish holds are skipped, never waited for (a wait could close a
 * lock cycle with a finish of several rows): that transaction notifies at its commit, and
 * the next take gets them. $2: also the rows this scheduler took already (wq.h). The rows
 * of finished runs go (their records are all durable: nothing to make of them). */
static const char sql_take[] =
    "WITH mine AS MATERIALIZED (SELECT x.run_id, x.task_id, x.try_number, "
    "runs.state IN ('queued', 'running') AS live FROM try_results x JOIN runs ON runs.run_id = "
    "x.run_id WHERE runs.sched_id = $1 AND ($2::bool OR x.taken_by IS DISTINCT FROM $1 OR "
    "x.taken_phase IS DISTINCT FROM x.phase) FOR UPDATE OF x SKIP LOCKED), "
    "gone AS (DELETE FROM try_results r USING mine WHERE NOT mine.live AND r.run_id = "
    "mine.run_id AND r.task_id = mine.task_id AND r.try_number = mine.try_number), "
    "t AS (UPDATE try_results r SET taken_by = $1, taken_phase = r.phase FROM mine "
    "WHERE mine.live AND r.run_id = mine.run_id AND r.task_id = mine.task_id AND "
    "r.try_number = mine.try_number RETURNING r.*) "
    "SELECT run_id, task_id, try_number, phase, worker, "
    "(extract(epoch FROM started_at) * 1000)::int8, (extract(epoch FROM ended_at) * 1000)::int8, "
    "exit_code, term_signal, timed_out, killed, met, hold_ms, message, output "
    "FROM t ORDER BY run_id, task_id, try_number";

/* The rows of $2..$5 (run, task, try, phase) taken by $1 in that phase go; those another
 * transaction holds are skipped (never waited for, as the take) and their positions
 * returned: the snapshot of the final SELECT still has the rows the DELETE removes. */
static const char sql_ack[] =
    "WITH a AS (SELECT * FROM unnest($2::text[], $3::text[], $4::int[], $5::text[]) "
    "WITH ORDINALITY AS a(run_id, task_id, try_number, phase, i)), "
    "l AS MATERIALIZED (SELECT x.run_id, x.task_id, x.try_number FROM try_results x JOIN a "
    "ON x.run_id = a.run_id AND x.task_id = a.task_id AND x.try_number = a.try_number "
    "AND x.phase = a.phase WHERE x.taken_by = $1 FOR UPDATE OF x SKIP LOCKED), "
    "d AS (DELETE FROM try_results r USING l WHERE r.run_id = l.run_id AND r.task_id = "
    "l.task_id AND r.try_number = l.try_number RETURNING r.run_id, r.task_id, r.try_number) "
    "SELECT a.i FROM a JOIN try_results x ON x.run_id = a.run_id AND x.task_id = a.task_id "
    "AND x.try_number = a.try_number AND x.phase = a.phase AND x.taken_by = $1 "
    "WHERE NOT EXISTS (SELECT 1 FROM d WHERE d.run_id = a.run_id AND d.task_id = a.task_id "
    "AND d.try_number = a.try_number)";

static const char *const wq_phase_names[] = {"running", "ended", "lost"};

static enum wq_phase wq_phase_of(const char *s)
{
    if (strcmp(s, "running") == 0)
        return WQ_RUNNING;
    return strcmp(s, "lost") == 0 ? WQ_LOST : WQ_ENDED;
}

static void wq_result_fill(struct wq_result *o, const PGresult *res, int i)
{
    o->run_id = wq_dup(res, i, 0);
    o->task_id = wq_dup(res, i, 1);
    o->try_number = (int)wq_num(res, i, 2);
    o->phase = wq_phase_of(PQgetvalue(res, i, 3));
    o->worker = wq_dup(res, i, 4);
    o->started_at_ms = wq_num(res, i, 5);
    o->ended_at_ms = wq_num(res, i, 6);
    o->exit_code = (int)wq_num(res, i, 7);
    o->term_signal = (int)wq_num(res, i, 8);
    o->timed_out = wq_bool(res, i, 9);
    o->killed = wq_bool(res, i, 10);
    o->met = wq_bool(res, i, 11);
    o->hold_ms = wq_num(res, i, 12);
    o->message = wq_dup(res, i, 13);
    if (!PQgetisnull(res, i, 14)) {
        size_t len = 0;
        unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 14), &len);
        o->output = xmalloc(len + 1);
        if (raw && len > 0)
            memcpy(o->output, raw, len);
        o->output[len] = '\0';
        o->output_len = raw ? len : 0;
        PQfreemem(raw);
    }
}

static int wq_take(struct store *s, int64_t sched_id, bool again, struct wq_result **out, size_t *n,
                   struct err *e)
{
    *out = NULL;
    *n = 0;
    if (!wq_supported(s))
        return wq_nosup(e);
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, sched_id);
    const char *p[] = {id, again ? "t" : "f"};
    PGresult *res = NULL;
    int r = pg__exec_params(wq_conn(s), sql_take, 2, p, "reading the ends of tries", &res, e);
    if (r < 0)
        return r;
    int k = PQntuples(res);
    if (k > 0) {
        *out = xcalloc((size_t)k, sizeof **out);
        for (int i = 0; i < k; i++)
            wq_result_fill(&(*out)[i], res, i);
        *n = (size_t)k;
    }
    PQclear(res);
    return 0;
}

int wq_take_results(struct store *s, int64_t sched_id, struct wq_result **out, size_t *n,
                    struct err *e)
{
    return wq_take(s, sched_id, false, out, n, e);
}

int wq_retake_results(struct store *s, int64_t sched_id, struct wq_result **out, size_t *n,
                      struct err *e)
{
    return wq_take(s, sched_id, true, out, n, e);
}

int wq_ack_results(struct store *s, int64_t sched_id, const struct wq_taken *v, size_t n,
                   bool *left, struct err *e)
{
    for (size_t i = 0; left && i < n; i++)
        left[i] = false;
    if (!wq_supported(s))
        return wq_nosup(e);
    if (n == 0)
        return 0;
    struct buf a[4];
    wq_bufs_init(a, 4);
    for (size_t i = 0; i < n; i++) {
        pg__arr_str(&a[0], v[i].run_id);
        pg__arr_str(&a[1], v[i].task_id);
        pg__arr_int(&a[2], v[i].try_number);
        pg__arr_str(&a[3], wq_phase_names[v[i].phase]);
    }
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, sched_id);
    const char *p[5] = {id};
    for (size_t i = 0; i < 4; i++)
        p[i + 1] = pg__arr_end(&a[i]);
    PGresult *res = NULL;
    int r =
        pg__exec_params(wq_conn(s), sql_ack, 5, p, "deleting the ends of tries recorded", &res, e);
    wq_bufs_release(a, 4);
    if (r < 0)
        return r;
    wq_positions(res, left, n);
    PQclear(res);
    return 0;
}

/* ---- sweep, adopt ---- */

int wq_sweep(struct store *s, int64_t dead_after_ms, size_t *declared, struct err *e)
{
    if (declared)
        *declared = 0;
    if (!wq_supported(s))
        return wq_nosup(e);
    char ms[24];
    snprintf(ms, sizeof ms, "%" PRId64, dead_after_ms);
    const char *p[] = {ms};
    PGresult *res = NULL;
    int r = pg__exec_params(wq_conn(s), "SELECT baram_wq_sweep($1::int8)", 1, p,
                            "declaring silent workers dead", &res, e);
    if (r < 0)
        return r;
    if (declared && PQntuples(res) > 0)
        *declared = (size_t)wq_num(res, 0, 0);
    PQclear(res);
    return 0;
}

/* A sweep's dead_after that declares no one else dead (a live worker beats every few
 * seconds): it only takes the tries of the workers already dead. */
#define WQ_SWEEP_DEAD_ONLY_MS (366LL * 24 * 3600 * 1000)

int wq_lose_worker(struct store *s, int64_t worker_id, struct err *e)
{
    if (!wq_supported(s))
        return wq_nosup(e);
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, worker_id);
    const char *p[] = {id};
    /* Its heartbeat stays what it was (the registry shows when it was last heard). */
    int r = pg__exec_params(wq_conn(s),
                            "UPDATE workers SET state = 'dead' WHERE id = $1::int8 "
                            "AND role = 'worker' AND state IN ('active', 'draining')",
                            1, p, "declaring a gone worker dead", NULL, e);
    if (r < 0)
        return r;
    /* The sweep (its own statement: it must see the update) takes the running tries of every
     * dead worker, this one's too, as for silence. */
    return wq_sweep(s, WQ_SWEEP_DEAD_ONLY_MS, NULL, e);
}

int wq_adopt(struct store *s, int64_t sched_id, const char *run_id, struct wq_kill **rows,
             size_t *n, struct err *e)
{
    *rows = NULL;
    *n = 0;
    if (!wq_supported(s))
        return wq_nosup(e);
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, sched_id);
    const char *p[] = {id, run_id};
    PGresult *res = NULL;
    /* With the tries whose result waits in the inbox already: they ended (or were lost)
     * after the run's last owner died, and their row is gone; their result comes, too. */
    int r = pg__exec_params(wq_conn(s),
                            "SELECT NULL, a_task, a_try FROM baram_wq_adopt($1, $2) UNION "
                            "SELECT NULL, task_id, try_number FROM try_results WHERE run_id = $2",
                            2, p, "adopting a run's tries in flight", &res, e);
    if (r < 0)
        return r;
    *rows = wq_keys(res, 0, run_id, n);
    PQclear(res);
    return 0;
}

/* ---- logs and the registry ---- */

int wq_log_get(struct store *s, const char *run_id, const char *task_id, int try_number, char **log,
               size_t *len, struct err *e)
{
    *log = NULL;
    *len = 0;
    if (!wq_supported(s))
        return wq_nosup(e);
    char t[24];
    snprintf(t, sizeof t, "%d", try_number);
    const char *p[] = {run_id, task_id, t};
    PGconn *c = wq_conn(s);
    /* Binary result: the log's bytes as they are (no hex to decode). */
    PGresult *res = PQexecParams(c,
                                 "SELECT log FROM try_logs WHERE run_id = $1 AND task_id = $2 "
                                 "AND try_number = $3::int",
                                 3, NULL, p, NULL, NULL, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        int r = pg__fail(c, res, "reading a try's stored log", e);
        PQclear(res);
        return r;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return err_set(e, -ENOENT, "no log of %s try %d in run %s is stored", task_id, try_number,
                       run_id);
    }
    size_t k = (size_t)PQgetlength(res, 0, 0);
    *log = xmalloc(k + 1);
    memcpy(*log, PQgetvalue(res, 0, 0), k);
    (*log)[k] = '\0';
    *len = k;
    PQclear(res);
    return 0;
}

/* The worker running the try, else the one its inbox row names (its newest registration of
 * that name gives the log_url). */
static const char sql_try_worker[] =
    "SELECT w.name, w.log_url FROM ti_queue q JOIN workers w ON w.id = q.worker_id "
    "WHERE q.run_id = $1 AND q.task_id = $2 AND q.try_number = $3::int AND q.state = 'running' "
    "AND w.role = 'worker' "
    "UNION ALL "
    "SELECT r.worker, (SELECT w.log_url FROM workers w WHERE w.role = 'worker' "
    "AND w.name = r.worker ORDER BY w.id DESC LIMIT 1) FROM try_results r "
    "WHERE r.run_id = $1 AND r.task_id = $2 AND r.try_number = $3::int AND r.worker IS NOT NULL "
    "LIMIT 1";

int wq_try_worker(struct store *s, const char *run_id, const char *task_id, int try_number,
                  char **name, char **log_url, struct err *e)
{
    *name = NULL;
    *log_url = NULL;
    if (!wq_supported(s))
        return wq_nosup(e);
    char t[24];
    snprintf(t, sizeof t, "%d", try_number);
    const char *p[] = {run_id, task_id, t};
    PGresult *res = NULL;
    int r = pg__exec_params(wq_conn(s), sql_try_worker, 3, p, "finding a try's worker", &res, e);
    if (r < 0)
        return r;
    if (PQntuples(res) > 0) {
        *name = wq_dup(res, 0, 0);
        *log_url = wq_dup(res, 0, 1);
    }
    PQclear(res);
    return 0;
}

int wq_queue_workers(struct store *s, const char *queue, int64_t *n, struct err *e)
{
    *n = 0;
    if (!wq_supported(s))
        return wq_nosup(e);
    const char *p[] = {queue};
    PGresult *res = NULL;
    int r = pg__exec_params(wq_conn(s),
                            "SELECT count(*) FROM workers WHERE role = 'worker' "
                            "AND state = 'active' AND $1 = ANY (queues)",
                            1, p, "counting a queue's workers", &res, e);
    if (r < 0)
        return r;
    *n = PQntuples(res) > 0 ? wq_num(res, 0, 0) : 0;
    PQclear(res);
    return 0;
}
