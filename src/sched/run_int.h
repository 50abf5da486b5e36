/*
 * run_int.h - what run.c offers the engine (engine.c) and nobody else: the
 * two halves of a run's pump, and the engine's events passed to each run.
 * Loop thread only.
 */
#ifndef BARAM_SCHED_RUN_INT_H
#define BARAM_SCHED_RUN_INT_H

#include <stdint.h>

struct engine;
struct run;

/* The ready queue's start callback (sched.h): a slot is taken for instance id of run owner. */
void run_sched_start(void *owner, uint32_t id);

/* Decides the run's worklist and releases its gated instances (before a dispatch). */
void run_pump_work(struct run *r);
/* Records the instances made ready, then checks whether the run has ended. */
void run_pump_after(struct run *r);
/* The store's durable sequence number advanced (engine->durable). */
void run_durable(struct run *r);
/* The store failed for good: the run fails and stops its work. */
void run_store_failed(struct run *r, const char *msg);
/* Submits instance inst's delayed 'running' records if still pending. */
void run_flush_running_rec(struct run *r, uint32_t inst);
/* The run has ended: calls its owner's callback (from the engine's ended timer). */
void run_report_ended(struct run *r);
/* The next live run of the engine after r (NULL at the end). */
struct run *run_next_live(struct run *r);

/* What engine.c offers run.c: */
/* Queues instance inst's 'running' records for the delayed flush. */
void engine_pend_running(struct engine *e, struct run *r, uint32_t inst);
/* The run is being freed: drop every reference the engine holds to it. */
void engine_forget_run(struct engine *e, struct run *r);
/* A process started latency_ns after its instance became ready (statistics). */
void engine_note_latency(struct engine *e, int64_t latency_ns);
/* The run has ended: report it to its owner soon (run_report_ended). */
void engine_run_ended(struct engine *e, struct run *r);

#endif
