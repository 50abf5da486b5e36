/*
 * httptask_test.c - http task requests against a real HTTP server on
 * 127.0.0.1 (python3 http.server, see testserver.h): success, statuses,
 * timeouts, refused connections, the 64 KiB body cut, the per-host in-flight
 * limit, the circuit breaker end to end (counted on the server side),
 * cancellation, and clean shutdown under ASan (uv_loop_close must succeed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "exec/httptask.h"
#include "loopwait.h"
#include "testserver.h"

struct fx {
    uv_loop_t loop;
    struct testserver srv;
    struct httptask_client *c;
};

struct got {
    int n;
    bool ok, cancelled, cut, circuit_open;
    int64_t trial_in_ms;
    int status;
    char msg[512];
    char *body;
    size_t body_len;
    int64_t elapsed_ms;
    int *counter; /* optional: shared completion counter */
};

static void on_done(void *arg, const struct httptask_result *r)
{
    struct got *g = arg;
    g->n++;
    g->ok = r->ok;
    g->cancelled = r->cancelled;
    g->cut = r->body_cut;
    g->circuit_open = r->circuit_open;
    g->trial_in_ms = r->trial_in_ms;
    g->status = r->status;
    snprintf(g->msg, sizeof(g->msg), "%s", r->message);
    free(g->body);
    g->body = malloc(r->body_len + 1);
    memcpy(g->body, r->body, r->body_len + 1);
    g->body_len = r->body_len;
    g->elapsed_ms = r->elapsed_ms;
    if (g->counter)
        (*g->counter)++;
}

static void got_release(struct got *g)
{
    free(g->body);
    g->body = NULL;
}

/* Runs the loop for ms milliseconds. */
static void run_for(uv_loop_t *loop, uint64_t ms)
{
    int never = 0;
    (void)loopwait_until(loop, &never, 1, ms);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    if (testserver_start(&f->srv) < 0)
        fail_msg("could not start python3 http.server");
    assert_int_equal(httptask_client_new(&f->loop, NULL, &f->c), 0);
    uv_update_time(&f->loop); /* starting the server took a while: timers count from now */
    *state = f;
    return 0;
}

static void fx_free_client(struct fx *f)
{
    httptask_client_free(f->c);
    f->c = NULL;
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fx_free_client(f);
    assert_int_equal(uv_loop_close(&f->loop), 0); /* every handle closed */
    testserver_stop(&f->srv);
    free(f);
    return 0;
}

static void fx_limit(struct fx *f, unsigned limit)
{
    fx_free_client(f);
    struct httptask_client_opts o = {.host_limit = limit};
    assert_int_equal(httptask_client_new(&f->loop, &o, &f->c), 0);
}

static void url(const struct fx *f, char *out, size_t cap, const char *path)
{
    snprintf(out, cap, "%s%s", f->srv.base, path);
}

/* Sends one request and waits for it (at most 10 s). */
static void fetch(struct fx *f, struct httptask_req *req, struct got *g)
{
    int before = g->n;
    struct httptask *t = NULL;
    assert_int_equal(httptask_start(f->c, req, on_done, g, &t), 0);
    assert_non_null(t);
    assert_int_equal(g->n, before); /* never from within httptask_start */
    assert_true(loopwait_until(&f->loop, &g->n, before + 1, 10000));
}

static void get_ok_returns_the_body(void **state)
{
    struct fx *f = *state;
    char u[128];
    url(f, u, sizeof(u), "/ok");
    struct httptask_req req = {.url = u, .timeout_ms = 5000};
    struct got g = {0};
    fetch(f, &req, &g);
    assert_true(g.ok);
    assert_false(g.cancelled);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "hello");
    assert_int_equal(g.body_len, 5);
    assert_false(g.cut);
    assert_string_equal(g.msg, "status 200");
    assert_int_equal(httptask_client_active(f->c), 0);
    got_release(&g);
}

static void unexpected_status_fails_with_a_message(void **state)
{
    struct fx *f = *state;
    char u[128];
    struct got g = {0};

    url(f, u, sizeof(u), "/status/503");
    struct httptask_req req = {.url = u, .timeout_ms = 5000};
    fetch(f, &req, &g);
    assert_false(g.ok);
    assert_int_equal(g.status, 503);
    assert_string_equal(g.msg, "expected status 2xx, got 503");
    assert_string_equal(g.body, "status 503");

    static const int two[] = {200, 201};
    url(f, u, sizeof(u), "/status/204");
    req.expect = two;
    req.nexpect = 2;
    fetch(f, &req, &g);
    assert_false(g.ok);
    assert_string_equal(g.msg, "expected status 200 or 201, got 204");

    static const int three[] = {200, 201, 202};
    req.expect = three;
    req.nexpect = 3;
    fetch(f, &req, &g);
    assert_string_equal(g.msg, "expected status 200, 201 or 202, got 204");

    /* An expected non-2xx status is a success. */
    static const int want503[] = {503};
    url(f, u, sizeof(u), "/status/503");
    req.expect = want503;
    req.nexpect = 1;
    fetch(f, &req, &g);
    assert_true(g.ok);
    assert_int_equal(g.status, 503);
    got_release(&g);
}

static void sends_method_body_and_headers(void **state)
{
    struct fx *f = *state;
    char u[128];
    url(f, u, sizeof(u), "/echo?ds=2026-11-29");
    struct httptask_header hdrs[] = {
        {.name = "Content-Type", .value = "application/json"},
        {.name = "X-Token", .value = "abc def"},
    };
    const char *body = "{\"ds\":\"2026-11-29\"}";
    struct httptask_req req = {.method = "POST",
                               .url = u,
                               .body = body,
                               .body_len = strlen(body),
                               .headers = hdrs,
                               .nheaders = 2,
                               .timeout_ms = 5000};
    struct got g = {0};
    fetch(f, &req, &g);
    assert_true(g.ok);
    json_error_t je;
    json_t *j = json_loads(g.body, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(j, "body")), body);
    assert_string_equal(json_string_value(json_object_get(j, "query")), "ds=2026-11-29");
    json_t *h = json_object_get(j, "headers");
    assert_string_equal(json_string_value(json_object_get(h, "x-token")), "abc def");
    assert_string_equal(json_string_value(json_object_get(h, "content-type")), "application/json");
    assert_memory_equal(json_string_value(json_object_get(h, "user-agent")), "baram/", 6);
    json_decref(j);

    /* PUT with a body, DELETE without one. */
    req.method = "PUT";
    req.headers = NULL;
    req.nheaders = 0;
    fetch(f, &req, &g);
    j = json_loads(g.body, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "PUT");
    assert_string_equal(json_string_value(json_object_get(j, "body")), body);
    json_decref(j);

    req.method = "DELETE";
    req.body = NULL;
    req.body_len = 0;
    fetch(f, &req, &g);
    j = json_loads(g.body, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "DELETE");
    assert_string_equal(json_string_value(json_object_get(j, "body")), "");
    json_decref(j);

    /* HEAD: a status, no body. */
    req.method = "HEAD";
    fetch(f, &req, &g);
    assert_true(g.ok);
    assert_int_equal(g.status, 200);
    assert_int_equal(g.body_len, 0);
    got_release(&g);
}

static void slow_answer_times_out(void **state)
{
    struct fx *f = *state;
    char u[128];
    url(f, u, sizeof(u), "/slow?ms=3000");
    struct httptask_req req = {.url = u, .timeout_ms = 300};
    struct got g = {0};
    fetch(f, &req, &g);
    assert_false(g.ok);
    assert_int_equal(g.status, 0);
    assert_string_equal(g.msg, "timed out after 300ms");
    assert_true(g.elapsed_ms >= 290);
    assert_true(g.elapsed_ms < 2500);

    req.timeout_ms = 1000;
    fetch(f, &req, &g);
    assert_string_equal(g.msg, "timed out after 1s");
    got_release(&g);
}

static void closed_port_is_connection_refused(void **state)
{
    struct fx *f = *state;
    int port = testserver_closed_port();
    assert_true(port > 0);
    char u[128], want[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/ok", port);
    snprintf(want, sizeof(want), "connection refused (127.0.0.1:%d)", port);
    struct httptask_req req = {.url = u, .timeout_ms = 5000};
    struct got g = {0};
    fetch(f, &req, &g);
    assert_false(g.ok);
    assert_int_equal(g.status, 0);
    assert_string_equal(g.msg, want);
    got_release(&g);
}

static void large_body_is_cut_at_64k(void **state)
{
    struct fx *f = *state;
    char u[128];
    url(f, u, sizeof(u), "/big?n=1000000");
    struct httptask_req req = {.url = u, .timeout_ms = 5000};
    struct got g = {0};
    fetch(f, &req, &g);
    assert_true(g.ok);
    assert_int_equal(g.status, 200);
    assert_true(g.cut);
    assert_int_equal(g.body_len, HTTPTASK_BODY_MAX);
    assert_int_equal(strlen(g.body), HTTPTASK_BODY_MAX);
    assert_int_equal(g.body[0], 'x');
    assert_int_equal(g.body[HTTPTASK_BODY_MAX - 1], 'x');
    assert_string_equal(g.msg, "status 200 (body cut at 64 KiB)");

    /* Exactly 64 KiB is not cut. */
    url(f, u, sizeof(u), "/big?n=65536");
    fetch(f, &req, &g);
    assert_true(g.ok);
    assert_false(g.cut);
    assert_int_equal(g.body_len, HTTPTASK_BODY_MAX);
    got_release(&g);
}

/* The cap is the caller's: a smaller one cuts the body there, and says so. */
static void body_is_cut_at_the_callers_cap(void **state)
{
    struct fx *f = *state;
    char u[128];
    url(f, u, sizeof(u), "/big?n=5000");
    struct httptask_req req = {.url = u, .timeout_ms = 5000, .body_max = 2048};
    struct got g = {0};
    fetch(f, &req, &g);
    assert_true(g.ok);
    assert_true(g.cut);
    assert_int_equal(g.body_len, 2048);
    assert_int_equal(strlen(g.body), 2048);
    assert_string_equal(g.msg, "status 200 (body cut at 2 KiB)");
    got_release(&g);
}

static void host_limit_caps_requests_in_flight(void **state)
{
    struct fx *f = *state;
    enum { N = 50 };
    fx_limit(f, 4);
    char u[128];
    url(f, u, sizeof(u), "/slow?ms=40");
    struct httptask_req req = {.url = u, .timeout_ms = 10000};
    struct got *g = calloc(N, sizeof(*g));
    int done = 0;
    for (int i = 0; i < N; i++) {
        g[i].counter = &done;
        struct httptask *t;
        assert_int_equal(httptask_start(f->c, &req, on_done, &g[i], &t), 0);
    }
    assert_int_equal(httptask_client_active(f->c), N);
    assert_true(loopwait_until(&f->loop, &done, N, 15000));
    for (int i = 0; i < N; i++) {
        assert_true(g[i].ok);
        got_release(&g[i]);
    }
    free(g);
    int count, max;
    assert_int_equal(testserver_stats(&f->srv, &count, &max), 0);
    assert_int_equal(count, N);
    assert_true(max <= 4);
    assert_true(max >= 2); /* they did overlap */
    assert_int_equal(httptask_client_active(f->c), 0);
}

static void queue_is_fifo(void **state)
{
    struct fx *f = *state;
    fx_limit(f, 1);
    char u[128];
    url(f, u, sizeof(u), "/slow?ms=20");
    struct httptask_req req = {.url = u, .timeout_ms = 10000};
    enum { N = 6 };
    struct got g[N];
    memset(g, 0, sizeof(g));
    int done = 0;
    int order[N], norder = 0;
    for (int i = 0; i < N; i++) {
        g[i].counter = &done;
        struct httptask *t;
        assert_int_equal(httptask_start(f->c, &req, on_done, &g[i], &t), 0);
    }
    /* Completion order follows submission order: watch which one finishes at each step. */
    for (int k = 1; k <= N; k++) {
        assert_true(loopwait_until(&f->loop, &done, k, 5000));
        for (int i = 0; i < N; i++) {
            bool seen = false;
            for (int j = 0; j < norder; j++)
                seen |= order[j] == i;
            if (g[i].n && !seen)
                order[norder++] = i;
        }
    }
    assert_int_equal(norder, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(order[i], i);
        got_release(&g[i]);
    }
}

static int served(struct fx *f)
{
    int count, max;
    assert_int_equal(testserver_stats(&f->srv, &count, &max), 0);
    return count;
}

static void circuit_breaker_end_to_end(void **state)
{
    struct fx *f = *state;
    char bad[128], good[128], slow[128];
    url(f, bad, sizeof(bad), "/status/503");
    url(f, good, sizeof(good), "/ok");
    url(f, slow, sizeof(slow), "/slow?ms=300");
    struct httptask_req req = {
        .url = bad, .timeout_ms = 5000, .cb_failures = 3, .cb_reset_ms = 400};
    struct got g = {0};

    /* Three failures in a row reach the server and open the circuit. */
    for (int i = 0; i < 3; i++) {
        fetch(f, &req, &g);
        assert_false(g.ok);
        assert_string_equal(g.msg, "expected status 2xx, got 503");
    }
    assert_int_equal(served(f), 3);

    /* While open, tries fail at once and nothing is sent, even to a good URL. */
    req.url = good;
    for (int i = 0; i < 5; i++) {
        fetch(f, &req, &g);
        assert_false(g.ok);
        assert_int_equal(g.status, 0);
        assert_string_equal(g.msg, "circuit open");
        assert_true(g.elapsed_ms < 1000); /* no 5 s timeout, no request */
    }
    assert_int_equal(served(f), 3);

    /* The breaker is the host's: a request without settings of its own is refused too, and
     * told when a trial may go. */
    struct httptask_req plain = {.url = good, .timeout_ms = 5000};
    fetch(f, &plain, &g);
    assert_false(g.ok);
    assert_true(g.circuit_open);
    assert_string_equal(g.msg, "circuit open");
    assert_true(g.trial_in_ms > 0 && g.trial_in_ms <= 400);
    assert_int_equal(served(f), 3);

    /* After reset, one trial goes through; a failed trial opens it again. */
    run_for(&f->loop, 450);
    req.url = bad;
    fetch(f, &req, &g);
    assert_string_equal(g.msg, "expected status 2xx, got 503");
    assert_int_equal(served(f), 4);
    req.url = good;
    fetch(f, &req, &g);
    assert_string_equal(g.msg, "circuit open");
    assert_int_equal(served(f), 4);

    /* After reset again: while the (slow) trial is out, other tries still fail at once. */
    run_for(&f->loop, 450);
    struct got trial = {0}, other = {0};
    int done = 0;
    trial.counter = &done;
    other.counter = &done;
    req.url = slow;
    struct httptask *t;
    assert_int_equal(httptask_start(f->c, &req, on_done, &trial, &t), 0);
    req.url = good;
    assert_int_equal(httptask_start(f->c, &req, on_done, &other, &t), 0);
    assert_true(loopwait_until(&f->loop, &other.n, 1, 5000));
    assert_string_equal(other.msg, "circuit open");
    /* A trial is out: a whole reset from the refusal, less the loop turn to the report. */
    assert_true(other.trial_in_ms > 300 && other.trial_in_ms <= 400);
    assert_int_equal(trial.n, 0);
    assert_true(loopwait_until(&f->loop, &trial.n, 1, 5000));
    assert_true(trial.ok); /* the trial succeeded: closed */
    assert_int_equal(served(f), 5);

    /* Closed again: requests flow. */
    for (int i = 0; i < 3; i++) {
        fetch(f, &req, &g);
        if (!g.ok)
            fail_msg("try %d after closing: %s", i, g.msg);
    }
    assert_int_equal(served(f), 8);

    /* Every request's outcome feeds the host's breaker, with settings or not. */
    plain.url = bad;
    for (int i = 0; i < 3; i++)
        fetch(f, &plain, &g);
    assert_int_equal(served(f), 11);
    fetch(f, &req, &g);
    assert_string_equal(g.msg, "circuit open");
    assert_int_equal(served(f), 11);
    got_release(&g);
    got_release(&trial);
    got_release(&other);
}

static void refused_connections_open_the_circuit(void **state)
{
    struct fx *f = *state;
    int port = testserver_closed_port();
    char u[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/ok", port);
    struct httptask_req req = {
        .url = u, .timeout_ms = 5000, .cb_failures = 2, .cb_reset_ms = 60000};
    struct got g = {0};
    fetch(f, &req, &g);
    assert_memory_equal(g.msg, "connection refused", 18);
    fetch(f, &req, &g);
    assert_memory_equal(g.msg, "connection refused", 18);
    fetch(f, &req, &g);
    assert_string_equal(g.msg, "circuit open");
    /* Other hosts have their own breaker. */
    char ok[128];
    url(f, ok, sizeof(ok), "/ok");
    req.url = ok;
    fetch(f, &req, &g);
    assert_true(g.ok);
    got_release(&g);
}

static void bad_requests_fail_later_with_a_message(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    struct httptask_req req = {.url = "ftp://127.0.0.1/x", .timeout_ms = 1000};
    fetch(f, &req, &g);
    assert_false(g.ok);
    assert_string_equal(
        g.msg, "unsupported scheme 'ftp' in url 'ftp://127.0.0.1/x' (http and https only)");

    req.url = "not a url";
    fetch(f, &req, &g);
    assert_memory_equal(g.msg, "bad url 'not a url'", 19);

    char u[128];
    url(f, u, sizeof(u), "/echo");
    req.url = u;
    struct httptask_header evil = {.name = "X-A", .value = "a\r\nX-Injected: 1"};
    req.headers = &evil;
    req.nheaders = 1;
    fetch(f, &req, &g);
    assert_string_equal(g.msg, "header 'X-A' has a line break in its value");
    struct httptask_header badname = {.name = "X A", .value = "1"};
    req.headers = &badname;
    fetch(f, &req, &g);
    assert_string_equal(g.msg, "bad header name 'X A'");
    req.headers = NULL;
    req.nheaders = 0;
    req.method = "GE T";
    fetch(f, &req, &g);
    assert_string_equal(g.msg, "bad method 'GE T'");
    assert_int_equal(served(f), 0);
    got_release(&g);
}

static void redirect_to_another_scheme_is_refused(void **state)
{
    struct fx *f = *state;
    char u[128];
    url(f, u, sizeof(u), "/redirect-ftp");
    struct httptask_req req = {.url = u, .timeout_ms = 5000};
    struct got g = {0};
    fetch(f, &req, &g);
    assert_false(g.ok);
    assert_non_null(strstr(g.msg, "request failed"));
    got_release(&g);
}

static void cancel_reports_at_once(void **state)
{
    struct fx *f = *state;
    fx_limit(f, 1);
    char u[128];
    url(f, u, sizeof(u), "/slow?ms=2000");
    struct httptask_req req = {.url = u, .timeout_ms = 10000};
    struct got a = {0}, b = {0}, c = {0};
    struct httptask *ta, *tb, *tc;
    assert_int_equal(httptask_start(f->c, &req, on_done, &a, &ta), 0); /* in flight */
    assert_int_equal(httptask_start(f->c, &req, on_done, &b, &tb), 0); /* queued */
    req.url = "gopher://x";
    assert_int_equal(httptask_start(f->c, &req, on_done, &c, &tc), 0); /* deferred */
    run_for(&f->loop, 100);
    assert_int_equal(a.n + b.n, 0);
    assert_int_equal(c.n, 1); /* the bad one already reported */

    httptask_cancel(tb);
    assert_int_equal(b.n, 1);
    assert_true(b.cancelled);
    assert_string_equal(b.msg, "cancelled");
    httptask_cancel(ta);
    assert_int_equal(a.n, 1);
    assert_true(a.cancelled);
    assert_false(a.ok);
    assert_int_equal(httptask_client_active(f->c), 0);
    run_for(&f->loop, 50);
    assert_int_equal(a.n + b.n, 2); /* nothing more */
    got_release(&a);
    got_release(&b);
    got_release(&c);
}

struct pair {
    struct httptask *self, *other;
    struct got g;
    int calls;
};

static void on_pair(void *arg, const struct httptask_result *r)
{
    struct pair *p = arg;
    p->calls++;
    on_done(&p->g, r);
    httptask_cancel(p->self); /* no-op from within its own callback */
    if (p->other) {
        httptask_cancel(p->other);
        p->other = NULL;
    }
}

static void done_may_cancel_others_and_itself(void **state)
{
    struct fx *f = *state;
    struct httptask_req req = {.url = "gopher://x", .timeout_ms = 1000};
    struct pair a = {0}, b = {0};
    assert_int_equal(httptask_start(f->c, &req, on_pair, &a, &a.self), 0);
    assert_int_equal(httptask_start(f->c, &req, on_pair, &b, &b.self), 0);
    a.other = b.self; /* both fail in the same turn; a's callback cancels b */
    assert_true(loopwait_until(&f->loop, &b.calls, 1, 2000));
    assert_int_equal(a.calls, 1);
    assert_false(a.g.cancelled);
    assert_true(b.g.cancelled);
    run_for(&f->loop, 20);
    assert_int_equal(a.calls + b.calls, 2);
    got_release(&a.g);
    got_release(&b.g);
}

static void client_free_cancels_what_is_left(void **state)
{
    struct fx *f = *state;
    fx_limit(f, 2);
    char u[128];
    url(f, u, sizeof(u), "/slow?ms=2000");
    struct httptask_req req = {.url = u, .timeout_ms = 10000};
    enum { N = 5 };
    struct got g[N];
    memset(g, 0, sizeof(g));
    int done = 0;
    for (int i = 0; i < N; i++) {
        g[i].counter = &done;
        struct httptask *t;
        assert_int_equal(httptask_start(f->c, &req, on_done, &g[i], &t), 0);
    }
    run_for(&f->loop, 100);
    assert_int_equal(done, 0);
    fx_free_client(f);
    assert_int_equal(done, N);
    for (int i = 0; i < N; i++) {
        assert_true(g[i].cancelled);
        got_release(&g[i]);
    }
    /* teardown frees a NULL client: a no-op */
}

static void done_may_start_the_next_request(void **state);

struct chain {
    struct fx *f;
    char url[128];
    int left;
    int done;
};

static void on_chain(void *arg, const struct httptask_result *r)
{
    struct chain *ch = arg;
    assert_true(r->ok);
    ch->done++;
    if (--ch->left > 0) {
        struct httptask_req req = {.url = ch->url, .timeout_ms = 5000};
        struct httptask *t;
        assert_int_equal(httptask_start(ch->f->c, &req, on_chain, ch, &t), 0);
    }
}

static void done_may_start_the_next_request(void **state)
{
    struct fx *f = *state;
    struct chain ch = {.f = f, .left = 10};
    url(f, ch.url, sizeof(ch.url), "/ok");
    struct httptask_req req = {.url = ch.url, .timeout_ms = 5000};
    struct httptask *t;
    assert_int_equal(httptask_start(f->c, &req, on_chain, &ch, &t), 0);
    assert_true(loopwait_until(&f->loop, &ch.done, 10, 10000));
    assert_int_equal(served(f), 10);
}

/* Every socket of this process (curl's included) must be close-on-exec: tasks are spawned from
 * the process that runs http tasks. Returns the number of sockets seen. */
static int check_sockets_cloexec(void)
{
    int seen = 0;
    for (int fd = 3; fd < 1024; fd++) {
        char link[64], target[128];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n <= 0)
            continue;
        target[n] = 0;
        if (strncmp(target, "socket:", 7) != 0)
            continue;
        seen++;
        int flags = fcntl(fd, F_GETFD);
        if (!(flags & FD_CLOEXEC))
            fail_msg("socket fd %d is not close-on-exec", fd);
    }
    return seen;
}

static void sockets_are_close_on_exec(void **state)
{
    struct fx *f = *state;
    char u[128];
    url(f, u, sizeof(u), "/slow?ms=300");
    struct httptask_req req = {.url = u, .timeout_ms = 5000};
    struct got g = {0};
    struct httptask *t;
    assert_int_equal(httptask_start(f->c, &req, on_done, &g, &t), 0);
    run_for(&f->loop, 100); /* connected, waiting for the answer */
    assert_int_equal(g.n, 0);
    assert_true(check_sockets_cloexec() >= 1);
    assert_true(loopwait_until(&f->loop, &g.n, 1, 5000));
    assert_true(g.ok);
    got_release(&g);
}

static void localhost_by_name(void **state)
{
    struct fx *f = *state;
    char u[128];
    snprintf(u, sizeof(u), "http://localhost:%d/ok", f->srv.port);
    struct httptask_req req = {.url = u, .timeout_ms = 5000};
    struct got g = {0};
    fetch(f, &req, &g);
    assert_true(g.ok);
    assert_string_equal(g.body, "hello");
    got_release(&g);
}

static void host_keys_are_normalised(void **state)
{
    char k[256];
    assert_int_equal(httptask_host_key("HTTP://Example.COM/x?y", k, sizeof(k)), 0);
    assert_string_equal(k, "http://example.com:80");
    assert_int_equal(httptask_host_key("https://example.com/", k, sizeof(k)), 0);
    assert_string_equal(k, "https://example.com:443");
    assert_int_equal(httptask_host_key("http://127.0.0.1:8080", k, sizeof(k)), 0);
    assert_string_equal(k, "http://127.0.0.1:8080");
    assert_int_equal(httptask_host_key("http://[::1]:9/", k, sizeof(k)), 0);
    assert_string_equal(k, "http://[::1]:9");
    assert_int_equal(httptask_host_key("ftp://example.com/", k, sizeof(k)), -EINVAL);
    assert_non_null(strstr(k, "unsupported scheme 'ftp'"));
    assert_int_equal(httptask_host_key("", k, sizeof(k)), -EINVAL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* URLs written to a try's log carry no credentials or tokens. */
static void redact_url_hides_credentials_and_secret_params(void **state)
{
    static const char *const cases[][2] = {
        {"http://127.0.0.1:9000/load?ds=2026-11-29", "http://127.0.0.1:9000/load?ds=2026-11-29"},
        {"https://ada:s3cret@example.org/x", "https://***@example.org/x"},
        {"http://h/p?ds=1&api_key=abc&Token=t0k&page=2#frag",
         "http://h/p?ds=1&api_key=***&Token=***&page=2#frag"},
        {"http://u:p@h?password=x&sig=y", "http://***@h?password=***&sig=***"},
        {"http://h/no-query", "http://h/no-query"},
        {"http://h/?flag&authorization=Bearer%20x", "http://h/?flag&authorization=***"},
        {"not a url", "not a url"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = httptask_redact_url(cases[i][0]);
        assert_string_equal(got, cases[i][1]);
        free(got);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    /* Requests go to 127.0.0.1 only: keep a proxy of the environment out of the way. */
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    const struct CMUnitTest tests[] = {
        T(get_ok_returns_the_body),
        T(unexpected_status_fails_with_a_message),
        T(sends_method_body_and_headers),
        T(slow_answer_times_out),
        T(closed_port_is_connection_refused),
        T(large_body_is_cut_at_64k),
        T(body_is_cut_at_the_callers_cap),
        T(host_limit_caps_requests_in_flight),
        T(queue_is_fifo),
        T(circuit_breaker_end_to_end),
        T(refused_connections_open_the_circuit),
        T(bad_requests_fail_later_with_a_message),
        T(redirect_to_another_scheme_is_refused),
        T(cancel_reports_at_once),
        T(client_free_cancels_what_is_left),
        T(done_may_cancel_others_and_itself),
        T(done_may_start_the_next_request),
        T(sockets_are_close_on_exec),
        T(localhost_by_name),
        cmocka_unit_test(redact_url_hides_credentials_and_secret_params),
        cmocka_unit_test(host_keys_are_normalised),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
