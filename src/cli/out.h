/*
 * out.h - what the CLI prints about runs: the run JSON object of SPEC
 * section 3 (shared by `baram run --json` and `baram runs show --json`, so
 * the two cannot differ), and the human tables of `runs list` and
 * `runs show`. Objects are built with jansson from store records. Main
 * thread only.
 */
#ifndef BARAM_CLI_OUT_H
#define BARAM_CLI_OUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/compiler.h"

struct json_t;
struct run_rec;
struct ti_rec;
struct store;

/* The run object: {"dag","run_id","state","type","logical_date","started_at","ended_at",
 * "tasks":{TASK_ID:{"state","tries","exit_code","output","started_at","ended_at",
 * "duration_s"}}}. Times are ISO 8601 UTC with milliseconds or null when unknown; exit_code
 * null when none; output null when none, else its text (invalid UTF-8 replaced by U+FFFD).
 * Returns a new reference. */
struct json_t *out_run_json(const struct run_rec *run, const struct ti_rec *tis, size_t n);

/* A short run object for lists: the run fields above without "tasks", plus "duration_s".
 * New reference. */
struct json_t *out_run_summary_json(const struct run_rec *run);

/* Loads the run and its task instances from s and builds out_run_json. 0 and *out (a new
 * reference), -ENOENT when there is no such run, or ERR_DB. */
int out_run_load(struct store *s, const char *run_id, struct json_t **out) WARN_UNUSED;

/* Writes j as one compact line of JSON plus a newline. 0, or -EIO. */
int out_json_print(FILE *f, const struct json_t *j) WARN_UNUSED;

/* Copies s[0..len) as NUL-terminated valid UTF-8: every invalid sequence (and NUL byte)
 * becomes U+FFFD. malloc'd. */
char *out_utf8_clean(const char *s, size_t len);

/* Formats a duration for people: "0.81s", "12.3s", "2m03s", "1h02m"; "-" when ms < 0.
 * cap >= 16. */
void out_duration(int64_t ms, char *out, size_t cap);

/* s as one shell word: unchanged when it holds only [A-Za-z0-9_.,:/@%+=-], else in single
 * quotes. malloc'd. */
char *out_shell_quote(const char *s);

/* Prints "baram CMD: no run 'RUN_ID'" to f, with a did-you-mean hint among the stored runs
 * (the latest 1000). */
void out_no_such_run(FILE *f, struct store *s, const char *cmd, const char *run_id);

/* Human tables. */
void out_runs_table(FILE *f, const struct run_rec *runs, size_t n);
void out_run_table(FILE *f, const struct run_rec *run, const struct ti_rec *tis, size_t n,
                   const struct json_t *notes);
/* tz part: the same with each run's DAG zone (zones[i] for runs[i], z for the run; NULL: UTC).
 * Runs of a DAG with another zone than UTC get their logical date on its clock too: a LOCAL
 * DATE column ("2026-03-29T03:00+02:00 Europe/Berlin"), a "local" line. */
struct tz;
void out_runs_table_tz(FILE *f, const struct run_rec *runs, size_t n,
                       const struct tz *const *zones);
void out_run_table_tz(FILE *f, const struct run_rec *run, const struct ti_rec *tis, size_t n,
                      const struct json_t *notes, const struct tz *z);

#endif
