/*
 * testserver.h - a real HTTP server on 127.0.0.1 for the exec unit tests:
 * python3's http.server in a child process on an ephemeral port (it prints
 * the port on stdout), killed at the end of each test. Included by
 * httptask_test.c and waiter_test.c only (static functions: each test
 * executable gets its own copy).
 *
 * Routes (every method):
 *   /ok                 200 "hello"
 *   /status/N           status N
 *   /slow?ms=N          200 "slow" after N ms
 *   /big?n=N            200 with N bytes of 'x'
 *   /echo               200 JSON {method, body, headers (lower-case names), query}
 *   /ready-after/N      503 for the first N-1 hits of that path, then 200
 *   /redirect-ftp       302 to ftp://127.0.0.1/x
 *   /stats              "COUNT MAX": requests served (but /stats) and the
 *                       highest number handled at the same time
 * Test thread only; stats are read with a blocking HTTP/1.0 GET, so they do
 * not depend on the code under test.
 */
#ifndef BARAM_TESTS_EXEC_TESTSERVER_H
#define BARAM_TESTS_EXEC_TESTSERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char testserver_py[] =
    "import os, sys, threading, time, json\n"
    "from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler\n"
    "from urllib.parse import urlparse, parse_qs\n"
    "lock = threading.Lock()\n"
    "st = {'count': 0, 'cur': 0, 'max': 0}\n"
    "hits = {}\n"
    "class H(BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    def log_message(self, *a):\n"
    "        pass\n"
    "    def reply(self, code, body, ctype='text/plain', extra=None):\n"
    "        if code < 200 or code in (204, 304):\n"
    "            body = b''\n"
    "        self.send_response(code)\n"
    "        self.send_header('Content-Type', ctype)\n"
    "        self.send_header('Content-Length', str(len(body)))\n"
    "        for k, v in (extra or {}).items():\n"
    "            self.send_header(k, v)\n"
    "        self.end_headers()\n"
    "        if self.command != 'HEAD':\n"
    "            self.wfile.write(body)\n"
    "    def route(self, u, q, body, nhit):\n"
    "        p = u.path\n"
    "        if p == '/ok':\n"
    "            return 200, b'hello', 'text/plain', None\n"
    "        if p.startswith('/status/'):\n"
    "            c = int(p[8:])\n"
    "            return c, b'status %d' % c, 'text/plain', None\n"
    "        if p == '/slow':\n"
    "            time.sleep(int(q.get('ms', ['1000'])[0]) / 1000.0)\n"
    "            return 200, b'slow', 'text/plain', None\n"
    "        if p == '/big':\n"
    "            return 200, b'x' * int(q['n'][0]), 'text/plain', None\n"
    "        if p == '/echo':\n"
    "            h = {k.lower(): v for k, v in self.headers.items()}\n"
    "            d = {'method': self.command, 'body': body.decode('latin-1'), 'headers': h,\n"
    "                 'query': u.query}\n"
    "            return 200, json.dumps(d, sort_keys=True).encode(), 'application/json', None\n"
    "        if p.startswith('/ready-after/'):\n"
    "            return (200 if nhit >= int(p[13:]) else 503), b'', 'text/plain', None\n"
    "        if p == '/redirect-ftp':\n"
    "            return 302, b'', 'text/plain', {'Location': 'ftp://127.0.0.1/x'}\n"
    "        return 404, b'not found', 'text/plain', None\n"
    "    def any(self):\n"
    "        u = urlparse(self.path)\n"
    "        q = parse_qs(u.query)\n"
    "        n = int(self.headers.get('Content-Length') or 0)\n"
    "        body = self.rfile.read(n) if n else b''\n"
    "        if u.path == '/stats':\n"
    "            with lock:\n"
    "                s = '%d %d' % (st['count'], st['max'])\n"
    "            return self.reply(200, s.encode())\n"
    "        with lock:\n"
    "            st['count'] += 1\n"
    "            st['cur'] += 1\n"
    "            st['max'] = max(st['max'], st['cur'])\n"
    "            hits[u.path] = hits.get(u.path, 0) + 1\n"
    "            nhit = hits[u.path]\n"
    "        try:\n"
    "            r = self.route(u, q, body, nhit)\n"
    "        finally:\n"
    "            with lock:\n"
    "                st['cur'] -= 1\n"
    "        self.reply(*r)\n"
    "    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = any\n"
    "class S(ThreadingHTTPServer):\n"
    "    daemon_threads = True\n"
    "    request_queue_size = 256\n"
    "def orphan():\n"
    "    sys.stdin.read()\n"
    "    os._exit(0)\n"
    "threading.Thread(target=orphan, daemon=True).start()\n"
    "srv = S(('127.0.0.1', 0), H)\n"
    "print(srv.server_address[1], flush=True)\n"
    "srv.serve_forever()\n";

struct testserver {
    pid_t pid;
    int lifeline; /* write end of the server's stdin: it exits when this closes, even if the
                     test process dies without its teardown */
    int port;
    char base[64]; /* "http://127.0.0.1:PORT" */
};

/* Starts the server: 0, or -1 (python3 missing or no port within 10 s). */
static int testserver_start(struct testserver *s)
{
    int fds[2], life[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(life, O_CLOEXEC) < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, life[0], 0);
    char *argv[] = {"python3", "-c", (char *)testserver_py, NULL};
    int r = posix_spawnp(&s->pid, "python3", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    close(life[0]);
    s->lifeline = life[1];
    if (r != 0) {
        close(fds[0]);
        close(s->lifeline);
        return -1;
    }
    char line[32];
    size_t len = 0;
    while (len < sizeof(line) - 1) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        if (poll(&p, 1, 10000) <= 0)
            break;
        ssize_t n = read(fds[0], line + len, sizeof(line) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (memchr(line, '\n', len))
            break;
    }
    close(fds[0]);
    line[len] = 0;
    s->port = (int)strtol(line, NULL, 10);
    if (s->port <= 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        close(s->lifeline);
        return -1;
    }
    snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", s->port);
    return 0;
}

static void testserver_stop(struct testserver *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        close(s->lifeline);
        s->pid = 0;
    }
}

/* GET path with a blocking socket; the body is written to out. 0, or -1. */
static int testserver_get(const struct testserver *s, const char *path, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    char resp[4096];
    size_t len = 0;
    ssize_t got;
    while (len < sizeof(resp) - 1 && (got = read(fd, resp + len, sizeof(resp) - 1 - len)) > 0)
        len += (size_t)got;
    close(fd);
    resp[len] = 0;
    const char *body = strstr(resp, "\r\n\r\n");
    if (!body)
        return -1;
    snprintf(out, cap, "%s", body + 4);
    return 0;
}

/* Requests served so far (but /stats) and the highest concurrency seen; 0 or -1. */
static int testserver_stats(const struct testserver *s, int *count, int *max)
{
    char body[64];
    if (testserver_get(s, "/stats", body, sizeof(body)) < 0)
        return -1;
    return sscanf(body, "%d %d", count, max) == 2 ? 0 : -1;
}

/* A port on 127.0.0.1 where nothing listens (bound, then closed). */
static int testserver_closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

#endif
