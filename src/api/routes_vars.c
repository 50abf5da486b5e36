/*
 * routes_vars.c - variables and secrets over the API (SPEC section 13; see
 * api.h for the table's rules): viewers list and read them, admins write and
 * delete. A secret's value never leaves the server: it reads "***" with
 * "secret": true. Writes go through store/vars.h like `baram variables set`:
 * a secret is sealed with the home's key before it reaches the store.
 *
 * Handlers run on the server's threads and keep no state between requests.
 */
#include "api/api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base/err.h"
#include "base/log.h"
#include "base/when.h"
#include "store/store.h"
#include "store/vars.h"

#define VARS_SHOWN "***"

static json_t *var_json(const struct var_rec *v)
{
    char at[40];
    when_format_iso(v->updated_at_ms, at, sizeof at);
    return json_pack("{s:s, s:s, s:b, s:s, s:s?}", "key", v->key, "value",
                     v->secret  ? VARS_SHOWN
                     : v->value ? v->value
                                : "",
                     "secret", v->secret, "updated_at", at, "updated_by", v->updated_by);
}

static void store_failed(struct api_resp *rs, const struct err *e, const char *what)
{
    log_error("api: store failed", "what=%s error=%s", what, log_q(err_msg(e)));
    api_problem(rs, 503, "Service Unavailable", "the store could not be %s", what);
}

/* The key of the URL: 0, or -1 after a 400. */
static int key_checked(struct api_resp *rs, const char *key)
{
    if (var_key_ok(key))
        return 0;
    api_problem(rs, 400, "Bad Request", "bad key '%.64s': 1 to %d characters of [A-Za-z0-9_.-]",
                key, VAR_KEY_MAX);
    return -1;
}

/* The URL's key checked, then this thread's store: NULL after a 400 or 503. */
static struct store *key_store(struct api_req *rq, struct api_resp *rs, const char *key)
{
    return key_checked(rs, key) < 0 ? NULL : api_store(rq, rs);
}

static void not_found(struct api_resp *rs, const char *key)
{
    api_problem(rs, 404, "Not Found", "no variable '%s'", key);
}

static void list_vars(struct api_req *rq, struct api_resp *rs)
{
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    struct var_rec *v;
    size_t n;
    struct err e = {0};
    if (store_list_vars(s, &v, &n, &e) < 0) {
        store_failed(rs, &e, "read");
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, var_json(&v[i]));
    vars_free(v, n);
    api_json(rs, 200, json_pack("{s:o, s:I}", "variables", a, "total_entries", (json_int_t)n));
}

static void get_var(struct api_req *rq, struct api_resp *rs)
{
    const char *key = rq->seg[0];
    struct store *s = key_store(rq, rs, key);
    if (!s)
        return;
    struct var_rec v;
    struct err e = {0};
    int r = store_get_var(s, key, &v, &e);
    if (r == -ENOENT) {
        not_found(rs, key);
        return;
    }
    if (r < 0) {
        store_failed(rs, &e, "read");
        return;
    }
    api_json(rs, 200, var_json(&v));
    var_rec_release(&v);
}

static void put_var(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = {"value", "secret", NULL};
    const char *key = rq->seg[0];
    if (key_checked(rs, key) < 0)
        return;
    json_t *body = NULL;
    if (api_body_object(rq, rs, allowed, &body) < 0)
        return;
    json_t *val = json_object_get(body, "value"), *sec = json_object_get(body, "secret");
    if (!val || !json_is_string(val)) {
        json_decref(body);
        api_problem(rs, 400, "Bad Request", "field 'value' must be a string (and is required)");
        return;
    }
    if (sec && !json_is_boolean(sec)) {
        json_decref(body);
        api_problem(rs, 400, "Bad Request", "field 'secret' must be true or false");
        return;
    }
    bool secret = sec && json_is_true(sec);
    const char *value = json_string_value(val);
    size_t len = json_string_length(val);
    const char *why = var_value_problem(value, len);
    if (why) {
        json_decref(body);
        api_problem(rs, 400, "Bad Request", "field 'value' %s", why);
        return;
    }
    unsigned char kb[VARS_KEYBYTES];
    struct err e = {0};
    if (secret && vars_key_load(rq->opts->home, kb, &e) < 0) {
        json_decref(body);
        log_error("api: no secret key", "error=%s", log_q(err_msg(&e)));
        api_problem(rs, 503, "Service Unavailable", "the server has no secret key to seal it");
        return;
    }
    struct store *s = api_store(rq, rs);
    int r = s ? vars_write(s, kb, key, value, len, secret, rq->user.name, &e) : -EIO;
    sodium_memzero(kb, sizeof kb);
    json_decref(body);
    if (!s)
        return;
    if (r < 0) {
        store_failed(rs, &e, "written");
        return;
    }
    log_info("api: variable set", "user=%s key=%s secret=%d", log_q(rq->user.name), log_q(key),
             secret);
    /* the key and whether it is a secret: never the value */
    api_audit(rq, "variable set", NULL, NULL, NULL,
              json_pack("{s:s, s:b}", "key", key, "secret", secret));
    struct var_rec v;
    if (store_get_var(s, key, &v, &e) < 0) {
        store_failed(rs, &e, "read");
        return;
    }
    api_json(rs, 200, var_json(&v));
    var_rec_release(&v);
}

static void delete_var(struct api_req *rq, struct api_resp *rs)
{
    const char *key = rq->seg[0];
    struct store *s = key_store(rq, rs, key);
    if (!s)
        return;
    struct err e = {0};
    struct var_rec v;
    bool secret = false; /* for the audit row */
    if (store_get_var(s, key, &v, NULL) == 0) {
        secret = v.secret;
        var_rec_release(&v);
    }
    int r = store_delete_var(s, key, &e);
    if (r == -ENOENT) {
        not_found(rs, key);
        return;
    }
    if (r < 0) {
        store_failed(rs, &e, "written");
        return;
    }
    log_info("api: variable deleted", "user=%s key=%s", log_q(rq->user.name), log_q(key));
    api_audit(rq, "variable delete", NULL, NULL, NULL,
              json_pack("{s:s, s:b}", "key", key, "secret", secret));
    rs->status = 204;
}

const struct api_route api_routes_vars[] = {
    {"GET", "/api/v1/variables", AUTH_VIEWER, list_vars, 0},
    {"GET", "/api/v1/variables/{key}", AUTH_VIEWER, get_var, 0},
    {"PUT", "/api/v1/variables/{key}", AUTH_ADMIN, put_var, 0},
    {"DELETE", "/api/v1/variables/{key}", AUTH_ADMIN, delete_var, 0},
    {NULL, NULL, AUTH_NONE, NULL, 0},
};
