/*
 * trylog.h - a try's log when it is not on this machine's disk (SPEC section
 * 12): on PostgreSQL a try runs on a worker, perhaps elsewhere. Readers
 * (`baram logs`, the API's log route and so the UI's live tail) read the
 * local file first, as always; when there is none they call trylog_read,
 * which tries, in order:
 *   1. the store's copy (try_logs), written by the worker as the try ended;
 *   2. the worker running the try, GET <log_url>/logs/RUN/TASK/TRY?offset=N
 *      (worker/logserve.h), with the caller's token and a 2 s timeout;
 * and else says why there is none: "log not available (worker NAME
 * unreachable)".
 *
 * Blocking (a store query, an HTTP request of at most TRYLOG_TIMEOUT_MS): call
 * it from a thread that may wait, never from a loop. Any such thread, with its
 * own store (store.h).
 */
#ifndef BARAM_OPS_TRYLOG_H
#define BARAM_OPS_TRYLOG_H

#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

struct err;
struct store;

#define TRYLOG_TIMEOUT_MS 2000

/* Where the bytes came from. */
enum trylog_source { TRYLOG_STORE, TRYLOG_WORKER };

struct trylog_req {
    const char *run_id, *task_id; /* the instance ("name" or "name[3]") */
    int try_number;
    int64_t offset;    /* the first byte wanted (>= 0) */
    size_t max;        /* at most this many bytes */
    const char *token; /* sent to the worker as "Bearer TOKEN"; NULL: none */
};

/* Reads up to r->max bytes of the try's log from r->offset: 0 with *data (malloc'd,
 * NUL-terminated besides *len; *len 0 past the end) and *source; or, with *msg (malloc'd)
 * saying why for people:
 *   -ENOENT        no log is kept for the try anywhere known (not started, a worker that has
 *                  not written it yet, SQLite); *msg may be NULL then;
 *   -EHOSTUNREACH  its worker is known but could not be read: "log not available (worker
 *                  NAME unreachable)", or it serves no logs (started without --listen);
 *   -EACCES        its worker refused the token;
 *   ERR_DB         the store failed (*e filled, *msg NULL). */
int trylog_read(struct store *s, const struct trylog_req *r, char **data, size_t *len,
                enum trylog_source *source, char **msg, struct err *e) WARN_UNUSED;

#endif
