/*
 * cmd_db.c - `baram db clean --older-than D [--logs-only] [--dry-run]
 * [--json]` (SPEC section 13): retention by hand. Deletes the finished runs
 * (success, failed, cancelled) that ended more than D ago, with their task
 * instances, tries and log files (ops/retention.h, what the scheduler does
 * for `retention:` in baram.yaml); --logs-only removes only their logs.
 * Queued and running runs are never touched. --dry-run counts and deletes
 * nothing.
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
#include "base/when.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/home.h"
#include "cli/out.h"
#include "dag/duration.h"
#include "ops/audit.h"
#include "ops/retention.h"
#include "store/store.h"

static const char usage[] =
    "usage: baram db clean --older-than D [--logs-only] [--dry-run] [--json]\n"
    "\n"
    "clean: deletes the finished runs (success, failed, cancelled) that ended more than D ago\n"
    "(a duration: 30d, 12h, 90m), with their task instances, tries and log files, in batches\n"
    "of 500 runs; queued and running runs are never deleted. The scheduler does the same on\n"
    "its own with 'retention: {runs: 90d, logs: 30d}' in baram.yaml.\n"
    "  --logs-only  remove only the runs' log files (and stored logs); the runs stay\n"
    "  --dry-run    count what would go; nothing is deleted\n"
    "  --json       print "
    "{\"dry_run\",\"older_than_ms\",\"runs\",\"task_instances\",\"log_runs\",\n"
    "               \"log_files\",\"bytes\"}\n"
    "\n"
    "exit: 0, 1 the database failed (or a scheduler is applying retention now), 2 usage error\n";

static int db_clean(int argc, char **argv)
{
    bool json = false, dry = false, logs_only = false;
    const char *home_flag = NULL, *older = NULL;
    const struct args_flag flags[] = {
        {"older-than", ARGS_STRING, NULL, &older, NULL},
        {"logs-only", ARGS_BOOL, &logs_only, NULL, NULL},
        {"dry-run", ARGS_BOOL, &dry, NULL, NULL},
        {"json", ARGS_BOOL, &json, NULL, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    size_t npos = 0;
    int r = args_parse("db clean", argc, argv, flags, ARRAY_SIZE(flags), NULL, 0, &npos);
    if (r == ARGS_HELP) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (r < 0)
        return EXIT_USAGE;
    int64_t ms = 0;
    if (!older) {
        fputs("baram db clean: --older-than is required (like --older-than 30d)\n", stderr);
        return EXIT_USAGE;
    }
    if (duration_parse(older, &ms) < 0 || ms <= 0) {
        fprintf(stderr, "baram db clean: bad --older-than '%.64s': expected a duration like 30d\n",
                older);
        return EXIT_USAGE;
    }
    struct home h;
    struct store *s;
    if ((r = home_setup_store(&h, "db clean", home_flag, &s)) != EXIT_OK)
        return r;
    struct err err = {0};
    int64_t before = when_now_ms() - ms;
    struct retention_opts o = {
        .home = h.dir,
        .runs_before_ms = logs_only ? 0 : before,
        .logs_before_ms = logs_only ? before : 0,
        .dry_run = dry,
    };
    struct retention_counts c = {0};
    bool skipped = false;
    int ret = EXIT_OK;
    r = ops_retention(s, &o, &c, &skipped, &err);
    if (r < 0) {
        fprintf(stderr, "baram db clean: %s\n", err_msg(&err));
        ret = EXIT_FAILED;
    } else if (skipped) {
        fputs("baram db clean: a scheduler is applying retention now; try again later\n", stderr);
        ret = EXIT_FAILED;
    }
    if (ret == EXIT_OK && !dry) { /* what went, in the audit log */
        struct audit_who who;
        audit_who_cli(&who);
        (void)audit_record(s, &who, "db clean", NULL, NULL, NULL,
                           json_pack("{s:I, s:b, s:I, s:I, s:I, s:I, s:I}", "older_than_ms",
                                     (json_int_t)ms, "logs_only", logs_only, "runs",
                                     (json_int_t)c.runs, "task_instances", (json_int_t)c.tis,
                                     "log_runs", (json_int_t)c.log_runs, "log_files",
                                     (json_int_t)c.log_files, "bytes", (json_int_t)c.bytes));
    }
    if (ret == EXIT_OK && json) {
        json_t *j =
            json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I}", "dry_run", dry, "older_than_ms",
                      (json_int_t)ms, "runs", (json_int_t)c.runs, "task_instances",
                      (json_int_t)c.tis, "log_runs", (json_int_t)c.log_runs, "log_files",
                      (json_int_t)c.log_files, "bytes", (json_int_t)c.bytes);
        if (out_json_print(stdout, j) < 0)
            ret = EXIT_FAILED;
        json_decref(j);
    } else if (ret == EXIT_OK) {
        const char *verb = dry ? "would delete" : "deleted";
        if (logs_only)
            printf("%s the logs of %lld runs: %lld log files, %lld bytes\n", verb,
                   (long long)c.log_runs, (long long)c.log_files, (long long)c.bytes);
        else
            printf("%s %lld runs, %lld task instances, %lld log files, %lld bytes\n", verb,
                   (long long)c.runs, (long long)c.tis, (long long)c.log_files, (long long)c.bytes);
    }
    store_close(s);
    home_release(&h);
    return ret;
}

int cmd_db(int argc, char **argv)
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
    if (strcmp(sub, "clean") == 0)
        return db_clean(argc - 1, argv + 1);
    fprintf(stderr, "baram db: unknown subcommand '%s'; see 'baram db --help'\n", sub);
    return EXIT_USAGE;
}
