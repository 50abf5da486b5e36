/*
 * cmd_api.c - `baram api [--listen HOST:PORT] [--home DIR]` (SPEC section
 * 3): the REST API (api/api.h) alone in the foreground, for split
 * deployments (the scheduler runs elsewhere and shares the store). It needs
 * the home's database and secret.key (`baram init`), logs in logfmt on
 * stderr (info unless configured otherwise) and stops on SIGTERM or Ctrl-C.
 *
 * Signals: SIGTERM and SIGINT are blocked before the server's threads start
 * (they inherit the mask), and the main thread waits for them with
 * sigwait; nothing else runs on it. Exit 0 after a clean stop, 1 when the
 * server cannot start, 2 for bad flags or config and for a database it cannot
 * use (unreachable, wrong, refused: ERR_DB), as every command.
 */
#include "cli/cmd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/hub.h"
#include "base/err.h"
#include "base/log.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/home.h"
#include "store/store.h"

static const char usage[] =
    "usage: baram api [--listen HOST:PORT] [--api-max-rps N] [--api-threads N] [--home DIR]\n"
    "\n"
    "Serves the REST API (/api/v1, see /api/v1/openapi.json) until SIGTERM or Ctrl-C.\n"
    "\n"
    "  --listen HOST:PORT  where to listen (default: config `listen`, 127.0.0.1:8080);\n"
    "                      [V6]:PORT for IPv6, port 0 for any free port\n"
    "  --api-max-rps N     requests the API starts a second at most; over it they wait their\n"
    "                      turn (default: config `api.max_rps`, 0: no limit)\n"
    "  --api-threads N     threads serving the API's connections (default: `api.threads`, 2)\n"
    "  --home DIR          the home (default $BARAM_HOME or ./.baram)\n";

/* Checks that the database exists (the API never creates one). 0, EXIT_USAGE for a database
 * it cannot use, or EXIT_FAILED. */
static int check_store(const struct home *h)
{
    struct store *s = NULL;
    struct err err = {0};
    int r = home_open_store(h, false, &s, &err);
    if (r < 0) {
        log_error("cannot start", "role=api error=%s",
                  log_q(err.msg[0] ? err.msg : "cannot open the database"));
        return r == ERR_DB ? EXIT_USAGE : EXIT_FAILED;
    }
    store_close(s);
    return 0;
}

int cmd_api(int argc, char **argv)
{
    const char *home_flag = NULL, *listen = NULL, *max_rps = NULL, *api_threads = NULL;
    const struct args_flag flags[] = {
        {"api-max-rps", ARGS_STRING, NULL, &max_rps, NULL},
        {"api-threads", ARGS_STRING, NULL, &api_threads, NULL},
        {"listen", ARGS_STRING, NULL, &listen, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    size_t npos;
    int r = args_parse("api", argc, argv, flags, ARRAY_SIZE(flags), NULL, 0, &npos);
    if (r == ARGS_HELP) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (r < 0)
        return EXIT_USAGE;
    struct home h = {0};
    if (home_setup(&h, "api", home_flag) < 0 ||
        home_apply_api_flags(&h, "api", max_rps, api_threads) < 0) {
        home_release(&h);
        return EXIT_USAGE;
    }
    if (!h.log_level_set)
        log_set_level(LOG_INFO);
    int ret = check_store(&h);
    if (ret) {
        home_release(&h);
        return ret;
    }
    struct auth *auth = NULL;
    struct hub *hub = NULL;
    struct api *api = NULL;
    struct run_pool *pools = home_run_pools(&h);
    struct err err = {0};
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    r = home_open_auth(&h, &auth, &err);
    if (r == 0)
        r = hub_start(h.db, &hub, &err);
    if (r == 0) {
        struct api_opts o = {
            .listen = listen ? listen : h.listen,
            .home = h.dir,
            .dags = h.dags,
            .store_url = h.db,
            .sched_dead_after_ms = home_dead_after_ms(&h),
            .auth = auth,
            .hub = hub,
            .max_rps = h.api.max_rps,
            .threads = h.api.threads,
            .pools = pools,
            .npools = h.npools,
        };
        r = api_start(&o, &api, &err);
    }
    if (r < 0) {
        log_error("cannot start", "role=api error=%s", log_q(err_msg(&err)));
        ret = EXIT_FAILED;
    } else {
        log_info("api listening", "listen=%s port=%d", log_q(listen ? listen : h.listen),
                 api_port(api));
        int sig = 0;
        while (sigwait(&set, &sig) != 0)
            ;
        log_info("api stopping", "signal=%d", sig);
        if (hub)
            hub_close(hub); /* event streams end, so their connections can close */
        api_stop(api);
        ret = EXIT_OK;
    }
    if (hub)
        hub_stop(hub);
    auth_close(auth);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    free(pools);
    home_release(&h);
    return ret;
}
