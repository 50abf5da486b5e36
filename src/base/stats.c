/*
 * stats.c - the process-wide counters and the commit bell (see stats.h).
 * The bell is a counter under a mutex with a condition variable; waiters
 * use a monotonic-clock timed wait.
 */
#include "base/stats.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

const double stats_lat_bounds_s[STATS_LAT_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                      0.01,   0.025,   0.05,   0.1,   0.5,    1.0};

struct stats stats_g;

static pthread_mutex_t stats_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stats_cond;
static pthread_once_t stats_once = PTHREAD_ONCE_INIT;
static uint64_t stats_bell_n;

static void stats_init(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&stats_cond, &a);
    pthread_condattr_destroy(&a);
}

void stats_note_latency_ns(int64_t ns)
{
    if (ns < 0)
        ns = 0;
    double s = (double)ns / 1e9;
    size_t b = 0;
    while (b < STATS_LAT_BUCKETS && s > stats_lat_bounds_s[b])
        b++;
    atomic_fetch_add_explicit(&stats_g.lat_bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&stats_g.lat_count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&stats_g.lat_sum_ns, (uint64_t)ns, memory_order_relaxed);
}

void stats_ring(void)
{
    pthread_once(&stats_once, stats_init);
    pthread_mutex_lock(&stats_mu);
    stats_bell_n++;
    pthread_cond_broadcast(&stats_cond);
    pthread_mutex_unlock(&stats_mu);
}

uint64_t stats_bell(void)
{
    pthread_once(&stats_once, stats_init);
    pthread_mutex_lock(&stats_mu);
    uint64_t n = stats_bell_n;
    pthread_mutex_unlock(&stats_mu);
    return n;
}

uint64_t stats_wait(uint64_t seen, int timeout_ms)
{
    pthread_once(&stats_once, stats_init);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&stats_mu);
    while (stats_bell_n == seen) {
        int rc = pthread_cond_timedwait(&stats_cond, &stats_mu, &until);
        if (rc == ETIMEDOUT)
            break;
    }
    uint64_t n = stats_bell_n;
    pthread_mutex_unlock(&stats_mu);
    return n;
}
