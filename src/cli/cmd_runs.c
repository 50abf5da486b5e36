/*
 * cmd_runs.c - `baram runs list|show|profile` (SPEC section 3): reading
 * stored runs. list and show print a table or JSON (out.c; show --json is
 * the same object `baram run --json` prints). profile answers "what was the
 * bottleneck": it loads the DAG version the run started with (its edges),
 * and hands the instances' timeline to profile.c for the critical path and
 * the parallelism reached. cancel stops a run through ops_cancel
 * (ops/ops.h, shared with the API): when a scheduler holds the home's
 * lock it leaves a request in the store and waits for the scheduler to
 * confirm; with none running it writes the cancellation itself. A missing
 * home or database is an error, never created. Main thread.
 */
#include "cli/cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/diag.h"
#include "base/err.h"
#include "base/suggest.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/home.h"
#include "cli/out.h"
#include "cli/profile.h"
#include "dag/dag.h"
#include "ops/audit.h"
#include "ops/ops.h"
#include "ops/runfilter.h"
#include "ops/runjson.h"
#include "store/store.h"

static const char usage[] =
    "usage: baram runs list [DAG] [--state S[,S]] [--from D] [--to D] [--limit N] [--json]\n"
    "                                                    runs, newest first (full run ids)\n"
    "       baram runs show RUN [--json]                 a run and its task instances\n"
    "       baram runs profile RUN [--json] [--all]      critical path, waits, parallelism\n"
    "       baram runs cancel RUN [--wait S] [--json]    stop a queued or running run\n"
    "       baram runs mark RUN success|failed [--json]  end a run as success or failed\n"
    "\n"
    "cancel: with a scheduler running, asks it to cancel the run and waits up to --wait\n"
    "seconds (default 10) for it to confirm; with none, marks the run cancelled at once\n"
    "(running task instances failed, not started ones back to none). A run of a foreground\n"
    "'baram run' is stopped there (Ctrl-C). exit: 0 cancelled or requested, 1 the run has\n"
    "already ended or cannot be cancelled here, 2 usage error or unknown run\n"
    "\n"
    "list: every DAG's runs unless DAG is given, newest logical date first (then newest\n"
    "queued); --state keeps runs in these states (queued, running, success, failed,\n"
    "cancelled), --from/--to runs whose logical date is in the range, both ends included\n"
    "(YYYY-MM-DD is midnight UTC, or YYYY-MM-DDTHH:MM[:SS][Z]). exit 2 on a bad filter.\n"
    "\n"
    "mark: a live run's running tries are stopped, its unfinished task instances that\n"
    "started get the state, those that did not success (mark success) or skipped (mark\n"
    "failed, as Airflow does), and the run ends with the state (through the scheduler when\n"
    "one runs it). An ended run only changes its state. exit: 0 marked or requested, 1 a\n"
    "foreground 'baram run' or the database failed, 2 usage error or unknown run\n"
    "\n"
    "list --json prints {\"runs\":[{\"run_id\",\"dag\",\"state\",...}],\"total_entries\"}\n"
    "\n"
    "  --home DIR  the home (default $BARAM_HOME or ./.baram)\n";

#define RUNS_LIST_DEFAULT_LIMIT 20
#define PROFILE_SLOWEST         10

static int open_store(const struct home *h, const char *cmd, struct store **s)
{
    struct err err = {0};
    int r = home_open_store(h, false, s, &err);
    if (r < 0) {
        fprintf(stderr, "baram %s: %s\n", cmd, err_msg(&err));
    }
    return r;
}

static struct dag *load_run_dag(struct store *s, const struct run_rec *run);

/* tz part: the zone of each listed run's DAG version (NULL: UTC), each version parsed once
 * (zones live for the process: they outlive the DAGs). A new array of n. */
static const struct tz **runs_zones(struct store *s, const struct run_rec *runs, size_t n)
{
    const struct tz **zones = xcalloc(n ? n : 1, sizeof *zones);
    struct hmap seen; /* version hash -> its first row */
    hmap_init(&seen);
    for (size_t i = 0; i < n; i++) {
        const char *hash = runs[i].dag_hash;
        uint32_t j;
        if (!hash)
            continue;
        if (hmap_get(&seen, hash, strlen(hash), &j)) {
            zones[i] = zones[j];
            continue;
        }
        (void)hmap_put(&seen, hash, strlen(hash), (uint32_t)i);
        struct dag *d = load_run_dag(s, &runs[i]);
        zones[i] = d ? d->tz : NULL;
        if (d)
            dag_free(d);
    }
    hmap_release(&seen);
    return zones;
}

static int runs_list(struct home *h, const struct run_filter *f, int limit, bool json)

{
    struct err se = {0};
    struct store *s;
    if (open_store(h, "runs list", &s) < 0)
        return EXIT_USAGE;
    struct run_rec *runs = NULL;
    size_t n = 0, total = 0;
    int ret = EXIT_OK;
    if (store_find_runs(s, f, limit, 0, &runs, &n, &total, &se) < 0) {
        fprintf(stderr, "baram runs list: %s\n", err_msg(&se));
        ret = EXIT_FAILED;
    } else if (json) {
        /* An object, as every --json list (and GET .../runs) prints. */
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, out_run_summary_json(&runs[i]));
        json_t *o = json_pack("{s:o, s:I}", "runs", a, "total_entries", (json_int_t)total);
        if (out_json_print(stdout, o) < 0)
            ret = EXIT_FAILED;
        json_decref(o);
    } else {
        const struct tz **zones = runs_zones(s, runs, n);
        out_runs_table_tz(stdout, runs, n, zones);
        free(zones);
        if (total > n)
            printf("(%zu of %zu runs; --limit N shows more)\n", n, total);
    }
    store_free_runs(runs, n);
    store_close(s);
    return ret;
}

/* Loads a run and its instances: EXIT_OK, or an exit code after printing why. */
static int load_run(struct store *s, const char *cmd, const char *run_id, struct run_rec *run,
                    struct ti_rec **tis, size_t *n)
{
    struct err se = {0};
    int r = store_get_run(s, run_id, run, &se);
    if (r == -ENOENT) {
        out_no_such_run(stderr, s, cmd, run_id);
        return EXIT_USAGE;
    }
    if (r == 0) {
        r = store_list_tis(s, run_id, tis, n, &se);
        if (r < 0)
            run_rec_release(run);
    }
    if (r < 0) {
        fprintf(stderr, "baram %s: %s\n", cmd, err_msg(&se));
        return EXIT_FAILED;
    }
    return EXIT_OK;
}

static int runs_show(struct home *h, const char *run_id, bool json)
{
    struct store *s;
    if (open_store(h, "runs show", &s) < 0)
        return EXIT_USAGE;
    struct run_rec run;
    struct ti_rec *tis = NULL;
    size_t n = 0;
    int ret = load_run(s, "runs show", run_id, &run, &tis, &n);
    bool load_ok = ret == EXIT_OK;
    json_t *notes = NULL;
    struct err se = {0};
    if (ret == EXIT_OK && runjson_notes(s, run.run_id, &notes, &se) < 0) {
        fprintf(stderr, "baram runs show: %s\n", err_msg(&se));
        ret = EXIT_FAILED;
    } else if (ret == EXIT_OK && json) {
        json_t *o = out_run_json(&run, tis, n);
        runjson_set_notes(json_object_get(o, "tasks"), notes);
        if (out_json_print(stdout, o) < 0)
            ret = EXIT_FAILED;
        json_decref(o);
    } else if (ret == EXIT_OK) {
        const struct tz **zone = runs_zones(s, &run, 1);
        out_run_table_tz(stdout, &run, tis, n, notes, zone[0]);
        free(zone);
    }
    if (load_ok) {
        store_free_tis(tis, n);
        run_rec_release(&run);
    }
    json_decref(notes);
    store_close(s);
    return ret;
}

/* ---- profile ---- */

static int64_t span_ms(int64_t from, int64_t to)
{
    return from >= 0 && to >= from ? to - from : -1;
}

static json_t *seconds_json(int64_t ms)
{
    return ms < 0 ? json_null() : json_real((double)ms / 1000.0);
}

/* qsort_r order of indices into tis (ctx): longest run time first. */
static int by_run_time(const void *a, const void *b, void *ctx)
{
    const struct ti_rec *tis = ctx;
    const struct ti_rec *x = &tis[*(const size_t *)a], *y = &tis[*(const size_t *)b];
    int64_t dx = span_ms(x->started_at_ms, x->ended_at_ms);
    int64_t dy = span_ms(y->started_at_ms, y->ended_at_ms);
    if (dx != dy)
        return dx > dy ? -1 : 1;
    return strcmp(x->task_id, y->task_id);
}

static void print_profile(const struct run_rec *run, const struct dag *dag,
                          const struct ti_rec *tis, size_t n, const struct profile *p, bool all)
{
    char wall[16], b1[16], b2[16];
    out_duration(p->wall_ms, wall, sizeof wall);
    bool so_far = !run_state_finished(run->state);
    printf("run %s (dag %s): %s, wall %s%s, %zu task instances\n", run->run_id, run->dag_id,
           run_state_name(run->state), wall, so_far ? " so far" : "", n);
    if (so_far)
        puts("(the run is still running: its times are up to now, running tasks counted until "
             "now)");

    if (p->npath && dag) {
        const struct profile_task *first = &p->tasks[p->path[0]];
        const struct profile_task *last = &p->tasks[p->path[p->npath - 1]];
        out_duration(span_ms(first->started_at_ms >= 0 ? first->started_at_ms : p->begin_at_ms,
                             last->ended_at_ms),
                     b1, sizeof b1);
        printf("\ncritical path (%s of %s):\n  ", b1, wall);
        for (size_t i = 0; i < p->npath; i++) {
            const struct profile_task *t = &p->tasks[p->path[i]];
            out_duration(span_ms(t->started_at_ms, t->ended_at_ms), b2, sizeof b2);
            if (t->ninstances > 1)
                printf("%s%s (x%u, %s)", i ? " -> " : "", dag->tasks[p->path[i]].name,
                       t->ninstances, b2);
            else
                printf("%s%s (%s)", i ? " -> " : "", dag->tasks[p->path[i]].name, b2);
        }
        putchar('\n');
        /* Time on the path not spent running its tasks: scheduling and waiting for slots. */
        int64_t ran = 0;
        for (size_t i = 0; i < p->npath; i++) {
            const struct profile_task *t = &p->tasks[p->path[i]];
            ran += span_ms(t->started_at_ms, t->ended_at_ms) > 0 ? t->ended_at_ms - t->started_at_ms
                                                                 : 0;
        }
        int64_t pathspan = span_ms(first->started_at_ms, last->ended_at_ms);
        if (pathspan > 0 && pathspan - ran > 0) {
            out_duration(ran, b1, sizeof b1);
            out_duration(pathspan - ran, b2, sizeof b2);
            printf("  (tasks ran %s of it; %s between them: scheduling and waiting for a slot)\n",
                   b1, b2);
        }
    } else if (!dag) {
        puts("\ncritical path: unknown (the DAG version of this run is not stored)");
    }

    out_duration(p->sum_run_ms, b1, sizeof b1);
    printf("\nparallelism: max %u at once, average %.1f (task time %s over wall %s)\n",
           p->max_parallel, p->avg_parallel, b1, wall);
    int64_t slot = 0;
    for (size_t i = 0; i < n; i++)
        slot += span_ms(tis[i].scheduled_at_ms, tis[i].queued_at_ms) > 0
                    ? tis[i].queued_at_ms - tis[i].scheduled_at_ms
                    : 0;
    out_duration(slot, b1, sizeof b1);
    out_duration(p->sum_wait_ms, b2, sizeof b2);
    printf("waiting: %s for a free slot (scheduled -> queued), %s to start (queued -> running),"
           " in total\n",
           b1, b2);

    size_t *idx = xcalloc(n ? n : 1, sizeof *idx);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    qsort_r(idx, n, sizeof *idx, by_run_time, (void *)tis);
    size_t shown = all ? n : (n < PROFILE_SLOWEST ? n : PROFILE_SLOWEST);
    int wt = 4;
    for (size_t i = 0; i < shown; i++) {
        int l = (int)strlen(tis[idx[i]].task_id);
        wt = l > wt ? l : wt;
    }
    printf("\n%s:\n  %-*s  %8s  %8s  %8s  %s\n",
           all ? "task instances by run time" : "slowest tasks", wt, "TASK", "RUN", "WAIT", "SLOT",
           "STATE");
    for (size_t i = 0; i < shown; i++) {
        const struct ti_rec *t = &tis[idx[i]];
        char b3[16];
        out_duration(span_ms(t->started_at_ms, t->ended_at_ms), b1, sizeof b1);
        out_duration(span_ms(t->queued_at_ms, t->started_at_ms), b2, sizeof b2);
        out_duration(span_ms(t->scheduled_at_ms, t->queued_at_ms), b3, sizeof b3);
        printf("  %-*s  %8s  %8s  %8s  %s\n", wt, t->task_id, b1, b2, b3, ti_state_name(t->state));
    }
    if (shown < n)
        printf("  (%zu more; --all lists every instance)\n", n - shown);
    free(idx);
}

static json_t *profile_json(const struct run_rec *run, const struct dag *dag,
                            const struct ti_rec *tis, size_t n, const struct profile *p)
{
    json_t *o = json_object();
    json_object_set_new(o, "dag", json_string(run->dag_id));
    json_object_set_new(o, "run_id", json_string(run->run_id));
    json_object_set_new(o, "state", json_string(run_state_name(run->state)));
    /* still running: every time is up to now */
    json_object_set_new(o, "in_progress", json_boolean(!run_state_finished(run->state)));
    json_object_set_new(o, "wall_s", seconds_json(p->wall_ms));
    json_t *path = json_array();
    for (size_t i = 0; dag && i < p->npath; i++) {
        const struct profile_task *t = &p->tasks[p->path[i]];
        json_t *e = json_object();
        json_object_set_new(e, "task", json_string(dag->tasks[p->path[i]].name));
        json_object_set_new(e, "instances", json_integer(t->ninstances));
        json_object_set_new(e, "duration_s",
                            seconds_json(span_ms(t->started_at_ms, t->ended_at_ms)));
        json_object_set_new(e, "wait_s", seconds_json(span_ms(t->queued_at_ms, t->started_at_ms)));
        json_array_append_new(path, e);
    }
    json_object_set_new(o, "critical_path", dag ? path : json_null());
    if (!dag)
        json_decref(path);
    json_t *par = json_object();
    json_object_set_new(par, "max", json_integer(p->max_parallel));
    json_object_set_new(par, "average", json_real(p->avg_parallel));
    json_object_set_new(o, "parallelism", par);
    json_object_set_new(o, "run_s_total", seconds_json(p->sum_run_ms));
    json_object_set_new(o, "wait_s_total", seconds_json(p->sum_wait_ms));
    json_t *tasks = json_object();
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "state", json_string(ti_state_name(tis[i].state)));
        json_object_set_new(e, "wait_s",
                            seconds_json(span_ms(tis[i].queued_at_ms, tis[i].started_at_ms)));
        json_object_set_new(e, "run_s",
                            seconds_json(span_ms(tis[i].started_at_ms, tis[i].ended_at_ms)));
        json_object_set_new(e, "slot_wait_s",
                            seconds_json(span_ms(tis[i].scheduled_at_ms, tis[i].queued_at_ms)));
        json_object_set_new(tasks, tis[i].task_id, e);
    }
    json_object_set_new(o, "tasks", tasks);
    return o;
}

/* The DAG version the run started with, or NULL (not stored, or no longer loadable). */
static struct dag *load_run_dag(struct store *s, const struct run_rec *run)
{
    char *src = NULL;
    size_t len = 0;
    if (!run->dag_hash || store_get_dag_version(s, run->dag_hash, &src, &len, NULL) < 0)
        return NULL;
    struct diag d;
    diag_init(&d);
    struct dag *dag = dag_load_mem(src, len, run->dag_path ? run->dag_path : "dag.yaml", &d);
    diag_release(&d);
    free(src);
    return dag;
}

static int runs_profile(struct home *h, const char *run_id, bool json, bool all)
{
    struct store *s;
    if (open_store(h, "runs profile", &s) < 0)
        return EXIT_USAGE;
    struct run_rec run;
    struct ti_rec *tis = NULL;
    size_t n = 0;
    int ret = load_run(s, "runs profile", run_id, &run, &tis, &n);
    if (ret != EXIT_OK) {
        store_close(s);
        return ret;
    }
    struct dag *dag = load_run_dag(s, &run);
    /* A run still going is profiled up to now: its wall time so far, and its running
     * instances as if they ended now (their run time so far, their share of parallelism). */
    int64_t until_ms = run.ended_at_ms;
    if (!run_state_finished(run.state)) {
        until_ms = when_now_ms();
        for (size_t i = 0; i < n; i++)
            if (tis[i].state == TI_RUNNING && tis[i].started_at_ms >= 0 && tis[i].ended_at_ms < 0)
                tis[i].ended_at_ms =
                    until_ms > tis[i].started_at_ms ? until_ms : tis[i].started_at_ms;
    }
    /* Without the DAG there are no edges: one vertex per instance, so times still add up. */
    struct graph nograph = {0};
    const struct graph *g = dag ? &dag->graph : &nograph;
    struct profile_ti *pt = xcalloc(n ? n : 1, sizeof *pt);
    size_t np = 0;
    if (!dag && graph_build(&nograph, (uint32_t)n, NULL, 0) < 0)
        n = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t task = (uint32_t)i;
        if (dag && !dag_find(dag, tis[i].task ? tis[i].task : tis[i].task_id, &task))
            continue;
        pt[np++] = (struct profile_ti){task, tis[i].queued_at_ms, tis[i].started_at_ms,
                                       tis[i].ended_at_ms};
    }
    struct profile p;
    if (profile_compute(g, pt, np, run.started_at_ms, until_ms, &p) < 0) {
        fprintf(stderr, "baram runs profile: inconsistent run record\n");
        ret = EXIT_FAILED;
    } else if (json) {
        json_t *o = profile_json(&run, dag, tis, n, &p);
        if (out_json_print(stdout, o) < 0)
            ret = EXIT_FAILED;
        json_decref(o);
    } else {
        print_profile(&run, dag, tis, n, &p, all);
    }
    profile_release(&p);
    free(pt);
    graph_release(&nograph);
    dag_free(dag);
    store_free_tis(tis, n);
    run_rec_release(&run);
    store_close(s);
    return ret;
}

/* ---- cancel: ops/ops.h ---- */

static int cancel_print(const char *run_id, const char *state, bool requested, bool json)
{
    if (json) {
        json_t *o =
            json_pack("{s:s, s:s, s:b}", "run_id", run_id, "state", state, "requested", requested);
        int r = out_json_print(stdout, o);
        json_decref(o);
        return r < 0 ? EXIT_FAILED : EXIT_OK;
    }
    if (requested)
        printf("requested cancel of %s: the scheduler has not confirmed it yet (see 'baram runs "
               "show %s')\n",
               run_id, run_id);
    else
        printf("cancelled %s\n", run_id);
    return EXIT_OK;
}

static int runs_cancel(struct home *h, const char *run_id, int wait_s, bool json)
{
    const char *cmd = "runs cancel";
    struct store *s;
    if (open_store(h, cmd, &s) < 0)
        return EXIT_USAGE;
    struct ops_err e = {0};
    struct ops_cancel c;
    int ret;
    if (ops_cancel(s, h->dir, home_dead_after_ms(h), run_id, (int64_t)wait_s * 1000, &c, &e) < 0) {
        ops_err_print(&e, stderr, cmd);
        ret = e.kind == OPS_NOT_FOUND ? EXIT_USAGE : EXIT_FAILED;
    } else {
        ret = cancel_print(run_id, run_state_name(c.state), c.requested, json);
        struct audit_who who;
        audit_who_cli(&who);
        (void)audit_record_run(s, &who, "cancel", run_id, NULL,
                               json_pack("{s:b}", "requested", c.requested));
    }
    ops_err_release(&e);
    store_close(s);
    return ret;
}

/* ---- mark: ops/ops.h ---- */

static int runs_mark(int argc, char **argv)
{
    const char *cmd = "runs mark";
    const char *home_flag = NULL, *pos[2];
    bool json = false;
    size_t npos;
    const struct args_flag flags[] = {
        {"json", ARGS_BOOL, &json, NULL, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    int r = args_parse(cmd, argc, argv, flags, ARRAY_SIZE(flags), pos, ARRAY_SIZE(pos), &npos);
    if (r == ARGS_HELP) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (r < 0)
        return EXIT_USAGE;
    if (npos != 2) {
        fputs("baram runs mark: expected RUN and success|failed; see 'baram runs --help'\n",
              stderr);
        return EXIT_USAGE;
    }
    enum run_state st;
    if (strcmp(pos[1], "success") == 0) {
        st = RUN_SUCCESS;
    } else if (strcmp(pos[1], "failed") == 0) {
        st = RUN_FAILED;
    } else {
        fprintf(stderr, "baram %s: bad state '%s': expected success or failed\n", cmd, pos[1]);
        return EXIT_USAGE;
    }
    const char *run_id = pos[0];
    struct home h = {0};
    struct store *s = NULL;
    struct ops_err e = {0};
    struct ops_mark m = {0};
    int ret = EXIT_USAGE;
    if (home_setup(&h, cmd, home_flag) < 0 || open_store(&h, cmd, &s) < 0)
        goto out;
    struct audit_who who; /* recorded with the mark, in its transaction */
    audit_who_cli(&who);
    if (ops_mark_run(s, h.dir, home_dead_after_ms(&h), run_id, st, &who, &m, &e) < 0) {
        ops_err_print(&e, stderr, cmd);
        ret = e.kind == OPS_NOT_FOUND || e.kind == OPS_BAD_INPUT ? EXIT_USAGE : EXIT_FAILED;
        goto out;
    }
    ret = EXIT_OK;
    if (json) {
        json_t *o = json_pack("{s:s, s:s, s:I, s:b}", "run_id", run_id, "state",
                              run_state_name(m.requested ? m.run_state : st), "task_instances",
                              (json_int_t)m.nrows, "requested", m.requested);
        if (out_json_print(stdout, o) < 0)
            ret = EXIT_FAILED;
        json_decref(o);
    } else if (m.requested) {
        printf("mark of run %s as %s requested: the scheduler stops its tries and ends it\n",
               run_id, run_state_name(st));
    } else {
        printf("marked run %s as %s (%zu task instance%s)\n", run_id, run_state_name(st), m.nrows,
               m.nrows == 1 ? "" : "s");
    }
out:
    ops_mark_release(&m);
    ops_err_release(&e);
    store_close(s);
    home_release(&h);
    return ret;
}

int cmd_runs(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "mark") == 0)
        return runs_mark(argc - 1, argv + 1);
    static const char *const subs[] = {"list", "show", "profile", "cancel", "mark"};
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    bool known = false;
    for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
        known |= strcmp(sub, subs[i]) == 0;
    if (!known) {
        const char *near = suggest_closest(sub, subs, ARRAY_SIZE(subs));
        if (near)
            fprintf(stderr, "baram runs: unknown command '%s' (did you mean '%s'?)\n", sub, near);
        else
            fprintf(stderr, "baram runs: unknown command '%s'; see 'baram runs --help'\n", sub);
        return EXIT_USAGE;
    }

    const char *home_flag = NULL, *limit_s = NULL, *wait_s = NULL, *pos[1];
    const char *state_s = NULL, *from_s = NULL, *to_s = NULL;
    bool json = false, all = false;
    size_t npos;
    bool is_list = strcmp(sub, "list") == 0, is_profile = strcmp(sub, "profile") == 0;
    bool is_cancel = strcmp(sub, "cancel") == 0;
    struct args_flag flags[6] = {
        {"json", ARGS_BOOL, &json, NULL, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    size_t nflags = 2;
    if (is_list) {
        flags[nflags++] = (struct args_flag){"limit", ARGS_STRING, NULL, &limit_s, NULL};
        flags[nflags++] = (struct args_flag){"state", ARGS_STRING, NULL, &state_s, NULL};
        flags[nflags++] = (struct args_flag){"from", ARGS_STRING, NULL, &from_s, NULL};
        flags[nflags++] = (struct args_flag){"to", ARGS_STRING, NULL, &to_s, NULL};
    }
    if (is_profile)
        flags[nflags++] = (struct args_flag){"all", ARGS_BOOL, &all, NULL, NULL};
    if (is_cancel)
        flags[nflags++] = (struct args_flag){"wait", ARGS_STRING, NULL, &wait_s, NULL};
    char cmd[32];
    snprintf(cmd, sizeof cmd, "runs %s", sub);
    int r = args_parse(cmd, argc - 1, argv + 1, flags, nflags, pos, ARRAY_SIZE(pos), &npos);
    if (r == ARGS_HELP) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (r < 0)
        return EXIT_USAGE;
    int limit = RUNS_LIST_DEFAULT_LIMIT;
    if (limit_s && args_int(cmd, "--limit", limit_s, 1, 1000000, &limit) < 0)
        return EXIT_USAGE;
    int wait = 10;
    if (wait_s && args_int(cmd, "--wait", wait_s, 0, 3600, &wait) < 0)
        return EXIT_USAGE;
    struct run_filter filter;
    static const char *const names[4] = {"--state", "--from", "--to", "DAG"};
    struct err fe = {0};
    if (is_list &&
        runfilter_parse(&filter, npos ? pos[0] : NULL, state_s, from_s, to_s, names, &fe) < 0) {
        fprintf(stderr, "baram %s: %s\n", cmd, err_msg(&fe));
        return EXIT_USAGE;
    }
    if (!is_list && npos != 1) {
        fprintf(stderr, "baram %s: expected a run id; see 'baram runs --help'\n", cmd);
        return EXIT_USAGE;
    }

    struct home h;
    if (home_setup(&h, cmd, home_flag) < 0) {
        home_release(&h);
        return EXIT_USAGE;
    }
    int ret;
    if (is_list)
        ret = runs_list(&h, &filter, limit, json);
    else if (is_profile)
        ret = runs_profile(&h, pos[0], json, all);
    else if (is_cancel)
        ret = runs_cancel(&h, pos[0], wait, json);
    else
        ret = runs_show(&h, pos[0], json);
    home_release(&h);
    return ret;
}
