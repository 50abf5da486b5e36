/*
 * trylog.c - a try's log from the store or from its worker (see trylog.h).
 *
 * The store's copy is small (at most logs.store_max): it is read whole and
 * cut to the range asked. The worker is asked with one blocking libcurl easy
 * request (connect and whole request bounded by TRYLOG_TIMEOUT_MS, no
 * redirects, http and https only); the answer is kept up to r->max bytes and
 * the transfer stopped there. Ids go into the URL percent-encoded (every byte
 * but RFC 3986's unreserved ones), so no id can change the path.
 *
 * A worker that gave no answer is not asked again for TRYLOG_QUIET_MS: the
 * next readers of its logs hear "unreachable" at once. So a UI tail polling a
 * dead worker's try costs an API thread one 2 s wait per TRYLOG_QUIET_MS, not
 * one per poll. The table of such workers (trylog_quiet) is the process's,
 * behind its mutex: every thread reading logs shares what one of them learnt.
 *
 * Any thread that may block, with its own store; libcurl's global init is
 * done once per process (pthread_once), as the easy interface requires before
 * threads use it.
 */
#include "ops/trylog.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "store/wq.h"

static pthread_once_t trylog_curl_once = PTHREAD_ONCE_INIT;
static bool trylog_curl_ok; /* written once under trylog_curl_once */

static void trylog_curl_init(void)
{
    trylog_curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

#define TRYLOG_QUIET_MS  5000 /* a worker that did not answer is not asked again so soon */
#define TRYLOG_QUIET_MAX 32   /* workers remembered (the oldest is forgotten first) */

/* Workers (their log_url) that did not answer lately: any thread, under trylog_quiet_mu. */
static pthread_mutex_t trylog_quiet_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char *url;        /* owned; NULL: a free slot */
    int64_t until_ms; /* monotonic */
} trylog_quiet[TRYLOG_QUIET_MAX];

/* Whether url did not answer less than TRYLOG_QUIET_MS ago. */
static bool trylog_is_quiet(const char *url)
{
    int64_t now = when_mono_ms();
    bool quiet = false;
    pthread_mutex_lock(&trylog_quiet_mu);
    for (size_t i = 0; i < TRYLOG_QUIET_MAX && !quiet; i++)
        quiet = trylog_quiet[i].url && strcmp(trylog_quiet[i].url, url) == 0 &&
                trylog_quiet[i].until_ms > now;
    pthread_mutex_unlock(&trylog_quiet_mu);
    return quiet;
}

/* Remembers that url did not answer (quiet) or did (forgets it). */
static void trylog_set_quiet(const char *url, bool quiet)
{
    int64_t now = when_mono_ms();
    pthread_mutex_lock(&trylog_quiet_mu);
    size_t at = TRYLOG_QUIET_MAX, oldest = 0;
    for (size_t i = 0; i < TRYLOG_QUIET_MAX; i++) {
        if (trylog_quiet[i].url && strcmp(trylog_quiet[i].url, url) == 0)
            at = i;
        if (trylog_quiet[i].until_ms < trylog_quiet[oldest].until_ms)
            oldest = i;
    }
    if (at == TRYLOG_QUIET_MAX && quiet) {
        at = oldest; /* a free slot has until_ms 0: the oldest */
        free(trylog_quiet[at].url);
        trylog_quiet[at].url = xstrdup(url);
    }
    if (at < TRYLOG_QUIET_MAX) {
        if (quiet) {
            trylog_quiet[at].until_ms = now + TRYLOG_QUIET_MS;
        } else {
            free(trylog_quiet[at].url);
            trylog_quiet[at].url = NULL;
            trylog_quiet[at].until_ms = 0;
        }
    }
    pthread_mutex_unlock(&trylog_quiet_mu);
}

/* Appends s percent-encoded: every byte but A-Z a-z 0-9 - . _ ~ */
static void trylog_pct(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        if (plain) {
            (void)!buf_addc(b, (char)*p);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            (void)!buf_add(b, esc, 3);
        }
    }
}

/* The body, kept up to the buffer's max: past it the transfer stops (a write error that
 * trylog_fetch takes for a full answer). */
static size_t trylog_write(char *p, size_t size, size_t n, void *ud)
{
    struct buf *b = ud;
    size_t k = size * n, room = b->max - b->len;
    if (k > room) {
        (void)!buf_add(b, p, room);
        return 0;
    }
    return buf_add(b, p, k) == 0 ? k : 0;
}

/* GET url with the token: 0 and the HTTP status in *status (body in *body), or -EHOSTUNREACH
 * when no answer came. */
static int trylog_fetch(const char *url, const char *token, struct buf *body, long *status)
{
    pthread_once(&trylog_curl_once, trylog_curl_init);
    if (!trylog_curl_ok)
        return -EHOSTUNREACH;
    CURL *c = curl_easy_init();
    if (!c)
        return -EHOSTUNREACH;
    struct curl_slist *hdrs = NULL;
    char *auth = token ? xasprintf("Authorization: Bearer %s", token) : NULL;
    if (auth)
        hdrs = curl_slist_append(hdrs, auth);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)TRYLOG_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)TRYLOG_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, trylog_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    CURLcode rc = curl_easy_perform(c);
    *status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    free(auth);
    bool full = rc == CURLE_WRITE_ERROR && body->len == body->max;
    return rc == CURLE_OK || full ? 0 : -EHOSTUNREACH;
}

/* The store's copy, cut to [offset, offset + max). */
static void trylog_cut(char *log, size_t n, const struct trylog_req *r, char **data, size_t *len)
{
    size_t from = (uint64_t)r->offset < n ? (size_t)r->offset : n;
    size_t k = n - from < r->max ? n - from : r->max;
    *data = xmalloc(k + 1);
    memcpy(*data, log + from, k);
    (*data)[k] = 0;
    *len = k;
    free(log);
}

int trylog_read(struct store *s, const struct trylog_req *r, char **data, size_t *len,
                enum trylog_source *source, char **msg, struct err *e)
{
    *data = NULL;
    *len = 0;
    *msg = NULL;
    char *log = NULL;
    size_t n = 0;
    int rc = wq_log_get(s, r->run_id, r->task_id, r->try_number, &log, &n, e);
    if (rc == 0) {
        trylog_cut(log, n, r, data, len);
        *source = TRYLOG_STORE;
        return 0;
    }
    if (rc == -ENOTSUP) /* SQLite: the scheduler ran the try; its log is local or none */
        return -ENOENT;
    if (rc != -ENOENT)
        return rc;
    char *name = NULL, *log_url = NULL;
    rc = wq_try_worker(s, r->run_id, r->task_id, r->try_number, &name, &log_url, e);
    if (rc < 0)
        return rc;
    if (!name) {
        free(log_url);
        return -ENOENT;
    }
    if (!log_url) {
        *msg = xasprintf("log not available (worker %s serves no logs: started without --listen)",
                         name);
        free(name);
        return -EHOSTUNREACH;
    }
    struct buf url = BUF_INIT(BUF_NO_MAX);
    (void)!buf_adds(&url, log_url);
    while (url.len && url.data[url.len - 1] == '/')
        buf_truncate(&url, url.len - 1);
    (void)!buf_adds(&url, "/logs/");
    trylog_pct(&url, r->run_id);
    (void)!buf_addc(&url, '/');
    trylog_pct(&url, r->task_id);
    (void)!buf_addf(&url, "/%d?offset=%lld", r->try_number, (long long)r->offset);
    struct buf body = BUF_INIT(r->max);
    long status = 0;
    if (trylog_is_quiet(log_url)) {
        rc = -EHOSTUNREACH;
    } else {
        rc = trylog_fetch(url.data, r->token, &body, &status);
        trylog_set_quiet(log_url, rc < 0);
    }
    if (rc < 0) {
        *msg = xasprintf("log not available (worker %s unreachable)", name);
    } else if (status == 200) {
        *data = buf_detach(&body, len);
        *source = TRYLOG_WORKER;
    } else if (status == 404) {
        rc = -ENOENT; /* not written yet */
    } else if (status == 401 || status == 403) {
        *msg = xasprintf("log not available (worker %s refused the token: HTTP %ld; do the "
                         "worker's home and this one share secret.key?)",
                         name, status);
        rc = -EACCES;
    } else {
        *msg = xasprintf("log not available (worker %s answered HTTP %ld)", name, status);
        rc = -EHOSTUNREACH;
    }
    buf_release(&body);
    buf_release(&url);
    free(name);
    free(log_url);
    return rc;
}
