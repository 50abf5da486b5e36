/*
 * cmd_logs.c - `baram logs RUN TASK [--try N] [--follow]` (SPEC section 3):
 * prints a try's log file, HOME/logs/<dag>/<run>/<task>.<try>.log (a mapped
 * instance `x[3]`: `x.3.<try>.log`; a home made by an earlier baram:
 * <task>/<try>.log, see logpath.h). The run and task are looked up in
 * the store first, so a typo gets a clear message and a did-you-mean, and
 * RUN/TASK can never walk out of the log folder ('/', '.' and '..' rejected).
 *
 * --follow tails the file until the try has ended: it polls the file and
 * the store every 200 ms, which is plenty for a person watching and costs
 * nothing while idle. Main thread.
 *
 * On PostgreSQL a try may have run on a worker elsewhere: when there is no
 * local file, the log comes from the store's copy or from the worker running
 * the try (ops/trylog.h), asked with a short-lived viewer token made with
 * this home's secret.key (a worker checks it with the same key).
 */
#include "cli/cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/auth.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/suggest.h"
#include "base/xalloc.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/home.h"
#include "cli/out.h"
#include "dag/state.h"
#include "ops/trylog.h"
#include "sched/logpath.h"
#include "store/store.h"

static const char usage[] =
    "usage: baram logs RUN TASK [--try N] [--follow] [--home DIR]\n"
    "\n"
    "Prints the log of a task instance's try (default: its latest try).\n"
    "\n"
    "  --try N     the try to show, from 1\n"
    "  --follow    keep printing as the log grows, until the try has ended\n"
    "  --home DIR  the home (default $BARAM_HOME or ./.baram)\n";

#define LOGS_POLL_MS 200

static volatile sig_atomic_t logs_interrupted; /* written by the SIGINT handler (main thread) */

static void on_sigint(int sig)
{
    (void)sig;
    logs_interrupted = 1;
}

/* One path component that stays where it is put: no '/', not "." or ".." (nor any all-dot
 * name). Dots inside a name ("a..b", a valid task name) are fine. */
static bool safe_component(const char *s)
{
    return *s && !strchr(s, '/') && s[strspn(s, ".")] != 0;
}

/* No such instance: suggest the nearest instance id, or, when TASK names a mapped task (or
 * nearly does), its instances. */
static void unknown_task(struct store *s, const char *run_id, const char *task_id)
{
    struct ti_rec *tis = NULL;
    size_t n = 0;
    const char *near = NULL;
    const char **ids = NULL;
    if (store_list_tis(s, run_id, &tis, &n, NULL) == 0 && n) {
        ids = xcalloc(2 * n, sizeof *ids);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            ids[k++] = tis[i].task_id;
            if (tis[i].map_index >= 0 && tis[i].task)
                ids[k++] = tis[i].task;
        }
        near = suggest_closest(task_id, ids, k);
        for (size_t i = 0; i < n; i++)
            if (tis[i].map_index >= 0 && tis[i].task && strcmp(tis[i].task, task_id) == 0)
                near = tis[i].task; /* the mapped task itself, named exactly */
    }
    size_t first = n, count = 0;
    for (size_t i = 0; near && i < n; i++) {
        if (tis[i].map_index >= 0 && tis[i].task && strcmp(tis[i].task, near) == 0) {
            if (first == n)
                first = i;
            count++;
        }
    }
    if (count)
        fprintf(stderr,
                "baram logs: no task '%s' in run '%s' ('%s' is mapped: name an instance, "
                "'%s' .. '%s[%zu]')\n",
                task_id, run_id, near, tis[first].task_id, near, count - 1);
    else if (near)
        fprintf(stderr, "baram logs: no task '%s' in run '%s' (did you mean '%s'?)\n", task_id,
                run_id, near);
    else
        fprintf(stderr, "baram logs: no task '%s' in run '%s'; see 'baram runs show %s'\n", task_id,
                run_id, run_id);
    free(ids);
    store_free_tis(tis, n);
}

/* Copies what is left of fd to stdout. 0 or a negative errno. */
static int pump(int fd)
{
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        if (fwrite(chunk, 1, (size_t)n, stdout) != (size_t)n)
            return -EIO;
    }
    return fflush(stdout) == 0 ? 0 : -EIO;
}

#define LOGS_CHUNK        (1024 * 1024) /* bytes asked of a worker at a time */
#define LOGS_TOKEN_TTL_MS (10 * 60 * 1000)

/* The try whose log is not on this machine, and where its printing is. */
struct logs_remote {
    struct store *s;
    const struct home *h;
    const char *run_id, *task_id;
    int try_number;
    int64_t offset; /* bytes printed */
    char *token;    /* NULL until made; NULL too when the home has no key */
    bool token_tried;
    char *msg; /* the last reason there was nothing (malloc'd) */
};

/* A viewer token of this home for the worker (none without a key: the worker says 401). */
static const char *remote_token(struct logs_remote *rm)
{
    if (rm->token_tried)
        return rm->token;
    rm->token_tried = true;
    struct auth_opts ao = {
        .home = rm->h->dir,
        .token_ttl_ms = LOGS_TOKEN_TTL_MS,
        .issuer = rm->h->auth.issuer,
        .audience = rm->h->auth.audience,
    };
    struct auth *a = NULL;
    struct err e = {0};
    int64_t exp_s;
    if (auth_open(&ao, &a, &e) == 0 &&
        auth_issue(a, "baram-logs", AUTH_VIEWER, LOGS_TOKEN_TTL_MS, &rm->token, &exp_s) < 0)
        rm->token = NULL;
    auth_close(a);
    return rm->token;
}

/* Prints what the store or the worker has of the log past rm->offset: 0 (something or
 * nothing new), -ENOENT none known (yet), or another code with rm->msg. */
static int pump_remote(struct logs_remote *rm)
{
    for (;;) {
        struct trylog_req q = {.run_id = rm->run_id,
                               .task_id = rm->task_id,
                               .try_number = rm->try_number,
                               .offset = rm->offset,
                               .max = LOGS_CHUNK,
                               .token = remote_token(rm)};
        char *data = NULL, *msg = NULL;
        size_t len = 0;
        enum trylog_source src;
        struct err e = {0};
        int r = trylog_read(rm->s, &q, &data, &len, &src, &msg, &e);
        if (r < 0) {
            free(rm->msg);
            rm->msg = msg ? msg : r == -ENOENT ? NULL : xstrdup(err_msg(&e));
            return r;
        }
        bool more = len == LOGS_CHUNK;
        if (len && fwrite(data, 1, len, stdout) != len)
            r = -EIO;
        free(data);
        rm->offset += (int64_t)len;
        if (r < 0 || fflush(stdout) != 0)
            return -EIO;
        if (!more)
            return 0;
    }
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Whether the try has ended (or the instance will not change any more). */
static bool try_over(struct store *s, const char *run_id, const char *task_id, int try_number)
{
    struct ti_rec ti;
    if (store_get_ti(s, run_id, task_id, &ti, NULL) < 0)
        return true;
    bool over = ti_state_finished(ti.state) || ti.try_number > try_number ||
                (ti.try_number == try_number && ti.state == TI_UP_FOR_RETRY);
    ti_rec_release(&ti);
    return over;
}

static int follow(struct store *s, const char *path, const char *run_id, const char *task_id,
                  int try_number, struct logs_remote *rm)
{
    bool remote_seen = false;
    int remote_r = -ENOENT;
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    int fd = -1;
    int r = 0;
    while (!logs_interrupted) {
        /* Read the state before the file: a try that ended has written all of its log. */
        bool over = try_over(s, run_id, task_id, try_number);
        if (fd < 0)
            fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && (r = pump(fd)) < 0)
            break;
        if (fd < 0) {
            remote_r = pump_remote(rm);
            if (remote_r == -EIO) {
                r = remote_r;
                break;
            }
            remote_seen |= remote_r == 0;
        }
        if (over) {
            if (fd < 0 && !remote_seen) /* it ended without ever writing a log */
                r = remote_r < 0 ? remote_r : -ENOENT;
            break;
        }
        sleep_ms(LOGS_POLL_MS);
    }
    if (fd >= 0)
        close(fd);
    return r;
}

int cmd_logs(int argc, char **argv)
{
    struct err se = {0};
    const char *home_flag = NULL, *try_s = NULL, *pos[2];
    bool follow_flag = false;
    size_t npos;
    const struct args_flag flags[] = {
        {"try", ARGS_STRING, NULL, &try_s, NULL},
        {"follow", ARGS_BOOL, &follow_flag, NULL, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    int r = args_parse("logs", argc, argv, flags, ARRAY_SIZE(flags), pos, ARRAY_SIZE(pos), &npos);
    if (r == ARGS_HELP) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (r < 0)
        return EXIT_USAGE;
    if (npos != 2) {
        fputs("baram logs: expected RUN and TASK; see 'baram logs --help'\n", stderr);
        return EXIT_USAGE;
    }
    const char *run_id = pos[0], *task_id = pos[1];
    int want_try = 0;
    if (try_s && args_int("logs", "--try", try_s, 1, 1000000, &want_try) < 0)
        return EXIT_USAGE;
    if (!safe_component(run_id) || !safe_component(task_id)) {
        fputs("baram logs: RUN and TASK may not contain '/' or be '.' or '..'\n", stderr);
        return EXIT_USAGE;
    }

    struct home h;
    struct store *s = NULL;
    struct run_rec run = {0};
    struct ti_rec ti = {0};
    char *folder = NULL; /* the log file */
    struct buf path = BUF_INIT(BUF_NO_MAX);
    struct logs_remote rm = {0};
    int ret = EXIT_USAGE;
    if (home_setup(&h, "logs", home_flag) < 0)
        goto out;
    struct err err = {0};
    if ((r = home_open_store(&h, false, &s, &err)) < 0) {
        fprintf(stderr, "baram logs: %s\n", err_msg(&err));
        goto out;
    }
    r = store_get_run(s, run_id, &run, &se);
    if (r == -ENOENT) {
        out_no_such_run(stderr, s, "logs", run_id);
        goto out;
    }
    if (r == 0) {
        r = store_get_ti(s, run_id, task_id, &ti, &se);
        if (r == -ENOENT) {
            unknown_task(s, run_id, task_id);
            goto out;
        }
    }
    if (r < 0) {
        fprintf(stderr, "baram logs: %s\n", err_msg(&se));
        ret = EXIT_FAILED;
        goto out;
    }
    int try_number = want_try ? want_try : ti.try_number;
    if (want_try && want_try > ti.try_number) {
        fprintf(stderr, "baram logs: task '%s' has %d tr%s so far, not %d\n", task_id,
                ti.try_number, ti.try_number == 1 ? "y" : "ies", want_try);
        goto out;
    }
    if (try_number == 0 && !follow_flag) {
        fprintf(stderr, "baram logs: task '%s' has not started yet (state %s)\n", task_id,
                ti_state_name(ti.state));
        ret = EXIT_FAILED;
        goto out;
    }
    if (try_number == 0)
        try_number = 1; /* --follow waits for the first try */
    if (!safe_component(run.dag_id)) {
        fprintf(stderr, "baram logs: run '%s' has a bad DAG id\n", run_id);
        goto out;
    }
    folder = logpath_find_log(h.dir, run.dag_id, run_id, ti.task, ti.map_index, try_number);
    (void)!buf_adds(&path, folder);
    rm = (struct logs_remote){
        .s = s, .h = &h, .run_id = run_id, .task_id = task_id, .try_number = try_number};
    if (follow_flag) {
        r = follow(s, path.data, run_id, task_id, try_number, &rm);
        ret = r < 0 ? EXIT_FAILED : EXIT_OK;
        if (r < 0 && rm.msg)
            fprintf(stderr, "baram logs: %s\n", rm.msg);
        else if (r < 0)
            fprintf(stderr, "baram logs: %s: %s\n", path.data, strerror(-r));
        goto out;
    }
    int fd = open(path.data, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int no = errno;
        r = pump_remote(&rm);
        if (r == 0) {
            ret = EXIT_OK;
        } else if (rm.msg) {
            fprintf(stderr, "baram logs: try %d of '%s': %s\n", try_number, task_id, rm.msg);
            ret = EXIT_FAILED;
        } else {
            fprintf(stderr, "baram logs: no log for try %d of '%s' (%s: %s)\n", try_number, task_id,
                    path.data, strerror(no));
            ret = EXIT_FAILED;
        }
        goto out;
    }
    r = pump(fd);
    close(fd);
    ret = r < 0 ? EXIT_FAILED : EXIT_OK;

out:
    free(rm.msg);
    free(rm.token);
    buf_release(&path);
    free(folder);
    ti_rec_release(&ti);
    run_rec_release(&run);
    store_close(s);
    home_release(&h);
    return ret;
}
