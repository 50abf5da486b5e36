/*
 * params.h - a DAG's params and the overrides a run is given (SPEC section
 * 4, `params`; `baram run -p NAME=VALUE`, a trigger's conf): checking the
 * overrides against the DAG, the values a run's templates and environment
 * see, and the conf JSON that carries the overrides in the store and over
 * the API.
 *
 * Pure functions of a DAG and the values given, used by the scheduler, ops
 * and the CLI alike, so every door checks and records params the same way.
 * Any thread.
 */
#ifndef BARAM_DAG_PARAMS_H
#define BARAM_DAG_PARAMS_H

#include <stddef.h>

#include "base/compiler.h"

struct dag;
struct diag;

/* One override of a DAG's param: NAME=VALUE. */
struct params_override {
    const char *name;  /* borrowed (owned when made by params_conf_parse) */
    const char *value; /* borrowed (owned when made by params_conf_parse) */
};

/* The precision of reals in the JSON baram writes (jansson's dump flag): 15 significant digits
 * (DBL_DIG), so that 0.1 reads 0.1 (jansson's default 17 digits show the binary noise:
 * 0.10000000000000001) while any decimal of up to 15 digits comes back as written. Expands
 * where <jansson.h> is included. */
#define PARAMS_JSON_REALS JSON_REAL_PRECISION(15)

/* Checks the overrides against the DAG's params: an unknown name (with a "did you mean"
 * hint), a malformed one (no name, or no value), or a param without default left unset is an
 * entry in d. 0 or -EINVAL. */
int params_check(const struct dag *dag, const struct params_override *ov, size_t n,
                 struct diag *d) WARN_UNUSED;

/* The value of each of the DAG's params (dag->nparams entries, in file order): the last
 * override of it, else its default (NULL when it has none). The array is malloc'd (free it);
 * the strings are borrowed from dag and ov. */
const char **params_values(const struct dag *dag, const struct params_override *ov, size_t n);

/* What `{{ params.NAME }}` expands to, given values from params_values: borrowed, or NULL
 * when the DAG has no param NAME or it has no value. */
const char *params_lookup(const struct dag *dag, const char *const *values, const char *name);

/* The conf JSON of the overrides (compact, keys sorted, string values; an override without
 * a name or value is left out), or NULL when there are none; malloc'd. */
char *params_conf_json(const struct params_override *ov, size_t n);
/* Parses a conf JSON object (values: strings, numbers, booleans) into overrides (*out, names
 * and values malloc'd; free with params_conf_free). NULL or "" is no overrides. 0, or -EINVAL
 * with *errmsg (malloc'd). */
int params_conf_parse(const char *json, struct params_override **out, size_t *n,
                      char **errmsg) WARN_UNUSED;
/* Frees what params_conf_parse made; NULL is a no-op. */
void params_conf_free(struct params_override *ov, size_t n);

#endif
