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

#include <stdbool.h>
#include <stddef.h>

#include "base/compiler.h"

struct dag;
struct diag;
struct dagfile_node;
struct json_t;

/* Where an override's value comes from, which decides how it meets a typed param. */
enum params_from {
    PARAMS_FROM_TEXT,   /* a command line's NAME=VALUE: converted to the param's type ("5" -> 5) */
    PARAMS_FROM_STRING, /* a JSON string of a conf: only a string (or untyped) param takes it */
    PARAMS_FROM_JSON,   /* a JSON number, boolean, array or object of a conf: value is its JSON */
};

/* One override of a DAG's param: NAME=VALUE. */
struct params_override {
    const char *name;   /* borrowed (owned when made by params_conf_parse) */
    const char *value;  /* borrowed (owned when made by params_conf_parse) */
    unsigned char from; /* enum params_from */
};

/* ---- typed params (SPEC section 13): a JSON Schema subset ---- */

#define PARAMS_TYPE_TABLE(X)                                                                       \
    X(PARAM_ANY, "")                                                                               \
    X(PARAM_STRING, "string")                                                                      \
    X(PARAM_INTEGER, "integer")                                                                    \
    X(PARAM_NUMBER, "number")                                                                      \
    X(PARAM_BOOLEAN, "boolean")                                                                    \
    X(PARAM_ARRAY, "array")                                                                        \
    X(PARAM_OBJECT, "object")

enum param_type {
#define X(e, s) e,
    PARAMS_TYPE_TABLE(X)
#undef X
};

#define PARAMS_PATTERN_MAX 1000 /* bytes of a `pattern` */

/* The schema of one param written as a mapping ({type, enum, minimum, maximum, pattern,
 * description, default}); a plain `name: value` param has none (untyped: any string, number
 * or boolean, kept as a string, as before). Immutable once loaded: any thread. */
struct param_schema {
    unsigned char type; /* enum param_type; PARAM_ANY when `type` is absent */
    bool has_min, has_max;
    double minimum, maximum;
    char *description;    /* owned, or NULL */
    char *pattern;        /* owned, or NULL: a POSIX extended regex, searched (not anchored) */
    void *re;             /* owned regex_t of pattern, or NULL */
    struct json_t *enums; /* owned array of the allowed values (typed), or NULL */
    struct json_t *dflt;  /* owned: the default as typed JSON, or NULL when it has none */
};

/* Reads the mapping v of param name (at file's line numbers) into *s and returns its default
 * as the text templates see (malloc'd: a string as is, other values as compact JSON), or
 * NULL when it has none. Problems go to d with their line. */
char *params_schema_load(struct param_schema *s, const char *name, const struct dagfile_node *v,
                         const char *file, struct diag *d);
/* Frees the schemas of n params; NULL is a no-op. */
void params_schema_free(struct param_schema *s, size_t n);
/* The name of a type ("integer"). */
const char *params_type_name(enum param_type t);

/* The value of an override for a param of schema s (NULL: untyped), as JSON (a new reference;
 * an untyped param's value is a string), or NULL with *msg (malloc'd) naming the param and the
 * rule it breaks: "param 'limit': 0 is less than the minimum 1". */
struct json_t *params_value(const struct param_schema *s, const char *name, const char *value,
                            enum params_from from, char **msg);

/* The precision of reals in the JSON baram writes (jansson's dump flag): 15 significant digits
 * (DBL_DIG), so that 0.1 reads 0.1 (jansson's default 17 digits show the binary noise:
 * 0.10000000000000001) while any decimal of up to 15 digits comes back as written. Expands
 * where <jansson.h> is included. */
#define PARAMS_JSON_REALS JSON_REAL_PRECISION(15)

/* Checks the overrides against the DAG's params: an unknown name (with a "did you mean"
 * hint), a malformed one (no name, or no value), a value its param's schema refuses, or a
 * param without default left unset is an entry in d. 0 or -EINVAL. */
int params_check(const struct dag *dag, const struct params_override *ov, size_t n,
                 struct diag *d) WARN_UNUSED;

/* The value of each of the DAG's params (dag->nparams entries, in file order): the last
 * override of it, else its default (NULL when it has none). The array is malloc'd (free it);
 * the strings are borrowed from dag and ov. */
const char **params_values(const struct dag *dag, const struct params_override *ov, size_t n);

/* What `{{ params.NAME }}` expands to, given values from params_values: borrowed, or NULL
 * when the DAG has no param NAME or it has no value. */
const char *params_lookup(const struct dag *dag, const char *const *values, const char *name);

/* The conf JSON of the overrides (compact, keys sorted; a typed param's value with its type,
 * an untyped one's as a string; an override without a name or value is left out), or NULL
 * when there are none; malloc'd. dag may be NULL (every value a string). */
char *params_conf_json(const struct dag *dag, const struct params_override *ov, size_t n);
/* Parses a conf JSON object (values: strings, numbers, booleans, arrays, objects) into
 * overrides (*out, names and values malloc'd, arrays and objects as compact JSON; free with
 * params_conf_free). NULL or "" is no overrides. 0, or -EINVAL with *errmsg (malloc'd). */
int params_conf_parse(const char *json, struct params_override **out, size_t *n,
                      char **errmsg) WARN_UNUSED;
/* The DAG's params as {NAME: {type, default, enum, minimum, maximum, pattern, description}}
 * (the keys a param has; an untyped one: {default}, a string or null) for the API and the UI's
 * trigger form. A new reference. */
struct json_t *params_schema_json(const struct dag *dag);
/* Frees what params_conf_parse made; NULL is a no-op. */
void params_conf_free(struct params_override *ov, size_t n);

#endif
