/*
 * hoststats.c - the per-host gauges table; see hoststats.h. One static table
 * and one mutex: a process-wide global like sched/metrics.c's series,
 * because /metrics readers (API threads) must not reach into the loop's
 * objects, which a stopping engine frees. Written by loop threads (each
 * change is a short critical section), read by any thread.
 */
#include "exec/hoststats.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t hoststats_mu = PTHREAD_MUTEX_INITIALIZER;
static struct hoststats_row hoststats_rows[HOSTSTATS_MAX]; /* under hoststats_mu */
static size_t hoststats_n;                                 /* under hoststats_mu */
static uint64_t hoststats_untracked;                       /* under hoststats_mu */

int hoststats_slot(const char *key)
{
    int slot = -1;
    pthread_mutex_lock(&hoststats_mu);
    for (size_t i = 0; i < hoststats_n; i++) {
        if (strncmp(hoststats_rows[i].key, key, HOSTSTATS_KEY_MAX - 1) == 0) {
            slot = (int)i;
            goto out;
        }
    }
    if (hoststats_n == HOSTSTATS_MAX) {
        hoststats_untracked++;
        goto out;
    }
    struct hoststats_row *row = &hoststats_rows[hoststats_n];
    snprintf(row->key, sizeof(row->key), "%s", key);
    row->in_flight = row->queued = 0;
    row->circuit = HOSTSTATS_NO_CIRCUIT;
    slot = (int)hoststats_n++;
out:
    pthread_mutex_unlock(&hoststats_mu);
    return slot;
}

void hoststats_update(int slot, int64_t d_in_flight, int64_t d_queued, int circuit)
{
    if (slot < 0 || slot >= HOSTSTATS_MAX)
        return;
    pthread_mutex_lock(&hoststats_mu);
    struct hoststats_row *row = &hoststats_rows[slot];
    row->in_flight += d_in_flight;
    row->queued += d_queued;
    row->circuit = circuit;
    pthread_mutex_unlock(&hoststats_mu);
}

size_t hoststats_snapshot(struct hoststats_row *rows, size_t cap, uint64_t *untracked)
{
    pthread_mutex_lock(&hoststats_mu);
    size_t n = hoststats_n < cap ? hoststats_n : cap;
    memcpy(rows, hoststats_rows, n * sizeof(*rows));
    *untracked = hoststats_untracked;
    pthread_mutex_unlock(&hoststats_mu);
    return n;
}
