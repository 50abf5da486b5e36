/*
 * server_test.c - the API server (src/api/server.c) against real things: a
 * real libmicrohttpd server on a loopback port chosen by the kernel, a real
 * SQLite store and secret.key in a fresh mkdtemp home, tokens from
 * auth_issue, and raw HTTP/1.1 written on a socket (so paths arrive exactly
 * as written). Also the handler helpers that need no connection
 * (api_body_object, api_problem) on hand-made requests.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "api/api.h"
#include "api/auth.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "store/store.h"

static char home[PATH_MAX];
static char dbpath[PATH_MAX + 16];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    (void)state;
    log_set_level(LOG_WARN); /* the request lines are checked by tests/e2e/test_api_read.py */
    snprintf(home, sizeof home, "/tmp/baram-server-XXXXXX");
    assert_non_null(mkdtemp(home));
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/secret.key", home);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/logs", home);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(dbpath, sizeof dbpath, "%s/baram.db", home);
    struct store *s;
    struct err serr = {0};
    assert_int_equal(store_open(dbpath, &s, &serr), 0);
    store_close(s);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nftw(home, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

struct fixture {
    struct auth *auth;
    struct api *api;
    char *admin, *viewer;
};

static void start_on(struct fixture *f, const char *listen, const char *store_url)
{
    memset(f, 0, sizeof *f);
    struct auth_opts ao = {
        .home = home, .token_ttl_ms = 3600000, .issuer = "baram", .audience = "baram"};
    struct err err = {0};
    assert_int_equal(auth_open(&ao, &f->auth, &err), 0);
    struct api_opts o = {
        .listen = listen, .home = home, .dags = home, .store_url = store_url, .auth = f->auth};
    int r = api_start(&o, &f->api, &err);
    if (r < 0)
        fail_msg("api_start: %s", err.msg);
    int64_t exp;
    assert_int_equal(auth_issue(f->auth, "root", AUTH_ADMIN, 0, &f->admin, &exp), 0);
    assert_int_equal(auth_issue(f->auth, "eve", AUTH_VIEWER, 0, &f->viewer, &exp), 0);
}

static void start(struct fixture *f, const char *listen)
{
    start_on(f, listen, dbpath);
}

static void stop(struct fixture *f)
{
    api_stop(f->api);
    auth_close(f->auth);
    free(f->admin);
    free(f->viewer);
}

struct reply {
    int status;
    char *head; /* the status line and headers */
    char *body;
};

/* Sends raw (a whole request) to the port, reads until the server closes. */
static void http_raw(int port, const char *raw, size_t len, struct reply *out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, raw + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server may answer early and close */
        off += (size_t)n;
    }
    struct buf b = BUF_INIT(BUF_NO_MAX);
    char tmp[4096];
    ssize_t n;
    while ((n = recv(fd, tmp, sizeof tmp, 0)) > 0)
        assert_int_equal(buf_add(&b, tmp, (size_t)n), 0);
    close(fd);
    char *data = buf_detach(&b, NULL);
    char *sep = strstr(data, "\r\n\r\n");
    assert_non_null(sep);
    *sep = 0;
    out->head = data;
    out->body = sep + 4;
    assert_int_equal(sscanf(data, "HTTP/1.1 %d", &out->status), 1);
}

static void http_get(struct fixture *f, const char *path, const char *token, struct reply *out)
{
    char req[8192];
    int n = snprintf(
        req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s%s%s\r\n", path,
        token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "");
    http_raw(api_port(f->api), req, (size_t)n, out);
}

static bool has_header(const struct reply *r, const char *line)
{
    return strcasestr(r->head, line) != NULL;
}

static void test_start_and_health(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, "127.0.0.1:0");
    assert_true(api_port(f.api) > 0);
    struct reply r;
    http_get(&f, "/api/v1/health", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Content-Type: application/json"));
    assert_true(has_header(&r, "Cache-Control: no-store"));
    /* the database: its backend, reached, and the round trip's time (varies) */
    static const char want[] = "{\"status\":\"ok\",\"store\":\"ok\",\"database\":{\"backend\":"
                               "\"sqlite\",\"reachable\":true,\"latency_ms\":";
    assert_int_equal(strncmp(r.body, want, sizeof want - 1), 0);
    free(r.head);
    stop(&f);
}

static void test_tokens_and_roles(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, "localhost:0");
    struct reply r;
    http_get(&f, "/api/v1/dags", NULL, &r);
    assert_int_equal(r.status, 401);
    assert_true(has_header(&r, "WWW-Authenticate: Bearer"));
    assert_true(has_header(&r, "Content-Type: application/problem+json"));
    free(r.head);
    http_get(&f, "/api/v1/dags", "not.a.token", &r);
    assert_int_equal(r.status, 401);
    free(r.head);
    http_get(&f, "/api/v1/dags", f.viewer, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"dags\":[],\"total_entries\":0}");
    free(r.head);
    http_get(&f, "/api/v1/users", f.viewer, &r); /* admin only */
    assert_int_equal(r.status, 403);
    free(r.head);
    stop(&f);
}

static void test_routing_errors(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, "127.0.0.1:0");
    struct reply r;
    http_get(&f, "/api/v1/nope", f.admin, &r);
    assert_int_equal(r.status, 404);
    free(r.head);
    const char del[] = "DELETE /api/v1/dags HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    http_raw(api_port(f.api), del, sizeof del - 1, &r);
    assert_int_equal(r.status, 405);
    assert_true(has_header(&r, "Allow: GET"));
    free(r.head);
    /* Segments: decoded, then refused when they could name another folder or are not text. */
    static const char *const bad[] = {
        "/api/v1/dags/../graph",   "/api/v1/dags/%2e%2e/graph", "/api/v1/dags/a%2Fb/graph",
        "/api/v1/dags/a%00/graph", "/api/v1/dags/%ff/graph",    "/api/v1/dags/%zz/graph",
        "/api/v1/dags/./graph",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_get(&f, bad[i], f.admin, &r);
        if (r.status != 400)
            fail_msg("%s: status %d", bad[i], r.status);
        free(r.head);
    }
    http_get(&f, "/api/v1/dags/caf%C3%A9", f.admin, &r); /* valid UTF-8: just not there */
    assert_int_equal(r.status, 404);
    free(r.head);
    http_get(&f, "/api/v1/dags?limit=0", f.admin, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "limit"));
    free(r.head);
    stop(&f);
}

static void test_body_limit(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, "127.0.0.1:0");
    struct reply r;
    /* Announced too big: refused before the body is read. */
    const char announced[] = "POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                             "Content-Length: 2097152\r\n\r\n{";
    http_raw(api_port(f.api), announced, sizeof announced - 1, &r);
    assert_int_equal(r.status, 413);
    free(r.head);
    /* Chunked: refused once it passes 1 MiB. */
    struct buf req = BUF_INIT(BUF_NO_MAX);
    assert_int_equal(buf_adds(&req, "POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\n"
                                    "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n"),
                     0);
    char chunk[65536 + 16];
    memset(chunk, ' ', sizeof chunk);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(buf_addf(&req, "%x\r\n", 65536), 0);
        assert_int_equal(buf_add(&req, chunk, 65536), 0);
        assert_int_equal(buf_adds(&req, "\r\n"), 0);
    }
    assert_int_equal(buf_adds(&req, "0\r\n\r\n"), 0);
    http_raw(api_port(f.api), req.data, req.len, &r);
    assert_int_equal(r.status, 413);
    free(r.head);
    buf_release(&req);
    stop(&f);
}

static void test_bad_listen_and_taken_port(void **state)
{
    (void)state;
    struct auth *auth;
    struct auth_opts ao = {.home = home, .issuer = "baram", .audience = "baram"};
    struct err err = {0};
    assert_int_equal(auth_open(&ao, &auth, &err), 0);
    static const char *const bad[] = {"8080",        ":8080", "127.0.0.1:", "127.0.0.1:65536",
                                      "127.0.0.1:x", "[::1",  "[::1]80",    "a:b:c"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct api_opts o = {.listen = bad[i], .home = home, .store_url = dbpath, .auth = auth};
        struct api *a = NULL;
        err.code = 0;
        err.msg[0] = 0;
        int r = api_start(&o, &a, &err);
        if (r == 0)
            fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(err.code, r);
        assert_non_null(strstr(err.msg, bad[i]));
    }
    struct fixture f;
    start(&f, "127.0.0.1:0");
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", api_port(f.api));
    struct api_opts o = {.listen = listen, .home = home, .store_url = dbpath, .auth = auth};
    struct api *a = NULL;
    assert_true(api_start(&o, &a, &err) < 0);
    assert_non_null(strstr(err.msg, "cannot listen"));
    stop(&f);
    auth_close(auth);
}

static void test_ipv6(void **state)
{
    (void)state;
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool have6 = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    if (!have6)
        skip();
    struct fixture f;
    start(&f, "[::1]:0");
    assert_true(api_port(f.api) > 0);
    stop(&f);
}

static void test_body_object(void **state)
{
    (void)state;
    static const char *const allowed[] = {"paused", "conf", NULL};
    struct {
        const char *body;
        int want; /* 0 or the problem's status */
    } cases[] = {
        {"", 0},
        {"{\"paused\": true}", 0},
        {"{\"paused\": true, \"conf\": {\"x\": 1}}", 0},
        {"{\"nope\": 1}", 400},
        {"{\"paused\": 1, \"paused\": 2}", 400},
        {"[1]", 400},
        {"{", 400},
        {"{\"paused\": \"\xff\"}", 400},
        {"null", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct api_req rq = {.body = cases[i].body, .body_len = strlen(cases[i].body)};
        struct api_resp rs = {0};
        json_t *o = NULL;
        int r = api_body_object(&rq, &rs, allowed, &o);
        if (cases[i].want == 0) {
            assert_int_equal(r, 0);
            assert_true(json_is_object(o));
            json_decref(o);
        } else {
            assert_int_equal(r, -EINVAL);
            assert_int_equal(rs.status, cases[i].want);
            assert_true(rs.problem);
            assert_int_equal(json_integer_value(json_object_get(rs.body, "status")), cases[i].want);
            if (strstr(cases[i].body, "nope"))
                assert_non_null(
                    strstr(json_string_value(json_object_get(rs.body, "detail")), "nope"));
            json_decref(rs.body);
        }
    }
    /* A problem's detail stays valid JSON text even when it quotes invalid UTF-8. */
    struct api_resp rs = {0};
    api_problem(&rs, 404, "Not Found", "no DAG '%s'", "\xff\xfe");
    assert_non_null(json_string_value(json_object_get(rs.body, "detail")));
    json_decref(rs.body);
}

/* Records one DAG in the store at url. */
static void put_dag(const char *url, const char *dag_id)
{
    struct store *s;
    struct err serr = {0};
    assert_int_equal(store_open(url, &s, &serr), 0);
    struct dag_rec d = {.dag_id = (char *)dag_id, .path = (char *)"x.yaml", .hash = (char *)"h"};
    assert_int_equal(store_put_dag(s, &d, NULL), 0);
    store_close(s);
}

/* Two servers in one process, on two databases: each lists its own DAGs, even when asked
 * within the time the list is kept (their caches are theirs, not the process's). */
static void test_two_servers_keep_their_own_dag_lists(void **state)
{
    (void)state;
    char other[PATH_MAX + 16];
    snprintf(other, sizeof other, "%s/other.db", home);
    put_dag(dbpath, "alpha");
    put_dag(other, "beta");
    struct fixture a, b;
    start_on(&a, "127.0.0.1:0", dbpath);
    start_on(&b, "127.0.0.1:0", other);
    for (int round = 0; round < 2; round++) {
        struct reply r;
        http_get(&a, "/api/v1/dags", a.viewer, &r);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "\"alpha\""));
        assert_null(strstr(r.body, "\"beta\""));
        free(r.head);
        http_get(&b, "/api/v1/dags", b.viewer, &r);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "\"beta\""));
        assert_null(strstr(r.body, "\"alpha\""));
        free(r.head);
    }
    stop(&b);
    stop(&a);
}

/* Clients on threads of their own, each sending requests one after another. */
struct client {
    pthread_t thread;
    int port;
    int ok;
};

static void *client_main(void *arg)
{
    struct client *cl = arg;
    static const char req[] = "GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    for (int i = 0; i < 10; i++) {
        struct reply r;
        http_raw(cl->port, req, sizeof req - 1, &r);
        cl->ok += r.status == 200;
        free(r.head);
    }
    return NULL;
}

/* Requests on every thread of the server at once (run under preset tsan, this is where
 * the threads' shared state must be read-only or locked). */
static void test_threads_serve_at_once(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, "127.0.0.1:0");
    struct client cl[4];
    for (size_t i = 0; i < 4; i++) {
        cl[i] = (struct client){.port = api_port(f.api)};
        assert_int_equal(pthread_create(&cl[i].thread, NULL, client_main, &cl[i]), 0);
    }
    for (size_t i = 0; i < 4; i++) {
        pthread_join(cl[i].thread, NULL);
        assert_int_equal(cl[i].ok, 10);
    }
    stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* first: its threads are the process's first API threads */
        cmocka_unit_test(test_threads_serve_at_once),
        cmocka_unit_test(test_start_and_health),
        cmocka_unit_test(test_tokens_and_roles),
        cmocka_unit_test(test_routing_errors),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_bad_listen_and_taken_port),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_body_object),
        cmocka_unit_test(test_two_servers_keep_their_own_dag_lists),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
