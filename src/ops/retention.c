/*
 * retention.c - retention passes (retention.h): picks old finished runs in
 * batches (store/retention.h), deletes the batch's rows (or marks its logs
 * removed) in one transaction, then removes the log folders of the runs it
 * changed. The delete checks again that each run is still finished and old:
 * a run a clear queued again after the pick keeps its rows and its logs.
 * The rows go first: a pass that stops between leaves log folders without
 * their run (or logs marked removed), never a run that runs again without
 * its rows or logs.
 */
#define _XOPEN_SOURCE 700
#include "ops/retention.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/fault.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "sched/logpath.h"
#include "store/retention.h"
#include "store/store.h"

/* What the nftw walk of one thread adds up (nftw takes no argument of ours). */
static _Thread_local struct {
    bool dry_run;
    int64_t files, bytes;
} walk;

static int walk_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type == FTW_DP) {
        if (!walk.dry_run)
            (void)rmdir(path);
        return 0;
    }
    if (type == FTW_F || type == FTW_SL || type == FTW_SLN) {
        if (walk.dry_run || unlink(path) == 0) {
            walk.files++;
            walk.bytes += type == FTW_F ? (int64_t)st->st_size : 0;
        }
    }
    return 0;
}

/* Removes (counts, when dry) the log folder of run r under home. */
static void remove_logs(const struct retention_opts *o, const struct retention_run *r,
                        struct retention_counts *c)
{
    /* never a folder above the run's own: an id that is empty or names a path is left */
    if (!*r->dag_id || !*r->run_id || strchr(r->dag_id, '/') || strchr(r->run_id, '/'))
        return;
    char *dir = logpath_run_dir(o->home, r->dag_id, r->run_id);
    walk.dry_run = o->dry_run;
    walk.files = walk.bytes = 0;
    (void)nftw(dir, walk_one, 16, FTW_DEPTH | FTW_PHYS);
    c->log_files += walk.files;
    c->bytes += walk.bytes;
    free(dir);
}

/* Test builds (FP_RETENTION_HOLD): after a pick that found runs, says so on stderr and waits
 * for a line on stdin, so that a test can change those runs before they are deleted. */
static void hold(size_t n)
{
    fprintf(stderr, "retention: FP_RETENTION_HOLD: picked %zu runs\n", n);
    fflush(stderr);
    char line[16];
    (void)!fgets(line, sizeof line, stdin);
}

/* The runs pass (logs false) or the logs pass: batch after batch until one comes back short. */
static int retention_pass(struct store *s, const struct retention_opts *o, bool logs,
                          struct retention_counts *c, struct err *e)
{
    size_t batch = o->batch ? o->batch : RETENTION_BATCH;
    int64_t before = logs ? o->logs_before_ms : o->runs_before_ms;
    int64_t after_ms = 0;
    char *after_id = NULL;
    int r = 0;
    for (;;) {
        struct retention_run *v = NULL;
        size_t n = 0;
        r = store_retention_pick(s, before, logs, after_ms, after_id, batch, &v, &n, e);
        if (r < 0)
            break;
        if (n > 0 && FAULT(FP_RETENTION_HOLD))
            hold(n);
        size_t counted = 0;
        int64_t tis = 0;
        if (o->dry_run) {
            for (size_t i = 0; i < n; i++) {
                /* the runs pass already counted the runs it would delete */
                if (logs && o->runs_before_ms > 0 && v[i].ended_at_ms < o->runs_before_ms)
                    continue;
                remove_logs(o, &v[i], c);
                counted++;
            }
            r = logs ? 0 : store_retention_count_tis(s, v, n, &tis, e);
        } else {
            r = logs ? store_retention_logs_done(s, v, n, before, when_now_ms(), e)
                     : store_retention_delete(s, v, n, before, &tis, e);
            for (size_t i = 0; i < n && r == 0; i++) /* only the runs whose rows changed */
                if (v[i].done) {
                    remove_logs(o, &v[i], c);
                    counted++;
                }
        }
        if (r == 0) {
            if (logs)
                c->log_runs += (int64_t)counted;
            else
                c->runs += (int64_t)counted, c->tis += tis;
        }
        if (n > 0) {
            free(after_id);
            after_id = xstrdup(v[n - 1].run_id);
            after_ms = v[n - 1].ended_at_ms;
        }
        store_free_retention_runs(v, n);
        if (r < 0 || n < batch || !after_id)
            break;
    }
    free(after_id);
    return r;
}

int ops_retention(struct store *s, const struct retention_opts *o, struct retention_counts *c,
                  bool *skipped, struct err *e)
{
    *skipped = false;
    bool got = false;
    int r = store_retention_lock(s, &got, e);
    if (r < 0)
        return r;
    if (!got) {
        *skipped = true;
        return 0;
    }
    if (o->runs_before_ms > 0)
        r = retention_pass(s, o, false, c, e);
    if (r == 0 && o->logs_before_ms > 0)
        r = retention_pass(s, o, true, c, e);
    store_retention_unlock(s);
    return r;
}
