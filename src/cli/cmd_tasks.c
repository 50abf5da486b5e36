/*
 * cmd_tasks.c - `baram tasks test FILE TASK` (SPEC section 3): runs one task
 * now, outside any run and without the store, its output going to the
 * terminal (run_task_test in sched/run.h). Exit 0 on success or skip, 1 on
 * failure, 2 for bad input (invalid DAG, unknown task with a did-you-mean,
 * bad params or date). `tasks clear` needs the scheduler daemon and is not
 * there yet. Main thread.
 */
#include "cli/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/suggest.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/home.h"
#include "cli/out.h"
#include "dag/dag.h"
#include "sched/run.h"

static const char usage[] =
    "usage: baram tasks test FILE TASK [--date YYYY-MM-DD] [--param NAME=VALUE]...\n"
    "\n"
    "Runs one task of the DAG in FILE now, outside any run, with its output on the terminal;\n"
    "nothing is recorded. Outputs of upstream tasks are empty.\n"
    "\n"
    "exit status: 0 success or skipped, 1 the task failed, 2 bad input\n";

static void unknown_task(const struct dag *dag, const char *path, const char *name)
{
    const char **names = xcalloc(dag->ntasks ? dag->ntasks : 1, sizeof *names);
    for (uint32_t i = 0; i < dag->ntasks; i++)
        names[i] = dag->tasks[i].name;
    const char *near = suggest_closest(name, names, dag->ntasks);
    if (near)
        fprintf(stderr, "baram tasks test: no task '%s' in '%s' (did you mean '%s'?)\n", name, path,
                near);
    else
        fprintf(stderr, "baram tasks test: no task '%s' in '%s'\n", name, path);
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
    struct run_param *params = NULL;
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
        unknown_task(dag, pos[0], pos[1]);
        goto out;
    }
    int exit_code = -1;
    char *err = NULL;
    int64_t t0 = when_mono_ms();
    fflush(stdout);
    r = run_task_test(dag, task, params, nparams, logical_at_ms, &exit_code, &err);
    char dur[16];
    out_duration(when_mono_ms() - t0, dur, sizeof dur);
    if (r < 0) {
        fprintf(stderr, "baram tasks test: task '%s' could not run: %s\n", pos[1],
                err ? err : err_str(r));
        free(err);
        ret = EXIT_FAILED;
        goto out;
    }
    free(err);
    if (exit_code == 0) {
        fprintf(stderr, "task '%s' succeeded in %s\n", pos[1], dur);
        ret = EXIT_OK;
    } else if (exit_code == 99) {
        fprintf(stderr, "task '%s' skipped (exit 99) in %s\n", pos[1], dur);
        ret = EXIT_OK;
    } else {
        if (exit_code >= 0)
            fprintf(stderr, "task '%s' failed (exit %d) in %s\n", pos[1], exit_code, dur);
        else
            fprintf(stderr, "task '%s' failed (killed) in %s\n", pos[1], dur);
        ret = EXIT_FAILED;
    }

out:
    dag_free(dag);
    home_release(&h);
    args_params_free(params, nparams);
    args_list_release(&plist);
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
    if (strcmp(sub, "clear") == 0) {
        fputs("baram tasks clear: not available yet (needs 'baram standalone')\n", stderr);
        return EXIT_USAGE;
    }
    static const char *const subs[] = {"test", "clear"};
    const char *near = suggest_closest(sub, subs, ARRAY_SIZE(subs));
    if (near)
        fprintf(stderr, "baram tasks: unknown command '%s' (did you mean '%s'?)\n", sub, near);
    else
        fprintf(stderr, "baram tasks: unknown command '%s'; see 'baram tasks --help'\n", sub);
    return EXIT_USAGE;
}
