/*
 * cmd_dags.c - `baram dags SUBCOMMAND` (SPEC section 3).
 *
 *  - validate PATH...: loads each DAG file through dag_load_file (a folder:
 *    every *.yaml and *.yml directly in it, in name order) and prints every
 *    diagnostic GCC-style on stderr and "FILE: ok (N tasks)" on stdout, or
 *    one JSON array with --json. Within one folder, two files may not share
 *    a dag id. Exit 0 all valid, 1 some file invalid, 2 usage error or a
 *    path that cannot be read.
 *  - list, show, pause, unpause, trigger, backfill: the home's DAG folder
 *    (dagdir_scan, the same rules as the daemon) plus the store. The CLI
 *    never talks to the daemon: the writing ones call ops/ops.h (the
 *    same functions as the API's write routes), which write the store
 *    (paused flags, queued runs) and ring the daemon's doorbell.
 *    Reading commands work without a database (nothing is paused, nothing
 *    ran); writing ones create the home and its database like `baram run`.
 *    An unknown DAG id is a usage error (2) with a did-you-mean among the
 *    folder's and the store's ids.
 *
 * Main thread; everything allocated here is freed here.
 */
#include "cli/cmd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/compiler.h"
#include "base/diag.h"
#include "base/err.h"
#include "base/suggest.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/home.h"
#include "cli/out.h"
#include "dag/cron.h"
#include "dag/dag.h"
#include "dag/params.h"
#include "ops/audit.h"
#include "ops/dagdir.h"
#include "ops/ops.h"
#include "ops/runjson.h"
#include "sched/run.h"
#include "store/store.h"

static const char usage_dags[] =
    "usage: baram dags SUBCOMMAND [ARGS]\n"
    "\n"
    "subcommands:\n"
    "  list [--json]                              the DAGs of the home's folder, import errors\n"
    "  show DAG [--json]                          a DAG: schedule, next run, params, tasks, runs\n"
    "  pause DAG | unpause DAG                    stop / resume scheduling it\n"
    "  trigger DAG [--conf JSON] [--date D]       queue a manual run\n"
    "  backfill DAG --from D --to D [--conf JSON] queue runs for past schedule dates\n"
    "  clear DAG --from D --to D [--task T] [--only-failed] [--dry-run]\n"
    "                                             run the tasks of past runs again\n"
    "  validate PATH... [--json]                  check DAG files (a folder: its *.yaml and "
    "*.yml files)\n"
    "  versions DAG [--json]                      the versions of a DAG the database holds\n"
    "\n"
    "  --home DIR  the home (default $BARAM_HOME or ./.baram); see 'baram dags SUB --help'\n";

static const char usage_clear[] =
    "usage: baram dags clear DAG --from D --to D [--task T] [--only-failed] [--dry-run] [--json]\n"
    "\n"
    "Clears the task instances of the ended runs of DAG whose logical dates are within\n"
    "[--from, --to] (YYYY-MM-DD or ISO 8601 UTC) so that they run again, each run in the DAG\n"
    "version it started with and queued again, like 'baram tasks clear' run by run, all in\n"
    "one transaction (a failure clears none). Runs that have not ended are listed as skipped\n"
    "(clear them with 'baram tasks clear'). No confirmation is asked (scripts call it):\n"
    "--dry-run lists what would be cleared.\n"
    "\n"
    "  --task T        only task T (not its downstream)\n"
    "  --only-failed   only failed and upstream_failed task instances\n"
    "  --dry-run       list what would be cleared, change nothing\n"
    "  --json          print "
    "{\"dag\",\"dry_run\",\"runs\":[{\"run_id\",\"logical_date\",\"tasks\",\n"
    "                  \"task_instances\",\"skipped\"}],\"task_instances\"}\n"
    "\n"
    "exit: 0 cleared (or nothing matched), 1 the database failed (nothing cleared), 2 usage\n"
    "error, unknown DAG or task, bad dates\n";

static const char usage_validate[] =
    "usage: baram dags validate PATH... [--json] [--debug]\n"
    "\n"
    "Checks DAG files without running them. A folder stands for every *.yaml and\n"
    "*.yml file directly in it. Problems go to stderr as FILE:LINE:COL: error: MESSAGE,\n"
    "good files to stdout as 'FILE: ok (N tasks)'.\n"
    "\n"
    "  --json    print {\"files\":[{\"file\",\"dag\",\"tasks\",\n"
    "                       \"errors\":[{\"line\",\"col\",\"message\"}]}]}\n"
    "  --debug   show where in baram each diagnostic was made\n"
    "\n"
    "exit: 0 all valid, 1 some file has errors, 2 usage error or unreadable path\n";

struct vstate {
    bool json, debug;
    json_t *arr; /* owned, --json only */
    int rc;
};

struct seen_id {
    char *id;   /* owned */
    char *file; /* owned */
};

static bool has_yaml_ext(const char *name)
{
    size_t n = strlen(name);
    return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Validates one file; seen (may be NULL) collects ids to catch duplicates within a folder. */
static void validate_file(struct vstate *st, const char *path, struct seen_id **seen, size_t *nseen)
{
    struct diag d;
    diag_init(&d);
    struct dag *dag = dag_load_file(path, &d);
    if (dag && dagdir_check_notify(dag, &d) > 0) {
        dag_free(dag);
        dag = NULL;
    }
    if (dag && seen) {
        for (size_t i = 0; i < *nseen; i++)
            if (strcmp((*seen)[i].id, dag->id) == 0) {
                diag_err(&d, path, 0, 0, "dag id '%s' is also used by '%s'", dag->id,
                         (*seen)[i].file);
                break;
            }
        if (d.errors == 0) {
            *seen = xrealloc(*seen, (*nseen + 1) * sizeof **seen);
            (*seen)[*nseen].id = xstrdup(dag->id);
            (*seen)[*nseen].file = xstrdup(path);
            (*nseen)++;
        }
    }
    bool ok = dag && d.errors == 0;
    if (!ok && st->rc == EXIT_OK)
        st->rc = EXIT_FAILED;
    if (st->json) {
        json_t *errs = json_array();
        for (size_t i = 0; i < d.n; i++) {
            const struct diag_entry *e = &d.v[i];
            json_t *o = json_pack("{s:i, s:i, s:s}", "line", e->line, "col", e->line ? e->col : 0,
                                  "message", e->msg);
            if (o && e->hint)
                json_object_set_new(o, "hint", json_string(e->hint));
            if (o)
                json_array_append_new(errs, o);
        }
        json_t *o = json_object();
        json_object_set_new(o, "file", json_string(path));
        json_object_set_new(o, "dag", ok ? json_string(dag->id) : json_null());
        json_object_set_new(o, "tasks", ok ? json_integer(dag->ntasks) : json_null());
        json_object_set_new(o, "errors", errs);
        json_array_append_new(st->arr, o);
    } else {
        diag_print(&d, stderr, st->debug);
        if (ok)
            printf("%s: ok (%u tasks)\n", path, dag->ntasks);
    }
    dag_free(dag);
    diag_release(&d);
}

static void validate_dir(struct vstate *st, const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp) {
        fprintf(stderr, "baram dags validate: cannot read folder '%s': %s\n", dir, strerror(errno));
        st->rc = EXIT_USAGE;
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.' || !has_yaml_ext(de->d_name))
            continue;
        xgrow((void **)&names, &cap, n + 1, sizeof *names);
        names[n++] = xstrdup(de->d_name);
    }
    closedir(dp);
    qsort(names, n, sizeof *names, cmp_str);
    struct seen_id *seen = NULL;
    size_t nseen = 0;
    size_t dl = strlen(dir);
    for (size_t i = 0; i < n; i++) {
        struct buf p = BUF_INIT(BUF_NO_MAX);
        int r = buf_addf(&p, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", names[i]);
        struct stat sb;
        if (r == 0 && stat(p.data, &sb) == 0 && S_ISREG(sb.st_mode))
            validate_file(st, p.data, &seen, &nseen);
        buf_release(&p);
        free(names[i]);
    }
    for (size_t i = 0; i < nseen; i++) {
        free(seen[i].id);
        free(seen[i].file);
    }
    free(seen);
    free(names);
}

/* notify: validating needs no home, but when the home has a baram.yaml its `notifiers` are
 * known and a hook naming another is an error, as the scheduler would find it. A home without
 * one (or with a config that does not load) leaves the names unchecked. */
static void validate_home_notifiers(const char *home_flag)
{
    struct home h;
    struct diag d;
    diag_init(&d);
    home_init(&h, home_flag);
    struct stat sb;
    bool have = stat(h.config_path, &sb) == 0;
    home_release(&h);
    if (have && home_load(&h, home_flag, &d) == 0)
        dagdir_set_notifiers(h.notifiers, h.nnotifiers);
    diag_release(&d);
    home_release(&h);
}

static int dags_validate(int argc, char **argv)
{
    struct vstate st = {.rc = EXIT_OK};
    const char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
    size_t npos = 0;
    const char *home = NULL; /* global flag, accepted everywhere; validating needs no home */
    const struct args_flag flags[] = {
        {"json", ARGS_BOOL, &st.json, NULL, NULL},
        {"debug", ARGS_BOOL, &st.debug, NULL, NULL},
        {"home", ARGS_STRING, NULL, &home, NULL},
    };
    int r =
        args_parse("dags validate", argc, argv, flags, ARRAY_SIZE(flags), pos, (size_t)argc, &npos);
    if (r == ARGS_HELP) {
        fputs(usage_validate, stdout);
        free(pos);
        return EXIT_OK;
    }
    if (r < 0 || npos == 0) {
        if (r == 0)
            fputs("baram dags validate: no PATH given\n", stderr);
        fputs(usage_validate, stderr);
        free(pos);
        return EXIT_USAGE;
    }
    if (st.json)
        st.arr = json_array();
    validate_home_notifiers(home);
    int usage_rc = EXIT_OK;
    for (size_t i = 0; i < npos; i++) {
        struct stat sb;
        if (stat(pos[i], &sb) < 0) {
            fprintf(stderr, "baram dags validate: cannot open '%s': %s\n", pos[i], strerror(errno));
            usage_rc = EXIT_USAGE;
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            validate_dir(&st, pos[i]);
            continue;
        }
        int fd = open(pos[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "baram dags validate: cannot open '%s': %s\n", pos[i], strerror(errno));
            usage_rc = EXIT_USAGE;
            continue;
        }
        close(fd);
        validate_file(&st, pos[i], NULL, NULL);
    }
    if (st.json) {
        /* An object, as every --json list prints. */
        json_t *o = json_pack("{s:o}", "files", st.arr);
        char *s = json_dumps(o, JSON_COMPACT);
        if (s) {
            puts(s);
            free(s);
        }
        json_decref(o);
    }
    free(pos);
    fflush(stdout);
    if (usage_rc != EXIT_OK || st.rc == EXIT_USAGE)
        return EXIT_USAGE;
    return st.rc;
}

/* ---- the home's DAG folder and the store ---- */

#define SHOW_RECENT_RUNS 5

static const char usage_list[] =
    "usage: baram dags list [--json]\n"
    "\n"
    "The DAGs of the home's folder ('dags' in baram.yaml, BARAM_DAGS; default ./dags): id,\n"
    "schedule, paused, tasks, last run, file; then the files that failed to load.\n"
    "\n"
    "  --json    print {\"dags\":[{\"dag_id\",\"file\",\"schedule\",\"paused\",\"description\",\n"
    "            \"tasks\",\"last_run\":{\"run_id\",\"state\"}|null}],\n"
    "            \"import_errors\":[{\"file\",\"line\",\"col\",\"message\"}]}\n"
    "\n"
    "exit: 0 (also with import errors, which are listed), 2 usage error or unreadable folder\n";

static const char usage_show[] =
    "usage: baram dags show DAG [--json]\n"
    "\n"
    "A DAG of the home's folder: file, description, schedule, start, end, catchup,\n"
    "max_active_runs, paused, its next scheduled run (as the API's DAG object), params, its\n"
    "tasks in topological order with what they need, and its recent runs.\n"
    "\n"
    "exit: 0, 2 usage error or unknown DAG\n";

static const char usage_pause[] =
    "usage: baram dags pause DAG | baram dags unpause DAG [--json]\n"
    "\n"
    "A paused DAG gets no new scheduled runs; runs already going go on. The flag is kept in\n"
    "the home's database, so it holds across restarts of the scheduler.\n"
    "\n"
    "exit: 0, 2 usage error or unknown DAG\n";

static const char usage_trigger[] =
    "usage: baram dags trigger DAG [--conf JSON] [--date D] [--json]\n"
    "\n"
    "Queues a manual run of the DAG for the scheduler ('baram standalone') and prints its id.\n"
    "\n"
    "  --conf JSON  params for the run, a JSON object of strings, numbers or booleans\n"
    "               (arrays and objects for params typed so): '{\"region\": \"us\", \"limit\": "
    "5}';\n"
    "               each value is checked against its param's type, enum, minimum, maximum\n"
    "               and pattern\n"
    "  --date D     logical date, YYYY-MM-DD or ISO 8601 UTC (default: now)\n"
    "  --json       print {\"dag\",\"run_id\",\"state\",\"logical_date\"}\n"
    "\n"
    "exit: 0 queued, 1 the database failed, 2 usage error, unknown DAG or bad params\n";

static const char usage_backfill[] =
    "usage: baram dags backfill DAG --from D --to D [--conf JSON] [--json]\n"
    "\n"
    "Queues one backfill run per fire time T of the DAG's schedule with FROM <= T <= TO\n"
    "(a date D is D 00:00 UTC), skipping dates that already have a scheduled or backfill run.\n"
    "Only the DAG's dates count: a range partly before its start (after its end) runs from\n"
    "its start (up to its end), one wholly outside them is refused. At most 10000 runs at once.\n"
    "\n"
    "  --conf JSON  params for every run (see 'baram dags trigger --help')\n"
    "  --json       print {\"dag\",\"queued\",\"skipped\",\"run_ids\":[...]}\n"
    "\n"
    "exit: 0 queued, 1 the database failed, 2 usage error, unknown DAG, no schedule or bad "
    "range\n";

/* One `dags` command's view: its home, the folder's files, and the store. */
struct dview {
    const char *cmd; /* "dags list" */
    struct home h;
    struct dagdir_file *files; /* owned */
    size_t nfiles;
    struct store *s; /* owned; NULL when there is no database yet (reading commands) */
};

static void dview_release(struct dview *v)
{
    dagdir_free_files(v->files, v->nfiles);
    store_close(v->s);
    home_release(&v->h);
}

/* Loads the home and scans its folder (not with create); with store, opens the database
 * (create: making the home and database when missing; otherwise a missing database leaves
 * v->s NULL). EXIT_OK or an exit code after printing why. */
static int dview_open(struct dview *v, const char *cmd, const char *home_flag, bool store,
                      bool create)
{
    memset(v, 0, sizeof(*v));
    v->cmd = cmd;
    if (home_setup(&v->h, cmd, home_flag) < 0)
        return EXIT_USAGE;
    struct err err = {0};
    struct err se = {0};
    /* The writing commands (create) leave the folder to ops/ops.c, which scans it. */
    if (!create && dagdir_scan(v->h.dags, &v->files, &v->nfiles, &se) < 0) {
        fprintf(stderr, "baram %s: %s\n", cmd, se.msg[0] ? se.msg : "cannot read the DAG folder");
        return EXIT_USAGE;
    }
    if (!store)
        return EXIT_OK;
    if (create && home_create(&v->h, &err) < 0) {
        fprintf(stderr, "baram %s: %s\n", cmd, err_msg(&err));
        return EXIT_USAGE;
    }
    int r = home_open_store(&v->h, create, &v->s, &err);
    if (r == -ENOENT && !create) {
        v->s = NULL;
        return EXIT_OK;
    }
    if (r < 0) {
        fprintf(stderr, "baram %s: %s\n", cmd, err_msg(&err));
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static const struct dagdir_file *dview_find(const struct dview *v, const char *dag_id)
{
    for (size_t i = 0; i < v->nfiles; i++)
        if (v->files[i].dag && strcmp(v->files[i].dag->id, dag_id) == 0)
            return &v->files[i];
    return NULL;
}

/* Prints "no DAG" with a did-you-mean among the folder's and the store's ids. */
static int dview_no_dag(const struct dview *v, const char *dag_id)
{
    struct ops_err e = {0};
    (void)ops_no_dag(v->s, v->files, v->nfiles, v->h.dags, dag_id, &e);
    ops_err_print(&e, stderr, v->cmd);
    ops_err_release(&e);
    return EXIT_USAGE;
}

static bool dview_paused(const struct dview *v, const char *dag_id)
{
    struct dag_rec d;
    if (!v->s || store_get_dag(v->s, dag_id, &d, NULL) < 0)
        return false;
    bool p = d.paused;
    dag_rec_release(&d);
    return p;
}

static void note_no_scheduler(const struct dview *v, const char *cmd, const char *what)
{
    if (!v->s || !ops_scheduler_running(v->s, v->h.dir, home_dead_after_ms(&v->h)))
        fprintf(stderr,
                "baram %s: no scheduler is running on %s: %s when `baram standalone` starts\n", cmd,
                v->h.dir, what);
}

/* Parses the flags of a `dags SUB` command taking one DAG id. EXIT_OK, ARGS_HELP (help
 * printed), or EXIT_USAGE after printing why. */
static int parse_one_dag(const char *cmd, const char *usage, int argc, char **argv,
                         const struct args_flag *flags, size_t nflags, const char **dag_id)
{
    const char *pos[1];
    size_t npos = 0;
    int r = args_parse(cmd, argc, argv, flags, nflags, pos, ARRAY_SIZE(pos), &npos);
    if (r == ARGS_HELP) {
        fputs(usage, stdout);
        return ARGS_HELP;
    }
    if (r < 0)
        return EXIT_USAGE;
    if (npos != 1) {
        fprintf(stderr, "baram %s: expected a DAG id; see 'baram %s --help'\n", cmd, cmd);
        return EXIT_USAGE;
    }
    *dag_id = pos[0];
    return EXIT_OK;
}

/* ---- list ---- */

static json_t *last_run_json(const struct dview *v, const char *dag_id, char *human, size_t humansz)
{
    struct run_rec *runs = NULL;
    size_t n = 0;
    snprintf(human, humansz, "-");
    if (!v->s || store_list_runs(v->s, dag_id, 1, 0, &runs, &n, NULL, NULL) < 0 || n == 0) {
        store_free_runs(runs, n);
        return json_null();
    }
    json_t *o =
        json_pack("{s:s, s:s}", "run_id", runs[0].run_id, "state", run_state_name(runs[0].state));
    snprintf(human, humansz, "%s (%s)", runs[0].run_id, run_state_name(runs[0].state));
    store_free_runs(runs, n);
    return o;
}

static int dags_list(int argc, char **argv)
{
    bool json = false;
    const char *home_flag = NULL;
    const struct args_flag flags[] = {
        {"json", ARGS_BOOL, &json, NULL, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    size_t npos = 0;
    int r = args_parse("dags list", argc, argv, flags, ARRAY_SIZE(flags), NULL, 0, &npos);
    if (r == ARGS_HELP) {
        fputs(usage_list, stdout);
        return EXIT_OK;
    }
    if (r < 0)
        return EXIT_USAGE;
    struct dview v;
    int ret = dview_open(&v, "dags list", home_flag, true, false);
    if (ret != EXIT_OK) {
        dview_release(&v);
        return ret;
    }
    json_t *dags = json_array(), *errs = json_array();
    size_t nbad = 0;
    for (size_t i = 0; i < v.nfiles; i++) {
        const struct dagdir_file *f = &v.files[i];
        if (!f->dag) {
            nbad++;
            for (size_t k = 0; k < f->errors.n; k++) {
                const struct diag_entry *e = &f->errors.v[k];
                if (e->level != DIAG_ERROR)
                    continue;
                char *msg = diag_message(e);
                json_array_append_new(errs, json_pack("{s:s, s:i, s:i, s:s}", "file", f->path,
                                                      "line", e->line, "col",
                                                      e->line > 0 ? e->col : 0, "message", msg));
                free(msg);
            }
            continue;
        }
        const struct dag *d = f->dag;
        char last[256];
        json_t *o = json_object();
        json_object_set_new(o, "dag_id", json_string(d->id));
        json_object_set_new(o, "file", json_string(f->path));
        json_object_set_new(o, "schedule", d->schedule ? json_string(d->schedule) : json_null());
        json_object_set_new(o, "timezone", json_string(dag_timezone(d)));
        json_object_set_new(o, "paused", json_boolean(dview_paused(&v, d->id)));
        json_object_set_new(o, "description",
                            d->description ? json_string(d->description) : json_null());
        json_object_set_new(o, "tasks", json_integer(d->ntasks));
        json_object_set_new(o, "last_run", last_run_json(&v, d->id, last, sizeof last));
        json_object_set_new(o, "_last", json_string(last));
        json_array_append_new(dags, o);
    }
    if (json) {
        size_t i;
        json_t *o;
        json_array_foreach(dags, i, o) json_object_del(o, "_last");
        json_t *top = json_pack("{s:o, s:o}", "dags", dags, "import_errors", errs);
        if (out_json_print(stdout, top) < 0)
            ret = EXIT_FAILED;
        json_decref(top);
    } else {
        int wid = 3, wsched = 8, wlast = 8;
        size_t i;
        json_t *o;
        json_array_foreach(dags, i, o)
        {
            const char *sch = json_string_value(json_object_get(o, "schedule"));
            int a = (int)strlen(json_string_value(json_object_get(o, "dag_id")));
            int b = sch ? (int)strlen(sch) : 1;
            int c = (int)strlen(json_string_value(json_object_get(o, "_last")));
            wid = a > wid ? a : wid;
            wsched = b > wsched ? b : wsched;
            wlast = c > wlast ? c : wlast;
        }
        if (json_array_size(dags) == 0)
            printf("no DAGs in folder '%s'\n", v.h.dags);
        else
            printf("%-*s  %-*s  %-6s  %5s  %-*s  %s\n", wid, "DAG", wsched, "SCHEDULE", "PAUSED",
                   "TASKS", wlast, "LAST RUN", "FILE");
        json_array_foreach(dags, i, o)
        {
            const char *sch = json_string_value(json_object_get(o, "schedule"));
            const char *desc = json_string_value(json_object_get(o, "description"));
            printf("%-*s  %-*s  %-6s  %5lld  %-*s  %s\n", wid,
                   json_string_value(json_object_get(o, "dag_id")), wsched, sch ? sch : "-",
                   json_is_true(json_object_get(o, "paused")) ? "yes" : "no",
                   (long long)json_integer_value(json_object_get(o, "tasks")), wlast,
                   json_string_value(json_object_get(o, "_last")),
                   json_string_value(json_object_get(o, "file")));
            if (desc)
                printf("%-*s  %s\n", wid, "", desc);
        }
        if (json_array_size(errs)) {
            printf("\nimport errors:\n");
            json_array_foreach(errs, i, o)
            {
                long long line = (long long)json_integer_value(json_object_get(o, "line"));
                const char *file = json_string_value(json_object_get(o, "file"));
                const char *msg = json_string_value(json_object_get(o, "message"));
                if (line > 0)
                    printf("  %s:%lld:%lld: %s\n", file, line,
                           (long long)json_integer_value(json_object_get(o, "col")), msg);
                else
                    printf("  %s: %s\n", file, msg);
            }
        }
        json_decref(dags);
        json_decref(errs);
    }
    if (nbad)
        fprintf(stderr,
                "baram dags list: %zu file%s in '%s' could not be loaded (import errors %s)\n",
                nbad, nbad == 1 ? "" : "s", v.h.dags, json ? "in the JSON" : "above");
    dview_release(&v);
    return ret;
}

/* ---- show ---- */

static json_t *time_json(int64_t at_ms)
{
    if (at_ms < 0)
        return json_null();
    char iso[32];
    when_format_iso(at_ms, iso, sizeof iso);
    return json_string(iso);
}

static const char *task_kind_name(enum task_kind k)
{
    return k == TASK_HTTP ? "http" : k == TASK_WAIT ? "wait" : "run";
}

static json_t *show_json(const struct dview *v, const struct dagdir_file *f,
                         const struct run_rec *runs, size_t nruns)
{
    const struct dag *d = f->dag;
    json_t *o = json_object();
    json_object_set_new(o, "dag_id", json_string(d->id));
    json_object_set_new(o, "file", json_string(f->path));
    json_object_set_new(o, "description",
                        d->description ? json_string(d->description) : json_null());
    json_object_set_new(o, "schedule", d->schedule ? json_string(d->schedule) : json_null());
    json_object_set_new(o, "timezone", json_string(dag_timezone(d)));
    json_object_set_new(o, "start", time_json(d->start_at_ms));
    json_object_set_new(o, "end", time_json(d->end_at_ms));
    json_object_set_new(o, "catchup", json_boolean(d->catchup));
    json_object_set_new(o, "max_active_runs", json_integer(d->max_active_runs));
    json_object_set_new(o, "paused", json_boolean(dview_paused(v, d->id)));
    json_object_set_new(o, "hash", json_string(d->hash));
    json_t *params = json_object();
    for (size_t i = 0; i < d->nparams; i++)
        json_object_set_new(params, d->params[i].name,
                            d->params[i].value ? json_string(d->params[i].value) : json_null());
    json_object_set_new(o, "params", params);
    json_object_set_new(o, "params_schema", params_schema_json(d)); /* as the API's DAG has */
    json_t *tasks = json_array();
    for (uint32_t k = 0; k < d->ntasks; k++) {
        uint32_t t = d->topo[k];
        const struct dag_task *dt = &d->tasks[t];
        json_t *needs = json_array();
        for (uint32_t e = d->graph.up_start[t]; e < d->graph.up_start[t + 1]; e++)
            json_array_append_new(needs, json_string(d->tasks[d->graph.up[e]].name));
        json_array_append_new(
            tasks, json_pack("{s:s, s:s, s:o, s:s, s:b, s:s, s:i}", "name", dt->name, "kind",
                             task_kind_name(dt->kind), "needs", needs, "trigger",
                             trigger_rule_name(dt->trigger), "mapped", dt->mapped, "pool",
                             dt->pool ? dt->pool : "default", "retries", dt->retries));
    }
    json_object_set_new(o, "tasks", tasks);
    json_t *rr = json_array();
    for (size_t i = 0; i < nruns; i++)
        json_array_append_new(rr, out_run_summary_json(&runs[i]));
    json_object_set_new(o, "recent_runs", rr);
    json_object_set_new(o, "next_run", runjson_next_run(v->s, d)); /* as the API's DAG has */
    return o;
}

static void show_human(const json_t *o, const struct run_rec *runs, size_t nruns,
                       const struct tz *dag_tz)
{
#define STR_OR(k, dflt)                                                                            \
    (json_string_value(json_object_get(o, k)) ? json_string_value(json_object_get(o, k)) : (dflt))
    printf("dag:              %s\n", STR_OR("dag_id", "?"));
    printf("file:             %s\n", STR_OR("file", "?"));
    printf("description:      %s\n", STR_OR("description", "-"));
    printf("schedule:         %s\n", STR_OR("schedule", "none (manual runs only)"));
    printf("timezone:         %s\n", STR_OR("timezone", "UTC"));
    printf("start:            %s\n", STR_OR("start", "-"));
    printf("end:              %s\n", STR_OR("end", "-"));
    printf("catchup:          %s\n", json_is_true(json_object_get(o, "catchup")) ? "yes" : "no");
    printf("max_active_runs:  %lld\n",
           (long long)json_integer_value(json_object_get(o, "max_active_runs")));
    printf("paused:           %s\n", json_is_true(json_object_get(o, "paused")) ? "yes" : "no");
    const json_t *next = json_object_get(o, "next_run");
    const char *zone = STR_OR("timezone", "UTC");
    if (json_is_object(next) && strcmp(zone, "UTC") != 0) /* tz: on the DAG's clock */
        printf("next run:         %s (due %s) (%s)\n",
               json_string_value(json_object_get(next, "logical_date_local")),
               json_string_value(json_object_get(next, "due_at_local")), zone);
    else if (json_is_object(next))
        printf("next run:         %s (due %s)\n",
               json_string_value(json_object_get(next, "logical_date")),
               json_string_value(json_object_get(next, "due_at")));
    else
        printf("next run:         -\n");
#undef STR_OR
    const json_t *params = json_object_get(o, "params");
    printf("params:          ");
    if (json_object_size(params) == 0)
        printf(" -");
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)params, k, val)
    {
        if (json_is_null(val))
            printf(" %s (required)", k);
        else
            printf(" %s=%s", k, json_string_value(val));
    }
    printf("\ntasks (in topological order):\n");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(o, "tasks"), i, t)
    {
        printf("  %s%s", json_string_value(json_object_get(t, "name")),
               json_is_true(json_object_get(t, "mapped")) ? " (for_each)" : "");
        json_t *needs = json_object_get(t, "needs");
        size_t j;
        json_t *nm;
        json_array_foreach(needs, j, nm)
            printf("%s%s", j ? ", " : "  needs: ", json_string_value(nm));
        printf("\n");
    }
    printf("recent runs:\n");
    if (nruns == 0)
        printf("  none\n");
    else {
        /* the recent runs of this version's DAG: its zone for each (tz part) */
        const struct tz **zones = xcalloc(nruns, sizeof *zones);
        for (size_t r = 0; r < nruns; r++)
            zones[r] = dag_tz;
        out_runs_table_tz(stdout, runs, nruns, zones);
        free(zones);
    }
}

static int dags_show(int argc, char **argv)
{
    struct err se = {0};
    bool json = false;
    const char *home_flag = NULL, *dag_id = NULL;
    const struct args_flag flags[] = {
        {"json", ARGS_BOOL, &json, NULL, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    int r = parse_one_dag("dags show", usage_show, argc, argv, flags, ARRAY_SIZE(flags), &dag_id);
    if (r != EXIT_OK)
        return r == ARGS_HELP ? EXIT_OK : r;
    struct dview v;
    int ret = dview_open(&v, "dags show", home_flag, true, false);
    const struct dagdir_file *f = ret == EXIT_OK ? dview_find(&v, dag_id) : NULL;
    if (ret == EXIT_OK && !f)
        ret = dview_no_dag(&v, dag_id);
    if (ret == EXIT_OK) {
        struct run_rec *runs = NULL;
        size_t nruns = 0;
        if (v.s &&
            store_list_runs(v.s, dag_id, SHOW_RECENT_RUNS, 0, &runs, &nruns, NULL, &se) < 0) {
            fprintf(stderr, "baram dags show: %s\n", err_msg(&se));
            ret = EXIT_FAILED;
        }
        json_t *o = show_json(&v, f, runs, nruns);
        if (json) {
            if (out_json_print(stdout, o) < 0)
                ret = EXIT_FAILED;
        } else {
            show_human(o, runs, nruns, f->dag->tz);
        }
        json_decref(o);
        store_free_runs(runs, nruns);
    }
    dview_release(&v);
    return ret;
}

/* ---- pause, unpause, trigger, backfill, clear: ops/ops.h ---- */

/* Records a change made from the CLI in the audit log (ops/audit.h). */
static void cli_audit(struct store *s, const char *action, const char *dag_id, const char *run_id,
                      json_t *details)
{
    struct audit_who who;
    audit_who_cli(&who);
    (void)audit_record(s, &who, action, dag_id, run_id, NULL, details);
}

/* The exit code of a failed operation. */
static int ops_exit(const struct ops_err *e)
{
    return e->kind == OPS_CONFLICT || e->kind == OPS_STORE ? EXIT_FAILED : EXIT_USAGE;
}

static int dags_pause(int argc, char **argv, bool pause)
{
    bool json = false;
    const char *home_flag = NULL, *dag_id = NULL;
    const char *cmd = pause ? "dags pause" : "dags unpause";
    const struct args_flag flags[] = {
        {"json", ARGS_BOOL, &json, NULL, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    int r = parse_one_dag(cmd, usage_pause, argc, argv, flags, ARRAY_SIZE(flags), &dag_id);
    if (r != EXIT_OK)
        return r == ARGS_HELP ? EXIT_OK : r;
    struct dview v;
    struct ops_err e = {0};
    int ret = dview_open(&v, cmd, home_flag, true, true);
    if (ret == EXIT_OK && ops_set_paused(v.s, v.h.dir, v.h.dags, dag_id, pause, &e) < 0) {
        ops_err_print(&e, stderr, cmd);
        ret = ops_exit(&e);
    }
    if (ret == EXIT_OK)
        cli_audit(v.s, pause ? "pause" : "unpause", dag_id, NULL, NULL);
    if (ret == EXIT_OK) {
        if (json) {
            json_t *o = json_pack("{s:s, s:b}", "dag", dag_id, "paused", pause);
            if (out_json_print(stdout, o) < 0)
                ret = EXIT_FAILED;
            json_decref(o);
        } else {
            printf("%s %s\n", pause ? "paused" : "unpaused", dag_id);
        }
    }
    ops_err_release(&e);
    dview_release(&v);
    return ret;
}

static int dags_trigger(int argc, char **argv)
{
    bool json = false;
    const char *home_flag = NULL, *dag_id = NULL, *conf = NULL, *date = NULL;
    const struct args_flag flags[] = {
        {"json", ARGS_BOOL, &json, NULL, NULL},
        {"conf", ARGS_STRING, NULL, &conf, NULL},
        {"date", ARGS_STRING, NULL, &date, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    const char *cmd = "dags trigger";
    int r = parse_one_dag(cmd, usage_trigger, argc, argv, flags, ARRAY_SIZE(flags), &dag_id);
    if (r != EXIT_OK)
        return r == ARGS_HELP ? EXIT_OK : r;
    int64_t logical = -1;
    if (date && args_date(cmd, date, &logical) < 0)
        return EXIT_USAGE;
    struct ops_err e = {0};
    json_t *cj = NULL;
    if (ops_conf_parse(conf, "--conf", &cj, &e) < 0) {
        ops_err_print(&e, stderr, cmd);
        ops_err_release(&e);
        return EXIT_USAGE;
    }
    struct dview v;
    struct ops_run run;
    int ret = dview_open(&v, cmd, home_flag, true, true);
    if (ret == EXIT_OK && ops_trigger(v.s, v.h.dir, v.h.dags, dag_id, cj, logical, &run, &e) < 0) {
        ops_err_print(&e, stderr, cmd);
        ret = ops_exit(&e);
    }
    if (ret == EXIT_OK)
        cli_audit(v.s, "trigger", dag_id, run.run_id, json_pack("{s:O?}", "conf", cj));
    if (ret == EXIT_OK) {
        char ld[32];
        when_format_iso(run.logical_at_ms, ld, sizeof ld);
        if (json) {
            json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "dag", dag_id, "run_id", run.run_id,
                                  "state", "queued", "logical_date", ld);
            if (out_json_print(stdout, o) < 0)
                ret = EXIT_FAILED;
            json_decref(o);
        } else {
            printf("%s\n", run.run_id);
        }
        if (run.paused)
            fprintf(stderr, "baram %s: DAG '%s' is paused: the run starts once it is unpaused\n",
                    cmd, dag_id);
        note_no_scheduler(&v, cmd, "the run starts");
    }
    ops_err_release(&e);
    json_decref(cj);
    dview_release(&v);
    return ret;
}

static int dags_backfill(int argc, char **argv)
{
    bool json = false;
    const char *home_flag = NULL, *dag_id = NULL, *conf = NULL, *from_s = NULL, *to_s = NULL;
    const struct args_flag flags[] = {
        {"json", ARGS_BOOL, &json, NULL, NULL},        {"conf", ARGS_STRING, NULL, &conf, NULL},
        {"from", ARGS_STRING, NULL, &from_s, NULL},    {"to", ARGS_STRING, NULL, &to_s, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    const char *cmd = "dags backfill";
    int r = parse_one_dag(cmd, usage_backfill, argc, argv, flags, ARRAY_SIZE(flags), &dag_id);
    if (r != EXIT_OK)
        return r == ARGS_HELP ? EXIT_OK : r;
    if (!from_s || !to_s) {
        fprintf(stderr, "baram %s: --from and --to are required; see 'baram %s --help'\n", cmd,
                cmd);
        return EXIT_USAGE;
    }
    struct ops_range range = {.from_text = from_s, .to_text = to_s};
    if (args_date(cmd, from_s, &range.from_at_ms) < 0 || args_date(cmd, to_s, &range.to_at_ms) < 0)
        return EXIT_USAGE;
    if (range.from_at_ms > range.to_at_ms) {
        fprintf(stderr, "baram %s: --from %s is after --to %s\n", cmd, from_s, to_s);
        return EXIT_USAGE;
    }
    struct ops_err e = {0};
    json_t *cj = NULL;
    if (ops_conf_parse(conf, "--conf", &cj, &e) < 0) {
        ops_err_print(&e, stderr, cmd);
        ops_err_release(&e);
        return EXIT_USAGE;
    }
    struct dview v;
    struct ops_backfill b = {0};
    int ret = dview_open(&v, cmd, home_flag, true, true);
    if (ret == EXIT_OK && ops_backfill(v.s, v.h.dir, v.h.dags, dag_id, cj, &range, &b, &e) < 0) {
        ops_err_print(&e, stderr, cmd);
        ret = ops_exit(&e);
    }
    if (ret == EXIT_OK)
        cli_audit(v.s, "backfill", dag_id, NULL,
                  json_pack("{s:s, s:s, s:O?, s:I}", "from", from_s, "to", to_s, "conf", cj,
                            "queued", (json_int_t)b.nrun_ids));
    if (ret == EXIT_OK) {
        size_t queued = b.nrun_ids;
        if (json) {
            json_t *ids = json_array();
            for (size_t i = 0; i < queued; i++)
                json_array_append_new(ids, json_string(b.run_ids[i]));
            json_t *o =
                json_pack("{s:s, s:I, s:I, s:o}", "dag", dag_id, "queued", (json_int_t)queued,
                          "skipped", (json_int_t)b.skipped, "run_ids", ids);
            if (out_json_print(stdout, o) < 0)
                ret = EXIT_FAILED;
            json_decref(o);
        } else {
            printf("queued %zu backfill run%s of %s from %s to %s", queued, queued == 1 ? "" : "s",
                   dag_id, from_s, to_s);
            if (b.skipped)
                printf(", skipped %zu date%s that already had a run", b.skipped,
                       b.skipped == 1 ? "" : "s");
            printf("\n");
        }
        /* A range cut to the DAG's dates: say where, whatever the output. */
        char cut[32];
        if (b.start_at_ms >= 0) {
            when_format_iso(b.start_at_ms, cut, sizeof cut);
            fprintf(stderr,
                    "baram %s: --from %s is before DAG '%s' starts: runs from its start (%s) on\n",
                    cmd, from_s, dag_id, cut);
        }
        if (b.end_at_ms >= 0) {
            when_format_iso(b.end_at_ms, cut, sizeof cut);
            fprintf(stderr, "baram %s: --to %s is after DAG '%s' ends: runs up to its end (%s)\n",
                    cmd, to_s, dag_id, cut);
        }
        if (queued) {
            if (b.paused)
                fprintf(stderr,
                        "baram %s: DAG '%s' is paused: the runs start once it is unpaused\n", cmd,
                        dag_id);
            note_no_scheduler(&v, cmd, "the runs start");
        }
    }
    ops_backfill_release(&b);
    ops_err_release(&e);
    json_decref(cj);
    dview_release(&v);
    return ret;
}

static int dags_clear(int argc, char **argv)
{
    bool json = false, only_failed = false, dry_run = false;
    const char *home_flag = NULL, *dag_id = NULL, *from_s = NULL, *to_s = NULL, *task = NULL;
    const struct args_flag flags[] = {
        {"json", ARGS_BOOL, &json, NULL, NULL},
        {"only-failed", ARGS_BOOL, &only_failed, NULL, NULL},
        {"dry-run", ARGS_BOOL, &dry_run, NULL, NULL},
        {"from", ARGS_STRING, NULL, &from_s, NULL},
        {"to", ARGS_STRING, NULL, &to_s, NULL},
        {"task", ARGS_STRING, NULL, &task, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    const char *cmd = "dags clear";
    int r = parse_one_dag(cmd, usage_clear, argc, argv, flags, ARRAY_SIZE(flags), &dag_id);
    if (r != EXIT_OK)
        return r == ARGS_HELP ? EXIT_OK : r;
    if (!from_s || !to_s) {
        fprintf(stderr, "baram %s: --from and --to are required; see 'baram %s --help'\n", cmd,
                cmd);
        return EXIT_USAGE;
    }
    struct ops_clear_range_opts o = {.from_text = from_s,
                                     .to_text = to_s,
                                     .task = task,
                                     .only_failed = only_failed,
                                     .dry_run = dry_run};
    if (args_date(cmd, from_s, &o.from_at_ms) < 0 || args_date(cmd, to_s, &o.to_at_ms) < 0)
        return EXIT_USAGE;
    if (o.from_at_ms > o.to_at_ms) {
        fprintf(stderr, "baram %s: --from %s is after --to %s\n", cmd, from_s, to_s);
        return EXIT_USAGE;
    }
    struct dview v;
    struct ops_err e = {0};
    struct ops_clear_range c = {0};
    int ret = dview_open(&v, cmd, home_flag, true, false);
    if (ret == EXIT_OK && !v.s) {
        fprintf(stderr, "baram %s: no database in %s yet: nothing to clear\n", cmd, v.h.dir);
        ret = EXIT_USAGE;
    }
    struct audit_who who;
    audit_who_cli(&who);
    o.who = &who; /* recorded with the clear, in its transaction */
    if (ret == EXIT_OK && ops_clear_range(v.s, v.h.dir, dag_id, &o, &c, &e) < 0) {
        ops_err_print(&e, stderr, cmd);
        ret = ops_exit(&e);
    }
    if (ret == EXIT_OK && json) {
        json_t *out = ops_clear_range_json(dag_id, &c, dry_run);
        if (out_json_print(stdout, out) < 0)
            ret = EXIT_FAILED;
        json_decref(out);
    } else if (ret == EXIT_OK) {
        for (size_t i = 0; i < c.nruns; i++) {
            const struct ops_clear_range_run *x = &c.runs[i];
            printf("%s %s:",
                   x->skipped ? "skipped (not ended)"
                   : dry_run  ? "would clear"
                              : "cleared",
                   x->run_id);
            for (size_t k = 0; k < x->ntasks; k++)
                printf("%s %s", k ? "," : "", x->tasks[k]);
            printf("\n");
        }
        size_t n = 0;
        for (size_t i = 0; i < c.nruns; i++)
            n += !c.runs[i].skipped;
        printf("%s %zu run%s of %s (%zu task instance%s)\n", dry_run ? "would clear" : "cleared", n,
               n == 1 ? "" : "s", dag_id, c.nrows, c.nrows == 1 ? "" : "s");
        if (n && !dry_run)
            note_no_scheduler(&v, cmd, "the runs resume");
    }
    ops_clear_range_release(&c);
    ops_err_release(&e);
    dview_release(&v);
    return ret;
}

int cmd_dags(int argc, char **argv)
{
    static const char *const subs[] = {"list",     "show",  "pause",    "unpause", "trigger",
                                       "backfill", "clear", "validate", "versions"};
    if (argc < 2) {
        fputs(usage_dags, stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(usage_dags, stdout);
        return EXIT_OK;
    }
    if (strcmp(sub, "validate") == 0)
        return dags_validate(argc - 1, argv + 1);
    if (strcmp(sub, "list") == 0)
        return dags_list(argc - 1, argv + 1);
    if (strcmp(sub, "show") == 0)
        return dags_show(argc - 1, argv + 1);
    if (strcmp(sub, "pause") == 0 || strcmp(sub, "unpause") == 0)
        return dags_pause(argc - 1, argv + 1, sub[0] == 'p');
    if (strcmp(sub, "trigger") == 0)
        return dags_trigger(argc - 1, argv + 1);
    if (strcmp(sub, "backfill") == 0)
        return dags_backfill(argc - 1, argv + 1);
    if (strcmp(sub, "clear") == 0)
        return dags_clear(argc - 1, argv + 1);
    if (strcmp(sub, "versions") == 0)
        return cmd_dags_versions(argc - 1, argv + 1);
    const char *near = suggest_closest(sub, subs, ARRAY_SIZE(subs));
    if (near)
        fprintf(stderr, "baram dags: unknown subcommand '%s' (did you mean '%s'?)\n", sub, near);
    else
        fprintf(stderr, "baram dags: unknown subcommand '%s'; see 'baram dags --help'\n", sub);
    return EXIT_USAGE;
}
