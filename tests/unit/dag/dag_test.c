/*
 * dag_test.c - loading real DAG file text into a checked struct dag: every
 * field and its default, the graph arrays, diagnostics with positions, file
 * loading (hash, dir, source), and 100,000-task DAGs built in memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "base/buf.h"
#include "base/diag.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "dag/dag.h"
#include "dag/template.h"

static const char spec_example[] =
    "dag: nightly_etl\n"
    "description: Load yesterday's orders into the warehouse\n"
    "schedule: \"0 3 * * *\"\n"
    "start: 2026-01-01\n"
    "end: 2026-12-31\n"
    "catchup: false\n"
    "max_active_runs: 1\n"
    "params: {region: eu, limit: 100, token: }\n"
    "env: {WAREHOUSE: /data/wh}\n"
    "defaults:\n"
    "  retries: 2\n"
    "  retry_delay: 30s\n"
    "  retry_backoff: 2\n"
    "  max_retry_delay: 10m\n"
    "  timeout: 1h\n"
    "  pool: default\n"
    "  priority: 1\n"
    "on_failure: {run: ./page-oncall.sh}\n"
    "tasks:\n"
    "  extract:\n"
    "    run: ./extract.sh {{ ds }} {{ params.region }}\n"
    "  transform:\n"
    "    needs: [extract]\n"
    "    run: python3 transform.py\n"
    "    retries: 3\n"
    "  load:\n"
    "    needs: [transform]\n"
    "    http: {method: post, url: \"http://127.0.0.1:9000/load?ds={{ ds }}\", body: "
    "'{\"ds\":\"{{ ds }}\"}',\n"
    "           expect: [200, 201], timeout: 30s, circuit_breaker: {failures: 5, reset: 60s}}\n"
    "  ready:\n"
    "    wait: {file: \"/data/in/{{ ds }}.done\", every: 30s, timeout: 6h}\n"
    "  shards:\n"
    "    needs: [extract]\n"
    "    for_each: \"{{ outputs.extract }}\"\n"
    "    run: ./load-shard.sh {{ item }}\n"
    "  report:\n"
    "    needs: [load, shards]\n"
    "    trigger: all_done\n"
    "    pool: reports\n"
    "    queue: gpu-1\n"
    "    priority: -2\n"
    "    run: echo \"finished {{ ds }}\"\n";

static struct dag *load(const char *text, struct diag *d)
{
    return dag_load_mem(text, strlen(text), "/nonexistent/dags/test.yaml", d);
}

static uint32_t idx(const struct dag *dag, const char *name)
{
    uint32_t i = UINT32_MAX;
    assert_true(dag_find(dag, name, &i));
    return i;
}

static void spec_example_loads_with_every_field(void **state)
{
    struct diag d;
    diag_init(&d);
    struct dag *dag = load(spec_example, &d);
    diag_print(&d, stderr, 1);
    assert_non_null(dag);
    assert_int_equal(d.n, 0);

    assert_string_equal(dag->id, "nightly_etl");
    assert_string_equal(dag->description, "Load yesterday's orders into the warehouse");
    assert_string_equal(dag->path, "/nonexistent/dags/test.yaml");
    assert_string_equal(dag->dir, "/nonexistent/dags");
    assert_string_equal(dag->schedule, "0 3 * * *");
    assert_true(dag->cron.hours & (1u << 3));
    int64_t start, end;
    assert_int_equal(when_parse("2026-01-01", &start), 0);
    assert_int_equal(when_parse("2026-12-31", &end), 0);
    assert_int_equal(dag->start_at_ms, start);
    assert_int_equal(dag->end_at_ms, end);
    assert_false(dag->catchup);
    assert_int_equal(dag->max_active_runs, 1);

    assert_int_equal(dag->nparams, 3);
    assert_string_equal(dag->params[0].name, "region");
    assert_string_equal(dag->params[0].value, "eu");
    assert_string_equal(dag->params[1].name, "limit");
    assert_string_equal(dag->params[1].value, "100");
    assert_string_equal(dag->params[2].name, "token");
    assert_null(dag->params[2].value);
    assert_int_equal(dag_param_index(dag, "limit"), 1);
    assert_int_equal(dag_param_index(dag, "nope"), -1);
    assert_int_equal(dag->nenv, 1);
    assert_string_equal(dag->env[0].name, "WAREHOUSE");
    assert_string_equal(dag->env[0].value, "/data/wh");
    assert_null(dag->on_success.run);
    assert_non_null(dag->on_failure.run);
    assert_string_equal(template_source(dag->on_failure.run), "./page-oncall.sh");

    assert_int_equal(dag->ntasks, 6);
    const struct dag_task *t = &dag->tasks[idx(dag, "extract")];
    assert_int_equal(idx(dag, "extract"), 0);
    assert_int_equal(t->kind, TASK_RUN);
    assert_string_equal(template_source(t->run), "./extract.sh {{ ds }} {{ params.region }}");
    assert_int_equal(template_nrefs(t->run), 2);
    assert_int_equal(t->retries, 2);
    assert_int_equal(t->retry_delay_ms, 30000);
    assert_true(t->retry_backoff == 2.0);
    assert_int_equal(t->max_retry_delay_ms, 600000);
    assert_int_equal(t->timeout_ms, 3600000);
    assert_string_equal(t->pool, "default");
    assert_string_equal(t->queue, "default");
    assert_int_equal(t->priority, 1);
    assert_int_equal(t->trigger, TRIGGER_ALL_SUCCESS);
    assert_false(t->mapped);
    assert_int_equal(t->line, 20);
    assert_int_equal(t->col, 3);

    t = &dag->tasks[idx(dag, "transform")];
    assert_int_equal(t->retries, 3);
    assert_int_equal(t->line, 22);

    t = &dag->tasks[idx(dag, "load")];
    assert_int_equal(t->kind, TASK_HTTP);
    assert_string_equal(t->http.method, "POST");
    assert_string_equal(template_source(t->http.url), "http://127.0.0.1:9000/load?ds={{ ds }}");
    assert_string_equal(template_source(t->http.body), "{\"ds\":\"{{ ds }}\"}");
    assert_int_equal(t->http.nexpect, 2);
    assert_int_equal(t->http.expect[0], 200);
    assert_int_equal(t->http.expect[1], 201);
    assert_int_equal(t->http.timeout_ms, 30000);
    assert_int_equal(t->http.cb_failures, 5);
    assert_int_equal(t->http.cb_reset_ms, 60000);

    t = &dag->tasks[idx(dag, "ready")];
    assert_int_equal(t->kind, TASK_WAIT);
    assert_string_equal(template_source(t->wait.file), "/data/in/{{ ds }}.done");
    assert_null(t->wait.http_url);
    assert_int_equal(t->wait.every_ms, 30000);
    assert_int_equal(t->wait.timeout_ms, 6 * 3600 * 1000);

    t = &dag->tasks[idx(dag, "shards")];
    assert_true(t->mapped);
    assert_string_equal(template_source(t->for_each), "{{ outputs.extract }}");
    assert_int_equal(t->nitems, 0);

    t = &dag->tasks[idx(dag, "report")];
    assert_int_equal(t->trigger, TRIGGER_ALL_DONE);
    assert_string_equal(t->pool, "reports");
    assert_string_equal(t->queue, "gpu-1");
    assert_int_equal(t->priority, -2);

    /* Graph: extract -> transform -> load -> report, extract -> shards -> report; ready alone. */
    const struct graph *g = &dag->graph;
    assert_int_equal(g->n, 6);
    assert_int_equal(g->nedges, 5);
    uint32_t rep = idx(dag, "report");
    assert_int_equal(graph_nup(g, rep), 2);
    assert_int_equal(g->up[g->up_start[rep]], idx(dag, "load"));
    assert_int_equal(g->up[g->up_start[rep] + 1], idx(dag, "shards"));
    assert_int_equal(graph_ndown(g, 0), 2);
    assert_int_equal(dag->topo[0], 0);
    assert_int_equal(dag->topo[1], idx(dag, "ready"));
    assert_int_equal(dag->nlevels, 4);
    assert_int_equal(dag->level[rep], 3);
    assert_int_equal(dag->level[idx(dag, "shards")], 1);
    assert_int_equal(dag->ncomponents, 2);
    assert_int_equal(dag->component[rep], 0);
    assert_int_equal(dag->component[idx(dag, "ready")], 1);

    /* The version: SHA-256 of the bytes, and the bytes themselves. */
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[65];
    crypto_hash_sha256(h, (const unsigned char *)spec_example, strlen(spec_example));
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    assert_string_equal(dag->hash, hex);
    assert_int_equal(dag->source_len, strlen(spec_example));
    assert_memory_equal(dag->source, spec_example, dag->source_len);

    dag_free(dag);
    diag_release(&d);
}

static void defaults_apply_when_keys_are_absent(void **state)
{
    static const char text[] = "dag: d\n"
                               "tasks:\n"
                               "  a: {run: \"true\"}\n"
                               "  h: {http: {url: \"http://x/\"}, needs: a}\n"
                               "  w: {wait: {http: \"http://x/ready\"}}\n"
                               "  m: {for_each: [x, 'y z', 3], run: 'echo {{ item }}'}\n"
                               "  e: {for_each: [], run: 'echo {{ item }}'}\n";
    struct diag d;
    diag_init(&d);
    struct dag *dag = load(text, &d);
    diag_print(&d, stderr, 1);
    assert_non_null(dag);
    assert_null(dag->description);
    assert_null(dag->schedule);
    assert_int_equal(dag->start_at_ms, -1);
    assert_int_equal(dag->end_at_ms, -1);
    assert_false(dag->catchup);
    assert_int_equal(dag->max_active_runs, 16);
    assert_int_equal(dag->nparams, 0);
    assert_int_equal(dag->nenv, 0);
    assert_null(dag->on_success.run);
    assert_null(dag->on_failure.run);
    for (uint32_t i = 0; i < dag->ntasks; i++) {
        const struct dag_task *t = &dag->tasks[i];
        assert_int_equal(t->retries, 0);
        assert_int_equal(t->retry_delay_ms, 0);
        assert_true(t->retry_backoff == 1.0);
        assert_int_equal(t->max_retry_delay_ms, 0);
        assert_int_equal(t->timeout_ms, 0);
        assert_string_equal(t->pool, "default");
        assert_int_equal(t->priority, 1);
        assert_int_equal(t->trigger, TRIGGER_ALL_SUCCESS);
    }
    const struct dag_task *h = &dag->tasks[idx(dag, "h")];
    assert_int_equal(h->kind, TASK_HTTP);
    assert_string_equal(h->http.method, "GET");
    assert_int_equal(h->http.timeout_ms, 30000);
    assert_int_equal(h->http.nexpect, 0);
    assert_int_equal(h->http.cb_failures, 0);
    assert_null(h->http.body);
    assert_int_equal(graph_nup(&dag->graph, idx(dag, "h")), 1);
    const struct dag_task *w = &dag->tasks[idx(dag, "w")];
    assert_int_equal(w->kind, TASK_WAIT);
    assert_null(w->wait.file);
    assert_string_equal(template_source(w->wait.http_url), "http://x/ready");
    assert_int_equal(w->wait.every_ms, 30000);
    assert_int_equal(w->wait.timeout_ms, 24 * 3600 * 1000LL);
    const struct dag_task *m = &dag->tasks[idx(dag, "m")];
    assert_true(m->mapped);
    assert_null(m->for_each);
    assert_int_equal(m->nitems, 3);
    assert_string_equal(m->items[1], "y z");
    assert_string_equal(m->items[2], "3");
    const struct dag_task *e = &dag->tasks[idx(dag, "e")];
    assert_true(e->mapped);
    assert_int_equal(e->nitems, 0);
    dag_free(dag);
    diag_release(&d);
}

static void task_values_win_over_defaults(void **state)
{
    static const char text[] = "dag: d\n"
                               "defaults: {retries: 4, pool: etl, trigger: all_done, timeout: 90}\n"
                               "tasks:\n"
                               "  a:\n"
                               "    run: \"true\"\n"
                               "    retries: 0\n"
                               "    trigger: one_success\n"
                               "  b:\n"
                               "    run: \"true\"\n";
    struct diag d;
    diag_init(&d);
    struct dag *dag = load(text, &d);
    assert_non_null(dag);
    assert_int_equal(dag->tasks[0].retries, 0);
    assert_int_equal(dag->tasks[0].trigger, TRIGGER_ONE_SUCCESS);
    assert_string_equal(dag->tasks[0].pool, "etl");
    assert_int_equal(dag->tasks[0].timeout_ms, 90000);
    assert_int_equal(dag->tasks[1].retries, 4);
    assert_int_equal(dag->tasks[1].trigger, TRIGGER_ALL_DONE);
    dag_free(dag);
    diag_release(&d);
}

static void one_pass_reports_every_problem_with_positions(void **state)
{
    static const char text[] = "dag: d\n"
                               "tasks:\n"
                               "  extract:\n"
                               "    run: echo {{ params.x }}\n"
                               "    retires: 1\n"
                               "  load:\n"
                               "    needs: [transfrom, extract]\n"
                               "    run: 'echo {{ nope }}'\n";
    struct diag d;
    diag_init(&d);
    assert_null(load(text, &d));
    assert_int_equal(d.errors, 4);
    assert_int_equal(d.v[0].line, 4);
    assert_int_equal(d.v[0].col, 15);
    assert_string_equal(d.v[0].msg, "unknown template name 'params.x'");
    assert_int_equal(d.v[1].line, 5);
    assert_int_equal(d.v[1].col, 5);
    assert_string_equal(d.v[1].msg, "unknown key 'retires'");
    assert_string_equal(d.v[1].hint, "did you mean 'retries'?");
    assert_int_equal(d.v[2].line, 7);
    assert_int_equal(d.v[2].col, 13);
    assert_string_equal(d.v[2].msg, "task 'load' needs unknown task 'transfrom'");
    assert_null(d.v[2].hint);
    /* In a quoted scalar the column counts the opening quote. */
    assert_int_equal(d.v[3].line, 8);
    assert_int_equal(d.v[3].col, 16);
    char *s = diag_format(&d.v[1]);
    assert_string_equal(s, "/nonexistent/dags/test.yaml:5:5: error: unknown key 'retires' "
                           "(did you mean 'retries'?)");
    free(s);
    diag_release(&d);
}

static void bad_queue_names_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\"a b\"", "\"../x\"", "\"\"", "[gpu]",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "dag: d\ntasks:\n  a:\n    run: 'true'\n    queue: %s\n",
                 bad[i]);
        struct diag d;
        diag_init(&d);
        assert_null(load(text, &d));
        assert_int_equal(d.errors, 1);
        assert_int_equal(d.v[0].line, 5);
        diag_release(&d);
    }
}

/* conc: run_timeout, max_active_tasks, depends_on_past (DAG default, task overrides),
 * max_active; their defaults; bad values each one error on its line. */
/* vars: a run loads only the keys its templates read, each once, hooks and env included;
 * a DAG that reads none has none. */
static void var_keys_are_the_keys_read_once(void **state)
{
    (void)state;
    static const char text[] = "dag: d\n"
                               "on_failure: {run: 'echo {{ var.dag.hook }}'}\n"
                               "deadline: {after: 1h, run: 'echo {{ var.late }}'}\n"
                               "tasks:\n"
                               "  a: {run: 'echo {{ var.tok }} {{ var.tok }} {{ ds }}'}\n"
                               "  b:\n"
                               "    run: 'echo {{ var.tok }}'\n"
                               "    env: {A: '{{ var.env.k }}'}\n"
                               "    on_retry: {run: 'echo {{ var.task.hook }}'}\n";
    struct diag d;
    diag_init(&d);
    struct dag *dag = load(text, &d);
    assert_non_null(dag);
    assert_true(dag->uses_vars);
    static const char *want[] = {"dag.hook", "env.k", "late", "task.hook", "tok"};
    assert_int_equal(dag->nvar_keys, 5);
    for (size_t w = 0; w < 5; w++) {
        size_t seen = 0;
        for (size_t i = 0; i < dag->nvar_keys; i++)
            seen += strcmp(dag->var_keys[i], want[w]) == 0;
        assert_int_equal(seen, 1);
    }
    dag_free(dag);
    dag = load("dag: n\ntasks: {a: {run: 'echo {{ ds }}'}}\n", &d);
    assert_non_null(dag);
    assert_false(dag->uses_vars);
    assert_int_equal(dag->nvar_keys, 0);
    dag_free(dag);
    diag_release(&d);
}

static void conc_keys_load_with_defaults_and_overrides(void **state)
{
    (void)state;
    static const char text[] = "dag: d\n"
                               "run_timeout: 1h30m\n"
                               "max_active_tasks: 4\n"
                               "depends_on_past: true\n"
                               "tasks:\n"
                               "  a: {run: 'true', max_active: 1}\n"
                               "  b: {run: 'true', depends_on_past: false}\n";
    struct diag d;
    diag_init(&d);
    struct dag *dag = load(text, &d);
    assert_non_null(dag);
    assert_int_equal(dag->run_timeout_ms, 90 * 60 * 1000);
    assert_int_equal(dag->max_active_tasks, 4);
    assert_true(dag->depends_on_past && dag->uses_past);
    assert_int_equal(dag->tasks[0].max_active, 1);
    assert_true(dag->tasks[0].depends_on_past);
    assert_int_equal(dag->tasks[1].max_active, 0);
    assert_false(dag->tasks[1].depends_on_past);
    dag_free(dag);
    diag_release(&d);

    diag_init(&d);
    dag = load("dag: d\ntasks:\n  a: {run: 'true'}\n", &d);
    assert_non_null(dag);
    assert_int_equal(dag->run_timeout_ms, 0);
    assert_int_equal(dag->max_active_tasks, 0);
    assert_false(dag->uses_past || dag->tasks[0].depends_on_past);
    assert_int_equal(dag->tasks[0].max_active, 0);
    dag_free(dag);
    diag_release(&d);

    static const char *const bad[] = {
        "run_timeout: soon\n",         "run_timeout: 0s\n",     "run_timeout: [1h]\n",
        "max_active_tasks: 0\n",       "max_active_tasks: x\n", "depends_on_past: maybe\n",
        "depends_on_past: \"true\"\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char t[256];
        snprintf(t, sizeof t, "dag: d\n%stasks:\n  a: {run: 'true'}\n", bad[i]);
        diag_init(&d);
        assert_null(load(t, &d));
        assert_int_equal(d.errors, 1);
        assert_int_equal(d.v[0].line, 2);
        diag_release(&d);
    }
    static const char *const bad_task[] = {"max_active: 0", "max_active: -2", "depends_on_past: 1",
                                           "max_activ: 1"};
    for (size_t i = 0; i < sizeof bad_task / sizeof bad_task[0]; i++) {
        char t[256];
        snprintf(t, sizeof t, "dag: d\ntasks:\n  a:\n    run: 'true'\n    %s\n", bad_task[i]);
        diag_init(&d);
        assert_null(load(t, &d));
        assert_int_equal(d.errors, 1);
        assert_int_equal(d.v[0].line, 5);
        diag_release(&d);
    }
}

static void aliases_share_a_node(void **state)
{
    static const char text[] = "dag: d\n"
                               "tasks:\n"
                               "  a: &t {run: \"true\", retries: 2}\n"
                               "  b: *t\n";
    struct diag d;
    diag_init(&d);
    struct dag *dag = load(text, &d);
    assert_non_null(dag);
    assert_int_equal(dag->ntasks, 2);
    assert_int_equal(dag->tasks[1].retries, 2);
    dag_free(dag);
    diag_release(&d);
}

static void load_file_reads_hashes_and_finds_its_folder(void **state)
{
    char dir[] = "/tmp/dag_test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/one.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(spec_example, f);
    fclose(f);
    struct diag d;
    diag_init(&d);
    struct dag *dag = dag_load_file(path, &d);
    assert_non_null(dag);
    char *real = realpath(dir, NULL);
    assert_string_equal(dag->dir, real);
    free(real);
    assert_string_equal(dag->path, path);
    struct dag *same = load(spec_example, &d);
    assert_string_equal(dag->hash, same->hash);
    dag_free(same);
    dag_free(dag);

    snprintf(path, sizeof path, "%s/missing.yaml", dir);
    assert_null(dag_load_file(path, &d));
    assert_int_equal(d.errors, 1);
    assert_int_equal(d.v[0].line, 0);
    assert_string_equal(d.v[0].msg, "cannot open file: No such file or directory");
    diag_release(&d);

    snprintf(path, sizeof path, "%s/one.yaml", dir);
    unlink(path);
    rmdir(dir);
}

static void relative_path_gets_an_absolute_dir(void **state)
{
    struct diag d;
    diag_init(&d);
    struct dag *dag = dag_load_mem("dag: r\ntasks: {a: {run: x}}\n", 27, "r.yaml", &d);
    assert_non_null(dag);
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    char *real = realpath(cwd, NULL);
    assert_string_equal(dag->dir, real);
    free(real);
    dag_free(dag);
    dag = dag_load_mem("dag: r\ntasks: {a: {run: x}}\n", 27, "no/such/dir/r.yaml", &d);
    assert_non_null(dag);
    assert_true(dag->dir[0] == '/');
    size_t n = strlen(dag->dir);
    assert_true(n > 11 && strcmp(dag->dir + n - 11, "no/such/dir") == 0);
    dag_free(dag);
    diag_release(&d);
}

/* Instance 0 of mapped task 'x' logs to folder 'x.0': a task named 'x.0' would share it. */
static void task_named_like_a_log_folder_or_file_is_refused(void **state)
{
    struct diag d;
    diag_init(&d);
    struct dag *dag = load("dag: clash\ntasks:\n"
                           "  x: {for_each: [a, b], run: 'true'}\n"
                           "  x.0: {run: 'true'}\n",
                           &d);
    assert_null(dag);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.v[0].line, 4);
    assert_non_null(strstr(d.v[0].msg, "log name of mapped task 'x'"));
    diag_release(&d);
    /* The hooks log to HOME/logs/<dag>/<run>/on_<outcome>.log and a task to
     * <task>.<try>.log beside it: no task name takes a hook's file any more. */
    diag_init(&d);
    dag = load("dag: hooks\non_failure: {run: 'true'}\ntasks:\n"
               "  on_failure.log: {run: 'false'}\n"
               "  on_success: {run: 'true'}\n",
               &d);
    assert_non_null(dag);
    assert_int_equal(d.n, 0);
    dag_free(dag);
    diag_release(&d);
    /* Other dotted names stay fine: an unmapped 'y', or a number in another form. */
    diag_init(&d);
    dag = load("dag: noclash\ntasks:\n"
               "  x: {for_each: [a], run: 'true'}\n"
               "  y: {run: 'true'}\n"
               "  y.0: {run: 'true'}\n"
               "  x.01: {run: 'true'}\n"
               "  x.a: {run: 'true'}\n",
               &d);
    assert_non_null(dag);
    assert_int_equal(d.n, 0);
    dag_free(dag);
    diag_release(&d);
}

static void trigger_rules_round_trip(void **state)
{
    for (int i = 0; i < TRIGGER_RULE_COUNT; i++) {
        enum trigger_rule r;
        assert_int_equal(trigger_rule_parse(trigger_rule_name((enum trigger_rule)i), &r), 0);
        assert_int_equal(r, i);
    }
    enum trigger_rule r;
    assert_int_equal(trigger_rule_parse("al_done", &r), -EINVAL);
    assert_string_equal(trigger_rule_name(TRIGGER_NONE_FAILED), "none_failed");
}

/* A chain t0 <- t1 <- ... ; every task reads its direct upstream's output, and every 1000th
 * task also reads t0's, far upstream. */
static char *big_chain(uint32_t n, bool close_cycle)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    int r = buf_adds(&b, "dag: big\ntasks:\n");
    for (uint32_t i = 0; i < n && r == 0; i++) {
        r |= buf_addf(&b, "  t%u:\n", i);
        if (i > 0)
            r |= buf_addf(&b, "    needs: [t%u]\n    run: echo {{ outputs.t%u }}%s\n", i - 1, i - 1,
                          i % 1000 == 0 ? " {{ outputs.t0 }}" : "");
        else if (close_cycle)
            r |= buf_addf(&b, "    needs: t%u\n    run: echo first\n", n - 1);
        else
            r |= buf_adds(&b, "    run: echo first\n");
    }
    assert_int_equal(r, 0);
    return buf_detach(&b, NULL);
}

static void hundred_thousand_task_chain_validates(void **state)
{
    enum { N = 100000 };
    char *text = big_chain(N, false);
    struct diag d;
    diag_init(&d);
    int64_t t0 = when_mono_ns();
    struct dag *dag = dag_load_mem(text, strlen(text), "big.yaml", &d);
    int64_t t1 = when_mono_ns();
    print_message("100,000-task chain (%zu bytes) loaded in %.1f ms\n", strlen(text),
                  (double)(t1 - t0) / 1e6);
    diag_print(&d, stderr, 1);
    assert_non_null(dag);
    assert_int_equal(dag->ntasks, N);
    assert_int_equal(dag->graph.nedges, N - 1);
    assert_int_equal(dag->nlevels, N);
    assert_int_equal(dag->ncomponents, 1);
    assert_int_equal(dag->topo[N - 1], N - 1);
    assert_int_equal(dag->level[N - 1], N - 1);
    assert_int_equal(idx(dag, "t99999"), N - 1);
    dag_free(dag);
    free(text);

    /* The same chain closed into a cycle: one error, at the first task of the cycle. */
    text = big_chain(N, true);
    t0 = when_mono_ns();
    assert_null(dag_load_mem(text, strlen(text), "big.yaml", &d));
    t1 = when_mono_ns();
    print_message("100,000-task cycle rejected in %.1f ms\n", (double)(t1 - t0) / 1e6);
    assert_int_equal(d.errors, 1);
    assert_int_equal(d.v[0].line, 3);
    assert_int_equal(d.v[0].col, 3);
    assert_memory_equal(d.v[0].msg, "cycle: t0 -> t1 -> t2 -> ", 25);
    size_t ml = strlen(d.v[0].msg);
    assert_string_equal(d.v[0].msg + ml - 12, "t99999 -> t0");
    assert_non_null(strstr(d.v[0].msg, "t9 -> ... (99981 more) ... -> t99991 -> "));
    diag_release(&d);
    free(text);
}

static void hundred_thousand_task_wide_dag_validates(void **state)
{
    enum { N = 100000 };
    struct buf b = BUF_INIT(BUF_NO_MAX);
    int r = buf_adds(&b, "dag: wide\ntasks:\n");
    for (uint32_t i = 0; i < N; i++)
        r |= buf_addf(&b, "  w%u: {run: \"true\"}\n", i);
    r |= buf_adds(&b, "  sink:\n    needs:\n");
    for (uint32_t i = 0; i < N; i++)
        r |= buf_addf(&b, "      - w%u\n", i);
    r |= buf_adds(&b, "    run: echo {{ outputs.w5 }} {{ outputs.w99999 }}\n");
    assert_int_equal(r, 0);
    struct diag d;
    diag_init(&d);
    int64_t t0 = when_mono_ns();
    struct dag *dag = dag_load_mem(b.data, b.len, "wide.yaml", &d);
    int64_t t1 = when_mono_ns();
    print_message("100,001-task wide DAG loaded in %.1f ms\n", (double)(t1 - t0) / 1e6);
    assert_non_null(dag);
    assert_int_equal(dag->ntasks, N + 1);
    assert_int_equal(dag->nlevels, 2);
    assert_int_equal(graph_nup(&dag->graph, N), N);
    assert_int_equal(dag->ncomponents, 1);
    dag_free(dag);
    diag_release(&d);
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spec_example_loads_with_every_field),
        cmocka_unit_test(defaults_apply_when_keys_are_absent),
        cmocka_unit_test(task_values_win_over_defaults),
        cmocka_unit_test(one_pass_reports_every_problem_with_positions),
        cmocka_unit_test(bad_queue_names_are_refused),
        cmocka_unit_test(conc_keys_load_with_defaults_and_overrides),
        cmocka_unit_test(aliases_share_a_node),
        cmocka_unit_test(load_file_reads_hashes_and_finds_its_folder),
        cmocka_unit_test(relative_path_gets_an_absolute_dir),
        cmocka_unit_test(task_named_like_a_log_folder_or_file_is_refused),
        cmocka_unit_test(trigger_rules_round_trip),
        cmocka_unit_test(var_keys_are_the_keys_read_once),
        cmocka_unit_test(hundred_thousand_task_chain_validates),
        cmocka_unit_test(hundred_thousand_task_wide_dag_validates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
