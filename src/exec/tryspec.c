/*
 * tryspec.c - a try's spec to and from JSON (see tryspec.h).
 *
 * Encoding builds a jansson tree and dumps it compact. A string goes as a JSON
 * string when it is valid UTF-8 without NUL (json_stringn checks the UTF-8), else
 * as {"b64":"..."} (libsodium's base64), so no byte sequence a task may produce
 * breaks the JSON or PostgreSQL's text types.
 *
 * Decoding checks every value it reads (type, range, size) and stops at the
 * first problem, with a message naming the key ("http.url"); *out is only handed
 * over when the whole spec is good. Keys it does not know are ignored.
 *
 * Pure functions, any thread.
 */
#include "exec/tryspec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "base/compiler.h"
#include "base/xalloc.h"

/* ---- encoding ---- */

/* A string as JSON: a JSON string, or {"b64": ...} for bytes JSON text cannot carry. */
static json_t *tryspec_str_json(const char *s, size_t len)
{
    json_t *j = memchr(s, 0, len) ? NULL : json_stringn(s, len);
    if (j)
        return j;
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *b = xmalloc(cap);
    sodium_bin2base64(b, cap, (const unsigned char *)s, len, sodium_base64_VARIANT_ORIGINAL);
    j = json_pack("{s:s}", "b64", b);
    free(b);
    return j;
}

/* Sets o[key] to s (a C string), or null when s is NULL. */
static void tryspec_put(json_t *o, const char *key, const char *s)
{
    json_object_set_new(o, key, s ? tryspec_str_json(s, strlen(s)) : json_null());
}

static json_t *tryspec_http_json(const struct tryspec *s)
{
    json_t *h = json_object();
    tryspec_put(h, "method", s->http.method ? s->http.method : "GET");
    tryspec_put(h, "url", s->http.url);
    json_object_set_new(
        h, "body", s->http.body ? tryspec_str_json(s->http.body, s->http.body_len) : json_null());
    json_t *hs = json_array();
    for (size_t i = 0; i < s->http.nheaders; i++) {
        const struct tryspec_header *kv = &s->http.headers[i];
        json_t *pair = json_array();
        json_array_append_new(pair, tryspec_str_json(kv->name, strlen(kv->name)));
        json_array_append_new(pair, kv->value ? tryspec_str_json(kv->value, strlen(kv->value))
                                              : json_null());
        json_array_append_new(hs, pair);
    }
    json_object_set_new(h, "headers", hs);
    json_t *ex = json_array();
    for (size_t i = 0; i < s->http.nexpect; i++)
        json_array_append_new(ex, json_integer(s->http.expect[i]));
    json_object_set_new(h, "expect", ex);
    json_object_set_new(h, "timeout_ms", json_integer(s->http.timeout_ms));
    json_object_set_new(h, "cb_failures", json_integer(s->http.cb_failures));
    json_object_set_new(h, "cb_reset_ms", json_integer(s->http.cb_reset_ms));
    return h;
}

static json_t *tryspec_wait_json(const struct tryspec *s)
{
    json_t *w = json_object();
    tryspec_put(w, "file", s->wait.file);
    tryspec_put(w, "http_url", s->wait.http_url);
    json_object_set_new(w, "every_ms", json_integer(s->wait.every_ms));
    json_object_set_new(w, "timeout_ms", json_integer(s->wait.timeout_ms));
    return w;
}

static const char *const tryspec_kinds[] = {"run", "http", "wait"};

char *tryspec_encode(const struct tryspec *s)
{
    if (!s->dag || !s->run_id || !s->task || !s->task_id || (s->nenv && !s->env) ||
        (unsigned)s->kind > TRYSPEC_WAIT)
        return NULL;
    if (s->kind == TRYSPEC_RUN && !s->cmd)
        return NULL;
    if (s->kind == TRYSPEC_HTTP && (!s->http.url || (s->http.nheaders && !s->http.headers) ||
                                    (s->http.nexpect && !s->http.expect)))
        return NULL;
    for (size_t i = 0; i < s->nenv; i++)
        if (!s->env[i])
            return NULL;
    for (size_t i = 0; i < s->nmask; i++)
        if (!s->mask[i])
            return NULL;
    for (size_t i = 0; i < s->http.nheaders && s->kind == TRYSPEC_HTTP; i++)
        if (!s->http.headers[i].name)
            return NULL;

    json_t *o = json_object();
    json_object_set_new(o, "v", json_integer(TRYSPEC_VERSION));
    json_object_set_new(o, "kind", json_string(tryspec_kinds[s->kind]));
    tryspec_put(o, "dag", s->dag);
    tryspec_put(o, "run_id", s->run_id);
    tryspec_put(o, "task", s->task);
    json_object_set_new(o, "map_index", json_integer(s->map_index));
    tryspec_put(o, "task_id", s->task_id);
    json_object_set_new(o, "try", json_integer(s->try_number));
    tryspec_put(o, "queue", s->queue ? s->queue : "default");
    tryspec_put(o, "dir", s->dir);
    json_object_set_new(o, "timeout_ms", json_integer(s->timeout_ms));
    json_object_set_new(o, "grace_ms", json_integer(s->grace_ms));
    if (s->cmd)
        tryspec_put(o, "cmd", s->cmd);
    json_t *env = json_array();
    for (size_t i = 0; i < s->nenv; i++)
        json_array_append_new(env, tryspec_str_json(s->env[i], strlen(s->env[i])));
    json_object_set_new(o, "env", env);
    if (s->nmask) {
        json_t *mask = json_array();
        for (size_t i = 0; i < s->nmask; i++)
            json_array_append_new(mask, tryspec_str_json(s->mask[i], strlen(s->mask[i])));
        json_object_set_new(o, "mask", mask);
    }
    if (s->kind == TRYSPEC_HTTP)
        json_object_set_new(o, "http", tryspec_http_json(s));
    if (s->kind == TRYSPEC_WAIT)
        json_object_set_new(o, "wait", tryspec_wait_json(s));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

/* ---- decoding ---- */

struct tryspec_dec {
    char *msg; /* owned: the first problem, "try spec: ..." */
};

static int tryspec_fail(struct tryspec_dec *d, const char *fmt, ...) PRINTF_LIKE(2, 3);

static int tryspec_fail(struct tryspec_dec *d, const char *fmt, ...)
{
    if (!d->msg) {
        char text[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        d->msg = xasprintf("try spec: %s", text);
    }
    return -EINVAL;
}

/* Reads the string v (a JSON string or {"b64": ...}) into *out (malloc'd, NUL-terminated) and
 * *len. what names it in messages; a NUL inside is refused unless nul_ok. */
static int tryspec_str_of(struct tryspec_dec *d, json_t *v, const char *what, bool nul_ok,
                          char **out, size_t *len)
{
    const char *p;
    size_t n;
    char *s;
    if (json_is_string(v)) {
        p = json_string_value(v);
        n = json_string_length(v);
        if (n > TRYSPEC_STR_MAX)
            return tryspec_fail(d, "'%s' is %zu bytes, over the %d limit", what, n,
                                TRYSPEC_STR_MAX);
        s = xmalloc(n + 1);
        memcpy(s, p, n);
        s[n] = 0;
    } else if (json_is_object(v) && json_is_string(json_object_get(v, "b64"))) {
        json_t *b = json_object_get(v, "b64");
        p = json_string_value(b);
        size_t bl = json_string_length(b);
        if (bl > (size_t)TRYSPEC_STR_MAX / 3 * 4 + 4)
            return tryspec_fail(d, "'%s' is over the %d bytes limit", what, TRYSPEC_STR_MAX);
        s = xmalloc(bl / 4 * 3 + 3);
        const char *end = NULL;
        if (sodium_base642bin((unsigned char *)s, bl / 4 * 3 + 3, p, bl, NULL, &n, &end,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            end != p + bl) {
            free(s);
            return tryspec_fail(d, "'%s' is not valid base64", what);
        }
        if (n > TRYSPEC_STR_MAX) {
            free(s);
            return tryspec_fail(d, "'%s' is over the %d bytes limit", what, TRYSPEC_STR_MAX);
        }
        s[n] = 0;
    } else {
        return tryspec_fail(d, "'%s' must be a string", what);
    }
    if (!nul_ok && memchr(s, 0, n)) {
        free(s);
        return tryspec_fail(d, "'%s' holds a NUL byte", what);
    }
    *out = s;
    if (len)
        *len = n;
    return 0;
}

/* o[key] as a string: required (missing or null is an error), or left NULL when absent or
 * null. A required id is also non-empty. */
static int tryspec_str(struct tryspec_dec *d, json_t *o, const char *pre, const char *key,
                       bool required, char **out)
{
    char what[64];
    snprintf(what, sizeof(what), "%s%s", pre, key);
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required)
            return tryspec_fail(d, "missing key '%s'", what);
        return 0;
    }
    int r = tryspec_str_of(d, v, what, false, out, NULL);
    if (r == 0 && required && !**out)
        return tryspec_fail(d, "'%s' is empty", what);
    return r;
}

/* o[key] as an integer in [min, max]; def when absent (an error when required). */
static int tryspec_int(struct tryspec_dec *d, json_t *o, const char *pre, const char *key,
                       bool required, int64_t def, int64_t min, int64_t max, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        if (required)
            return tryspec_fail(d, "missing key '%s%s'", pre, key);
        *out = def;
        return 0;
    }
    if (!json_is_integer(v))
        return tryspec_fail(d, "'%s%s' must be an integer", pre, key);
    json_int_t n = json_integer_value(v);
    if (n < min || n > max)
        return tryspec_fail(d, "'%s%s' is %lld, out of range %lld-%lld", pre, key, (long long)n,
                            (long long)min, (long long)max);
    *out = n;
    return 0;
}

static int tryspec_int32(struct tryspec_dec *d, json_t *o, const char *pre, const char *key,
                         bool required, int def, int min, int *out)
{
    int64_t v;
    int r = tryspec_int(d, o, pre, key, required, def, min, INT32_MAX, &v);
    if (r == 0)
        *out = (int)v;
    return r;
}

/* o[key] as an array of at most max elements (absent: NULL, no error). */
static int tryspec_arr(struct tryspec_dec *d, json_t *o, const char *pre, const char *key,
                       size_t max, json_t **out)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return tryspec_fail(d, "'%s%s' must be an array", pre, key);
    if (json_array_size(v) > max)
        return tryspec_fail(d, "'%s%s' has %zu entries, over the %zu limit", pre, key,
                            json_array_size(v), max);
    *out = v;
    return 0;
}

static int tryspec_dec_env(struct tryspec_dec *d, json_t *o, struct tryspec *s)
{
    json_t *a;
    if (tryspec_arr(d, o, "", "env", TRYSPEC_ENV_MAX, &a) < 0)
        return -EINVAL;
    if (!a)
        return 0;
    s->env = xcalloc(json_array_size(a) + 1, sizeof(char *));
    for (size_t i = 0; i < json_array_size(a); i++) {
        char what[32];
        snprintf(what, sizeof(what), "env[%zu]", i);
        if (tryspec_str_of(d, json_array_get(a, i), what, false, &s->env[i], NULL) < 0)
            return -EINVAL;
        s->nenv++;
        if (!strchr(s->env[i], '=') || s->env[i][0] == '=')
            return tryspec_fail(d, "'%s' is not NAME=VALUE", what);
    }
    return 0;
}

static int tryspec_dec_mask(struct tryspec_dec *d, json_t *o, struct tryspec *s)
{
    json_t *a;
    if (tryspec_arr(d, o, "", "mask", TRYSPEC_ENV_MAX, &a) < 0)
        return -EINVAL;
    if (!a || json_array_size(a) == 0)
        return 0;
    s->mask = xcalloc(json_array_size(a), sizeof(char *));
    for (size_t i = 0; i < json_array_size(a); i++) {
        char what[32];
        snprintf(what, sizeof(what), "mask[%zu]", i);
        if (tryspec_str_of(d, json_array_get(a, i), what, false, &s->mask[i], NULL) < 0)
            return -EINVAL;
        s->nmask++;
    }
    return 0;
}

static int tryspec_dec_headers(struct tryspec_dec *d, json_t *h, struct tryspec *s)
{
    json_t *a;
    if (tryspec_arr(d, h, "http.", "headers", TRYSPEC_HEADERS_MAX, &a) < 0)
        return -EINVAL;
    if (!a)
        return 0;
    s->http.headers = xcalloc(json_array_size(a) + 1, sizeof(*s->http.headers));
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *pair = json_array_get(a, i);
        char what[48];
        snprintf(what, sizeof(what), "http.headers[%zu]", i);
        if (!json_is_array(pair) || json_array_size(pair) != 2)
            return tryspec_fail(d, "'%s' must be a [name, value] pair", what);
        struct tryspec_header *kv = &s->http.headers[i];
        s->http.nheaders++;
        if (tryspec_str_of(d, json_array_get(pair, 0), what, false, &kv->name, NULL) < 0)
            return -EINVAL;
        if (!*kv->name)
            return tryspec_fail(d, "'%s' has an empty name", what);
        json_t *val = json_array_get(pair, 1);
        if (!json_is_null(val) && tryspec_str_of(d, val, what, false, &kv->value, NULL) < 0)
            return -EINVAL;
    }
    return 0;
}

/* o[key], the object of kind key; NULL with a message when missing or not an object. */
static json_t *tryspec_sub(struct tryspec_dec *d, json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        tryspec_fail(d, "missing key '%s' (kind %s)", key, key);
    else if (!json_is_object(v))
        tryspec_fail(d, "'%s' must be an object", key);
    return json_is_object(v) ? v : NULL;
}

static int tryspec_dec_http(struct tryspec_dec *d, json_t *o, struct tryspec *s)
{
    json_t *h = tryspec_sub(d, o, "http");
    if (!h)
        return -EINVAL;
    if (tryspec_str(d, h, "http.", "method", false, &s->http.method) < 0 ||
        tryspec_str(d, h, "http.", "url", true, &s->http.url) < 0)
        return -EINVAL;
    if (!s->http.method)
        s->http.method = xstrdup("GET");
    else if (!*s->http.method)
        return tryspec_fail(d, "'http.method' is empty");
    json_t *body = json_object_get(h, "body");
    if (body && !json_is_null(body) &&
        tryspec_str_of(d, body, "http.body", true, &s->http.body, &s->http.body_len) < 0)
        return -EINVAL;
    if (tryspec_dec_headers(d, h, s) < 0)
        return -EINVAL;
    json_t *a;
    if (tryspec_arr(d, h, "http.", "expect", TRYSPEC_EXPECT_MAX, &a) < 0)
        return -EINVAL;
    if (a) {
        s->http.expect = xcalloc(json_array_size(a) + 1, sizeof(int));
        for (size_t i = 0; i < json_array_size(a); i++) {
            json_t *v = json_array_get(a, i);
            if (!json_is_integer(v) || json_integer_value(v) < 100 || json_integer_value(v) > 599)
                return tryspec_fail(d, "'http.expect[%zu]' must be an HTTP status 100-599", i);
            s->http.expect[s->http.nexpect++] = (int)json_integer_value(v);
        }
    }
    if (tryspec_int(d, h, "http.", "timeout_ms", false, 0, 0, INT64_MAX, &s->http.timeout_ms) < 0 ||
        tryspec_int32(d, h, "http.", "cb_failures", false, 0, 0, &s->http.cb_failures) < 0 ||
        tryspec_int(d, h, "http.", "cb_reset_ms", false, 0, 0, INT64_MAX, &s->http.cb_reset_ms) < 0)
        return -EINVAL;
    return 0;
}

static int tryspec_dec_wait(struct tryspec_dec *d, json_t *o, struct tryspec *s)
{
    json_t *w = tryspec_sub(d, o, "wait");
    if (!w)
        return -EINVAL;
    if (tryspec_str(d, w, "wait.", "file", false, &s->wait.file) < 0 ||
        tryspec_str(d, w, "wait.", "http_url", false, &s->wait.http_url) < 0)
        return -EINVAL;
    if (!s->wait.file && !s->wait.http_url)
        return tryspec_fail(d, "'wait' needs 'file' or 'http_url'");
    if (tryspec_int(d, w, "wait.", "every_ms", false, 1000, 0, INT64_MAX, &s->wait.every_ms) < 0 ||
        tryspec_int(d, w, "wait.", "timeout_ms", false, 0, 0, INT64_MAX, &s->wait.timeout_ms) < 0)
        return -EINVAL;
    return 0;
}

static int tryspec_dec_obj(struct tryspec_dec *d, json_t *o, struct tryspec *s)
{
    if (!json_is_object(o))
        return tryspec_fail(d, "not a JSON object");
    int64_t v;
    if (tryspec_int(d, o, "", "v", true, 0, INT64_MIN, INT64_MAX, &v) < 0)
        return -EINVAL;
    if (v != TRYSPEC_VERSION)
        return tryspec_fail(d, "version %lld is not supported (this baram reads %d)", (long long)v,
                            TRYSPEC_VERSION);
    json_t *k = json_object_get(o, "kind");
    if (!k)
        return tryspec_fail(d, "missing key 'kind'");
    if (!json_is_string(k))
        return tryspec_fail(d, "'kind' must be a string");
    const char *ks = json_string_value(k);
    size_t i = 0;
    while (i < 3 && strcmp(ks, tryspec_kinds[i]) != 0)
        i++;
    if (i == 3 || strlen(ks) != json_string_length(k))
        return tryspec_fail(d, "unknown kind (expected run, http or wait)");
    s->kind = (enum tryspec_kind)i;
    if (tryspec_str(d, o, "", "dag", true, &s->dag) < 0 ||
        tryspec_str(d, o, "", "run_id", true, &s->run_id) < 0 ||
        tryspec_str(d, o, "", "task", true, &s->task) < 0 ||
        tryspec_str(d, o, "", "task_id", true, &s->task_id) < 0 ||
        tryspec_str(d, o, "", "queue", false, &s->queue) < 0 ||
        tryspec_str(d, o, "", "dir", false, &s->dir) < 0 ||
        tryspec_int32(d, o, "", "map_index", false, -1, -1, &s->map_index) < 0 ||
        tryspec_int32(d, o, "", "try", true, 0, 1, &s->try_number) < 0 ||
        tryspec_int(d, o, "", "timeout_ms", false, 0, 0, INT64_MAX, &s->timeout_ms) < 0 ||
        tryspec_int(d, o, "", "grace_ms", false, TRYSPEC_GRACE_MS_DEF, 0, INT64_MAX, &s->grace_ms) <
            0 ||
        tryspec_str(d, o, "", "cmd", s->kind == TRYSPEC_RUN, &s->cmd) < 0 ||
        tryspec_dec_env(d, o, s) < 0 || tryspec_dec_mask(d, o, s) < 0)
        return -EINVAL;
    if (!s->queue)
        s->queue = xstrdup("default");
    else if (!*s->queue)
        return tryspec_fail(d, "'queue' is empty");
    if (s->kind == TRYSPEC_HTTP)
        return tryspec_dec_http(d, o, s);
    if (s->kind == TRYSPEC_WAIT)
        return tryspec_dec_wait(d, o, s);
    return 0;
}

int tryspec_decode(const char *json, size_t len, struct tryspec *out, char **msg)
{
    struct tryspec_dec d = {0};
    memset(out, 0, sizeof(*out));
    *msg = NULL;
    if (!json || len == 0) {
        *msg = xstrdup("try spec: empty");
        return -EINVAL;
    }
    if (len > TRYSPEC_JSON_MAX) {
        *msg = xasprintf("try spec: %zu bytes, over the %d limit", len, TRYSPEC_JSON_MAX);
        return -EINVAL;
    }
    /* JSON text never holds a raw NUL, and jansson would read one as the end of its input. */
    const char *nul = memchr(json, 0, len);
    if (nul) {
        *msg = xasprintf("try spec: invalid JSON: a NUL byte at offset %zu", (size_t)(nul - json));
        return -EINVAL;
    }
    json_error_t jerr;
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!o) {
        *msg = xasprintf("try spec: invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                         jerr.text);
        return -EINVAL;
    }
    int r = tryspec_dec_obj(&d, o, out);
    json_decref(o);
    if (r < 0) {
        tryspec_release(out);
        *msg = d.msg ? d.msg : xstrdup("try spec: invalid");
        return -EINVAL;
    }
    free(d.msg);
    return 0;
}

void tryspec_release(struct tryspec *s)
{
    free(s->dag);
    free(s->run_id);
    free(s->task);
    free(s->task_id);
    free(s->queue);
    free(s->dir);
    free(s->cmd);
    for (size_t i = 0; i < s->nenv; i++)
        free(s->env[i]);
    free(s->env);
    for (size_t i = 0; i < s->nmask; i++)
        free(s->mask[i]);
    free(s->mask);
    free(s->http.method);
    free(s->http.url);
    free(s->http.body);
    for (size_t i = 0; i < s->http.nheaders; i++) {
        free(s->http.headers[i].name);
        free(s->http.headers[i].value);
    }
    free(s->http.headers);
    free(s->http.expect);
    free(s->wait.file);
    free(s->wait.http_url);
    memset(s, 0, sizeof(*s));
}
