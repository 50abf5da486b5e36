/*
 * waiter_test.c - `wait` sensors on a real loop: a file created later by a
 * timer, a file that never comes (timeout), an http condition against a real
 * server on 127.0.0.1 (testserver.h) that turns ready after a few hits,
 * cancellation, and clean shutdown (uv_loop_close must succeed under ASan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "exec/httptask.h"
#include "exec/waiter.h"
#include "loopwait.h"
#include "testserver.h"

struct fx {
    uv_loop_t loop;
    struct testserver srv;
    struct httptask_client *http;
    char dir[64];
    char file[128];
};

struct got {
    int n;
    enum waiter_outcome outcome;
    char msg[1024];
    unsigned checks;
    int64_t elapsed_ms;
    int64_t trial_in_ms;
};

static void on_done(void *arg, const struct waiter_result *r)
{
    struct got *g = arg;
    g->n++;
    g->outcome = r->outcome;
    snprintf(g->msg, sizeof(g->msg), "%s", r->message);
    g->checks = r->checks;
    g->elapsed_ms = r->elapsed_ms;
    g->trial_in_ms = r->trial_in_ms;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    if (testserver_start(&f->srv) < 0)
        fail_msg("could not start python3 http.server");
    assert_int_equal(httptask_client_new(&f->loop, NULL, &f->http), 0);
    snprintf(f->dir, sizeof(f->dir), "/tmp/baram-waiter-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->file, sizeof(f->file), "%s/in.done", f->dir);
    uv_update_time(&f->loop); /* starting the server took a while: timers count from now */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    httptask_client_free(f->http);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0); /* every handle closed, nothing pending */
    testserver_stop(&f->srv);
    unlink(f->file);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void on_create(uv_timer_t *t)
{
    const char *path = t->data;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
}

static void file_created_later_is_met(void **state)
{
    struct fx *f = *state;
    uv_timer_t creator;
    uv_timer_init(&f->loop, &creator);
    creator.data = f->file;
    uv_timer_start(&creator, on_create, 150, 0);

    struct waiter_opts o = {.file = f->file, .every_ms = 30, .timeout_ms = 5000};
    struct got g = {0};
    struct waiter *w;
    assert_int_equal(waiter_start(&f->loop, f->http, &o, on_done, &g, &w), 0);
    assert_non_null(w);
    assert_int_equal(g.n, 0); /* never from within waiter_start */
    assert_true(loopwait_until(&f->loop, &g.n, 1, 5000));
    assert_int_equal(g.outcome, WAITER_MET);
    char want[256];
    snprintf(want, sizeof(want), "file '%s' exists", f->file);
    assert_string_equal(g.msg, want);
    if (g.checks < 3) /* it looked before the file came */
        fail_msg("checks %u elapsed %lld", g.checks, (long long)g.elapsed_ms);
    assert_true(g.elapsed_ms >= 140);
    assert_true(g.elapsed_ms < 3000);
    uv_close((uv_handle_t *)&creator, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the handle lives on this stack */
}

static void existing_file_is_met_at_the_first_check(void **state)
{
    struct fx *f = *state;
    int fd = open(f->file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
    struct waiter_opts o = {.file = f->file, .every_ms = 60000, .timeout_ms = 60000};
    struct got g = {0};
    struct waiter *w;
    assert_int_equal(waiter_start(&f->loop, f->http, &o, on_done, &g, &w), 0);
    assert_true(loopwait_until(&f->loop, &g.n, 1, 2000));
    assert_int_equal(g.outcome, WAITER_MET);
    assert_int_equal(g.checks, 1);
}

static void missing_file_times_out(void **state)
{
    struct fx *f = *state;
    struct waiter_opts o = {.file = f->file, .every_ms = 30, .timeout_ms = 250};
    struct got g = {0};
    struct waiter *w;
    assert_int_equal(waiter_start(&f->loop, NULL, &o, on_done, &g, &w), 0);
    assert_true(loopwait_until(&f->loop, &g.n, 1, 5000));
    assert_int_equal(g.outcome, WAITER_TIMED_OUT);
    char want[256];
    snprintf(want, sizeof(want), "timed out after 250ms: file '%s' does not exist", f->file);
    assert_string_equal(g.msg, want);
    assert_true(g.checks >= 3);
    assert_true(g.elapsed_ms >= 240);
    assert_true(g.elapsed_ms < 3000);
}

static void http_condition_is_met_when_it_answers_2xx(void **state)
{
    struct fx *f = *state;
    char u[128];
    snprintf(u, sizeof(u), "%s/ready-after/3", f->srv.base);
    struct waiter_opts o = {.http_url = u, .every_ms = 40, .timeout_ms = 5000};
    struct got g = {0};
    struct waiter *w;
    assert_int_equal(waiter_start(&f->loop, f->http, &o, on_done, &g, &w), 0);
    assert_true(loopwait_until(&f->loop, &g.n, 1, 5000));
    assert_int_equal(g.outcome, WAITER_MET);
    char want[256];
    snprintf(want, sizeof(want), "%s answered 200", u);
    assert_string_equal(g.msg, want);
    assert_int_equal(g.checks, 3);
    int count, max;
    assert_int_equal(testserver_stats(&f->srv, &count, &max), 0);
    assert_int_equal(count, 3);
    assert_int_equal(max, 1); /* one check at a time */
}

static void http_condition_times_out_with_the_last_answer(void **state)
{
    struct fx *f = *state;
    char u[128];
    snprintf(u, sizeof(u), "%s/status/503", f->srv.base);
    struct waiter_opts o = {.http_url = u, .every_ms = 40, .timeout_ms = 300};
    struct got g = {0};
    struct waiter *w;
    assert_int_equal(waiter_start(&f->loop, f->http, &o, on_done, &g, &w), 0);
    assert_true(loopwait_until(&f->loop, &g.n, 1, 5000));
    assert_int_equal(g.outcome, WAITER_TIMED_OUT);
    assert_string_equal(g.msg, "timed out after 300ms: last check: expected status 2xx, got 503");
    assert_true(g.checks >= 2);
}

static void on_request(void *arg, const struct httptask_result *r)
{
    (void)r;
    (*(int *)arg)++;
}

/* The host's breaker is opened by an http task's request; a wait on that host is refused at
 * once, sends nothing, and says when a trial may go (SPEC section 7). */
static void open_circuit_of_the_host_ends_the_wait(void **state)
{
    struct fx *f = *state;
    char bad[128], u[128];
    snprintf(bad, sizeof(bad), "%s/status/503", f->srv.base);
    snprintf(u, sizeof(u), "%s/ok", f->srv.base);
    struct httptask_req req = {
        .url = bad, .timeout_ms = 5000, .cb_failures = 1, .cb_reset_ms = 60000};
    int done = 0;
    assert_int_equal(httptask_start(f->http, &req, on_request, &done, NULL), 0);
    assert_true(loopwait_until(&f->loop, &done, 1, 5000));
    struct waiter_opts o = {.http_url = u, .every_ms = 40, .timeout_ms = 5000};
    struct got g = {0};
    struct waiter *w;
    assert_int_equal(waiter_start(&f->loop, f->http, &o, on_done, &g, &w), 0);
    assert_true(loopwait_until(&f->loop, &g.n, 1, 5000));
    assert_int_equal(g.outcome, WAITER_CIRCUIT_OPEN);
    assert_string_equal(g.msg, "circuit open");
    assert_int_equal(g.checks, 0);
    assert_true(g.elapsed_ms < 1000);
    assert_true(g.trial_in_ms > 55000 && g.trial_in_ms <= 60000);
    int count, max;
    assert_int_equal(testserver_stats(&f->srv, &count, &max), 0);
    assert_int_equal(count, 1); /* only the request that opened it */
}

static void deadline_cancels_a_slow_check(void **state)
{
    struct fx *f = *state;
    char u[128];
    snprintf(u, sizeof(u), "%s/slow?ms=3000", f->srv.base);
    struct waiter_opts o = {.http_url = u, .every_ms = 40, .timeout_ms = 200};
    struct got g = {0};
    struct waiter *w;
    assert_int_equal(waiter_start(&f->loop, f->http, &o, on_done, &g, &w), 0);
    assert_true(loopwait_until(&f->loop, &g.n, 1, 5000));
    assert_int_equal(g.outcome, WAITER_TIMED_OUT);
    assert_string_equal(g.msg, "timed out after 200ms: no check completed");
    assert_int_equal(g.checks, 0);
    assert_true(g.elapsed_ms < 2500);
    assert_int_equal(httptask_client_active(f->http), 0); /* the check was cancelled */
}

static void refused_http_keeps_waiting(void **state)
{
    struct fx *f = *state;
    char u[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", testserver_closed_port());
    struct waiter_opts o = {.http_url = u, .every_ms = 30, .timeout_ms = 200};
    struct got g = {0};
    struct waiter *w;
    assert_int_equal(waiter_start(&f->loop, f->http, &o, on_done, &g, &w), 0);
    assert_true(loopwait_until(&f->loop, &g.n, 1, 5000));
    assert_int_equal(g.outcome, WAITER_TIMED_OUT);
    assert_non_null(strstr(g.msg, "last check: connection refused"));
    assert_true(g.checks >= 2);
}

static void cancel_reports_at_once(void **state)
{
    struct fx *f = *state;
    char u[128];
    snprintf(u, sizeof(u), "%s/slow?ms=3000", f->srv.base);
    struct waiter_opts fo = {.file = f->file, .every_ms = 20, .timeout_ms = 60000};
    struct waiter_opts ho = {.http_url = u, .every_ms = 20, .timeout_ms = 60000};
    struct got a = {0}, b = {0};
    struct waiter *wa, *wb;
    assert_int_equal(waiter_start(&f->loop, f->http, &fo, on_done, &a, &wa), 0);
    assert_int_equal(waiter_start(&f->loop, f->http, &ho, on_done, &b, &wb), 0);
    int never = 0;
    (void)loopwait_until(&f->loop, &never, 1, 100);
    assert_int_equal(a.n + b.n, 0);
    waiter_cancel(wa);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.outcome, WAITER_CANCELLED);
    assert_string_equal(a.msg, "cancelled");
    assert_int_equal(httptask_client_active(f->http), 1);
    waiter_cancel(wb);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.outcome, WAITER_CANCELLED);
    assert_int_equal(httptask_client_active(f->http), 0);
    (void)loopwait_until(&f->loop, &never, 1, 60);
    assert_int_equal(a.n + b.n, 2);
}

static void cancel_right_after_start(void **state)
{
    struct fx *f = *state;
    struct waiter_opts o = {.file = f->file, .every_ms = 20, .timeout_ms = 1000};
    struct got g = {0};
    struct waiter *w;
    assert_int_equal(waiter_start(&f->loop, f->http, &o, on_done, &g, &w), 0);
    waiter_cancel(w);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.checks, 0);
}

static void freeing_the_client_cancels_http_waiters(void **state)
{
    struct fx *f = *state;
    char u[128];
    snprintf(u, sizeof(u), "%s/slow?ms=3000", f->srv.base);
    struct waiter_opts o = {.http_url = u, .every_ms = 20, .timeout_ms = 60000};
    struct got g = {0};
    struct waiter *w;
    assert_int_equal(waiter_start(&f->loop, f->http, &o, on_done, &g, &w), 0);
    int never = 0;
    (void)loopwait_until(&f->loop, &never, 1, 100);
    httptask_client_free(f->http);
    f->http = NULL;
    assert_int_equal(g.n, 1);
    assert_int_equal(g.outcome, WAITER_CANCELLED);
}

static void bad_options_are_refused(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    struct waiter *w = (struct waiter *)&g;
    struct waiter_opts none = {.every_ms = 10, .timeout_ms = 10};
    assert_int_equal(waiter_start(&f->loop, f->http, &none, on_done, &g, &w), -EINVAL);
    assert_null(w);
    struct waiter_opts both = {.file = "/x", .http_url = "http://127.0.0.1/", .every_ms = 10};
    assert_int_equal(waiter_start(&f->loop, f->http, &both, on_done, &g, &w), -EINVAL);
    struct waiter_opts nohttp = {.http_url = "http://127.0.0.1/", .every_ms = 10};
    assert_int_equal(waiter_start(&f->loop, NULL, &nohttp, on_done, &g, &w), -EINVAL);
    assert_int_equal(g.n, 0);
    assert_string_equal(waiter_outcome_name(WAITER_TIMED_OUT), "timed_out");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    const struct CMUnitTest tests[] = {
        T(file_created_later_is_met),
        T(existing_file_is_met_at_the_first_check),
        T(missing_file_times_out),
        T(http_condition_is_met_when_it_answers_2xx),
        T(http_condition_times_out_with_the_last_answer),
        T(open_circuit_of_the_host_ends_the_wait),
        T(deadline_cancels_a_slow_check),
        T(refused_http_keeps_waiting),
        T(cancel_reports_at_once),
        T(cancel_right_after_start),
        T(freeing_the_client_cancels_http_waiters),
        T(bad_options_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
