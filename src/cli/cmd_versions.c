/*
 * cmd_versions.c - `baram dags versions DAG [--json]` (SPEC section 13): the
 * versions of a DAG the store has seen, newest first, with when each was
 * first seen, its first run and how many runs used it (ops/versions.h, the
 * same JSON as GET /api/v1/dags/{dag}/versions). Reads the store only; an
 * unknown DAG is a usage error (2) with a did-you-mean.
 *
 * Main thread; everything allocated here is freed here.
 */
#include "cli/cmd.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "base/compiler.h"
#include "base/err.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/home.h"
#include "cli/out.h"
#include "ops/versions.h"
#include "store/store.h"

static const char usage[] =
    "usage: baram dags versions DAG [--json]\n"
    "\n"
    "The versions of DAG the database holds (a version is a DAG file's content, named by its\n"
    "SHA-256; the scheduler records one when it loads the file, a run the one it starts with),\n"
    "newest first: its hash, whether it is the one loaded now (*), when it was first seen, its\n"
    "first run and how many runs used it. 'GET /api/v1/dags/DAG/versions/HASH' gives a\n"
    "version's source.\n"
    "  --json   print {\"dag_id\",\"current\",\"versions\":[{\"hash\",\"current\",\"created_at\",\n"
    "           \"first_run_at\",\"runs\"}]}\n"
    "\n"
    "exit: 0, 1 the database failed, 2 usage error or unknown DAG\n";

/* "2026-01-01 03:00:00" of an ISO time, or "-". */
static const char *short_time(const json_t *t, char *out, size_t cap)
{
    const char *s = json_string_value(t);
    if (!s || strlen(s) < 19)
        snprintf(out, cap, "-");
    else
        snprintf(out, cap, "%.10s %.8s", s, s + 11);
    return out;
}

int cmd_dags_versions(int argc, char **argv)
{
    bool json = false;
    const char *home_flag = NULL;
    const struct args_flag flags[] = {
        {"json", ARGS_BOOL, &json, NULL, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    const char *pos[1];
    size_t npos = 0;
    int r = args_parse("dags versions", argc, argv, flags, ARRAY_SIZE(flags), pos, ARRAY_SIZE(pos),
                       &npos);
    if (r == ARGS_HELP) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (r < 0)
        return EXIT_USAGE;
    if (npos != 1) {
        fputs("baram dags versions: expected a DAG id; see 'baram dags versions --help'\n", stderr);
        return EXIT_USAGE;
    }
    struct home h;
    struct store *s;
    if ((r = home_setup_store(&h, "dags versions", home_flag, &s)) != EXIT_OK)
        return r;
    struct err err = {0};
    json_t *o = NULL;
    int ret = EXIT_OK;
    r = ops_dag_versions(s, pos[0], &o, &err);
    if (r < 0) {
        fprintf(stderr, "baram dags versions: %s\n", err_msg(&err));
        ret = r == -ENOENT ? EXIT_USAGE : EXIT_FAILED;
    } else if (json) {
        if (out_json_print(stdout, o) < 0)
            ret = EXIT_FAILED;
    } else {
        printf("  %-16s  %-19s  %-19s  %s\n", "VERSION", "FIRST SEEN", "FIRST RUN", "RUNS");
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(o, "versions"), i, v)
        {
            char a[32], b[32];
            printf("%c %-16.16s  %-19s  %-19s  %lld\n",
                   json_is_true(json_object_get(v, "current")) ? '*' : ' ',
                   json_string_value(json_object_get(v, "hash")),
                   short_time(json_object_get(v, "created_at"), a, sizeof a),
                   short_time(json_object_get(v, "first_run_at"), b, sizeof b),
                   (long long)json_integer_value(json_object_get(v, "runs")));
        }
    }
    json_decref(o);
    store_close(s);
    home_release(&h);
    return ret;
}
