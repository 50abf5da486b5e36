/*
 * sched.h - the ready queue and its slots: task instances whose upstream is
 * met wait here until a parallelism slot and a slot of their pool are free.
 * Higher priority first; ties go to the one that became ready first (age).
 *
 * Key idea: one binary heap per pool (pools are few), so a full pool never
 * blocks ready work of another pool, and a dispatch costs O(pools + log n)
 * per started instance. Items are (owner, id) pairs, so one sched can serve
 * many runs on one loop (the daemon): the owner is the run, id its instance.
 *
 * Loop thread only. The sched owns its heaps and pool names.
 */
#ifndef BARAM_SCHED_SCHED_H
#define BARAM_SCHED_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "base/hmap.h"
#include "base/vec.h"

#define SCHED_POOL_DEFAULT_SLOTS 128

/* Starts item id of owner: a slot of the parallelism and of the item's pool is now taken
 * for it; the owner gives both back with sched_done when it has finished. */
typedef void (*sched_start_fn)(void *owner, uint32_t id);

struct sched_item {
    int priority;
    uint64_t age;
    void *owner; /* borrowed */
    uint32_t id;
};

struct sched_pool {
    char *name; /* owned */
    int slots;
    int used;
    VEC(struct sched_item) heap;
};

struct sched {
    int parallelism;
    int running;
    uint64_t next_age;
    sched_start_fn start;
    VEC(struct sched_pool) pools;
    struct hmap by_name; /* pool name -> index; keys borrowed from pools */
    int dispatching;     /* reentrancy guard */
};

void sched_init(struct sched *s, int parallelism, sched_start_fn start);
void sched_release(struct sched *s);
/* The index of the named pool, created with SCHED_POOL_DEFAULT_SLOTS when new. */
uint32_t sched_pool(struct sched *s, const char *name);
/* Sets a pool's slots (creates it when new). */
void sched_pool_set(struct sched *s, const char *name, int slots);
/* Queues an item: it becomes ready now (its age is the order of this call). */
void sched_push(struct sched *s, void *owner, uint32_t id, int priority, uint32_t pool);
/* Starts as many queued items as the free slots allow, best first, through the start
 * callback (which may push or finish items itself). */
void sched_dispatch(struct sched *s);
/* Gives back the slots taken by a started item of the pool. */
void sched_done(struct sched *s, uint32_t pool);
/* Drops every queued item of owner (cancellation). Returns how many. O(queued). */
size_t sched_drop(struct sched *s, void *owner);
/* Number of items waiting. */
size_t sched_queued(const struct sched *s);

#endif
