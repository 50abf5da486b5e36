/*
 * httptask.h - one try of an `http` task (SPEC sections 2 and 7), run inside
 * the event loop on curlloop: no process, no thread, thousands in flight.
 *
 * A struct httptask_client (one per uv loop) holds the curlloop and, per host
 * key "scheme://host:port", a limit on requests in flight with a FIFO queue
 * for requests over the limit, and the host's optional circuit breaker
 * (circuit.h). httptask_start() sends one request and reports once, through
 * its done callback: ok or failed, the HTTP status, a message for people and
 * the response body (at most the request's body_max bytes; the rest is not read and
 * the body is flagged as cut).
 *
 * Request policy (fixed, documented here):
 *  - only http and https, also for redirects; up to 5 redirects are followed
 *    (the per-host limit and breaker are those of the first URL);
 *  - proxies: libcurl's defaults, i.e. the http_proxy / https_proxy /
 *    no_proxy environment variables are honoured, as curl and Python
 *    requests do;
 *  - TLS certificates and host names are verified;
 *  - DNS runs on libcurl's resolver threads, never on the loop;
 *  - sockets are opened close-on-exec, so spawned tasks never inherit them;
 *  - User-Agent: baram/VERSION unless the task sets one.
 *
 * Circuit breaker: it counts transport failures (refused, timed out, reset,
 * DNS) and 5xx answers as failures; any other answer, even one the task did
 * not expect, means the host is alive and counts as a success. The breaker
 * belongs to the host (SPEC section 7): the first request with cb_failures
 * > 0 makes it, and from then on every request to that host consults and
 * feeds it, whether it has settings of its own or not (an http task without
 * circuit_breaker, a wait's check). The host's breaker takes the settings of
 * the latest request that has some.
 *
 * Loop thread only. Every callback runs on the loop thread, never from
 * within httptask_start().
 */
#ifndef BARAM_EXEC_HTTPTASK_H
#define BARAM_EXEC_HTTPTASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/compiler.h"

struct httptask;
struct httptask_client;

#define HTTPTASK_HOST_LIMIT    16 /* default requests in flight per host */
#define HTTPTASK_MAX_REDIRECTS 5
#define HTTPTASK_BODY_MAX      (64 * 1024) /* default bytes of a response body kept */

/* One request header. */
struct httptask_header {
    const char *name;  /* a token (RFC 9110) */
    const char *value; /* no line break; NULL or "" sends the header empty */
};

struct httptask_client_opts {
    unsigned host_limit; /* requests in flight per host; 0 = HTTPTASK_HOST_LIMIT */
};

/* What to send. Every pointer is borrowed for the httptask_start() call only: the request
 * copies what it keeps. */
struct httptask_req {
    const char *method; /* upper case: GET POST PUT PATCH DELETE HEAD ...; NULL = GET */
    const char *url;    /* expanded and percent-encoded by the caller */
    const char *body;   /* may be NULL (no body) */
    size_t body_len;    /* bytes of body */
    const struct httptask_header *headers; /* may be NULL */
    size_t nheaders;
    const int *expect; /* accepted statuses; nexpect == 0 means any 2xx */
    size_t nexpect;
    int64_t timeout_ms;  /* whole request, from the moment it is sent; 0 = none */
    int cb_failures;     /* circuit breaker: failures in a row that open it; 0 = none */
    int64_t cb_reset_ms; /* how long it stays open before one trial */
    size_t body_max;     /* bytes of the response body kept (the rest is not read);
                            0 = HTTPTASK_BODY_MAX */
};

struct httptask_result {
    bool ok;             /* the request completed with an expected status */
    bool cancelled;      /* httptask_cancel() or httptask_client_free() ended it */
    int status;          /* HTTP status of the last response, 0 if none arrived */
    const char *message; /* for people, never NULL: "200 OK" style on success, else
                            "expected status 200, got 503", "timed out after 30s",
                            "connection refused (127.0.0.1:8080)", "circuit open", ... */
    const char *body;    /* response body, NUL-terminated, never NULL ("" when none) */
    size_t body_len;     /* <= the request's body_max */
    bool body_cut;       /* the response was longer than body_max; the rest was not read */
    int64_t elapsed_ms;  /* from httptask_start() to the end, queueing included */
    bool circuit_open;   /* refused by the host's open breaker: nothing was sent */
    int64_t trial_in_ms; /* when circuit_open: how long until the breaker may let a trial
                            through (its reset left; a whole reset while a trial is out) */
};

/* The request ended. res and everything it points to are borrowed until the callback returns:
 * copy what you keep. The struct httptask is freed right after; the callback may start or
 * cancel other requests. */
typedef void httptask_done_fn(void *arg, const struct httptask_result *res);

/* A client on loop: 0 and *out, or a negative errno (-ENOTSUP: libcurl without asynchronous
 * DNS). opts may be NULL for the defaults. */
int httptask_client_new(uv_loop_t *loop, const struct httptask_client_opts *opts,
                        struct httptask_client **out) WARN_UNUSED;

/* Cancels every request still queued or in flight (each done callback runs, with cancelled set),
 * then frees c. End every http waiter (waiter.h) using c first: one with a check in flight
 * ends as cancelled, but one between checks would use the freed client. Its uv handles close
 * asynchronously: run the loop (uv_run) once more before uv_loop_close(). NULL is a no-op. Not from
 * within a done callback. */
void httptask_client_free(struct httptask_client *c);
/* The client's curlloop, for other transfers on the same loop (notify.h). Borrowed: valid until
 * httptask_client_free, and every transfer added must be finished or removed before it. */
struct curlloop;
struct curlloop *httptask_client_curlloop(struct httptask_client *c);

/* Starts one request. Always returns 0 and sets *out (may be NULL if the caller never cancels):
 * every failure, including a bad URL, an unsupported scheme, a bad header or an open circuit,
 * is reported through done, which runs exactly once, later, on the loop thread. *out stays valid
 * until done is called. */
int httptask_start(struct httptask_client *c, const struct httptask_req *req,
                   httptask_done_fn *done, void *arg, struct httptask **out) WARN_UNUSED;

/* Ends a request that has not yet reported: done runs before httptask_cancel() returns, with
 * cancelled set and message "cancelled", and t is freed. A cancelled request does not count
 * for the circuit breaker. From within t's own done callback it is a no-op; calling it after
 * done has returned is a use after free. */
void httptask_cancel(struct httptask *t);

/* Requests of c queued or in flight (for metrics and tests). */
unsigned httptask_client_active(const struct httptask_client *c);

/* The host key "scheme://host:port" of url (lower-case scheme and host, default port filled
 * in) written to out: 0, or -EINVAL (not an http/https URL; out holds a message). */
int httptask_host_key(const char *url, char *out, size_t cap) WARN_UNUSED;

/* A copy of url fit for a log line (malloc'd): user:password@ becomes ***@, and the value of
 * every query parameter whose name looks secret (token, key, secret, pass, sig, auth,
 * credential; any case) becomes ***. Any thread. */
char *httptask_redact_url(const char *url);

#endif
