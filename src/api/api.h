/*
 * api.h - the REST API (SPEC section 8): an HTTP server (libmicrohttpd) and
 * the route tables its handlers live in.
 *
 * Threading: the server runs on a small pool of libmicrohttpd threads
 * (api_opts.threads, 2 by default), each serving its share of the
 * connections with epoll (docs/architecture.md, "The API's threads"), never
 * on the scheduler's loop. Nothing on them waits: an event stream with
 * nothing to send is suspended and resumed by the hub, and API_ROUTE_SLOW
 * handlers (password hashing) run on a thread of their own while their
 * connection is suspended. A handler reads the store on its thread's own
 * connection (SQLite WAL readers never block the writer) and writes requests
 * to it exactly as the CLI does (a queued run, a pause flag, a cancel
 * request), then rings the scheduler's doorbell (schedlock.h): the
 * scheduler's loop stays the single owner of scheduling state and is never
 * blocked by HTTP work.
 *
 * Each route is one row of a table: method, a pattern with {segments}, the
 * least role allowed (AUTH_NONE: no token needed) and the handler. The
 * server matches the route, checks the bearer token and the role, reads the
 * body (over API_BODY_MAX: 413), decodes and checks each {segment} (no '/',
 * no NUL, not "." or "..", valid UTF-8, at most API_SEG_MAX bytes: else 400)
 * and calls the handler, which fills an api_resp.
 *
 * Errors are application/problem+json ({type, title, status, detail}).
 */
#ifndef BARAM_API_API_H
#define BARAM_API_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "api/auth.h"
#include "base/compiler.h"

struct err;
struct store;
struct hub;

#define API_BODY_MAX      (1024 * 1024)
#define API_SEG_MAX       256
#define API_MAX_SEGS      4
#define API_LIMIT_DEFAULT 100
#define API_LIMIT_MAX     10000

struct api;

struct api_opts {
    const char *listen;          /* "host:port"; the host must be given (127.0.0.1 by default) */
    const char *home;            /* BARAM_HOME */
    const char *dags;            /* the DAG folder */
    const char *store_url;       /* the database */
    int64_t sched_dead_after_ms; /* scheduler.dead_after: a heartbeat older is no scheduler */
    struct auth *auth;           /* borrowed for the server's life */
    struct hub *hub;             /* the event hub (hub.h), borrowed; NULL: no event stream */
    int max_connections;         /* <= 0: 512 */
    int conn_timeout_s;          /* idle connections are closed after this; <= 0: 30 */
    int max_rps; /* admission: requests started per second at most; <= 0: no limit */
    int threads; /* threads serving connections; <= 0: 2 */
    const struct run_pool *pools; /* the home's configured pools (borrowed for the server's life) */
    size_t npools;
};

/* Starts listening. 0 and *out, or a negative code with *e filled (port taken, bad address). */
int api_start(const struct api_opts *o, struct api **out, struct err *e) WARN_UNUSED;
/* Stops accepting, closes every connection, joins the server's threads. */
void api_stop(struct api *a);
/* The port actually bound (for listen ":0" in tests). */
int api_port(const struct api *a);

/* One request, as a handler sees it. */
struct api_req {
    struct api *api;
    const char *method;
    const char *path;
    const char *seg[API_MAX_SEGS]; /* the route's {segments}, decoded and checked, in order */
    size_t nseg;
    const char *body; /* NUL-terminated copy, or NULL */
    size_t body_len;
    struct auth_user user; /* the caller (role AUTH_NONE on public routes without a token) */
    struct store *store;   /* this thread's connection, opened on first use */
    const struct api_opts *opts;
    const char *client; /* the peer's address, for logs and login throttling */
    void *conn;         /* struct MHD_Connection *, for api_query */
};

/* A response: JSON (body), raw bytes (raw + content_type), or a stream (reader). */
typedef ssize_t (*api_reader_fn)(void *ud, uint64_t pos, char *buf, size_t max);
struct api_resp {
    int status;
    json_t *body; /* owned; sent as application/json (problem+json when problem set) */
    bool problem;
    char *raw; /* owned */
    size_t raw_len;
    const char *content_type; /* of raw or the stream */
    api_reader_fn reader; /* a stream (SSE, log follow): see MHD_create_response_from_callback */
    void *reader_ud;
    void (*reader_free)(void *ud);
    const char *retry_after; /* a Retry-After header value (429), static */
    const char
        *header_name;   /* one more header (static name: "X-Next-Offset", "Location"), or NULL */
    char *header_value; /* its value, owned */
    const void *static_body;   /* bytes that outlive the server (raw_len of them), not freed */
    const char *cache_control; /* static; NULL: "no-store" */
    const char *etag;          /* static ETag value, or NULL */
    bool page;                 /* a web UI file: adds the pages' security headers */
};

typedef void (*api_handler_fn)(struct api_req *rq, struct api_resp *rs);

/* A route's flags. SLOW: its handler takes long (argon2id password hashing): it runs on a
 * thread of its own, so the server's threads are never held by it. */
#define API_ROUTE_SLOW 1u
/* UNPACED: never held back by the admission limit (health checks, metrics: cheap, and a
 * monitor must see a busy server as alive). */
#define API_ROUTE_UNPACED 2u

struct api_route {
    const char *method;  /* "GET", "POST", ...; NULL ends a table */
    const char *pattern; /* "/api/v1/dags/{dag}/runs/{run}" */
    enum auth_role role; /* least role allowed; AUTH_NONE: public */
    api_handler_fn fn;
    unsigned flags; /* API_ROUTE_* */
};

/* The route tables; each ends with a row whose method is NULL. */
extern const struct api_route api_routes_read[];  /* routes_read.c: DAGs, runs, tasks, logs... */
extern const struct api_route api_routes_write[]; /* routes_write.c: trigger, clear, cancel... */
extern const struct api_route api_routes_auth[];  /* routes_auth.c: token, users */
extern const struct api_route api_routes_obs[];   /* routes_obs.c: events, metrics, health */
extern const struct api_route api_routes_web[];   /* web.c: the web UI's files */
extern const struct api_route api_routes_ops[];   /* routes_ops.c: mark, clear, backfill, audit */

/* routes_write.c, for the other write routes: an ops error as a problem (404 naming what/name,
 * 400, 409, 503); the run checked to belong to the DAG (0, or -1 after a 404 or 503). */
struct ops_err;
void api_ops_problem(struct api_resp *rs, const struct ops_err *e, const char *what,
                     const char *name);
int api_run_of_dag(struct api_resp *rs, struct store *s, const char *dag_id, const char *run_id);
/* routes_ops.c: records a change the caller made in the audit log (ops/audit.h) on rq's store;
 * details (a JSON object, or NULL) is consumed. */
void api_audit(struct api_req *rq, const char *action, const char *dag_id, const char *run_id,
               const char *task_id, json_t *details);
extern const struct api_route api_routes_vars[];  /* routes_vars.c: variables (vars) */

/* The routing of a raw path, as the server does it (for tests and fuzzing): 0 with the
 * decoded, checked {segments} in seg[0..*nseg) (malloc'd, free each), or the status the
 * server answers: 404 no such path, 405 another method, 400 a bad segment. */
int api_route_path(const char *method, const char *url, char **seg, size_t *nseg) WARN_UNUSED;

/* One raw path segment (n bytes at p) as the server checks {segments}: percent-decoded, 1 to
 * API_SEG_MAX bytes, valid UTF-8, no '/' or NUL, not "." or "..". 0 with *out (malloc'd), or
 * -EINVAL. The worker's log server checks its ids with it. Any thread. */
int api_seg_decode(const char *p, size_t n, char **out) WARN_UNUSED;

/* The token of an Authorization header "Bearer TOKEN" (borrowed from hdr), or NULL when hdr
 * is NULL, of another scheme or has an empty token. */
const char *api_bearer(const char *hdr);

struct sockaddr_storage;
/* Parses and resolves a listen address "host:port" or "[v6]:port" (port 0: any) into *ss,
 * *v6 telling its family. 0, or -EINVAL with *e filled. Blocks on DNS: not on a loop. */
int api_parse_listen(const char *listen, struct sockaddr_storage *ss, bool *v6,
                     struct err *e) WARN_UNUSED;

/* Helpers for handlers. */
void api_json(struct api_resp *rs, int status, json_t *body); /* takes body */
void api_problem(struct api_resp *rs, int status, const char *title, const char *fmt, ...)
    PRINTF_LIKE(4, 5);
/* A request header's value, or NULL. */
const char *api_header(const struct api_req *rq, const char *name);
/* A query argument (decoded), or NULL. */
const char *api_query(const struct api_req *rq, const char *name);
/* An integer query argument within [min, max], def when absent: 0, or -EINVAL after filling
 * rs with a 400 problem naming the argument. */
int api_query_int(const struct api_req *rq, struct api_resp *rs, const char *name, int64_t min,
                  int64_t max, int64_t def, int64_t *out) WARN_UNUSED;
/* The body as a JSON object: 0 and *out (owned), or -EINVAL after filling rs with a 400 (not
 * JSON, not an object, invalid UTF-8). An empty body is an empty object. Every key must be in
 * allowed (NULL-terminated), else 400 naming it. */
int api_body_object(const struct api_req *rq, struct api_resp *rs, const char *const *allowed,
                    json_t **out) WARN_UNUSED;
/* A write of server a changed what the DAG list shows (paused, a new run): its next read
 * rebuilds it instead of serving the copy kept for up to 200 ms (routes_read.c). Any thread. */
void api_dags_changed(struct api *a);
/* The DAG list's cache of one server (routes_read.c): api_start makes it, api_stop frees it
 * once the server's threads are gone; api_dags_cache gives a server's. */
struct api_dags_cache;
struct api_dags_cache *api_dags_cache_new(void);
void api_dags_cache_free(struct api_dags_cache *c);
struct api_dags_cache *api_dags_cache(struct api *a);
/* The store of this thread (opened on first use): NULL after filling rs with a 503. */
struct store *api_store(struct api_req *rq, struct api_resp *rs);

#endif
