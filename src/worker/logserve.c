/*
 * logserve.c - a worker's log server (see logserve.h).
 *
 * One libmicrohttpd polling thread answers every request at its first call (a
 * GET has no body): check the token, split the raw path (the unescape callback
 * is the identity, so "%2F" never becomes a separator), decode and check each
 * id as the API checks {segments}, find the log under HOME/logs with logpath.h
 * and stream it from an open descriptor (MHD pulls it in 64 KiB blocks), so a
 * big log costs no memory. The size sent is the file's at the time of the
 * request: a growing log is read again with ?offset=.
 *
 * Revocations (when a store is given) are never read on the polling thread:
 * a side thread opens the store and brings the snapshot of revoked tokens up
 * to date every LOGSERVE_REVOKE_MS, and requests are checked against the
 * snapshot alone. So a database that is slow or down stalls no log request;
 * a token revoked before the last refresh stays refused, one revoked since
 * is refused from the next refresh on. Until a first refresh has succeeded
 * tokens are refused with 503 (nothing known yet). logserve_stop ends that
 * thread and closes its store.
 */
#include "worker/logserve.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/revoke.h"
#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/xalloc.h"
#include "sched/logpath.h"
#include "store/store.h"

#define LOGSERVE_BLOCK       (64 * 1024)
#define LOGSERVE_CONNECTIONS 64
#define LOGSERVE_TIMEOUT_S   30
#define LOGSERVE_REVOKE_MS   2000 /* revocations refreshed */

struct logserve {
    struct MHD_Daemon *mhd;
    char *home;            /* owned */
    char *store_url;       /* owned; NULL: no revocation check */
    struct auth *auth;     /* borrowed */
    struct revoke *revoke; /* owned */
    struct store *store;   /* owned, refresh thread only */
    pthread_t refresher;   /* when has_refresher */
    bool has_refresher;
    pthread_mutex_t mu; /* guards stop and refreshed */
    pthread_cond_t cv;
    bool stop, refreshed; /* refreshed: the snapshot was read from the store once */
    char *url;            /* owned: "http://HOST:PORT" */
    int port;
};

/* ---- answers ---- */

static enum MHD_Result logserve_answer(struct MHD_Connection *mc, unsigned status,
                                       struct MHD_Response *rs)
{
    if (!rs)
        return MHD_NO;
    MHD_add_response_header(rs, "Cache-Control", "no-store");
    MHD_add_response_header(rs, "X-Content-Type-Options", "nosniff");
    enum MHD_Result r = MHD_queue_response(mc, status, rs);
    MHD_destroy_response(rs);
    return r;
}

/* An application/problem+json answer, as the API's. */
static enum MHD_Result logserve_problem(struct MHD_Connection *mc, unsigned status,
                                        const char *title, const char *detail)
{
    json_t *j = json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank", "title", title, "status",
                          (int)status, "detail", detail);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return MHD_NO;
    struct MHD_Response *rs =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY);
    free(text);
    if (rs) {
        MHD_add_response_header(rs, "Content-Type", "application/problem+json");
        if (status == 401)
            MHD_add_response_header(rs, "WWW-Authenticate", "Bearer realm=\"baram\"");
        if (status == 405)
            MHD_add_response_header(rs, "Allow", "GET, HEAD");
    }
    return logserve_answer(mc, status, rs);
}

/* The part of an open log still to send. */
struct logserve_file {
    int fd;
    uint64_t pos;
};

static ssize_t logserve_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct logserve_file *f = cls;
    ssize_t n;
    do
        n = pread(f->fd, buf, max, (off_t)(f->pos + pos));
    while (n < 0 && errno == EINTR);
    if (n <= 0) /* cut short since the request: MHD closes the connection */
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return n;
}

static void logserve_file_free(void *cls)
{
    struct logserve_file *f = cls;
    close(f->fd);
    free(f);
}

/* ---- the request ---- */

/* The token: 0 when it may read logs; else an answer was queued and *r says what. */
static int logserve_auth(struct logserve *ls, struct MHD_Connection *mc, enum MHD_Result *r)
{
    const char *hdr =
        MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *token = api_bearer(hdr);
    if (!token) {
        *r = logserve_problem(mc, 401, "Unauthorized",
                              hdr ? "the Authorization header must be 'Bearer TOKEN'"
                                  : "a bearer token is required");
        return -EACCES;
    }
    struct auth_user u;
    memset(&u, 0, sizeof u);
    const char *why = NULL;
    int v = auth_verify(ls->auth, token, &u, &why);
    if (v == 0 && ls->store_url) {
        pthread_mutex_lock(&ls->mu);
        bool known = ls->refreshed;
        pthread_mutex_unlock(&ls->mu);
        if (!known) {
            *r = logserve_problem(mc, 503, "Service Unavailable", "the store is not available");
            return -EIO;
        }
        v = revoke_check_cached(ls->revoke, &u, &why);
    }
    if (v != 0) {
        *r = logserve_problem(mc, 401, "Unauthorized", why ? why : "the token is not valid");
        return -EACCES;
    }
    if (u.role < AUTH_VIEWER) {
        *r = logserve_problem(mc, 403, "Forbidden", "this needs the role viewer");
        return -EACCES;
    }
    return 0;
}

/* A task instance id: "name" ([A-Za-z0-9_.-]) or "name[N]". 0 with *task (malloc'd) and
 * *map_index (-1 when not mapped), or -EINVAL. */
static int logserve_task_id(const char *id, char **task, int *map_index)
{
    size_t n = strcspn(id, "[");
    if (n == 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return -EINVAL;
    }
    *map_index = -1;
    if (id[n]) {
        size_t len = strlen(id);
        if (len < n + 3 || id[len - 1] != ']')
            return -EINVAL;
        char digits[16];
        size_t nd = len - n - 2;
        if (nd >= sizeof(digits))
            return -EINVAL;
        memcpy(digits, id + n + 1, nd);
        digits[nd] = 0;
        for (size_t i = 0; i < nd; i++)
            if (digits[i] < '0' || digits[i] > '9')
                return -EINVAL;
        if (parse_int(digits, 0, INT_MAX, map_index) < 0)
            return -EINVAL;
    }
    *task = xstrndup(id, n);
    return 0;
}

/* Opens the try's log under HOME/logs/<dag>/<run_id>: an fd (O_RDONLY, a regular file) or
 * -ENOENT. */
static int logserve_open_log(const struct logserve *ls, const char *run_id, const char *task,
                             int map_index, int try_number)
{
    char *root = xasprintf("%s/logs", ls->home);
    DIR *dir = opendir(root);
    free(root);
    if (!dir)
        return -ENOENT;
    int fd = -ENOENT;
    struct dirent *de;
    while (fd < 0 && (de = readdir(dir)) != NULL) {
        /* DAG folders only: a dotted or encoded name is no DAG id logpath writes. */
        if (de->d_name[0] == '.' || strchr(de->d_name, '%'))
            continue;
        char *path = logpath_find_log(ls->home, de->d_name, run_id, task, map_index, try_number);
        int f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        free(path);
        struct stat st;
        if (f >= 0 && fstat(f, &st) == 0 && S_ISREG(st.st_mode))
            fd = f;
        else if (f >= 0)
            close(f);
    }
    closedir(dir);
    return fd;
}

/* Splits the raw path "/logs/A/B/C" into its three ids, decoded and checked: 0, -ENOENT when
 * the path has another shape, -EINVAL when an id is not valid. */
static int logserve_path(const char *url, char *seg[3])
{
    if (strncmp(url, "/logs/", 6) != 0)
        return -ENOENT;
    const char *p = url + 6;
    const char *s1 = strchr(p, '/');
    const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    if (!s2 || strchr(s2 + 1, '/'))
        return -ENOENT;
    const char *at[3] = {p, s1 + 1, s2 + 1};
    size_t len[3] = {(size_t)(s1 - p), (size_t)(s2 - s1 - 1), strlen(s2 + 1)};
    for (int i = 0; i < 3; i++) {
        if (api_seg_decode(at[i], len[i], &seg[i]) < 0) {
            for (int k = 0; k < i; k++)
                free(seg[k]);
            return -EINVAL;
        }
    }
    return 0;
}

static enum MHD_Result logserve_serve(struct logserve *ls, struct MHD_Connection *mc,
                                      const char *url)
{
    char *seg[3];
    int r = logserve_path(url, seg);
    if (r == -ENOENT)
        return logserve_problem(mc, 404, "Not Found", "no such path (GET /logs/RUN/TASK/TRY)");
    if (r < 0)
        return logserve_problem(mc, 400, "Bad Request",
                                "the path must be /logs/RUN/TASK/TRY with valid ids");
    char *task = NULL;
    int map_index, try_number;
    int64_t offset = 0;
    const char *off = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "offset");
    enum MHD_Result res;
    if (logserve_task_id(seg[1], &task, &map_index) < 0) {
        res = logserve_problem(mc, 400, "Bad Request", "the task must be NAME or NAME[INDEX]");
    } else if (parse_int(seg[2], 1, INT_MAX, &try_number) < 0) {
        res = logserve_problem(mc, 400, "Bad Request", "the try must be a number from 1");
    } else if (off && parse_int64(off, 0, INT64_MAX, &offset) < 0) {
        res = logserve_problem(mc, 400, "Bad Request", "offset must be a number of bytes >= 0");
    } else {
        int fd = logserve_open_log(ls, seg[0], task, map_index, try_number);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            if (fd >= 0)
                close(fd);
            res = logserve_problem(mc, 404, "Not Found", "this worker has no log of that try");
        } else {
            uint64_t size = (uint64_t)st.st_size;
            struct logserve_file *f = xcalloc(1, sizeof *f);
            f->fd = fd;
            f->pos = (uint64_t)offset < size ? (uint64_t)offset : size;
            struct MHD_Response *rs = MHD_create_response_from_callback(
                size - f->pos, LOGSERVE_BLOCK, logserve_read, f, logserve_file_free);
            if (!rs)
                logserve_file_free(f);
            else
                MHD_add_response_header(rs, "Content-Type", "text/plain; charset=utf-8");
            res = logserve_answer(mc, 200, rs);
        }
    }
    free(task);
    for (int i = 0; i < 3; i++)
        free(seg[i]);
    return res;
}

static enum MHD_Result logserve_request(void *cls, struct MHD_Connection *mc, const char *url,
                                        const char *method, const char *version,
                                        const char *upload_data, size_t *upload_data_size,
                                        void **con_cls)
{
    (void)version;
    (void)upload_data;
    struct logserve *ls = cls;
    if (*con_cls) { /* a body after the answer: dropped */
        *upload_data_size = 0;
        return MHD_YES;
    }
    *con_cls = ls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return logserve_problem(mc, 405, "Method Not Allowed", "only GET reads a log");
    enum MHD_Result r;
    if (logserve_auth(ls, mc, &r) < 0)
        return r;
    return logserve_serve(ls, mc, url);
}

/* Paths arrive raw: segments are decoded one by one (api_seg_decode). */
static size_t logserve_no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static void logserve_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (LOG_DEBUG < log_get_level())
        return;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    log_debug("log server", "detail=%s", log_q(msg));
}

/* ---- start and stop ---- */

/* "http://HOST:PORT" for the others to reach: the listen host, or this machine's name for a
 * wildcard; an IPv6 literal in brackets. */
static char *logserve_make_url(const char *listen, const char *url_host, int port)
{
    char *host;
    if (url_host && *url_host) {
        host = xstrdup(url_host);
    } else if (listen[0] == '[') {
        host = xstrndup(listen + 1, strcspn(listen + 1, "]"));
    } else {
        const char *colon = strrchr(listen, ':');
        host = xstrndup(listen, colon ? (size_t)(colon - listen) : strlen(listen));
    }
    if (!*host || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0) {
        char name[256];
        free(host);
        host = xstrdup(gethostname(name, sizeof(name)) == 0 && name[0] ? name : "localhost");
        name[sizeof(name) - 1] = 0;
    }
    char *url = strchr(host, ':') ? xasprintf("http://[%s]:%d", host, port)
                                  : xasprintf("http://%s:%d", host, port);
    free(host);
    return url;
}

/* The refresh thread: the snapshot of revoked tokens, every LOGSERVE_REVOKE_MS. */
static void *logserve_refresh(void *arg)
{
    struct logserve *ls = arg;
    bool failing = false;
    pthread_mutex_lock(&ls->mu);
    while (!ls->stop) {
        pthread_mutex_unlock(&ls->mu);
        struct err se = {0};
        int r = ls->store ? 0 : store_open(ls->store_url, &ls->store, &se);
        if (r == 0)
            r = revoke_refresh(ls->revoke, ls->store, &se);
        if (r < 0) {
            if (!failing)
                log_warn("log server: cannot read revoked tokens, will retry", "error=%s",
                         log_q(err_msg(&se)));
            store_close(ls->store); /* a new connection next time */
            ls->store = NULL;
        } else if (failing) {
            log_info("log server: revoked tokens read again", "store=%s", "ok");
        }
        failing = r < 0;
        pthread_mutex_lock(&ls->mu);
        if (r == 0)
            ls->refreshed = true;
        if (ls->stop)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += LOGSERVE_REVOKE_MS / 1000;
        ts.tv_nsec += (long)(LOGSERVE_REVOKE_MS % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!ls->stop && pthread_cond_timedwait(&ls->cv, &ls->mu, &ts) == 0) {
        }
    }
    pthread_mutex_unlock(&ls->mu);
    return NULL;
}

int logserve_start(const struct logserve_opts *o, struct logserve **out, struct err *e)
{
    *out = NULL;
    if (!o->listen || !*o->listen || !o->home || !o->auth)
        return err_set(e, -EINVAL, "the log server needs a listen address, a home and keys");
    struct sockaddr_storage ss;
    bool v6 = false;
    int r = api_parse_listen(o->listen, &ss, &v6, e);
    if (r < 0)
        return r;
    struct logserve *ls = xcalloc(1, sizeof *ls);
    ls->home = xstrdup(o->home);
    ls->store_url = o->store_url ? xstrdup(o->store_url) : NULL;
    ls->auth = o->auth;
    ls->revoke = revoke_new();
    pthread_mutex_init(&ls->mu, NULL);
    pthread_cond_init(&ls->cv, NULL);
    if (ls->store_url) {
        int pr = pthread_create(&ls->refresher, NULL, logserve_refresh, ls);
        if (pr != 0) {
            r = err_set(e, -pr, "log server: cannot start a thread: %s", strerror(pr));
            logserve_stop(ls);
            return r;
        }
        ls->has_refresher = true;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
    errno = 0;
    ls->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, logserve_request, ls, MHD_OPTION_EXTERNAL_LOGGER, logserve_mhd_log,
        ls, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)LOGSERVE_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)LOGSERVE_TIMEOUT_S,
        MHD_OPTION_UNESCAPE_CALLBACK, logserve_no_unescape, ls, MHD_OPTION_END);
    if (!ls->mhd) {
        int no = errno ? errno : EADDRNOTAVAIL;
        r = err_set(e, -no, "log server: cannot listen on %s: %s", o->listen, strerror(no));
        logserve_stop(ls);
        return r;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(ls->mhd, MHD_DAEMON_INFO_BIND_PORT);
    ls->port = di ? di->port : 0;
    ls->url = logserve_make_url(o->listen, o->url_host, ls->port);
    *out = ls;
    return 0;
}

void logserve_stop(struct logserve *ls)
{
    if (!ls)
        return;
    if (ls->mhd)
        MHD_stop_daemon(ls->mhd);
    if (ls->has_refresher) {
        pthread_mutex_lock(&ls->mu);
        ls->stop = true;
        pthread_cond_signal(&ls->cv);
        pthread_mutex_unlock(&ls->mu);
        pthread_join(ls->refresher, NULL);
    }
    pthread_mutex_destroy(&ls->mu);
    pthread_cond_destroy(&ls->cv);
    store_close(ls->store);
    revoke_free(ls->revoke);
    free(ls->home);
    free(ls->store_url);
    free(ls->url);
    free(ls);
}

const char *logserve_url(const struct logserve *ls)
{
    return ls->url;
}

int logserve_port(const struct logserve *ls)
{
    return ls->port;
}
