/*
 * out.c - the run JSON object and the human tables; see out.h. One function
 * (out_run_json) builds the object for both `run --json` and `runs show
 * --json`. Task output may be any bytes: it is cleaned to valid UTF-8
 * before it reaches jansson, which rejects anything else. Main thread.
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
#include "base/when.h"
#include "base/xalloc.h"
#include "dag/state.h"
#include "store/store.h"

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c >= 0x01 && c < 0x80)
        return 1;
    size_t len;
    uint32_t min, cp;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, min = 0x80, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, min = 0x800, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

char *out_utf8_clean(const char *s, size_t len)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t k = utf8_seq(p + i, len - i);
        if (k) {
            (void)!buf_add(&b, p + i, k);
            i += k;
        } else {
            (void)!buf_adds(&b, "\xef\xbf\xbd");
            i++;
        }
    }
    return buf_detach(&b, NULL);
}

static json_t *time_json(int64_t at_ms)
{
    if (at_ms < 0)
        return json_null();
    char iso[32];
    when_format_iso(at_ms, iso, sizeof iso);
    return json_string(iso);
}

static json_t *duration_json(int64_t from_ms, int64_t to_ms)
{
    if (from_ms < 0 || to_ms < 0 || to_ms < from_ms)
        return json_null();
    return json_real((double)(to_ms - from_ms) / 1000.0);
}

static void set_run_fields(json_t *o, const struct run_rec *run)
{
    char date[16];
    json_object_set_new(o, "dag", json_string(run->dag_id ? run->dag_id : ""));
    json_object_set_new(o, "run_id", json_string(run->run_id ? run->run_id : ""));
    json_object_set_new(o, "state", json_string(run_state_name(run->state)));
    json_object_set_new(o, "type", json_string(run_type_name(run->type)));
    when_format_date(run->logical_at_ms, date, sizeof date);
    json_object_set_new(o, "logical_date", json_string(date));
    json_object_set_new(o, "started_at", time_json(run->started_at_ms));
    json_object_set_new(o, "ended_at", time_json(run->ended_at_ms));
}

json_t *out_run_json(const struct run_rec *run, const struct ti_rec *tis, size_t n)
{
    json_t *o = json_object();
    set_run_fields(o, run);
    json_t *tasks = json_object();
    for (size_t i = 0; i < n; i++) {
        const struct ti_rec *t = &tis[i];
        json_t *to = json_object();
        json_object_set_new(to, "state", json_string(ti_state_name(t->state)));
        json_object_set_new(to, "tries", json_integer(t->try_number));
        json_object_set_new(to, "exit_code",
                            t->exit_code >= 0 && t->try_number > 0 ? json_integer(t->exit_code)
                                                                   : json_null());
        if (t->output) {
            char *clean = out_utf8_clean(t->output, t->output_len);
            json_object_set_new(to, "output", json_string(clean));
            free(clean);
        } else {
            json_object_set_new(to, "output", json_null());
        }
        json_object_set_new(to, "started_at", time_json(t->started_at_ms));
        json_object_set_new(to, "ended_at", time_json(t->ended_at_ms));
        json_object_set_new(to, "duration_s", duration_json(t->started_at_ms, t->ended_at_ms));
        if (t->message) {
            char *clean = out_utf8_clean(t->message, strlen(t->message));
            json_object_set_new(to, "message", json_string(clean));
            free(clean);
        }
        json_object_set_new(tasks, t->task_id ? t->task_id : "", to);
    }
    json_object_set_new(o, "tasks", tasks);
    return o;
}

json_t *out_run_summary_json(const struct run_rec *run)
{
    json_t *o = json_object();
    set_run_fields(o, run);
    json_object_set_new(o, "duration_s", duration_json(run->started_at_ms, run->ended_at_ms));
    return o;
}

int out_run_load(struct store *s, const char *run_id, json_t **out)
{
    struct run_rec run;
    int r = store_get_run(s, run_id, &run);
    if (r < 0)
        return r;
    struct ti_rec *tis = NULL;
    size_t n = 0;
    r = store_list_tis(s, run_id, &tis, &n);
    if (r == 0) {
        *out = out_run_json(&run, tis, n);
        store_free_tis(tis, n);
    }
    run_rec_release(&run);
    return r;
}

int out_json_print(FILE *f, const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
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
    if (n == 0) {
        fputs("no runs\n", f);
        return;
    }
    int wid = 6, wdag = 3;
    for (size_t i = 0; i < n; i++) {
        wid = max_int(wid, (int)strlen(runs[i].run_id));
        wdag = max_int(wdag, (int)strlen(runs[i].dag_id));
    }
    fprintf(f, "%-*s  %-*s  %-9s  %-9s  %-10s  %-19s  %s\n", wid, "RUN ID", wdag, "DAG", "STATE",
            "TYPE", "DATE", "STARTED", "DURATION");
    for (size_t i = 0; i < n; i++) {
        const struct run_rec *r = &runs[i];
        char date[16], started[32], dur[16];
        when_format_date(r->logical_at_ms, date, sizeof date);
        short_time(r->started_at_ms, started, sizeof started);
        span(r->started_at_ms, r->ended_at_ms, dur, sizeof dur);
        fprintf(f, "%-*s  %-*s  %-9s  %-9s  %-10s  %-19s  %s\n", wid, r->run_id, wdag, r->dag_id,
                run_state_name(r->state), run_type_name(r->type), date, started, dur);
    }
}

void out_run_table(FILE *f, const struct run_rec *run, const struct ti_rec *tis, size_t n)
{
    char date[16], started[32], ended[32], dur[16];
    when_format_date(run->logical_at_ms, date, sizeof date);
    short_time(run->started_at_ms, started, sizeof started);
    short_time(run->ended_at_ms, ended, sizeof ended);
    span(run->started_at_ms, run->ended_at_ms, dur, sizeof dur);
    fprintf(f, "run      %s\ndag      %s\nstate    %s\ntype     %s\ndate     %s\n", run->run_id,
            run->dag_id, run_state_name(run->state), run_type_name(run->type), date);
    fprintf(f, "started  %s\nended    %s\nduration %s\n\n", started, ended, dur);
    int wt = 4;
    for (size_t i = 0; i < n; i++)
        wt = max_int(wt, (int)strlen(tis[i].task_id));
    fprintf(f, "%-*s  %-15s  %5s  %4s  %-19s  %8s  %s\n", wt, "TASK", "STATE", "TRIES", "EXIT",
            "STARTED", "DURATION", "MESSAGE");
    for (size_t i = 0; i < n; i++) {
        const struct ti_rec *t = &tis[i];
        char tries[24], code[16], st[32], d[16];
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
        fprintf(f, "%-*s  %-15s  %5s  %4s  %-19s  %8s  %.*s\n", wt, t->task_id,
                ti_state_name(t->state), tries, code, st, d, mlen, msg);
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
    if (store_list_runs(s, NULL, 1000, 0, &runs, &n, NULL) == 0 && n) {
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
