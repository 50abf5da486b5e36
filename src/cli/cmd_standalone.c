/*
 * cmd_standalone.c - `baram standalone` and `baram scheduler`: the daemon
 * (daemon/daemon.h) in the foreground. standalone is scheduler + local
 * executor (+ API and UI, once they exist) in one process; scheduler is the
 * same without the API, for split deployments. Both log in logfmt on stderr
 * (level info unless baram.yaml or BARAM_LOG_LEVEL say otherwise) and stop
 * on SIGTERM or Ctrl-C: nothing new starts, running tries get a grace
 * period, and the next start resumes whatever was left.
 *
 * Exit 0 after a clean stop, 1 when the daemon could not start (another one
 * holds the home, the DAG folder cannot be opened), 2 for bad flags or config
 * and for a database it cannot use (unreachable, wrong, refused: ERR_DB), as
 * every command. Once the flags and config are read, every stderr line is a
 * log line (SPEC section 10), the failure to start included; only the usage
 * errors before it are the CLI's usual "baram CMD: ..." lines. Main thread.
 */
#include "cli/cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/hub.h"
#include "base/err.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/home.h"
#include "daemon/daemon.h"
#include "dag/duration.h"
#include "sched/run.h"
#include "worker/worker.h"

/* The usage of standalone and of scheduler: the first lines, then (standalone only) the
 * API's flags, then the rest. */
static const char usage_standalone_head[] =
    "usage: baram standalone [--dags DIR] [--parallelism N] [--grace DURATION]\n"
    "                        [--listen HOST:PORT] [--api-max-rps N] [--api-threads N] "
    "[--home DIR]\n"
    "\n"
    "Runs the scheduler, the local executor and the REST API (with the web UI) in one\n"
    "process: the DAG folder is watched, scheduled runs are made when due, triggered runs\n"
    "start within milliseconds.\n";
static const char usage_scheduler_head[] =
    "usage: baram scheduler [--dags DIR] [--parallelism N] [--grace DURATION] [--home DIR]\n"
    "\n"
    "Runs the scheduler with its local executor, without the API (for split deployments;\n"
    "`baram api` serves it).\n";
static const char usage_flags[] =
    "\n"
    "  --dags DIR          the DAG folder (default: config `dags`, ./dags)\n"
    "  --parallelism N     task instances running at once, all runs together (default 32)\n"
    "  --grace DURATION    at SIGTERM/Ctrl-C, how long running tasks may go on before they\n"
    "                      are stopped and left for the next start (default 30s)\n";
static const char usage_api_flags[] =
    "  --listen HOST:PORT  where the REST API listens (default: config `listen`,\n"
    "                      127.0.0.1:8080); it needs the home's secret.key (`baram init`)\n"
    "  --api-max-rps N     requests the API starts a second at most; over it they wait their\n"
    "                      turn (default: config `api.max_rps`, 0: no limit)\n"
    "  --api-threads N     threads serving the API's connections (default: `api.threads`, 2)\n";
static const char usage_tail[] =
    "  --home DIR          the home (default $BARAM_HOME or ./.baram)\n"
    "\n"
    "Runs in the foreground and logs to stderr. The CLI talks to it through the store:\n"
    "  baram dags list | trigger DAG | pause DAG | backfill DAG --from D --to D\n"
    "  baram runs list | cancel RUN      baram tasks clear RUN TASK [--downstream]\n"
    "\n"
    "exit status: 0 stopped cleanly, 1 could not start, 2 bad flags or config\n";

struct standalone_api;

struct standalone_ctx {
    const char *cmd;
    const char *dags;
    /* standalone: the API, started once the scheduler's lock is ours (standalone_locked) */
    const struct home *h;
    const char *listen;
    const struct run_pool *pools; /* the home's, for the daemon and the API */
    struct standalone_api *api;
};

/* The API of `baram standalone`: its own threads (api.h), sharing only the store and the
 * doorbell with the scheduler. Without a secret key (no `baram init` yet) it stays off. */
struct standalone_api {
    struct auth *auth;
    struct hub *hub;
    struct api *api;
};

static int standalone_api_start(const struct standalone_ctx *c, struct standalone_api *x,
                                struct err *e)
{
    const struct home *h = c->h;
    const char *listen = c->listen;
    struct err ae = {0};
    char *key = xasprintf("%s/secret.key", h->dir);
    bool have_key = access(key, F_OK) == 0;
    free(key);
    if (!have_key) {
        log_warn("the API is off: no secret key", "hint=%s",
                 log_q("run `baram init` to create it and the first admin user"));
        return 0;
    }
    int r = home_open_auth(h, &x->auth, &ae);
    if (r == 0)
        r = hub_start(h->db, &x->hub, &ae);
    if (r == 0) {
        struct api_opts o = {
            .listen = listen,
            .home = h->dir,
            .dags = c->dags,
            .store_url = h->db,
            .sched_dead_after_ms = home_dead_after_ms(h),
            .auth = x->auth,
            .hub = x->hub,
            .max_rps = h->api.max_rps,
            .threads = h->api.threads,
            .pools = c->pools,
            .npools = h->npools,
        };
        r = api_start(&o, &x->api, &ae);
    }
    if (r < 0) {
        (void)err_set(e, r, "the API cannot start: %s", err_msg(&ae));
        if (x->hub)
            hub_stop(x->hub);
        auth_close(x->auth);
        memset(x, 0, sizeof(*x));
        return r;
    }
    log_info("api listening", "listen=%s port=%d", log_q(listen), api_port(x->api));
    return 0;
}

static void standalone_api_stop(struct standalone_api *x)
{
    if (x->hub)
        hub_close(x->hub); /* streams end, so their connections can close */
    if (x->api)
        api_stop(x->api);
    if (x->hub)
        hub_stop(x->hub);
    auth_close(x->auth);
    memset(x, 0, sizeof(*x));
}

/* The store writer's on_commit hook (writer thread): new events wake the event hub's pump,
 * so the stream shows them within milliseconds instead of at its next poll. The hub is made
 * before the scheduler's writer starts (standalone_locked) and stopped after it has. */
static void standalone_on_commit(void *ud, uint64_t seq, size_t nevents)
{
    const struct standalone_api *x = ud;
    (void)seq;
    if (nevents > 0 && x->hub)
        hub_notify(x->hub);
}

static int standalone_locked(void *ud, struct err *e)
{
    const struct standalone_ctx *c = ud;
    return c->api ? standalone_api_start(c, c->api, e) : 0;
}

static void standalone_ready(void *ud, size_t ndags, size_t nerrors)
{
    const struct standalone_ctx *c = ud;
    log_info("scheduler up", "dags=%zu import_errors=%zu folder=%s", ndags, nerrors,
             log_q(c->dags));
    if (nerrors)
        log_warn("DAG files with errors", "files=%zu hint=%s", nerrors,
                 log_q("see 'baram dags list'"));
}

static int standalone_main(const char *cmd, bool with_api, int argc, char **argv)
{
    const char *home_flag = NULL, *dags = NULL, *par = NULL, *grace = NULL, *listen = NULL;
    const char *max_rps = NULL, *api_threads = NULL;
    /* The API's flags last: the scheduler, which has no API, takes the others only. */
    const struct args_flag flags[] = {
        {"dags", ARGS_STRING, NULL, &dags, NULL},
        {"parallelism", ARGS_STRING, NULL, &par, NULL},
        {"grace", ARGS_STRING, NULL, &grace, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
        {"api-max-rps", ARGS_STRING, NULL, &max_rps, NULL},
        {"api-threads", ARGS_STRING, NULL, &api_threads, NULL},
        {"listen", ARGS_STRING, NULL, &listen, NULL},
    };
    size_t nflags = with_api ? ARRAY_SIZE(flags) : ARRAY_SIZE(flags) - 3;
    size_t npos;
    int r = args_parse(cmd, argc, argv, flags, nflags, NULL, 0, &npos);
    if (r == ARGS_HELP) {
        fputs(with_api ? usage_standalone_head : usage_scheduler_head, stdout);
        fputs(usage_flags, stdout);
        if (with_api)
            fputs(usage_api_flags, stdout);
        fputs(usage_tail, stdout);
        return EXIT_OK;
    }
    if (r < 0)
        return EXIT_USAGE;
    int parallelism = 0;
    if (par && args_int(cmd, "--parallelism", par, 1, HOME_PARALLELISM_MAX, &parallelism) < 0)
        return EXIT_USAGE;
    int64_t grace_ms = -1;
    if (grace) {
        if (duration_parse(grace, &grace_ms) < 0) {
            fprintf(stderr, "baram %s: bad --grace '%s' (a duration like 30s, 5m, 0s)\n", cmd,
                    grace);
            return EXIT_USAGE;
        }
    }
    struct home h = {0};
    if (home_setup(&h, cmd, home_flag) < 0 ||
        home_apply_api_flags(&h, cmd, max_rps, api_threads) < 0) {
        home_release(&h);
        return EXIT_USAGE;
    }
    if (!h.log_level_set)
        log_set_level(LOG_INFO);
    struct err err = {0};
    if (home_create(&h, &err) < 0) {
        log_error("cannot start", "role=%s error=%s", cmd, log_q(err_msg(&err)));
        home_release(&h);
        return EXIT_FAILED;
    }
    struct run_pool *pools = home_run_pools(&h);
    struct standalone_ctx ctx = {.cmd = cmd, .dags = dags ? dags : h.dags, .pools = pools};
    struct daemon_opts o = {
        .home = h.dir,
        .dags = ctx.dags,
        .store_url = h.db,
        .parallelism = parallelism ? parallelism : h.parallelism,
        .http_max_per_host = h.http_max_per_host,
        .notifiers = h.notifiers,
        .nnotifiers = h.nnotifiers,
        .public_url = h.api.public_url,
        .pools = pools,
        .npools = h.npools,
        .grace_ms = grace_ms,
        .ready = standalone_ready,
        .ready_ud = &ctx,
        .locked = standalone_locked,
        .heartbeat_ms = h.sched_heartbeat_ms,
        .dead_after_ms = h.sched_dead_after_ms,
        .worker_heartbeat_ms = home_worker_heartbeat_ms(&h),
        .worker_dead_after_ms = home_worker_dead_after_ms(&h),
        .retention_runs_ms = h.retention.runs_ms,
        .retention_logs_ms = h.retention.logs_ms,
        .retention_every_ms = h.retention.every_ms,
    };
    /* On PostgreSQL `standalone` is a scheduler, a worker and the API in one process: the
     * worker runs its tries (and any other scheduler's of its queue); `scheduler` runs none. */
    struct worker_opts wo = {
        .store_url = h.db,
        .home = h.dir,
        .slots = o.parallelism > 0 ? o.parallelism : 1,
        .heartbeat_ms = home_worker_heartbeat_ms(&h),
        .dead_after_ms = home_worker_dead_after_ms(&h),
        .grace_ms = grace_ms >= 0 ? grace_ms : DAEMON_GRACE_MS,
        .store_max = home_logs_store_max(&h),
    };
    if (with_api)
        o.worker = &wo;
    struct standalone_api api = {0};
    if (with_api) {
        o.on_commit = standalone_on_commit;
        o.commit_ud = &api;
    }
    ctx.h = &h;
    ctx.listen = listen ? listen : h.listen;
    ctx.api = with_api ? &api : NULL;
    struct err de = {0};
    worker_pool_widen(); /* before any work is queued: a slow database starves no heartbeat */
    r = daemon_run(&o, &de);
    standalone_api_stop(&api);
    free(pools);
    int ret = EXIT_OK;
    if (r == -ESTALE) { /* declared dead by the other schedulers (daemon.h) */
        log_error("stepped down", "role=%s error=%s", cmd, log_q(err_msg(&de)));
        ret = EXIT_FAILED;
    } else if (r < 0) {
        log_error("cannot start", "role=%s error=%s", cmd, log_q(err_msg(&de)));
        ret = r == ERR_DB ? EXIT_USAGE : EXIT_FAILED;
    }
    home_release(&h);
    return ret;
}

int cmd_standalone(int argc, char **argv)
{
    return standalone_main("standalone", true, argc, argv);
}

int cmd_scheduler(int argc, char **argv)
{
    return standalone_main("scheduler", false, argc, argv);
}
