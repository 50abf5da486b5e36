/*
 * routes_ops.c - the API's state operations and audit log (SPEC section
 * 13): mark a task instance or a run success or failed, clear a DAG's runs
 * over a date range, backfill (operator), read the audit log (admin).
 *
 * As routes_write.c: each handler checks its body (only the route's
 * fields, then their types and values: a bad one is 400 naming the field,
 * and nothing is changed or recorded), then calls the same function of
 * ops/ops.h as the CLI command on this thread's store, then records the
 * change in the audit log (ops/audit.h) under the caller's name. An ops
 * error's kind gives the status (api_ops_problem). Handlers run on the
 * server's threads and keep no state between requests.
 */
#include "api/api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/hub.h"
#include "base/log.h"
#include "base/when.h"
#include "dag/state.h"
#include "ops/audit.h"
#include "ops/ops.h"
#include "store/store.h"

/* The most runs one backfill request may queue: more is a 400 saying so. */
#define API_BACKFILL_MAX 1000

void api_audit(struct api_req *rq, const char *action, const char *dag_id, const char *run_id,
               const char *task_id, json_t *details)
{
    struct audit_who who;
    audit_who_api(&who, rq->user.name);
    if (rq->store)
        (void)audit_record(rq->store, &who, action, dag_id, run_id, task_id, details);
    else
        json_decref(details);
}

static void changed(struct api_req *rq)
{
    if (rq->opts->hub)
        hub_notify(rq->opts->hub); /* its events are in the log: the hub reads them now */
}

/* "success" or "failed" in body's field "state": 0 and *success, or -1 after a 400. */
static int state_field(struct api_resp *rs, json_t *body, bool *success)
{
    json_t *v = json_object_get(body, "state");
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (s && strcmp(s, "success") == 0) {
        *success = true;
        return 0;
    }
    if (s && strcmp(s, "failed") == 0) {
        *success = false;
        return 0;
    }
    api_problem(rs, 400, "Bad Request",
                "field 'state' must be \"success\" or \"failed\" (and is required)");
    return -1;
}

/* An optional boolean field: 0 (false when absent), or -1 after a 400. */
static int bool_field(struct api_resp *rs, json_t *body, const char *name, bool *out)
{
    json_t *v = json_object_get(body, name);
    *out = v && json_is_true(v);
    if (v && !json_is_boolean(v) && !json_is_null(v)) {
        api_problem(rs, 400, "Bad Request", "field '%s' must be a boolean", name);
        return -1;
    }
    return 0;
}

/* A required date field: 0 and *ms, or -1 after a 400. */
static int date_field(struct api_resp *rs, json_t *body, const char *name, int64_t *ms,
                      const char **text)
{
    json_t *v = json_object_get(body, name);
    if (!json_is_string(v)) {
        api_problem(rs, 400, "Bad Request",
                    "field '%s' must be a date string (YYYY-MM-DD or ISO 8601 UTC) and is "
                    "required",
                    name);
        return -1;
    }
    *text = json_string_value(v);
    if (when_parse(*text, ms) < 0) {
        api_problem(rs, 400, "Bad Request", "bad %s '%.64s' (expected YYYY-MM-DD or ISO 8601 UTC)",
                    name, *text);
        return -1;
    }
    return 0;
}

static json_t *names_json(char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* ---- POST /api/v1/dags/{dag}/runs/{run}/tasks/{task}/mark ---- */

static void mark_task(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = {"state", "downstream", NULL};
    const char *dag_id = rq->seg[0], *run_id = rq->seg[1], *task = rq->seg[2];
    json_t *body = NULL;
    bool success, downstream;
    if (api_body_object(rq, rs, allowed, &body) < 0)
        return;
    int bad =
        state_field(rs, body, &success) < 0 || bool_field(rs, body, "downstream", &downstream) < 0;
    json_decref(body);
    if (bad)
        return;
    struct store *s = api_store(rq, rs);
    if (!s || api_run_of_dag(rs, s, dag_id, run_id) < 0)
        return;
    struct ops_err e = {0};
    struct ops_mark m = {0};
    enum ti_state st = success ? TI_SUCCESS : TI_FAILED;
    struct audit_who who; /* recorded with the mark, in its transaction */
    audit_who_api(&who, rq->user.name);
    if (ops_mark_task(s, rq->opts->home, rq->opts->sched_dead_after_ms, run_id, task, st,
                      downstream, &who, &m, &e) < 0) {
        api_ops_problem(rs, &e, "task", task); /* the run exists: a 404 is the task */
        ops_err_release(&e);
        return;
    }
    log_info("api: task marked", "user=%s run=%s task=%s state=%s requested=%d",
             log_q(rq->user.name), log_q(run_id), log_q(task), ti_state_name(st), m.requested);
    json_t *names = names_json(m.tasks, m.ntasks);
    api_json(rs, m.requested ? 202 : 200,
             json_pack("{s:s, s:s, s:o, s:I, s:b, s:s}", "run_id", run_id, "state",
                       ti_state_name(st), "marked", names, "task_instances", (json_int_t)m.nrows,
                       "requested", m.requested, "run_state", run_state_name(m.run_state)));
    changed(rq);
    ops_mark_release(&m);
}

/* ---- POST /api/v1/dags/{dag}/runs/{run}/mark ---- */

static void mark_run(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = {"state", NULL};
    const char *dag_id = rq->seg[0], *run_id = rq->seg[1];
    json_t *body = NULL;
    bool success;
    if (api_body_object(rq, rs, allowed, &body) < 0)
        return;
    int bad = state_field(rs, body, &success) < 0;
    json_decref(body);
    if (bad)
        return;
    struct store *s = api_store(rq, rs);
    if (!s || api_run_of_dag(rs, s, dag_id, run_id) < 0)
        return;
    struct ops_err e = {0};
    struct ops_mark m = {0};
    enum run_state st = success ? RUN_SUCCESS : RUN_FAILED;
    struct audit_who who;
    audit_who_api(&who, rq->user.name);
    if (ops_mark_run(s, rq->opts->home, rq->opts->sched_dead_after_ms, run_id, st, &who, &m, &e) <
        0) {
        api_ops_problem(rs, &e, "run", run_id);
        ops_err_release(&e);
        return;
    }
    log_info("api: run marked", "user=%s run=%s state=%s requested=%d", log_q(rq->user.name),
             log_q(run_id), run_state_name(st), m.requested);
    api_json(rs, m.requested ? 202 : 200,
             json_pack("{s:s, s:s, s:I, s:b}", "run_id", run_id, "state",
                       run_state_name(m.requested ? m.run_state : st), "task_instances",
                       (json_int_t)m.nrows, "requested", m.requested));
    changed(rq);
    ops_mark_release(&m);
}

/* ---- POST /api/v1/dags/{dag}/clear ---- */

static void clear_range(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = {"from", "to", "task", "only_failed", "dry_run", NULL};
    const char *dag_id = rq->seg[0];
    json_t *body = NULL;
    if (api_body_object(rq, rs, allowed, &body) < 0)
        return;
    struct ops_clear_range_opts o = {0};
    json_t *t = json_object_get(body, "task");
    int bad = date_field(rs, body, "from", &o.from_at_ms, &o.from_text) < 0 ||
              date_field(rs, body, "to", &o.to_at_ms, &o.to_text) < 0 ||
              bool_field(rs, body, "only_failed", &o.only_failed) < 0 ||
              bool_field(rs, body, "dry_run", &o.dry_run) < 0;
    if (!bad && t && !json_is_null(t)) {
        if (!json_is_string(t) || !json_string_length(t) || json_string_length(t) > 256) {
            api_problem(rs, 400, "Bad Request", "field 'task' must be a task name");
            bad = 1;
        } else {
            o.task = json_string_value(t);
        }
    }
    if (!bad && o.from_at_ms > o.to_at_ms) {
        api_problem(rs, 400, "Bad Request", "bad range: 'from' %.64s is after 'to' %.64s",
                    o.from_text, o.to_text);
        bad = 1;
    }
    struct store *s = bad ? NULL : api_store(rq, rs);
    struct ops_err e = {0};
    struct ops_clear_range c = {0};
    if (!s)
        goto out;
    struct audit_who who;
    audit_who_api(&who, rq->user.name);
    o.who = &who; /* recorded with the clear, in its transaction */
    if (ops_clear_range(s, rq->opts->home, dag_id, &o, &c, &e) < 0) {
        api_ops_problem(
            rs, &e, o.task && e.kind == OPS_NOT_FOUND && !strstr(e.err.msg, "DAG") ? "task" : "DAG",
            o.task && !strstr(e.err.msg, "DAG") ? o.task : dag_id);
        goto out;
    }
    log_info("api: dag cleared", "user=%s dag=%s runs=%zu rows=%zu dry_run=%d",
             log_q(rq->user.name), log_q(dag_id), c.nruns, c.nrows, o.dry_run);
    api_json(rs, 200, ops_clear_range_json(dag_id, &c, o.dry_run));
    if (!o.dry_run)
        changed(rq);
out:
    ops_clear_range_release(&c);
    ops_err_release(&e);
    json_decref(body);
}

/* ---- POST /api/v1/dags/{dag}/backfill ---- */

static void backfill(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = {"from", "to", "conf", NULL};
    const char *dag_id = rq->seg[0];
    json_t *body = NULL;
    if (api_body_object(rq, rs, allowed, &body) < 0)
        return;
    struct ops_range range = {0};
    json_t *conf = json_object_get(body, "conf");
    if (conf && json_is_null(conf))
        conf = NULL;
    int bad = date_field(rs, body, "from", &range.from_at_ms, &range.from_text) < 0 ||
              date_field(rs, body, "to", &range.to_at_ms, &range.to_text) < 0;
    if (!bad && conf && !json_is_object(conf)) {
        api_problem(rs, 400, "Bad Request", "field 'conf' must be an object of params");
        bad = 1;
    }
    if (!bad && range.from_at_ms > range.to_at_ms) {
        api_problem(rs, 400, "Bad Request", "bad range: 'from' %.64s is after 'to' %.64s",
                    range.from_text, range.to_text);
        bad = 1;
    }
    struct store *s = bad ? NULL : api_store(rq, rs);
    struct ops_err e = {0};
    struct ops_backfill b = {0};
    if (!s)
        goto out;
    range.max_runs = API_BACKFILL_MAX;
    if (ops_backfill(s, rq->opts->home, rq->opts->dags, dag_id, conf, &range, &b, &e) < 0) {
        api_ops_problem(rs, &e, "DAG", dag_id);
        goto out;
    }
    log_info("api: backfill", "user=%s dag=%s queued=%zu", log_q(rq->user.name), log_q(dag_id),
             b.nrun_ids);
    api_audit(rq, "backfill", dag_id, NULL, NULL,
              json_pack("{s:s, s:s, s:O?, s:I, s:I}", "from", range.from_text, "to", range.to_text,
                        "conf", conf, "queued", (json_int_t)b.nrun_ids, "skipped",
                        (json_int_t)b.skipped));
    api_json(rs, 201,
             json_pack("{s:s, s:I, s:I, s:o, s:b}", "dag", dag_id, "queued", (json_int_t)b.nrun_ids,
                       "skipped", (json_int_t)b.skipped, "run_ids",
                       names_json(b.run_ids, b.nrun_ids), "paused", b.paused));
    api_dags_changed(rq->api);
    changed(rq);
out:
    ops_backfill_release(&b);
    ops_err_release(&e);
    json_decref(body);
}

/* ---- GET /api/v1/audit ---- */

static void audit_list(struct api_req *rq, struct api_resp *rs)
{
    int64_t limit, before;
    if (api_query_int(rq, rs, "limit", 1, AUDIT_LIST_MAX, 100, &limit) < 0 ||
        api_query_int(rq, rs, "before", 0, INT64_MAX, 0, &before) < 0)
        return;
    const char *dag = api_query(rq, "dag"), *user = api_query(rq, "user");
    if ((dag && strlen(dag) > API_SEG_MAX) || (user && strlen(user) > API_SEG_MAX)) {
        api_problem(rs, 400, "Bad Request", "'%s' is too long",
                    dag && strlen(dag) > API_SEG_MAX ? "dag" : "user");
        return;
    }
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    json_t *o = NULL;
    const char *msg = NULL;
    if (audit_list_json(s, dag && *dag ? dag : NULL, user && *user ? user : NULL, before, limit, &o,
                        &msg) < 0) {
        api_problem(rs, 503, "Service Unavailable", "%s", msg);
        return;
    }
    api_json(rs, 200, o);
}

const struct api_route api_routes_ops[] = {
    {"POST", "/api/v1/dags/{dag}/runs/{run}/tasks/{task}/mark", AUTH_OPERATOR, mark_task, 0},
    {"POST", "/api/v1/dags/{dag}/runs/{run}/mark", AUTH_OPERATOR, mark_run, 0},
    {"POST", "/api/v1/dags/{dag}/clear", AUTH_OPERATOR, clear_range, 0},
    {"POST", "/api/v1/dags/{dag}/backfill", AUTH_OPERATOR, backfill, 0},
    {"GET", "/api/v1/audit", AUTH_ADMIN, audit_list, 0},
    {NULL, NULL, AUTH_NONE, NULL, 0},
};
