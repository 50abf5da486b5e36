/*
 * profile.h - where a run's time went (`baram runs profile`): the critical
 * path, and the parallelism reached. A pure computation on a timeline, so it
 * can be tested on synthetic data.
 *
 * The critical path is the chain of tasks that set the run's length: start
 * at the leaf (a task without downstream) that ended last, then repeatedly
 * step to the upstream task that ended last (the one that released it),
 * until a root. Instances of a mapped task count as their task: the task
 * spans from its first instance's start to its last instance's end.
 *
 * Parallelism: the maximum number of instances running at once (a sweep
 * over their [started, ended) intervals), and the average, the sum of run
 * times over the wall time. Any thread; no shared state.
 */
#ifndef BARAM_CLI_PROFILE_H
#define BARAM_CLI_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

struct graph;

/* One task instance's timeline; -1 for an unknown time. */
struct profile_ti {
    uint32_t task; /* vertex of the task in the graph */
    int64_t queued_at_ms;
    int64_t started_at_ms;
    int64_t ended_at_ms;
};

/* Per task (instances merged). */
struct profile_task {
    int64_t queued_at_ms;  /* earliest of its instances, or -1 */
    int64_t started_at_ms; /* earliest, or -1 */
    int64_t ended_at_ms;   /* latest, or -1 (unknown if any instance has not ended) */
    uint32_t ninstances;
};

struct profile {
    uint32_t ntasks;
    struct profile_task *tasks; /* owned, ntasks entries (graph vertices) */
    uint32_t *path;             /* owned: critical path, task vertices, root first */
    size_t npath;
    int64_t begin_at_ms; /* run start (or the earliest instance start) */
    int64_t end_at_ms;   /* run end (or the latest instance end) */
    int64_t wall_ms;     /* end - begin, 0 when unknown */
    int64_t sum_run_ms;  /* sum of instance run times */
    int64_t sum_wait_ms; /* sum of instance waits (queued -> started) */
    uint32_t max_parallel;
    double avg_parallel; /* sum_run_ms / wall_ms; 0 when wall_ms is 0 */
};

/* Computes the profile of n instances over graph g (edges upstream -> downstream between
 * tasks). run_started_at_ms / run_ended_at_ms bound the wall time when known (else -1: the
 * instances' extent is used). 0, or -EINVAL when an instance names a task >= g->n. */
int profile_compute(const struct graph *g, const struct profile_ti *tis, size_t n,
                    int64_t run_started_at_ms, int64_t run_ended_at_ms,
                    struct profile *out) WARN_UNUSED;
void profile_release(struct profile *p);

#endif
