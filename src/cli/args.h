/*
 * args.h - the flag parser every command shares: long flags only
 * (`--name VALUE`, `--name=VALUE`, `--bool`), positional arguments in order,
 * `--` ends the flags, `--help`/`-h` asks for help. An unknown flag is
 * reported with a did-you-mean hint, in the form every command uses:
 *   baram run: unknown flag '--parralelism' (did you mean '--parallelism'?)
 *
 * Values are borrowed from argv. Main thread only.
 */
#ifndef BARAM_CLI_ARGS_H
#define BARAM_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

/* A repeatable flag's values (--param a=1 --param b=2), in order. */
struct args_list {
    const char **v; /* owned array; the strings are borrowed from argv */
    size_t n, cap;
};

enum args_kind {
    ARGS_BOOL,   /* --json: sets *on */
    ARGS_STRING, /* --date D: sets *value (the last one given wins) */
    ARGS_LIST,   /* --param k=v, repeatable: appends to *list */
};

struct args_flag {
    const char *name; /* without the dashes: "parallelism" */
    enum args_kind kind;
    bool *on;
    const char **value;
    struct args_list *list;
};

#define ARGS_HELP 1

/* Parses argv[1..argc) (argv[0] is the command's name, cmd is used in messages, e.g.
 * "run" or "runs list"). Positional arguments go to pos (room for maxpos; at most maxpos
 * accepted, more is an error) and *npos. Returns 0, ARGS_HELP when --help or -h was given,
 * or -EINVAL after printing the problem to stderr. */
int args_parse(const char *cmd, int argc, char **argv, const struct args_flag *flags, size_t nflags,
               const char **pos, size_t maxpos, size_t *npos) WARN_UNUSED;

void args_list_release(struct args_list *l);

struct dag;
struct params_override;

/* Splits each --param value "NAME=VALUE" into params (names and values malloc'd; free with
 * args_params_free). 0, or -EINVAL after printing "baram CMD: bad --param ..." to stderr. */
int args_params(const char *cmd, const struct args_list *l, struct params_override **out,
                size_t *n) WARN_UNUSED;
void args_params_free(struct params_override *v, size_t n);

/* The FILE argument as a checked DAG whose params accept these --param values: the dag
 * (dag_free it), or NULL after printing every problem GCC-style to stderr. */
struct dag *args_dag(const char *path, const struct params_override *params, size_t nparams);

/* Parses a --date value (YYYY-MM-DD, or an ISO 8601 UTC time) into *at_ms. 0, or -EINVAL
 * after printing the problem. */
int args_date(const char *cmd, const char *s, int64_t *at_ms) WARN_UNUSED;

/* Parses a flag's whole number in [min, max]. 0, or -EINVAL after printing the problem. */
int args_int(const char *cmd, const char *flag, const char *s, int min, int max,
             int *out) WARN_UNUSED;

#endif
