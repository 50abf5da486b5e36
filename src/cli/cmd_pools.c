/*
 * cmd_pools.c - `baram pools list | set NAME SLOTS` (SPEC section 3): the
 * named limits on task instances running at once.
 *
 * A pool's size comes from three places, the later winning: "default" with
 * SCHED_POOL_DEFAULT_SLOTS slots, the `pools` of baram.yaml, and the store
 * (the latest `pools set`, which the scheduler reads without a restart).
 * list shows each pool once with its size, where that size came from, and
 * how many of its task instances run, hold a slot not started yet (queued) and wait for one
 * (scheduled): ops_pools_list and ops_pool_json, the
 * same list as the API's GET /api/v1/pools.
 * list works without a database; set creates the home and database like
 * `baram run` and writes through ops_pool_set (ops/ops.h, shared with
 * the API). Main thread; everything allocated here is freed here.
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
#include "base/parse.h"
#include "base/suggest.h"
#include "base/xalloc.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/home.h"
#include "cli/out.h"
#include "dag/dag.h"
#include "ops/audit.h"
#include "ops/ops.h"
#include "store/store.h"

#define POOLS_SLOTS_MAX OPS_POOL_SLOTS_MAX

static const char usage[] =
    "usage: baram pools list [--json]\n"
    "       baram pools set NAME SLOTS\n"
    "\n"
    "list: every pool, its slots, its task instances running, queued (holding a slot, not\n"
    "started yet) and waiting for a slot (scheduled), and where its size comes from: default\n"
    "('default', 128 slots), config (baram.yaml 'pools') or store (the latest 'pools set',\n"
    "which wins).\n"
    "  --json   print "
    "{\"pools\":[{\"name\",\"slots\",\"running\",\"queued\",\"scheduled\",\"open\",\n"
    "           \"source\"}]}\n"
    "\n"
    "set: sets the pool's slots (0 to 100000; 0 holds its task instances back). NAME is made of\n"
    "[A-Za-z0-9_.-], 1 to 200 characters.\n"
    "\n"
    "exit: 0, 1 the database failed, 2 usage error\n";

static int pools_list(struct home *h, bool json)
{
    struct store *s = NULL;
    struct err err = {0};
    int r = home_open_store(h, false, &s, &err);
    if (r < 0 && r != -ENOENT) {
        fprintf(stderr, "baram pools list: %s\n", err_msg(&err));
        return EXIT_USAGE;
    }
    struct ops_pool *rows = NULL;
    size_t n = 0;
    struct ops_err e = {0};
    struct run_pool *cfg = home_run_pools(h);
    int ret = EXIT_OK;
    r = ops_pools_list(s, cfg, h->npools, &rows, &n, &e); /* s NULL: no database yet */
    free(cfg);
    if (r < 0) {
        ops_err_print(&e, stderr, "pools list");
        ops_err_release(&e);
        store_close(s);
        return EXIT_FAILED;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, ops_pool_json(&rows[i]));
    if (ret == EXIT_OK && json) {
        json_t *o = json_pack("{s:O}", "pools", arr);
        if (out_json_print(stdout, o) < 0)
            ret = EXIT_FAILED;
        json_decref(o);
    } else if (ret == EXIT_OK) {
        int w = 4;
        for (size_t i = 0; i < n; i++)
            w = (int)strlen(rows[i].name) > w ? (int)strlen(rows[i].name) : w;
        printf("%-*s  %6s  %7s  %6s  %7s  %s\n", w, "POOL", "SLOTS", "RUNNING", "QUEUED", "WAITING",
               "SOURCE");
        size_t i;
        json_t *o;
        json_array_foreach(arr, i, o)
        {
            printf("%-*s  %6lld  %7lld  %6lld  %7lld  %s\n", w,
                   json_string_value(json_object_get(o, "name")),
                   (long long)json_integer_value(json_object_get(o, "slots")),
                   (long long)json_integer_value(json_object_get(o, "running")),
                   (long long)json_integer_value(json_object_get(o, "queued")),
                   (long long)json_integer_value(json_object_get(o, "scheduled")),
                   json_string_value(json_object_get(o, "source")));
        }
    }
    json_decref(arr);
    ops_pools_free(rows, n);
    store_close(s);
    return ret;
}

static int pools_set(struct home *h, const char *name, const char *slots_s, bool json)
{
    struct ops_err e = {0};
    if (ops_pool_check(name, &e) < 0) {
        ops_err_print(&e, stderr, "pools set");
        ops_err_release(&e);
        return EXIT_USAGE;
    }
    int slots = 0;
    if (parse_int(slots_s, 0, POOLS_SLOTS_MAX, &slots) < 0) {
        fprintf(stderr,
                "baram pools set: bad SLOTS '%.64s': expected a whole number from 0 to %d\n",
                slots_s, POOLS_SLOTS_MAX);
        return EXIT_USAGE;
    }
    struct err err = {0};
    struct store *s = NULL;
    int r = home_create(h, &err);
    if (r == 0)
        r = home_open_store(h, true, &s, &err);
    if (r < 0) {
        fprintf(stderr, "baram pools set: %s\n", err_msg(&err));
        return EXIT_USAGE;
    }
    int ret = EXIT_OK;
    if (ops_pool_set(s, h->dir, name, slots, &e) < 0) {
        ops_err_print(&e, stderr, "pools set");
        ret = e.kind == OPS_BAD_INPUT ? EXIT_USAGE : EXIT_FAILED;
        goto out;
    }
    struct audit_who who;
    audit_who_cli(&who);
    (void)audit_record(s, &who, "pool set", NULL, NULL, NULL,
                       json_pack("{s:s, s:i}", "pool", name, "slots", slots));
    if (json) {
        json_t *o = json_pack("{s:s, s:i, s:s}", "name", name, "slots", slots, "source", "store");
        if (out_json_print(stdout, o) < 0)
            ret = EXIT_FAILED;
        json_decref(o);
    } else {
        printf("pool %s: %d slot%s\n", name, slots, slots == 1 ? "" : "s");
    }
out:
    ops_err_release(&e);
    store_close(s);
    return ret;
}

int cmd_pools(int argc, char **argv)
{
    static const char *const subs[] = {"list", "set"};
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    bool is_list = strcmp(sub, "list") == 0;
    if (!is_list && strcmp(sub, "set") != 0) {
        const char *near = suggest_closest(sub, subs, ARRAY_SIZE(subs));
        if (near)
            fprintf(stderr, "baram pools: unknown command '%s' (did you mean '%s'?)\n", sub, near);
        else
            fprintf(stderr, "baram pools: unknown command '%s'; see 'baram pools --help'\n", sub);
        return EXIT_USAGE;
    }
    const char *home_flag = NULL, *pos[2];
    bool json = false;
    size_t npos = 0;
    const struct args_flag flags[] = {
        {"json", ARGS_BOOL, &json, NULL, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    const char *cmd = is_list ? "pools list" : "pools set";
    /* `pools set NAME -1` would read as an unknown flag '-1': say what is wrong instead. */
    for (int i = 2; !is_list && i < argc && strcmp(argv[i], "--") != 0; i++)
        if (argv[i][0] == '-' && argv[i][1] >= '0' && argv[i][1] <= '9') {
            fprintf(stderr,
                    "baram pools set: bad SLOTS '%.64s': expected a whole number from 0 to %d\n",
                    argv[i], POOLS_SLOTS_MAX);
            return EXIT_USAGE;
        }
    int r =
        args_parse(cmd, argc - 1, argv + 1, flags, ARRAY_SIZE(flags), pos, is_list ? 0 : 2, &npos);
    if (r == ARGS_HELP) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (r < 0)
        return EXIT_USAGE;
    if (!is_list && npos != 2) {
        fputs("baram pools set: expected NAME and SLOTS; see 'baram pools --help'\n", stderr);
        return EXIT_USAGE;
    }
    struct home h;
    if (home_setup(&h, cmd, home_flag) < 0) {
        home_release(&h);
        return EXIT_USAGE;
    }
    int ret = is_list ? pools_list(&h, json) : pools_set(&h, pos[0], pos[1], json);
    home_release(&h);
    return ret;
}
