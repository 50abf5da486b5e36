/*
 * notify.h - notifiers (baram.yaml `notifiers`, SPEC section 13) and the
 * deliveries that send one message to one of them, inside the event loop.
 *
 * A notifier is a webhook (POST of one JSON object: dag, run_id, task, try,
 * state, message, url), a Slack incoming webhook (POST {"text": "..."}) or a
 * mail (SMTP or SMTPS through libcurl: MAIL FROM, RCPT TO, a short
 * text/plain body with a Subject). A delivery sends its message on the
 * curlloop it is given (the engine's, shared with http tasks), each attempt
 * bounded by the notifier's timeout; a failed attempt (transport error, an
 * HTTP status outside 2xx, an SMTP error reply) is tried again after a
 * backoff (base, 2 base, 4 base ...) up to the notifier's retries. Nothing
 * ever blocks the loop: DNS is libcurl's threaded resolver (curlloop.h).
 *
 * The owner hears of every attempt's end through its report callback, the
 * last one with final set. notify_free() stops every delivery in flight
 * and reports each once with a NULL report, so its owner may free what it
 * gave (the delivery stays "pending" for whoever records them).
 *
 * Loop thread only. Notifier records are plain data (any thread).
 */
#ifndef BARAM_EXEC_NOTIFY_H
#define BARAM_EXEC_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/compiler.h"

struct curlloop;

#define NOTIFIER_KIND_TABLE(X)                                                                     \
    X(NOTIFIER_WEBHOOK, "webhook")                                                                 \
    X(NOTIFIER_SLACK, "slack")                                                                     \
    X(NOTIFIER_MAIL, "mail")

enum notifier_kind {
#define X(e, s) e,
    NOTIFIER_KIND_TABLE(X)
#undef X
        NOTIFIER_KIND_COUNT
};

#define NOTIFIER_TIMEOUT_MS  10000 /* per attempt, by default */
#define NOTIFIER_RETRIES     3     /* attempts after the first, by default */
#define NOTIFIER_RETRIES_MAX 100
#define NOTIFY_BACKOFF_MS    500  /* the first retry's delay; doubles, capped at 60 s */

struct notifier {
    char *name; /* owned */
    enum notifier_kind kind;
    char *url;  /* owned: http(s) URL, or smtp(s)://host[:port] for mail */
    char *from; /* owned: mail only */
    char **to;  /* owned: mail only, nto >= 1 */
    size_t nto;
    int64_t timeout_ms; /* per attempt; default NOTIFIER_TIMEOUT_MS */
    int retries;        /* default NOTIFIER_RETRIES */
};

const char *notifier_kind_name(enum notifier_kind k);
/* The kind named s: 0, or -EINVAL. */
int notifier_kind_parse(const char *s, enum notifier_kind *out) WARN_UNUSED;
void notifier_release(struct notifier *n);
void notifiers_free(struct notifier *v, size_t n);
/* Deep copies of v (n entries), malloc'd. */
struct notifier *notifiers_dup(const struct notifier *v, size_t n);
/* The notifier named name in v, or NULL. */
const struct notifier *notifiers_find(const struct notifier *v, size_t n, const char *name);

/* What a message says (every string borrowed for the notify_send call; NULL: absent). */
struct notify_facts {
    const char *dag;
    const char *run_id;
    const char *task;  /* NULL for a DAG's hook */
    int try_number;    /* 0 when not about a try */
    const char *hook;  /* on_success, on_failure, on_retry, deadline */
    const char *state; /* the run's or the try's state */
    const char *message;
    const char *url; /* the UI's page of the run, or NULL */
};

/* The message body a notifier of kind k gets (malloc'd; NUL-terminated): the webhook's JSON
 * object, Slack's {"text"}, or the mail's headers and text. to/from only for mail. */
char *notify_body(const struct notifier *n, const struct notify_facts *f);

/* An attempt ended. status: the HTTP status or the SMTP reply code (0 when none came); error:
 * why it failed, or NULL. final: no attempt follows (ok says how it ended). */
struct notify_report {
    int attempt; /* 1-based */
    bool final;
    bool ok;
    long status;
    const char *error; /* borrowed for the callback */
};
typedef void notify_report_fn(void *ud, const struct notify_report *rep);

struct notify;

/* A sender on loop, sending through cl (borrowed; it must outlive the sender). backoff_ms:
 * the first retry's delay (<= 0: NOTIFY_BACKOFF_MS). */
struct notify *notify_new(uv_loop_t *loop, struct curlloop *cl, int64_t backoff_ms);
/* Stops every delivery (each reported once with rep NULL) and frees ns once its timers are closed
 * (run the loop). NULL is a no-op. */
void notify_free(struct notify *ns);

/* Starts a delivery of f to n (both copied). report(ud, ...) after each attempt, never from
 * within this call. 0, or -ENOMEM. */
int notify_send(struct notify *ns, const struct notifier *n, const struct notify_facts *f,
                notify_report_fn *report, void *ud) WARN_UNUSED;
/* Deliveries not yet final. */
size_t notify_pending(const struct notify *ns);

#endif
