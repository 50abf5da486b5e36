/*
 * params.c - a DAG's params and a run's overrides (see params.h). The
 * overrides are a short list and a DAG has few params: the checks are
 * linear scans, with no allocation beyond what they return.
 */
#include "dag/params.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/diag.h"
#include "base/suggest.h"
#include "base/xalloc.h"
#include "dag/dag.h"

int params_check(const struct dag *dag, const struct params_override *params, size_t nparams,
                 struct diag *d)
{
    int rc = 0;
    const char **names = xcalloc(dag->nparams ? dag->nparams : 1, sizeof(char *));
    for (size_t i = 0; i < dag->nparams; i++)
        names[i] = dag->params[i].name;
    for (size_t i = 0; i < nparams; i++) {
        const char *n = params[i].name;
        if (!n || !*n || !params[i].value) {
            rc = diag_err(d, dag->path, 0, 0, "malformed param '%s' (expected NAME=VALUE)",
                          n ? n : "");
            continue;
        }
        if (dag_param_index(dag, n) < 0) {
            rc = diag_err(d, dag->path, 0, 0, "unknown param '%s'", n);
            const char *s = suggest_closest(n, names, dag->nparams);
            if (s)
                diag_hint(d, "did you mean '%s'?", s);
        }
    }
    for (size_t i = 0; i < dag->nparams; i++) {
        if (dag->params[i].value)
            continue;
        bool given = false;
        for (size_t k = 0; k < nparams && !given; k++)
            given = params[k].name && strcmp(params[k].name, dag->params[i].name) == 0 &&
                    params[k].value;
        if (!given)
            rc = diag_err(d, dag->path, 0, 0, "param '%s' has no default and was not given",
                          dag->params[i].name);
    }
    free(names);
    return rc < 0 ? -EINVAL : 0;
}

const char **params_values(const struct dag *dag, const struct params_override *ov, size_t n)
{
    const char **v = xcalloc(dag->nparams ? dag->nparams : 1, sizeof(*v));
    for (size_t i = 0; i < dag->nparams; i++)
        v[i] = dag->params[i].value;
    for (size_t i = 0; i < n; i++) {
        int pi = ov[i].name ? dag_param_index(dag, ov[i].name) : -1;
        if (pi >= 0 && ov[i].value)
            v[pi] = ov[i].value;
    }
    return v;
}

const char *params_lookup(const struct dag *dag, const char *const *values, const char *name)
{
    int pi = dag_param_index(dag, name);
    return pi >= 0 ? values[pi] : NULL;
}

char *params_conf_json(const struct params_override *params, size_t nparams)
{
    if (nparams == 0)
        return NULL;
    json_t *o = json_object();
    for (size_t i = 0; i < nparams; i++)
        if (params[i].name && params[i].value)
            json_object_set_new(o, params[i].name, json_string(params[i].value));
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

int params_conf_parse(const char *json, struct params_override **out, size_t *n, char **errmsg)
{
    *out = NULL;
    *n = 0;
    if (!json || !*json)
        return 0;
    json_error_t jerr;
    json_t *o = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (!o || !json_is_object(o)) {
        *errmsg = o ? xstrdup("conf must be a JSON object of params, like {\"region\": \"eu\"}")
                    : xasprintf("conf is not valid JSON: %s (line %d, column %d)", jerr.text,
                                jerr.line, jerr.column);
        json_decref(o);
        return -EINVAL;
    }
    struct params_override *v = xcalloc(json_object_size(o) + 1, sizeof(*v));
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val)
    {
        char *sv;
        if (json_is_string(val))
            sv = xstrndup(json_string_value(val), json_string_length(val));
        else if (json_is_integer(val) || json_is_real(val) || json_is_boolean(val)) {
            char *d = json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT | PARAMS_JSON_REALS);
            sv = xstrdup(d ? d : "");
            free(d);
        } else {
            *errmsg = xasprintf("conf param '%s' must be a string, number or boolean", key);
            for (size_t i = 0; i < k; i++) {
                free((char *)v[i].name);
                free((char *)v[i].value);
            }
            free(v);
            json_decref(o);
            return -EINVAL;
        }
        v[k].name = xstrdup(key);
        v[k].value = sv;
        k++;
    }
    json_decref(o);
    *out = v;
    *n = k;
    return 0;
}

void params_conf_free(struct params_override *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)v[i].name);
        free((char *)v[i].value);
    }
    free(v);
}
