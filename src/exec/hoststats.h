/*
 * hoststats.h - per-host gauges of http tasks and waits for /metrics (SPEC
 * sections 7 and 10): requests in flight and queued for a slot, and the
 * state of the host's circuit breaker.
 *
 * The loop owns the hosts and their breakers (httptask.c); the API's threads
 * serve /metrics. They never read loop state: the loop publishes each
 * change into this process-wide table under a mutex (a few integers, O(1)
 * per change), and a reader copies the table under the same mutex. Counts
 * are published as deltas, so several clients in one process add up and a
 * freed client leaves zeros behind.
 *
 * At most HOSTSTATS_MAX hosts are tracked (the series of /metrics stay
 * bounded however many hosts DAGs name); later hosts are counted in
 * `untracked` and not shown. Slots are never freed. Any thread.
 */
#ifndef BARAM_EXEC_HOSTSTATS_H
#define BARAM_EXEC_HOSTSTATS_H

#include <stddef.h>
#include <stdint.h>

#define HOSTSTATS_MAX     256
#define HOSTSTATS_KEY_MAX 256 /* a longer host key is cut */

#define HOSTSTATS_NO_CIRCUIT (-1)

struct hoststats_row {
    char key[HOSTSTATS_KEY_MAX]; /* "scheme://host:port" */
    int64_t in_flight;
    int64_t queued;
    int circuit; /* enum circuit_state, or HOSTSTATS_NO_CIRCUIT */
};

/* The slot of host key (registering it): >= 0, or -1 when the table is full (then the host is
 * counted as untracked once). */
int hoststats_slot(const char *key);

/* Adds to a slot's counts and sets its breaker state. slot < 0 is a no-op. */
void hoststats_update(int slot, int64_t d_in_flight, int64_t d_queued, int circuit);

/* Copies up to cap rows (in registration order) into rows: how many. *untracked: hosts seen
 * beyond HOSTSTATS_MAX. */
size_t hoststats_snapshot(struct hoststats_row *rows, size_t cap, uint64_t *untracked);

#endif
