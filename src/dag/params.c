/*
 * params.c - a DAG's params and a run's overrides (see params.h). The
 * overrides are a short list and a DAG has few params: the checks are
 * linear scans, with no allocation beyond what they return.
 */
#include "dag/params.h"

#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/diag.h"
#include "base/suggest.h"
#include "base/xalloc.h"
#include "dag/dag.h"
#include "dag/dagfile.h"

/* ---- typed params ---- */

static const char *const type_names[] = {
#define X(e, s) s,
    PARAMS_TYPE_TABLE(X)
#undef X
};
#define NTYPES (sizeof type_names / sizeof type_names[0])

const char *params_type_name(enum param_type t)
{
    return (size_t)t < NTYPES ? type_names[t] : "?";
}

static const char *const schema_keys[] = {"type",    "enum",        "minimum", "maximum",
                                          "pattern", "description", "default"};
#define NSCHEMA_KEYS (sizeof schema_keys / sizeof schema_keys[0])

/* A value for messages: its compact JSON, cut at 80 bytes. malloc'd. */
static char *show(const json_t *v)
{
    char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | PARAMS_JSON_REALS);
    if (!t)
        return xstrdup("?");
    if (strlen(t) > 80)
        memcpy(t + 77, "...", 4); /* t holds more than 80 bytes: 77 + 4 fit */
    return t;
}

static const char *a_type(enum param_type t)
{
    return t == PARAM_INTEGER || t == PARAM_ARRAY || t == PARAM_OBJECT ? "an" : "a";
}

/* A bound as JSON: 1, not 1.0, when it is a whole number. */
static json_t *num_json(double x)
{
    if (x == floor(x) && fabs(x) <= 9007199254740992.0)
        return json_integer((json_int_t)x);
    return json_real(x);
}

/* json_equal, but 5 and 5.0 are the same number. */
static bool same_value(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return json_equal((json_t *)a, (json_t *)b);
}

/* v converted to type t, or NULL when it is not of that type (v is consumed either way). */
static json_t *as_type(json_t *v, enum param_type t)
{
    bool ok = false;
    switch (t) {
    case PARAM_ANY:
    case PARAM_STRING:
        ok = json_is_string(v);
        break;
    case PARAM_INTEGER:
        if (json_is_real(v)) { /* 5.0 is an integer (JSON Schema), held as one */
            double x = json_real_value(v);
            if (x == floor(x) && x >= -9007199254740992.0 && x <= 9007199254740992.0) {
                json_decref(v);
                return json_integer((json_int_t)x);
            }
        }
        ok = json_is_integer(v);
        break;
    case PARAM_NUMBER:
        ok = json_is_number(v);
        break;
    case PARAM_BOOLEAN:
        ok = json_is_boolean(v);
        break;
    case PARAM_ARRAY:
        ok = json_is_array(v);
        break;
    case PARAM_OBJECT:
        ok = json_is_object(v);
        break;
    }
    if (ok)
        return v;
    json_decref(v);
    return NULL;
}

json_t *params_value(const struct param_schema *s, const char *name, const char *value,
                     enum params_from from, char **msg)
{
    enum param_type t = s ? (enum param_type)s->type : PARAM_ANY;
    json_t *v = NULL;
    /* JSON from a conf, or text from a command line read as JSON ("5" -> 5) for a param of a
     * type other than string; anything else is a string */
    if (from == PARAMS_FROM_JSON ||
        (from == PARAMS_FROM_TEXT && t != PARAM_ANY && t != PARAM_STRING))
        v = json_loads(value, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (!v)
        v = json_string(value);
    if (!v) {
        *msg = xasprintf("param '%s': the value is not valid UTF-8", name);
        return NULL;
    }
    if (t == PARAM_ANY && (json_is_array(v) || json_is_object(v))) {
        *msg = xasprintf("conf param '%s' must be a string, number or boolean, not %s", name,
                         json_is_array(v) ? "an array" : "an object");
        json_decref(v);
        return NULL;
    }
    if (t == PARAM_ANY && !json_is_string(v)) { /* untyped: kept as a string, as written */
        json_decref(v);
        v = json_string(value);
    }
    json_t *tv = as_type(json_incref(v), t);
    if (!tv) {
        char *sh = show(v);
        *msg = xasprintf("param '%s': %s is not %s %s", name, sh, a_type(t), params_type_name(t));
        free(sh);
        json_decref(v);
        return NULL;
    }
    json_decref(v);
    v = tv;
    char *sh = NULL;
    if (s && s->enums) {
        bool found = false;
        for (size_t i = 0; i < json_array_size(s->enums) && !found; i++)
            found = same_value(v, json_array_get(s->enums, i));
        if (!found) {
            char *e = show(s->enums);
            *msg = xasprintf("param '%s': %s is not one of %s", name, sh = show(v), e);
            free(e);
            goto bad;
        }
    }
    if (s && json_is_number(v)) {
        double x = json_number_value(v);
        if (s->has_min && x < s->minimum) {
            json_t *m = num_json(s->minimum);
            char *ms = show(m);
            json_decref(m);
            *msg = xasprintf("param '%s': %s is less than the minimum %s", name, sh = show(v), ms);
            free(ms);
            goto bad;
        }
        if (s->has_max && x > s->maximum) {
            json_t *m = num_json(s->maximum);
            char *ms = show(m);
            json_decref(m);
            *msg =
                xasprintf("param '%s': %s is greater than the maximum %s", name, sh = show(v), ms);
            free(ms);
            goto bad;
        }
    }
    if (s && s->re && json_is_string(v) &&
        regexec((const regex_t *)s->re, json_string_value(v), 0, NULL, 0) != 0) {
        *msg = xasprintf("param '%s': %s does not match the pattern '%s'", name, sh = show(v),
                         s->pattern);
        goto bad;
    }
    return v;
bad:
    free(sh);
    json_decref(v);
    return NULL;
}

/* A YAML node as JSON: a plain scalar is read as JSON when it is a number, boolean or null,
 * else it is a string; a quoted one is a string. NULL (with an entry in d) for a repeated key
 * or a string that is not UTF-8. */
static json_t *node_json(const struct dagfile_node *n, const char *file, struct diag *d)
{
    json_t *v = NULL;
    if (n->kind == DAGFILE_SCALAR) {
        if (n->style == DAGFILE_PLAIN) {
            v = dagfile_is_null(n) ? json_null()
                                   : json_loadb(n->str, n->len, JSON_DECODE_ANY, NULL);
            if (v && (json_is_array(v) || json_is_object(v) || json_is_string(v))) {
                json_decref(v);
                v = NULL;
            }
        }
        if (!v)
            v = json_stringn(n->str, n->len);
        if (!v)
            diag_err(d, file, n->line, n->col, "the value is not valid UTF-8");
        return v;
    }
    v = n->kind == DAGFILE_SEQ ? json_array() : json_object();
    for (size_t i = 0; i < n->n; i++) {
        const struct dagfile_node *item = n->kind == DAGFILE_SEQ ? n->items[i] : n->pairs[i].value;
        if (n->kind == DAGFILE_MAP && n->pairs[i].dup_line) {
            diag_err(d, file, n->pairs[i].key->line, n->pairs[i].key->col, "duplicate key '%.100s'",
                     n->pairs[i].key->str);
            json_decref(v);
            return NULL;
        }
        json_t *iv = node_json(item, file, d);
        if (!iv) {
            json_decref(v);
            return NULL;
        }
        if (n->kind == DAGFILE_SEQ)
            json_array_append_new(v, iv);
        else
            json_object_setn_new(v, n->pairs[i].key->str, n->pairs[i].key->len, iv);
    }
    return v;
}

static bool scalar(const struct dagfile_node *n)
{
    return n->kind == DAGFILE_SCALAR && !dagfile_is_null(n);
}

/* A `minimum` or `maximum`: 0, or -1 after an entry in d. */
static int schema_bound(const char *name, const char *key, const struct dagfile_node *n,
                        const char *file, struct diag *d, double *out)
{
    json_t *v = scalar(n) ? json_loadb(n->str, n->len, JSON_DECODE_ANY, NULL) : NULL;
    bool ok = v && json_is_number(v);
    if (ok)
        *out = json_number_value(v);
    json_decref(v);
    if (!ok)
        diag_err(d, file, n->line, n->col, "param '%s': '%s' must be a number", name, key);
    return ok ? 0 : -1;
}

/* A `pattern`: compiled into s, or an entry in d. */
static void schema_pattern(struct param_schema *s, const char *name, const struct dagfile_node *n,
                           const char *file, struct diag *d)
{
    if (!scalar(n)) {
        diag_err(d, file, n->line, n->col, "param '%s': 'pattern' must be a string", name);
        return;
    }
    if (n->len > PARAMS_PATTERN_MAX || strlen(n->str) != n->len) {
        diag_err(d, file, n->line, n->col, "param '%s': 'pattern' is longer than %d bytes", name,
                 PARAMS_PATTERN_MAX);
        return;
    }
    for (const char *p = n->str; *p; p++) {
        if (p[0] == '\\' && p[1] >= '1' && p[1] <= '9') {
            /* a back-reference makes matching exponential: refused, the value is untrusted */
            diag_err(d, file, n->line, n->col,
                     "param '%s': 'pattern' may not use "
                     "back-references (\\%c)",
                     name, p[1]);
            return;
        }
        if (p[0] == '\\' && p[1])
            p++;
    }
    regex_t *re = xcalloc(1, sizeof *re);
    int rc = regcomp(re, n->str, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[128];
        regerror(rc, re, why, sizeof why);
        diag_err(d, file, n->line, n->col, "param '%s': bad 'pattern' '%.100s': %s", name, n->str,
                 why);
        diag_hint(d, "a POSIX extended regular expression, e.g. '^[0-9]{4}-[0-9]{2}$'");
        free(re);
        return;
    }
    s->re = re;
    s->pattern = xstrndup(n->str, n->len);
}

/* The `enum` list n into s->enums (each item of the param's type), or entries in d. */
static void schema_enum(struct param_schema *s, const char *name, const struct dagfile_node *n,
                        const char *file, struct diag *d)
{
    if (s->type == PARAM_ARRAY || s->type == PARAM_OBJECT) {
        diag_err(d, file, n->line, n->col,
                 "param '%s': 'enum' is for strings, numbers and "
                 "booleans",
                 name);
        return;
    }
    if (n->kind != DAGFILE_SEQ || n->n == 0) {
        diag_err(d, file, n->line, n->col, "param '%s': 'enum' must be a non-empty list", name);
        return;
    }
    struct param_schema typ = {.type = s->type};
    json_t *a = json_array();
    for (size_t i = 0; i < n->n; i++) {
        const struct dagfile_node *it = n->items[i];
        char *msg = NULL;
        json_t *v = scalar(it) && strlen(it->str) == it->len
                        ? params_value(&typ, name, it->str, PARAMS_FROM_TEXT, &msg)
                        : NULL;
        if (!v) {
            diag_err(d, file, it->line, it->col, "%s",
                     msg ? msg : "each 'enum' value must be a string, a number or a boolean");
            free(msg);
            json_decref(a);
            return;
        }
        json_array_append_new(a, v);
    }
    s->enums = a;
}

char *params_schema_load(struct param_schema *s, const char *name, const struct dagfile_node *v,
                         const char *file, struct diag *d)
{
    memset(s, 0, sizeof *s);
    size_t errs = d->errors;
    const struct dagfile_node *typ = dagfile_get(v, "type"), *dv = NULL;
    if (typ) {
        size_t t = NTYPES;
        if (scalar(typ))
            for (t = 1; t < NTYPES && strcmp(typ->str, type_names[t]) != 0; t++)
                ;
        if (t >= NTYPES) {
            diag_err(d, file, typ->line, typ->col, "param '%s': unknown type '%.100s'", name,
                     scalar(typ) ? typ->str : "");
            const char *best =
                scalar(typ) ? suggest_closest(typ->str, type_names + 1, NTYPES - 1) : NULL;
            if (best)
                diag_hint(d, "did you mean '%s'?", best);
            else
                diag_hint(d, "one of string, integer, number, boolean, array, object");
        } else {
            s->type = (unsigned char)t;
        }
    }
    bool numeric = s->type == PARAM_INTEGER || s->type == PARAM_NUMBER;
    const struct dagfile_node *maxn = NULL;
    for (size_t i = 0; i < v->n; i++) {
        const struct dagfile_node *k = v->pairs[i].key, *val = v->pairs[i].value;
        if (v->pairs[i].dup_line) {
            diag_err(d, file, k->line, k->col, "duplicate key '%.100s'", k->str);
            diag_hint(d, "first defined at line %d", v->pairs[i].dup_line);
            continue;
        }
        const char *key = k->str;
        if (strcmp(key, "type") == 0)
            continue;
        if (strcmp(key, "default") == 0) {
            dv = val;
        } else if (strcmp(key, "description") == 0) {
            if (scalar(val))
                s->description = xstrndup(val->str, val->len);
            else
                diag_err(d, file, val->line, val->col,
                         "param '%s': 'description' must be a "
                         "string",
                         name);
        } else if (strcmp(key, "enum") == 0) {
            schema_enum(s, name, val, file, d);
        } else if (strcmp(key, "minimum") == 0 || strcmp(key, "maximum") == 0) {
            bool mn = key[1] == 'i';
            if (!numeric)
                diag_err(d, file, k->line, k->col,
                         "param '%s': '%s' needs type integer or "
                         "number",
                         name, key);
            else if (schema_bound(name, key, val, file, d, mn ? &s->minimum : &s->maximum) == 0)
                *(mn ? &s->has_min : &s->has_max) = true;
            if (!mn)
                maxn = val;
        } else if (strcmp(key, "pattern") == 0) {
            if (s->type != PARAM_STRING)
                diag_err(d, file, k->line, k->col, "param '%s': 'pattern' needs type string", name);
            else
                schema_pattern(s, name, val, file, d);
        } else {
            diag_err(d, file, k->line, k->col, "param '%s': unknown key '%.100s'", name, key);
            const char *best = suggest_closest(key, schema_keys, NSCHEMA_KEYS);
            if (best)
                diag_hint(d, "did you mean '%s'?", best);
        }
    }
    if (s->has_min && s->has_max && s->minimum > s->maximum)
        diag_err(d, file, maxn->line, maxn->col,
                 "param '%s': the minimum %g is greater than "
                 "the maximum %g",
                 name, s->minimum, s->maximum);
    if (!dv || dagfile_is_null(dv) || d->errors > errs)
        return NULL;
    /* the default must pass the param's own schema */
    char *text = NULL, *msg = NULL;
    json_t *jv = NULL;
    if (s->type == PARAM_ARRAY || s->type == PARAM_OBJECT) {
        jv = node_json(dv, file, d);
        text = jv ? json_dumps(jv, JSON_ENCODE_ANY | JSON_COMPACT | PARAMS_JSON_REALS) : NULL;
        json_decref(jv);
        if (!text)
            return NULL;
        s->dflt = params_value(s, name, text, PARAMS_FROM_JSON, &msg);
    } else if (scalar(dv) && strlen(dv->str) == dv->len) {
        text = xstrndup(dv->str, dv->len);
        s->dflt = params_value(s, name, text, PARAMS_FROM_TEXT, &msg);
    } else {
        diag_err(d, file, dv->line, dv->col, "param '%s': 'default' must be %s %s", name,
                 a_type(s->type),
                 s->type ? params_type_name(s->type) : "string, number or boolean");
        return NULL;
    }
    if (!s->dflt) {
        diag_err(d, file, dv->line, dv->col, "bad default: %s", msg);
        free(msg);
        free(text);
        return NULL;
    }
    return text;
}

void params_schema_free(struct param_schema *s, size_t n)
{
    for (size_t i = 0; s && i < n; i++) {
        free(s[i].description);
        free(s[i].pattern);
        if (s[i].re)
            regfree((regex_t *)s[i].re);
        free(s[i].re);
        json_decref(s[i].enums);
        json_decref(s[i].dflt);
    }
    free(s);
}

/* The schema of the DAG's param i, or NULL when it is untyped. */
static const struct param_schema *schema_of(const struct dag *dag, int i)
{
    return dag && i >= 0 && dag->pschema ? &dag->pschema[i] : NULL;
}

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
        int pi = dag_param_index(dag, n);
        if (pi < 0) {
            rc = diag_err(d, dag->path, 0, 0, "unknown param '%s'", n);
            const char *s = suggest_closest(n, names, dag->nparams);
            if (s)
                diag_hint(d, "did you mean '%s'?", s);
            continue;
        }
        const struct param_schema *sc = schema_of(dag, pi);
        bool plain = !sc || (sc->type == PARAM_ANY && !sc->enums);
        if (plain && params[i].from != PARAMS_FROM_JSON)
            continue; /* an untyped param takes any text: no conversion, no allocation */
        char *msg = NULL;
        json_t *v = params_value(sc, n, params[i].value, (enum params_from)params[i].from, &msg);
        if (!v)
            rc = diag_err(d, dag->path, 0, 0, "%s", msg);
        free(msg);
        json_decref(v);
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

char *params_conf_json(const struct dag *dag, const struct params_override *params, size_t nparams)
{
    if (nparams == 0)
        return NULL;
    json_t *o = json_object();
    for (size_t i = 0; i < nparams; i++) {
        if (!params[i].name || !params[i].value)
            continue;
        const struct param_schema *sc =
            dag ? schema_of(dag, dag_param_index(dag, params[i].name)) : NULL;
        json_t *v = NULL;
        char *msg = NULL;
        if (sc && sc->type != PARAM_ANY) /* typed: the value with its type ("5" -> 5) */
            v = params_value(sc, params[i].name, params[i].value, (enum params_from)params[i].from,
                             &msg);
        free(msg);
        json_object_set_new(o, params[i].name, v ? v : json_string(params[i].value));
    }
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
        if (json_is_string(val)) {
            sv = xstrndup(json_string_value(val), json_string_length(val));
            v[k].from = PARAMS_FROM_STRING;
        } else if (!json_is_null(val)) {
            char *d = json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT | PARAMS_JSON_REALS);
            sv = xstrdup(d ? d : "");
            free(d);
            v[k].from = PARAMS_FROM_JSON;
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

json_t *params_schema_json(const struct dag *dag)
{
    json_t *o = json_object();
    for (size_t i = 0; i < dag->nparams; i++) {
        const struct param_schema *sc = schema_of(dag, (int)i);
        const char *dv = dag->params[i].value;
        json_t *p = json_object();
        if (sc && sc->type != PARAM_ANY)
            json_object_set_new(p, "type", json_string(params_type_name(sc->type)));
        if (sc && sc->dflt && sc->type != PARAM_ANY)
            json_object_set(p, "default", sc->dflt);
        else
            json_object_set_new(p, "default", dv ? json_string(dv) : json_null());
        if (sc && sc->enums)
            json_object_set(p, "enum", sc->enums);
        if (sc && sc->has_min)
            json_object_set_new(p, "minimum", num_json(sc->minimum));
        if (sc && sc->has_max)
            json_object_set_new(p, "maximum", num_json(sc->maximum));
        if (sc && sc->pattern)
            json_object_set_new(p, "pattern", json_string(sc->pattern));
        if (sc && sc->description)
            json_object_set_new(p, "description", json_string(sc->description));
        json_object_set_new(o, dag->params[i].name, p);
    }
    return o;
}
