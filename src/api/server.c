/*
 * server.c - the REST API's HTTP server (api.h): libmicrohttpd, routing,
 * bearer-token checks, body limits, path segment checks, problem+json, the
 * handlers' helpers and each thread's store connection.
 *
 * Threads: libmicrohttpd runs a small pool of threads (api_opts.threads,
 * 2 by default), each with its own epoll set of connections; a request is
 * handled on its connection's thread, start to end, and the scheduler's loop
 * is never touched from here. A thread per connection was the first design:
 * under 64 busy connections its task switches cost the scheduler's run more
 * than the requests did (bench/API-RESULTS.md). So nothing here may wait:
 * an event stream with nothing to send is suspended and resumed by the hub
 * (routes_obs.c), and the slow routes (argon2id password hashing, flagged
 * API_ROUTE_SLOW) run on a thread of their own while their connection is
 * suspended. Store reads are short (SQLite WAL readers never wait for the
 * writer). Each thread opens its own store connection on first use
 * (api_store) and keeps it in a thread-local slot (a pthread key) whose
 * destructor closes it when the thread ends.
 *
 * Admission (api_opts.max_rps): requests start evenly spaced at most that
 * many a second; a thread ahead of the schedule sleeps (its connections
 * wait: the queue a limit makes, bounded by the connection limit; the time
 * a request spent in the kernel before its thread read it is not visible
 * here, so nothing is refused for waiting long), and with many threads a
 * request whose turn is over a second away gets 503 + Retry-After. Routes
 * flagged API_ROUTE_UNPACED (health, metrics) are never held back. The
 * API's share of the machine is then a setting, not whatever a client's
 * load takes.
 *
 * Paths are matched raw: libmicrohttpd's unescaping is replaced by an
 * identity callback, so a "%2F" inside a segment stays inside that segment
 * and a route is chosen on the path as sent. Only then is each {segment}
 * decoded and checked (no '/', NUL, "." or "..", valid UTF-8, at most
 * API_SEG_MAX bytes: else 400). Query arguments are decoded on demand by
 * api_query.
 *
 * Order of checks: route (404, 405 with Allow), body size (413, at once
 * when Content-Length announces it), token (401 with WWW-Authenticate;
 * a revoked one too: revoke_check on every request, revoke.h), role
 * (403), segments (400), then the handler. One logfmt line per request
 * at info: method, path without its query (which may carry secrets),
 * status, time, user; never a header. libmicrohttpd's own messages go to
 * the log at debug.
 *
 * Ownership: struct api owns copies of its option strings and the MHD
 * daemon; each request's state (struct conn) lives from the first call of
 * the access handler to MHD's completion callback, which frees it.
 */
#include "api/api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api/revoke.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "ops/runjson.h"
#include "store/store.h"

#define SERVER_MAX_CONNECTIONS 512
#define SERVER_TIMEOUT_S       30
#define SERVER_CONN_MEMORY     (24 * 1024) /* per connection; MHD zeroes it per request */
#define SERVER_STREAM_BLOCK    4096
#define SERVER_MAX_QUERY       16   /* decoded query values kept per request */
#define SERVER_THREADS         2    /* threads serving connections (epoll each) */
#define SERVER_SLOW_MAX        8    /* slow requests (password hashing) running at once */
#define SERVER_PACE_BURST_MS   50   /* admission: the burst allowed after a quiet spell */
#define SERVER_PACE_WAIT_MS    1000 /* admission: the longest a request waits for its slot */
#define SERVER_PACE_SLACK_MS   1    /* admission: how far ahead slots run before a sleep */
/* The web UI's pages: scripts, styles, images and requests from this origin only. */
#define SERVER_PAGE_CSP                                                                            \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "                 \
    "frame-ancestors 'none'"

struct api {
    struct MHD_Daemon *mhd;
    struct api_opts opts; /* strings owned (copies) */
    int port;
    /* Admission (opts.max_rps): the monotonic time the next request may start at; each
     * admitted request moves it on by one interval. 0 interval: no limit. */
    _Atomic int64_t pace_next_ns;
    int64_t pace_interval_ns;
    /* Slow routes (API_ROUTE_SLOW) run on threads of their own: how many run now, and the
     * threads, joined (not detached) so that each has ended, its thread-local state freed
     * (OpenSSL's, through libjwt), before the next takes its slot or the server stops. */
    pthread_mutex_t slow_mu;
    pthread_cond_t slow_cv;
    int slow_running;
    bool slow_closed; /* api_stop began: no slow request starts any more */
    pthread_t slow_thread[SERVER_SLOW_MAX];
    bool slow_used[SERVER_SLOW_MAX];  /* a thread was started in the slot and not joined */
    bool slow_ended[SERVER_SLOW_MAX]; /* ... and its handler is done */
    struct revoke *revoke;            /* the deny list's snapshot, checked on every request */
    /* Each of the server's threads reads the store on a connection of its own (api_store),
     * kept under store_key and closed when the thread ends; the key is deleted once they all
     * have (api_stop). store_key_ok false: no key, every store read answers 503. */
    pthread_key_t store_key;
    bool store_key_ok;
    struct api_dags_cache *dags; /* owned: the DAG list's cache (routes_read.c) */
    int nice_to;                 /* the nice value its threads take (server_renice) */
};

/* One request: from the access handler's first call to MHD's completion callback. */
struct conn {
    bool logged; /* its request line was written */
    struct api_req rq;
    const struct api_route *route;
    struct buf body;
    bool done; /* a response was queued */
    bool too_big;
    int pending; /* 404 or 405 to answer at the last call (no route) */
    char *allow; /* the Allow header of a 405 */
    char *seg[API_MAX_SEGS];
    char *qval[SERVER_MAX_QUERY]; /* decoded query values (api_query) */
    size_t nq;
    int64_t t0_ns;
    char client[INET6_ADDRSTRLEN + 8];
    /* A slow route: its handler runs on a thread of its own while the connection is
     * suspended; the answer waits in slow_rs until MHD calls the access handler again. */
    bool slow_started;
    int slow_slot; /* its thread's slot in api.slow_thread */
    _Atomic bool slow_done;
    struct api_resp slow_rs;
    struct MHD_Connection *mc;
};

/* ---- the thread's store ---- */

static void store_key_free(void *p)
{
    store_close(p);
}

struct store *api_store(struct api_req *rq, struct api_resp *rs)
{
    if (rq->store)
        return rq->store;
    struct api *a = rq->api;
    if (!a->store_key_ok) {
        api_problem(rs, 503, "Service Unavailable", "the store is not available");
        return NULL;
    }
    struct store *s = pthread_getspecific(a->store_key);
    if (!s) {
        struct err se = {0};
        if (store_open(rq->opts->store_url, &s, &se) < 0) {
            log_error("api: cannot open the store", "error=%s", log_q(err_msg(&se)));
            api_problem(rs, 503, "Service Unavailable", "the store is not available");
            return NULL;
        }
        if (pthread_setspecific(a->store_key, s) != 0) {
            store_close(s);
            api_problem(rs, 503, "Service Unavailable", "the store is not available");
            return NULL;
        }
    }
    rq->store = s;
    return s;
}

/* ---- responses ---- */

void api_json(struct api_resp *rs, int status, json_t *body)
{
    json_decref(rs->body);
    rs->status = status;
    rs->body = body;
    rs->problem = false;
}

void api_problem(struct api_resp *rs, int status, const char *title, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    char *clean = runjson_utf8_clean(detail, strlen(detail));
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string("about:blank"));
    json_object_set_new(o, "title", json_string(title));
    json_object_set_new(o, "status", json_integer(status));
    json_object_set_new(o, "detail", json_string(clean));
    free(clean);
    free(rs->raw);
    rs->raw = NULL;
    rs->raw_len = 0;
    rs->content_type = NULL;
    api_json(rs, status, o);
    rs->problem = true;
}

static void resp_release(struct api_resp *rs)
{
    json_decref(rs->body);
    free(rs->raw);
    free(rs->header_value);
    if (rs->reader && rs->reader_free)
        rs->reader_free(rs->reader_ud);
    memset(rs, 0, sizeof *rs);
}

/* ---- query arguments and bodies ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes p[0..n) ('+' too when plus): 0 and *out (malloc'd, *len bytes, NUL-terminated),
 * or -EINVAL for a bad escape. */
static int pct_decode(const char *p, size_t n, bool plus, char **out, size_t *len)
{
    char *d = xmalloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%') {
            int hi = i + 2 < n ? hexval(p[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(p[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(d);
                return -EINVAL;
            }
            d[k++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (plus && p[i] == '+') {
            d[k++] = ' ';
        } else {
            d[k++] = p[i];
        }
    }
    d[k] = 0;
    *out = d;
    *len = k;
    return 0;
}

static struct conn *conn_of(const struct api_req *rq)
{
    return (struct conn *)((char *)rq - offsetof(struct conn, rq));
}

const char *api_header(const struct api_req *rq, const char *name)
{
    return rq->conn ? MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name) : NULL;
}

const char *api_query(const struct api_req *rq, const char *name)
{
    if (!rq->conn)
        return NULL;
    const char *raw = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
    if (!raw)
        return NULL;
    struct conn *c = conn_of(rq);
    char *v;
    size_t len;
    /* A bad escape or a NUL inside makes the value "", which no argument accepts. */
    if (pct_decode(raw, strlen(raw), true, &v, &len) < 0)
        return "";
    if (strlen(v) != len) {
        free(v);
        return "";
    }
    if (c->nq == SERVER_MAX_QUERY) {
        free(v);
        return "";
    }
    c->qval[c->nq++] = v;
    return v;
}

int api_query_int(const struct api_req *rq, struct api_resp *rs, const char *name, int64_t min,
                  int64_t max, int64_t def, int64_t *out)
{
    const char *v = api_query(rq, name);
    if (!v) {
        *out = def;
        return 0;
    }
    if (parse_int64(v, min, max, out) < 0) {
        api_problem(rs, 400, "Bad Request",
                    "query argument '%s' must be an integer from %lld to %lld", name,
                    (long long)min, (long long)max);
        return -EINVAL;
    }
    return 0;
}

int api_body_object(const struct api_req *rq, struct api_resp *rs, const char *const *allowed,
                    json_t **out)
{
    if (!rq->body || rq->body_len == 0) {
        *out = json_object();
        return 0;
    }
    json_error_t e;
    json_t *j = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        api_problem(rs, 400, "Bad Request", "the body is not valid JSON: %s", e.text);
        return -EINVAL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        api_problem(rs, 400, "Bad Request", "the body must be a JSON object");
        return -EINVAL;
    }
    const char *key;
    json_t *val;
    json_object_foreach(j, key, val)
    {
        bool ok = false;
        for (size_t i = 0; allowed && allowed[i]; i++)
            if (strcmp(allowed[i], key) == 0)
                ok = true;
        if (!ok) {
            api_problem(rs, 400, "Bad Request", "unknown field '%s'", key);
            json_decref(j);
            return -EINVAL;
        }
    }
    *out = j;
    return 0;
}

/* ---- routing ---- */

struct span {
    const char *p;
    size_t n;
};

/* Whether the raw path url matches pattern; the {segments} (raw) go to segs. */
static bool route_match(const char *pat, const char *url, struct span *segs, size_t *nseg)
{
    const char *p = pat, *u = url;
    *nseg = 0;
    while (*p && *u) {
        if (*p != '/' || *u != '/')
            return false;
        p++, u++;
        const char *pe = strchrnul(p, '/'), *ue = strchrnul(u, '/');
        if (*p == '{') {
            if (ue == u || *nseg == API_MAX_SEGS)
                return false;
            segs[*nseg].p = u;
            segs[(*nseg)++].n = (size_t)(ue - u);
        } else if (pe - p != ue - u || memcmp(p, u, (size_t)(pe - p)) != 0) {
            return false;
        }
        p = pe, u = ue;
    }
    return *p == 0 && *u == 0;
}

static const struct api_route *const *route_tables(void)
{
    static const struct api_route *const tables[] = {api_routes_read,
                                                     api_routes_write,
                                                     api_routes_auth,
                                                     api_routes_obs,
                                                     api_routes_web,
                                                     api_routes_ops,
                                                     api_routes_vars,
                                                     NULL};
    return tables;
}

/* The route for method + url, or NULL with allow filled ("GET, HEAD, POST") when the path
 * exists with other methods (allow empty: no such path). HEAD takes the GET route (RFC 9110
 * 9.3.2): libmicrohttpd sends the answer's headers without its body. */
static const struct api_route *route_find(const char *method, const char *url, struct span *segs,
                                          size_t *nseg, struct buf *allow)
{
    const struct api_route *const *t = route_tables();
    if (strcmp(method, "HEAD") == 0)
        method = "GET";
    for (size_t i = 0; t[i]; i++) {
        for (const struct api_route *r = t[i]; r->method; r++) {
            if (!route_match(r->pattern, url, segs, nseg))
                continue;
            if (strcmp(r->method, method) == 0)
                return r;
            if (!strstr(allow->data, r->method))
                (void)!buf_addf(allow, "%s%s%s", allow->len ? ", " : "", r->method,
                                strcmp(r->method, "GET") == 0 ? ", HEAD" : "");
        }
    }
    return NULL;
}

/* Decodes and checks one {segment}: 0 and *out (malloc'd), or -EINVAL. */
static int seg_decode(const struct span *s, char **out)
{
    char *d;
    size_t len;
    if (pct_decode(s->p, s->n, false, &d, &len) < 0)
        return -EINVAL;
    bool ok = len > 0 && len <= API_SEG_MAX && strcmp(d, ".") != 0 && strcmp(d, "..") != 0;
    for (size_t i = 0; ok && i < len;) {
        size_t k = runjson_utf8_seq((const unsigned char *)d + i, len - i);
        if (k == 0 || d[i] == '/')
            ok = false;
        i += k ? k : 1;
    }
    if (!ok) {
        free(d);
        return -EINVAL;
    }
    *out = d;
    return 0;
}

int api_seg_decode(const char *p, size_t n, char **out)
{
    struct span s = {p, n};
    return seg_decode(&s, out);
}

int api_route_path(const char *method, const char *url, char **seg, size_t *nseg)
{
    struct span spans[API_MAX_SEGS];
    struct buf allow = BUF_INIT(256);
    const struct api_route *r = route_find(method, url, spans, nseg, &allow);
    int status = r ? 0 : allow.len ? 405 : 404;
    buf_release(&allow);
    if (!r) {
        *nseg = 0;
        return status;
    }
    for (size_t i = 0; i < *nseg; i++) {
        if (seg_decode(&spans[i], &seg[i]) < 0) {
            for (size_t k = 0; k < i; k++)
                free(seg[k]);
            *nseg = 0;
            return 400;
        }
    }
    return 0;
}

/* ---- sending ---- */

/* One line per request: at debug when it went well (a busy API would flood the log at
 * 10,000 lines a second), at info for 4xx (refused or bad requests: worth seeing), at warn
 * for 5xx. */
static void log_request(struct conn *c, const char *url, int status)
{
    enum log_level lv = status >= 500 ? LOG_WARN : status >= 400 ? LOG_INFO : LOG_DEBUG;
    if (lv < log_get_level())
        return;
    double ms = (double)(when_mono_ns() - c->t0_ns) / 1e6;
    const char *user = c->rq.user.name[0] ? log_q(c->rq.user.name) : "-";
    if (lv == LOG_WARN)
        log_warn("request", "method=%s path=%s status=%d ms=%.2f user=%s client=%s",
                 log_q(c->rq.method), log_q(url), status, ms, user, c->client);
    else if (lv == LOG_INFO)
        log_info("request", "method=%s path=%s status=%d ms=%.2f user=%s client=%s",
                 log_q(c->rq.method), log_q(url), status, ms, user, c->client);
    else
        log_debug("request", "method=%s path=%s status=%d ms=%.2f user=%s client=%s",
                  log_q(c->rq.method), log_q(url), status, ms, user, c->client);
}

static enum MHD_Result send_resp(struct conn *c, struct MHD_Connection *mc, const char *url,
                                 struct api_resp *rs, const char *allow)
{
    if (rs->status < 100 || rs->status > 599) {
        log_error("api: a handler gave no response", "path=%s", log_q(url));
        api_problem(rs, 500, "Internal Server Error", "the handler gave no response");
    }
    struct MHD_Response *resp;
    const char *ctype;
    if (rs->reader && c->rq.method && strcmp(c->rq.method, "HEAD") == 0) {
        /* HEAD of a stream (events, a log): its headers and no body. A stream's response
         * would make libmicrohttpd 0.9.75 send the chunked encoding's last chunk, a body a
         * HEAD must not have, which breaks the next answer on a kept-alive connection. */
        if (rs->reader_free)
            rs->reader_free(rs->reader_ud);
        rs->reader = NULL;
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        ctype = rs->content_type ? rs->content_type : "application/octet-stream";
    } else if (rs->reader) {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SERVER_STREAM_BLOCK, rs->reader,
                                                 rs->reader_ud, rs->reader_free);
        rs->reader = NULL; /* MHD owns reader_ud now (or it was freed on failure) */
        ctype = rs->content_type ? rs->content_type : "application/octet-stream";
    } else if (rs->body) {
        char *text = json_dumps(rs->body, RUNJSON_DUMP_FLAGS);
        if (!text) {
            text = xstrdup("{\"type\":\"about:blank\",\"title\":\"Internal Server Error\","
                           "\"status\":500,\"detail\":\"cannot encode the response\"}");
            rs->status = 500;
            rs->problem = true;
        }
        resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            free(text);
        ctype = rs->problem ? "application/problem+json" : "application/json";
    } else {
        if (rs->static_body) {
            resp = MHD_create_response_from_buffer(rs->raw_len, (void *)rs->static_body,
                                                   MHD_RESPMEM_PERSISTENT);
        } else if (rs->raw) {
            resp = MHD_create_response_from_buffer(rs->raw_len, rs->raw, MHD_RESPMEM_MUST_FREE);
            if (resp)
                rs->raw = NULL;
        } else {
            resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        }
        ctype = rs->content_type; /* NULL: no body at all (204) */
    }
    if (!resp) {
        resp_release(rs);
        c->done = true;
        return MHD_NO;
    }
    if (ctype)
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                                  rs->cache_control ? rs->cache_control : "no-store");
    (void)MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (rs->etag)
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, rs->etag);
    if (rs->page) {
        (void)MHD_add_response_header(resp, "Content-Security-Policy", SERVER_PAGE_CSP);
        (void)MHD_add_response_header(resp, "X-Frame-Options", "DENY");
        (void)MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    }
    if (rs->retry_after)
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, rs->retry_after);
    if (rs->header_name && rs->header_value)
        (void)MHD_add_response_header(resp, rs->header_name, rs->header_value);
    if (rs->status == 401)
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                      "Bearer realm=\"baram\"");
    if (allow)
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    int status = rs->status;
    enum MHD_Result ok = MHD_queue_response(mc, (unsigned)status, resp);
    MHD_destroy_response(resp);
    resp_release(rs);
    if (ok == MHD_YES)
        c->done = true;
    if (!c->logged) { /* an early answer (413 while a body comes) may be refused: still say it */
        c->logged = true;
        log_request(c, url, status);
    }
    return ok;
}

static enum MHD_Result send_problem(struct conn *c, struct MHD_Connection *mc, const char *url,
                                    int status, const char *title, const char *detail,
                                    const char *allow)
{
    struct api_resp rs = {0};
    api_problem(&rs, status, title, "%s", detail);
    return send_resp(c, mc, url, &rs, allow);
}

/* ---- the access handler ---- */

static void client_addr(struct MHD_Connection *mc, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, cap, "-");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)cap);
}

/* The 404 or 405 of a request without a route. */
static enum MHD_Result pending_problem(struct conn *c, struct MHD_Connection *mc, const char *url)
{
    if (c->pending == 405)
        return send_problem(c, mc, url, 405, "Method Not Allowed",
                            "this path does not take this method", c->allow);
    return send_problem(c, mc, url, 404, "Not Found", "no such route", NULL);
}

/* First call: the route and the announced body size. */
static enum MHD_Result first_call(struct api *a, struct conn *c, struct MHD_Connection *mc,
                                  const char *url, const char *method)
{
    struct buf allow = BUF_INIT(BUF_NO_MAX);
    struct span segs[API_MAX_SEGS];
    size_t nseg = 0;
    c->route = route_find(method, url, segs, &nseg, &allow);
    const char *cl =
        MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int64_t announced = 0;
    if (cl && parse_int64(cl, 0, INT64_MAX, &announced) < 0)
        announced = 0;
    if (!c->route) {
        /* Answered at the last call, so a keep-alive connection stays open; at once when a
         * body is coming (the connection then closes instead of reading it). */
        c->pending = allow.len ? 405 : 404;
        c->allow = buf_detach(&allow, NULL);
        return announced > 0 ? pending_problem(c, mc, url) : MHD_YES;
    }
    buf_release(&allow);
    /* Keep the raw segments until the body is in: they are decoded after the token check. */
    for (size_t i = 0; i < nseg; i++)
        c->seg[i] = xstrndup(segs[i].p, segs[i].n);
    c->rq.nseg = nseg;
    if (announced > API_BODY_MAX)
        return send_problem(c, mc, url, 413, "Content Too Large", "the request body is over 1 MiB",
                            NULL);
    (void)a;
    return MHD_YES;
}

/* Admission: requests start at most opts.max_rps a second, evenly spaced, with a burst of
 * SERVER_PACE_BURST_MS worth allowed after a quiet spell. Each request takes the next slot;
 * when the slots run more than SERVER_PACE_SLACK_MS ahead of the clock, the thread sleeps
 * until the slot (one sleep per SLACK of requests, not one per request: a measured first
 * design that parked each early request and resumed it from a timer thread cost more
 * syscalls than the requests it limited). Meanwhile this thread's other connections wait:
 * that is the queue a limit makes. A request whose slot is over SERVER_PACE_WAIT_MS away
 * (many threads, a flood) is refused without taking a slot. 0, or -EAGAIN: refuse. */
static int pace_admit(struct api *a)
{
    if (a->pace_interval_ns <= 0)
        return 0;
    int64_t now = when_mono_ns();
    int64_t floor_ns = now - (int64_t)SERVER_PACE_BURST_MS * 1000000;
    int64_t prev = atomic_load(&a->pace_next_ns), slot;
    do {
        slot = prev > floor_ns ? prev : floor_ns;
        if (slot - now > (int64_t)SERVER_PACE_WAIT_MS * 1000000)
            return -EAGAIN;
    } while (!atomic_compare_exchange_weak(&a->pace_next_ns, &prev, slot + a->pace_interval_ns));
    if (slot - now > (int64_t)SERVER_PACE_SLACK_MS * 1000000) {
        struct timespec ts = {.tv_sec = slot / 1000000000, .tv_nsec = slot % 1000000000};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
    }
    return 0;
}

/* ---- slow routes ---- */

static void server_renice(const struct api *a);

static void *slow_main(void *arg)
{
    struct conn *c = arg;
    struct api *a = c->rq.api;
    int slot = c->slow_slot;
    server_renice(a);
    c->route->fn(&c->rq, &c->slow_rs);
    atomic_store(&c->slow_done, true);
    MHD_resume_connection(c->mc); /* MHD calls the access handler again: slow_answer */
    pthread_mutex_lock(&a->slow_mu);
    a->slow_running--;
    a->slow_ended[slot] = true;
    pthread_cond_broadcast(&a->slow_cv);
    pthread_mutex_unlock(&a->slow_mu);
    return NULL;
}

/* Joins the slow threads whose handlers are done (all, when stopping). slow_mu held. */
static void slow_reap(struct api *a)
{
    for (int i = 0; i < SERVER_SLOW_MAX; i++)
        if (a->slow_used[i] && a->slow_ended[i]) {
            pthread_join(a->slow_thread[i], NULL); /* at most the thread's own exit */
            a->slow_used[i] = a->slow_ended[i] = false;
        }
}

/* Runs a slow route's handler (password hashing) on a thread of its own, so the server's
 * few threads go on serving their other connections meanwhile; at most SERVER_SLOW_MAX at
 * once (more: 503). */
static enum MHD_Result slow_start(struct api *a, struct conn *c, struct MHD_Connection *mc,
                                  const char *url)
{
    pthread_mutex_lock(&a->slow_mu);
    slow_reap(a);
    int slot = -1;
    for (int i = 0; i < SERVER_SLOW_MAX && slot < 0 && !a->slow_closed; i++)
        if (!a->slow_used[i])
            slot = i;
    bool room = slot >= 0;
    bool closed = a->slow_closed;
    if (room) {
        a->slow_running++;
        a->slow_used[slot] = true;
        a->slow_ended[slot] = false;
    } else {
        pthread_mutex_unlock(&a->slow_mu);
    }
    if (!room) {
        struct api_resp rs = {0};
        api_problem(&rs, 503, "Service Unavailable", "%s",
                    closed ? "the server is stopping"
                           : "too many slow requests (logins, new users) at once; retry in a "
                             "second");
        rs.retry_after = "1";
        return send_resp(c, mc, url, &rs, NULL);
    }
    c->slow_started = true;
    c->slow_slot = slot;
    c->mc = mc;
    MHD_suspend_connection(mc);
    /* Created with slow_mu held, so the slot's thread id is set before anyone joins it. */
    int rc = pthread_create(&a->slow_thread[slot], NULL, slow_main, c);
    if (rc != 0) {
        a->slow_running--;
        a->slow_used[slot] = false;
        pthread_cond_broadcast(&a->slow_cv);
    }
    pthread_mutex_unlock(&a->slow_mu);
    if (rc != 0) { /* no thread: do it here */
        MHD_resume_connection(mc);
        c->slow_started = false;
        struct api_resp rs = {0};
        c->route->fn(&c->rq, &rs);
        return send_resp(c, mc, url, &rs, NULL);
    }
    return MHD_YES;
}

const char *api_bearer(const char *hdr)
{
    if (!hdr || strncasecmp(hdr, "Bearer ", 7) != 0)
        return NULL;
    const char *token = hdr + 7;
    while (*token == ' ')
        token++;
    return *token ? token : NULL;
}

/* Last call: the token, the role, the segments, the handler. */
static enum MHD_Result last_call(struct api *a, struct conn *c, struct MHD_Connection *mc,
                                 const char *url)
{
    if (c->pending)
        return pending_problem(c, mc, url);
    if (c->too_big)
        return send_problem(c, mc, url, 413, "Content Too Large", "the request body is over 1 MiB",
                            NULL);
    if (!(c->route->flags & API_ROUTE_UNPACED) && pace_admit(a) < 0) {
        struct api_resp rs = {0};
        api_problem(&rs, 503, "Service Unavailable",
                    "over the API's request rate (api max_rps %d); retry in a second",
                    a->opts.max_rps);
        rs.retry_after = "1";
        return send_resp(c, mc, url, &rs, NULL);
    }
    const char *hdr =
        MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *token = api_bearer(hdr);
    if (token && a->opts.auth) {
        const char *why = NULL;
        struct auth_user u;
        memset(&u, 0, sizeof u);
        int r = auth_verify(a->opts.auth, token, &u, &why);
        if (r == 0) {
            struct api_resp rs = {0};
            struct store *s = api_store(&c->rq, &rs);
            struct err se; /* every authenticated request: only the code is cleared */
            se.code = 0;
            r = s ? revoke_check(a->revoke, s, &u, &why, &se) : -EIO;
            if (r != 0 && r != -EACCES && c->route->role != AUTH_NONE) {
                if (s)
                    log_error("api: store error", "during=%s error=%s",
                              log_q("check revoked tokens"), log_q(err_msg(&se)));
                else
                    json_decref(rs.body);
                return send_problem(c, mc, url, 503, "Service Unavailable",
                                    "the store is not available", NULL);
            }
            json_decref(rs.body);
        }
        if (r == 0) {
            c->rq.user = u;
        } else if (c->route->role != AUTH_NONE) {
            return send_problem(c, mc, url, 401, "Unauthorized",
                                why ? why : "the token is not valid", NULL);
        }
    } else if (c->route->role != AUTH_NONE) {
        return send_problem(c, mc, url, 401, "Unauthorized",
                            hdr ? "the Authorization header must be 'Bearer TOKEN'"
                                : "a bearer token is required",
                            NULL);
    }
    if (c->rq.user.role < c->route->role) {
        char detail[128];
        snprintf(detail, sizeof detail, "this needs the role %s", auth_role_name(c->route->role));
        return send_problem(c, mc, url, 403, "Forbidden", detail, NULL);
    }
    for (size_t i = 0; i < c->rq.nseg; i++) {
        struct span s = {c->seg[i], strlen(c->seg[i])};
        char *d;
        if (seg_decode(&s, &d) < 0)
            return send_problem(c, mc, url, 400, "Bad Request",
                                "a path segment is not a valid name", NULL);
        free(c->seg[i]);
        c->seg[i] = d;
        c->rq.seg[i] = d;
    }
    if (c->body.len) {
        c->rq.body = c->body.data;
        c->rq.body_len = c->body.len;
    }
    if (c->route->flags & API_ROUTE_SLOW)
        return slow_start(a, c, mc, url);
    struct api_resp rs = {0};
    c->route->fn(&c->rq, &rs);
    return send_resp(c, mc, url, &rs, NULL);
}

/* HTTP work must never slow the scheduler (api.h): each connection's thread lowers its own
 * priority once (Linux: a thread's nice value is its own), so under load the scheduler's
 * loop and the tasks it starts get the CPU first. */
#define API_THREAD_NICE 19
static _Thread_local bool server_reniced;

/* The nice value of the server's threads: BARAM_API_NICE (0-19), default API_THREAD_NICE.
 * Read once by api_start, before any thread of the server runs. */
static int server_nice_value(void)
{
    const char *e = getenv("BARAM_API_NICE");
    int v = API_THREAD_NICE;
    if (e && parse_int(e, 0, 19, &v) < 0)
        v = API_THREAD_NICE;
    return v;
}

static void server_renice(const struct api *a)
{
    if (server_reniced)
        return;
    server_reniced = true;
    int nice_to = a->nice_to;
    if (nice_to == 0)
        return;
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    if (errno == 0 && cur < nice_to &&
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice_to) < 0) {
        /* not allowed: run at the same priority */
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct api *a = cls;
    struct conn *c = *con_cls;
    if (!c) {
        server_renice(a);
        c = xcalloc(1, sizeof *c);
        *con_cls = c;
        c->t0_ns = when_mono_ns();
        buf_init(&c->body, API_BODY_MAX);
        c->rq.api = a;
        c->rq.method = method;
        c->rq.path = url;
        c->rq.opts = &a->opts;
        c->rq.conn = mc;
        client_addr(mc, c->client, sizeof c->client);
        c->rq.client = c->client;
        return first_call(a, c, mc, url, method);
    }
    if (c->done) {
        *upload_data_size = 0; /* answered already: the rest of the body is dropped */
        return MHD_YES;
    }
    if (c->slow_started) { /* resumed: the slow handler's answer is ready */
        if (!atomic_load(&c->slow_done))
            return MHD_YES;
        return send_resp(c, mc, url, &c->slow_rs, NULL);
    }
    if (*upload_data_size) {
        if (!c->too_big && !c->pending && buf_add(&c->body, upload_data, *upload_data_size) < 0) {
            c->too_big = true;
            buf_release(&c->body);
            buf_init(&c->body, API_BODY_MAX);
            *upload_data_size = 0;
            /* Answer at once; if MHD cannot take a response mid-body, the last call does. */
            (void)send_problem(c, mc, url, 413, "Content Too Large",
                               "the request body is over 1 MiB", NULL);
            return MHD_YES;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    return last_call(a, c, mc, url);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct conn *c = *con_cls;
    if (!c)
        return;
    resp_release(&c->slow_rs);
    buf_release(&c->body);
    free(c->allow);
    for (size_t i = 0; i < API_MAX_SEGS; i++)
        free(c->seg[i]);
    for (size_t i = 0; i < c->nq; i++)
        free(c->qval[i]);
    free(c);
    *con_cls = NULL;
}

/* Paths stay as sent (see the design comment); query values are decoded by api_query. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    return strlen(s);
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    if (LOG_DEBUG < log_get_level())
        return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    log_debug("http server", "detail=%s", log_q(msg));
}

/* ---- start and stop ---- */

int api_parse_listen(const char *listen, struct sockaddr_storage *ss, bool *v6, struct err *e)
{
    const char *colon;
    char *host;
    int r = 0;
    if (listen[0] == '[') {
        const char *end = strchr(listen, ']');
        if (!end || end[1] != ':') {
            return err_set(e, -EINVAL, "bad listen address '%s' (want HOST:PORT or [V6]:PORT)",
                           listen);
        }
        host = xstrndup(listen + 1, (size_t)(end - listen - 1));
        colon = end + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || colon == listen || memchr(listen, ':', (size_t)(colon - listen))) {
            return err_set(e, -EINVAL, "bad listen address '%s' (want HOST:PORT or [V6]:PORT)",
                           listen);
        }
        host = xstrndup(listen, (size_t)(colon - listen));
    }
    int port;
    if (parse_int(colon + 1, 0, 65535, &port) < 0) {
        r = err_set(e, -EINVAL, "bad port in listen address '%s' (0 to 65535)", listen);
        free(host);
        return r;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, NULL, &hints, &res);
    if (g != 0 || !res) {
        r = err_set(e, -EINVAL, "cannot resolve listen host '%s': %s", host, gai_strerror(g));
        free(host);
        return r;
    }
    const struct addrinfo *pick = NULL;
    for (const struct addrinfo *ai = res; ai && !pick; ai = ai->ai_next)
        if (ai->ai_family == AF_INET)
            pick = ai;
    for (const struct addrinfo *ai = res; ai && !pick; ai = ai->ai_next)
        if (ai->ai_family == AF_INET6)
            pick = ai;
    memset(ss, 0, sizeof *ss);
    if (!pick) {
        r = err_set(e, -EINVAL, "listen host '%s' has no IPv4 or IPv6 address", host);
    } else {
        memcpy(ss, pick->ai_addr, pick->ai_addrlen);
        *v6 = pick->ai_family == AF_INET6;
        if (*v6)
            ((struct sockaddr_in6 *)(void *)ss)->sin6_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in *)(void *)ss)->sin_port = htons((uint16_t)port);
    }
    freeaddrinfo(res);
    free(host);
    return r;
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

int api_start(const struct api_opts *o, struct api **out, struct err *e)
{
    const char *listen = o->listen && *o->listen ? o->listen : "127.0.0.1:8080";
    struct sockaddr_storage ss;
    bool v6 = false;
    int r = api_parse_listen(listen, &ss, &v6, e);
    if (r < 0)
        return r;
    struct api *a = xcalloc(1, sizeof *a);
    a->store_key_ok = pthread_key_create(&a->store_key, store_key_free) == 0;
    a->dags = api_dags_cache_new();
    a->nice_to = server_nice_value();
    a->opts = *o;
    a->opts.listen = xstrdup(listen);
    a->opts.home = dup_or_null(o->home);
    a->opts.dags = dup_or_null(o->dags);
    a->opts.store_url = dup_or_null(o->store_url);
    a->opts.max_connections = o->max_connections > 0 ? o->max_connections : SERVER_MAX_CONNECTIONS;
    a->opts.conn_timeout_s = o->conn_timeout_s > 0 ? o->conn_timeout_s : SERVER_TIMEOUT_S;
    a->pace_interval_ns = o->max_rps > 0 ? 1000000000 / o->max_rps : 0;
    atomic_init(&a->pace_next_ns, 0);
    a->opts.threads = o->threads > 0 ? o->threads : SERVER_THREADS;
    pthread_mutex_init(&a->slow_mu, NULL);
    pthread_cond_init(&a->slow_cv, NULL);
    a->revoke = revoke_new();
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     (v6 ? MHD_USE_IPv6 : 0);
    /* A pool of one is no pool: libmicrohttpd warns about it, so the option is left out. */
    struct MHD_OptionItem pool[] = {
        {a->opts.threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
         (intptr_t)a->opts.threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    errno = 0;
    a->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER,
                              mhd_log, a, MHD_OPTION_ARRAY, pool, MHD_OPTION_SOCK_ADDR,
                              (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                              (unsigned)a->opts.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                              (unsigned)a->opts.conn_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                              (size_t)SERVER_CONN_MEMORY, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                              a, MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, a, MHD_OPTION_END);
    if (!a->mhd) {
        int no = errno ? errno : EADDRNOTAVAIL;
        (void)err_set(e, -no, "cannot listen on %s: %s", listen, strerror(no));
        api_stop(a);
        return -no;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);
    a->port = di ? di->port : 0;
    *out = a;
    return 0;
}

void api_stop(struct api *a)
{
    if (!a)
        return;
    if (a->mhd) {
        /* A slow handler resumes its connection when done: let them finish first. */
        pthread_mutex_lock(&a->slow_mu);
        a->slow_closed = true; /* libmicrohttpd must find no suspended connection at its stop */
        while (a->slow_running > 0)
            pthread_cond_wait(&a->slow_cv, &a->slow_mu);
        slow_reap(a);
        pthread_mutex_unlock(&a->slow_mu);
        MHD_stop_daemon(a->mhd);
        pthread_cond_destroy(&a->slow_cv);
        pthread_mutex_destroy(&a->slow_mu);
    }
    free((char *)a->opts.listen);
    free((char *)a->opts.home);
    free((char *)a->opts.dags);
    free((char *)a->opts.store_url);
    revoke_free(a->revoke);
    if (a->store_key_ok) /* every thread that used it has ended: their stores are closed */
        pthread_key_delete(a->store_key);
    api_dags_cache_free(a->dags);
    free(a);
}

struct api_dags_cache *api_dags_cache(struct api *a)
{
    return a->dags;
}

int api_port(const struct api *a)
{
    return a->port;
}
