/*
 * httptask.c - HTTP requests of `http` tasks and `wait` sensors; see
 * httptask.h.
 *
 * Key idea: a request is in exactly one place at a time, and the place says
 * who will finish it:
 *   HT_QUEUED   in its host's FIFO, waiting for an in-flight slot;
 *   HT_FLIGHT   in curl (curlloop), which calls httptask_curl_done();
 *   HT_DEFERRED failed before anything was sent (bad URL, circuit open), in
 *               the client's deferred list, delivered by a 0 ms timer so that
 *               done never runs from within httptask_start();
 *   HT_DONE     its done callback is running (cancel is then a no-op).
 * The circuit is consulted when a request leaves the queue (and at start, to
 * fail fast), so requests queued while the circuit opened send nothing. A
 * host's breaker is made by the first request that configures one and then
 * guards every request to that host.
 *
 * /metrics: each host publishes its requests in flight and queued and its
 * breaker's state into hoststats.h after every change (end of a pump, a
 * cancel), since the API's threads must not read these structs.
 *
 * Ownership: the client owns its hosts (never freed before the client: one
 * per distinct scheme://host:port), its curlloop, and every request until
 * its done callback returns. The client struct is freed by the close
 * callback of its timer. Loop thread only.
 */
#include "exec/httptask.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "base/buf.h"
#include "base/hmap.h"
#include "base/xalloc.h"
#include "exec/circuit.h"
#include "exec/curlloop.h"
#include "exec/hoststats.h"

#ifndef BARAM_VERSION
#define BARAM_VERSION "dev"
#endif

enum httptask_where { HT_QUEUED, HT_FLIGHT, HT_DEFERRED, HT_DONE };

struct httptask_host {
    char *key; /* owned: scheme://host:port */
    unsigned inflight;
    unsigned queued;                /* requests in its FIFO */
    struct httptask *qhead, *qtail; /* FIFO of HT_QUEUED requests */
    bool has_circuit;
    struct circuit circuit;
    int stat_slot;                     /* hoststats.h: where /metrics reads it, or -1 */
    int64_t pub_in_flight, pub_queued; /* what was last published there */
    int pub_circuit;
};

struct httptask {
    struct httptask_client *c;  /* borrowed */
    struct httptask_host *host; /* borrowed; NULL for a bad URL */
    enum httptask_where where;
    struct httptask *prev, *next; /* host queue, flight list or deferred list */
    CURL *easy;                   /* owned; NULL when deferred before it was made */
    struct curl_slist *headers;   /* owned */
    char *hostport;               /* owned: "host:port" for messages, or NULL */
    int *expect;                  /* owned */
    size_t nexpect;
    int64_t timeout_ms;
    bool use_circuit;    /* it went through its host's breaker: its outcome feeds it */
    bool trial;          /* ... as the breaker's trial */
    bool refused;        /* failed with "circuit open" */
    int64_t trial_at_ms; /* when refused: when the breaker may let a trial through */
    struct buf body;     /* response, max the request's body_max */
    bool cut;
    char *fail_msg;     /* owned: why a HT_DEFERRED request failed */
    uint64_t defer_seq; /* order in the deferred list */
    int64_t started_ms;
    httptask_done_fn *done;
    void *arg;
    char errbuf[CURL_ERROR_SIZE];
};

struct httptask_client {
    uv_loop_t *loop;     /* borrowed */
    struct curlloop *cl; /* owned */
    unsigned host_limit;
    struct httptask_host **hosts; /* owned */
    size_t nhosts, hosts_cap;
    struct hmap by_key;      /* host key -> index in hosts; keys borrowed from hosts */
    struct httptask *flight; /* HT_FLIGHT requests, unordered */
    struct httptask *deferred, *deferred_tail; /* HT_DEFERRED requests, oldest first */
    uint64_t defer_seq;
    uv_timer_t defer_timer;
    unsigned active;
    bool dying;
};

/* ---- small helpers ---- */

static void httptask_format_ms(int64_t ms, char *out, size_t cap)
{
    if (ms >= 3600000 && ms % 3600000 == 0)
        snprintf(out, cap, "%lldh", (long long)(ms / 3600000));
    else if (ms >= 60000 && ms % 60000 == 0)
        snprintf(out, cap, "%lldm", (long long)(ms / 60000));
    else if (ms >= 1000 && ms % 1000 == 0)
        snprintf(out, cap, "%llds", (long long)(ms / 1000));
    else
        snprintf(out, cap, "%lldms", (long long)ms);
}

static bool httptask_is_tchar(int ch)
{
    return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool httptask_is_token(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!httptask_is_tchar((unsigned char)*s))
            return false;
    return true;
}

static char *httptask_strf(const char *fmt, ...) PRINTF_LIKE(1, 2);
static char *httptask_strf(const char *fmt, ...)
{
    struct buf b = BUF_INIT(4096);
    va_list ap;
    va_start(ap, fmt);
    if (buf_vaddf(&b, fmt, ap) < 0)
        buf_reset(&b);
    va_end(ap);
    return buf_detach(&b, NULL);
}

static void httptask_list_push(struct httptask **head, struct httptask *t)
{
    t->prev = NULL;
    t->next = *head;
    if (*head)
        (*head)->prev = t;
    *head = t;
}

static void httptask_list_unlink(struct httptask **head, struct httptask *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        *head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

static void httptask_deferred_unlink(struct httptask_client *c, struct httptask *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        c->deferred = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        c->deferred_tail = t->prev;
    t->prev = t->next = NULL;
}

/* ---- host keys ---- */

static int httptask_parse_host(const char *url, char *key, size_t keycap, char **hostport,
                               char **why)
{
    int r = -EINVAL;
    char *scheme = NULL, *host = NULL, *port = NULL;
    CURLU *u = curl_url();
    if (!u)
        return -ENOMEM;
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (rc != CURLUE_OK) {
        *why = httptask_strf("bad url '%s': %s", url, curl_url_strerror(rc));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        *why = httptask_strf("bad url '%s': no host", url);
        goto out;
    }
    for (char *p = scheme; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    for (char *p = host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        *why =
            httptask_strf("unsupported scheme '%s' in url '%s' (http and https only)", scheme, url);
        goto out;
    }
    int n = snprintf(key, keycap, "%s://%s:%s", scheme, host, port);
    if (n < 0 || (size_t)n >= keycap) {
        *why = httptask_strf("bad url '%s': host name too long", url);
        goto out;
    }
    if (hostport)
        *hostport = httptask_strf("%s:%s", host, port);
    r = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return r;
}

int httptask_host_key(const char *url, char *out, size_t cap)
{
    char *why = NULL;
    int r = httptask_parse_host(url, out, cap, NULL, &why);
    if (r < 0 && cap > 0)
        snprintf(out, cap, "%s", why ? why : "bad url");
    free(why);
    return r;
}

static struct httptask_host *httptask_host_get(struct httptask_client *c, const char *key)
{
    uint32_t idx;
    if (hmap_get(&c->by_key, key, strlen(key), &idx))
        return c->hosts[idx];
    struct httptask_host *h = xcalloc(1, sizeof(*h));
    h->key = xstrdup(key);
    h->stat_slot = hoststats_slot(key);
    h->pub_circuit = HOSTSTATS_NO_CIRCUIT;
    xgrow((void **)&c->hosts, &c->hosts_cap, c->nhosts + 1, sizeof(*c->hosts));
    c->hosts[c->nhosts] = h;
    hmap_put(&c->by_key, h->key, strlen(h->key), (uint32_t)c->nhosts);
    c->nhosts++;
    return h;
}

/* Publishes what changed of h for /metrics readers on other threads (hoststats.h). */
static void httptask_host_publish(struct httptask_host *h)
{
    int circuit = h->has_circuit ? (int)h->circuit.state : HOSTSTATS_NO_CIRCUIT;
    int64_t in_flight = h->inflight, queued = h->queued;
    if (in_flight == h->pub_in_flight && queued == h->pub_queued && circuit == h->pub_circuit)
        return;
    hoststats_update(h->stat_slot, in_flight - h->pub_in_flight, queued - h->pub_queued, circuit);
    h->pub_in_flight = in_flight;
    h->pub_queued = queued;
    h->pub_circuit = circuit;
}

/* ---- finishing ---- */

static void httptask_free(struct httptask *t)
{
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    free(t->hostport);
    free(t->expect);
    free(t->fail_msg);
    buf_release(&t->body);
    free(t);
}

/* Calls done and frees t; t must already be out of every list. */
static void httptask_deliver(struct httptask *t, bool ok, bool cancelled, int status,
                             const char *msg)
{
    struct httptask_client *c = t->c;
    struct httptask_result res = {
        .ok = ok,
        .cancelled = cancelled,
        .status = status,
        .message = msg,
        .body = t->body.data,
        .body_len = t->body.len,
        .body_cut = t->cut,
        .elapsed_ms = (int64_t)uv_now(c->loop) - t->started_ms,
        .circuit_open = t->refused,
    };
    if (t->refused && t->trial_at_ms > (int64_t)uv_now(c->loop))
        res.trial_in_ms = t->trial_at_ms - (int64_t)uv_now(c->loop);
    c->active--;
    t->where = HT_DONE;
    t->done(t->arg, &res);
    httptask_free(t);
}

static void httptask_on_defer_timer(uv_timer_t *timer)
{
    struct httptask_client *c = timer->data;
    /* Only what was deferred before this turn: requests deferred by these callbacks wait for
     * the next one. A callback may cancel any request, so always take the current head. */
    uint64_t limit = c->defer_seq;
    while (c->deferred && c->deferred->defer_seq < limit) {
        struct httptask *t = c->deferred;
        httptask_deferred_unlink(c, t);
        httptask_deliver(t, false, false, 0, t->fail_msg);
    }
    if (c->deferred)
        uv_timer_start(&c->defer_timer, httptask_on_defer_timer, 0, 0);
}

/* Fails t before it sends anything; takes msg (malloc'd). */
static void httptask_defer_fail(struct httptask *t, char *msg)
{
    struct httptask_client *c = t->c;
    free(t->fail_msg);
    t->fail_msg = msg;
    t->where = HT_DEFERRED;
    t->defer_seq = c->defer_seq++;
    t->next = NULL;
    t->prev = c->deferred_tail;
    if (c->deferred_tail)
        c->deferred_tail->next = t;
    else
        c->deferred = t;
    c->deferred_tail = t;
    if (!uv_is_active((uv_handle_t *)&c->defer_timer))
        uv_timer_start(&c->defer_timer, httptask_on_defer_timer, 0, 0);
}

/* Fails t with "circuit open": nothing is sent. */
static void httptask_refuse(struct httptask *t, int64_t now_ms)
{
    t->refused = true;
    t->trial_at_ms = now_ms + circuit_retry_in_ms(&t->host->circuit, now_ms);
    httptask_defer_fail(t, xstrdup("circuit open"));
}

/* ---- the per-host queue ---- */

static void httptask_curl_done(CURL *easy, CURLcode result, void *arg);

/* The breaker belongs to the host (SPEC section 7): once a request configured one, every
 * request to the host goes through it, whichever task sent it. */
static bool httptask_circuit_blocks(struct httptask *t, int64_t now_ms)
{
    if (!t->host->has_circuit)
        return false;
    struct circuit *cb = &t->host->circuit;
    bool was_open = cb->state == CIRCUIT_OPEN;
    if (!circuit_allow(cb, now_ms))
        return true;
    t->use_circuit = true;
    t->trial = was_open && cb->state == CIRCUIT_HALF_OPEN;
    return false;
}

/* Sends queued requests of h while it has free slots. */
static void httptask_pump(struct httptask_client *c, struct httptask_host *h)
{
    while (!c->dying && h->qhead && h->inflight < c->host_limit) {
        struct httptask *t = h->qhead;
        h->queued--;
        h->qhead = t->next;
        if (h->qhead)
            h->qhead->prev = NULL;
        else
            h->qtail = NULL;
        t->prev = t->next = NULL;

        int64_t now = (int64_t)uv_now(c->loop);
        if (httptask_circuit_blocks(t, now)) {
            httptask_refuse(t, now);
            continue;
        }
        int r = curlloop_add(c->cl, t->easy, httptask_curl_done, t);
        if (r < 0) {
            if (t->trial)
                circuit_abandon(&h->circuit);
            httptask_defer_fail(t, xstrdup("could not start the request (curl refused it)"));
            continue;
        }
        t->where = HT_FLIGHT;
        h->inflight++;
        httptask_list_push(&c->flight, t);
    }
    httptask_host_publish(h);
}

static bool httptask_expected(const struct httptask *t, int status)
{
    if (t->nexpect == 0)
        return status >= 200 && status <= 299;
    for (size_t i = 0; i < t->nexpect; i++)
        if (t->expect[i] == status)
            return true;
    return false;
}

/* "200", "200 or 201", "200, 201 or 204", or "2xx" when any 2xx is accepted; cut if long. */
static int httptask_expect_text(const struct httptask *t, struct buf *b)
{
    if (t->nexpect == 0)
        return buf_adds(b, "2xx");
    for (size_t i = 0; i < t->nexpect; i++) {
        const char *sep = i == 0 ? "" : i + 1 == t->nexpect ? " or " : ", ";
        int r = buf_addf(b, "%s%d", sep, t->expect[i]);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Builds the message for a finished transfer; sets *ok and *transport_failed. */
static char *httptask_outcome(struct httptask *t, CURLcode result, int status, bool *ok,
                              bool *transport_failed)
{
    *ok = false;
    *transport_failed = false;
    if (result == CURLE_WRITE_ERROR && t->cut)
        result = CURLE_OK; /* we stopped reading on purpose at body_max */
    if (result == CURLE_OK) {
        if (httptask_expected(t, status)) {
            *ok = true;
            if (t->cut)
                return httptask_strf("status %d (body cut at %zu KiB)", status, t->body.max / 1024);
            return httptask_strf("status %d", status);
        }
        struct buf b = BUF_INIT(1024);
        if (httptask_expect_text(t, &b) < 0)
            buf_reset(&b);
        char *msg =
            httptask_strf("expected status %s%s, got %d", b.data, b.len ? "" : "...", status);
        buf_release(&b);
        return msg;
    }
    *transport_failed = true;
    const char *hp = t->hostport ? t->hostport : "?";
    char when[32];
    switch (result) {
    case CURLE_OPERATION_TIMEDOUT:
        httptask_format_ms(t->timeout_ms, when, sizeof(when));
        return httptask_strf("timed out after %s", when);
    case CURLE_COULDNT_CONNECT: {
        long oserr = 0;
        curl_easy_getinfo(t->easy, CURLINFO_OS_ERRNO, &oserr);
        if (oserr == ECONNREFUSED)
            return httptask_strf("connection refused (%s)", hp);
        break;
    }
    case CURLE_COULDNT_RESOLVE_HOST:
        return httptask_strf("could not resolve host (%s)", hp);
    default:
        break;
    }
    const char *why = t->errbuf[0] ? t->errbuf : curl_easy_strerror(result);
    return httptask_strf("request failed (%s): %s", hp, why);
}

static void httptask_curl_done(CURL *easy, CURLcode result, void *arg)
{
    struct httptask *t = arg;
    struct httptask_client *c = t->c;
    struct httptask_host *h = t->host;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);

    bool ok, transport_failed;
    char *msg = httptask_outcome(t, result, (int)status, &ok, &transport_failed);
    if (t->use_circuit)
        circuit_record(&h->circuit, !transport_failed && status < 500, (int64_t)uv_now(c->loop));
    httptask_list_unlink(&c->flight, t);
    h->inflight--;
    httptask_pump(c, h);
    httptask_deliver(t, ok, false, (int)status, msg);
    free(msg);
}

/* ---- building a request ---- */

static size_t httptask_on_body(char *p, size_t size, size_t n, void *arg)
{
    struct httptask *t = arg;
    size_t len = size * n;
    size_t room = t->body.max - t->body.len;
    if (len > room) {
        t->cut = true;
        if (room > 0 && buf_add(&t->body, p, room) < 0)
            return 0;
        return 0; /* stop the transfer: the rest is not read */
    }
    if (len > 0 && buf_add(&t->body, p, len) < 0)
        return 0;
    return len;
}

/* curl opens its sockets without SOCK_CLOEXEC, and task processes are spawned from this one:
 * open them ourselves (STYLE.md 7). */
static curl_socket_t httptask_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)arg;
    (void)purpose;
    int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    return fd < 0 ? CURL_SOCKET_BAD : fd;
}

/* Makes the easy handle; on bad input returns a malloc'd message and leaves t->easy NULL. */
static char *httptask_build(struct httptask *t, const struct httptask_req *req)
{
    const char *method = req->method && *req->method ? req->method : "GET";
    if (!httptask_is_token(method))
        return httptask_strf("bad method '%s'", method);
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct httptask_header *kv = &req->headers[i];
        if (!httptask_is_token(kv->name))
            return httptask_strf("bad header name '%s'", kv->name ? kv->name : "");
        const char *v = kv->value ? kv->value : "";
        if (strpbrk(v, "\r\n"))
            return httptask_strf("header '%s' has a line break in its value", kv->name);
        /* "Name;" is curl's way to send a header with an empty value. */
        char *line = *v ? httptask_strf("%s: %s", kv->name, v) : httptask_strf("%s;", kv->name);
        t->headers = curl_slist_append(t->headers, line);
        free(line);
        if (!t->headers)
            return xstrdup("out of memory");
    }

    CURL *e = curl_easy_init();
    if (!e)
        return xstrdup("could not make a request (curl_easy_init)");
    t->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, httptask_open_socket);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)HTTPTASK_MAX_REDIRECTS);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "baram/" BARAM_VERSION);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, httptask_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    if (t->headers)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    if (req->timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);

    bool is_get = strcmp(method, "GET") == 0;
    bool is_post = strcmp(method, "POST") == 0;
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (req->body || is_post) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(req->body ? req->body_len : 0));
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "");
        if (!is_post)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else if (is_get) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    return NULL;
}

/* ---- public ---- */

static void httptask_client_closed(uv_handle_t *h)
{
    free(h->data);
}

int httptask_client_new(uv_loop_t *loop, const struct httptask_client_opts *opts,
                        struct httptask_client **out)
{
    *out = NULL;
    struct curlloop *cl;
    int r = curlloop_new(loop, &cl);
    if (r < 0)
        return r;
    struct httptask_client *c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->cl = cl;
    c->host_limit = opts && opts->host_limit ? opts->host_limit : HTTPTASK_HOST_LIMIT;
    hmap_init(&c->by_key);
    uv_timer_init(loop, &c->defer_timer);
    c->defer_timer.data = c;
    *out = c;
    return 0;
}

struct curlloop *httptask_client_curlloop(struct httptask_client *c)
{
    return c->cl;
}

void httptask_client_free(struct httptask_client *c)
{
    if (!c)
        return;
    c->dying = true;
    while (c->deferred)
        httptask_cancel(c->deferred);
    while (c->flight)
        httptask_cancel(c->flight);
    for (size_t i = 0; i < c->nhosts; i++)
        while (c->hosts[i]->qhead)
            httptask_cancel(c->hosts[i]->qhead);
    for (size_t i = 0; i < c->nhosts; i++) {
        c->hosts[i]->has_circuit = false; /* the breaker goes with the client */
        httptask_host_publish(c->hosts[i]);
        free(c->hosts[i]->key);
        free(c->hosts[i]);
    }
    free(c->hosts);
    hmap_release(&c->by_key);
    curlloop_free(c->cl);
    uv_timer_stop(&c->defer_timer);
    uv_close((uv_handle_t *)&c->defer_timer, httptask_client_closed);
}

int httptask_start(struct httptask_client *c, const struct httptask_req *req,
                   httptask_done_fn *done, void *arg, struct httptask **out)
{
    struct httptask *t = xcalloc(1, sizeof(*t));
    t->c = c;
    t->done = done;
    t->arg = arg;
    t->timeout_ms = req->timeout_ms;
    uv_update_time(c->loop); /* the cached loop time may be stale; elapsed_ms counts from now */
    t->started_ms = (int64_t)uv_now(c->loop);
    buf_init(&t->body, req->body_max ? req->body_max : HTTPTASK_BODY_MAX);
    if (req->nexpect > 0) {
        t->expect = xmemdup(req->expect, req->nexpect * sizeof(*req->expect));
        t->nexpect = req->nexpect;
    }
    c->active++;
    if (out)
        *out = t;

    char key[512];
    char *why = NULL;
    if (httptask_parse_host(req->url ? req->url : "", key, sizeof(key), &t->hostport, &why) < 0) {
        httptask_defer_fail(t, why ? why : xstrdup("bad url"));
        return 0;
    }
    t->host = httptask_host_get(c, key);
    if (req->cb_failures > 0) {
        if (!t->host->has_circuit) {
            circuit_init(&t->host->circuit, req->cb_failures, req->cb_reset_ms);
            t->host->has_circuit = true;
        } else {
            circuit_configure(&t->host->circuit, req->cb_failures, req->cb_reset_ms);
        }
    }
    if ((why = httptask_build(t, req)) != NULL) {
        httptask_defer_fail(t, why);
        return 0;
    }
    /* Fail fast while the circuit is open and its reset has not passed (or a trial is out);
     * otherwise the decision is taken when the request leaves the queue. */
    if (t->host->has_circuit) {
        const struct circuit *cb = &t->host->circuit;
        int64_t now = (int64_t)uv_now(c->loop);
        if (cb->state == CIRCUIT_HALF_OPEN ||
            (cb->state == CIRCUIT_OPEN && circuit_retry_in_ms(cb, now) > 0)) {
            httptask_refuse(t, now);
            return 0;
        }
    }
    struct httptask_host *h = t->host;
    t->where = HT_QUEUED;
    t->prev = h->qtail;
    t->next = NULL;
    if (h->qtail)
        h->qtail->next = t;
    else
        h->qhead = t;
    h->qtail = t;
    h->queued++;
    httptask_pump(c, h);
    return 0;
}

void httptask_cancel(struct httptask *t)
{
    struct httptask_client *c = t->c;
    struct httptask_host *h = t->host;
    switch (t->where) {
    case HT_DEFERRED:
        httptask_deferred_unlink(c, t);
        break;
    case HT_DONE:
        return; /* its done callback is running */
    case HT_QUEUED:
        if (t->prev)
            t->prev->next = t->next;
        else
            h->qhead = t->next;
        if (t->next)
            t->next->prev = t->prev;
        else
            h->qtail = t->prev;
        t->prev = t->next = NULL;
        h->queued--;
        break;
    case HT_FLIGHT:
        curlloop_remove(c->cl, t->easy);
        httptask_list_unlink(&c->flight, t);
        if (t->trial)
            circuit_abandon(&h->circuit);
        h->inflight--;
        break;
    }
    bool pump = t->where == HT_FLIGHT;
    httptask_deliver(t, false, true, 0, "cancelled");
    if (pump)
        httptask_pump(c, h);
    else if (h)
        httptask_host_publish(h);
}

unsigned httptask_client_active(const struct httptask_client *c)
{
    return c->active;
}

/* ---- redaction for logs ---- */

static bool httptask_secret_name(const char *k, size_t n)
{
    static const char *const words[] = {"token", "key",  "secret",    "pass",
                                        "sig",   "auth", "credential"};
    char low[64];
    if (n >= sizeof(low))
        n = sizeof(low) - 1;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)k[i]);
    low[n] = 0;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strstr(low, words[i]))
            return true;
    return false;
}

char *httptask_redact_url(const char *url)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    const char *p = url, *scheme = strstr(url, "://");
    int r = 0;
    if (scheme) {
        const char *host = scheme + 3;
        size_t alen = strcspn(host, "/?#");
        const char *at = memchr(host, '@', alen);
        r |= buf_add(&b, url, (size_t)(host - url));
        if (at) {
            r |= buf_adds(&b, "***");
            host = at;
        }
        p = host;
    }
    const char *q = strchr(p, '?');
    if (!q) {
        r |= buf_adds(&b, p);
        (void)r;
        return buf_detach(&b, NULL);
    }
    r |= buf_add(&b, p, (size_t)(q + 1 - p));
    const char *end = q + 1 + strcspn(q + 1, "#");
    for (const char *s = q + 1; s < end;) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(stop - s));
        if (eq && httptask_secret_name(s, (size_t)(eq - s))) {
            r |= buf_add(&b, s, (size_t)(eq + 1 - s));
            r |= buf_adds(&b, "***");
        } else {
            r |= buf_add(&b, s, (size_t)(stop - s));
        }
        if (amp)
            r |= buf_addc(&b, '&');
        s = amp ? amp + 1 : end;
    }
    r |= buf_adds(&b, end);
    (void)r;
    return buf_detach(&b, NULL);
}
