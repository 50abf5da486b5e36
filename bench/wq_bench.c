/*
 * wq_bench.c - the claim/finish protocol of `baram worker` alone (store/wq.h), no processes:
 * how many tries per second travel scheduler -> worker -> scheduler, and how long a try
 * waits between being handed out and being claimed by a worker woken by LISTEN.
 *
 *   wq_bench URL [N]     URL: an empty PostgreSQL database (postgresql://...), N: tries (20000)
 *
 * Three threads, each on a connection of its own, as the real roles would be:
 *  - the scheduler submits the N tries (wq_submit) and consumes its inbox
 *    (wq_take_results) until every try's end came back;
 *  - the worker claims up to its slots (wq_claim) and reports the ends of what it claimed
 *    (wq_finish) at once; when a claim finds nothing it waits for NOTIFY baram_queued, and
 *    the scheduler, once all is submitted, for NOTIFY baram_sched_<id>, as the real roles
 *    do (100 ms backstop);
 *  - batched: submit 64 at a time, claim up to 8, report their 8 ends in one call, either
 *    with the next claim (wq_finish_claim: one transaction per 8 tries) or apart (wq_finish
 *    then wq_claim); unbatched: 1, 1, 1 (finish and claim apart).
 * Latency: one try at a time every 5 ms (1000 samples); the worker sleeps in poll() on a
 * connection that LISTENs baram_queued and claims when it rings: ready (wq_submit called)
 * -> claimed (wq_claim returned it), p50/p99/max, on the monotonic clock of this process.
 *
 * Prints markdown. Each phase runs on its own run id in the same database.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "base/err.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "store/pg_int.h"
#include "store/store.h"
#include "store/wq.h"

static const char *url;
static const char spec[] = "{\"v\":1,\"kind\":\"run\",\"dag\":\"bench\",\"cmd\":\"true\","
                           "\"env\":[\"BARAM_DAG_ID=bench\"],\"timeout_ms\":0}";

static void die(const char *what, const struct err *e)
{
    fprintf(stderr, "wq_bench: %s: %s\n", what, e ? e->msg : "");
    exit(1);
}

static struct store *open_store(void)
{
    struct store *s = NULL;
    struct err e = {0};
    if (store_open(url, &s, &e) < 0)
        die("opening the database", &e);
    return s;
}

static int64_t sql_num(struct store *s, const char *sql)
{
    PGconn *c = store__pg(store__conn(s));
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        fprintf(stderr, "wq_bench: %s: %s", sql, PQresultErrorMessage(r));
        exit(1);
    }
    int64_t v =
        st == PGRES_TUPLES_OK && PQntuples(r) > 0 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return v;
}

/* A connection LISTENing on one channel: how the real roles wait for work. */
static PGconn *ear_open(const char *channel)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "wq_bench: LISTEN connection: %s", PQerrorMessage(c));
        exit(1);
    }
    char sql[128];
    snprintf(sql, sizeof sql, "LISTEN %s", channel);
    PQclear(PQexec(c, sql));
    return c;
}

/* Waits up to ms for a notification on c; true when one (or more) came, all drained. */
static bool ear_wait(PGconn *c, int ms)
{
    bool rang = false;
    for (int round = 0; round < 2 && !rang; round++) {
        PQconsumeInput(c);
        PGnotify *x;
        while ((x = PQnotifies(c))) {
            rang = true;
            PQfreemem(x);
        }
        if (rang || round == 1)
            break;
        struct pollfd pfd = {PQsocket(c), POLLIN, 0};
        if (poll(&pfd, 1, ms) <= 0)
            break;
    }
    return rang;
}

struct phase {
    const char *run_id;
    int n, submit_batch, claim_max;
    bool combined; /* wq_finish_claim, else wq_finish then wq_claim */
    int64_t sched_id, worker_id;
    atomic_int submitted;
    atomic_bool done;
};

/* As a scheduler does once its records of them are durable (at once here): deletes the
 * results taken from the inbox (wq_ack_results). */
static void ack_all(struct store *s, int64_t sched_id, const struct wq_result *r, size_t n)
{
    if (n == 0)
        return;
    struct wq_taken *k = xcalloc(n, sizeof *k);
    for (size_t i = 0; i < n; i++)
        k[i] = (struct wq_taken){r[i].run_id, r[i].task_id, r[i].try_number, r[i].phase};
    struct err e = {0};
    if (wq_ack_results(s, sched_id, k, n, NULL, &e) < 0)
        die("wq_ack_results", &e);
    free(k);
}

static void *scheduler_run(void *arg)
{
    struct phase *p = arg;
    struct store *s = open_store();
    struct wq_item *v = calloc((size_t)p->submit_batch, sizeof *v);
    char(*names)[16] = calloc((size_t)p->submit_batch, sizeof *names);
    int ended = 0;
    struct err e = {0};
    char ch[64];
    snprintf(ch, sizeof ch, WQ_CHANNEL_SCHED "%" PRId64, p->sched_id);
    PGconn *ear = ear_open(ch);
    while (ended < p->n) {
        int k = 0;
        while (atomic_load(&p->submitted) < p->n && k < p->submit_batch) {
            int i = atomic_load(&p->submitted) + k;
            if (i >= p->n)
                break;
            snprintf(names[k], sizeof names[k], "t%d", i);
            v[k] = (struct wq_item){p->run_id, names[k], 1, "default", NULL, 1, spec};
            k++;
        }
        if (k > 0) {
            if (wq_submit(s, p->sched_id, v, (size_t)k, &e) < 0)
                die("wq_submit", &e);
            atomic_fetch_add(&p->submitted, k);
        }
        struct wq_result *r = NULL;
        size_t nr = 0;
        if (wq_take_results(s, p->sched_id, &r, &nr, &e) < 0)
            die("wq_take_results", &e);
        for (size_t i = 0; i < nr; i++)
            if (r[i].phase == WQ_ENDED)
                ended++;
        ack_all(s, p->sched_id, r, nr);
        wq_free_results(r, nr);
        if (nr == 0 && atomic_load(&p->submitted) >= p->n)
            (void)ear_wait(ear, 100);
    }
    PQfinish(ear);
    atomic_store(&p->done, true);
    free(v);
    free(names);
    store_close(s);
    return NULL;
}

/* The ends of the claimed tries c[0..n) (exit 0, a line of log). */
static void ends_of(const struct wq_claimed *c, size_t n, struct wq_end *ends)
{
    for (size_t i = 0; i < n; i++) {
        ends[i] = (struct wq_end){0};
        ends[i].run_id = c[i].run_id;
        ends[i].task_id = c[i].task_id;
        ends[i].try_number = c[i].try_number;
        ends[i].log = "ok\n";
        ends[i].log_len = 3;
    }
}

static void *worker_run(void *arg)
{
    struct phase *p = arg;
    struct store *s = open_store();
    const char *qs[] = {"default"};
    struct err e = {0};
    struct wq_end *ends = calloc((size_t)p->claim_max, sizeof *ends);
    bool *acc = calloc((size_t)p->claim_max, sizeof *acc);
    PGconn *ear = ear_open(WQ_CHANNEL_QUEUED);
    struct wq_claimed *c = NULL;
    size_t n = 0;
    while (!atomic_load(&p->done)) {
        struct wq_claimed *next = NULL;
        size_t nnext = 0;
        ends_of(c, n, ends);
        if (p->combined) {
            /* the ends of the last claim reported, and the slots refilled, in one call */
            if (wq_finish_claim(s, p->worker_id, "bench-w", ends, n, acc, qs, 1, p->claim_max,
                                &next, &nnext, &e) < 0)
                die("wq_finish_claim", &e);
        } else {
            if (n > 0 && wq_finish(s, p->worker_id, ends, n, acc, &e) < 0)
                die("wq_finish", &e);
            if (wq_claim(s, p->worker_id, "bench-w", qs, 1, p->claim_max, &next, &nnext, &e) < 0)
                die("wq_claim", &e);
        }
        wq_free_claimed(c, n);
        c = next;
        n = nnext;
        if (n == 0)
            (void)ear_wait(ear, 100);
    }
    wq_free_claimed(c, n);
    PQfinish(ear);
    free(ends);
    free(acc);
    store_close(s);
    return NULL;
}

static double throughput(struct store *s, const char *run_id, int n, int submit_batch,
                         int claim_max, bool combined, int64_t sched, int64_t worker)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO runs (run_id, dag_id, state, type, logical_at, sched_id) "
             "VALUES ('%s', 'bench', 'running', 'manual', 0, %" PRId64 ")",
             run_id, sched);
    sql_num(s, sql);
    struct phase p = {run_id, n, submit_batch, claim_max, combined, sched, worker, 0, false};
    int64_t t0 = when_mono_ns();
    pthread_t ts, tw;
    pthread_create(&ts, NULL, scheduler_run, &p);
    pthread_create(&tw, NULL, worker_run, &p);
    pthread_join(ts, NULL);
    pthread_join(tw, NULL);
    double secs = (double)(when_mono_ns() - t0) / 1e9;
    return n / secs;
}

/* ---- latency ---- */

enum { LAT_N = 1000, LAT_EVERY_US = 5000 };

struct lat {
    int64_t sched_id, worker_id;
    int64_t ready_ns[LAT_N], claimed_ns[LAT_N];
    atomic_int claimed;
    atomic_bool listening;
};

static void *lat_worker(void *arg)
{
    struct lat *L = arg;
    struct store *s = open_store();
    PGconn *c = ear_open(WQ_CHANNEL_QUEUED);
    atomic_store(&L->listening, true);
    const char *qs[] = {"default"};
    struct err e = {0};
    struct wq_end ends[8];
    bool acc[8];
    bool full = false;
    while (atomic_load(&L->claimed) < LAT_N) {
        /* a full claim may have left more: claim again at once; else wait for the bell (or
         * the 1 s backstop, as the worker does) */
        if (!full)
            (void)ear_wait(c, 1000);
        struct wq_claimed *v = NULL;
        size_t n = 0;
        if (wq_claim(s, L->worker_id, "bench-w", qs, 1, 8, &v, &n, &e) < 0)
            die("wq_claim", &e);
        int64_t now = when_mono_ns();
        for (size_t i = 0; i < n; i++) {
            int k = (int)strtol(v[i].task_id + 1, NULL, 10);
            if (k >= 0 && k < LAT_N)
                L->claimed_ns[k] = now;
            ends[i] = (struct wq_end){0};
            ends[i].run_id = v[i].run_id;
            ends[i].task_id = v[i].task_id;
            ends[i].try_number = v[i].try_number;
        }
        if (n > 0 && wq_finish(s, L->worker_id, ends, n, acc, &e) < 0)
            die("wq_finish", &e);
        atomic_fetch_add(&L->claimed, (int)n);
        full = n == 8;
        wq_free_claimed(v, n);
    }
    PQfinish(c);
    store_close(s);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void latency(struct store *s, int64_t sched, int64_t worker, double *p50, double *p99,
                    double *max)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO runs (run_id, dag_id, state, type, logical_at, sched_id) "
             "VALUES ('lat', 'bench', 'running', 'manual', 0, %" PRId64 ")",
             sched);
    sql_num(s, sql);
    struct lat *L = calloc(1, sizeof *L);
    L->sched_id = sched;
    L->worker_id = worker;
    pthread_t tw;
    pthread_create(&tw, NULL, lat_worker, L);
    while (!atomic_load(&L->listening))
        usleep(1000);
    struct err e = {0};
    for (int i = 0; i < LAT_N; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        struct wq_item it = {"lat", name, 1, "default", NULL, 1, spec};
        L->ready_ns[i] = when_mono_ns();
        if (wq_submit(s, sched, &it, 1, &e) < 0)
            die("wq_submit", &e);
        struct wq_result *r = NULL;
        size_t nr = 0;
        if (wq_take_results(s, sched, &r, &nr, &e) < 0)
            die("wq_take_results", &e);
        ack_all(s, sched, r, nr);
        wq_free_results(r, nr);
        usleep(LAT_EVERY_US);
    }
    pthread_join(tw, NULL);
    int64_t d[LAT_N];
    for (int i = 0; i < LAT_N; i++)
        d[i] = L->claimed_ns[i] - L->ready_ns[i];
    qsort(d, LAT_N, sizeof *d, cmp_i64);
    *p50 = (double)d[LAT_N / 2] / 1e6;
    *p99 = (double)d[LAT_N * 99 / 100] / 1e6;
    *max = (double)d[LAT_N - 1] / 1e6;
    free(L);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: wq_bench URL [N]\n");
        return 2;
    }
    url = argv[1];
    int n = argc == 3 ? (int)strtol(argv[2], NULL, 10) : 20000;
    if (n <= 0)
        return 2;
    struct store *s = open_store();
    int64_t sched = sql_num(s, "INSERT INTO workers (role, name, hostname, pid) VALUES "
                               "('scheduler', 'bench-s', 'h', 1) RETURNING id");
    int64_t worker = sql_num(s, "INSERT INTO workers (role, name, hostname, pid, slots) VALUES "
                                "('worker', 'bench-w', 'h', 1, 8) RETURNING id");
    double combined = throughput(s, "combined", n, 64, 8, true, sched, worker);
    double batched = throughput(s, "batched", n, 64, 8, false, sched, worker);
    int nu = n / 4 > 0 ? n / 4 : 1;
    double unbatched = throughput(s, "unbatched", nu, 1, 1, false, sched, worker);
    double p50, p99, max;
    latency(s, sched, worker, &p50, &p99, &max);
    printf("| figure | measured | target |\n|---|---|---|\n");
    printf("| batched, finish + claim in one call (wq_finish_claim), %d tries | %.0f tasks/s | "
           ">= 3,000 |\n",
           n, combined);
    printf("| batched, finish then claim (two calls), %d tries | %.0f tasks/s | >= 3,000 |\n", n,
           batched);
    printf("| unbatched (submit 1, claim 1, finish 1), %d tries | %.0f tasks/s | - |\n", nu,
           unbatched);
    printf("| ready -> claimed (LISTEN), %d tries one at a time | p50 %.2f ms, p99 %.2f ms, max "
           "%.2f ms | <= 2 / <= 10 ms |\n",
           LAT_N, p50, p99, max);
    int64_t left = sql_num(s, "SELECT count(*) FROM ti_queue");
    if (left != 0)
        fprintf(stderr, "wq_bench: %" PRId64 " rows left in ti_queue\n", left);
    store_close(s);
    return left != 0;
}
