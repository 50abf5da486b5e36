/*
 * hub.h - publish/subscribe of the event log (store/events.h) for the API's
 * Server-Sent Events stream (GET /api/v1/events).
 *
 * Key idea: one pump thread reads new events from the store (woken by
 * hub_notify: the store writer's on_commit hook calls it when the scheduler
 * runs in this process, and the API after its own writes; on PostgreSQL
 * also a listener of NOTIFY baram_events, which every commit that appended
 * events sends, whichever process or host wrote them; every HUB_POLL_MS
 * otherwise, and only while someone listens) into
 * a ring of the newest HUB_RING events. Subscribers read the ring at their
 * own pace, each from its own position: the scheduler never waits for them
 * and never knows they exist. A subscriber that falls more than the ring
 * behind (a slow or stuck client) is told ("event: overflow") and dropped;
 * one that resumes with Last-Event-ID older than the ring catches up from
 * the store first.
 *
 * Readers never block: hub_read gives what there is, and a reader with
 * nothing to read arms a wake-up (hub_arm), so an HTTP server can park the
 * connection and serve others meanwhile (api/server.c suspends it).
 *
 * Thread-safe (the ring has a mutex and a condition variable). The hub owns
 * its thread, its store connection and the ring.
 */
#ifndef BARAM_API_HUB_H
#define BARAM_API_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/compiler.h"

#define HUB_RING         16384
#define HUB_POLL_MS      250
#define HUB_KEEPALIVE_MS 15000

struct err;
struct hub;
struct hub_sub;

/* Starts the pump on its own connection to store_url. 0 and *out, or a negative code with *e
 * filled. BARAM_EVENTS_RING and BARAM_EVENTS_POLL_MS (tests) change HUB_RING and
 * HUB_POLL_MS. */
int hub_start(const char *store_url, struct hub **out, struct err *e) WARN_UNUSED;
/* Ends every subscription: armed readers are woken and hub_read then returns -1 (call
 * before stopping the server, so its parked connections end). */
void hub_close(struct hub *h);
/* Joins the pump and frees the hub (after the server has stopped: no subscriber left). */
void hub_stop(struct hub *h);

/* A subscription: events after last_id (-1: from now on), of one DAG / run when given (copied).
 * Never fails (memory aside). */
struct hub_sub *hub_subscribe(struct hub *h, int64_t last_id, const char *dag, const char *run);
/* Writes the next SSE bytes into buf (at most max): events, a keep-alive comment after
 * HUB_KEEPALIVE_MS of silence, or the overflow notice. Never waits (a subscriber resuming
 * from an old id may read the store). > 0 bytes written; 0 nothing now (see hub_arm); -1 the
 * stream is over (dropped after an overflow, or the hub stops). */
ssize_t hub_read(struct hub_sub *s, char *buf, size_t max);
/* After hub_read gave 0: asks for wake(ud) to be called (once, from the hub's thread or
 * hub_close, with the hub's lock held: it must only signal) when there may be something to
 * read. false when there is already (call hub_read again; wake will not be called). */
bool hub_arm(struct hub_sub *s, void (*wake)(void *ud), void *ud);
void hub_unsubscribe(struct hub_sub *s);
/* New events may be in the log: the pump reads it now instead of at its next poll. Quick
 * (takes the hub's lock, never waits on the store): fit for the store writer's on_commit hook
 * (store.h), which `baram standalone` wires to it. Any thread. */
void hub_notify(struct hub *h);
/* Subscribers now (for /metrics). */
size_t hub_subscribers(struct hub *h);

#endif
