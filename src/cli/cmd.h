/*
 * cmd.h - the subcommands. Each takes the arguments after its own name
 * (argv[0] is the command name, e.g. "run"), parses its flags, prints its
 * own --help, and returns the exit code (cli.h: EXIT_OK, EXIT_FAILED,
 * EXIT_USAGE). Global flags (--home) are handled by each command through
 * cli/home.h.
 */
#ifndef BARAM_CLI_CMD_H
#define BARAM_CLI_CMD_H

int cmd_run(int argc, char **argv);   /* cmd_run.c:   baram run FILE ... */
int cmd_dags(int argc, char **argv);  /* cmd_dags.c:  baram dags list|show|trigger|... */
int cmd_runs(int argc, char **argv);  /* cmd_runs.c:  baram runs list|show|profile|cancel */
int cmd_tasks(int argc, char **argv); /* cmd_tasks.c: baram tasks test FILE TASK | clear RUN TASK */
int cmd_pools(int argc, char **argv); /* cmd_pools.c: baram pools list | set NAME SLOTS */
int cmd_variables(int argc, char **argv); /* cmd_variables.c: baram variables set|get|list|delete */
int cmd_logs(int argc, char **argv);  /* cmd_logs.c:  baram logs RUN TASK [--try N] [--follow] */
int cmd_init(int argc, char **argv);  /* cmd_init.c:  baram init */
int cmd_users(int argc, char **argv); /* cmd_users.c: baram users add|list|delete */
int cmd_token(int argc, char **argv); /* cmd_token.c: baram token NAME [--ttl D] */
int cmd_standalone(int argc, char **argv); /* cmd_standalone.c: baram standalone */
int cmd_scheduler(int argc, char **argv);  /* cmd_standalone.c: baram scheduler */
int cmd_api(int argc, char **argv);        /* cmd_api.c: baram api [--listen HOST:PORT] */
int cmd_workers(int argc, char **argv);    /* cmd_workers.c: baram workers list */
int cmd_audit(int argc, char **argv);      /* cmd_audit.c: baram audit list */
int cmd_worker(int argc, char **argv);     /* cmd_worker.c: baram worker [--queues ...] */
/* cmd_versions.c: baram dags versions DAG */
int cmd_dags_versions(int argc, char **argv);
/* cmd_db.c: baram db clean --older-than D */
int cmd_db(int argc, char **argv);

#endif
