/*
 * cli.c - the command table: `baram COMMAND [ARGS]` to the cmd_* function
 * that handles it. Each command parses its own flags and prints its own
 * --help; this file only picks the command, after the global flags
 * (--home DIR before the command name, --version, --help) and the log level
 * from BARAM_LOG_LEVEL (default warn: the CLI's own messages are not logs;
 * commands that read the config apply its log_level too). Main thread.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/suggest.h"
#include "cli/cmd.h"
#include "cli/home.h"

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"run", cmd_run, "run FILE [--param k=v]... [--date D] [--parallelism N] [--json]"},
    {"standalone", cmd_standalone, "standalone: scheduler + local executor in one process"},
    {"scheduler", cmd_scheduler, "scheduler: the scheduler alone (split deployments)"},
    {"worker", cmd_worker,
     "worker [--queues Q1,Q2] [--slots N] [--name NAME]: run tries (PostgreSQL deployments)"},
    {"api", cmd_api, "api [--listen HOST:PORT]: the REST API alone (split deployments)"},
    {"dags", cmd_dags,
     "dags list | show DAG | pause DAG | unpause DAG | validate PATH...   [--json]\n"
     "  baram dags trigger DAG [--conf JSON] [--date D] | backfill DAG --from D --to D\n"
     "  baram dags clear DAG --from D --to D [--task T] [--only-failed] [--dry-run]\n"
     "  baram dags versions DAG [--json]"},
    {"runs", cmd_runs,
     "runs list [DAG] | show RUN | profile RUN | cancel RUN | mark RUN success|failed"},
    {"tasks", cmd_tasks,
     "tasks test FILE TASK [--date D] [--param k=v]... | clear RUN TASK [--downstream]\n"
     "  baram tasks mark RUN TASK success|failed [--downstream]"},
    {"pools", cmd_pools, "pools list [--json] | set NAME SLOTS"},
    {"variables", cmd_variables,
     "variables set KEY [VALUE] [--secret] | get KEY | list [--json] | delete KEY"},
    {"workers", cmd_workers, "workers list [--json]: the schedulers and workers registered"},
    {"logs", cmd_logs, "logs RUN TASK [--try N] [--follow]"},
    {"init", cmd_init, "init: create the home (database, secret key, first admin user)"},
    {"users", cmd_users,
     "users add NAME --role viewer|operator|admin | list [--json] | delete NAME"},
    {"token", cmd_token, "token NAME [--ttl 1h]: mint a JWT for a user (admin tool)"},
    {"audit", cmd_audit, "audit list [--dag D] [--user U] [--limit N] [--json]: who did what"},
    {"db", cmd_db, "db clean --older-than D [--logs-only] [--dry-run] [--json]: retention"},
};

static void usage(FILE *out)
{
    fputs("usage: baram COMMAND [ARGS]    (baram COMMAND --help for details)\n\n"
          "commands:\n",
          out);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  baram %s\n", commands[i].summary);
    fputs("\nglobal: --home DIR (or BARAM_HOME; default ./.baram), --version, --help\n", out);
}

int cli_main(int argc, char **argv)
{
    enum log_level level = LOG_WARN;
    const char *env_level = getenv("BARAM_LOG_LEVEL");
    if (env_level && *env_level && log_parse_level(env_level, &level) < 0)
        level = LOG_WARN; /* commands reading the config report the bad value */
    log_set_level(level);

    /* Global flags before the command name. */
    while (argc >= 2 && strncmp(argv[1], "--home", 6) == 0) {
        if (argv[1][6] == '=') {
            home_set_global_flag(argv[1] + 7);
            argc -= 1, argv += 1;
        } else if (argv[1][6] == 0 && argc >= 3) {
            home_set_global_flag(argv[2]);
            argc -= 2, argv += 2;
        } else if (argv[1][6] == 0) {
            fputs("baram: flag '--home' needs a value\n", stderr);
            return EXIT_USAGE;
        } else {
            break;
        }
    }
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("baram %s\n", BARAM_VERSION);
        return EXIT_OK;
    }
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    const char *names[sizeof commands / sizeof commands[0]];
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
        names[i] = commands[i].name;
    }
    const char *near = suggest_closest(name, names, sizeof names / sizeof names[0]);
    if (name[0] == '-')
        fprintf(stderr, "baram: unknown flag '%s'; see 'baram --help'\n", name);
    else if (near)
        fprintf(stderr, "baram: unknown command '%s' (did you mean '%s'?)\n", name, near);
    else
        fprintf(stderr, "baram: unknown command '%s'; see 'baram --help'\n", name);
    return EXIT_USAGE;
}
