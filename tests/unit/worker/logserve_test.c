/*
 * logserve_test.c - the worker's log server over real HTTP on a loopback port:
 * a try's log from an offset, tokens checked as the API checks them (none,
 * forged, revoked), and hostile paths (traversal, encoded slashes, bad ids)
 * that never reach a file outside HOME/logs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/auth.h"
#include "api/revoke.h"
#include "base/err.h"
#include "base/xalloc.h"
#include "sched/logpath.h"
#include "store/store.h"
#include "worker/logserve.h"

static char home[64];

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
}

static void mkdirs(const char *path)
{
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = 0;
            (void)mkdir(p, 0700);
            *s = '/';
        }
    }
    (void)mkdir(p, 0700);
    free(p);
}

/* Writes the log of a try where a worker of this home writes it. */
static void put_log(const char *dag, const char *run_id, const char *task, int map_index,
                    int try_number, const char *text)
{
    char *dir = logpath_run_dir(home, dag, run_id);
    mkdirs(dir);
    char *path = logpath_try(dir, task, map_index, try_number, "log");
    write_file(path, text, strlen(text));
    free(path);
    free(dir);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

struct fixture {
    struct auth *auth;
    struct logserve *ls;
    struct store *store;
    char *token;
};

/* Writes dir/secret.key (hex) and opens the keys as a home's API would. */
static struct auth *make_keys(const char *dir, const char *hex)
{
    char path[128];
    snprintf(path, sizeof path, "%s/secret.key", dir);
    write_file(path, hex, strlen(hex));
    struct auth_opts ao = {
        .home = dir, .token_ttl_ms = 3600 * 1000, .issuer = "baram", .audience = "baram-api"};
    struct auth *a = NULL;
    struct err e = {0};
    assert_int_equal(auth_open(&ao, &a, &e), 0);
    return a;
}

struct reply {
    int status;
    char *body; /* malloc'd */
    size_t len;
};

static struct reply get_ok(struct fixture *fx, const char *path);

static int setup(void **state)
{
    snprintf(home, sizeof home, "/tmp/baram-logserve-XXXXXX");
    assert_non_null(mkdtemp(home));
    char path[128];
    /* A file outside HOME/logs that no request may read. */
    snprintf(path, sizeof path, "%s/secret.txt", home);
    write_file(path, "not a log\n", 10);

    struct fixture *fx = xcalloc(1, sizeof *fx);
    fx->auth = make_keys(home, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    struct err e = {0};
    char db[128];
    snprintf(db, sizeof db, "%s/baram.db", home);
    assert_int_equal(store_open(db, &fx->store, &e), 0);
    struct logserve_opts o = {
        .listen = "127.0.0.1:0", .home = home, .auth = fx->auth, .store_url = db};
    int r = logserve_start(&o, &fx->ls, &e);
    if (r < 0)
        fail_msg("logserve_start: %s", err_msg(&e));
    int64_t exp_s;
    assert_int_equal(auth_issue(fx->auth, "alice", AUTH_VIEWER, 0, &fx->token, &exp_s), 0);
    /* Tokens are refused (503) until the revocations were read once. */
    for (int i = 0; i < 100; i++) {
        struct reply rp = get_ok(fx, "/logs/none/t/1");
        free(rp.body);
        if (rp.status != 503)
            break;
        usleep(50 * 1000);
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    logserve_stop(fx->ls);
    store_close(fx->store);
    auth_close(fx->auth);
    free(fx->token);
    free(fx);
    nftw(home, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* Sends one raw request line (path as given, not encoded) and reads the whole answer. */
static struct reply get(struct fixture *fx, const char *method, const char *path,
                        const char *auth_header)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(logserve_port(fx->ls))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char *req = xasprintf("%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s%s%s\r\n", method,
                          path, auth_header ? "Authorization: " : "",
                          auth_header ? auth_header : "", auth_header ? "\r\n" : "");
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    free(req);
    size_t cap = 1 << 16, len = 0;
    char *buf = xmalloc(cap + 1);
    ssize_t n;
    while ((n = read(fd, buf + len, cap - len)) > 0) {
        len += (size_t)n;
        if (len == cap)
            buf = xrealloc(buf, (cap *= 2) + 1);
    }
    close(fd);
    buf[len] = 0;
    struct reply rp = {0};
    assert_int_equal(sscanf(buf, "HTTP/1.1 %d", &rp.status), 1);
    char *body = strstr(buf, "\r\n\r\n");
    assert_non_null(body);
    body += 4;
    rp.len = len - (size_t)(body - buf);
    rp.body = xmalloc(rp.len + 1);
    memcpy(rp.body, body, rp.len + 1);
    free(buf);
    return rp;
}

static struct reply get_ok(struct fixture *fx, const char *path)
{
    char *h = xasprintf("Bearer %s", fx->token);
    struct reply rp = get(fx, "GET", path, h);
    free(h);
    return rp;
}

static void expect(struct reply rp, int status, const char *body_part)
{
    if (rp.status != status || (body_part && !strstr(rp.body, body_part)))
        fail_msg("got %d '%s', expected %d with '%s'", rp.status, rp.body, status,
                 body_part ? body_part : "");
    free(rp.body);
}

static void serves_a_try_log_from_an_offset(void **state)
{
    struct fixture *fx = *state;
    put_log("etl", "manual__1", "load", -1, 2, "line one\nline two\n");
    put_log("etl", "manual__1", "shard", 3, 1, "mapped three\n");
    put_log("other", "sched__9", "load", -1, 2, "another dag\n");
    struct reply rp = get_ok(fx, "/logs/manual__1/load/2");
    assert_int_equal(rp.status, 200);
    assert_int_equal(rp.len, 18);
    assert_string_equal(rp.body, "line one\nline two\n");
    free(rp.body);
    expect(get_ok(fx, "/logs/manual__1/load/2?offset=9"), 200, "line two\n");
    rp = get_ok(fx, "/logs/manual__1/load/2?offset=18");
    assert_int_equal(rp.status, 200);
    assert_int_equal(rp.len, 0);
    free(rp.body);
    rp = get_ok(fx, "/logs/manual__1/load/2?offset=99999");
    assert_int_equal(rp.status, 200);
    assert_int_equal(rp.len, 0);
    free(rp.body);
    expect(get_ok(fx, "/logs/manual__1/shard%5B3%5D/1"), 200, "mapped three\n");
    expect(get_ok(fx, "/logs/manual__1/shard[3]/1"), 200, "mapped three\n");
    expect(get_ok(fx, "/logs/sched__9/load/2"), 200, "another dag\n");
    /* Not here: another try, another run, another index. */
    expect(get_ok(fx, "/logs/manual__1/load/3"), 404, "no log of that try");
    expect(get_ok(fx, "/logs/manual__2/load/2"), 404, NULL);
    expect(get_ok(fx, "/logs/manual__1/shard[4]/1"), 404, NULL);
    expect(get_ok(fx, "/logs/manual__1/shard/1"), 404, NULL);
    assert_non_null(strstr(logserve_url(fx->ls), "http://127.0.0.1:"));
}

static void a_big_log_is_streamed_whole(void **state)
{
    struct fixture *fx = *state;
    size_t n = 3 * 1024 * 1024 + 17;
    char *text = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        text[i] = (char)('a' + i % 26);
    text[n] = 0;
    put_log("etl", "big", "t", -1, 1, text);
    struct reply rp = get_ok(fx, "/logs/big/t/1?offset=5");
    assert_int_equal(rp.status, 200);
    assert_int_equal(rp.len, n - 5);
    assert_memory_equal(rp.body, text + 5, n - 5);
    free(rp.body);
    free(text);
}

static void tokens_are_checked_as_the_api_checks_them(void **state)
{
    struct fixture *fx = *state;
    put_log("etl", "r1", "t", -1, 1, "secret output\n");
    expect(get(fx, "GET", "/logs/r1/t/1", NULL), 401, "a bearer token is required");
    expect(get(fx, "GET", "/logs/r1/t/1", "Basic YTpi"), 401, "must be 'Bearer TOKEN'");
    expect(get(fx, "GET", "/logs/r1/t/1", "Bearer "), 401, NULL);
    expect(get(fx, "GET", "/logs/r1/t/1", "Bearer not.a.token"), 401, NULL);
    /* A token signed with another key. */
    char other[64];
    snprintf(other, sizeof other, "/tmp/baram-logserve-k-XXXXXX");
    assert_non_null(mkdtemp(other));
    struct auth *a2 =
        make_keys(other, "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1eff");
    struct err e = {0};
    char *forged;
    int64_t exp_s;
    assert_int_equal(auth_issue(a2, "mallory", AUTH_ADMIN, 0, &forged, &exp_s), 0);
    char *h = xasprintf("Bearer %s", forged);
    expect(get(fx, "GET", "/logs/r1/t/1", h), 401, NULL);
    free(h);
    free(forged);
    auth_close(a2);
    nftw(other, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    /* The good token reads; once revoked (a logout), it does not. */
    expect(get_ok(fx, "/logs/r1/t/1"), 200, "secret output");
    struct auth_user u;
    const char *why;
    assert_int_equal(auth_verify(fx->auth, fx->token, &u, &why), 0);
    assert_int_equal(revoke_token(fx->store, &u, &e), 0);
    /* Revocations are read by a side thread every 2 s, never on the request's thread. */
    struct reply rp = get_ok(fx, "/logs/r1/t/1");
    for (int i = 0; i < 100 && rp.status == 200; i++) {
        free(rp.body);
        usleep(50 * 1000);
        rp = get_ok(fx, "/logs/r1/t/1");
    }
    expect(rp, 401, "revoked");
}

static void hostile_paths_never_leave_the_logs(void **state)
{
    struct fixture *fx = *state;
    put_log("etl", "r1", "t", -1, 1, "ok\n");
    static const struct {
        const char *path;
        int status;
    } cases[] = {
        {"/logs/../secret.txt/x/1", 404},
        {"/logs/../t/1", 400},
        {"/logs/..%2Fsecret.txt/t/1", 400},
        {"/logs/%2E%2E/t/1", 400},
        {"/logs/r1/..%2F..%2Fsecret.txt/1", 400},
        {"/logs/r1/t/1/extra", 404},
        {"/logs/r1/t", 404},
        {"/logs/r1", 404},
        {"/logs/", 404},
        {"/", 404},
        {"/secret.txt", 404},
        {"/logs/r1/t/0", 400},
        {"/logs/r1/t/-1", 400},
        {"/logs/r1/t/1x", 400},
        {"/logs/r1/t/99999999999", 400},
        {"/logs/r1/t[/1", 400},
        {"/logs/r1/t[x]/1", 400},
        {"/logs/r1/t[-1]/1", 400},
        {"/logs/r1/t[1]]/1", 400},
        {"/logs/r1/[1]/1", 400},
        {"/logs/r1/t%00/1", 400},
        {"/logs/r1/t%2Fx/1", 400},
        {"/logs/r1/t%ff/1", 400},
        {"/logs/r1/t/1?offset=-1", 400},
        {"/logs/r1/t/1?offset=abc", 400},
        {"/logs/r1/t/1?offset=99999999999999999999999", 400},
        {"/logs/r1//1", 400},
        {"/logs//t/1", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct reply rp = get_ok(fx, cases[i].path);
        if (rp.status != cases[i].status || strstr(rp.body, "not a log"))
            fail_msg("%s: %d '%s', expected %d", cases[i].path, rp.status, rp.body,
                     cases[i].status);
        free(rp.body);
    }
    /* A symlink in place of a log is not followed. */
    char *dir = logpath_run_dir(home, "etl", "r1");
    char *link = logpath_try(dir, "s", -1, 1, "log");
    char target[128];
    snprintf(target, sizeof target, "%s/secret.txt", home);
    assert_int_equal(symlink(target, link), 0);
    expect(get_ok(fx, "/logs/r1/s/1"), 404, NULL);
    free(link);
    free(dir);
    /* Other methods. */
    char *h = xasprintf("Bearer %s", fx->token);
    expect(get(fx, "POST", "/logs/r1/t/1", h), 405, NULL);
    expect(get(fx, "DELETE", "/logs/r1/t/1", h), 405, NULL);
    free(h);
}

static void a_taken_port_is_an_error(void **state)
{
    struct fixture *fx = *state;
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", logserve_port(fx->ls));
    struct logserve_opts o = {.listen = listen, .home = home, .auth = fx->auth};
    struct logserve *ls = NULL;
    struct err e = {0};
    assert_true(logserve_start(&o, &ls, &e) < 0);
    assert_null(ls);
    assert_non_null(strstr(err_msg(&e), "cannot listen on"));
    o.listen = "nonsense";
    assert_int_equal(logserve_start(&o, &ls, &e), -EINVAL);
    /* A wildcard address is named by this machine's name. */
    o.listen = "0.0.0.0:0";
    assert_int_equal(logserve_start(&o, &ls, &e), 0);
    assert_null(strstr(logserve_url(ls), "0.0.0.0"));
    logserve_stop(ls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(serves_a_try_log_from_an_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(a_big_log_is_streamed_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(tokens_are_checked_as_the_api_checks_them, setup, teardown),
        cmocka_unit_test_setup_teardown(hostile_paths_never_leave_the_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(a_taken_port_is_an_error, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
