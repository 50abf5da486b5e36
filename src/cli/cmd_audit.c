/*
 * cmd_audit.c - `baram audit list [--dag D] [--user U] [--limit N] [--json]`
 * (SPEC section 13): the audit log, newest first, as GET /api/v1/audit
 * shows it (ops/audit.h): who changed what, when, from the CLI or the API.
 * Main thread.
 */
#include "cli/cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/err.h"
#include "base/suggest.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/home.h"
#include "cli/out.h"
#include "ops/audit.h"
#include "store/store.h"

#define AUDIT_LIST_DEFAULT 50

static const char usage[] =
    "usage: baram audit list [--dag D] [--user U] [--limit N] [--json]\n"
    "\n"
    "The audit log, newest first: every state-changing command and API call (trigger,\n"
    "cancel, clear, mark, backfill, pause, unpause, pool set, user add/delete, ...) with\n"
    "when, who (an API user, or cli:<unix user>), from where (cli or api), what and on\n"
    "what. --limit: 1 to 1000 (default 50).\n"
    "\n"
    "  --json   print {\"entries\":[{\"id\",\"at\",\"user\",\"source\",\"action\",\"dag_id\",\n"
    "           \"run_id\",\"task_id\",\"details\"}]}\n"
    "  --home DIR  the home (default $BARAM_HOME or ./.baram)\n"
    "\n"
    "exit: 0 listed, 1 the database failed, 2 usage error\n";

static void print_opt(const char *label, json_t *v)
{
    if (json_is_string(v))
        printf(" %s=%s", label, json_string_value(v));
}

static int audit_list(int argc, char **argv)
{
    const char *cmd = "audit list";
    const char *home_flag = NULL, *dag = NULL, *user = NULL, *limit_s = NULL;
    bool json = false;
    size_t npos;
    const char *pos[1];
    const struct args_flag flags[] = {
        {"dag", ARGS_STRING, NULL, &dag, NULL},        {"user", ARGS_STRING, NULL, &user, NULL},
        {"limit", ARGS_STRING, NULL, &limit_s, NULL},  {"json", ARGS_BOOL, &json, NULL, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    int r = args_parse(cmd, argc, argv, flags, ARRAY_SIZE(flags), pos, 0, &npos);
    if (r == ARGS_HELP) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (r < 0)
        return EXIT_USAGE;
    int limit = AUDIT_LIST_DEFAULT;
    if (limit_s && args_int(cmd, "--limit", limit_s, 1, AUDIT_LIST_MAX, &limit) < 0)
        return EXIT_USAGE;
    struct home h = {0};
    struct store *s = NULL;
    struct err err = {0};
    json_t *o = NULL;
    int ret = EXIT_USAGE;
    if (home_setup(&h, cmd, home_flag) < 0)
        goto out;
    r = home_open_store(&h, false, &s, &err);
    if (r == -ENOENT) { /* no database yet: nothing was done */
        o = json_pack("{s:[]}", "entries");
    } else if (r < 0) {
        fprintf(stderr, "baram %s: %s\n", cmd, err_msg(&err));
        goto out;
    } else {
        const char *msg = NULL;
        if (audit_list_json(s, dag, user, 0, limit, &o, &msg) < 0) {
            fprintf(stderr, "baram %s: %s\n", cmd, msg);
            ret = EXIT_FAILED;
            goto out;
        }
    }
    ret = EXIT_OK;
    if (json) {
        if (out_json_print(stdout, o) < 0)
            ret = EXIT_FAILED;
        goto out;
    }
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(o, "entries"), i, x)
    {
        printf("%s  %-16s %-4s %-12s", json_string_value(json_object_get(x, "at")),
               json_string_value(json_object_get(x, "user")),
               json_string_value(json_object_get(x, "source")),
               json_string_value(json_object_get(x, "action")));
        print_opt("dag", json_object_get(x, "dag_id"));
        print_opt("run", json_object_get(x, "run_id"));
        print_opt("task", json_object_get(x, "task_id"));
        json_t *d = json_object_get(x, "details");
        if (json_object_size(d)) {
            char *t = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
            printf(" %s", t ? t : "");
            free(t);
        }
        printf("\n");
    }
out:
    json_decref(o);
    store_close(s);
    home_release(&h);
    return ret;
}

int cmd_audit(int argc, char **argv)
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
    if (strcmp(sub, "list") == 0)
        return audit_list(argc - 1, argv + 1);
    static const char *const subs[] = {"list"};
    const char *near = suggest_closest(sub, subs, ARRAY_SIZE(subs));
    if (near)
        fprintf(stderr, "baram audit: unknown command '%s' (did you mean '%s'?)\n", sub, near);
    else
        fprintf(stderr, "baram audit: unknown command '%s'; see 'baram audit --help'\n", sub);
    return EXIT_USAGE;
}
