/*
 * cmd_tasks.c - `baram tasks test FILE TASK` (SPEC section 3): runs one task
 * now, outside any run and without the store, its output going to the
 * terminal (run_task_test in sched/run.h): a process, or an http request
 * (its response body on stdout) or a wait, with the scheduler's code; a
 * failure is said as `baram run` says it. Exit 0 on success or skip, 1 on
 * failure, 2 for bad input (invalid DAG, unknown task with a did-you-mean,
 * bad params or date).
 *
 * `baram tasks clear RUN TASK [--downstream]`: makes an ended run run
 * those tasks again, through ops_clear (ops/ops.h, shared with the
 * API). It loads the DAG version the run started with (from
 * the store), resets the tasks' instances (an unmapped task's row to none,
 * keeping its try count and granting it a full set of tries; a mapped
 * task's rows deleted, to be expanded again) and puts the run back to
 * queued, all in one transaction; the scheduler resumes it like any
 * unfinished run. A run the scheduler is running is cleared by the
 * scheduler itself, on request, once the run's tries in flight have ended
 * (see ops_clear). Main thread.
 */
#include "cli/cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/diag.h"
#include "base/err.h"
#include "base/suggest.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/home.h"
#include "cli/out.h"
#include "dag/dag.h"
#include "dag/params.h"
#include "ops/audit.h"
#include "ops/ops.h"
#include "sched/run.h"
#include "store/store.h"

static const char usage[] =
    "usage: baram tasks test FILE TASK [--date YYYY-MM-DD] [--param NAME=VALUE]...\n"
    "       baram tasks clear RUN TASK [--downstream] [--json]\n"
    "       baram tasks mark RUN TASK success|failed [--downstream] [--json]\n"
    "\n"
    "test: runs one task of the DAG in FILE now, outside any run, with its output on the\n"
    "terminal (an http task's response on stdout); nothing is recorded. Outputs of upstream\n"
    "tasks are empty.\n"
    "exit status: 0 success or skipped, 1 the task failed, 2 bad input\n"
    "\n"
    "clear: resets TASK (and with --downstream every task downstream of it) in run RUN and\n"
    "queues the run again, so the scheduler ('baram standalone') runs them again. A run the\n"
    "scheduler is running goes on after: it starts none of the run's tasks until the tries\n"
    "running now have ended, then clears and resumes it (an instance to clear may not be\n"
    "running itself).\n"
    "exit status: 0 cleared or requested, 1 an instance to clear is running, a foreground\n"
    "'baram run' or the database failed, 2 usage error, unknown run or task\n"
    "\n"
    "mark: sets TASK (and with --downstream every task downstream of it) in run RUN to\n"
    "success or failed, whatever its state; a try still running is stopped. On a run the\n"
    "scheduler is running, it stops those tries, lets the run's other tries in flight end,\n"
    "then applies the mark and the run goes on (it ends once its last tasks are done). An\n"
    "ended run keeps its state. Recorded in the audit log ('baram audit list').\n"
    "exit status: 0 marked or requested, 1 a foreground 'baram run' or the database failed,\n"
    "2 usage error, unknown run or task\n";

static void unknown_task(const char *cmd, const struct dag *dag, const char *path, const char *name)
{
    const char **names = xcalloc(dag->ntasks ? dag->ntasks : 1, sizeof *names);
    for (uint32_t i = 0; i < dag->ntasks; i++)
        names[i] = dag->tasks[i].name;
    const char *near = suggest_closest(name, names, dag->ntasks);
    if (near)
        fprintf(stderr, "baram %s: no task '%s' in '%s' (did you mean '%s'?)\n", cmd, name, path,
                near);
    else
        fprintf(stderr, "baram %s: no task '%s' in '%s'\n", cmd, name, path);
    free(names);
}

static int tasks_test(int argc, char **argv)
{
    const char *date = NULL, *home_flag = NULL, *pos[2];
    struct args_list plist = {0};
    size_t npos;
    const struct args_flag flags[] = {
        {"param", ARGS_LIST, NULL, NULL, &plist},
        {"date", ARGS_STRING, NULL, &date, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    struct params_override *params = NULL;
    size_t nparams = 0;
    struct dag *dag = NULL;
    struct home h = {0};
    int ret = EXIT_USAGE;
    int r =
        args_parse("tasks test", argc, argv, flags, ARRAY_SIZE(flags), pos, ARRAY_SIZE(pos), &npos);
    if (r == ARGS_HELP) {
        fputs(usage, stdout);
        ret = EXIT_OK;
        goto out;
    }
    if (r < 0)
        goto out;
    if (npos != 2) {
        fputs("baram tasks test: expected FILE and TASK; see 'baram tasks --help'\n", stderr);
        goto out;
    }
    int64_t logical_at_ms = when_now_ms();
    if (date && args_date("tasks test", date, &logical_at_ms) < 0)
        goto out;
    if (args_params("tasks test", &plist, &params, &nparams) < 0)
        goto out;
    if (home_setup(&h, "tasks test", home_flag) < 0)
        goto out;
    dag = args_dag(pos[0], params, nparams);
    if (!dag)
        goto out;
    uint32_t task;
    if (!dag_find(dag, pos[1], &task)) {
        unknown_task("tasks test", dag, pos[0], pos[1]);
        goto out;
    }
    struct run_test_result res;
    struct err err = {0};
    int64_t t0 = when_mono_ms();
    fflush(stdout);
    r = run_task_test(dag, task, params, nparams, logical_at_ms, h.http_max_per_host, &res, &err);
    char dur[16];
    out_duration(when_mono_ms() - t0, dur, sizeof dur);
    if (r < 0) {
        fprintf(stderr, "baram tasks test: task '%s' could not run: %s\n", pos[1], err_msg(&err));
        ret = EXIT_FAILED;
        goto out;
    }
    if (res.output_len > 0) { /* an http task's response: its output, on stdout */
        fwrite(res.output, 1, res.output_len, stdout);
        if (res.output[res.output_len - 1] != '\n')
            fputc('\n', stdout);
        fflush(stdout);
    }
    if (res.skipped) {
        fprintf(stderr, "task '%s' skipped (exit 99) in %s\n", pos[1], dur);
        ret = EXIT_OK;
    } else if (res.ok) {
        fprintf(stderr, "task '%s' succeeded in %s\n", pos[1], dur);
        ret = EXIT_OK;
    } else {
        /* As `baram run` says it: the exit code alone, or what happened. */
        if (res.exit_code >= 0 && (!res.message || strncmp(res.message, "exit code ", 10) == 0))
            fprintf(stderr, "task '%s' failed (exit %d) in %s\n", pos[1], res.exit_code, dur);
        else
            fprintf(stderr, "task '%s' failed in %s: %s\n", pos[1], dur, res.message);
        ret = EXIT_FAILED;
    }
    run_test_result_release(&res);

out:
    dag_free(dag);
    home_release(&h);
    args_params_free(params, nparams);
    args_list_release(&plist);
    return ret;
}

/* ---- clear, mark: ops/ops.h ---- */

/* The flags and positional arguments of `tasks clear|mark`: want of them (expect says which
 * when they are not), --downstream, --json, --home. EXIT_OK to go on, else the exit code. */
static int run_task_args(const char *cmd, int argc, char **argv, const char **pos, size_t want,
                         const char *expect, bool *downstream, bool *json, const char **home_flag)
{
    size_t npos;
    const struct args_flag flags[] = {
        {"downstream", ARGS_BOOL, downstream, NULL, NULL},
        {"json", ARGS_BOOL, json, NULL, NULL},
        {"home", ARGS_STRING, NULL, home_flag, NULL},
    };
    int r = args_parse(cmd, argc, argv, flags, ARRAY_SIZE(flags), pos, want, &npos);
    if (r == ARGS_HELP) {
        fputs(usage, stdout);
        return ARGS_HELP;
    }
    if (r < 0)
        return EXIT_USAGE;
    if (npos != want) {
        fprintf(stderr, "baram %s: expected %s; see 'baram tasks --help'\n", cmd, expect);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* Loads the home and opens its store: EXIT_OK, or EXIT_USAGE after saying why. */
static int run_task_store(const char *cmd, const char *home_flag, struct home *h, struct store **s)
{
    struct err err = {0};
    if (home_setup(h, cmd, home_flag) < 0)
        return EXIT_USAGE;
    if (home_open_store(h, false, s, &err) < 0) {
        fprintf(stderr, "baram %s: %s\n", cmd, err_msg(&err));
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int tasks_clear(int argc, char **argv)
{
    const char *cmd = "tasks clear";
    const char *home_flag = NULL, *pos[2];
    bool downstream = false, json = false;
    int r = run_task_args(cmd, argc, argv, pos, 2, "RUN and TASK", &downstream, &json, &home_flag);
    if (r != EXIT_OK)
        return r == ARGS_HELP ? EXIT_OK : r;
    const char *run_id = pos[0], *task = pos[1];
    struct home h = {0};
    struct store *s = NULL;
    struct ops_err e = {0};
    struct ops_clear c = {0};
    int ret = EXIT_USAGE;
    if (run_task_store(cmd, home_flag, &h, &s) != EXIT_OK)
        goto out;
    if (ops_clear(s, h.dir, home_dead_after_ms(&h), run_id, task, downstream, &c, &e) < 0) {
        ops_err_print(&e, stderr, cmd);
        ret = e.kind == OPS_NOT_FOUND ? EXIT_USAGE : EXIT_FAILED;
        goto out;
    }
    ret = EXIT_OK;
    struct audit_who who;
    audit_who_cli(&who);
    (void)audit_record_run(
        s, &who, "clear", run_id, task,
        json_pack("{s:b, s:b}", "downstream", downstream, "requested", c.requested));
    if (json) {
        json_t *names = json_array();
        for (size_t i = 0; i < c.ntasks; i++)
            json_array_append_new(names, json_string(c.tasks[i]));
        json_t *o =
            c.requested
                ? json_pack("{s:s, s:o, s:b}", "run_id", run_id, "cleared", names, "requested", 1)
                : json_pack("{s:s, s:o, s:I, s:s}", "run_id", run_id, "cleared", names,
                            "task_instances", (json_int_t)c.nrows, "state", "queued");
        if (out_json_print(stdout, o) < 0)
            ret = EXIT_FAILED;
        json_decref(o);
    } else if (c.requested) {
        printf("clear of");
        for (size_t i = 0; i < c.ntasks; i++)
            printf("%s %s", i ? "," : "", c.tasks[i]);
        printf(" in run %s requested: the scheduler starts none of the run's tasks until its "
               "tries running now have ended, then clears them and goes on\n",
               run_id);
    } else {
        printf("cleared");
        for (size_t i = 0; i < c.ntasks; i++)
            printf("%s %s", i ? "," : "", c.tasks[i]);
        printf(" in run %s (%zu task instance%s); the run is queued again\n", run_id, c.nrows,
               c.nrows == 1 ? "" : "s");
    }
    if (!c.requested && !ops_scheduler_running(s, h.dir, home_dead_after_ms(&h)))
        fprintf(stderr,
                "baram %s: no scheduler is running on %s: the run resumes when `baram "
                "standalone` starts\n",
                cmd, h.dir);
out:
    ops_clear_release(&c);
    ops_err_release(&e);
    store_close(s);
    home_release(&h);
    return ret;
}

static int tasks_mark(int argc, char **argv)
{
    const char *cmd = "tasks mark";
    const char *home_flag = NULL, *pos[3];
    bool downstream = false, json = false;
    int r = run_task_args(cmd, argc, argv, pos, 3, "RUN, TASK and success|failed", &downstream,
                          &json, &home_flag);
    if (r != EXIT_OK)
        return r == ARGS_HELP ? EXIT_OK : r;
    const char *run_id = pos[0], *task = pos[1];
    enum ti_state st;
    if (strcmp(pos[2], "success") == 0) {
        st = TI_SUCCESS;
    } else if (strcmp(pos[2], "failed") == 0) {
        st = TI_FAILED;
    } else {
        fprintf(stderr, "baram %s: bad state '%s': expected success or failed\n", cmd, pos[2]);
        return EXIT_USAGE;
    }
    struct home h = {0};
    struct store *s = NULL;
    struct ops_err e = {0};
    struct ops_mark m = {0};
    int ret = EXIT_USAGE;
    if (run_task_store(cmd, home_flag, &h, &s) != EXIT_OK)
        goto out;
    struct audit_who who; /* recorded with the mark, in its transaction */
    audit_who_cli(&who);
    if (ops_mark_task(s, h.dir, home_dead_after_ms(&h), run_id, task, st, downstream, &who, &m,
                      &e) < 0) {
        ops_err_print(&e, stderr, cmd);
        ret = e.kind == OPS_NOT_FOUND || e.kind == OPS_BAD_INPUT ? EXIT_USAGE : EXIT_FAILED;
        goto out;
    }
    ret = EXIT_OK;
    json_t *names = json_array();
    for (size_t i = 0; i < m.ntasks; i++)
        json_array_append_new(names, json_string(m.tasks[i]));
    if (json) {
        json_t *o =
            json_pack("{s:s, s:s, s:o, s:I, s:b, s:s}", "run_id", run_id, "state",
                      ti_state_name(st), "marked", names, "task_instances", (json_int_t)m.nrows,
                      "requested", m.requested, "run_state", run_state_name(m.run_state));
        names = NULL;
        if (out_json_print(stdout, o) < 0)
            ret = EXIT_FAILED;
        json_decref(o);
    } else {
        printf("%s", m.requested ? "mark of" : "marked");
        for (size_t i = 0; i < m.ntasks; i++)
            printf("%s %s", i ? "," : "", m.tasks[i]);
        if (m.requested)
            printf(" in run %s as %s requested: the scheduler stops their tries and applies it\n",
                   run_id, ti_state_name(st));
        else
            printf(" in run %s as %s (%zu task instance%s)\n", run_id, ti_state_name(st), m.nrows,
                   m.nrows == 1 ? "" : "s");
    }
    json_decref(names);
out:
    ops_mark_release(&m);
    ops_err_release(&e);
    store_close(s);
    home_release(&h);
    return ret;
}

int cmd_tasks(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (strcmp(sub, "test") == 0)
        return tasks_test(argc - 1, argv + 1);
    if (strcmp(sub, "clear") == 0)
        return tasks_clear(argc - 1, argv + 1);
    if (strcmp(sub, "mark") == 0)
        return tasks_mark(argc - 1, argv + 1);
    static const char *const subs[] = {"test", "clear", "mark"};
    const char *near = suggest_closest(sub, subs, ARRAY_SIZE(subs));
    if (near)
        fprintf(stderr, "baram tasks: unknown command '%s' (did you mean '%s'?)\n", sub, near);
    else
        fprintf(stderr, "baram tasks: unknown command '%s'; see 'baram tasks --help'\n", sub);
    return EXIT_USAGE;
}
