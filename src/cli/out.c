/*
 * out.c - the run JSON object and the human tables; see out.h. The JSON
 * objects are built by ops/runjson.c (shared with the REST API): the
 * out_run_* functions are thin names for them, so `run --json`, `runs show
 * --json` and the API cannot differ. Main thread.
 */
#include "cli/out.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/suggest.h"
#include "base/tz.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "dag/state.h"
#include "ops/runjson.h"
#include "store/store.h"

char *out_utf8_clean(const char *s, size_t len)
{
    return runjson_utf8_clean(s, len);
}

json_t *out_run_json(const struct run_rec *run, const struct ti_rec *tis, size_t n)
{
    return runjson_run(run, tis, n);
}

json_t *out_run_summary_json(const struct run_rec *run)
{
    return runjson_summary(run);
}

int out_run_load(struct store *s, const char *run_id, json_t **out)
{
    return runjson_load(s, run_id, out);
}

int out_json_print(FILE *f, const json_t *j)
{
    char *s = json_dumps(j, RUNJSON_DUMP_FLAGS);
    if (!s)
        return -EIO;
    int r = fputs(s, f) < 0 || fputc('\n', f) < 0 ? -EIO : 0;
    free(s);
    if (fflush(f) != 0)
        r = -EIO;
    return r;
}

void out_duration(int64_t ms, char *out, size_t cap)
{
    if (ms < 0)
        snprintf(out, cap, "-");
    else if (ms < 10 * 1000)
        snprintf(out, cap, "%.2fs", (double)ms / 1000.0);
    else if (ms < 60 * 1000)
        snprintf(out, cap, "%.1fs", (double)ms / 1000.0);
    else if (ms < 3600 * 1000)
        snprintf(out, cap, "%dm%02ds", (int)(ms / 60000), (int)(ms / 1000 % 60));
    else
        snprintf(out, cap, "%dh%02dm", (int)(ms / 3600000), (int)(ms / 60000 % 60));
}

static void span(int64_t from, int64_t to, char *out, size_t cap)
{
    out_duration(from >= 0 && to >= from ? to - from : -1, out, cap);
}

/* "2026-11-29 03:00:00" or "-" */
static void short_time(int64_t at_ms, char *out, size_t cap)
{
    if (at_ms < 0) {
        snprintf(out, cap, "-");
        return;
    }
    char iso[32];
    when_format_iso(at_ms, iso, sizeof iso);
    iso[10] = ' ';
    iso[19] = 0;
    snprintf(out, cap, "%s", iso);
}

static int max_int(int a, int b)
{
    return a > b ? a : b;
}

void out_runs_table(FILE *f, const struct run_rec *runs, size_t n)
{
    out_runs_table_tz(f, runs, n, NULL);
}

/* "2026-03-29T03:00+02:00 Europe/Berlin" for a run's logical date in zone z; "" for UTC. */
static void local_date(const struct tz *z, int64_t at_ms, char *out, size_t cap)
{
    out[0] = 0;
    if (!z || strcmp(tz_name(z), "UTC") == 0 || at_ms < 0)
        return;
    char iso[40];
    tz_format(z, at_ms, iso, sizeof iso);
    snprintf(out, cap, "%.16s%s %s", iso, iso + 19, tz_name(z));
}

void out_runs_table_tz(FILE *f, const struct run_rec *runs, size_t n, const struct tz *const *zones)
{
    if (n == 0) {
        fputs("no runs\n", f);
        return;
    }
    int wid = 6, wdag = 3, wlocal = 0;
    char local[TZ_NAME_MAX + 40];
    for (size_t i = 0; i < n; i++) {
        wid = max_int(wid, (int)strlen(runs[i].run_id));
        wdag = max_int(wdag, (int)strlen(runs[i].dag_id));
        local_date(zones ? zones[i] : NULL, runs[i].logical_at_ms, local, sizeof local);
        if (local[0])
            wlocal = max_int(max_int(wlocal, 10), (int)strlen(local));
    }
    fprintf(f, "%-*s  %-*s  %-9s  %-9s  %-10s  ", wid, "RUN ID", wdag, "DAG", "STATE", "TYPE",
            "DATE");
    if (wlocal)
        fprintf(f, "%-*s  ", wlocal, "LOCAL DATE");
    fprintf(f, "%-19s  %s\n", "STARTED", "DURATION");
    for (size_t i = 0; i < n; i++) {
        const struct run_rec *r = &runs[i];
        char date[16], started[32], dur[16];
        when_format_date(r->logical_at_ms, date, sizeof date);
        short_time(r->started_at_ms, started, sizeof started);
        span(r->started_at_ms, r->ended_at_ms, dur, sizeof dur);
        fprintf(f, "%-*s  %-*s  %-9s  %-9s  %-10s  ", wid, r->run_id, wdag, r->dag_id,
                run_state_name(r->state), run_type_name(r->type), date);
        if (wlocal) {
            local_date(zones ? zones[i] : NULL, r->logical_at_ms, local, sizeof local);
            fprintf(f, "%-*s  ", wlocal, local[0] ? local : "-");
        }
        fprintf(f, "%-19s  %s\n", started, dur);
    }
}

/* The STATE cell of an instance: its state, then its note (notes: runjson_notes) if any. */
static void state_cell(const struct ti_rec *t, const json_t *notes, char *out, size_t cap)
{
    const char *note = json_string_value(json_object_get(notes, t->task_id));
    if (note)
        snprintf(out, cap, "%s (%s)", ti_state_name(t->state), note);
    else
        snprintf(out, cap, "%s", ti_state_name(t->state));
}

void out_run_table(FILE *f, const struct run_rec *run, const struct ti_rec *tis, size_t n,
                   const json_t *notes)
{
    out_run_table_tz(f, run, tis, n, notes, NULL);
}

void out_run_table_tz(FILE *f, const struct run_rec *run, const struct ti_rec *tis, size_t n,
                      const json_t *notes, const struct tz *z)
{
    char date[16], started[32], ended[32], dur[16];
    when_format_date(run->logical_at_ms, date, sizeof date);
    short_time(run->started_at_ms, started, sizeof started);
    short_time(run->ended_at_ms, ended, sizeof ended);
    span(run->started_at_ms, run->ended_at_ms, dur, sizeof dur);
    fprintf(f, "run      %s\ndag      %s\nstate    %s\ntype     %s\ndate     %s\n", run->run_id,
            run->dag_id, run_state_name(run->state), run_type_name(run->type), date);
    char local[TZ_NAME_MAX + 40];
    local_date(z, run->logical_at_ms, local, sizeof local);
    if (local[0])
        fprintf(f, "local    %s\n", local);
    fprintf(f, "started  %s\nended    %s\nduration %s\n\n", started, ended, dur);
    int wt = 4, ws = 15, ww = 0; /* ww: the WORKER column, shown when a worker ran a try */
    char cell[320];
    for (size_t i = 0; i < n; i++) {
        wt = max_int(wt, (int)strlen(tis[i].task_id));
        state_cell(&tis[i], notes, cell, sizeof cell);
        ws = max_int(ws, (int)strlen(cell));
        if (tis[i].worker)
            ww = max_int(max_int(ww, 6), (int)strlen(tis[i].worker));
    }
    fprintf(f, "%-*s  %-*s  ", wt, "TASK", ws, "STATE");
    if (ww)
        fprintf(f, "%-*s  ", ww, "WORKER");
    fprintf(f, "%5s  %4s  %-19s  %8s  %s\n", "TRIES", "EXIT", "STARTED", "DURATION", "MESSAGE");
    for (size_t i = 0; i < n; i++) {
        const struct ti_rec *t = &tis[i];
        char tries[24], code[16], st[32], d[16];
        state_cell(t, notes, cell, sizeof cell);
        snprintf(tries, sizeof tries, "%d/%d", t->try_number, t->max_tries);
        if (t->exit_code >= 0 && t->try_number > 0)
            snprintf(code, sizeof code, "%d", t->exit_code);
        else
            snprintf(code, sizeof code, "-");
        short_time(t->started_at_ms, st, sizeof st);
        span(t->started_at_ms, t->ended_at_ms, d, sizeof d);
        const char *msg = t->message ? t->message : "";
        /* Keep the table one line per task: cut a message at its first newline. */
        int mlen = (int)strcspn(msg, "\n");
        fprintf(f, "%-*s  %-*s  ", wt, t->task_id, ws, cell);
        if (ww)
            fprintf(f, "%-*s  ", ww, t->worker ? t->worker : "-");
        fprintf(f, "%5s  %4s  %-19s  %8s  %.*s\n", tries, code, st, d, mlen, msg);
    }
}

char *out_shell_quote(const char *s)
{
    bool plain = *s != 0;
    for (const char *p = s; *p; p++)
        plain &= (isalnum((unsigned char)*p) || strchr("_.,:/@%+=-", *p)) != 0;
    if (plain)
        return xstrdup(s);
    struct buf b = BUF_INIT(BUF_NO_MAX);
    (void)!buf_addc(&b, '\'');
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            (void)!buf_adds(&b, "'\\''");
        else
            (void)!buf_addc(&b, *p);
    }
    (void)!buf_addc(&b, '\'');
    return buf_detach(&b, NULL);
}

void out_no_such_run(FILE *f, struct store *s, const char *cmd, const char *run_id)
{
    struct run_rec *runs = NULL;
    size_t n = 0;
    const char *near = NULL;
    const char **ids = NULL;
    if (store_list_runs(s, NULL, 1000, 0, &runs, &n, NULL, NULL) == 0 && n) {
        ids = xcalloc(n, sizeof *ids);
        for (size_t i = 0; i < n; i++)
            ids[i] = runs[i].run_id;
        near = suggest_closest(run_id, ids, n);
    }
    if (near)
        fprintf(f, "baram %s: no run '%s' (did you mean '%s'?)\n", cmd, run_id, near);
    else
        fprintf(f, "baram %s: no run '%s'; see 'baram runs list'\n", cmd, run_id);
    free(ids);
    store_free_runs(runs, n);
}
