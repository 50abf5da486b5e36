/*
 * notify.c - deliveries of hook messages to notifiers (notify.h), on the loop.
 *
 * A delivery owns a copy of its notifier and its body, built once. Each
 * attempt makes a fresh easy handle and hands it to the shared curlloop; its
 * end (curlloop's done callback) is reported, and a failure with attempts
 * left arms the delivery's uv_timer for the backoff. The delivery is freed
 * after its final report (or by notify_free), its timer closed first: the
 * memory goes in the close callback.
 *
 * Loop thread only.
 */
#include "exec/notify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "base/buf.h"
#include "base/compiler.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "exec/curlloop.h"

#define NOTIFY_BACKOFF_MAX_MS 60000

static const char *const kind_names[] = {
#define X(e, s) s,
    NOTIFIER_KIND_TABLE(X)
#undef X
};

const char *notifier_kind_name(enum notifier_kind k)
{
    return (unsigned)k < NOTIFIER_KIND_COUNT ? kind_names[k] : "?";
}

int notifier_kind_parse(const char *s, enum notifier_kind *out)
{
    for (int i = 0; i < NOTIFIER_KIND_COUNT; i++)
        if (strcmp(s, kind_names[i]) == 0) {
            *out = (enum notifier_kind)i;
            return 0;
        }
    return -EINVAL;
}

void notifier_release(struct notifier *n)
{
    free(n->name);
    free(n->url);
    free(n->from);
    for (size_t i = 0; i < n->nto; i++)
        free(n->to[i]);
    free(n->to);
    memset(n, 0, sizeof *n);
}

void notifiers_free(struct notifier *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        notifier_release(&v[i]);
    free(v);
}

static void notifier_copy(struct notifier *dst, const struct notifier *src)
{
    *dst = *src;
    dst->name = src->name ? xstrdup(src->name) : NULL;
    dst->url = src->url ? xstrdup(src->url) : NULL;
    dst->from = src->from ? xstrdup(src->from) : NULL;
    dst->to = src->nto ? xcalloc(src->nto, sizeof(char *)) : NULL;
    for (size_t i = 0; i < src->nto; i++)
        dst->to[i] = xstrdup(src->to[i]);
}

struct notifier *notifiers_dup(const struct notifier *v, size_t n)
{
    struct notifier *out = xcalloc(n ? n : 1, sizeof *out);
    for (size_t i = 0; i < n; i++)
        notifier_copy(&out[i], &v[i]);
    return out;
}

const struct notifier *notifiers_find(const struct notifier *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return &v[i];
    return NULL;
}

/* ---- bodies ---- */

static void set_str_or_null(json_t *o, const char *key, const char *v)
{
    json_object_set_new(o, key, v ? json_string(v) : json_null());
}

/* One line for people: "dag D run R: task T try N failed: MESSAGE". */
static char *notify_line(const struct notify_facts *f)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    int r =
        buf_addf(&b, "baram: dag %s run %s", f->dag ? f->dag : "?", f->run_id ? f->run_id : "?");
    if (f->task)
        r |= buf_addf(&b, " task %s", f->task);
    if (f->try_number > 0)
        r |= buf_addf(&b, " try %d", f->try_number);
    if (f->hook && strcmp(f->hook, "deadline") == 0)
        r |= buf_adds(&b, " missed its deadline");
    else if (f->state)
        r |= buf_addf(&b, " %s", f->state);
    if (f->message && *f->message)
        r |= buf_addf(&b, ": %s", f->message);
    if (f->url)
        r |= buf_addf(&b, " (%s)", f->url);
    (void)r;
    return buf_detach(&b, NULL);
}

/* Mail header values: no line breaks (a fact could carry one into a header). */
static void mail_clean(char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            *s = ' ';
}

char *notify_body(const struct notifier *n, const struct notify_facts *f)
{
    if (n->kind == NOTIFIER_MAIL) {
        char *line = notify_line(f);
        char *subject = xstrdup(line);
        mail_clean(subject);
        char date[64];
        time_t now = time(NULL);
        struct tm tm;
        if (!gmtime_r(&now, &tm) ||
            strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm) == 0)
            date[0] = 0;
        struct buf b = BUF_INIT(BUF_NO_MAX);
        int r = buf_addf(&b, "Date: %s\r\nFrom: <%s>\r\n", date, n->from);
        for (size_t i = 0; i < n->nto; i++)
            r |= buf_addf(&b, "%s<%s>", i ? ", " : "To: ", n->to[i]);
        r |= buf_addf(&b, "\r\nSubject: %s\r\n", subject);
        r |= buf_adds(&b, "MIME-Version: 1.0\r\n"
                          "Content-Type: text/plain; charset=utf-8\r\n"
                          "Content-Transfer-Encoding: 8bit\r\n\r\n");
        /* The text: one fact a line; a line starting with '.' is doubled by curl (SMTP). */
        r |= buf_addf(&b, "%s\r\n", line);
        (void)r;
        free(line);
        free(subject);
        return buf_detach(&b, NULL);
    }
    json_t *o = json_object();
    if (n->kind == NOTIFIER_SLACK) {
        char *line = notify_line(f);
        json_object_set_new(o, "text", json_string(line));
        free(line);
    } else {
        set_str_or_null(o, "dag", f->dag);
        set_str_or_null(o, "run_id", f->run_id);
        set_str_or_null(o, "task", f->task);
        json_object_set_new(o, "try",
                            f->try_number > 0 ? json_integer(f->try_number) : json_null());
        set_str_or_null(o, "hook", f->hook);
        set_str_or_null(o, "state", f->state);
        set_str_or_null(o, "message", f->message);
        set_str_or_null(o, "url", f->url);
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    return s ? s : xstrdup("{}");
}

/* ---- deliveries ---- */

struct delivery {
    struct notify *ns;
    struct delivery *prev, *next;
    struct notifier n; /* owned copy */
    char *body;        /* owned */
    size_t body_len;
    size_t sent; /* mail: bytes of body read by curl in this attempt */
    CURL *easy;  /* the attempt in flight, or NULL */
    struct curl_slist *list;
    uv_timer_t timer;
    int attempt;
    char errbuf[CURL_ERROR_SIZE];
    notify_report_fn *report;
    void *ud;
};

struct notify {
    uv_loop_t *loop;
    struct curlloop *cl; /* borrowed */
    int64_t backoff_ms;
    struct delivery *head;
    size_t n;
    bool dying;
    size_t closing; /* delivery timers not yet closed after notify_free */
};

struct notify *notify_new(uv_loop_t *loop, struct curlloop *cl, int64_t backoff_ms)
{
    struct notify *ns = xcalloc(1, sizeof *ns);
    ns->loop = loop;
    ns->cl = cl;
    ns->backoff_ms = backoff_ms > 0 ? backoff_ms : NOTIFY_BACKOFF_MS;
    return ns;
}

size_t notify_pending(const struct notify *ns)
{
    return ns ? ns->n : 0;
}

static void delivery_closed(uv_handle_t *h)
{
    struct delivery *d = h->data;
    struct notify *ns = d->ns;
    notifier_release(&d->n);
    free(d->body);
    free(d);
    if (ns->dying && --ns->closing == 0)
        free(ns);
}

/* Unlinks d, ends its attempt in flight and frees it (once its timer is closed). */
static void delivery_end(struct delivery *d)
{
    struct notify *ns = d->ns;
    if (d->prev)
        d->prev->next = d->next;
    else
        ns->head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    ns->n--;
    if (d->easy) {
        curlloop_remove(ns->cl, d->easy);
        curl_easy_cleanup(d->easy);
        d->easy = NULL;
    }
    curl_slist_free_all(d->list);
    d->list = NULL;
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, delivery_closed);
}

/* curl opens its sockets without SOCK_CLOEXEC; tasks are spawned from this process. */
static curl_socket_t notify_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)arg;
    (void)purpose;
    int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    return fd < 0 ? CURL_SOCKET_BAD : fd;
}

/* The answer's body is not kept. */
static size_t notify_discard(char *p, size_t size, size_t nmemb, void *ud)
{
    (void)p;
    (void)ud;
    return size * nmemb;
}

static size_t notify_read(char *p, size_t size, size_t nmemb, void *ud)
{
    struct delivery *d = ud;
    size_t room = size * nmemb, left = d->body_len - d->sent;
    size_t k = left < room ? left : room;
    memcpy(p, d->body + d->sent, k);
    d->sent += k;
    return k;
}

static void delivery_attempt(struct delivery *d);

static void delivery_on_timer(uv_timer_t *t)
{
    delivery_attempt(t->data);
}

static void delivery_done(CURL *easy, CURLcode res, void *arg)
{
    struct delivery *d = arg;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    char msg[CURL_ERROR_SIZE + 64];
    const char *error = NULL;
    if (res != CURLE_OK) {
        snprintf(msg, sizeof msg, "%s", d->errbuf[0] ? d->errbuf : curl_easy_strerror(res));
        error = msg;
    } else if (d->n.kind != NOTIFIER_MAIL && (status < 200 || status > 299)) {
        snprintf(msg, sizeof msg, "HTTP status %ld", status);
        error = msg;
    }
    curl_easy_cleanup(easy);
    d->easy = NULL;
    curl_slist_free_all(d->list);
    d->list = NULL;
    bool final = !error || d->attempt > d->n.retries;
    struct notify_report rep = {
        .attempt = d->attempt, .final = final, .ok = !error, .status = status, .error = error};
    d->report(d->ud, &rep);
    if (final) {
        delivery_end(d);
        return;
    }
    int64_t delay = d->ns->backoff_ms;
    for (int i = 1; i < d->attempt && delay < NOTIFY_BACKOFF_MAX_MS; i++)
        delay *= 2;
    if (delay > NOTIFY_BACKOFF_MAX_MS)
        delay = NOTIFY_BACKOFF_MAX_MS;
    uv_timer_start(&d->timer, delivery_on_timer, (uint64_t)delay, 0);
}

/* Reports a failure to start an attempt as that attempt's end (from a zero timer: never from
 * within notify_send). */
static void delivery_fail_now(struct delivery *d, const char *why)
{
    struct notify_report rep = {.attempt = d->attempt, .final = true, .error = why};
    d->report(d->ud, &rep);
    delivery_end(d);
}

static void delivery_attempt(struct delivery *d)
{
    d->attempt++;
    d->errbuf[0] = 0;
    d->sent = 0;
    CURL *e = curl_easy_init();
    if (!e) {
        delivery_fail_now(d, "could not make a request (curl_easy_init)");
        return;
    }
    curl_easy_setopt(e, CURLOPT_URL, d->n.url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, notify_open_socket);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, notify_discard);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)d->n.timeout_ms);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "baram/" BARAM_VERSION);
    if (d->n.kind == NOTIFIER_MAIL) {
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
        curl_easy_setopt(e, CURLOPT_MAIL_FROM, d->n.from);
        for (size_t i = 0; i < d->n.nto; i++)
            d->list = curl_slist_append(d->list, d->n.to[i]);
        curl_easy_setopt(e, CURLOPT_MAIL_RCPT, d->list);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, notify_read);
        curl_easy_setopt(e, CURLOPT_READDATA, d);
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        d->list = curl_slist_append(NULL, "Content-Type: application/json");
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, d->list);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->body);
    }
    d->easy = e;
    if (curlloop_add(d->ns->cl, e, delivery_done, d) < 0) {
        curl_easy_cleanup(e);
        d->easy = NULL;
        delivery_fail_now(d, "curl refused the request");
    }
}

static void delivery_on_start(uv_timer_t *t)
{
    delivery_attempt(t->data);
}

int notify_send(struct notify *ns, const struct notifier *n, const struct notify_facts *f,
                notify_report_fn *report, void *ud)
{
    struct delivery *d = xcalloc(1, sizeof *d);
    d->ns = ns;
    notifier_copy(&d->n, n);
    if (d->n.timeout_ms <= 0)
        d->n.timeout_ms = NOTIFIER_TIMEOUT_MS;
    d->body = notify_body(n, f);
    d->body_len = strlen(d->body);
    d->report = report;
    d->ud = ud;
    uv_timer_init(ns->loop, &d->timer);
    d->timer.data = d;
    d->next = ns->head;
    if (ns->head)
        ns->head->prev = d;
    ns->head = d;
    ns->n++;
    uv_timer_start(&d->timer, delivery_on_start, 0, 0);
    return 0;
}

void notify_free(struct notify *ns)
{
    if (!ns)
        return;
    ns->dying = true;
    ns->closing = ns->n;
    if (ns->n == 0) {
        free(ns);
        return;
    }
    while (ns->head) {
        struct delivery *d = ns->head;
        d->report(d->ud, NULL);
        delivery_end(d);
    }
}
