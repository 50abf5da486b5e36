/*
 * worker_int.h - what worker.c (registration, heartbeats, claims, the
 * reports of ends) and wtry.c (one claimed try: its process, request or
 * wait) share. Loop thread only.
 */
#ifndef BARAM_WORKER_WORKER_INT_H
#define BARAM_WORKER_WORKER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/vec.h"
#include "exec/tryspec.h"
#include "sched/run_int.h"

struct httptask_client;
struct listener;
struct logserve;
struct spawn;
struct httptask;
struct waiter;
struct store;
struct wq_kill;

/* A claimed try, from its claim to its end. */
struct wtry {
    struct worker *w;
    struct wtry *prev, *next;
    char *run_id, *task_id; /* owned: the ti_queue row's key */
    int try_number;
    struct tryspec spec; /* decoded when have_spec */
    bool have_spec;
    char *log_path, *out_path, *cmd_file; /* owned; NULL when unknown or not a process */
    bool read_output; /* its end reads out_path (on the thread pool, with the log) */
    struct spawn *sp; /* whichever runs it, until its callback */
    struct httptask *ht;
    struct waiter *wt;
    bool holds_slot; /* a process or a request; a wait holds none */
    bool killing;    /* wtry_kill was called */
    bool drop;       /* its end is not reported (the worker was declared dead) */
    bool held;       /* its end waits for a good heartbeat (killed for lack of one) */
    char *kill_note; /* owned: why the worker killed it, for its log */
};

/* What the claim's thread-pool job prepares for a claimed try, so that the loop does no file
 * I/O for it: the spec decoded, the log folder made, a stale output file removed. */
struct wtry_prep {
    struct tryspec spec; /* owned when have_spec */
    bool have_spec;
    char *msg;    /* owned: why the spec cannot be read (have_spec false), or NULL */
    int mkdir_rc; /* 0, or why the log folder could not be made */
    char *log_path, *out_path, *cmd_file; /* owned (out_path and cmd_file: run tries) */
};

/* An end waiting to be reported (wq_finish). */
struct wend {
    char *run_id, *task_id; /* owned */
    int try_number;
    struct run_try_end e; /* owns its output and message */
    char *out_path;       /* owned, or NULL: the $BARAM_OUTPUT to read on the thread pool */
    char *log_path;       /* owned, or NULL: read and cut on the thread pool */
    char *log;            /* owned: what the store keeps, filled on the pool */
    size_t log_len;
};

struct worker {
    uv_loop_t *loop;
    char *url, *home, *name, *hostname, *log_url; /* owned */
    char *home_abs; /* owned: the home made absolute, registered (workers.home) */
    char *home_tag; /* owned: "BARAM_WORKER_HOME=<home_abs>", in each try's environment */
    char **queues;  /* owned */
    size_t nqueues;
    int slots;
    int64_t heartbeat_ms, dead_after_ms, grace_ms, store_max;
    void (*stopped)(void *ud, int rc);
    void *ud;

    /* One connection per kind of call, each used by one call at a time on the pool. */
    struct store *st_claim, *st_fin, *st_hb;
    int64_t id; /* workers.id; 0 while not registered */
    struct listener *lis;
    struct logserve *ls;          /* the log server (--listen), or NULL */
    struct httptask_client *http; /* made on the first request or url wait */

    uv_timer_t tick, hb, fin, grace;
    int nhandles; /* open handles: freed when the last one closes */

    bool setup_busy, reg_busy, claim_busy, claim_again, hb_busy, hb_again, fin_busy, stop_busy;
    bool claim_failing, hb_failing, fin_failing;
    int64_t good_hb_ns; /* monotonic start of the last heartbeat that succeeded */
    bool fenced;        /* no good heartbeat for 3/4 dead_after: tries killed, no claims */
    bool draining, grace_over, closing;
    int rc; /* what stopped() gets */

    struct wtry *tries;
    size_t ntries;
    int nrun; /* tries holding a slot */
    VEC(struct wend) pending, held;
    const struct wend *fin_v; /* the batch the finish in flight reports (fin_n), or NULL */
    size_t fin_n;
    struct wq_kill *unknown; /* running rows of the last heartbeat it did not know (nunknown) */
    size_t nunknown;
};

/* Prepares a claimed try from its spec (the claim's thread-pool job; home is the worker's). */
void wtry_prepare(const char *home, const char *spec, struct wtry_prep *p);
void wtry_prep_release(struct wtry_prep *p);
/* Starts claimed row c (its strings and what p holds are taken): the try runs, or ends at once
 * when its spec cannot be read, its log folder made or its process started. */
void wtry_start(struct worker *w, char *run_id, char *task_id, int try_number, struct wtry_prep *p);
/* Kills t (SIGTERM then SIGKILL after its grace; a request or wait is cancelled); note (copied,
 * may be NULL) goes to its log. Its end still comes. Idempotent. */
void wtry_kill(struct wtry *t, const char *note);
/* Finds the running try of that key, or NULL. */
struct wtry *wtry_find(struct worker *w, const char *run_id, const char *task_id, int try_number);
/* Reads the log at path as the store keeps it: all of it up to store_max bytes, else its last
 * store_max bytes after a line saying how many were cut. Thread pool. */
void wtry_read_log(const char *path, int64_t store_max, char **log, size_t *len);

/* worker.c: a try ended (its end e is taken): reported, held or dropped as t says; t is
 * freed. */
void worker__try_ended(struct worker *w, struct wtry *t, struct run_try_end *e);

#endif
