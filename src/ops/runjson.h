/*
 * runjson.h - the JSON objects that describe runs, task instances and
 * tries, built with jansson from store records. One builder serves every
 * reader: the run object of SPEC section 3 (`baram run --json`, `runs show
 * --json`, GET /api/v1/dags/{dag}/runs/{run}) and the task instance and try
 * objects of the REST API, so the CLI and the API cannot drift apart.
 *
 * Pure functions of their records (runjson_load reads the store given):
 * any thread, each call on its own records and connection. Task output may
 * be any bytes: it is cleaned to valid UTF-8 before it reaches jansson,
 * which rejects anything else.
 */
#ifndef BARAM_OPS_RUNJSON_H
#define BARAM_OPS_RUNJSON_H

#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"
#include "dag/params.h"
#include "sched/run.h"

struct dag;
struct json_t;
struct run_rec;
struct ti_rec;
struct try_rec;
struct store;

/* How every JSON answer and line is dumped: compact, reals as PARAMS_JSON_REALS (dag/params.h)
 * says, so 5 ms reads 0.005. Expands where <jansson.h> is included. */
#define RUNJSON_DUMP_FLAGS (JSON_COMPACT | PARAMS_JSON_REALS)

/* The run object: {"dag","run_id","state","type","logical_date","started_at","ended_at",
 * "tasks":{TASK_ID:{"state","tries","exit_code","output","started_at","ended_at",
 * "duration_s"[,"message"][,"worker"]}}} (worker: the worker of its current try, only when a
 * worker ran it). Times, the logical date among them (an hourly DAG has 24 a
 * day), are ISO 8601 UTC with milliseconds or null when unknown;
 * exit_code null when none; output null when none, else its text (invalid UTF-8 replaced by
 * U+FFFD). Returns a new reference. */
struct json_t *runjson_run(const struct run_rec *run, const struct ti_rec *tis, size_t n);

/* A short run object for lists: the run fields above without "tasks", plus "duration_s".
 * New reference. */
struct json_t *runjson_summary(const struct run_rec *run);

/* Loads the run and its task instances from s and builds runjson_run. 0 and *out (a new
 * reference), -ENOENT when there is no such run, or ERR_DB. */
int runjson_load(struct store *s, const char *run_id, struct json_t **out) WARN_UNUSED;

/* A task instance for the API: {"task_id","task","map_index","state","try_number",
 * "max_tries","exit_code","output","message","pool","priority","scheduled_at","queued_at",
 * "started_at","ended_at","duration_s","worker"} (worker: the name of the worker that runs or
 * ran its current try, or null). New reference. */
struct json_t *runjson_ti(const struct ti_rec *t);

/* A try: {"try_number","state","exit_code","term_signal","timed_out","queued_at",
 * "started_at","ended_at","duration_s","hostname","pid","worker"} (worker: the name of the
 * worker that ran it, or null). New reference. */
struct json_t *runjson_try(const struct try_rec *t);

/* When the scheduler makes the DAG's next scheduled run (plan.h, from its newest scheduled
 * run in s): {"logical_date","due_at"} in UTC, the same on the DAG's clock
 * ("logical_date_local","due_at_local", "2026-03-29T03:00:00+02:00") and its "timezone", or null
 * (no schedule, or the schedule is over). The one computation behind the API's DAG object and
 * `baram dags show`. New reference. */
struct json_t *runjson_next_run(struct store *s, const struct dag *dag);

/* The registry's schedulers and workers (store_list_nodes) as SPEC section 12 shows them:
 * 0 and *out, a new array of {"name","role","hostname","pid","queues" (a list),"slots",
 * "running","state","started_at","heartbeat_at"}, or a negative code with *e filled. The
 * one list behind `baram workers list` and GET /api/v1/workers. */
struct err;
int runjson_workers(struct store *s, struct json_t **out, struct err *e) WARN_UNUSED;

/* The note of a task instance that waits on a queue no active worker listens on (SPEC section
 * 12): "no active worker listens on queue 'Q'", into buf (truncated to n, n >= 1); buf. */
const char *runjson_note(const char *queue, char *buf, size_t n);

/* The notes of run_id's task instances (store_unserved_tis: PostgreSQL only): 0 and *notes, a
 * new object {TASK_ID: NOTE} ({} when none), or a negative code with *e filled. */
int runjson_notes(struct store *s, const char *run_id, struct json_t **notes,
                  struct err *e) WARN_UNUSED;

/* Sets "note" from notes on the task instance objects of tasks that notes names: tasks is the
 * run object's "tasks" (an object by task id), an array of runjson_ti objects, or one
 * runjson_ti object. The others are left without "note". */
void runjson_set_notes(struct json_t *tasks, const struct json_t *notes);

/* An ISO 8601 time, or null when at_ms < 0. New reference. */
struct json_t *runjson_time(int64_t at_ms);

/* Copies s[0..len) as NUL-terminated valid UTF-8: every invalid sequence (and NUL byte)
 * becomes U+FFFD. malloc'd. */
char *runjson_utf8_clean(const char *s, size_t len);

/* Length of the valid UTF-8 sequence at s (n > 0 bytes left), or 0 when invalid (a NUL byte
 * is invalid here). */
size_t runjson_utf8_seq(const unsigned char *s, size_t n);

#endif
