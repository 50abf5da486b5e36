/*
 * cmd_worker.c - `baram worker`: a worker (worker/worker.h) in the
 * foreground, for a PostgreSQL deployment: it claims the tries queued for
 * its queues and runs them on this host. Logs in logfmt on stderr (level
 * info unless baram.yaml or BARAM_LOG_LEVEL say otherwise); SIGTERM or
 * Ctrl-C drains it: no new claims, running tries get --grace, then the rest
 * is killed and reported, and it exits 0.
 *
 * Exit 0 after a clean stop, 1 when it cannot start (the log server's port
 * is taken), 2 for bad flags or config, for SQLite (there `baram standalone`
 * runs the tasks) and for a database it cannot use.
 * Main thread.
 */
#include "cli/cmd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "api/auth.h"
#include "base/err.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/home.h"
#include "dag/dag.h"
#include "dag/duration.h"
#include "store/listen.h"
#include "store/store.h"
#include "worker/worker.h"

static const char usage[] =
    "usage: baram worker [--queues Q1,Q2] [--slots N] [--name NAME] [--listen HOST:PORT]\n"
    "                    [--grace DURATION] [--home DIR]\n"
    "\n"
    "Runs the tries queued for its queues on this host (a PostgreSQL deployment: `db:` is a\n"
    "postgresql:// URL; schedulers hand the tries out, workers run them).\n"
    "\n"
    "  --queues Q1,Q2      the queues it takes tries from (default: default)\n"
    "  --slots N           tries running at once; a wait task holds none (default: the number\n"
    "                      of CPUs)\n"
    "  --name NAME         its name in `baram workers list` and in its tries' BARAM_WORKER\n"
    "                      (default HOSTNAME:PID); a worker restarted under the same name kills\n"
    "                      the tries its predecessor left on this host\n"
    "  --listen HOST:PORT  serve the logs of its running tries there\n"
    "  --grace DURATION    at SIGTERM/Ctrl-C, how long running tries may go on before they are\n"
    "                      killed (default 30s)\n"
    "  --home DIR          the home (default $BARAM_HOME or ./.baram): its baram.yaml, and the\n"
    "                      logs/ folder where the tries' logs go\n"
    "\n"
    "Config: worker.heartbeat (default 5s), worker.dead_after (20s), logs.store_max (8MiB:\n"
    "the bytes of a try's log kept in the database, its end if longer).\n"
    "Runs in the foreground and logs to stderr.\n"
    "\n"
    "exit status: 0 stopped cleanly, 1 could not start (the --listen port is taken), 2 bad\n"
    "flags or config, SQLite, or an unusable database\n";

static bool worker_queue_ok(const char *s, size_t n)
{
    if (n == 0 || n > DAG_QUEUE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* Splits --queues: 0 with *out (malloc'd strings in a malloc'd array), or -EINVAL after the
 * message. */
static int worker_queues(const char *s, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    char **v = NULL;
    size_t nv = 0;
    for (const char *p = s;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (!worker_queue_ok(p, len)) {
            fprintf(stderr,
                    "baram worker: bad queue name '%.*s' in --queues (use at most 64 letters, "
                    "digits, '_', '.' and '-', separated by commas)\n",
                    (int)len, p);
            for (size_t i = 0; i < nv; i++)
                free(v[i]);
            free(v);
            return -EINVAL;
        }
        v = xrealloc(v, (nv + 1) * sizeof(*v));
        v[nv++] = xstrndup(p, len);
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = v;
    *n = nv;
    return 0;
}

struct worker_cli {
    uv_signal_t sigterm, sigint;
    struct worker *w;
    int rc;
    bool stopped;
};

static void worker_cli_signal(uv_signal_t *h, int signum)
{
    struct worker_cli *c = h->data;
    if (c->w && !c->stopped)
        worker_drain(c->w);
}

static void worker_cli_stopped(void *ud, int rc)
{
    struct worker_cli *c = ud;
    c->stopped = true;
    c->w = NULL;
    c->rc = rc;
    uv_close((uv_handle_t *)&c->sigterm, NULL);
    uv_close((uv_handle_t *)&c->sigint, NULL);
}

int cmd_worker(int argc, char **argv)
{
    const char *home_flag = NULL, *queues = NULL, *slots = NULL, *name = NULL, *listen = NULL,
               *grace = NULL;
    const struct args_flag flags[] = {
        {"queues", ARGS_STRING, NULL, &queues, NULL}, {"slots", ARGS_STRING, NULL, &slots, NULL},
        {"name", ARGS_STRING, NULL, &name, NULL},     {"listen", ARGS_STRING, NULL, &listen, NULL},
        {"grace", ARGS_STRING, NULL, &grace, NULL},   {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    size_t npos;
    int r = args_parse("worker", argc, argv, flags, ARRAY_SIZE(flags), NULL, 0, &npos);
    if (r == ARGS_HELP) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (r < 0)
        return EXIT_USAGE;
    int nslots = 0;
    if (slots && args_int("worker", "--slots", slots, 1, 100000, &nslots) < 0)
        return EXIT_USAGE;
    int64_t grace_ms = WORKER_GRACE_MS;
    if (grace && duration_parse(grace, &grace_ms) < 0) {
        fprintf(stderr, "baram worker: bad --grace '%s' (a duration like 30s, 5m, 0s)\n", grace);
        return EXIT_USAGE;
    }
    if (name && (!*name || strchr(name, '\n') || strlen(name) > 255)) {
        fprintf(stderr, "baram worker: bad --name (1 to 255 bytes on one line)\n");
        return EXIT_USAGE;
    }
    char **qv = NULL;
    size_t nq = 0;
    if (queues && worker_queues(queues, &qv, &nq) < 0)
        return EXIT_USAGE;

    int ret = EXIT_OK;
    struct home h = {0};
    if (home_setup(&h, "worker", home_flag) < 0) {
        ret = EXIT_USAGE;
        goto out;
    }
    if (!listen_url_is_pg(h.db)) {
        fputs("baram worker needs a PostgreSQL database (db: postgresql://...): on SQLite "
              "`baram standalone` runs the tasks\n",
              stderr);
        ret = EXIT_USAGE;
        goto out;
    }
    if (!h.log_level_set)
        log_set_level(LOG_INFO);
    struct err err = {0};
    if (home_create(&h, &err) < 0) {
        log_error("cannot start", "role=worker error=%s", log_q(err_msg(&err)));
        ret = EXIT_FAILED;
        goto out;
    }
    int64_t dead_after_ms = home_worker_dead_after_ms(&h);
    store_set_dead_after(dead_after_ms);

    worker_pool_widen(); /* before any work is queued */
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct worker_cli c = {0};
    uv_signal_init(&loop, &c.sigterm);
    uv_signal_init(&loop, &c.sigint);
    c.sigterm.data = c.sigint.data = &c;
    uv_signal_start(&c.sigterm, worker_cli_signal, SIGTERM);
    uv_signal_start(&c.sigint, worker_cli_signal, SIGINT);
    struct worker_opts o = {
        .loop = &loop,
        .store_url = h.db,
        .home = h.dir,
        .name = name,
        .queues = (const char *const *)qv,
        .nqueues = nq,
        .slots = nslots,
        .heartbeat_ms = home_worker_heartbeat_ms(&h),
        .dead_after_ms = dead_after_ms,
        .grace_ms = grace_ms,
        .store_max = home_logs_store_max(&h),
        .listen = listen,
        .stopped = worker_cli_stopped,
        .ud = &c,
    };
    struct auth *auth = NULL;
    if (listen) {
        r = home_open_auth(&h, &auth, &err);
        if (r < 0) {
            log_error("cannot start", "role=worker error=%s",
                      log_q(err_msg(&err))); /* no secret.key: `baram init`, or copy it */
            ret = EXIT_USAGE;
            goto out_loop;
        }
        o.auth = auth;
    }
    r = worker_start(&o, &c.w, &err);
    if (r < 0) {
        log_error("cannot start", "role=worker error=%s", log_q(err_msg(&err)));
        worker_cli_stopped(&c, r);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (c.rc < 0)
        ret = c.rc == ERR_DB || c.rc == -EINVAL || c.rc == -ENOTSUP ? EXIT_USAGE : EXIT_FAILED;
out_loop:
    if (ret == EXIT_USAGE && !c.stopped) { /* the log server's keys: nothing started yet */
        worker_cli_stopped(&c, 0);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    (void)uv_loop_close(&loop);
    auth_close(auth);
out:
    for (size_t i = 0; i < nq; i++)
        free(qv[i]);
    free(qv);
    home_release(&h);
    return ret;
}
