/*
 * run_test.c - run_execute() end to end on real small DAGs (dag_load_mem),
 * real processes and a real SQLite store in a mkdtemp home; every test
 * reads the store back. Also run_task_test.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/diag.h"
#include "base/err.h"
#include "base/when.h"
#include "dag/dag.h"
#include "dag/params.h"
#include "sched/run.h"
#include "store/store.h"

#include "../tmphome.h"

/* The exec tests' HTTP server (python3 http.server); not every helper is used here. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "../exec/testserver.h"
#pragma GCC diagnostic pop

static int setup(void **state)
{
    (void)state;
    return tmphome_make("run");
}

static int teardown(void **state)
{
    (void)state;
    return tmphome_remove();
}

struct ran {
    struct dag *dag;
    struct run_result res;
    int rc;
    struct store *s;
};

static struct dag *load(const char *yaml)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/dag.yaml", home);
    struct diag d;
    diag_init(&d);
    struct dag *dag = dag_load_mem(yaml, strlen(yaml), path, &d);
    if (!dag)
        diag_print(&d, stderr, 0);
    diag_release(&d);
    assert_non_null(dag);
    return dag;
}

static bool gate_on_durable; /* run_opts.gate_on_durable for the next run_yaml_p */

static void run_yaml_p(struct ran *x, const char *yaml, int parallelism,
                       const struct params_override *params, size_t nparams)
{
    memset(x, 0, sizeof(*x));
    x->dag = load(yaml);
    struct run_opts o = {
        .dag = x->dag,
        .store_url = dbpath,
        .home = home,
        .params = params,
        .nparams = nparams,
        .logical_at_ms = 1764374400000, /* 2025-11-29 */
        .type = RUN_MANUAL,
        .parallelism = parallelism,
        .gate_on_durable = gate_on_durable,
    };
    struct err serr = {0};
    x->rc = run_execute(&o, &x->res, &serr);
    if (x->rc < 0)
        fprintf(stderr, "run_execute: %s\n", err_msg(&serr));
    assert_int_equal(x->rc, 0);
    assert_int_equal(store_open(dbpath, &x->s, &serr), 0);
}

static void run_yaml(struct ran *x, const char *yaml)
{
    run_yaml_p(x, yaml, 4, NULL, 0);
}

static void ran_free(struct ran *x)
{
    store_close(x->s);
    dag_free(x->dag);
}

static void get_ti(struct ran *x, const char *task, struct ti_rec *t)
{
    int rc = store_get_ti(x->s, x->res.run_id, task, t, NULL);
    if (rc != 0)
        fprintf(stderr, "no ti '%s'\n", task);
    assert_int_equal(rc, 0);
}

static enum ti_state ti_state_of(struct ran *x, const char *task)
{
    struct ti_rec t;
    get_ti(x, task, &t);
    enum ti_state st = t.state;
    ti_rec_release(&t);
    return st;
}

static void assert_state(struct ran *x, const char *task, enum ti_state want)
{
    enum ti_state st = ti_state_of(x, task);
    if (st != want)
        fprintf(stderr, "task '%s': %s, wanted %s\n", task, ti_state_name(st), ti_state_name(want));
    assert_int_equal(st, want);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *p = calloc(1, 1 << 20);
    size_t n = fread(p, 1, (1 << 20) - 1, f);
    p[n] = 0;
    fclose(f);
    return p;
}

/* The log of a try of inst, a task's name or a mapped instance's "<task>.<index>". */
static char *task_log(struct ran *x, const char *inst, int try)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/logs/%s/%s/%s.%d.log", home, x->dag->id, x->res.run_id, inst,
             try);
    return slurp(path);
}

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void success_chain_with_outputs_env_and_logs(void **state)
{
    struct ran x;
    run_yaml(&x, "dag: chain\n"
                 "params: {region: eu}\n"
                 "env: {GREETING: hi}\n"
                 "tasks:\n"
                 "  a:\n"
                 "    run: printf 'from-a' > $BARAM_OUTPUT; echo out-line; echo err-line >&2\n"
                 "  b:\n"
                 "    needs: [a]\n"
                 "    run: printf '%s|%s|%s|%s|%s|%s|%s|%s' \"$OUTPUT_A\" \"$BARAM_TRY\" "
                 "\"$BARAM_TASK\" \"$BARAM_DAG\" \"$BARAM_DS\" \"$PARAM_REGION\" \"$GREETING\" "
                 "\"$(pwd)\" > $BARAM_OUTPUT\n"
                 "  c:\n"
                 "    needs: [b]\n"
                 "    run: echo {{ outputs.a }}-{{ ds }}-{{ task }}-{{ try }}-{{ params.region }} "
                 "> $BARAM_OUTPUT\n");
    assert_int_equal(x.res.state, RUN_SUCCESS);
    assert_true(strncmp(x.res.run_id, "manual__", 8) == 0);
    struct ti_rec t;
    get_ti(&x, "a", &t);
    assert_int_equal(t.state, TI_SUCCESS);
    assert_int_equal(t.try_number, 1);
    assert_int_equal(t.exit_code, 0);
    assert_string_equal(t.output, "from-a");
    assert_true(t.started_at_ms > 0 && t.ended_at_ms >= t.started_at_ms);
    ti_rec_release(&t);
    get_ti(&x, "b", &t);
    char want[PATH_MAX * 2];
    snprintf(want, sizeof(want), "from-a|1|b|chain|2025-11-29|eu|hi|%s", home);
    assert_string_equal(t.output, want);
    ti_rec_release(&t);
    get_ti(&x, "c", &t);
    assert_string_equal(t.output, "from-a-2025-11-29-c-1-eu\n");
    ti_rec_release(&t);

    char *log = task_log(&x, "a", 1);
    assert_non_null(log);
    assert_non_null(strstr(log, "out-line"));
    assert_non_null(strstr(log, "err-line"));
    free(log);

    struct run_rec rr;
    assert_int_equal(store_get_run(x.s, x.res.run_id, &rr, NULL), 0);
    assert_int_equal(rr.state, RUN_SUCCESS);
    assert_string_equal(rr.dag_hash, x.dag->hash);
    assert_true(rr.ended_at_ms >= rr.started_at_ms);
    char *src = NULL;
    size_t len = 0;
    assert_int_equal(store_get_dag_version(x.s, rr.dag_hash, &src, &len, NULL), 0);
    assert_int_equal(len, x.dag->source_len);
    free(src);
    run_rec_release(&rr);

    struct try_rec *tries;
    size_t n;
    assert_int_equal(store_list_tries(x.s, x.res.run_id, "b", &tries, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_int_equal(tries[0].state, TI_SUCCESS);
    assert_int_equal(tries[0].exit_code, 0);
    assert_true(tries[0].pid > 0);
    store_free_tries(tries, n);
    ran_free(&x);

    /* No fd left behind by a run (the first loop made libuv's process-wide signal pipe). */
    int fds0 = count_fds();
    run_yaml(&x, "dag: again\ntasks:\n  a: {run: 'echo hi > $BARAM_OUTPUT'}\n  b: {needs: [a], "
                 "run: 'true'}\n");
    assert_int_equal(x.res.state, RUN_SUCCESS);
    ran_free(&x);
    assert_int_equal(count_fds(), fds0);
}

/* With gate_on_durable, a downstream starts only once its upstream's final state is durable:
 * the downstream itself reads the store (a second connection) and must find it. */
static void gated_downstream_sees_its_upstream_durable(void **state)
{
#ifndef BARAM_FAULTS
    skip(); /* needs the slow-commit fault point */
#endif
    /* The task runs in the DAG's folder, the home here: a script there reads the store. */
    char script[PATH_MAX + 16];
    snprintf(script, sizeof(script), "%s/check.py", home);
    FILE *f = fopen(script, "w");
    assert_non_null(f);
    fprintf(f, "import sqlite3\n"
               "c = sqlite3.connect('baram.db')\n"
               "row = c.execute(\"select state from task_instances where task_id = 'a'\")"
               ".fetchone()\n"
               "print(row[0] if row else 'none')\n");
    fclose(f);
    struct ran x;
    gate_on_durable = true;
    setenv("BARAM_FAULT", "FP_STORE_SLOW_COMMIT", 1); /* each commit takes 300 ms */
    run_yaml(&x, "dag: gate\n"
                 "tasks:\n"
                 "  a: {run: 'true'}\n"
                 "  b: {needs: [a], run: 'python3 check.py > \"$BARAM_OUTPUT\"'}\n");
    gate_on_durable = false;
    unsetenv("BARAM_FAULT");
    assert_int_equal(x.res.state, RUN_SUCCESS);
    struct ti_rec t;
    get_ti(&x, "b", &t);
    assert_non_null(t.output);
    assert_string_equal(t.output, "success\n");
    ti_rec_release(&t);
    ran_free(&x);
}

static void failure_marks_downstream_upstream_failed(void **state)
{
    struct ran x;
    run_yaml(&x, "dag: fail\n"
                 "tasks:\n"
                 "  a:\n"
                 "    run: exit 3\n"
                 "  b:\n"
                 "    needs: [a]\n"
                 "    run: touch should-not-exist\n");
    assert_int_equal(x.res.state, RUN_FAILED);
    struct ti_rec t;
    get_ti(&x, "a", &t);
    assert_int_equal(t.state, TI_FAILED);
    assert_int_equal(t.exit_code, 3);
    assert_non_null(t.message);
    ti_rec_release(&t);
    assert_state(&x, "b", TI_UPSTREAM_FAILED);
    char p[PATH_MAX + 32];
    snprintf(p, sizeof(p), "%s/should-not-exist", home);
    assert_int_equal(access(p, F_OK), -1);
    ran_free(&x);
}

/* A task's first log file is made ahead while its last upstream runs; one that then never
 * runs (upstream failed, skipped) must leave no file behind, and one that runs writes into
 * the prepared <task>.1.log. */
static void prepared_log_folders_only_for_tasks_that_ran(void **state)
{
    struct ran x;
    run_yaml(&x, "dag: prep\n"
                 "tasks:\n"
                 "  a: {run: 'sleep 0.2; echo a-ran'}\n"
                 "  b: {needs: [a], run: 'echo b-ran'}\n"
                 "  bad: {needs: [b], run: 'sleep 0.2; exit 3'}\n"
                 "  never: {needs: [bad], run: 'echo never'}\n"
                 "  skip: {needs: [b], run: 'sleep 0.2; exit 99'}\n"
                 "  skipped: {needs: [skip], run: 'echo skipped'}\n");
    assert_int_equal(x.res.state, RUN_FAILED);
    assert_state(&x, "never", TI_UPSTREAM_FAILED);
    assert_state(&x, "skipped", TI_SKIPPED);
    char *log = task_log(&x, "b", 1);
    assert_non_null(log);
    assert_string_equal(log, "b-ran\n");
    free(log);
    char path[PATH_MAX * 2];
    struct stat st;
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/logs/prep/%s/%s.1.log", home, x.res.run_id,
                 i ? "skipped" : "never");
        assert_int_equal(stat(path, &st), -1);
        assert_int_equal(errno, ENOENT);
    }
    ran_free(&x);
}

static void retries_until_success_with_baram_try(void **state)
{
    struct ran x;
    run_yaml(&x, "dag: retry\n"
                 "tasks:\n"
                 "  flaky:\n"
                 "    retries: 3\n"
                 "    retry_delay: 50ms\n"
                 "    retry_backoff: 2\n"
                 "    run: echo try=$BARAM_TRY; test $BARAM_TRY -ge 3\n");
    assert_int_equal(x.res.state, RUN_SUCCESS);
    struct ti_rec t;
    get_ti(&x, "flaky", &t);
    assert_int_equal(t.state, TI_SUCCESS);
    assert_int_equal(t.try_number, 3);
    assert_int_equal(t.max_tries, 4);
    ti_rec_release(&t);
    struct try_rec *tries;
    size_t n;
    assert_int_equal(store_list_tries(x.s, x.res.run_id, "flaky", &tries, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_int_equal(tries[0].state, TI_FAILED);
    assert_int_equal(tries[1].state, TI_FAILED);
    assert_int_equal(tries[2].state, TI_SUCCESS);
    /* delays: 50ms after try 1, 100ms after try 2 */
    assert_true(tries[1].started_at_ms - tries[0].ended_at_ms >= 45);
    assert_true(tries[2].started_at_ms - tries[1].ended_at_ms >= 95);
    store_free_tries(tries, n);
    for (int i = 1; i <= 3; i++) {
        char *log = task_log(&x, "flaky", i);
        char want[16];
        snprintf(want, sizeof(want), "try=%d", i);
        assert_non_null(log);
        assert_non_null(strstr(log, want));
        free(log);
    }
    ran_free(&x);
}

static void retries_exhausted_fail(void **state)
{
    struct ran x;
    run_yaml(&x, "dag: retry2\n"
                 "tasks:\n"
                 "  bad:\n"
                 "    retries: 1\n"
                 "    run: exit 1\n");
    assert_int_equal(x.res.state, RUN_FAILED);
    struct ti_rec t;
    get_ti(&x, "bad", &t);
    assert_int_equal(t.state, TI_FAILED);
    assert_int_equal(t.try_number, 2);
    ti_rec_release(&t);
    ran_free(&x);
}

static void skip_99_propagates(void **state)
{
    struct ran x;
    run_yaml(&x, "dag: skip\n"
                 "tasks:\n"
                 "  branch:\n"
                 "    run: exit 99\n"
                 "  b:\n"
                 "    needs: [branch]\n"
                 "    run: 'true'\n"
                 "  c:\n"
                 "    needs: [b]\n"
                 "    run: 'true'\n"
                 "  d:\n"
                 "    needs: [c]\n"
                 "    trigger: all_done\n"
                 "    run: 'true'\n");
    assert_int_equal(x.res.state, RUN_SUCCESS);
    assert_state(&x, "branch", TI_SKIPPED);
    assert_state(&x, "b", TI_SKIPPED);
    assert_state(&x, "c", TI_SKIPPED);
    assert_state(&x, "d", TI_SUCCESS);
    ran_free(&x);
}

static void every_trigger_rule(void **state)
{
    struct ran x;
    run_yaml(&x, "dag: rules\n"
                 "tasks:\n"
                 "  ok: {run: 'true'}\n"
                 "  bad: {run: 'exit 1'}\n"
                 "  skip: {run: 'exit 99'}\n"
                 "  as_mixed: {needs: [ok, bad], run: 'true'}\n"
                 "  as_ok: {needs: [ok], run: 'true'}\n"
                 "  af_bad: {needs: [bad], trigger: all_failed, run: 'true'}\n"
                 "  af_mixed: {needs: [ok, bad], trigger: all_failed, run: 'true'}\n"
                 "  ad: {needs: [ok, bad, skip], trigger: all_done, run: 'true'}\n"
                 "  os_mixed: {needs: [ok, bad], trigger: one_success, run: 'true'}\n"
                 "  os_none: {needs: [bad, skip], trigger: one_success, run: 'true'}\n"
                 "  os_skip: {needs: [skip], trigger: one_success, run: 'true'}\n"
                 "  of_mixed: {needs: [ok, bad], trigger: one_failed, run: 'true'}\n"
                 "  of_none: {needs: [ok, skip], trigger: one_failed, run: 'true'}\n"
                 "  nf_ok: {needs: [ok, skip], trigger: none_failed, run: 'true'}\n"
                 "  nf_bad: {needs: [ok, bad], trigger: none_failed, run: 'true'}\n"
                 "  uf_chain: {needs: [as_mixed], trigger: all_failed, run: 'true'}\n");
    assert_int_equal(x.res.state, RUN_FAILED);
    assert_state(&x, "as_mixed", TI_UPSTREAM_FAILED);
    assert_state(&x, "as_ok", TI_SUCCESS);
    assert_state(&x, "af_bad", TI_SUCCESS);
    assert_state(&x, "af_mixed", TI_SKIPPED);
    assert_state(&x, "ad", TI_SUCCESS);
    assert_state(&x, "os_mixed", TI_SUCCESS);
    assert_state(&x, "os_none", TI_UPSTREAM_FAILED);
    assert_state(&x, "os_skip", TI_SKIPPED);
    assert_state(&x, "of_mixed", TI_SUCCESS);
    assert_state(&x, "of_none", TI_SKIPPED);
    assert_state(&x, "nf_ok", TI_SUCCESS);
    assert_state(&x, "nf_bad", TI_UPSTREAM_FAILED);
    assert_state(&x, "uf_chain", TI_SUCCESS);
    ran_free(&x);
}

static void one_success_fires_before_slow_upstream_ends(void **state)
{
    struct ran x;
    run_yaml(&x, "dag: early\n"
                 "tasks:\n"
                 "  fast: {run: 'true'}\n"
                 "  slow: {run: 'sleep 1'}\n"
                 "  first: {needs: [fast, slow], trigger: one_success, run: 'true'}\n");
    assert_int_equal(x.res.state, RUN_SUCCESS);
    struct ti_rec f, s;
    get_ti(&x, "first", &f);
    get_ti(&x, "slow", &s);
    assert_int_equal(f.state, TI_SUCCESS);
    assert_true(f.ended_at_ms < s.ended_at_ms);
    ti_rec_release(&f);
    ti_rec_release(&s);
    ran_free(&x);
}

static void for_each_literal_list_and_outputs_array(void **state)
{
    struct ran x;
    run_yaml(&x, "dag: mapl\n"
                 "tasks:\n"
                 "  m:\n"
                 "    for_each: [a, 'b c', d]\n"
                 "    run: printf '%s' {{ item }} | tr a-z A-Z > $BARAM_OUTPUT\n"
                 "  after:\n"
                 "    needs: [m]\n"
                 "    run: printf '%s' \"$OUTPUT_M\" > $BARAM_OUTPUT\n");
    assert_int_equal(x.res.state, RUN_SUCCESS);
    struct ti_rec t;
    get_ti(&x, "m[1]", &t);
    assert_int_equal(t.map_index, 1);
    assert_string_equal(t.task, "m");
    assert_string_equal(t.output, "B C");
    ti_rec_release(&t);
    get_ti(&x, "after", &t);
    assert_string_equal(t.output, "[\"A\",\"B C\",\"D\"]");
    ti_rec_release(&t);
    char *log = task_log(&x, "m.2", 1);
    assert_non_null(log);
    free(log);
    ran_free(&x);
}

static void for_each_over_output_json_lines_and_empty(void **state)
{
    struct ran x;
    run_yaml(&x, "dag: mapo\n"
                 "tasks:\n"
                 "  src_json:\n"
                 "    run: \"printf '[1, \\\"x y\\\", {\\\"k\\\": 2}]' > $BARAM_OUTPUT\"\n"
                 "  src_lines:\n"
                 "    run: printf 'l1\\n\\nl2\\n' > $BARAM_OUTPUT\n"
                 "  src_empty:\n"
                 "    run: 'true'\n"
                 "  mj:\n"
                 "    needs: [src_json]\n"
                 "    for_each: '{{ outputs.src_json }}'\n"
                 "    run: printf '%s' {{ item }} > $BARAM_OUTPUT\n"
                 "  ml:\n"
                 "    needs: [src_lines]\n"
                 "    for_each: '{{ outputs.src_lines }}'\n"
                 "    run: printf '%s' {{ item }} > $BARAM_OUTPUT\n"
                 "  me:\n"
                 "    needs: [src_empty]\n"
                 "    for_each: '{{ outputs.src_empty }}'\n"
                 "    run: 'false'\n"
                 "  after_empty:\n"
                 "    needs: [me]\n"
                 "    trigger: all_done\n"
                 "    run: printf '%s' \"$OUTPUT_ME\" > $BARAM_OUTPUT\n"
                 "  join:\n"
                 "    needs: [mj, ml]\n"
                 "    run: printf '%s %s' \"$OUTPUT_MJ\" \"$OUTPUT_ML\" > $BARAM_OUTPUT\n");
    assert_int_equal(x.res.state, RUN_SUCCESS);
    struct ti_rec t;
    get_ti(&x, "mj[2]", &t);
    assert_string_equal(t.output, "{\"k\":2}");
    ti_rec_release(&t);
    get_ti(&x, "join", &t);
    assert_string_equal(t.output, "[\"1\",\"x y\",\"{\\\"k\\\":2}\"] [\"l1\",\"l2\"]");
    ti_rec_release(&t);
    assert_state(&x, "me", TI_SKIPPED);
    get_ti(&x, "after_empty", &t);
    assert_string_equal(t.output, "[]");
    ti_rec_release(&t);
    assert_int_equal(store_get_ti(x.s, x.res.run_id, "mj[3]", &t, NULL), -ENOENT);
    ran_free(&x);
}

static int64_t max_concurrency(const char *path)
{
    /* lines "S <ns>" / "E <ns>": sweep */
    FILE *f = fopen(path, "re");
    assert_non_null(f);
    struct ev {
        long long t;
        int d;
    } ev[256];
    int n = 0;
    char kind;
    long long t;
    while (n < 256 && fscanf(f, " %c %lld", &kind, &t) == 2)
        ev[n++] = (struct ev){t, kind == 'S' ? 1 : -1};
    fclose(f);
    for (int i = 1; i < n; i++)
        for (int j = i;
             j > 0 && (ev[j].t < ev[j - 1].t || (ev[j].t == ev[j - 1].t && ev[j].d < ev[j - 1].d));
             j--) {
            struct ev tmp = ev[j];
            ev[j] = ev[j - 1];
            ev[j - 1] = tmp;
        }
    int cur = 0, best = 0;
    for (int i = 0; i < n; i++) {
        cur += ev[i].d;
        if (cur > best)
            best = cur;
    }
    return best;
}

static void parallelism_is_respected(void **state)
{
    struct ran x;
    char yaml[4096];
    int off = snprintf(yaml, sizeof(yaml), "dag: par\ntasks:\n");
    for (int i = 0; i < 8; i++)
        off += snprintf(yaml + off, sizeof(yaml) - (size_t)off,
                        "  t%d: {run: 'echo S $(date +%%s%%N) >> times; sleep 0.15; "
                        "echo E $(date +%%s%%N) >> times'}\n",
                        i);
    run_yaml_p(&x, yaml, 3, NULL, 0);
    assert_int_equal(x.res.state, RUN_SUCCESS);
    char p[PATH_MAX + 16];
    snprintf(p, sizeof(p), "%s/times", home);
    int64_t m = max_concurrency(p);
    assert_true(m <= 3);
    assert_true(m >= 2);
    ran_free(&x);
}

static void priority_orders_ready_tasks(void **state)
{
    struct ran x;
    run_yaml_p(&x,
               "dag: prio\n"
               "tasks:\n"
               "  low: {priority: 1, run: 'echo low >> order'}\n"
               "  high: {priority: 9, run: 'echo high >> order'}\n"
               "  mid: {priority: 5, run: 'echo mid >> order'}\n"
               "  mid2: {priority: 5, run: 'echo mid2 >> order'}\n",
               1, NULL, 0);
    assert_int_equal(x.res.state, RUN_SUCCESS);
    char p[PATH_MAX + 16];
    snprintf(p, sizeof(p), "%s/order", home);
    char *s = slurp(p);
    assert_string_equal(s, "high\nmid\nmid2\nlow\n");
    free(s);
    ran_free(&x);
}

static void timeout_fails_the_try(void **state)
{
    struct ran x;
    int64_t t0 = when_mono_ms();
    run_yaml(&x, "dag: tmo\n"
                 "tasks:\n"
                 "  slow:\n"
                 "    timeout: 300ms\n"
                 "    run: sleep 5\n");
    assert_true(when_mono_ms() - t0 < 3000);
    assert_int_equal(x.res.state, RUN_FAILED);
    struct try_rec *tries;
    size_t n;
    assert_int_equal(store_list_tries(x.s, x.res.run_id, "slow", &tries, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_true(tries[0].timed_out);
    assert_int_equal(tries[0].state, TI_FAILED);
    store_free_tries(tries, n);
    struct ti_rec t;
    get_ti(&x, "slow", &t);
    assert_non_null(t.message);
    assert_non_null(strstr(t.message, "timed out"));
    ti_rec_release(&t);
    ran_free(&x);
}

static void oversized_output_fails(void **state)
{
    struct ran x;
    run_yaml(&x, "dag: big\n"
                 "tasks:\n"
                 "  big:\n"
                 "    run: head -c 70000 /dev/zero | tr '\\0' x > $BARAM_OUTPUT\n");
    assert_int_equal(x.res.state, RUN_FAILED);
    struct ti_rec t;
    get_ti(&x, "big", &t);
    assert_int_equal(t.state, TI_FAILED);
    assert_string_equal(t.message, "output is 70000 bytes, over the 64 KiB limit");
    assert_null(t.output);
    ti_rec_release(&t);
    char *log = task_log(&x, "big", 1);
    assert_non_null(strstr(log, "output is 70000 bytes, over the 64 KiB limit"));
    free(log);
    ran_free(&x);
}

static void hooks_run_after_the_run(void **state)
{
    struct ran x;
    run_yaml(&x, "dag: hooks\n"
                 "on_success: {run: 'echo ok $BARAM_RUN_STATE $BARAM_DAG {{ ds }} > hook_ok'}\n"
                 "on_failure: {run: 'echo bad > hook_bad'}\n"
                 "tasks:\n"
                 "  a: {run: 'true'}\n");
    assert_int_equal(x.res.state, RUN_SUCCESS);
    char p[PATH_MAX + 16];
    snprintf(p, sizeof(p), "%s/hook_ok", home);
    char *s = slurp(p);
    assert_non_null(s);
    assert_string_equal(s, "ok success hooks 2025-11-29\n");
    free(s);
    snprintf(p, sizeof(p), "%s/hook_bad", home);
    assert_int_equal(access(p, F_OK), -1);
    ran_free(&x);

    run_yaml(&x, "dag: hooks2\n"
                 "on_failure: {run: 'echo $BARAM_RUN_STATE > hook_bad; echo to-log'}\n"
                 "tasks:\n"
                 "  a: {run: 'false'}\n");
    assert_int_equal(x.res.state, RUN_FAILED);
    s = slurp(p);
    assert_non_null(s);
    assert_string_equal(s, "failed\n");
    free(s);
    char lp[PATH_MAX * 2];
    snprintf(lp, sizeof(lp), "%s/logs/hooks2/%s/on_failure.log", home, x.res.run_id);
    s = slurp(lp);
    assert_non_null(s);
    assert_string_equal(s, "to-log\n");
    free(s);
    ran_free(&x);
}

static void params_override_default(void **state)
{
    struct ran x;
    struct params_override p = {"region", "us; rm -rf /", 0};
    run_yaml_p(&x,
               "dag: params\n"
               "params: {region: eu, other: o}\n"
               "tasks:\n"
               "  a: {run: 'printf \"%s|%s|%s\" {{ params.region }} \"$PARAM_REGION\" "
               "{{ params.other }} > $BARAM_OUTPUT'}\n",
               2, &p, 1);
    assert_int_equal(x.res.state, RUN_SUCCESS);
    struct ti_rec t;
    get_ti(&x, "a", &t);
    assert_string_equal(t.output, "us; rm -rf /|us; rm -rf /|o");
    ti_rec_release(&t);
    struct run_rec rr;
    assert_int_equal(store_get_run(x.s, x.res.run_id, &rr, NULL), 0);
    assert_non_null(rr.conf);
    assert_non_null(strstr(rr.conf, "region"));
    run_rec_release(&rr);
    ran_free(&x);
}

/* Bad params past what one struct err holds: the message keeps whole lines, one per bad
 * param, and counts the rest, never a line cut in the middle. */
static void many_bad_params_keep_whole_lines(void **state)
{
    enum { N = 600 };
    struct params_override p[N];
    char names[N][32];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "nosuchparam%04d", i);
        p[i] = (struct params_override){names[i], "v", 0};
    }
    struct dag *dag = load("dag: manybad\ntasks:\n  a: {run: 'true'}\n");
    struct run_opts o = {.dag = dag,
                         .store_url = dbpath,
                         .home = home,
                         .params = p,
                         .nparams = N,
                         .type = RUN_MANUAL,
                         .parallelism = 1};
    struct run_result res;
    struct err e = {0};
    assert_int_equal(run_execute(&o, &res, &e), -EINVAL);
    assert_int_equal(e.code, -EINVAL);
    assert_true(strlen(e.msg) < sizeof e.msg - 1); /* not cut at the end of the buffer */
    int shown = 0;
    const char *line = e.msg, *nl;
    while ((nl = strchr(line, '\n')) != NULL) {
        char want[PATH_MAX + 96];
        int n = snprintf(want, sizeof want, "%s/dag.yaml: error: unknown param 'nosuchparam%04d'",
                         home, shown);
        assert_int_equal(nl - line, n);
        assert_memory_equal(line, want, (size_t)n);
        shown++;
        line = nl + 1;
    }
    assert_true(shown > 0 && shown < N);
    char last[64];
    snprintf(last, sizeof last, "(%d more not shown)", N - shown);
    assert_string_equal(line, last);
    dag_free(dag);
}

static void unresolvable_template_fails_the_try(void **state)
{
    struct ran x;
    run_yaml(&x, "dag: unres\n"
                 "tasks:\n"
                 "  a: {run: 'sleep 0.3'}\n"
                 "  fast: {run: 'true'}\n"
                 "  b: {needs: [a, fast], trigger: one_success, run: 'echo {{ outputs.a }}'}\n");
    assert_int_equal(x.res.state, RUN_FAILED);
    struct ti_rec t;
    get_ti(&x, "b", &t);
    assert_int_equal(t.state, TI_FAILED);
    assert_non_null(t.message);
    assert_non_null(strstr(t.message, "outputs.a"));
    ti_rec_release(&t);
    char *log = task_log(&x, "b", 1);
    assert_non_null(log);
    assert_non_null(strstr(log, "outputs.a"));
    free(log);
    ran_free(&x);
}

/* A value that cannot go into a command (a NUL byte) fails the try with a message naming it. */
static void nul_in_a_value_names_the_reference(void **state)
{
    struct ran x;
    run_yaml(&x, "dag: nul\n"
                 "tasks:\n"
                 "  gen: {run: 'printf \"a\\\\0b\" > $BARAM_OUTPUT'}\n"
                 "  use: {needs: [gen], run: 'echo {{ outputs.gen }}'}\n");
    assert_int_equal(x.res.state, RUN_FAILED);
    assert_int_equal(ti_state_of(&x, "gen"), TI_SUCCESS);
    struct ti_rec t;
    get_ti(&x, "use", &t);
    assert_int_equal(t.state, TI_FAILED);
    assert_non_null(t.message);
    assert_non_null(strstr(t.message, "'{{ outputs.gen }}' holds a NUL byte"));
    ti_rec_release(&t);
    ran_free(&x);
}

static void run_ids_are_unique(void **state)
{
    struct ran x, y;
    run_yaml(&x, "dag: ids\ntasks:\n  a: {run: 'true'}\n");
    run_yaml(&y, "dag: ids\ntasks:\n  a: {run: 'true'}\n");
    assert_string_not_equal(x.res.run_id, y.res.run_id);
    ran_free(&x);
    ran_free(&y);
}

/* A run that is claimed but cannot start (here: its log folder cannot be made) must not stay
 * 'queued' in the store forever. */
static void run_that_cannot_start_is_recorded_failed(void **state)
{
    char logs[PATH_MAX + 8];
    snprintf(logs, sizeof(logs), "%s/logs", home);
    FILE *f = fopen(logs, "w"); /* a file where the logs folder should be */
    assert_non_null(f);
    fclose(f);
    struct dag *dag = load("dag: nostart\ntasks:\n  a: {run: 'true'}\n");
    struct run_opts o = {.dag = dag,
                         .store_url = dbpath,
                         .home = home,
                         .logical_at_ms = 0,
                         .type = RUN_MANUAL,
                         .parallelism = 1};
    struct run_result res;
    struct err serr = {0};
    assert_true(run_execute(&o, &res, &serr) < 0);
    assert_true(serr.code < 0);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "cannot create '%s/nostart/manual__", logs);
    assert_int_equal(strncmp(serr.msg, want, strlen(want)), 0);
    struct store *st = NULL;
    assert_int_equal(store_open(dbpath, &st, &serr), 0);
    struct run_rec rec;
    assert_int_equal(store_get_run(st, res.run_id, &rec, NULL), 0);
    assert_int_equal(rec.state, RUN_FAILED);
    assert_true(rec.ended_at_ms > 0);
    run_rec_release(&rec);
    store_close(st);
    dag_free(dag);
}

/* A try sees the BARAM_* variables of its own try, never baram's configuration ones, which may
 * hold secrets (BARAM_PASSWORD, a database URL with a password). */
static void tries_do_not_inherit_baram_settings(void **state)
{
    setenv("BARAM_PASSWORD", "hunter2", 1);
    setenv("BARAM_DB", "postgresql://u:pw@db/baram", 1);
    setenv("BARAM_TEST_OTHER", "visible?", 1);
    setenv("NOT_BARAM", "kept", 1);
    struct ran x;
    run_yaml(&x, "dag: envs\ntasks:\n  a: {run: 'env | sort'}\n");
    unsetenv("BARAM_PASSWORD");
    unsetenv("BARAM_DB");
    unsetenv("BARAM_TEST_OTHER");
    unsetenv("NOT_BARAM");
    assert_int_equal(x.res.state, RUN_SUCCESS);
    char *log = task_log(&x, "a", 1);
    assert_non_null(log);
    assert_null(strstr(log, "hunter2"));
    assert_null(strstr(log, "pw@db"));
    assert_null(strstr(log, "BARAM_TEST_OTHER"));
    assert_non_null(strstr(log, "NOT_BARAM=kept"));
    assert_non_null(strstr(log, "BARAM_DAG=envs"));
    assert_non_null(strstr(log, "BARAM_TRY=1"));
    free(log);
    ran_free(&x);
}

static void task_test_runs_one_task(void **state)
{
    struct dag *dag = load("dag: tt\ntasks:\n  a: {run: 'exit 7'}\n  b: {needs: [a], run: "
                           "'test -z \"$OUTPUT_A\" && exit 99'}\n");
    struct run_test_result res;
    struct err err = {0};
    assert_int_equal(run_task_test(dag, 0, NULL, 0, 0, 0, &res, &err), 0);
    assert_false(res.ok);
    assert_int_equal(res.exit_code, 7);
    assert_string_equal(res.message, "exit code 7");
    run_test_result_release(&res);
    assert_int_equal(run_task_test(dag, 1, NULL, 0, 0, 0, &res, &err), 0);
    assert_true(res.ok && res.skipped);
    assert_int_equal(res.exit_code, 99);
    run_test_result_release(&res);
    dag_free(dag);
    /* A try that times out fails, even when it answers SIGTERM with exit 0, and says so. */
    dag = load("dag: tt\ntasks:\n  slow: {timeout: 300ms, run: 'trap \"exit 0\" TERM; sleep 5 & "
               "wait'}\n");
    assert_int_equal(run_task_test(dag, 0, NULL, 0, 0, 0, &res, &err), 0);
    assert_false(res.ok);
    assert_string_equal(res.message, "timed out after 300ms");
    run_test_result_release(&res);
    dag_free(dag);
}

/* A task that cannot be tested says why, in the words `baram tasks test` prints. */
static void task_test_that_cannot_start_says_why(void **state)
{
    struct dag *dag = load("dag: ttno\ntasks:\n  a: {run: 'true'}\n"
                           "  m: {needs: [a], for_each: '{{ outputs.a }}', run: 'true'}\n");
    struct run_test_result res;
    struct err err = {0};
    assert_int_equal(run_task_test(dag, 2, NULL, 0, 0, 0, &res, &err), -EINVAL);
    assert_int_equal(err.code, -EINVAL);
    assert_string_equal(err_msg(&err), "no such task");
    err = (struct err){0};
    assert_int_equal(run_task_test(dag, 1, NULL, 0, 0, 0, &res, &err), -EINVAL);
    assert_string_equal(err_msg(&err),
                        "cannot test a mapped task whose items come from upstream outputs");
    err = (struct err){0};
    struct params_override p = {"zone", "eu", 0};
    assert_int_equal(run_task_test(dag, 0, &p, 1, 0, 0, &res, &err), -EINVAL);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/dag.yaml: error: unknown param 'zone'", home);
    assert_string_equal(err_msg(&err), want);
    assert_int_equal(run_task_test(dag, 2, NULL, 0, 0, 0, &res, NULL), -EINVAL); /* code only */
    dag_free(dag);
}

/* Whether pid is gone or only a zombie waiting for its reaper (/proc/PID/stat). */
static bool pid_dead(int pid)
{
    char p[64], buf[512];
    snprintf(p, sizeof(p), "/proc/%d/stat", pid);
    FILE *f = fopen(p, "r");
    if (!f)
        return true;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *rp = strrchr(buf, ')');
    return rp && (rp[2] == 'Z' || rp[2] == 'X');
}

/* The task runs in its own session: Ctrl-C at the terminal reaches baram alone, which must
 * kill the task's whole process group rather than die and leave it running. */
static void task_test_interrupt_kills_the_task(void **state)
{
    struct dag *dag = load("dag: tti\ntasks:\n"
                           "  a: {run: 'sleep 30 & echo $! > tti.pid; kill -INT $PPID; wait'}\n");
    struct run_test_result res;
    struct err err = {0};
    /* As at a terminal, whatever started the tests: SIGINT not ignored. */
    struct sigaction dfl = {.sa_handler = SIG_DFL}, old;
    sigemptyset(&dfl.sa_mask);
    assert_int_equal(sigaction(SIGINT, &dfl, &old), 0);
    int64_t t0 = when_mono_ms();
    int rc = run_task_test(dag, 0, NULL, 0, 0, 0, &res, &err);
    int64_t took = when_mono_ms() - t0;
    assert_int_equal(sigaction(SIGINT, &old, NULL), 0);
    assert_int_equal(rc, 0);
    assert_true(took < 5000);
    assert_false(res.ok);
    assert_int_equal(res.exit_code, -1);
    assert_int_equal(strncmp(res.message, "killed by signal 15", 19), 0);
    run_test_result_release(&res);
    char p[PATH_MAX + 16];
    snprintf(p, sizeof(p), "%s/tti.pid", home);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    int pid = 0;
    assert_int_equal(fscanf(f, "%d", &pid), 1);
    fclose(f);
    assert_true(pid > 0);
    assert_true(pid_dead(pid)); /* the task's background child went with it */
    dag_free(dag);
}

static void wait_file_and_its_timeout(void **state)
{
    struct ran x;
    run_yaml(&x, "dag: waits\n"
                 "tasks:\n"
                 "  maker: {run: 'sleep 0.2; touch flag'}\n"
                 "  waiter:\n"
                 "    wait: {file: flag, every: 50ms, timeout: 5s}\n"
                 "  after: {needs: [waiter], run: 'test -e flag'}\n"
                 "  never:\n"
                 "    wait: {file: '{{ ds }}.missing', every: 50ms, timeout: 300ms}\n");
    assert_int_equal(x.res.state, RUN_FAILED);
    assert_state(&x, "waiter", TI_SUCCESS);
    assert_state(&x, "after", TI_SUCCESS);
    struct ti_rec t;
    get_ti(&x, "never", &t);
    assert_int_equal(t.state, TI_FAILED);
    assert_non_null(t.message);
    assert_non_null(strstr(t.message, "2025-11-29.missing"));
    ti_rec_release(&t);
    ran_free(&x);
}

static void http_task_output_and_failure(void **state)
{
    struct testserver srv;
    if (testserver_start(&srv) < 0)
        skip();
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "dag: http\n"
             "tasks:\n"
             "  get: {http: {url: '%s/ok'}}\n"
             "  echo: {needs: [get], http: {method: POST, url: '%s/echo?ds={{ ds }}', "
             "body: '{{ outputs.get }}'}}\n"
             "  use: {needs: [get, echo], run: 'printf %%s \"$OUTPUT_GET\" > $BARAM_OUTPUT'}\n"
             "  bad: {http: {url: '%s/status/503'}}\n",
             srv.base, srv.base, srv.base);
    struct ran x;
    run_yaml(&x, yaml);
    testserver_stop(&srv);
    assert_int_equal(x.res.state, RUN_FAILED);
    struct ti_rec t;
    get_ti(&x, "get", &t);
    assert_int_equal(t.state, TI_SUCCESS);
    assert_string_equal(t.output, "hello");
    ti_rec_release(&t);
    get_ti(&x, "echo", &t);
    assert_int_equal(t.state, TI_SUCCESS);
    assert_non_null(strstr(t.output, "\"hello\""));
    assert_non_null(strstr(t.output, "2025-11-29"));
    ti_rec_release(&t);
    get_ti(&x, "use", &t);
    assert_string_equal(t.output, "hello");
    ti_rec_release(&t);
    get_ti(&x, "bad", &t);
    assert_int_equal(t.state, TI_FAILED);
    assert_non_null(strstr(t.message, "503"));
    ti_rec_release(&t);
    char *log = task_log(&x, "bad", 1);
    assert_non_null(log);
    assert_non_null(strstr(log, "503"));
    free(log);
    ran_free(&x);
}

struct probe {
    int checked;
    enum ti_state slow_state;
    size_t slow_tries;
    enum ti_state try_state;
    const char *run_id_seen;
};

/* On the loop thread: when 'probe' has finished, read what the store says about 'slow'. */
static void probe_progress(void *ud, const struct run_progress *p)
{
    struct probe *pr = ud;
    if (strcmp(p->task_id, "probe") != 0 || p->state != TI_SUCCESS)
        return;
    struct store *s;
    struct err serr = {0};
    assert_int_equal(store_open(dbpath, &s, &serr), 0);
    struct run_rec *runs;
    size_t n;
    assert_int_equal(store_list_runs(s, "running", -1, 0, &runs, &n, NULL, NULL), 0);
    assert_int_equal(n, 1);
    assert_int_equal(runs[0].state, RUN_RUNNING);
    struct ti_rec t;
    assert_int_equal(store_get_ti(s, runs[0].run_id, "slow", &t, NULL), 0);
    pr->slow_state = t.state;
    ti_rec_release(&t);
    struct try_rec *tries;
    assert_int_equal(store_list_tries(s, runs[0].run_id, "slow", &tries, &pr->slow_tries, NULL), 0);
    if (pr->slow_tries > 0)
        pr->try_state = tries[0].state;
    store_free_tries(tries, pr->slow_tries);
    store_free_runs(runs, n);
    store_close(s);
    pr->checked++;
}

static void running_state_is_recorded_while_running(void **state)
{
    struct dag *dag = load("dag: running\ntasks:\n  slow: {run: 'sleep 1'}\n"
                           "  probe: {run: 'sleep 0.4'}\n");
    struct probe pr = {0};
    struct run_opts o = {.dag = dag,
                         .store_url = dbpath,
                         .home = home,
                         .logical_at_ms = 0,
                         .type = RUN_MANUAL,
                         .parallelism = 4,
                         .progress = probe_progress,
                         .progress_ud = &pr};
    struct run_result res;
    assert_int_equal(run_execute(&o, &res, NULL), 0);
    assert_int_equal(res.state, RUN_SUCCESS);
    assert_int_equal(pr.checked, 1);
    assert_int_equal(pr.slow_state, TI_RUNNING);
    assert_int_equal(pr.slow_tries, 1);
    assert_int_equal(pr.try_state, TI_RUNNING);
    dag_free(dag);
}

static void sigint_cancels_the_run(void **state)
{
    struct dag *dag = load("dag: cancel\ntasks:\n"
                           "  long: {run: 'sleep 30'}\n"
                           "  killer: {run: 'sleep 0.3; kill -INT $PPID; sleep 30'}\n"
                           "  after: {needs: [long], run: 'true'}\n");
    struct run_opts o = {.dag = dag,
                         .store_url = dbpath,
                         .home = home,
                         .type = RUN_MANUAL,
                         .parallelism = 4,
                         .handle_signals = true};
    struct run_result res;
    int64_t t0 = when_mono_ms();
    assert_int_equal(run_execute(&o, &res, NULL), 0);
    int64_t took = when_mono_ms() - t0;
    assert_int_equal(res.state, RUN_CANCELLED);
    assert_true(took < 5000); /* every group died on SIGTERM: no grace wait */
    struct store *s;
    struct err serr = {0};
    assert_int_equal(store_open(dbpath, &s, &serr), 0);
    const char *killed[] = {"long", "killer"};
    for (int i = 0; i < 2; i++) {
        struct ti_rec t;
        assert_int_equal(store_get_ti(s, res.run_id, killed[i], &t, NULL), 0);
        assert_int_equal(t.state, TI_FAILED);
        assert_string_equal(t.message, "cancelled");
        ti_rec_release(&t);
    }
    struct ti_rec t;
    assert_int_equal(store_get_ti(s, res.run_id, "after", &t, NULL), 0);
    assert_int_equal(t.state, TI_NONE);
    ti_rec_release(&t);
    struct run_rec rr;
    assert_int_equal(store_get_run(s, res.run_id, &rr, NULL), 0);
    assert_int_equal(rr.state, RUN_CANCELLED);
    run_rec_release(&rr);
    store_close(s);
    dag_free(dag);
}

/* A hangup (terminal closed) cancels the run like SIGINT, instead of killing baram and leaving
 * the tries running; under nohup (SIGHUP ignored) the run goes on. */
static void sighup_cancels_the_run_unless_ignored(void **state)
{
    struct dag *dag = load("dag: hup\ntasks:\n"
                           "  long: {run: 'sleep 30'}\n"
                           "  killer: {run: 'sleep 0.3; kill -HUP $PPID; sleep 30'}\n");
    struct run_opts o = {.dag = dag,
                         .store_url = dbpath,
                         .home = home,
                         .type = RUN_MANUAL,
                         .parallelism = 4,
                         .handle_signals = true};
    struct run_result res;
    int64_t t0 = when_mono_ms();
    assert_int_equal(run_execute(&o, &res, NULL), 0);
    assert_int_equal(res.state, RUN_CANCELLED);
    assert_true(when_mono_ms() - t0 < 5000);
    dag_free(dag);

    dag = load("dag: nohup\ntasks:\n  a: {run: 'kill -HUP $PPID; sleep 0.2'}\n");
    o.dag = dag;
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigemptyset(&ign.sa_mask);
    assert_int_equal(sigaction(SIGHUP, &ign, &old), 0);
    int rc = run_execute(&o, &res, NULL);
    assert_int_equal(sigaction(SIGHUP, &old, NULL), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(res.state, RUN_SUCCESS);
    dag_free(dag);
}

/* A cancel leaves no instance 'scheduled' (waiting for a slot) or 'up_for_retry' (waiting for
 * its retry) in the finished run. */
static void cancel_settles_waiting_instances(void **state)
{
    struct dag *dag = load("dag: cancelwait\ntasks:\n"
                           "  hog: {pool: one, run: 'sleep 30'}\n"
                           "  queued: {pool: one, run: 'true'}\n"
                           "  flaky: {run: 'exit 3', retries: 5, retry_delay: 30s}\n"
                           "  killer: {run: 'sleep 0.5; kill -INT $PPID; sleep 30'}\n");
    struct run_pool pools[] = {{"one", 1}};
    struct run_opts o = {.dag = dag,
                         .store_url = dbpath,
                         .home = home,
                         .type = RUN_MANUAL,
                         .parallelism = 4,
                         .handle_signals = true,
                         .pools = pools,
                         .npools = 1};
    struct run_result res;
    assert_int_equal(run_execute(&o, &res, NULL), 0);
    assert_int_equal(res.state, RUN_CANCELLED);
    struct store *s;
    struct err serr = {0};
    assert_int_equal(store_open(dbpath, &s, &serr), 0);
    struct ti_rec t;
    assert_int_equal(store_get_ti(s, res.run_id, "queued", &t, NULL), 0);
    assert_int_equal(t.state, TI_NONE);
    assert_int_equal(t.try_number, 0);
    ti_rec_release(&t);
    assert_int_equal(store_get_ti(s, res.run_id, "flaky", &t, NULL), 0);
    assert_int_equal(t.state, TI_FAILED);
    assert_int_equal(t.try_number, 1);
    assert_string_equal(t.message, "cancelled");
    ti_rec_release(&t);
    store_close(s);
    dag_free(dag);
}

static void pool_slots_limit_their_tasks(void **state)
{
    char yaml[4096];
    int off = snprintf(yaml, sizeof(yaml), "dag: pools\ntasks:\n");
    for (int i = 0; i < 4; i++)
        off += snprintf(yaml + off, sizeof(yaml) - (size_t)off,
                        "  db%d: {pool: db, run: 'echo S $(date +%%s%%N) >> dbtimes; sleep 0.1; "
                        "echo E $(date +%%s%%N) >> dbtimes'}\n",
                        i);
    struct dag *dag = load(yaml);
    struct run_pool pools[] = {{"db", 1}};
    struct run_opts o = {.dag = dag,
                         .store_url = dbpath,
                         .home = home,
                         .type = RUN_MANUAL,
                         .parallelism = 4,
                         .pools = pools,
                         .npools = 1};
    struct run_result res;
    assert_int_equal(run_execute(&o, &res, NULL), 0);
    assert_int_equal(res.state, RUN_SUCCESS);
    char p[PATH_MAX + 16];
    snprintf(p, sizeof(p), "%s/dbtimes", home);
    assert_int_equal(max_concurrency(p), 1);
    dag_free(dag);
}

static void store_failure_ends_the_run_with_an_error(void **state)
{
    struct ran x;
    run_yaml(&x, "dag: warm\ntasks:\n  a: {run: 'true'}\n"); /* the database exists */
    ran_free(&x);
    struct dag *dag = load("dag: dbfail\ntasks:\n  a: {run: 'sleep 0.2'}\n"
                           "  b: {needs: [a], run: 'true'}\n");
    struct run_opts o = {
        .dag = dag, .store_url = dbpath, .home = home, .type = RUN_MANUAL, .parallelism = 2};
    struct run_result res;
    setenv("BARAM_FAULT", "FP_STORE_COMMIT", 1);
    int64_t t0 = when_mono_ms();
    struct err serr = {0};
    int rc = run_execute(&o, &res, &serr);
    unsetenv("BARAM_FAULT");
    assert_int_equal(rc, ERR_DB);
    assert_int_equal(serr.code, ERR_DB);
    assert_true(when_mono_ms() - t0 < 10000);
    assert_non_null(strstr(serr.msg, "FP_STORE_COMMIT"));
    dag_free(dag);
}

static void spawn_failure_fails_the_try(void **state)
{
    struct dag *dag = load("dag: spfail\ntasks:\n  a: {run: 'true', retries: 1}\n");
    struct run_opts o = {
        .dag = dag, .store_url = dbpath, .home = home, .type = RUN_MANUAL, .parallelism = 2};
    struct run_result res;
    setenv("BARAM_FAULT", "FP_SPAWN", 1);
    int rc = run_execute(&o, &res, NULL);
    unsetenv("BARAM_FAULT");
    assert_int_equal(rc, 0);
    assert_int_equal(res.state, RUN_FAILED);
    struct store *s;
    struct err serr = {0};
    assert_int_equal(store_open(dbpath, &s, &serr), 0);
    struct ti_rec t;
    assert_int_equal(store_get_ti(s, res.run_id, "a", &t, NULL), 0);
    assert_int_equal(t.state, TI_FAILED);
    assert_int_equal(t.try_number, 2);
    assert_non_null(strstr(t.message, "cannot start the process"));
    ti_rec_release(&t);
    store_close(s);
    dag_free(dag);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(success_chain_with_outputs_env_and_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(gated_downstream_sees_its_upstream_durable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(failure_marks_downstream_upstream_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(prepared_log_folders_only_for_tasks_that_ran, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(retries_until_success_with_baram_try, setup, teardown),
        cmocka_unit_test_setup_teardown(retries_exhausted_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(skip_99_propagates, setup, teardown),
        cmocka_unit_test_setup_teardown(every_trigger_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(one_success_fires_before_slow_upstream_ends, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(for_each_literal_list_and_outputs_array, setup, teardown),
        cmocka_unit_test_setup_teardown(for_each_over_output_json_lines_and_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(parallelism_is_respected, setup, teardown),
        cmocka_unit_test_setup_teardown(pool_slots_limit_their_tasks, setup, teardown),
        cmocka_unit_test_setup_teardown(priority_orders_ready_tasks, setup, teardown),
        cmocka_unit_test_setup_teardown(timeout_fails_the_try, setup, teardown),
        cmocka_unit_test_setup_teardown(oversized_output_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(hooks_run_after_the_run, setup, teardown),
        cmocka_unit_test_setup_teardown(params_override_default, setup, teardown),
        cmocka_unit_test_setup_teardown(many_bad_params_keep_whole_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(unresolvable_template_fails_the_try, setup, teardown),
        cmocka_unit_test_setup_teardown(nul_in_a_value_names_the_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(run_ids_are_unique, setup, teardown),
        cmocka_unit_test_setup_teardown(run_that_cannot_start_is_recorded_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(tries_do_not_inherit_baram_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(task_test_runs_one_task, setup, teardown),
        cmocka_unit_test_setup_teardown(task_test_that_cannot_start_says_why, setup, teardown),
        cmocka_unit_test_setup_teardown(task_test_interrupt_kills_the_task, setup, teardown),
        cmocka_unit_test_setup_teardown(wait_file_and_its_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(store_failure_ends_the_run_with_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(spawn_failure_fails_the_try, setup, teardown),
        cmocka_unit_test_setup_teardown(sigint_cancels_the_run, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_settles_waiting_instances, setup, teardown),
        cmocka_unit_test_setup_teardown(sighup_cancels_the_run_unless_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(running_state_is_recorded_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(http_task_output_and_failure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
