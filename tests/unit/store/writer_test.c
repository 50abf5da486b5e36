/*
 * writer_test.c - the group-commit writer with a real libuv loop and real
 * databases (SQLite files; fresh PostgreSQL databases in the "_pg" run,
 * tests/unit/pgtmp.h): group commit of 20,000 changes, coalescing, stop, the
 * on_commit hook, a failed commit (FP_STORE_COMMIT), and durability across
 * kill -9 of the process.
 * With BARAM_STORE_BENCH=DIR set it runs only bench_writer, which prints throughput
 * figures for a database in DIR.
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
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "../pgtmp.h"
#include "base/err.h"
#include "base/when.h"
#include "store/pg_int.h"
#include "store/store.h"
#include "store/store_int.h"

static char tmpdir[PATH_MAX];
static char dbpath[PATH_MAX + 160]; /* the store URL: a path, or postgresql://... */

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int make_tmp(const char *base)
{
    snprintf(tmpdir, sizeof(tmpdir), "%s/baram-writer-XXXXXX", base);
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(dbpath, sizeof(dbpath), "%s/baram.db", tmpdir);
    return 0;
}

static int setup(void **state)
{
    testdb_reset("writer");
    snprintf(dbpath, sizeof(dbpath), "%s", testdb_url("baram.db"));
    return 0;
}

static int teardown(void **state)
{
    testdb_drop();
    return 0;
}

/* What the callbacks saw. */
struct seen {
    uv_loop_t *loop;
    struct store_writer *w;
    uint64_t durable; /* last on_durable seq */
    int durable_calls;
    int error_code;
    char *error_msg;
    int stopped;
    uint64_t stop_at; /* stop the writer once this seq is durable (0: never) */
    /* Submission driven by an idle handle. */
    uv_idle_t idle;
    int next, total, per_tick;
    int same; /* consecutive changes per row (a task's state transitions); 0 = 1 */
    int64_t t0_ns, t_durable_ns;
};

static void on_durable(void *ud, uint64_t seq)
{
    struct seen *s = ud;
    assert_true(seq > s->durable); /* monotonic */
    s->durable = seq;
    s->durable_calls++;
    if (s->stop_at && seq >= s->stop_at && !s->t_durable_ns)
        s->t_durable_ns = when_mono_ns();
}

static void on_error(void *ud, int code, const char *msg)
{
    struct seen *s = ud;
    s->error_code = code;
    free(s->error_msg);
    s->error_msg = strdup(msg);
}

static void on_stopped(void *ud)
{
    struct seen *s = ud;
    s->stopped++;
}

static void make_ti(struct ti_rec *t, char *task_id, char *task, int try_number)
{
    memset(t, 0, sizeof(*t));
    t->run_id = "run1";
    t->task_id = task_id;
    t->task = task;
    t->map_index = -1;
    t->state = TI_RUNNING;
    t->try_number = try_number;
    t->max_tries = 3;
    t->exit_code = -1;
    t->output = "o\0k";
    t->output_len = 3;
    t->priority = 1;
    t->pool = "default";
    t->scheduled_at_ms = 1;
    t->queued_at_ms = 2;
    t->started_at_ms = 3;
    t->ended_at_ms = -1;
}

static uint64_t submit_ti(struct store_writer *w, int i)
{
    char id[32];
    snprintf(id, sizeof(id), "t%06d", i);
    struct ti_rec t;
    make_ti(&t, id, id, 1);
    return store_writer_put_ti(w, &t);
}

/* Idle callback: submits per_tick changes per loop iteration until total, then stops the
 * writer once the last one is durable. */
static void submit_tick(uv_idle_t *h)
{
    struct seen *s = h->data;
    for (int k = 0; k < s->per_tick && s->next < s->total; k++) {
        ++s->next;
        uint64_t seq = submit_ti(s->w, s->same > 1 ? (s->next - 1) / s->same + 1 : s->next);
        assert_int_equal(seq, (uint64_t)s->next);
    }
    if (s->next == s->total && s->durable >= (uint64_t)s->total) {
        uv_idle_stop(h);
        uv_close((uv_handle_t *)h, NULL);
        store_writer_stop(s->w, on_stopped);
    }
}

static struct store_writer *start(uv_loop_t *loop, struct seen *s)
{
    struct store_writer *w = NULL;
    struct err serr = {0};
    int r = store_writer_start(loop, dbpath, on_durable, on_error, s, NULL, NULL, &w, &serr);
    if (r < 0)
        fail_msg("store_writer_start: %d %s", r, serr.msg);
    assert_int_equal(serr.code, 0);
    s->loop = loop;
    s->w = w;
    return w;
}

static size_t count_tis(const char *run_id)
{
    struct store *st = NULL;
    struct err serr = {0};
    assert_int_equal(store_open(dbpath, &st, &serr), 0);
    struct ti_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(store_list_tis(st, run_id, &v, &n, NULL), 0);
    store_free_tis(v, n);
    store_close(st);
    return n;
}

/* Runs total submissions through the writer, per_tick per loop turn: prints and checks. */
static void pump(int total, int per_tick, int same, bool coalesce, const char *label,
                 uint64_t *commits_out)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct seen s = {
        .total = total, .per_tick = per_tick, .same = same, .stop_at = (uint64_t)total};
    struct store_writer *w = start(&loop, &s);
    store_writer_set_coalesce(w, coalesce);
    uv_idle_init(&loop, &s.idle);
    s.idle.data = &s;
    s.t0_ns = when_mono_ns();
    uv_idle_start(&s.idle, submit_tick);
    uint64_t commits = 0, changes = 0, rows = 0;
    int64_t commit_ns = 0;
    /* Stats must be read before stop frees the writer: run until durable, read, finish. */
    while (s.durable < (uint64_t)total && uv_run(&loop, UV_RUN_ONCE))
        ;
    store_writer_stats(w, &commits, &changes, &commit_ns);
    rows = store_writer_rows(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(s.stopped, 1);
    assert_int_equal(s.error_code, 0);
    assert_int_equal(s.durable, (uint64_t)total);
    assert_int_equal(uv_loop_close(&loop), 0);
    double secs = (double)(s.t_durable_ns - s.t0_ns) / 1e9;
    print_message("%s: %d changes, %llu commits (%.1f changes/commit, %llu rows), %d on_durable "
                  "calls, %.3f s: %.0f changes/s, mean commit %.2f ms\n",
                  label, total, (unsigned long long)commits, (double)changes / (double)commits,
                  (unsigned long long)rows, s.durable_calls, secs, total / secs,
                  commit_ns / 1e6 / (double)commits);
    if (commits_out)
        *commits_out = commits;
}

static void group_commit_writes_20000_changes_in_few_commits(void **state)
{
    uint64_t commits = 0;
    pump(20000, 100, 1, true, "group commit", &commits);
    assert_int_equal(count_tis("run1"), 20000);
    assert_true(commits * 10 < 20000);
    /* First-seen order is submission order. */
    struct store *st = NULL;
    struct err serr = {0};
    assert_int_equal(store_open(dbpath, &st, &serr), 0);
    struct ti_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(store_list_tis(st, "run1", &v, &n, NULL), 0);
    for (size_t i = 0; i < n; i += 997) {
        char id[32];
        snprintf(id, sizeof(id), "t%06zu", i + 1);
        assert_string_equal(v[i].task_id, id);
        assert_int_equal(v[i].output_len, 3);
        assert_memory_equal(v[i].output, "o\0k", 3);
    }
    store_free_tis(v, n);
    store_close(st);
}

static void coalesced_upserts_keep_last_content_and_first_order(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct seen s = {0};
    struct store_writer *w = start(&loop, &s);
    struct ti_rec t;
    uint64_t last = 0;
    for (int i = 1; i <= 2000; i++) {
        make_ti(&t, i % 2 ? "a" : "b", i % 2 ? "a" : "b", i);
        last = store_writer_put_ti(w, &t);
    }
    assert_int_equal(last, 2000);
    while (s.durable < last && uv_run(&loop, UV_RUN_ONCE))
        ;
    uint64_t commits, changes;
    store_writer_stats(w, &commits, &changes, NULL);
    uint64_t rows = store_writer_rows(w);
    print_message("coalescing: 2000 changes of 2 rows -> %llu commits, %llu rows written\n",
                  (unsigned long long)commits, (unsigned long long)rows);
    assert_int_equal(changes, 2000);
    assert_true(rows < changes);
    store_writer_stop(w, on_stopped);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(s.stopped, 1);
    assert_int_equal(uv_loop_close(&loop), 0);

    struct store *st = NULL;
    struct err serr = {0};
    assert_int_equal(store_open(dbpath, &st, &serr), 0);
    struct ti_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(store_list_tis(st, "run1", &v, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].task_id, "a");
    assert_int_equal(v[0].try_number, 1999);
    assert_string_equal(v[1].task_id, "b");
    assert_int_equal(v[1].try_number, 2000);
    store_free_tis(v, n);
    store_close(st);
}

static void stop_flushes_and_refuses_later_changes(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct seen s = {0};
    struct store_writer *w = start(&loop, &s);
    for (int i = 1; i <= 10; i++)
        assert_int_equal(submit_ti(w, i), (uint64_t)i);
    struct run_rec r = {.run_id = "run1",
                        .dag_id = "d",
                        .state = RUN_RUNNING,
                        .type = RUN_MANUAL,
                        .logical_at_ms = 5,
                        .queued_at_ms = -1,
                        .started_at_ms = -1,
                        .ended_at_ms = -1};
    assert_int_equal(store_writer_put_run(w, &r), 11);
    struct try_rec tr = {.run_id = "run1",
                         .task_id = "t000001",
                         .try_number = 1,
                         .state = TI_RUNNING,
                         .exit_code = -1,
                         .queued_at_ms = -1,
                         .started_at_ms = 1,
                         .ended_at_ms = -1,
                         .pid = 7};
    assert_int_equal(store_writer_put_try(w, &tr), 12);
    assert_int_equal(store_writer_put_dag_version(w, "h1", "d", "src", 3), 13);
    store_writer_stop(w, on_stopped);
    assert_int_equal(submit_ti(w, 99), 0);
    assert_int_equal(store_writer_put_run(w, &r), 0);
    assert_int_equal(s.stopped, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(s.stopped, 1);
    assert_int_equal(s.durable, 13);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(count_tis("run1"), 10);

    struct store *st = NULL;
    struct err serr = {0};
    assert_int_equal(store_open(dbpath, &st, &serr), 0);
    struct run_rec got;
    assert_int_equal(store_get_run(st, "run1", &got, NULL), 0);
    run_rec_release(&got);
    struct try_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(store_list_tries(st, "run1", "t000001", &v, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].pid, 7);
    store_free_tries(v, n);
    char *src = NULL;
    size_t len = 0;
    assert_int_equal(store_get_dag_version(st, "h1", &src, &len, NULL), 0);
    assert_memory_equal(src, "src", 3);
    free(src);
    store_close(st);
}

/* Changes trickling in one per millisecond: with a linger the writer gathers them into a few
 * commits; without one it commits about once per change. A stop during a linger flushes at
 * once. */
struct trickle {
    struct seen s;
    uv_timer_t timer;
    int sent, total;
    uint64_t commits; /* read just before the stop (the writer frees itself after) */
};

static void trickle_tick(uv_timer_t *h)
{
    struct trickle *t = h->data;
    if (t->sent < t->total) {
        ++t->sent;
        assert_int_equal(submit_ti(t->s.w, t->sent), (uint64_t)t->sent);
        return;
    }
    if (t->s.durable >= (uint64_t)t->total) {
        uv_timer_stop(h);
        uv_close((uv_handle_t *)h, NULL);
        store_writer_stats(t->s.w, &t->commits, NULL, NULL);
        store_writer_stop(t->s.w, on_stopped);
    }
}

static uint64_t trickle_commits(int linger_ms)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct trickle t = {.total = 60};
    struct store_writer *w = start(&loop, &t.s);
    store_writer_set_linger(w, linger_ms);
    uv_timer_init(&loop, &t.timer);
    t.timer.data = &t;
    uv_timer_start(&t.timer, trickle_tick, 1, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    uint64_t commits = t.commits;
    assert_int_equal(t.s.stopped, 1);
    assert_int_equal(t.s.durable, 60);
    assert_int_equal(uv_loop_close(&loop), 0);
    return commits;
}

static void linger_gathers_trickling_changes(void **state)
{
    uint64_t eager = trickle_commits(0);
    assert_int_equal(count_tis("run1"), 60);
    uint64_t lingering = trickle_commits(25);
    assert_int_equal(count_tis("run1"), 60);
    fprintf(stderr, "60 changes 1 ms apart: %llu commits eager, %llu with a 25 ms linger\n",
            (unsigned long long)eager, (unsigned long long)lingering);
    assert_true(lingering <= 10);
    assert_true(lingering * 2 < eager);
}

static void stop_during_linger_flushes_at_once(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct seen s = {0};
    struct store_writer *w = start(&loop, &s);
    store_writer_set_linger(w, 10000);
    assert_int_equal(submit_ti(w, 1), 1);
    int64_t t0 = when_mono_ns();
    store_writer_stop(w, on_stopped);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(s.durable, 1);
    assert_true(when_mono_ns() - t0 < 5000000000LL); /* not the 10 s linger */
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(count_tis("run1"), 1);
}

/* Lowering the linger to 0 while the writer gathers makes it commit at once (a run's end
 * waits for its last commit). */
static void linger_zero_commits_at_once(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct seen s = {0};
    struct store_writer *w = start(&loop, &s);
    store_writer_set_linger(w, 10000);
    assert_int_equal(submit_ti(w, 1), 1);
    usleep(50000); /* the writer is now lingering */
    int64_t t0 = when_mono_ns();
    store_writer_set_linger(w, 0);
    while (s.durable < 1 && uv_run(&loop, UV_RUN_ONCE))
        ;
    assert_int_equal(s.durable, 1);
    assert_true(when_mono_ns() - t0 < 5000000000LL); /* not the 10 s linger */
    store_writer_stop(w, on_stopped);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void stop_with_nothing_queued(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct seen s = {0};
    struct store_writer *w = start(&loop, &s);
    assert_int_equal(store_writer_durable(w), 0);
    store_writer_stop(w, NULL); /* done_cb may be NULL */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(s.durable_calls, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* What the on_commit hook saw (written on the writer thread, under mu). */
struct commits_seen {
    pthread_mutex_t mu;
    pthread_t loop_thread;
    int calls, off_loop;
    uint64_t last_seq;
    size_t events, last_events;
};

static void on_commit(void *ud, uint64_t seq, size_t nevents)
{
    struct commits_seen *c = ud;
    pthread_mutex_lock(&c->mu);
    c->calls++;
    c->off_loop += !pthread_equal(pthread_self(), c->loop_thread);
    assert_true(seq > c->last_seq);
    c->last_seq = seq;
    c->events += nevents;
    c->last_events = nevents;
    pthread_mutex_unlock(&c->mu);
}

static uint64_t commits_last_seq(struct commits_seen *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t seq = c->last_seq;
    pthread_mutex_unlock(&c->mu);
    return seq;
}

static void on_commit_runs_on_the_writer_thread_before_the_loop_hears(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct seen s = {0};
    struct commits_seen c = {.loop_thread = pthread_self()};
    pthread_mutex_init(&c.mu, NULL);
    uint64_t commits0, ns0, commits1, ns1;
    store_writer_totals(&commits0, &ns0);
    struct store_writer *w = NULL;
    struct err serr = {0};
    assert_int_equal(
        store_writer_start(&loop, dbpath, on_durable, on_error, &s, on_commit, &c, &w, &serr), 0);
    /* Five task instances changing state: five events. */
    for (int i = 1; i <= 5; i++)
        assert_int_equal(submit_ti(w, i), (uint64_t)i);
    while (s.durable < 5 && uv_run(&loop, UV_RUN_ONCE))
        assert_true(commits_last_seq(&c) >= s.durable); /* the hook ran first */
    assert_int_equal(commits_last_seq(&c), 5);
    /* A try alone changes no state: a commit without events. */
    struct try_rec tr = {.run_id = "run1",
                         .task_id = "t000001",
                         .try_number = 1,
                         .state = TI_RUNNING,
                         .exit_code = -1,
                         .started_at_ms = 3,
                         .ended_at_ms = -1};
    assert_int_equal(store_writer_put_try(w, &tr), 6);
    while (s.durable < 6 && uv_run(&loop, UV_RUN_ONCE))
        assert_true(commits_last_seq(&c) >= s.durable);
    store_writer_stop(w, on_stopped);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(s.stopped, 1);
    assert_true(c.calls >= 2);
    assert_int_equal(c.off_loop, c.calls);
    assert_int_equal(c.last_seq, 6);
    assert_int_equal(c.last_events, 0);
    assert_int_equal(c.events, 5);
    /* the process's totals (/metrics) count every commit the hook saw, and their time */
    store_writer_totals(&commits1, &ns1);
    assert_int_equal(commits1 - commits0, (uint64_t)c.calls);
    assert_true(ns1 > ns0);
    pthread_mutex_destroy(&c.mu);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void failed_commit_reports_error_and_refuses(void **state)
{
#ifndef BARAM_FAULTS
    skip();
#else
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct seen s = {0};
    /* Set before the thread exists, cleared after it is joined: no race on the environment. */
    setenv("BARAM_FAULT", "FP_STORE_COMMIT", 1);
    struct store_writer *w = start(&loop, &s);
    assert_int_equal(submit_ti(w, 1), 1);
    while (!s.error_msg && uv_run(&loop, UV_RUN_ONCE))
        ;
    assert_int_equal(s.error_code, ERR_DB);
    assert_non_null(strstr(s.error_msg, "FP_STORE_COMMIT"));
    assert_int_equal(s.durable, 0);
    assert_int_equal(submit_ti(w, 2), 0);
    store_writer_stop(w, on_stopped);
    uv_run(&loop, UV_RUN_DEFAULT);
    unsetenv("BARAM_FAULT");
    assert_int_equal(s.stopped, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(s.error_msg);
    assert_int_equal(count_tis("run1"), 0);
#endif
}

static void start_on_a_bad_path_says_why(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct seen s = {0};
    struct store_writer *w = NULL;
    struct err serr = {0};
    assert_int_equal(store_writer_start(&loop, "/proc/baram-nope/baram.db", on_durable, on_error,
                                        &s, NULL, NULL, &w, &serr),
                     ERR_DB);
    assert_null(w);
    assert_true(serr.msg[0] != 0);
    assert_non_null(strstr(serr.msg, "cannot open database '/proc/baram-nope/baram.db'"));
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0); /* no handle left behind */
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- durability across kill -9 ---- */

struct child {
    struct seen s;
    int fd;
    bool reported;
};

static void child_durable(void *ud, uint64_t seq)
{
    struct child *c = ud;
    if (!c->reported && seq >= 3000) {
        c->reported = true;
        ssize_t n = write(c->fd, &seq, sizeof(seq));
        if (n != (ssize_t)sizeof(seq))
            _exit(3);
    }
}

static void child_tick(uv_idle_t *h)
{
    struct child *c = h->data;
    for (int k = 0; k < 50; k++)
        if (!submit_ti(c->s.w, ++c->s.next))
            _exit(4);
}

static void child_main(int fd)
{
    alarm(20); /* never outlive the test */
    uv_loop_t loop;
    if (uv_loop_init(&loop) < 0)
        _exit(2);
    struct child c = {.fd = fd};
    struct err serr = {0};
    if (store_writer_start(&loop, dbpath, child_durable, NULL, &c, NULL, NULL, &c.s.w, &serr) < 0)
        _exit(2);
    uv_idle_init(&loop, &c.s.idle);
    c.s.idle.data = &c;
    uv_idle_start(&c.s.idle, child_tick); /* keeps writing until killed */
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(5);
}

static void every_durable_change_survives_kill_9(void **state)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        child_main(p[1]);
    }
    close(p[1]);
    uint64_t seq = 0;
    ssize_t n = read(p[0], &seq, sizeof(seq));
    close(p[0]);
    kill(pid, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(n, (ssize_t)sizeof(seq));
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    struct store *st = NULL;
    struct err serr = {0};
    assert_int_equal(store_open(dbpath, &st, &serr), 0);
    struct ti_rec *v = NULL;
    size_t got = 0;
    assert_int_equal(store_list_tis(st, "run1", &v, &got, NULL), 0);
    print_message("kill -9: durable seq %llu reported, %zu rows found after restart\n",
                  (unsigned long long)seq, got);
    assert_true(got >= seq);
    /* Rows are in first-seen order = submission order: every change 1..seq is there. */
    for (uint64_t i = 0; i < seq; i++) {
        char id[32];
        snprintf(id, sizeof(id), "t%06llu", (unsigned long long)i + 1);
        assert_string_equal(v[i].task_id, id);
    }
    store_free_tis(v, got);
    store_close(st);
}

/* ---- figures (BARAM_STORE_BENCH=DIR) ---- */

struct one {
    struct store_writer *w;
    int left;
    uint64_t waiting;
};

static void one_durable(void *ud, uint64_t seq)
{
    struct one *o = ud;
    if (seq < o->waiting)
        return;
    if (--o->left > 0)
        o->waiting = submit_ti(o->w, o->left);
}

static void bench_writer(void **state)
{
    const char *dir = getenv("BARAM_STORE_BENCH");
    char keep[PATH_MAX];
    snprintf(keep, sizeof(keep), "%s", tmpdir);
    nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    assert_int_equal(make_tmp(dir), 0);
    print_message("bench in %s\n", tmpdir);

    pump(100000, 200, 1, true, "writer, 100000 new rows", NULL);
    unlink(dbpath);
    pump(100000, 200, 5, false, "writer, 20000 rows x 5 updates, coalescing off", NULL);
    unlink(dbpath);
    pump(100000, 200, 5, true, "writer, 20000 rows x 5 updates, coalescing on", NULL);
    unlink(dbpath);

    /* One change per transaction through the writer: submit, wait until durable, next. */
    {
        uv_loop_t loop;
        assert_int_equal(uv_loop_init(&loop), 0);
        struct one o = {.left = 300};
        struct err serr = {0};
        assert_int_equal(
            store_writer_start(&loop, dbpath, one_durable, NULL, &o, NULL, NULL, &o.w, &serr), 0);
        int64_t t0 = when_mono_ns();
        o.waiting = submit_ti(o.w, o.left);
        while (o.left > 0 && uv_run(&loop, UV_RUN_ONCE))
            ;
        double secs = (double)(when_mono_ns() - t0) / 1e9;
        uint64_t commits;
        int64_t ns;
        store_writer_stats(o.w, &commits, NULL, &ns);
        print_message("writer, one change per commit: %llu commits in %.3f s: %.0f commits/s, "
                      "mean commit %.2f ms\n",
                      (unsigned long long)commits, secs, commits / secs, ns / 1e6 / commits);
        store_writer_stop(o.w, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&loop), 0);
    }

    /* Synchronous single-change transactions on one connection. */
    {
        struct store *st = NULL;
        struct err serr = {0};
        assert_int_equal(store_open(dbpath, &st, &serr), 0);
        int64_t t0 = when_mono_ns();
        for (int i = 0; i < 300; i++) {
            char id[32];
            snprintf(id, sizeof(id), "s%06d", i);
            struct ti_rec t;
            make_ti(&t, id, id, 1);
            assert_int_equal(store_begin(st, NULL), 0);
            assert_int_equal(store_put_ti(st, &t, NULL), 0);
            assert_int_equal(store_commit(st, NULL), 0);
        }
        double secs = (double)(when_mono_ns() - t0) / 1e9;
        print_message("sync, one change per commit: 300 commits in %.3f s: %.0f commits/s\n", secs,
                      300 / secs);
        store_close(st);
    }
    (void)keep;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* PostgreSQL: one transaction of 1000 task-instance upserts (a large group commit), with the
 * writes waited for one by one and pipelined (the default), in turn 12 times each (the load of
 * the machine then falls on both alike); the median and the best of each. */
static void bench_pg_batch(void **state)
{
    enum { ROUNDS = 12, ROWS = 1000 };
    struct store *st = NULL;
    struct err serr = {0};
    assert_int_equal(store_open(dbpath, &st, &serr), 0);
    double ms[2][ROUNDS];
    for (int k = 0; k < 2 * ROUNDS; k++) {
        int on = k % 2;
        store__pg_set_pipelining(store__conn(st), on);
        int64_t t0 = when_mono_ns();
        assert_int_equal(store_begin(st, NULL), 0);
        for (int i = 0; i < ROWS; i++) {
            char id[32];
            snprintf(id, sizeof(id), "b%04d", i);
            struct ti_rec t;
            make_ti(&t, id, id, k + 1);
            assert_int_equal(store_put_ti(st, &t, NULL), 0);
        }
        assert_int_equal(store_commit(st, NULL), 0);
        ms[on][k / 2] = (double)(when_mono_ns() - t0) / 1e6;
    }
    for (int on = 0; on < 2; on++) {
        qsort(ms[on], ROUNDS, sizeof(double), cmp_double);
        print_message("PostgreSQL, one transaction of %d upserts, pipelining %s: median %.1f ms, "
                      "best %.1f ms (%d rounds)\n",
                      ROWS, on ? "on" : "off", ms[on][ROUNDS / 2], ms[on][0], ROUNDS);
    }
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest sqlite_only[] = {
        cmocka_unit_test_setup_teardown(start_on_a_bad_path_says_why, setup, teardown),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(group_commit_writes_20000_changes_in_few_commits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(coalesced_upserts_keep_last_content_and_first_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(stop_flushes_and_refuses_later_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_with_nothing_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(on_commit_runs_on_the_writer_thread_before_the_loop_hears,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(linger_gathers_trickling_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_during_linger_flushes_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(linger_zero_commits_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_commit_reports_error_and_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(every_durable_change_survives_kill_9, setup, teardown),
    };
    /* The throughput figures are a benchmark, not a test: only on request. */
    const struct CMUnitTest bench[] = {
        cmocka_unit_test_setup_teardown(bench_writer, setup, teardown),
    };
    const struct CMUnitTest bench_pg[] = {
        cmocka_unit_test_setup_teardown(bench_pg_batch, setup, teardown),
    };
    const char *b = getenv("BARAM_STORE_BENCH");
    if (b && *b)
        return testdb_pg() ? cmocka_run_group_tests(bench_pg, NULL, NULL)
                           : cmocka_run_group_tests(bench, NULL, NULL);
    return testdb_run_group(sqlite_only, sizeof sqlite_only / sizeof *sqlite_only, tests,
                            sizeof tests / sizeof *tests);
}
