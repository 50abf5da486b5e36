/*
 * ops_test.c - the operations of ops/ops.h against a real home: a fresh
 * mkdtemp folder with a DAG folder of real YAML files and a real SQLite
 * database (store_open). No scheduler runs, except where a test takes the
 * home's lock itself (schedlock_take, a second open file description in
 * this process) to see cancel hand its request over.
 *
 * Each operation is tried with good input (the rows written are read back,
 * the doorbell rings: its mtime moves) and with bad input (the error kind, the
 * message, the did-you-mean), and with every commit failing (FP_STORE_COMMIT,
 * fault builds): OPS_STORE, nothing written, no ring.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "base/diag.h"
#include "base/err.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "dag/dag.h"
#include "ops/audit.h"
#include "ops/ops.h"
#include "ops/schedlock.h"
#include "store/audit.h"
#include "store/store.h"

static char tmpdir[64];
static char dags[256];
static struct store *st;

static const char daily_yaml[] = "dag: daily_etl\n"
                                 "schedule: '@daily'\n"
                                 "start: 2026-01-01\n"
                                 "params: {region: eu, limit: 100}\n"
                                 "tasks:\n"
                                 "  extract:\n"
                                 "    run: 'true'\n"
                                 "  transform:\n"
                                 "    needs: [extract]\n"
                                 "    run: 'true'\n"
                                 "  load:\n"
                                 "    needs: [transform]\n"
                                 "    run: 'true'\n"
                                 "  report:\n"
                                 "    run: 'true'\n";

static const char manual_yaml[] = "dag: manual_only\n"
                                  "tasks:\n"
                                  "  hello:\n"
                                  "    run: echo hi\n";

static const char minutely_yaml[] = "dag: minutely\n"
                                    "schedule: '* * * * *'\n"
                                    "start: 2026-01-01\n"
                                    "tasks:\n"
                                    "  t:\n"
                                    "    run: 'true'\n";

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "we");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/baram-ops-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(dags, sizeof dags, "%s/dags", tmpdir);
    assert_int_equal(mkdir(dags, 0755), 0);
    write_file(dags, "daily.yaml", daily_yaml);
    write_file(dags, "manual.yaml", manual_yaml);
    write_file(dags, "minutely.yaml", minutely_yaml);
    write_file(dags, "broken.yaml", "dag: broken\ntasks: [\n");
    char db[PATH_MAX];
    snprintf(db, sizeof db, "%s/baram.db", tmpdir);
    struct err serr = {0};
    int r = store_open(db, &st, &serr);
    if (r < 0)
        fail_msg("store_open: %d %s", r, serr.msg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    store_close(st);
    st = NULL;
    nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* The doorbell (schedlock_ring) only touches a file a scheduler made: make it, dated 1970. */
static void wake_reset(void)
{
    char *p = schedlock_wake_path(tmpdir);
    FILE *f = fopen(p, "we");
    assert_non_null(f);
    fclose(f);
    struct timespec ts[2] = {{1000, 0}, {1000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
    free(p);
}

/* Whether it was rung since wake_reset. */
static bool wake_rung(void)
{
    char *p = schedlock_wake_path(tmpdir);
    struct stat sb;
    bool ok = stat(p, &sb) == 0 && sb.st_mtim.tv_sec > 1000;
    free(p);
    return ok;
}

static json_t *obj(const char *text)
{
    json_error_t e;
    json_t *o = json_loads(text, 0, &e);
    assert_non_null(o);
    return o;
}

static void trigger_ok(const char *dag, const char *conf, int64_t at, struct ops_run *run)
{
    json_t *c = conf ? obj(conf) : NULL;
    struct ops_err e = {0};
    int r = ops_trigger(st, tmpdir, dags, dag, c, at, run, &e);
    if (r < 0)
        fail_msg("ops_trigger %s: %d %s %s", dag, r, e.err.msg, e.diag ? e.diag : "");
    json_decref(c);
}

/* ---- trigger ---- */

static void trigger_queues_a_run_and_rings(void **state)
{
    (void)state;
    wake_reset();
    int64_t at;
    assert_int_equal(when_parse("2026-03-04", &at), 0);
    struct ops_run run;
    trigger_ok("daily_etl", "{\"region\": \"us\", \"limit\": 5}", at, &run);
    assert_true(wake_rung());
    assert_int_equal(strncmp(run.run_id, "manual__", 8), 0);
    assert_int_equal(run.logical_at_ms, at);
    assert_false(run.paused);
    struct run_rec rec;
    assert_int_equal(store_get_run(st, run.run_id, &rec, NULL), 0);
    assert_string_equal(rec.dag_id, "daily_etl");
    assert_int_equal(rec.state, RUN_QUEUED);
    assert_int_equal(rec.type, RUN_MANUAL);
    assert_int_equal(rec.logical_at_ms, at);
    assert_non_null(rec.conf);
    assert_string_equal(rec.conf, "{\"limit\":\"5\",\"region\":\"us\"}");
    assert_non_null(rec.dag_hash);
    char *src = NULL;
    size_t len = 0;
    assert_int_equal(store_get_dag_version(st, rec.dag_hash, &src, &len, NULL), 0);
    assert_int_equal(len, strlen(daily_yaml));
    free(src);
    run_rec_release(&rec);

    /* -1: now; a second trigger gets a distinct id. */
    int64_t before = when_now_ms();
    struct ops_run run2;
    trigger_ok("daily_etl", NULL, -1, &run2);
    assert_true(run2.logical_at_ms >= before && run2.logical_at_ms <= when_now_ms());
    assert_string_not_equal(run.run_id, run2.run_id);
}

static void trigger_bad_input(void **state)
{
    (void)state;
    struct ops_run run;
    struct ops_err e = {0};

    /* An unknown DAG: not found, with a did-you-mean. */
    assert_int_equal(ops_trigger(st, tmpdir, dags, "daily_elt", NULL, -1, &run, &e), -ENOENT);
    assert_int_equal(e.kind, OPS_NOT_FOUND);
    assert_non_null(e.suggest);
    assert_string_equal(e.suggest, "daily_etl");
    assert_non_null(strstr(e.err.msg, "no DAG 'daily_elt' in folder"));
    assert_non_null(strstr(e.err.msg, "(did you mean 'daily_etl'?)"));
    ops_err_release(&e);
    assert_int_equal(e.kind, OPS_OK);
    assert_string_equal(e.err.msg, "");
    assert_int_equal(e.err.code, 0);

    /* A file that failed to load is not a DAG. */
    assert_int_equal(ops_trigger(st, tmpdir, dags, "broken", NULL, -1, &run, &e), -ENOENT);
    assert_int_equal(e.kind, OPS_NOT_FOUND);
    ops_err_release(&e);

    /* A param the DAG does not declare: bad input, as GCC-style diagnostics. */
    json_t *c = obj("{\"regoin\": \"us\"}");
    assert_int_equal(ops_trigger(st, tmpdir, dags, "daily_etl", c, -1, &run, &e), -EINVAL);
    assert_int_equal(e.kind, OPS_BAD_INPUT);
    assert_non_null(e.diag);
    assert_non_null(strstr(e.diag, "regoin"));
    json_decref(c);
    ops_err_release(&e);

    /* Values that are neither strings, numbers nor booleans: null, one line each; an array or
     * an object is for a typed param only (params_check says so of an untyped one). */
    c = obj("{\"region\": null, \"limit\": null}");
    assert_int_equal(ops_trigger(st, tmpdir, dags, "daily_etl", c, -1, &run, &e), -EINVAL);
    assert_int_equal(e.kind, OPS_BAD_INPUT);
    assert_non_null(strstr(e.err.msg, "conf param 'region' must be a string, number or boolean, "
                                      "not null"));
    assert_non_null(strstr(e.err.msg, "\nconf param 'limit' must be a string, number or boolean, "
                                      "not null"));
    json_decref(c);
    ops_err_release(&e);
    c = obj("{\"region\": [1]}");
    assert_int_equal(ops_trigger(st, tmpdir, dags, "daily_etl", c, -1, &run, &e), -EINVAL);
    assert_int_equal(e.kind, OPS_BAD_INPUT);
    assert_non_null(e.diag);
    assert_non_null(strstr(e.diag, "conf param 'region' must be a string, number or boolean, "
                                   "not an array"));
    json_decref(c);
    ops_err_release(&e);

    /* So many that their lines pass ERR_MSG_MAX: whole lines only, then a count of the rest. */
    c = json_object();
    char name[200];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "p%03d_%0150d", i, 0);
        json_object_set_new(c, name, json_null());
    }
    assert_int_equal(ops_conf_check(c, "conf", &e), -EINVAL);
    assert_int_equal(e.kind, OPS_BAD_INPUT);
    assert_int_equal(e.err.code, -EINVAL);
    size_t len = strlen(e.err.msg);
    assert_true(len < ERR_MSG_MAX - 1);
    const char *last = strrchr(e.err.msg, '\n');
    assert_non_null(last);
    size_t shown = 0;
    for (const char *p = e.err.msg; (p = strstr(p, " must be a string")); p++)
        shown++;
    char tail[64];
    snprintf(tail, sizeof tail, "\n(%zu more not shown)", 200 - shown);
    assert_string_equal(last, tail);
    assert_true(shown > 10);
    assert_non_null(strstr(last - 20, "not null\n(")); /* the line before it is whole */
    json_decref(c);
    ops_err_release(&e);

    /* conf that is not an object. */
    c = obj("[1, 2]");
    assert_int_equal(ops_trigger(st, tmpdir, dags, "daily_etl", c, -1, &run, &e), -EINVAL);
    assert_int_equal(e.kind, OPS_BAD_INPUT);
    json_decref(c);
    ops_err_release(&e);

    /* The folder is a file: unavailable. */
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s/daily.yaml", dags);
    assert_true(ops_trigger(st, tmpdir, file, "daily_etl", NULL, -1, &run, &e) < 0);
    assert_int_equal(e.kind, OPS_UNAVAILABLE);
    ops_err_release(&e);

    /* Nothing was queued by any of these. */
    struct run_rec *runs = NULL;
    size_t n = 9;
    assert_int_equal(store_list_runs(st, NULL, 100, 0, &runs, &n, NULL, NULL), 0);
    assert_int_equal(n, 0);
    store_free_runs(runs, n);
}

static void conf_parse_texts(void **state)
{
    (void)state;
    json_t *o = NULL;
    struct ops_err e = {0};
    assert_int_equal(ops_conf_parse(NULL, "--conf", &o, &e), 0);
    assert_null(o);
    assert_int_equal(ops_conf_parse("{\"a\": 1.5}", "--conf", &o, &e), 0);
    assert_non_null(o);
    json_decref(o);
    assert_int_equal(ops_conf_parse("{\"a\": ", "--conf", &o, &e), -EINVAL);
    assert_null(o);
    assert_int_equal(strncmp(e.err.msg, "--conf is not valid JSON: ", 26), 0);
    ops_err_release(&e);
    assert_int_equal(ops_conf_parse("{\"a\": 1, \"a\": 2}", "--conf", &o, &e), -EINVAL);
    ops_err_release(&e);
    assert_int_equal(ops_conf_parse("\"x\"", "--conf", &o, &e), -EINVAL);
    assert_string_equal(e.err.msg,
                        "--conf must be a JSON object of params, like '{\"name\": \"value\"}'");
    ops_err_release(&e);

    /* The CLI's rendering: each line prefixed, then the diagnostics as they are. */
    e.kind = OPS_BAD_INPUT;
    err_set(&e.err, -EINVAL, "one\ntwo");
    e.diag = xstrdup("f.yaml:1:2: error: x\n");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    ops_err_print(&e, f, "dags trigger");
    fclose(f);
    assert_string_equal(buf, "baram dags trigger: one\nbaram dags trigger: two\n"
                             "f.yaml:1:2: error: x\n");
    free(buf);
    ops_err_release(&e);
    assert_string_equal(ops_kind_name(OPS_CONFLICT), "conflict");
}

/* ---- backfill ---- */

static void backfill_queues_each_date_once(void **state)
{
    (void)state;
    struct ops_range rg = {0};
    assert_int_equal(when_parse("2026-02-01", &rg.from_at_ms), 0);
    assert_int_equal(when_parse("2026-02-03", &rg.to_at_ms), 0);
    struct ops_backfill b;
    struct ops_err e = {0};
    wake_reset();
    json_t *c = obj("{\"region\": \"jp\"}");
    assert_int_equal(ops_backfill(st, tmpdir, dags, "daily_etl", c, &rg, &b, &e), 0);
    assert_true(wake_rung());
    assert_int_equal(b.nrun_ids, 3);
    assert_int_equal(b.skipped, 0);
    for (size_t i = 0; i < b.nrun_ids; i++) {
        struct run_rec rec;
        assert_int_equal(store_get_run(st, b.run_ids[i], &rec, NULL), 0);
        assert_int_equal(rec.type, RUN_BACKFILL);
        assert_int_equal(rec.state, RUN_QUEUED);
        assert_int_equal(rec.logical_at_ms, rg.from_at_ms + (int64_t)i * 86400000);
        assert_string_equal(rec.conf, "{\"region\":\"jp\"}");
        run_rec_release(&rec);
    }
    ops_backfill_release(&b);

    /* Again, one day wider: only the new day is queued. */
    rg.to_at_ms += 86400000;
    assert_int_equal(ops_backfill(st, tmpdir, dags, "daily_etl", c, &rg, &b, &e), 0);
    assert_int_equal(b.nrun_ids, 1);
    assert_int_equal(b.skipped, 3);
    ops_backfill_release(&b);
    json_decref(c);
}

static void backfill_bad_input(void **state)
{
    (void)state;
    struct ops_range rg = {0};
    assert_int_equal(when_parse("2026-02-01", &rg.from_at_ms), 0);
    assert_int_equal(when_parse("2026-02-03", &rg.to_at_ms), 0);
    struct ops_backfill b;
    struct ops_err e = {0};

    assert_int_equal(ops_backfill(st, tmpdir, dags, "manual_only", NULL, &rg, &b, &e), -EINVAL);
    assert_int_equal(e.kind, OPS_BAD_INPUT);
    assert_non_null(strstr(e.err.msg, "has no schedule"));
    ops_err_release(&e);

    assert_int_equal(ops_backfill(st, tmpdir, dags, "nope", NULL, &rg, &b, &e), -ENOENT);
    assert_int_equal(e.kind, OPS_NOT_FOUND);
    ops_err_release(&e);

    struct ops_range back = {rg.to_at_ms, rg.from_at_ms, "2026-02-03", "2026-02-01", 0};
    assert_int_equal(ops_backfill(st, tmpdir, dags, "daily_etl", NULL, &back, &b, &e), -EINVAL);
    assert_string_equal(e.err.msg, "--from 2026-02-03 is after --to 2026-02-01");
    ops_err_release(&e);

    /* Every minute for two months: over OPS_BACKFILL_MAX, nothing queued. */
    struct ops_range wide = {rg.from_at_ms, rg.from_at_ms + 60LL * 86400000, "a", "b", 0};
    assert_int_equal(ops_backfill(st, tmpdir, dags, "minutely", NULL, &wide, &b, &e), -EINVAL);
    assert_string_equal(e.err.msg, "more than 10000 runs from a to b: backfill a narrower range at "
                                   "a time");
    ops_err_release(&e);
    struct run_rec *runs = NULL;
    size_t n = 9;
    assert_int_equal(store_list_runs(st, NULL, 100, 0, &runs, &n, NULL, NULL), 0);
    assert_int_equal(n, 0);
    store_free_runs(runs, n);
}

/* ---- pause ---- */

static void pause_and_unpause(void **state)
{
    (void)state;
    struct ops_err e = {0};
    wake_reset();
    assert_int_equal(ops_set_paused(st, tmpdir, dags, "daily_etl", true, &e), 0);
    assert_true(wake_rung());
    struct dag_rec d;
    assert_int_equal(store_get_dag(st, "daily_etl", &d, NULL), 0);
    assert_true(d.paused);
    dag_rec_release(&d);

    /* A run triggered now says it waits. */
    struct ops_run run;
    trigger_ok("daily_etl", NULL, -1, &run);
    assert_true(run.paused);

    assert_int_equal(ops_set_paused(st, tmpdir, dags, "daily_etl", false, &e), 0);
    assert_int_equal(store_get_dag(st, "daily_etl", &d, NULL), 0);
    assert_false(d.paused);
    dag_rec_release(&d);

    assert_int_equal(ops_set_paused(st, tmpdir, dags, "dailyetl", true, &e), -ENOENT);
    assert_int_equal(e.kind, OPS_NOT_FOUND);
    assert_string_equal(e.suggest, "daily_etl");
    ops_err_release(&e);
    assert_int_equal(store_get_dag(st, "dailyetl", &d, NULL), -ENOENT);
}

/* ---- cancel ---- */

static void put_ti(const char *run_id, const char *task, enum ti_state state)
{
    struct ti_rec t = {
        .run_id = (char *)run_id,
        .task_id = (char *)task,
        .task = (char *)task,
        .map_index = -1,
        .state = state,
        .try_number = state == TI_NONE ? 0 : 1,
        .max_tries = 1,
        .exit_code = state == TI_SUCCESS ? 0 : -1,
        .scheduled_at_ms = -1,
        .queued_at_ms = -1,
        .started_at_ms = -1,
        .ended_at_ms = -1,
    };
    assert_int_equal(store_put_ti(st, &t, NULL), 0);
}

static enum ti_state ti_state_of(const char *run_id, const char *task)
{
    struct ti_rec *tis = NULL;
    size_t n = 0;
    assert_int_equal(store_list_tis(st, run_id, &tis, &n, NULL), 0);
    enum ti_state s = TI_NONE;
    bool found = false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(tis[i].task_id, task) == 0) {
            s = tis[i].state;
            found = true;
        }
    store_free_tis(tis, n);
    assert_true(found);
    return s;
}

static void set_run_state(const char *run_id, enum run_state state, const char *owner)
{
    struct run_rec rec;
    assert_int_equal(store_get_run(st, run_id, &rec, NULL), 0);
    rec.state = state;
    free(rec.owner);
    rec.owner = owner ? xstrdup(owner) : NULL;
    assert_int_equal(store_put_run(st, &rec, NULL), 0);
    run_rec_release(&rec);
}

static void cancel_direct_without_scheduler(void **state)
{
    (void)state;
    struct ops_run run;
    trigger_ok("daily_etl", NULL, -1, &run);
    set_run_state(run.run_id, RUN_RUNNING, NULL);
    put_ti(run.run_id, "extract", TI_SUCCESS);
    put_ti(run.run_id, "transform", TI_RUNNING);
    put_ti(run.run_id, "report", TI_QUEUED);
    struct ops_cancel c;
    struct ops_err e = {0};
    wake_reset();
    assert_int_equal(ops_cancel(st, tmpdir, 20000, run.run_id, 1000, &c, &e), 0);
    assert_true(c.direct);
    assert_false(c.requested);
    assert_int_equal(c.state, RUN_CANCELLED);
    struct run_rec rec;
    assert_int_equal(store_get_run(st, run.run_id, &rec, NULL), 0);
    assert_int_equal(rec.state, RUN_CANCELLED);
    assert_true(rec.ended_at_ms > 0);
    run_rec_release(&rec);
    assert_int_equal(ti_state_of(run.run_id, "extract"), TI_SUCCESS);
    assert_int_equal(ti_state_of(run.run_id, "transform"), TI_FAILED);
    struct ti_rec *tis = NULL;
    size_t ntis = 0;
    assert_int_equal(store_list_tis(st, run.run_id, &tis, &ntis, NULL), 0);
    assert_int_equal(ntis, 3); /* report, not marked, got no row */
    store_free_tis(tis, ntis);

    /* Again: it has ended. */
    assert_int_equal(ops_cancel(st, tmpdir, 20000, run.run_id, 0, &c, &e), -EALREADY);
    assert_int_equal(e.kind, OPS_CONFLICT);
    char want[256];
    snprintf(want, sizeof want, "run '%s' already ended (cancelled)", run.run_id);
    assert_string_equal(e.err.msg, want);
    ops_err_release(&e);
}

static void cancel_bad_input(void **state)
{
    (void)state;
    struct ops_run run;
    trigger_ok("manual_only", NULL, -1, &run);
    struct ops_cancel c;
    struct ops_err e = {0};

    /* Unknown: not found, with the closest run id. */
    char typo[OPS_RUN_ID_MAX];
    snprintf(typo, sizeof typo, "%.*sX", (int)strlen(run.run_id) - 1, run.run_id);
    assert_int_equal(ops_cancel(st, tmpdir, 20000, typo, 0, &c, &e), -ENOENT);
    assert_int_equal(e.kind, OPS_NOT_FOUND);
    assert_string_equal(e.suggest, run.run_id);
    ops_err_release(&e);

    /* A foreground `baram run`: conflict, and the run is untouched. */
    set_run_state(run.run_id, RUN_RUNNING, "cli");
    assert_int_equal(ops_cancel(st, tmpdir, 20000, run.run_id, 0, &c, &e), -EBUSY);
    assert_int_equal(e.kind, OPS_CONFLICT);
    assert_non_null(strstr(e.err.msg, "in the foreground under 'baram run'"));
    ops_err_release(&e);
    struct run_rec rec;
    assert_int_equal(store_get_run(st, run.run_id, &rec, NULL), 0);
    assert_int_equal(rec.state, RUN_RUNNING);
    run_rec_release(&rec);

    /* Ended successfully: conflict. */
    set_run_state(run.run_id, RUN_SUCCESS, NULL);
    assert_int_equal(ops_cancel(st, tmpdir, 20000, run.run_id, 0, &c, &e), -EALREADY);
    assert_int_equal(e.kind, OPS_CONFLICT);
    ops_err_release(&e);
}

static void cancel_hands_over_to_a_scheduler(void **state)
{
    (void)state;
    struct ops_run run;
    trigger_ok("manual_only", NULL, -1, &run);
    int fd = -1;
    struct err err = {0};
    assert_int_equal(schedlock_take(tmpdir, &fd, &err), 0);
    assert_true(schedlock_held(tmpdir));
    struct ops_cancel c;
    struct ops_err e = {0};
    wake_reset();
    int64_t t0 = when_mono_ms();
    assert_int_equal(ops_cancel(st, tmpdir, 20000, run.run_id, 100, &c, &e), 0);
    assert_true(when_mono_ms() - t0 >= 100); /* waited for a confirmation that never came */
    assert_true(wake_rung());
    assert_true(c.requested);
    assert_false(c.direct);
    assert_int_equal(c.state, RUN_QUEUED);
    struct run_request *reqs = NULL;
    size_t n = 0;
    assert_int_equal(store_take_requests(st, 0, &reqs, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_string_equal(reqs[0].run_id, run.run_id);
    assert_string_equal(reqs[0].kind, "cancel");
    store_free_requests(reqs, n);
    struct run_rec rec;
    assert_int_equal(store_get_run(st, run.run_id, &rec, NULL), 0);
    assert_int_equal(rec.state, RUN_QUEUED); /* the scheduler's to change */
    run_rec_release(&rec);
    schedlock_drop(fd);
}

/* ---- clear ---- */

static void clear_resets_downstream_and_queues(void **state)
{
    (void)state;
    struct ops_run run;
    trigger_ok("daily_etl", NULL, -1, &run);
    struct ops_clear c;
    struct ops_err e = {0};

    /* Not ended yet, and no scheduler: cleared at once, not requested. */
    assert_int_equal(ops_clear(st, tmpdir, 20000, run.run_id, "extract", false, &c, &e), 0);
    assert_false(c.requested);
    ops_clear_release(&c);

    set_run_state(run.run_id, RUN_FAILED, "cli");
    put_ti(run.run_id, "extract", TI_SUCCESS);
    put_ti(run.run_id, "transform", TI_FAILED);
    put_ti(run.run_id, "load", TI_UPSTREAM_FAILED);
    put_ti(run.run_id, "report", TI_SUCCESS);

    /* Unknown task: not found, did-you-mean. */
    assert_int_equal(ops_clear(st, tmpdir, 20000, run.run_id, "transfrom", true, &c, &e), -ENOENT);
    assert_int_equal(e.kind, OPS_NOT_FOUND);
    assert_string_equal(e.suggest, "transform");
    ops_err_release(&e);
    assert_int_equal(ops_clear(st, tmpdir, 20000, "manual__nope", "load", true, &c, &e), -ENOENT);
    assert_int_equal(e.kind, OPS_NOT_FOUND);
    ops_err_release(&e);

    wake_reset();
    assert_int_equal(ops_clear(st, tmpdir, 20000, run.run_id, "transform", true, &c, &e), 0);
    assert_true(wake_rung());
    assert_int_equal(c.ntasks, 2);
    assert_string_equal(c.tasks[0], "transform");
    assert_string_equal(c.tasks[1], "load");
    assert_int_equal(c.nrows, 2);
    ops_clear_release(&c);
    assert_int_equal(ti_state_of(run.run_id, "extract"), TI_SUCCESS);
    assert_int_equal(ti_state_of(run.run_id, "transform"), TI_NONE);
    assert_int_equal(ti_state_of(run.run_id, "load"), TI_NONE);
    assert_int_equal(ti_state_of(run.run_id, "report"), TI_SUCCESS);
    struct run_rec rec;
    assert_int_equal(store_get_run(st, run.run_id, &rec, NULL), 0);
    assert_int_equal(rec.state, RUN_QUEUED);
    assert_int_equal(rec.ended_at_ms, -1);
    assert_null(rec.owner);
    run_rec_release(&rec);

    /* Without downstream only the task itself. */
    set_run_state(run.run_id, RUN_SUCCESS, NULL);
    assert_int_equal(ops_clear(st, tmpdir, 20000, run.run_id, "extract", false, &c, &e), 0);
    assert_int_equal(c.ntasks, 1);
    assert_string_equal(c.tasks[0], "extract");
    assert_int_equal(c.nrows, 1);
    ops_clear_release(&c);
    assert_int_equal(ti_state_of(run.run_id, "extract"), TI_NONE);
}

/* Marks: an ended run's task keeps the run's state; a run marked failed skips what never
 * started; the request kinds name the tasks whose tries the scheduler stops. */
static void mark_task_and_run(void **state)
{
    (void)state;
    struct ops_run run;
    trigger_ok("daily_etl", NULL, -1, &run);
    struct ops_mark m;
    struct ops_err e = {0};
    set_run_state(run.run_id, RUN_FAILED, NULL);
    put_ti(run.run_id, "extract", TI_SUCCESS);
    put_ti(run.run_id, "transform", TI_FAILED);
    put_ti(run.run_id, "load", TI_UPSTREAM_FAILED);

    /* bad state, unknown task (did-you-mean), unknown run */
    assert_int_equal(
        ops_mark_task(st, tmpdir, 20000, run.run_id, "load", TI_RUNNING, false, NULL, &m, &e),
        -EINVAL);
    assert_int_equal(e.kind, OPS_BAD_INPUT);
    ops_err_release(&e);
    assert_int_equal(
        ops_mark_task(st, tmpdir, 20000, run.run_id, "lod", TI_SUCCESS, false, NULL, &m, &e),
        -ENOENT);
    assert_string_equal(e.suggest, "load");
    ops_err_release(&e);
    assert_int_equal(ops_mark_run(st, tmpdir, 20000, "manual__nope", RUN_SUCCESS, NULL, &m, &e),
                     -ENOENT);
    ops_err_release(&e);

    /* an ended run: the task and its downstream, the run's state untouched */
    assert_int_equal(
        ops_mark_task(st, tmpdir, 20000, run.run_id, "transform", TI_SUCCESS, true, NULL, &m, &e),
        0);
    assert_false(m.requested);
    assert_int_equal(m.ntasks, 2);
    assert_string_equal(m.tasks[1], "load");
    assert_int_equal(m.nrows, 2);
    assert_int_equal(m.run_state, RUN_FAILED);
    ops_mark_release(&m);
    assert_int_equal(ti_state_of(run.run_id, "transform"), TI_SUCCESS);
    assert_int_equal(ti_state_of(run.run_id, "load"), TI_SUCCESS);
    struct ti_rec *tis = NULL;
    size_t ntis = 0;
    assert_int_equal(store_list_tis(st, run.run_id, &tis, &ntis, NULL), 0);
    assert_int_equal(ntis, 3); /* report, not marked, got no row */
    store_free_tis(tis, ntis);

    /* a live run no scheduler runs: started instances get the state, the others skipped */
    struct ops_run live;
    trigger_ok("daily_etl", NULL, 1767312000000LL, &live);
    set_run_state(live.run_id, RUN_RUNNING, NULL);
    put_ti(live.run_id, "extract", TI_RUNNING);
    assert_int_equal(ops_mark_run(st, tmpdir, 20000, live.run_id, RUN_FAILED, NULL, &m, &e), 0);
    assert_false(m.requested);
    assert_int_equal(m.run_state, RUN_FAILED);
    assert_int_equal(m.nrows, 4);
    ops_mark_release(&m);
    assert_int_equal(ti_state_of(live.run_id, "extract"), TI_FAILED);
    assert_int_equal(ti_state_of(live.run_id, "transform"), TI_SKIPPED);
    assert_int_equal(ti_state_of(live.run_id, "report"), TI_SKIPPED);
    struct run_rec rec;
    assert_int_equal(store_get_run(st, live.run_id, &rec, NULL), 0);
    assert_int_equal(rec.state, RUN_FAILED);
    assert_true(rec.ended_at_ms > 0);
    run_rec_release(&rec);

    /* who is recorded with the mark (an ended run: only its state changes) */
    struct audit_who who;
    audit_who_api(&who, "tester");
    assert_int_equal(ops_mark_run(st, tmpdir, 20000, live.run_id, RUN_SUCCESS, &who, &m, &e), 0);
    ops_mark_release(&m);
    assert_int_equal(ti_state_of(live.run_id, "transform"), TI_SKIPPED);
    struct audit_rec *au = NULL;
    size_t nau = 0;
    assert_int_equal(store_audit_list(st, NULL, "tester", 0, 10, &au, &nau, NULL), 0);
    assert_int_equal(nau, 1);
    assert_string_equal(au[0].action, "mark");
    assert_string_equal(au[0].source, "api");
    assert_string_equal(au[0].dag_id, "daily_etl");
    assert_string_equal(au[0].run_id, live.run_id);
    assert_null(au[0].task_id);
    assert_string_equal(au[0].details, "{\"requested\":false,\"state\":\"success\"}");
    store_audit_free(au, nau);

    /* the request kinds: lasting, and the tasks whose tries stop */
    struct diag d;
    diag_init(&d);
    struct dag *dag = dag_load_mem(daily_yaml, strlen(daily_yaml), "d.yaml", &d);
    diag_release(&d);
    assert_non_null(dag);
    static const struct {
        const char *kind;
        bool mark;
        const char *set; /* one char per task in file order: extract transform load report */
    } kinds[] = {
        {"clear~mark:s:transform", true, "0100"},
        {"clear~mark:f+:transform", true, "0110"},
        {"clear~run:s", true, "1111"},
        {"clear~run:x", false, "0000"},
        {"clear~mark:s:", false, "0000"},
        {"clear~mark:s+:nope", true, "0000"},
        {"clear:transform", false, "0000"},
        {"cancel", false, "0000"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        bool set[4] = {0};
        assert_int_equal(ops_mark_request_parse(kinds[i].kind), kinds[i].mark);
        assert_int_equal(ops_mark_request_tasks(dag, kinds[i].kind, set), kinds[i].mark);
        for (uint32_t k = 0; k < 4; k++) {
            uint32_t t;
            assert_true(
                dag_find(dag, (const char *[]){"extract", "transform", "load", "report"}[k], &t));
            assert_int_equal(set[t], kinds[i].set[k] == '1');
        }
        assert_true(strncmp(kinds[i].kind, STORE_REQUEST_LASTING, 5) == 0 || !kinds[i].mark);
    }
    dag_free(dag);
}

static void clear_without_dag_version(void **state)
{
    (void)state;
    struct run_rec rec = {
        .run_id = "manual__old",
        .dag_id = "gone",
        .state = RUN_FAILED,
        .type = RUN_MANUAL,
        .logical_at_ms = 0,
        .queued_at_ms = -1,
        .started_at_ms = -1,
        .ended_at_ms = 1,
    };
    assert_int_equal(store_put_run(st, &rec, NULL), 0);
    struct ops_clear c;
    struct ops_err e = {0};
    assert_true(ops_clear(st, tmpdir, 20000, "manual__old", "t", false, &c, &e) < 0);
    assert_int_equal(e.kind, OPS_CONFLICT);
    assert_string_equal(e.err.msg, "the DAG version the run started with is not in the database");
    ops_err_release(&e);
}

/* ---- pools ---- */

static void pool_set_and_bad_input(void **state)
{
    (void)state;
    struct ops_err e = {0};
    wake_reset();
    assert_int_equal(ops_pool_set(st, tmpdir, "gpu.a-1_x", 7, &e), 0);
    assert_true(wake_rung());
    assert_int_equal(ops_pool_set(st, tmpdir, "zero", 0, &e), 0);
    assert_int_equal(ops_pool_set(st, tmpdir, "gpu.a-1_x", OPS_POOL_SLOTS_MAX, &e), 0);
    struct pool_rec *p = NULL;
    size_t n = 0;
    assert_int_equal(store_list_pools(st, &p, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(p[0].name, "gpu.a-1_x");
    assert_int_equal(p[0].slots, OPS_POOL_SLOTS_MAX);
    assert_string_equal(p[1].name, "zero");
    assert_int_equal(p[1].slots, 0);
    store_free_pools(p, n);

    static const char *const bad_names[] = {"", "a b", "x/y", "é", "a;drop"};
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        assert_int_equal(ops_pool_set(st, tmpdir, bad_names[i], 1, &e), -EINVAL);
        assert_int_equal(e.kind, OPS_BAD_INPUT);
        assert_non_null(strstr(e.err.msg, "bad pool name"));
        ops_err_release(&e);
    }
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(ops_pool_check(longname, &e), -EINVAL);
    assert_non_null(strstr(e.err.msg, "...': use 1 to"));
    ops_err_release(&e);
    assert_int_equal(ops_pool_set(st, tmpdir, "p", -1, &e), -EINVAL);
    ops_err_release(&e);
    assert_int_equal(ops_pool_set(st, tmpdir, "p", OPS_POOL_SLOTS_MAX + 1, &e), -EINVAL);
    assert_int_equal(e.kind, OPS_BAD_INPUT);
    ops_err_release(&e);
    assert_int_equal(store_list_pools(st, &p, &n, NULL), 0);
    assert_int_equal(n, 2);
    store_free_pools(p, n);
}

/* ---- the store failing ---- */

#ifdef BARAM_FAULTS
/* Every commit fails (FP_STORE_COMMIT): each operation says OPS_STORE and leaves the store as
 * it was, and the doorbell is not rung. */
static void store_failures_are_reported(void **state)
{
    (void)state;
    struct ops_run run;
    trigger_ok("daily_etl", NULL, -1, &run);
    char ended[OPS_RUN_ID_MAX];
    trigger_ok("daily_etl", NULL, -1, &run);
    snprintf(ended, sizeof ended, "%s", run.run_id);
    set_run_state(ended, RUN_FAILED, NULL);
    put_ti(ended, "extract", TI_FAILED);
    trigger_ok("manual_only", NULL, -1, &run);
    wake_reset();
    assert_int_equal(setenv("BARAM_FAULT", "FP_STORE_COMMIT", 1), 0);

    struct ops_err e = {0};
    struct ops_run r2;
    assert_true(ops_trigger(st, tmpdir, dags, "daily_etl", NULL, -1, &r2, &e) < 0);
    assert_int_equal(e.kind, OPS_STORE);
    assert_int_equal(e.err.code, ERR_DB);
    /* the store's own words, filled by the failing call straight into e.err */
    assert_non_null(strstr(e.err.msg, "cannot commit to database '"));
    assert_non_null(strstr(e.err.msg, "injected fault FP_STORE_COMMIT"));
    ops_err_release(&e);

    struct ops_range rg = {0};
    assert_int_equal(when_parse("2026-02-01", &rg.from_at_ms), 0);
    rg.to_at_ms = rg.from_at_ms + 86400000;
    struct ops_backfill b;
    assert_true(ops_backfill(st, tmpdir, dags, "daily_etl", NULL, &rg, &b, &e) < 0);
    assert_int_equal(e.kind, OPS_STORE);
    assert_null(b.run_ids);
    ops_err_release(&e);

    struct ops_cancel c;
    assert_true(ops_cancel(st, tmpdir, 20000, run.run_id, 0, &c, &e) < 0);
    assert_int_equal(e.kind, OPS_STORE);
    ops_err_release(&e);

    struct ops_clear cl;
    assert_true(ops_clear(st, tmpdir, 20000, ended, "extract", false, &cl, &e) < 0);
    assert_int_equal(e.kind, OPS_STORE);
    assert_null(cl.tasks);
    ops_err_release(&e);

    assert_int_equal(unsetenv("BARAM_FAULT"), 0);
    assert_false(wake_rung());
    struct run_rec *runs = NULL;
    size_t n = 0;
    assert_int_equal(store_list_runs(st, NULL, 100, 0, &runs, &n, NULL, NULL), 0);
    assert_int_equal(n, 3);
    store_free_runs(runs, n);
    struct run_rec rec;
    assert_int_equal(store_get_run(st, run.run_id, &rec, NULL), 0);
    assert_int_equal(rec.state, RUN_QUEUED);
    run_rec_release(&rec);
    assert_int_equal(store_get_run(st, ended, &rec, NULL), 0);
    assert_int_equal(rec.state, RUN_FAILED);
    run_rec_release(&rec);
    assert_int_equal(ti_state_of(ended, "extract"), TI_FAILED);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(trigger_queues_a_run_and_rings, setup, teardown),
        cmocka_unit_test_setup_teardown(trigger_bad_input, setup, teardown),
        cmocka_unit_test(conf_parse_texts),
        cmocka_unit_test_setup_teardown(backfill_queues_each_date_once, setup, teardown),
        cmocka_unit_test_setup_teardown(backfill_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(pause_and_unpause, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_direct_without_scheduler, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_hands_over_to_a_scheduler, setup, teardown),
        cmocka_unit_test_setup_teardown(clear_resets_downstream_and_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(clear_without_dag_version, setup, teardown),
        cmocka_unit_test_setup_teardown(mark_task_and_run, setup, teardown),
        cmocka_unit_test_setup_teardown(pool_set_and_bad_input, setup, teardown),
#ifdef BARAM_FAULTS
        cmocka_unit_test_setup_teardown(store_failures_are_reported, setup, teardown),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
