/*
 * listen.h - wake-ups from PostgreSQL on a libuv loop: a connection of its
 * own in LISTEN on some channels (events.h: EVENTS_CHANNEL_*), its socket
 * polled by the loop, each notification delivered as a callback.
 *
 * Notifications can be lost: while the connection is down, or when it died
 * half-open. So the listener connects with TCP keepalives, checks every
 * LISTEN_CHECK_MS that its channels are still listened to (an answer due
 * within LISTEN_CHECK_WAIT_MS), and on a lost connection reconnects with
 * backoff (LISTEN_RETRY_MIN_MS doubling to LISTEN_RETRY_MAX_MS), LISTENs
 * again and calls on_resync: the owner then reads everything again, as a
 * notification may have gone by meanwhile. on_resync also follows the first
 * connect. The owner keeps its own poll as a backstop besides.
 *
 * Connecting (and the first LISTENs) runs on the loop's thread pool, so a
 * slow DNS or an unreachable server never blocks the loop. Loop thread
 * only; callbacks run on the loop.
 */
#ifndef BARAM_STORE_LISTEN_H
#define BARAM_STORE_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

#include "base/compiler.h"

struct err;
struct uv_loop_s;

/* BARAM_LISTEN_CHECK_MS (tests) sets the check's period, and its wait to half of it (at most
 * LISTEN_CHECK_WAIT_MS). */
#define LISTEN_CHECK_MS      10000
#define LISTEN_CHECK_WAIT_MS 5000
#define LISTEN_RETRY_MIN_MS  50
#define LISTEN_RETRY_MAX_MS  1000

struct listener;

/* A notification on channel (its payload is not used). */
typedef void (*listen_notify_fn)(void *ud, const char *channel);
/* Listening (again) after a connect: anything may have been missed before. */
typedef void (*listen_resync_fn)(void *ud);

/* Starts listening to channels (n names, copied) of the database url. 0 and *out, -ENOTSUP
 * when url is not a PostgreSQL one (nothing to listen to: the caller keeps its own doorbell),
 * or a negative code with *e filled. A server down at the start is not an error: the listener
 * keeps trying. */
int listen_start(struct uv_loop_s *loop, const char *url, const char *const *channels, size_t n,
                 listen_notify_fn on_notify, listen_resync_fn on_resync, void *ud,
                 struct listener **out, struct err *e) WARN_UNUSED;
/* Stops: no callback runs after it; its handles close and it frees itself as the loop runs on.
 * NULL is fine. */
void listen_stop(struct listener *l);

/* Whether url names a PostgreSQL database. */
bool listen_url_is_pg(const char *url);

#endif
