/*
 * cmd_workers.c - `baram workers list [--json]` (SPEC section 12): the
 * registry of the store, every scheduler and worker that registered, with
 * its state and last heartbeat. The list is runjson_workers, the same as the
 * API's GET /api/v1/workers. Main thread; everything allocated here is freed
 * here.
 */
#include "cli/cmd.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/compiler.h"
#include "base/err.h"
#include "base/suggest.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/home.h"
#include "cli/out.h"
#include "ops/runjson.h"
#include "store/store.h"

static const char usage[] =
    "usage: baram workers list [--json]\n"
    "\n"
    "list: every scheduler and worker registered in the database, schedulers first: its name\n"
    "(HOST:PID unless --name), role (scheduler or worker), host, pid, the queues it takes\n"
    "tries from, slots, the tries running under it (a worker: the tries it claimed; a\n"
    "scheduler: the running task instances of its runs), its state (active; draining: SIGTERM\n"
    "received, finishing its tries; DEAD: silent past worker.dead_after or\n"
    "scheduler.dead_after, its tries retried elsewhere; stopped: exited cleanly) and when it\n"
    "started and last sent a heartbeat (UTC).\n"
    "  --json   print {\"workers\":[{\"name\",\"role\",\"hostname\",\"pid\",\"queues\",\"slots\",\n"
    "           \"running\",\"state\",\"started_at\",\"heartbeat_at\"}]}\n"
    "\n"
    "exit: 0, 1 the database failed, 2 usage error\n";

/* "2026-01-01 03:00:00" of an ISO time (or "-" for null), as the other tables print times. */
static void short_iso(const json_t *t, char *out, size_t cap)
{
    const char *s = json_string_value(t);
    if (!s || strlen(s) < 19) {
        snprintf(out, cap, "-");
        return;
    }
    snprintf(out, cap, "%.10s %.8s", s, s + 11);
}

/* The queues of a registry object as "a,b" (into out). */
static void queues_cell(const json_t *o, char *out, size_t cap)
{
    size_t i, len = 0;
    json_t *q;
    out[0] = 0;
    json_array_foreach(json_object_get(o, "queues"), i, q)
    {
        int k = snprintf(out + len, cap - len, "%s%s", i ? "," : "", json_string_value(q));
        if (k < 0 || (size_t)k >= cap - len)
            break;
        len += (size_t)k;
    }
    if (!out[0])
        snprintf(out, cap, "-");
}

static int max_int(int a, int b)
{
    return a > b ? a : b;
}

/* One line per process; a dead one's state in capitals (DEAD) so that it stands out. */
static void workers_table(const json_t *a)
{
    if (json_array_size(a) == 0) {
        puts("no schedulers or workers registered");
        return;
    }
    int wname = 4, whost = 4, wq = 6;
    size_t i;
    json_t *o;
    char queues[256];
    json_array_foreach(a, i, o)
    {
        wname = max_int(wname, (int)strlen(json_string_value(json_object_get(o, "name"))));
        whost = max_int(whost, (int)strlen(json_string_value(json_object_get(o, "hostname"))));
        queues_cell(o, queues, sizeof queues);
        wq = max_int(wq, (int)strlen(queues));
    }
    printf("%-*s  %-9s  %-*s  %7s  %-*s  %5s  %7s  %-8s  %-19s  %s\n", wname, "NAME", "ROLE", whost,
           "HOST", "PID", wq, "QUEUES", "SLOTS", "RUNNING", "STATE", "STARTED", "HEARTBEAT");
    json_array_foreach(a, i, o)
    {
        char started[32], beat[32];
        short_iso(json_object_get(o, "started_at"), started, sizeof started);
        short_iso(json_object_get(o, "heartbeat_at"), beat, sizeof beat);
        queues_cell(o, queues, sizeof queues);
        const char *state = json_string_value(json_object_get(o, "state"));
        printf("%-*s  %-9s  %-*s  %7lld  %-*s  %5lld  %7lld  %-8s  %-19s  %s\n", wname,
               json_string_value(json_object_get(o, "name")),
               json_string_value(json_object_get(o, "role")), whost,
               json_string_value(json_object_get(o, "hostname")),
               (long long)json_integer_value(json_object_get(o, "pid")), wq, queues,
               (long long)json_integer_value(json_object_get(o, "slots")),
               (long long)json_integer_value(json_object_get(o, "running")),
               state && strcmp(state, "dead") == 0 ? "DEAD" : state, started, beat);
    }
}

static int workers_list(struct home *h, bool json)
{
    struct store *s = NULL;
    struct err err = {0};
    int r = home_open_store(h, false, &s, &err);
    if (r < 0 && r != -ENOENT) {
        fprintf(stderr, "baram workers list: %s\n", err_msg(&err));
        return EXIT_FAILED;
    }
    json_t *a = NULL;
    int ret = EXIT_OK;
    if (!s) /* no database yet: nothing registered */
        a = json_array();
    if (s && runjson_workers(s, &a, &err) < 0) {
        fprintf(stderr, "baram workers list: %s\n", err_msg(&err));
        ret = EXIT_FAILED;
    } else if (json) {
        json_t *o = json_pack("{s:O}", "workers", a);
        if (out_json_print(stdout, o) < 0)
            ret = EXIT_FAILED;
        json_decref(o);
    } else {
        workers_table(a);
    }
    json_decref(a);
    store_close(s);
    return ret;
}

int cmd_workers(int argc, char **argv)
{
    static const char *const subs[] = {"list"};
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (strcmp(sub, "list") != 0) {
        const char *near = suggest_closest(sub, subs, ARRAY_SIZE(subs));
        if (near)
            fprintf(stderr, "baram workers: unknown command '%s' (did you mean '%s'?)\n", sub,
                    near);
        else
            fprintf(stderr, "baram workers: unknown command '%s'; see 'baram workers --help'\n",
                    sub);
        return EXIT_USAGE;
    }
    const char *home_flag = NULL;
    bool json = false;
    size_t npos = 0;
    const struct args_flag flags[] = {
        {"json", ARGS_BOOL, &json, NULL, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    int r =
        args_parse("workers list", argc - 1, argv + 1, flags, ARRAY_SIZE(flags), NULL, 0, &npos);
    if (r == ARGS_HELP) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (r < 0)
        return EXIT_USAGE;
    struct home h;
    if (home_setup(&h, "workers list", home_flag) < 0) {
        home_release(&h);
        return EXIT_USAGE;
    }
    int ret = workers_list(&h, json);
    home_release(&h);
    return ret;
}
