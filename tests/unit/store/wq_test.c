/*
 * wq_test.c - the work queue between schedulers and workers (store/wq.h) on a real
 * PostgreSQL: a fresh database per case in the cluster whose socket folder BARAM_TEST_PG
 * names (the "_pg" run, tests/unit/pgtmp.h). Connections of their own stand for schedulers
 * and workers registered in `workers`; a LISTEN connection checks the NOTIFYs. On SQLite (the
 * other run) every call says -ENOTSUP.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "store/migrate.h"
#include "store/pg_int.h"
#include "store/queue.h"
#include "store/store.h"
#include "store/wq.h"

#include "../pgtmp.h"

static const char spec[] = "{\"v\":1,\"kind\":\"run\",\"cmd\":\"true\"}";

static int setup(void **state)
{
    (void)state;
    testdb_reset("wq");
    return 0;
}

static struct store *open_ok(void)
{
    struct store *s = testdb_open("q");
    assert_true(wq_supported(s));
    return s;
}

static int64_t node_new(struct store *s, const char *role, const char *name, const char *queues)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO workers (role, name, hostname, pid, queues, slots) "
             "VALUES ('%s', '%s', 'h', 1, '%s', 8) RETURNING id",
             role, name, queues);
    return testdb_store_num(s, sql);
}

static int64_t sched_new(struct store *s, const char *name)
{
    return node_new(s, "scheduler", name, "{default}");
}

static int64_t worker_new(struct store *s, const char *name, const char *queues)
{
    return node_new(s, "worker", name, queues);
}

/* A running run owned by scheduler sched. */
static void run_new(struct store *s, const char *run_id, int64_t sched)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO runs (run_id, dag_id, state, type, logical_at, sched_id) "
             "VALUES ('%s', 'd', 'running', 'manual', 0, %lld)",
             run_id, (long long)sched);
    testdb_store_num(s, sql);
}

static void set_owner(struct store *s, const char *run_id, int64_t sched)
{
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE runs SET sched_id = %lld WHERE run_id = '%s'",
             (long long)sched, run_id);
    testdb_store_num(s, sql);
}

/* Worker id silent for an hour (by the database's clock). */
static void silence(struct store *s, int64_t id)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "UPDATE workers SET heartbeat_at = now() - interval '1 hour' WHERE id = %lld",
             (long long)id);
    testdb_store_num(s, sql);
}

static void submit_ok(struct store *s, int64_t sched, const struct wq_item *v, size_t n)
{
    struct err e = {0};
    if (wq_submit(s, sched, v, n, &e) < 0)
        fail_msg("wq_submit: %s", e.msg);
}

struct claim {
    struct wq_claimed *v;
    size_t n;
};

static void claim_ok(struct store *s, int64_t worker, const char *name, const char *queue, int max,
                     struct claim *c)
{
    struct err e = {0};
    const char *qs[] = {queue};
    if (wq_claim(s, worker, name, qs, 1, max, &c->v, &c->n, &e) < 0)
        fail_msg("wq_claim: %s", e.msg);
}

static void claim_free(struct claim *c)
{
    wq_free_claimed(c->v, c->n);
    memset(c, 0, sizeof *c);
}

static size_t claim_n(struct store *s, int64_t worker, const char *name, const char *queue, int max)
{
    struct claim c = {0};
    claim_ok(s, worker, name, queue, max, &c);
    size_t n = c.n;
    claim_free(&c);
    return n;
}

/* A plain end of try (exit code 0, nothing else). */
static struct wq_end end_of(const char *run_id, const char *task_id, int try_number)
{
    struct wq_end x = {0};
    x.run_id = run_id;
    x.task_id = task_id;
    x.try_number = try_number;
    return x;
}

static bool finish1(struct store *s, int64_t worker, const struct wq_end *x)
{
    struct err e = {0};
    bool ok = true;
    if (wq_finish(s, worker, x, 1, &ok, &e) < 0)
        fail_msg("wq_finish: %s", e.msg);
    return ok;
}

struct inbox {
    struct wq_result *v;
    size_t n;
};

static void take_ok(struct store *s, int64_t sched, struct inbox *in)
{
    struct err e = {0};
    if (wq_take_results(s, sched, &in->v, &in->n, &e) < 0)
        fail_msg("wq_take_results: %s", e.msg);
}

static void inbox_free(struct inbox *in)
{
    wq_free_results(in->v, in->n);
    memset(in, 0, sizeof *in);
}

static void retake_ok(struct store *s, int64_t sched, struct inbox *in)
{
    struct err e = {0};
    if (wq_retake_results(s, sched, &in->v, &in->n, &e) < 0)
        fail_msg("wq_retake_results: %s", e.msg);
}

/* Acks in->v[0] as taken by sched; whether it was left (locked by another transaction). */
static bool ack1(struct store *s, int64_t sched, const struct wq_result *x)
{
    struct wq_taken k = {x->run_id, x->task_id, x->try_number, x->phase};
    struct err e = {0};
    bool left = true;
    if (wq_ack_results(s, sched, &k, 1, &left, &e) < 0)
        fail_msg("wq_ack_results: %s", e.msg);
    return left;
}

static int64_t results_n(struct store *s)
{
    return testdb_store_num(s, "SELECT count(*) FROM try_results");
}

/* ---- LISTEN ---- */

static PGconn *listener(const char *const *channels, size_t n)
{
    testdb_url("q");
    PGconn *c = testdb_connect(testdb_pgdb("q"));
    for (size_t i = 0; i < n; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "LISTEN %s", channels[i]);
        testdb_pg_exec(c, sql);
    }
    return c;
}

/* The notifications on c within 2 s of the first (count), as "channel:payload" lines in buf. */
static int notified(PGconn *c, char *buf, size_t size)
{
    int n = 0;
    buf[0] = '\0';
    for (int round = 0; round < 20; round++) {
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(PQsocket(c), &fds);
        struct timeval tv = {0, n > 0 ? 20000 : 100000};
        if (select(PQsocket(c) + 1, &fds, NULL, NULL, &tv) < 0)
            break;
        PQconsumeInput(c);
        PGnotify *x;
        while ((x = PQnotifies(c))) {
            size_t len = strlen(buf);
            snprintf(buf + len, size - len, "%s:%s\n", x->relname, x->extra);
            PQfreemem(x);
            n++;
        }
        if (n > 0 && round > 2)
            break;
    }
    return n;
}

/* ---- cases ---- */

/* submit -> claim -> finish -> the owner's inbox, with the NOTIFYs on the way: the raw end,
 * the output and the log (any bytes) come back as sent. */
static void test_round_trip(void **state)
{
    (void)state;
    struct store *sc = open_ok(), *wk = open_ok();
    int64_t sid = sched_new(sc, "s1"), wid = worker_new(sc, "w1", "{default}");
    run_new(sc, "r1", sid);
    char ch[2][64];
    snprintf(ch[0], sizeof ch[0], "baram_sched_%lld", (long long)sid);
    snprintf(ch[1], sizeof ch[1], "%s", WQ_CHANNEL_QUEUED);
    const char *chans[] = {ch[0], ch[1]};
    PGconn *l = listener(chans, 2);
    char got[1024];

    struct wq_item it[] = {{"r1", "a", 1, "default", NULL, 1, spec},
                           {"r1", "b", 2, "default", NULL, 1, spec}};
    submit_ok(sc, sid, it, 2);
    assert_int_equal(notified(l, got, sizeof got), 1); /* one per queue */
    assert_string_equal(got, "baram_queued:default\n");
    assert_int_equal(testdb_store_num(sc, "SELECT count(*) FROM ti_queue WHERE state = 'queued' "
                                          "AND worker_id IS NULL AND queued_at IS NOT NULL"),
                     2);

    struct claim c = {0};
    claim_ok(wk, wid, "w1", "default", 8, &c);
    assert_int_equal(c.n, 2);
    assert_non_null(strstr(c.v[0].spec, "\"cmd\": \"true\""));
    claim_free(&c);
    assert_int_equal(notified(l, got, sizeof got), 1);
    assert_string_equal(got + strlen(ch[0]), ":\n");

    /* the owner sees them running, on w1 */
    struct inbox in = {0};
    take_ok(sc, sid, &in);
    assert_int_equal(in.n, 2);
    assert_int_equal(in.v[0].phase, WQ_RUNNING);
    assert_string_equal(in.v[0].task_id, "a");
    assert_string_equal(in.v[0].worker, "w1");
    assert_true(in.v[0].started_at_ms > 0);
    assert_int_equal(in.v[0].ended_at_ms, 0);
    inbox_free(&in);

    static const char log[] = "line 1\n\0\xff binary\n";
    struct wq_end ends[2] = {end_of("r1", "a", 1), end_of("r1", "b", 2)};
    ends[0].exit_code = 3;
    ends[0].term_signal = 9;
    ends[0].timed_out = true;
    ends[0].killed = true;
    ends[0].hold_ms = 1234;
    ends[0].message = "timed out \xff\xfe after 1s";
    ends[0].output = "k=v\0x";
    ends[0].output_len = 5;
    ends[0].log = log;
    ends[0].log_len = sizeof log - 1;
    ends[1].met = true;
    bool acc[2] = {false, false};
    struct err e = {0};
    assert_int_equal(wq_finish(wk, wid, ends, 2, acc, &e), 0);
    assert_true(acc[0] && acc[1]);
    assert_int_equal(notified(l, got, sizeof got), 1);
    assert_int_equal(testdb_store_num(sc, "SELECT count(*) FROM ti_queue"), 0);

    take_ok(sc, sid, &in);
    assert_int_equal(in.n, 2);
    struct wq_result *a = &in.v[0], *b = &in.v[1];
    assert_int_equal(a->phase, WQ_ENDED);
    assert_string_equal(a->worker, "w1");
    assert_int_equal(a->exit_code, 3);
    assert_int_equal(a->term_signal, 9);
    assert_true(a->timed_out && a->killed && !a->met);
    assert_int_equal(a->hold_ms, 1234);
    assert_string_equal(a->message, "timed out ?? after 1s");
    assert_int_equal(a->output_len, 5);
    assert_memory_equal(a->output, "k=v\0x", 5);
    assert_true(a->started_at_ms > 0 && a->ended_at_ms >= a->started_at_ms);
    assert_int_equal(b->phase, WQ_ENDED);
    assert_int_equal(b->try_number, 2);
    assert_true(b->met);
    assert_null(b->message);
    assert_null(b->output);
    inbox_free(&in);
    take_ok(sc, sid, &in);
    assert_int_equal(in.n, 0); /* consumed */

    char *text = NULL;
    size_t len = 0;
    assert_int_equal(wq_log_get(sc, "r1", "a", 1, &text, &len, &e), 0);
    assert_int_equal(len, sizeof log - 1);
    assert_memory_equal(text, log, len);
    free(text);
    assert_int_equal(wq_log_get(sc, "r1", "b", 2, &text, &len, &e), -ENOENT);
    assert_null(text);
    PQfinish(l);
    store_close(sc);
    store_close(wk);
}

/* A worker reports ends and fills the freed slots in one call: the fence holds for the
 * finish part, the claim part takes the next tries, the owner is notified once. */
static void test_finish_claim_one_call(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t sid = sched_new(s, "s1"), w1 = worker_new(s, "w1", "{default}");
    int64_t w2 = worker_new(s, "w2", "{default}");
    run_new(s, "r", sid);
    struct wq_item it[] = {{"r", "a", 1, "default", NULL, 4, spec},
                           {"r", "b", 1, "default", NULL, 3, spec},
                           {"r", "c", 1, "default", NULL, 2, spec},
                           {"r", "d", 1, "default", NULL, 1, spec}};
    submit_ok(s, sid, it, 4);
    assert_int_equal(claim_n(s, w1, "w1", "default", 1), 1); /* a */
    assert_int_equal(claim_n(s, w2, "w2", "default", 1), 1); /* b */
    char ch[64];
    snprintf(ch, sizeof ch, "baram_sched_%lld", (long long)sid);
    const char *chans[] = {ch};
    PGconn *l = listener(chans, 1);
    struct wq_end ends[2] = {end_of("r", "a", 1), end_of("r", "b", 1)}; /* b is not w1's */
    ends[0].log = "A";
    ends[0].log_len = 1;
    bool acc[2] = {false, true};
    struct wq_claimed *c = NULL;
    size_t n = 0;
    const char *qs[] = {"default"};
    struct err e = {0};
    assert_int_equal(wq_finish_claim(s, w1, "w1", ends, 2, acc, qs, 1, 8, &c, &n, &e), 0);
    assert_true(acc[0]);
    assert_false(acc[1]);
    assert_int_equal(n, 2);
    assert_string_equal(c[0].task_id, "c");
    assert_string_equal(c[1].task_id, "d");
    wq_free_claimed(c, n);
    char got[256];
    assert_int_equal(notified(l, got, sizeof got), 1);
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM ti_queue WHERE task_id = 'a'"), 0);
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM try_logs"), 1);
    /* either part may be empty */
    assert_int_equal(wq_finish_claim(s, w1, "w1", NULL, 0, NULL, qs, 1, 8, &c, &n, &e), 0);
    assert_int_equal(n, 0);
    assert_null(c);
    struct wq_end endc = end_of("r", "c", 1);
    assert_int_equal(wq_finish_claim(s, w1, "w1", &endc, 1, acc, qs, 1, 0, &c, &n, &e), 0);
    assert_true(acc[0]);
    assert_int_equal(n, 0);
    PQfinish(l);
    store_close(s);
}

/* A claim takes only its queues, at most max, priority first then the longest queued; a
 * worker that is not active claims nothing. */
static void test_claim_queues_max_priority(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t sid = sched_new(s, "s1");
    int64_t w1 = worker_new(s, "w1", "{default}"), w2 = worker_new(s, "w2", "{gpu}");
    run_new(s, "r", sid);
    struct wq_item it[] = {{"r", "low", 1, "default", NULL, 1, spec},
                           {"r", "gpu", 1, "gpu", NULL, 9, spec},
                           {"r", "high", 1, "default", NULL, 5, spec},
                           {"r", "mid1", 1, "default", NULL, 3, spec}};
    submit_ok(s, sid, it, 4);
    struct wq_item late[] = {{"r", "mid2", 1, "default", NULL, 3, spec}};
    submit_ok(s, sid, late, 1);

    struct claim c = {0};
    claim_ok(s, w1, "w1", "default", 2, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.v[0].task_id, "high");
    assert_string_equal(c.v[1].task_id, "mid1"); /* queued before mid2 */
    claim_free(&c);
    claim_ok(s, w2, "w2", "gpu", 8, &c);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.v[0].task_id, "gpu");
    claim_free(&c);
    assert_int_equal(claim_n(s, w2, "w2", "gpu", 8), 0);

    /* draining: no new claims (its heartbeat says so) */
    bool alive = false;
    struct wq_kill *k = NULL;
    size_t nk = 0;
    struct err e = {0};
    assert_int_equal(wq_heartbeat(s, w1, true, &alive, &k, &nk, &e), 0);
    assert_true(alive);
    assert_int_equal(claim_n(s, w1, "w1", "default", 8), 0);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM workers WHERE id = %lld AND state = 'draining'",
             (long long)w1);
    assert_int_equal(testdb_store_num(s, sql), 1);
    /* draining stays draining even when the flag is off */
    assert_int_equal(wq_heartbeat(s, w1, false, &alive, &k, &nk, &e), 0);
    assert_true(alive);
    assert_int_equal(testdb_store_num(s, sql), 1);
    int64_t w3 = worker_new(s, "w3", "{default,gpu}");
    assert_int_equal(claim_n(s, w3, "w3", "default", 8), 2);
    store_close(s);
}

struct claimer {
    int64_t id;
    char name[16];
    char **keys;
    size_t n;
    int rc;
};

static void *claimer_run(void *arg)
{
    struct claimer *cl = arg;
    struct store *s = testdb_open("q");
    for (;;) {
        struct wq_claimed *v = NULL;
        size_t n = 0;
        struct err e = {0};
        const char *qs[] = {"default"};
        if (wq_claim(s, cl->id, cl->name, qs, 1, 7, &v, &n, &e) < 0) {
            cl->rc = -1;
            break;
        }
        if (n == 0)
            break;
        cl->keys = realloc(cl->keys, (cl->n + n) * sizeof *cl->keys);
        for (size_t i = 0; i < n; i++)
            cl->keys[cl->n++] = strdup(v[i].task_id);
        wq_free_claimed(v, n);
    }
    store_close(s);
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Two workers claiming at once on two connections never get the same try, and together
 * they get them all. */
static void test_two_claimers_disjoint(void **state)
{
    (void)state;
    enum { N = 300 };
    struct store *s = open_ok();
    int64_t sid = sched_new(s, "s1");
    run_new(s, "r", sid);
    struct wq_item it[N];
    char names[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "t%03d", i);
        it[i] = (struct wq_item){"r", names[i], 1, "default", NULL, 1, spec};
    }
    submit_ok(s, sid, it, N);
    struct claimer cl[2] = {{worker_new(s, "w1", "{default}"), "w1", NULL, 0, 0},
                            {worker_new(s, "w2", "{default}"), "w2", NULL, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, claimer_run, &cl[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(cl[0].rc, 0);
    assert_int_equal(cl[1].rc, 0);
    assert_int_equal(cl[0].n + cl[1].n, N);
    char **all = calloc(N, sizeof *all);
    size_t k = 0;
    for (int i = 0; i < 2; i++)
        for (size_t j = 0; j < cl[i].n; j++)
            all[k++] = cl[i].keys[j];
    qsort(all, k, sizeof *all, cmp_str);
    for (size_t i = 1; i < k; i++)
        assert_string_not_equal(all[i - 1], all[i]);
    for (size_t i = 0; i < k; i++)
        free(all[i]);
    free(all);
    free(cl[0].keys);
    free(cl[1].keys);
    /* each claimed row is its claimer's, with its 'running' result */
    assert_int_equal(
        testdb_store_num(s, "SELECT count(*) FROM ti_queue q JOIN try_results r USING "
                            "(run_id, task_id, try_number) JOIN workers w ON w.id = "
                            "q.worker_id WHERE q.state = 'running' AND r.worker = w.name"),
        N);
    store_close(s);
}

/* A finish is fenced: another worker's, an older try's, or one after the row was swept away
 * is refused and writes nothing. */
static void test_finish_fenced(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t sid = sched_new(s, "s1");
    int64_t w1 = worker_new(s, "w1", "{default}"), w2 = worker_new(s, "w2", "{default}");
    run_new(s, "r", sid);
    struct wq_item it[] = {{"r", "t", 1, "default", NULL, 1, spec}};
    submit_ok(s, sid, it, 1);
    assert_int_equal(claim_n(s, w1, "w1", "default", 1), 1);
    struct inbox in = {0};
    take_ok(s, sid, &in); /* the 'running' row, recorded */
    assert_int_equal(in.n, 1);
    assert_false(ack1(s, sid, &in.v[0]));
    inbox_free(&in);

    struct wq_end x = end_of("r", "t", 1);
    x.log = "log";
    x.log_len = 3;
    assert_false(finish1(s, w2, &x)); /* not w2's */
    struct wq_end old = end_of("r", "t", 0);
    assert_false(finish1(s, w1, &old)); /* another try */
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM try_results"), 0);
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM try_logs"), 0);
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM ti_queue WHERE state = 'running'"),
                     1);

    /* w1 freezes, is swept, then reports late: refused, the 'lost' result stays */
    silence(s, w1);
    size_t dead = 0;
    struct err e = {0};
    assert_int_equal(wq_sweep(s, 20000, &dead, &e), 0);
    assert_int_equal(dead, 1);
    assert_false(finish1(s, w1, &x));
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM try_logs"), 0);
    take_ok(s, sid, &in);
    assert_int_equal(in.n, 1);
    assert_int_equal(in.v[0].phase, WQ_LOST);
    inbox_free(&in);

    /* resubmitted as try 2 and claimed by w2: w1's late end of try 1 is still refused */
    struct wq_item again[] = {{"r", "t", 2, "default", NULL, 1, spec}};
    submit_ok(s, sid, again, 1);
    assert_int_equal(claim_n(s, w2, "w2", "default", 1), 1);
    assert_false(finish1(s, w1, &x));
    struct wq_end x2 = end_of("r", "t", 2);
    assert_true(finish1(s, w2, &x2));
    store_close(s);
}

/* The sweep turns a silent worker's running tries into 'lost' results naming it, once; its
 * heartbeat then says dead; a live worker's try is never rescued, however old. */
static void test_sweep_lost_idempotent(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t sid = sched_new(s, "s1");
    int64_t w1 = worker_new(s, "w1", "{default}"), w2 = worker_new(s, "w2", "{default}");
    run_new(s, "r", sid);
    char ch[64];
    snprintf(ch, sizeof ch, "baram_sched_%lld", (long long)sid);
    const char *chans[] = {ch};
    struct wq_item it[] = {{"r", "a", 1, "default", NULL, 3, spec},
                           {"r", "b", 1, "default", NULL, 2, spec},
                           {"r", "c", 1, "default", NULL, 1, spec}};
    submit_ok(s, sid, it, 3);
    assert_int_equal(claim_n(s, w1, "w1", "default", 2), 2);
    assert_int_equal(claim_n(s, w2, "w2", "default", 1), 1);
    /* w2's try has run for two hours: age alone never kills it */
    testdb_store_num(
        s, "UPDATE ti_queue SET claimed_at = now() - interval '2 hours' WHERE task_id = 'c'");
    silence(s, w1);
    PGconn *l = listener(chans, 1);
    char got[512];
    size_t dead = 0;
    struct err e = {0};
    assert_int_equal(wq_sweep(s, 20000, &dead, &e), 0);
    assert_int_equal(dead, 1);
    assert_int_equal(notified(l, got, sizeof got), 1);
    assert_int_equal(wq_sweep(s, 20000, &dead, &e), 0);
    assert_int_equal(dead, 0);

    struct inbox in = {0};
    take_ok(s, sid, &in);
    assert_int_equal(in.n, 3); /* a and b lost, c running */
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(in.v[i].phase, WQ_LOST);
        assert_string_equal(in.v[i].message, "worker w1 lost");
        assert_int_equal(in.v[i].exit_code, -1);
        assert_string_equal(in.v[i].worker, "w1");
    }
    assert_string_equal(in.v[2].task_id, "c");
    assert_int_equal(in.v[2].phase, WQ_RUNNING);
    inbox_free(&in);
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM ti_queue"), 1);

    bool alive = true;
    struct wq_kill *k = NULL;
    size_t nk = 0;
    assert_int_equal(wq_heartbeat(s, w1, false, &alive, &k, &nk, &e), 0);
    assert_false(alive);
    assert_int_equal(wq_heartbeat(s, w2, false, &alive, &k, &nk, &e), 0);
    assert_true(alive);
    /* a draining worker that goes silent is swept too; a dead one claims nothing */
    assert_int_equal(wq_heartbeat(s, w2, true, &alive, &k, &nk, &e), 0);
    silence(s, w2);
    assert_int_equal(wq_sweep(s, 20000, &dead, &e), 0);
    assert_int_equal(dead, 1);
    struct wq_item more[] = {{"r", "d", 1, "default", NULL, 1, spec}};
    submit_ok(s, sid, more, 1);
    assert_int_equal(claim_n(s, w1, "w1", "default", 8), 0);
    PQfinish(l);
    store_close(s);
}

/* The sweep never waits for a try's row that a transaction holds (its worker's finish, say):
 * it declares the worker dead and leaves that row; a later sweep rescues the running rows of
 * any dead worker, so the row is lost then, unless the finish took it first. */
static void test_sweep_skips_locked_rows_then_rescues(void **state)
{
    (void)state;
    struct store *s = open_ok(), *w = open_ok();
    int64_t sid = sched_new(s, "s"), wid = worker_new(s, "w", "{default}");
    run_new(s, "r", sid);
    struct wq_item it[] = {{"r", "a", 1, "default", NULL, 2, spec},
                           {"r", "b", 1, "default", NULL, 1, spec}};
    submit_ok(s, sid, it, 2);
    assert_int_equal(claim_n(w, wid, "w", "default", 8), 2);
    silence(s, wid);
    testdb_store_num(w, "BEGIN");
    testdb_store_num(w, "SELECT 1 FROM ti_queue WHERE task_id = 'a' FOR UPDATE");
    testdb_store_num(s, "SET lock_timeout = '2s'"); /* a wait would fail the sweep */
    size_t dead = 0;
    struct err e = {0};
    assert_int_equal(wq_sweep(s, 20000, &dead, &e), 0);
    assert_int_equal(dead, 1);
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM try_results WHERE phase = 'lost'"),
                     1); /* b */
    testdb_store_num(w, "COMMIT");
    assert_int_equal(wq_sweep(s, 20000, &dead, &e), 0);
    assert_int_equal(dead, 0);
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM try_results WHERE phase = 'lost' "
                                         "AND message = 'worker w lost'"),
                     2);
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM ti_queue"), 0);
    store_close(s);
    store_close(w);
}

/* The heartbeat lists every running row of the worker (a claim whose answer was lost shows
 * there) and, among them, those whose kill was requested; another worker's rows and queued
 * rows are not listed. */
static void test_heartbeat_lists_running_rows(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t sid = sched_new(s, "s1"), w1 = worker_new(s, "w1", "{default}"),
            w2 = worker_new(s, "w2", "{default}");
    run_new(s, "r", sid);
    struct wq_item it[] = {{"r", "a", 1, "default", NULL, 3, spec},
                           {"r", "b", 1, "default", NULL, 2, spec},
                           {"r", "c", 1, "default", NULL, 1, spec},
                           {"r", "d", 1, "default", NULL, 0, spec}};
    submit_ok(s, sid, it, 4);
    assert_int_equal(claim_n(s, w1, "w1", "default", 2), 2); /* a, b */
    assert_int_equal(claim_n(s, w2, "w2", "default", 1), 1); /* c; d stays queued */
    struct wq_kill kb[] = {{"r", "b", 1}};
    struct err e = {0};
    assert_int_equal(wq_withdraw(s, kb, 1, NULL, &e), 0);
    bool alive = false;
    struct wq_kill *k = NULL, *rows = NULL;
    size_t nk = 0, nrows = 0;
    assert_int_equal(wq_heartbeat_rows(s, w1, false, &alive, &k, &nk, &rows, &nrows, &e), 0);
    assert_true(alive);
    assert_int_equal(nrows, 2);
    bool seen_a = false, seen_b = false;
    for (size_t i = 0; i < nrows; i++) {
        assert_string_equal(rows[i].run_id, "r");
        assert_int_equal(rows[i].try_number, 1);
        seen_a = seen_a || strcmp(rows[i].task_id, "a") == 0;
        seen_b = seen_b || strcmp(rows[i].task_id, "b") == 0;
    }
    assert_true(seen_a && seen_b);
    assert_int_equal(nk, 1);
    assert_string_equal(k[0].task_id, "b");
    wq_free_kills(k, nk);
    wq_free_kills(rows, nrows);
    /* nothing running: both lists empty, still alive */
    struct wq_end x[] = {end_of("r", "a", 1), end_of("r", "b", 1)};
    bool acc[2];
    assert_int_equal(wq_finish(s, w1, x, 2, acc, &e), 0);
    assert_true(acc[0] && acc[1]);
    assert_int_equal(wq_heartbeat_rows(s, w1, false, &alive, &k, &nk, &rows, &nrows, &e), 0);
    assert_true(alive);
    assert_null(k);
    assert_null(rows);
    assert_int_equal(nk + nrows, 0);
    store_close(s);
}

/* Cancel: an unclaimed try is withdrawn at once; a claimed one is marked, its worker told
 * (NOTIFY) and its heartbeat lists it. */
static void test_withdraw_and_kill_list(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t sid = sched_new(s, "s1"), w1 = worker_new(s, "w1", "{default}");
    run_new(s, "r", sid);
    char ch[64];
    snprintf(ch, sizeof ch, "baram_worker_%lld", (long long)w1);
    const char *chans[] = {ch};
    PGconn *l = listener(chans, 1);
    struct wq_item it[] = {{"r", "a", 1, "default", NULL, 2, spec},
                           {"r", "b", 1, "default", NULL, 1, spec}};
    submit_ok(s, sid, it, 2);
    assert_int_equal(claim_n(s, w1, "w1", "default", 1), 1); /* a */
    char got[256];
    struct wq_kill ks[] = {{"r", "a", 1}, {"r", "b", 1}, {"r", "zz", 1}};
    bool wd[3] = {true, false, true};
    struct err e = {0};
    assert_int_equal(wq_withdraw(s, ks, 3, wd, &e), 0);
    assert_false(wd[0]);
    assert_true(wd[1]);
    assert_false(wd[2]);
    assert_int_equal(notified(l, got, sizeof got), 1);
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM ti_queue WHERE task_id = 'b'"), 0);
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM ti_queue WHERE task_id = 'a' "
                                         "AND kill_requested"),
                     1);
    bool alive = false;
    struct wq_kill *k = NULL;
    size_t nk = 0;
    assert_int_equal(wq_heartbeat(s, w1, false, &alive, &k, &nk, &e), 0);
    assert_true(alive);
    assert_int_equal(nk, 1);
    assert_string_equal(k[0].run_id, "r");
    assert_string_equal(k[0].task_id, "a");
    assert_int_equal(k[0].try_number, 1);
    wq_free_kills(k, nk);
    /* a withdraw naming an older try leaves the newer alone */
    struct wq_item b2[] = {{"r", "b", 2, "default", NULL, 1, spec}};
    submit_ok(s, sid, b2, 1);
    struct wq_kill old[] = {{"r", "b", 1}};
    assert_int_equal(wq_withdraw(s, old, 1, wd, &e), 0);
    assert_false(wd[0]);
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM ti_queue WHERE task_id = 'b'"), 1);
    /* the killed try reports killed: accepted, and the kill list is empty again */
    struct wq_end x = end_of("r", "a", 1);
    x.killed = true;
    assert_true(finish1(s, w1, &x));
    assert_int_equal(wq_heartbeat(s, w1, false, &alive, &k, &nk, &e), 0);
    assert_int_equal(nk, 0);
    assert_null(k);
    PQfinish(l);
    store_close(s);
}

/* The inbox: each scheduler takes only the results of the runs it owns. */
static void test_take_results_only_owner(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t sa = sched_new(s, "a"), sb = sched_new(s, "b"), w = worker_new(s, "w", "{default}");
    run_new(s, "ra", sa);
    run_new(s, "rb", sb);
    struct wq_item ia[] = {{"ra", "t", 1, "default", NULL, 1, spec}};
    struct wq_item ib[] = {{"rb", "t", 1, "default", NULL, 1, spec}};
    submit_ok(s, sa, ia, 1);
    submit_ok(s, sb, ib, 1);
    assert_int_equal(claim_n(s, w, "w", "default", 8), 2);
    struct inbox in = {0};
    take_ok(s, sa, &in);
    assert_int_equal(in.n, 1);
    assert_string_equal(in.v[0].run_id, "ra");
    inbox_free(&in);
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM try_results WHERE run_id = 'rb'"),
                     1);
    take_ok(s, sb, &in);
    assert_int_equal(in.n, 1);
    assert_string_equal(in.v[0].run_id, "rb");
    inbox_free(&in);
    store_close(s);
}

/* The inbox's consumer never waits for a row a worker's transaction holds (it takes the
 * others; the worker's commit notifies, and the next take gets it): waiting could close a
 * lock cycle with a finish of several rows (40P01). */
static void test_take_skips_locked_rows(void **state)
{
    (void)state;
    struct store *s = open_ok(), *w = open_ok();
    int64_t sid = sched_new(s, "s"), wid = worker_new(s, "w", "{default}");
    run_new(s, "r", sid);
    struct wq_item it[] = {{"r", "a", 1, "default", NULL, 2, spec},
                           {"r", "b", 1, "default", NULL, 1, spec}};
    submit_ok(s, sid, it, 2);
    assert_int_equal(claim_n(w, wid, "w", "default", 8), 2);
    testdb_store_num(w, "BEGIN");
    testdb_store_num(w, "SELECT 1 FROM try_results WHERE task_id = 'a' FOR UPDATE");
    testdb_store_num(s, "SET lock_timeout = '2s'"); /* a wait would fail the take */
    struct inbox in = {0};
    take_ok(s, sid, &in);
    assert_int_equal(in.n, 1);
    assert_string_equal(in.v[0].task_id, "b");
    inbox_free(&in);
    testdb_store_num(w, "COMMIT");
    take_ok(s, sid, &in);
    assert_int_equal(in.n, 1);
    assert_string_equal(in.v[0].task_id, "a");
    inbox_free(&in);
    store_close(s);
    store_close(w);
}

struct stress {
    int64_t sched, worker;
    int n;
    atomic_int ended;
    int rc;
    struct err e;
};

static void *stress_worker(void *arg)
{
    struct stress *x = arg;
    struct store *s = testdb_open("q");
    const char *qs[] = {"default"};
    struct wq_end ends[8];
    bool acc[8];
    struct wq_claimed *c = NULL;
    size_t n = 0;
    while (atomic_load(&x->ended) < x->n && x->rc == 0) {
        for (size_t i = 0; i < n; i++)
            ends[i] = end_of(c[i].run_id, c[i].task_id, c[i].try_number);
        struct wq_claimed *next = NULL;
        size_t nnext = 0;
        if (wq_finish_claim(s, x->worker, "w", ends, n, acc, qs, 1, 8, &next, &nnext, &x->e) < 0)
            x->rc = -1;
        wq_free_claimed(c, n);
        c = next;
        n = nnext;
        if (n == 0)
            usleep(1000);
    }
    wq_free_claimed(c, n);
    store_close(s);
    return NULL;
}

/* A worker finishing and claiming batches while its scheduler drains the inbox as fast as
 * it can: every end arrives once, and no transaction fails (no deadlock). */
static void test_finish_and_take_concurrently(void **state)
{
    (void)state;
    enum { N = 3000, BATCH = 64 };
    struct store *s = open_ok();
    struct stress x = {0};
    x.sched = sched_new(s, "s");
    x.worker = worker_new(s, "w", "{default}");
    x.n = N;
    run_new(s, "r", x.sched);
    static char names[N][16];
    struct wq_item it[BATCH];
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stress_worker, &x), 0);
    int submitted = 0, ended = 0, running = 0;
    struct err e = {0};
    while (ended < N && x.rc == 0) {
        int k = 0;
        for (; k < BATCH && submitted < N; k++, submitted++) {
            snprintf(names[submitted], sizeof names[submitted], "t%d", submitted);
            it[k] = (struct wq_item){"r", names[submitted], 1, "default", NULL, 1, spec};
        }
        if (k > 0)
            submit_ok(s, x.sched, it, (size_t)k);
        struct wq_result *r = NULL;
        size_t nr = 0;
        if (wq_take_results(s, x.sched, &r, &nr, &e) < 0) {
            atomic_store(&x.ended, N);
            pthread_join(th, NULL);
            fail_msg("wq_take_results: %s", e.msg);
        }
        struct wq_taken *tk = xcalloc(nr ? nr : 1, sizeof *tk);
        for (size_t i = 0; i < nr; i++) {
            ended += r[i].phase == WQ_ENDED;
            running += r[i].phase == WQ_RUNNING;
            tk[i] = (struct wq_taken){r[i].run_id, r[i].task_id, r[i].try_number, r[i].phase};
        }
        /* recorded: deleted (a row a worker's finish holds is left, taken again later) */
        int rc = wq_ack_results(s, x.sched, tk, nr, NULL, &e);
        free(tk);
        wq_free_results(r, nr);
        if (rc < 0) {
            atomic_store(&x.ended, N);
            pthread_join(th, NULL);
            fail_msg("wq_ack_results: %s", e.msg);
        }
        atomic_store(&x.ended, ended);
    }
    pthread_join(th, NULL);
    if (x.rc != 0)
        fail_msg("the worker: %s", x.e.msg);
    assert_int_equal(ended, N);
    assert_true(running <= N);
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM ti_queue"), 0);
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM try_results"), 0);
    store_close(s);
}

/* A scheduler dies with tries on workers: the admission round's clean-up (another
 * scheduler's) keeps the rows handed out, the adopter takes them (in flight) and gets their
 * results; the dead one's rows never handed out go. */
static void test_dead_scheduler_rows_kept_and_adopted(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t sa = sched_new(s, "a"), sb = sched_new(s, "b"), w = worker_new(s, "w", "{default}");
    run_new(s, "ra", sa);
    struct queue_pool pools[] = {{"p", 4}};
    struct queue_want want[] = {{"ra", "pooled", 1, "p", 1, 1, false},
                                {"ra", "waiting", 1, "p", 1, 2, false}};
    struct queue_key *g = NULL;
    size_t ng = 0;
    bool disp = false;
    struct err e = {0};
    assert_int_equal(queue_round(s, sa, NULL, 0, want, 2, pools, 1, &g, &ng, &disp, &e), 0);
    assert_int_equal(ng, 2);
    queue_free_keys(g, ng);
    /* 'pooled' is submitted (keeps its slot); 'free' has no pool; 'waiting' never is */
    struct wq_item it[] = {{"ra", "pooled", 1, "default", "p", 3, spec},
                           {"ra", "free", 1, "default", NULL, 2, spec},
                           {"ra", "queued", 1, "default", NULL, 1, spec}};
    submit_ok(s, sa, it, 3);
    assert_int_equal(testdb_store_num(s,
                                      "SELECT count(*) FROM ti_queue WHERE pool = 'p' AND state IN "
                                      "('queued', 'running')"),
                     2);
    struct claim c = {0};
    claim_ok(s, w, "w", "default", 2, &c);
    assert_int_equal(c.n, 2);
    claim_free(&c);

    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE workers SET state = 'dead' WHERE id = %lld", (long long)sa);
    testdb_store_num(s, sql);
    assert_int_equal(queue_round(s, sb, NULL, 0, NULL, 0, pools, 1, &g, &ng, &disp, &e), 0);
    assert_true(disp);
    queue_free_keys(g, ng);
    assert_int_equal(queue_release_sched(s, sa, &e), 0);
    /* the three submitted rows stay; 'waiting' (never handed out) was cleaned up */
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM ti_queue WHERE run_id = 'ra'"), 3);
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM ti_queue WHERE task_id = 'waiting'"),
                     0);

    /* b takes the run over and adopts its tries in flight */
    set_owner(s, "ra", sb);
    struct wq_kill *rows = NULL;
    size_t n = 0;
    assert_int_equal(wq_adopt(s, sb, "ra", &rows, &n, &e), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(rows[i].run_id, "ra");
        assert_int_equal(rows[i].try_number, 1);
    }
    wq_free_kills(rows, n);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM ti_queue WHERE sched_id = %lld", (long long)sb);
    assert_int_equal(testdb_store_num(s, sql), 3);
    /* the dead one cannot adopt */
    assert_int_equal(wq_adopt(s, sa, "ra", &rows, &n, &e), ERR_DB);
    assert_non_null(strstr(e.msg, "not active"));

    struct inbox in = {0};
    take_ok(s, sb, &in);
    assert_int_equal(in.n, 2); /* the two 'running' rows of the claims */
    inbox_free(&in);
    struct wq_end x = end_of("ra", "pooled", 1);
    assert_true(finish1(s, w, &x));
    take_ok(s, sb, &in);
    assert_int_equal(in.n, 1);
    assert_int_equal(in.v[0].phase, WQ_ENDED);
    inbox_free(&in);
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM ti_queue WHERE pool = 'p'"), 0);
    store_close(s);
}

/* Review of issue 12 (finding H1 in notes/review12.md): a scheduler declared dead whose
 * submission was still pending when the run was taken over (a SIGSTOPped scheduler that
 * wakes up) must not rewrite the run's rows: the new owner's try is claimed and running on a
 * worker, and the zombie's late wq_submit of an older try must neither reset it to 'queued'
 * (run twice, the worker's end fenced away) nor rewind its try number (the new owner then
 * waits for a result that never comes). */
static void test_submit_by_a_dead_scheduler_rewrites_nothing(void **state)
{
    (void)state;
    struct store *s = open_ok(), *zombie = open_ok();
    int64_t sa = sched_new(s, "a"), sb = sched_new(s, "b"), w = worker_new(s, "w", "{default}");
    run_new(s, "rz", sa);
    /* a is declared dead, b takes the run over: try 1 of 't' had no row (a's submission
     * was still pending), so b counts it failed and hands out try 2, which w claims */
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE workers SET state = 'dead' WHERE id = %lld", (long long)sa);
    testdb_store_num(s, sql);
    set_owner(s, "rz", sb);
    struct wq_item t2 = {"rz", "t", 2, "default", NULL, 1, spec};
    submit_ok(s, sb, &t2, 1);
    assert_int_equal(claim_n(s, w, "w", "default", 8), 1);

    /* a wakes up and sends its pending submission of try 1 */
    struct wq_item t1 = {"rz", "t", 1, "default", NULL, 1, spec};
    struct err e = {0};
    int rc = wq_submit(zombie, sa, &t1, 1, &e); /* refused (the fence) or a no-op */
    assert_true(rc == 0 || rc == -ESTALE);

    /* the row is still b's try 2, running on w */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM ti_queue WHERE run_id = 'rz' AND task_id = 't' AND "
             "try_number = 2 AND state = 'running' AND worker_id = %lld AND sched_id = %lld",
             (long long)w, (long long)sb);
    assert_int_equal(testdb_store_num(s, sql), 1);
    /* and w's end of try 2 reaches b */
    struct wq_end x = end_of("rz", "t", 2);
    assert_true(finish1(s, w, &x));
    store_close(zombie);
    store_close(s);
}

/* H1 again, by the live owner: a submission sent twice (its first commit's outcome unknown
 * to the scheduler) leaves the try a worker claimed meanwhile alone, and a scheduler hands
 * out nothing of a run it does not own. */
static void test_submit_again_leaves_a_claimed_try(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t sa = sched_new(s, "a"), sb = sched_new(s, "b"), w = worker_new(s, "w", "{default}");
    run_new(s, "r", sa);
    run_new(s, "rb", sb);
    struct wq_item t1 = {"r", "t", 1, "default", NULL, 1, spec};
    submit_ok(s, sa, &t1, 1);
    assert_int_equal(claim_n(s, w, "w", "default", 8), 1);
    submit_ok(s, sa, &t1, 1); /* sent again */
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM ti_queue WHERE run_id = 'r' AND try_number = 1 AND "
             "state = 'running' AND worker_id = %lld",
             (long long)w);
    assert_int_equal(testdb_store_num(s, sql), 1);
    assert_int_equal(claim_n(s, w, "w", "default", 8), 0); /* nothing handed out twice */
    struct wq_item other = {"rb", "t", 1, "default", NULL, 1, spec};
    submit_ok(s, sa, &other, 1); /* rb is b's */
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM ti_queue WHERE run_id = 'rb'"), 0);
    struct wq_end x = end_of("r", "t", 1);
    assert_true(finish1(s, w, &x));
    store_close(s);
}

/* Review of issue 12, H2: a taken result stays in the inbox until its taker deletes it (once
 * its records are durable), so one taken by a scheduler that dies before that goes to the
 * run's next owner: the adopter counts the try in flight and takes the result again. A take
 * whose answer was lost is taken again; a late delete by the dead one removes nothing. */
static void test_taken_results_survive_their_taker(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t sa = sched_new(s, "a"), sb = sched_new(s, "b"), w = worker_new(s, "w", "{default}");
    run_new(s, "r", sa);
    struct wq_item it = {"r", "t", 1, "default", NULL, 1, spec};
    submit_ok(s, sa, &it, 1);
    assert_int_equal(claim_n(s, w, "w", "default", 8), 1);
    struct wq_end x = end_of("r", "t", 1);
    assert_true(finish1(s, w, &x));

    struct inbox in = {0};
    take_ok(s, sa, &in); /* a takes the end, then dies before recording it */
    assert_int_equal(in.n, 1);
    assert_int_equal(in.v[0].phase, WQ_ENDED);
    inbox_free(&in);
    take_ok(s, sa, &in); /* not twice by a plain take */
    assert_int_equal(in.n, 0);
    retake_ok(s, sa, &in); /* but again when the answer was lost */
    assert_int_equal(in.n, 1);
    inbox_free(&in);

    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE workers SET state = 'dead' WHERE id = %lld", (long long)sa);
    testdb_store_num(s, sql);
    set_owner(s, "r", sb);
    struct wq_kill *rows = NULL;
    size_t n = 0;
    struct err e = {0};
    assert_int_equal(wq_adopt(s, sb, "r", &rows, &n, &e), 0);
    assert_int_equal(n, 1); /* in flight: not counted failed, not run again */
    assert_string_equal(rows[0].task_id, "t");
    wq_free_kills(rows, n);
    take_ok(s, sb, &in);
    assert_int_equal(in.n, 1);
    assert_int_equal(in.v[0].phase, WQ_ENDED);
    assert_false(ack1(s, sa, &in.v[0])); /* the dead one's late delete: not its row any more */
    assert_int_equal(results_n(s), 1);
    assert_false(ack1(s, sb, &in.v[0]));
    assert_int_equal(results_n(s), 0);
    inbox_free(&in);
    store_close(s);
}

/* A 'running' result taken, then replaced by the try's end: the end is taken (its phase
 * changed), and the delete of the 'running' one leaves it. A row locked by a worker's
 * transaction is left and said so. The results of a finished run are deleted by a take. */
static void test_ack_only_what_was_taken(void **state)
{
    (void)state;
    struct store *s = open_ok(), *w2 = open_ok();
    int64_t sa = sched_new(s, "a"), w = worker_new(s, "w", "{default}");
    run_new(s, "r", sa);
    run_new(s, "done", sa);
    struct wq_item it[] = {{"r", "t", 1, "default", NULL, 1, spec},
                           {"done", "t", 1, "default", NULL, 1, spec}};
    submit_ok(s, sa, it, 2);
    assert_int_equal(claim_n(s, w, "w", "default", 8), 2);
    testdb_store_num(s, "UPDATE runs SET state = 'success' WHERE run_id = 'done'");
    struct inbox run1 = {0}, in = {0};
    take_ok(s, sa, &run1); /* r's 'running' row; done's is deleted */
    assert_int_equal(run1.n, 1);
    assert_string_equal(run1.v[0].run_id, "r");
    assert_int_equal(run1.v[0].phase, WQ_RUNNING);
    assert_int_equal(results_n(s), 1);
    struct wq_end x = end_of("r", "t", 1);
    assert_true(finish1(s, w, &x));
    assert_false(ack1(s, sa, &run1.v[0])); /* the 'running' one: gone, the end stays */
    assert_int_equal(results_n(s), 1);
    take_ok(s, sa, &in);
    assert_int_equal(in.n, 1);
    assert_int_equal(in.v[0].phase, WQ_ENDED);
    testdb_store_num(w2, "BEGIN");
    testdb_store_num(w2, "SELECT 1 FROM try_results FOR UPDATE");
    testdb_store_num(s, "SET lock_timeout = '2s'"); /* a wait would fail the delete */
    assert_true(ack1(s, sa, &in.v[0]));             /* locked: left */
    testdb_store_num(w2, "COMMIT");
    assert_int_equal(results_n(s), 1);
    assert_false(ack1(s, sa, &in.v[0]));
    assert_int_equal(results_n(s), 0);
    inbox_free(&in);
    inbox_free(&run1);
    store_close(w2);
    store_close(s);
}

/* A pool-limited try: its granted row becomes the workers' row and keeps its slot; the
 * round neither claims it back nor replaces it; the finish frees the slot. */
static void test_round_leaves_submitted_rows(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t sid = sched_new(s, "s"), w = worker_new(s, "w", "{default}");
    run_new(s, "r", sid);
    struct queue_pool pools[] = {{"one", 1}};
    struct queue_want want[] = {{"r", "t", 1, "one", 1, 1, false}};
    struct queue_key *g = NULL;
    size_t ng = 0;
    bool disp = false;
    struct err e = {0};
    assert_int_equal(queue_round(s, sid, NULL, 0, want, 1, pools, 1, &g, &ng, &disp, &e), 0);
    assert_int_equal(ng, 1);
    queue_free_keys(g, ng);
    struct wq_item it[] = {{"r", "t", 1, "default", "one", 1, spec}};
    submit_ok(s, sid, it, 1);
    /* the next round (adding the same try again) neither claims nor replaces it */
    assert_int_equal(queue_round(s, sid, NULL, 0, want, 1, pools, 1, &g, &ng, &disp, &e), 0);
    assert_int_equal(ng, 0);
    queue_free_keys(g, ng);
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM ti_queue WHERE state = 'queued' "
                                         "AND spec <> '{}'"),
                     1);
    struct queue_want other[] = {{"r", "u", 1, "one", 1, 2, false}};
    assert_int_equal(queue_round(s, sid, NULL, 0, other, 1, pools, 1, &g, &ng, &disp, &e), 0);
    assert_int_equal(ng, 0); /* the slot is still taken */
    queue_free_keys(g, ng);
    assert_int_equal(claim_n(s, w, "w", "default", 8), 1);
    struct wq_end x = end_of("r", "t", 1);
    assert_true(finish1(s, w, &x));
    assert_int_equal(queue_round(s, sid, NULL, 0, NULL, 0, pools, 1, &g, &ng, &disp, &e), 0);
    assert_int_equal(ng, 1); /* u gets the freed slot */
    queue_free_keys(g, ng);
    store_close(s);
}

/* Registry reads: the worker of a try (running, then from its inbox row) with its log_url,
 * and the active workers of a queue. */
static void test_try_worker_and_queue_workers(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t sid = sched_new(s, "s"), w = worker_new(s, "w1", "{default,gpu}");
    worker_new(s, "w2", "{gpu}");
    testdb_store_num(s, "UPDATE workers SET log_url = 'http://h:1' WHERE name = 'w1'");
    run_new(s, "r", sid);
    int64_t n = -1;
    struct err e = {0};
    assert_int_equal(wq_queue_workers(s, "gpu", &n, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(wq_queue_workers(s, "default", &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(wq_queue_workers(s, "cpu", &n, &e), 0);
    assert_int_equal(n, 0);
    testdb_store_num(s, "UPDATE workers SET state = 'dead' WHERE name = 'w2'");
    assert_int_equal(wq_queue_workers(s, "gpu", &n, &e), 0);
    assert_int_equal(n, 1);

    char *name = NULL, *url = NULL;
    assert_int_equal(wq_try_worker(s, "r", "t", 1, &name, &url, &e), 0);
    assert_null(name);
    assert_null(url);
    struct wq_item it[] = {{"r", "t", 1, "default", NULL, 1, spec}};
    submit_ok(s, sid, it, 1);
    assert_int_equal(claim_n(s, w, "w1", "default", 1), 1);
    assert_int_equal(wq_try_worker(s, "r", "t", 1, &name, &url, &e), 0);
    assert_string_equal(name, "w1");
    assert_string_equal(url, "http://h:1");
    free(name);
    free(url);
    struct wq_end x = end_of("r", "t", 1);
    assert_true(finish1(s, w, &x));
    assert_int_equal(wq_try_worker(s, "r", "t", 1, &name, &url, &e), 0);
    assert_string_equal(name, "w1"); /* from the inbox row */
    assert_string_equal(url, "http://h:1");
    free(name);
    free(url);
    store_close(s);
}

/* A database of the previous schema (through pg/0009) is upgraded by opening it: an
 * unconsumed try_results row becomes an 'ended' one, and a scheduler's granted row of a
 * limited pool (no spec) keeps its slot and is still claimed by its round. */
static void test_upgrade_from_0009(void **state)
{
    (void)state;
    testdb_url("old");
    PGconn *c = testdb_connect(testdb_pgdb("old"));
    testdb_pg_exec(c, "CREATE TABLE schema_migrations (number integer PRIMARY KEY, "
                      "name text NOT NULL, applied_at bigint NOT NULL)");
    for (size_t i = 0; i < migrate_pg_steps_count; i++) {
        const struct migrate_step *m = &migrate_pg_steps[i];
        if (m->number > 9)
            continue;
        testdb_pg_exec(c, m->sql);
        char sql[256];
        snprintf(sql, sizeof sql, "INSERT INTO schema_migrations VALUES (%d, '%s', 0)", m->number,
                 m->name);
        testdb_pg_exec(c, sql);
    }
    testdb_pg_exec(c, "INSERT INTO workers (role, name, hostname, pid) VALUES "
                      "('scheduler', 's', 'h', 1)");
    testdb_pg_exec(c, "INSERT INTO runs (run_id, dag_id, state, type, logical_at, sched_id) "
                      "VALUES ('r', 'd', 'running', 'manual', 0, 1)");
    testdb_pg_exec(c, "INSERT INTO try_results (run_id, task_id, try_number, state, exit_code, "
                      "message) VALUES ('r', 'old', 1, 'failed', 3, 'm')");
    testdb_pg_exec(c, "INSERT INTO ti_queue (run_id, task_id, try_number, state, pool, sched_id) "
                      "VALUES ('r', 'p', 1, 'queued', 'one', 1)");
    PQfinish(c);

    struct store *s = NULL;
    struct err e = {0};
    assert_int_equal(store_open(testdb_url("old"), &s, &e), 0);
    assert_int_equal(testdb_store_num(s, "SELECT max(number) FROM schema_migrations"),
                     migrate_latest(migrate_pg_steps, migrate_pg_steps_count));
    struct inbox in = {0};
    take_ok(s, 1, &in);
    assert_int_equal(in.n, 1);
    assert_int_equal(in.v[0].phase, WQ_ENDED);
    assert_int_equal(in.v[0].exit_code, 3);
    assert_string_equal(in.v[0].message, "m");
    inbox_free(&in);
    struct queue_pool pools[] = {{"one", 1}};
    struct queue_key *g = NULL;
    size_t ng = 0;
    bool disp = false;
    assert_int_equal(queue_round(s, 1, NULL, 0, NULL, 0, pools, 1, &g, &ng, &disp, &e), 0);
    assert_int_equal(ng, 1);
    assert_string_equal(g[0].task_id, "p");
    queue_free_keys(g, ng);
    store_close(s);
}

/* A try without a spec, or with one that is not valid UTF-8, cannot be queued. */
static void test_submit_needs_spec(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t sid = sched_new(s, "s");
    struct wq_item it[] = {{"r", "t", 1, "default", NULL, 1, "{}"}};
    struct err e = {0};
    assert_int_equal(wq_submit(s, sid, it, 1, &e), -EINVAL);
    /* nor one whose spec PostgreSQL would refuse (the batch would fail with it) */
    struct wq_item bad[] = {{"r", "ok", 1, "default", NULL, 1, spec},
                            {"r", "t", 1, "default", NULL, 1, "{\"cmd\":\"\xff\"}"}};
    assert_int_equal(wq_submit(s, sid, bad, 2, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "try 1 of t in run r"));
    assert_int_equal(testdb_store_num(s, "SELECT count(*) FROM ti_queue"), 0);
    store_close(s);
}

/* SQLite: one scheduler per home runs its tries: nothing here applies. */
static void test_sqlite_not_supported(void **state)
{
    (void)state;
    struct store *s = NULL;
    struct err e = {0};
    assert_int_equal(store_open(testdb_path("baram.db"), &s, &e), 0);
    assert_false(wq_supported(s));
    struct wq_item it[] = {{"r", "t", 1, "default", NULL, 1, spec}};
    assert_int_equal(wq_submit(s, 1, it, 1, &e), -ENOTSUP);
    struct wq_claimed *c = NULL;
    size_t n = 0;
    const char *qs[] = {"default"};
    assert_int_equal(wq_claim(s, 1, "w", qs, 1, 8, &c, &n, &e), -ENOTSUP);
    struct wq_end x = end_of("r", "t", 1);
    bool ok = true;
    assert_int_equal(wq_finish(s, 1, &x, 1, &ok, &e), -ENOTSUP);
    assert_false(ok);
    struct wq_result *res = NULL;
    assert_int_equal(wq_take_results(s, 1, &res, &n, &e), -ENOTSUP);
    assert_int_equal(wq_sweep(s, 1000, NULL, &e), -ENOTSUP);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest pg[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(test_finish_claim_one_call, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(test_claim_queues_max_priority, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(test_two_claimers_disjoint, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(test_finish_fenced, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(test_sweep_lost_idempotent, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(test_sweep_skips_locked_rows_then_rescues, setup,
                                        testdb_teardown),
        cmocka_unit_test_setup_teardown(test_withdraw_and_kill_list, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_lists_running_rows, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(test_take_results_only_owner, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(test_take_skips_locked_rows, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(test_finish_and_take_concurrently, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(test_dead_scheduler_rows_kept_and_adopted, setup,
                                        testdb_teardown),
        cmocka_unit_test_setup_teardown(test_submit_by_a_dead_scheduler_rewrites_nothing, setup,
                                        testdb_teardown),
        cmocka_unit_test_setup_teardown(test_submit_again_leaves_a_claimed_try, setup,
                                        testdb_teardown),
        cmocka_unit_test_setup_teardown(test_taken_results_survive_their_taker, setup,
                                        testdb_teardown),
        cmocka_unit_test_setup_teardown(test_ack_only_what_was_taken, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(test_round_leaves_submitted_rows, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(test_try_worker_and_queue_workers, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_from_0009, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(test_submit_needs_spec, setup, testdb_teardown),
    };
    const struct CMUnitTest lite[] = {
        cmocka_unit_test_setup_teardown(test_sqlite_not_supported, setup, testdb_teardown),
    };
    if (testdb_pg())
        return cmocka_run_group_tests(pg, NULL, NULL);
    return cmocka_run_group_tests(lite, NULL, NULL);
}
