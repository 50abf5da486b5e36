/*
 * runjson.c - run, task instance and try objects; see runjson.h. Moved here
 * from cli/out.c so that the API (above the daemon layer) and the CLI build
 * the same objects with the same code. Any thread: no state of its own.
 */
#include "ops/runjson.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/tz.h"
#include "base/when.h"
#include "dag/dag.h"
#include "dag/plan.h"
#include "dag/state.h"
#include "store/store.h"

size_t runjson_utf8_seq(const unsigned char *s, size_t n)
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

char *runjson_utf8_clean(const char *s, size_t len)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t k = runjson_utf8_seq(p + i, len - i);
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

json_t *runjson_time(int64_t at_ms)
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

static json_t *text_json(const char *s, size_t len)
{
    if (!s)
        return json_null();
    char *clean = runjson_utf8_clean(s, len);
    json_t *j = json_string(clean);
    free(clean);
    return j;
}

static json_t *str_or_null(const char *s)
{
    return s ? text_json(s, strlen(s)) : json_null();
}

static void set_run_fields(json_t *o, const struct run_rec *run)
{
    json_object_set_new(o, "dag", json_string(run->dag_id ? run->dag_id : ""));
    json_object_set_new(o, "run_id", json_string(run->run_id ? run->run_id : ""));
    json_object_set_new(o, "state", json_string(run_state_name(run->state)));
    json_object_set_new(o, "type", json_string(run_type_name(run->type)));
    json_object_set_new(o, "logical_date", runjson_time(run->logical_at_ms));
    json_object_set_new(o, "started_at", runjson_time(run->started_at_ms));
    json_object_set_new(o, "ended_at", runjson_time(run->ended_at_ms));
}

static json_t *exit_code_json(const struct ti_rec *t)
{
    return t->exit_code >= 0 && t->try_number > 0 ? json_integer(t->exit_code) : json_null();
}

json_t *runjson_run(const struct run_rec *run, const struct ti_rec *tis, size_t n)
{
    json_t *o = json_object();
    set_run_fields(o, run);
    json_t *tasks = json_object();
    for (size_t i = 0; i < n; i++) {
        const struct ti_rec *t = &tis[i];
        json_t *to = json_object();
        json_object_set_new(to, "state", json_string(ti_state_name(t->state)));
        json_object_set_new(to, "tries", json_integer(t->try_number));
        json_object_set_new(to, "exit_code", exit_code_json(t));
        json_object_set_new(to, "output", text_json(t->output, t->output_len));
        json_object_set_new(to, "started_at", runjson_time(t->started_at_ms));
        json_object_set_new(to, "ended_at", runjson_time(t->ended_at_ms));
        json_object_set_new(to, "duration_s", duration_json(t->started_at_ms, t->ended_at_ms));
        if (t->message)
            json_object_set_new(to, "message", str_or_null(t->message));
        if (t->worker)
            json_object_set_new(to, "worker", str_or_null(t->worker));
        json_object_set_new(tasks, t->task_id ? t->task_id : "", to);
    }
    json_object_set_new(o, "tasks", tasks);
    return o;
}

json_t *runjson_summary(const struct run_rec *run)
{
    json_t *o = json_object();
    set_run_fields(o, run);
    json_object_set_new(o, "duration_s", duration_json(run->started_at_ms, run->ended_at_ms));
    return o;
}

int runjson_load(struct store *s, const char *run_id, json_t **out)
{
    struct run_rec run;
    int r = store_get_run(s, run_id, &run, NULL);
    if (r < 0)
        return r;
    struct ti_rec *tis = NULL;
    size_t n = 0;
    r = store_list_tis(s, run_id, &tis, &n, NULL);
    if (r == 0) {
        *out = runjson_run(&run, tis, n);
        store_free_tis(tis, n);
    }
    run_rec_release(&run);
    return r;
}

json_t *runjson_ti(const struct ti_rec *t)
{
    json_t *o = json_object();
    json_object_set_new(o, "task_id", str_or_null(t->task_id));
    json_object_set_new(o, "task", str_or_null(t->task));
    json_object_set_new(o, "map_index",
                        t->map_index >= 0 ? json_integer(t->map_index) : json_null());
    json_object_set_new(o, "state", json_string(ti_state_name(t->state)));
    json_object_set_new(o, "try_number", json_integer(t->try_number));
    json_object_set_new(o, "max_tries", json_integer(t->max_tries));
    json_object_set_new(o, "exit_code", exit_code_json(t));
    json_object_set_new(o, "output", text_json(t->output, t->output_len));
    json_object_set_new(o, "message", str_or_null(t->message));
    json_object_set_new(o, "pool", json_string(t->pool ? t->pool : "default"));
    json_object_set_new(o, "priority", json_integer(t->priority));
    json_object_set_new(o, "scheduled_at", runjson_time(t->scheduled_at_ms));
    json_object_set_new(o, "queued_at", runjson_time(t->queued_at_ms));
    json_object_set_new(o, "started_at", runjson_time(t->started_at_ms));
    json_object_set_new(o, "ended_at", runjson_time(t->ended_at_ms));
    json_object_set_new(o, "duration_s", duration_json(t->started_at_ms, t->ended_at_ms));
    json_object_set_new(o, "worker", str_or_null(t->worker));
    return o;
}

json_t *runjson_try(const struct try_rec *t)
{
    json_t *o = json_object();
    json_object_set_new(o, "try_number", json_integer(t->try_number));
    json_object_set_new(o, "state", json_string(ti_state_name(t->state)));
    json_object_set_new(o, "exit_code",
                        t->exit_code >= 0 ? json_integer(t->exit_code) : json_null());
    json_object_set_new(o, "term_signal", json_integer(t->term_signal));
    json_object_set_new(o, "timed_out", json_boolean(t->timed_out));
    json_object_set_new(o, "queued_at", runjson_time(t->queued_at_ms));
    json_object_set_new(o, "started_at", runjson_time(t->started_at_ms));
    json_object_set_new(o, "ended_at", runjson_time(t->ended_at_ms));
    json_object_set_new(o, "duration_s", duration_json(t->started_at_ms, t->ended_at_ms));
    json_object_set_new(o, "hostname", str_or_null(t->hostname));
    json_object_set_new(o, "pid", t->pid > 0 ? json_integer(t->pid) : json_null());
    json_object_set_new(o, "worker", str_or_null(t->worker));
    return o;
}

int runjson_workers(struct store *s, json_t **out, struct err *e)
{
    *out = NULL;
    struct node_rec *v = NULL;
    size_t n = 0;
    int r = store_list_nodes(s, &v, &n, e);
    if (r < 0)
        return r;
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *queues = json_array();
        for (const char *q = v[i].queues ? v[i].queues : ""; *q;) {
            size_t len = strcspn(q, ",");
            if (len)
                json_array_append_new(queues, json_stringn(q, len));
            q += len + (q[len] == ',');
        }
        json_t *o = json_object();
        json_object_set_new(o, "name", str_or_null(v[i].name));
        json_object_set_new(o, "role", str_or_null(v[i].role));
        json_object_set_new(o, "hostname", str_or_null(v[i].hostname));
        json_object_set_new(o, "pid", json_integer(v[i].pid));
        json_object_set_new(o, "queues", queues);
        json_object_set_new(o, "slots", json_integer(v[i].slots));
        json_object_set_new(o, "running", json_integer(v[i].running));
        json_object_set_new(o, "state", str_or_null(v[i].state));
        json_object_set_new(o, "started_at", runjson_time(v[i].started_at_ms));
        json_object_set_new(o, "heartbeat_at", runjson_time(v[i].heartbeat_at_ms));
        json_array_append_new(a, o);
    }
    store_free_nodes(v, n);
    *out = a;
    return 0;
}

const char *runjson_note(const char *queue, char *buf, size_t n)
{
    snprintf(buf, n, "no active worker listens on queue '%s'", queue ? queue : "default");
    return buf;
}

int runjson_notes(struct store *s, const char *run_id, json_t **notes, struct err *e)
{
    *notes = NULL;
    struct ti_unserved *v = NULL;
    size_t n = 0;
    int r = store_unserved_tis(s, run_id, &v, &n, e);
    if (r < 0)
        return r;
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) {
        char note[256];
        json_object_set_new(o, v[i].task_id,
                            str_or_null(runjson_note(v[i].queue, note, sizeof note)));
    }
    store_free_unserved(v, n);
    *notes = o;
    return 0;
}

/* One task instance object: its "note" when notes has one for id. */
static void set_note(json_t *ti, const char *id, const json_t *notes)
{
    json_t *note = id ? json_object_get(notes, id) : NULL;
    if (note)
        json_object_set(ti, "note", note);
}

void runjson_set_notes(json_t *tasks, const json_t *notes)
{
    if (!tasks || !notes || json_object_size(notes) == 0)
        return;
    if (json_is_array(tasks)) {
        size_t i;
        json_t *ti;
        json_array_foreach(tasks, i, ti)
        {
            set_note(ti, json_string_value(json_object_get(ti, "task_id")), notes);
        }
        return;
    }
    json_t *id = json_object_get(tasks, "task_id");
    if (json_is_string(id)) {
        set_note(tasks, json_string_value(id), notes);
        return;
    }
    const char *key;
    json_t *ti;
    json_object_foreach(tasks, key, ti)
    {
        set_note(ti, key, notes);
    }
}

json_t *runjson_next_run(struct store *s, const struct dag *dag)
{
    if (!dag || !dag->schedule)
        return json_null();
    int64_t last = -1;
    if (!s || store_last_logical(s, dag->id, RUN_SCHEDULED, &last, NULL) < 0)
        last = -1;
    int64_t at = plan_cursor(dag, last, when_now_ms());
    if (at == PLAN_NEVER)
        return json_null();
    json_t *o = json_object();
    int64_t due = plan_due_at(dag, at);
    json_object_set_new(o, "logical_date", runjson_time(at));
    json_object_set_new(o, "due_at", runjson_time(due));
    /* tz: the same instants on the DAG's clock, "2026-03-29T03:00:00+02:00" */
    char local[40];
    tz_format(dag->tz, at, local, sizeof local);
    json_object_set_new(o, "logical_date_local", json_string(local));
    if (due != PLAN_NEVER) {
        tz_format(dag->tz, due, local, sizeof local);
        json_object_set_new(o, "due_at_local", json_string(local));
    } else {
        json_object_set_new(o, "due_at_local", json_null());
    }
    json_object_set_new(o, "timezone", json_string(dag_timezone(dag)));
    return o;
}
