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
#include "base/xalloc.h"
#include "store/wq.h"

static pthread_once_t trylog_curl_once = PTHREAD_ONCE_INIT;
static bool trylog_curl_ok; /* written once under trylog_curl_once */

static void trylog_curl_init(void)
{
    trylog_curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
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
    rc = trylog_fetch(url.data, r->token, &body, &status);
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
