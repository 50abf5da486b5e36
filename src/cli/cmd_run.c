/*
 * cmd_run.c - `baram run FILE`: runs one DAG file to completion in the
 * foreground as a manual run recorded in the home's database (SPEC section
 * 3). Everything the user gave is checked before anything is written: flags,
 * the date, the DAG file (GCC-style diagnostics) and the params; only then
 * is the home created and the run started. Exit 0 when the run succeeded,
 * 1 when it failed or was cancelled, 2 for bad input.
 *
 * Progress goes to stderr (progress.c); the result goes to stdout: a summary
 * line for people, or with --json exactly one JSON object (out.c). Main
 * thread; the progress callback runs on the run's loop thread while the main
 * thread is blocked in run_execute.
 */
#include "cli/cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/home.h"
#include "cli/out.h"
#include "cli/progress.h"
#include "dag/dag.h"
#include "dag/params.h"
#include "sched/run.h"
#include "store/store.h"

static const char usage[] =
    "usage: baram run FILE [--param NAME=VALUE]... [--date YYYY-MM-DD] [--parallelism N]\n"
    "                 [--json] [--quiet] [--home DIR]\n"
    "\n"
    "Runs the DAG in FILE to completion as a manual run recorded in the home's database.\n"
    "\n"
    "  --param NAME=VALUE  override a param of the DAG (repeatable); a typed param's VALUE\n"
    "                      is converted to its type (5, true, [1,2]) and checked\n"
    "  --date YYYY-MM-DD   the logical date ({{ ds }}); default today (UTC)\n"
    "  --parallelism N     task instances running at once (default: config, 32)\n"
    "  --json              print the run as one JSON object on stdout at the end\n"
    "  --quiet             no progress on stderr\n"
    "  --home DIR          the home (default $BARAM_HOME or ./.baram)\n"
    "\n"
    "exit status: 0 the run succeeded, 1 it failed or was cancelled, 2 bad input\n";

/* Prints `baram logs RUN TASK` (with --home when it was given) for the user to copy. */
static void print_logs_hint(FILE *f, const struct home *h, const char *run_id, const char *task)
{
    char *t = out_shell_quote(task);
    fprintf(f, "  see: baram logs %s %s", run_id, t);
    free(t);
    if (h->from_flag) {
        char *d = out_shell_quote(h->dir);
        fprintf(f, " --home %s", d);
        free(d);
    }
    fputc('\n', f);
}

/* The human summary: one line, then one line per failed instance with where to look. */
static void print_summary(FILE *f, const struct home *h, const struct run_rec *run,
                          const struct ti_rec *tis, size_t n)
{
    size_t count[TI_STATE_COUNT] = {0};
    for (size_t i = 0; i < n; i++)
        count[tis[i].state]++;
    char dur[16];
    out_duration(run->started_at_ms >= 0 && run->ended_at_ms >= run->started_at_ms
                     ? run->ended_at_ms - run->started_at_ms
                     : -1,
                 dur, sizeof dur);
    struct buf b = BUF_INIT(4096);
    for (int s = 0; s < TI_STATE_COUNT; s++)
        if (count[s])
            (void)!buf_addf(&b, ", %zu %s", count[s], ti_state_name((enum ti_state)s));
    fprintf(f, "run %s %s in %s (%zu task%s%s%s)\n", run->run_id, run_state_name(run->state), dur,
            n, n == 1 ? "" : "s", b.len ? ":" : "", b.len ? b.data + 1 : "");
    buf_release(&b);
    for (size_t i = 0; i < n; i++) {
        const struct ti_rec *t = &tis[i];
        if (t->state != TI_FAILED)
            continue;
        char code[32] = "";
        if (t->exit_code >= 0)
            snprintf(code, sizeof code, "exit %d, ", t->exit_code);
        /* The message adds nothing when it only repeats the exit code. */
        const char *msg =
            t->message && strncmp(t->message, "exit code ", 10) != 0 ? t->message : NULL;
        fprintf(f, "failed: %s (%stry %d/%d)%s%s\n", t->task_id, code, t->try_number, t->max_tries,
                msg ? ": " : "", msg ? msg : "");
        if (t->try_number > 0)
            print_logs_hint(f, h, run->run_id, t->task_id);
    }
}

/* After the run: read it back from the store and print the result. */
static int report(const struct home *h, const char *run_id, bool json)
{
    struct err se = {0};
    struct store *s = NULL;
    struct err err = {0};
    int r = home_open_store(h, false, &s, &err);
    if (r < 0) {
        fprintf(stderr, "baram run: cannot read the run back: %s\n", err_msg(&err));
        return r;
    }
    if (json) {
        json_t *o = NULL;
        r = out_run_load(s, run_id, &o);
        if (r == 0) {
            r = out_json_print(stdout, o);
            json_decref(o);
        }
    } else {
        struct run_rec run;
        r = store_get_run(s, run_id, &run, &se);
        if (r == 0) {
            struct ti_rec *tis = NULL;
            size_t n = 0;
            r = store_list_tis(s, run_id, &tis, &n, &se);
            if (r == 0)
                print_summary(stdout, h, &run, tis, n);
            store_free_tis(tis, n);
            run_rec_release(&run);
        }
    }
    if (r < 0)
        fprintf(stderr, "baram run: cannot read run '%s' back: %s\n", run_id, err_msg(&se));
    store_close(s);
    return r;
}

int cmd_run(int argc, char **argv)
{
    const char *home_flag = NULL, *date = NULL, *par = NULL, *pos[1];
    bool json = false, quiet = false;
    struct args_list plist = {0};
    size_t npos;
    const struct args_flag flags[] = {
        {"param", ARGS_LIST, NULL, NULL, &plist},
        {"date", ARGS_STRING, NULL, &date, NULL},
        {"parallelism", ARGS_STRING, NULL, &par, NULL},
        {"json", ARGS_BOOL, &json, NULL, NULL},
        {"quiet", ARGS_BOOL, &quiet, NULL, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    struct params_override *params = NULL;
    size_t nparams = 0;
    struct home h = {0};
    struct dag *dag = NULL;
    int ret = EXIT_USAGE;

    int r = args_parse("run", argc, argv, flags, ARRAY_SIZE(flags), pos, ARRAY_SIZE(pos), &npos);
    if (r == ARGS_HELP) {
        fputs(usage, stdout);
        ret = EXIT_OK;
        goto out;
    }
    if (r < 0)
        goto out;
    if (npos != 1) {
        fputs("baram run: expected one DAG file; see 'baram run --help'\n", stderr);
        goto out;
    }
    int64_t logical_at_ms = when_now_ms();
    if (date && args_date("run", date, &logical_at_ms) < 0)
        goto out;
    int parallelism = 0;
    if (par && args_int("run", "--parallelism", par, 1, HOME_PARALLELISM_MAX, &parallelism) < 0)
        goto out;
    if (args_params("run", &plist, &params, &nparams) < 0)
        goto out;
    if (home_setup(&h, "run", home_flag) < 0)
        goto out;
    if (!parallelism)
        parallelism = h.parallelism;

    dag = args_dag(pos[0], params, nparams);
    if (!dag)
        goto out;

    struct err err = {0};
    if (home_create(&h, &err) < 0) {
        fprintf(stderr, "baram run: %s\n", err_msg(&err));
        goto out;
    }

    struct progress prog;
    progress_init(&prog, stderr, isatty(STDERR_FILENO) == 1, quiet, true);
    struct run_pool *pools = xcalloc(h.npools + 1, sizeof *pools);
    for (size_t i = 0; i < h.npools; i++) {
        pools[i].name = h.pools[i].name;
        pools[i].slots = h.pools[i].slots;
    }
    struct run_opts o = {
        .dag = dag,
        .pools = pools,
        .npools = h.npools,
        .store_url = h.db,
        .home = h.dir,
        .params = params,
        .nparams = nparams,
        .logical_at_ms = logical_at_ms,
        .type = RUN_MANUAL,
        .parallelism = parallelism,
        .http_max_per_host = h.http_max_per_host,
        .notifiers = h.notifiers,
        .nnotifiers = h.nnotifiers,
        .public_url = h.api.public_url,
        .progress = progress_update,
        .progress_ud = &prog,
        .handle_signals = true,
    };
    struct run_result res;
    memset(&res, 0, sizeof res);
    r = run_execute(&o, &res, &err);
    free(pools);
    progress_finish(&prog);
    progress_release(&prog);
    if (r < 0) {
        fprintf(stderr, "baram run: %s\n", err_msg(&err));
        ret = r == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
        goto out;
    }
    ret = res.state == RUN_SUCCESS ? EXIT_OK : EXIT_FAILED;
    if (report(&h, res.run_id, json) < 0)
        ret = EXIT_FAILED;

out:
    dag_free(dag);
    home_release(&h);
    args_params_free(params, nparams);
    args_list_release(&plist);
    return ret;
}
