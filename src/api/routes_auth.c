/*
 * routes_auth.c - the API's auth routes (see api.h for the table's rules):
 * POST /api/v1/auth/token (a login: the body's password checked by
 * auth_login, throttled, answered with an HS256 token from auth_issue_user),
 * POST /api/v1/auth/logout (revokes the caller's token, revoke.h) and the
 * admin-only users routes (list, add, delete; the last admin cannot be
 * deleted). Handlers run on the server's threads (api.h: threading), each
 * on its own store connection; writes that check then change (a duplicate
 * name, the last admin) run in one store transaction so two requests cannot
 * both pass the check. Logs name users and roles only, never a password,
 * hash or token.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/password.h"
#include "api/revoke.h"
#include "base/err.h"
#include "base/log.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "store/store.h"

/* Retry-After values must be static: "0".."AUTH_MAX_DELAY_S", made once. */
static char retry_text[AUTH_MAX_DELAY_S + 1][12];
static pthread_once_t retry_once = PTHREAD_ONCE_INIT;

static void retry_make(void)
{
    for (int i = 0; i <= AUTH_MAX_DELAY_S; i++)
        snprintf(retry_text[i], sizeof retry_text[i], "%d", i);
}

static const char *retry_header(int s)
{
    (void)pthread_once(&retry_once, retry_make);
    if (s < 1)
        s = 1;
    if (s > AUTH_MAX_DELAY_S)
        s = AUTH_MAX_DELAY_S;
    return retry_text[s];
}

static void store_failed(struct api_resp *rs, const struct err *se, const char *what)
{
    log_error("api: store error", "during=%s error=%s", log_q(what), log_q(err_msg(se)));
    api_problem(rs, 500, "Internal Server Error", "the store failed to %s", what);
}

/* A required string field: its value, or NULL after a 400. */
static const char *field_str(json_t *body, const char *name, struct api_resp *rs)
{
    json_t *v = json_object_get(body, name);
    if (!json_is_string(v)) {
        api_problem(rs, 400, "Bad Request", "'%s' is required and must be a string", name);
        return NULL;
    }
    return json_string_value(v);
}

static void token_create(struct api_req *rq, struct api_resp *rs)
{
    struct err se = {0};
    static const char *const allowed[] = {"username", "password", NULL};
    json_t *body = NULL;
    if (api_body_object(rq, rs, allowed, &body) < 0)
        return;
    const char *name = field_str(body, "username", rs), *pw = NULL;
    if (name)
        pw = field_str(body, "password", rs);
    struct store *s = pw ? api_store(rq, rs) : NULL;
    if (!s) {
        json_decref(body);
        return;
    }
    struct auth *a = rq->opts->auth;
    enum auth_role role = AUTH_NONE;
    int retry = 0;
    int64_t rgen = 0;
    int r = auth_login(a, s, name, pw, rq->client, &role, &rgen, &retry, &se);
    char *tok = NULL;
    int64_t expires_in = 0;
    if (r == 0 && (r = auth_issue_user(a, name, role, rgen, 0, &tok, &expires_in)) == 0) {
        json_t *o = json_object();
        json_object_set_new(o, "access_token", json_string(tok));
        json_object_set_new(o, "token_type", json_string("Bearer"));
        json_object_set_new(o, "expires_in", json_integer(expires_in));
        api_json(rs, 200, o);
        free(tok);
    } else if (r == -EACCES) {
        api_problem(rs, 401, "Unauthorized", "wrong user name or password");
    } else if (r == -EAGAIN) {
        api_problem(rs, 429, "Too Many Requests", "too many failed logins; try again in %d seconds",
                    retry);
        rs->retry_after = retry_header(retry);
    } else if (r == ERR_DB) {
        store_failed(rs, &se, "read the user");
    } else {
        api_problem(rs, 500, "Internal Server Error", "cannot issue a token: %s", err_str(r));
    }
    json_decref(body);
}

/* POST /api/v1/auth/logout: revokes the token the request was made with (revoke.h), at once for
 * every server on this database; the same token is refused from the next request on. */
static void logout(struct api_req *rq, struct api_resp *rs)
{
    struct err se = {0};
    static const char *const allowed[] = {NULL};
    json_t *body = NULL;
    if (api_body_object(rq, rs, allowed, &body) < 0)
        return;
    json_decref(body);
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    if (revoke_token(s, &rq->user, &se) < 0) {
        store_failed(rs, &se, "revoke the token");
        return;
    }
    rs->status = 204;
    rs->content_type = "text/plain; charset=utf-8";
    log_info("logout", "user=%s", rq->user.name);
}

static json_t *user_json(const struct user_rec *u)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(u->name));
    json_object_set_new(o, "role", json_string(u->role));
    if (u->created_at_ms >= 0) {
        char iso[32];
        when_format_iso(u->created_at_ms, iso, sizeof iso);
        json_object_set_new(o, "created_at", json_string(iso));
    } else {
        json_object_set_new(o, "created_at", json_null());
    }
    return o;
}

static void users_list(struct api_req *rq, struct api_resp *rs)
{
    struct err se = {0};
    int64_t limit, offset;
    if (api_query_int(rq, rs, "limit", 0, API_LIMIT_MAX, API_LIMIT_DEFAULT, &limit) < 0 ||
        api_query_int(rq, rs, "offset", 0, INT64_MAX, 0, &offset) < 0)
        return;
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    struct user_rec *v = NULL;
    size_t n = 0;
    if (store_list_users(s, &v, &n, &se) < 0) {
        store_failed(rs, &se, "list the users");
        return;
    }
    json_t *arr = json_array();
    for (int64_t i = offset; i < (int64_t)n && i - offset < limit; i++)
        json_array_append_new(arr, user_json(&v[i]));
    json_t *o = json_object();
    json_object_set_new(o, "users", arr);
    json_object_set_new(o, "total_entries", json_integer((json_int_t)n));
    store_free_users(v, n);
    api_json(rs, 200, o);
}

static void users_add(struct api_req *rq, struct api_resp *rs)
{
    struct err se = {0};
    static const char *const allowed[] = {"name", "role", "password", NULL};
    json_t *body = NULL;
    if (api_body_object(rq, rs, allowed, &body) < 0)
        return;
    const char *name = field_str(body, "name", rs), *role_s = NULL, *pw = NULL;
    enum auth_role role = AUTH_NONE;
    if (name && !auth_name_ok(name)) {
        api_problem(rs, 400, "Bad Request",
                    "'name' must be 1 to %d characters of A-Z a-z 0-9 _ . @ -", AUTH_NAME_MAX);
        name = NULL;
    }
    if (name && (role_s = field_str(body, "role", rs)) && auth_role_parse(role_s, &role) < 0) {
        api_problem(rs, 400, "Bad Request", "'role' must be viewer, operator or admin");
        role_s = NULL;
    }
    const char *why = NULL;
    if (role_s && (pw = field_str(body, "password", rs)) && (why = password_problem(pw))) {
        api_problem(rs, 400, "Bad Request", "'password': %s", why);
        pw = NULL;
    }
    struct store *s = pw ? api_store(rq, rs) : NULL;
    if (!s) {
        json_decref(body);
        return;
    }
    struct user_rec u = {.name = (char *)name, .role = (char *)auth_role_name(role)};
    if (auth_hash_password(pw, &u.password_hash) < 0) {
        api_problem(rs, 500, "Internal Server Error", "cannot hash the password");
        json_decref(body);
        return;
    }
    /* One insert that fails on an existing name (not a read then a write, which two
     * concurrent adds could both pass on PostgreSQL). */
    int r = store_add_user(s, &u, &se);
    if (r == -EEXIST) {
        api_problem(rs, 409, "Conflict", "user '%s' exists", name);
    } else if (r < 0) {
        store_failed(rs, &se, "add the user");
    } else {
        struct user_rec made;
        if (store_get_user(s, name, &made, NULL) == 0) {
            api_json(rs, 201, user_json(&made));
            user_rec_release(&made);
        } else {
            api_json(
                rs, 201,
                user_json(&(struct user_rec){.name = u.name, .role = u.role, .created_at_ms = -1}));
        }
        rs->header_name = "Location";
        rs->header_value = xasprintf("/api/v1/users/%s", name);
        log_info("user added", "user=%s role=%s by=%s", name, u.role, rq->user.name);
        api_audit(rq, "user add", NULL, NULL, NULL,
                  json_pack("{s:s, s:s}", "name", name, "role", u.role));
    }
    free(u.password_hash);
    json_decref(body);
}

static void users_delete(struct api_req *rq, struct api_resp *rs)
{
    struct err se = {0};
    const char *name = rq->nseg > 0 ? rq->seg[0] : NULL;
    if (!auth_name_ok(name)) {
        api_problem(rs, 404, "Not Found", "no such user");
        return;
    }
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    int r = auth_delete_user(s, name, &se);
    if (r == -ENOENT) {
        api_problem(rs, 404, "Not Found", "no user '%s'", name);
    } else if (r == -EPERM) {
        api_problem(rs, 409, "Conflict", "'%s' is the last admin and cannot be deleted", name);
    } else if (r < 0) {
        store_failed(rs, &se, "delete the user");
    } else {
        rs->status = 204;
        rs->content_type = "text/plain; charset=utf-8";
        log_info("user deleted", "user=%s by=%s", name, rq->user.name);
        api_audit(rq, "user delete", NULL, NULL, NULL, json_pack("{s:s}", "name", name));
    }
}

const struct api_route api_routes_auth[] = {
    {"POST", "/api/v1/auth/token", AUTH_NONE, token_create, API_ROUTE_SLOW},
    {"POST", "/api/v1/auth/logout", AUTH_VIEWER, logout, 0},
    {"GET", "/api/v1/users", AUTH_ADMIN, users_list, 0},
    {"POST", "/api/v1/users", AUTH_ADMIN, users_add, API_ROUTE_SLOW},
    {"DELETE", "/api/v1/users/{name}", AUTH_ADMIN, users_delete, 0},
    {NULL, NULL, AUTH_NONE, NULL, 0},
};
