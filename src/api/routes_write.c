/*
 * routes_write.c - the API's write routes (SPEC section 8; see api.h for the
 * table's rules): trigger a run, cancel a run, clear a task, pause or
 * unpause a DAG (operator), set a pool's size (admin).
 *
 * Each handler checks its body (api_body_object: only the route's fields;
 * then their types here), then calls the same function of ops/ops.h as
 * the CLI command, on this thread's store: the rows written and the
 * doorbell rung are exactly the CLI's. An ops error's kind gives the
 * status: not found 404, bad input 400, conflict 409, store or DAG folder
 * 503. Details never name server paths: not-found messages are made here
 * (with the did-you-mean), store and folder failures are logged and
 * answered with a fixed text.
 *
 * A run in the URL must belong to the DAG in the URL (else 404), so a
 * client cannot act on a run through another DAG's path.
 *
 * Handlers run on the server's threads (api.h: threading) and keep no state
 * between requests. Cancel waits for the scheduler's confirmation at most
 * ?wait=S seconds (default 0: answer 202 at once when a scheduler runs).
 */
#include "api/api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/hub.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "dag/state.h"
#include "ops/ops.h"
#include "store/store.h"

#define CANCEL_WAIT_MAX_S 30

/* ---- helpers ---- */

/* Fills rs from an ops error. what/name: the thing looked up ("DAG", "x") for a 404. */
static void ops_problem(struct api_resp *rs, const struct ops_err *e, const char *what,
                        const char *name)
{
    switch (e->kind) {
    case OPS_NOT_FOUND:
        if (e->suggest)
            api_problem(rs, 404, "Not Found", "no %s '%s' (did you mean '%s'?)", what, name,
                        e->suggest);
        else
            api_problem(rs, 404, "Not Found", "no %s '%s'", what, name);
        if (e->suggest)
            json_object_set_new(rs->body, "did_you_mean", json_string(e->suggest));
        return;
    case OPS_BAD_INPUT:
    case OPS_CONFLICT: {
        struct buf b = BUF_INIT(BUF_NO_MAX);
        (void)!buf_adds(&b, e->err.msg);
        if (e->detail) /* the diagnostics without file positions: no server paths */
            (void)!buf_addf(&b, "%s%s", b.len ? " " : "", e->detail);
        while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == ' '))
            buf_truncate(&b, b.len - 1);
        if (e->kind == OPS_BAD_INPUT)
            api_problem(rs, 400, "Bad Request", "%s", b.len ? b.data : "bad input");
        else
            api_problem(rs, 409, "Conflict", "%s", b.len ? b.data : "conflict");
        buf_release(&b);
        return;
    }
    case OPS_UNAVAILABLE:
        log_error("api: cannot read the DAG folder", "error=%s",
                  log_q(e->err.msg[0] ? e->err.msg : "?"));
        api_problem(rs, 503, "Service Unavailable", "the DAG folder cannot be read");
        return;
    case OPS_OK:
    case OPS_STORE:
        break;
    }
    log_error("api: store write failed", "error=%s", log_q(e->err.msg[0] ? e->err.msg : "?"));
    api_problem(rs, 503, "Service Unavailable", "the store could not be written");
}

/* The run, checked to belong to the DAG: 0, or -1 after filling rs (404 or 503). */
static int run_of_dag(struct api_resp *rs, struct store *s, const char *dag_id, const char *run_id)
{
    struct err se = {0};
    struct run_rec run;
    int r = store_get_run(s, run_id, &run, &se);
    if (r == -ENOENT) {
        api_problem(rs, 404, "Not Found", "no run '%s' of DAG '%s'", run_id, dag_id);
        return -1;
    }
    if (r < 0) {
        log_error("api: store read failed", "code=%d error=%s", r, log_q(err_msg(&se)));
        api_problem(rs, 503, "Service Unavailable", "the store could not be read");
        return -1;
    }
    bool same = run.dag_id && strcmp(run.dag_id, dag_id) == 0;
    run_rec_release(&run);
    if (!same) {
        api_problem(rs, 404, "Not Found", "no run '%s' of DAG '%s'", run_id, dag_id);
        return -1;
    }
    return 0;
}

void api_ops_problem(struct api_resp *rs, const struct ops_err *e, const char *what,
                     const char *name)
{
    ops_problem(rs, e, what, name);
}

int api_run_of_dag(struct api_resp *rs, struct store *s, const char *dag_id, const char *run_id)
{
    return run_of_dag(rs, s, dag_id, run_id);
}

static int type_problem(struct api_resp *rs, const char *field, const char *want)
{
    api_problem(rs, 400, "Bad Request", "field '%s' must be %s", field, want);
    return -EINVAL;
}

/* ---- POST /api/v1/dags/{dag}/runs ---- */

static void trigger(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = {"conf", "logical_date", NULL};
    const char *dag_id = rq->seg[0];
    json_t *body = NULL;
    if (api_body_object(rq, rs, allowed, &body) < 0)
        return;
    json_t *conf = json_object_get(body, "conf");
    json_t *ld = json_object_get(body, "logical_date");
    int64_t logical = -1;
    if (conf && json_is_null(conf))
        conf = NULL;
    if (conf && !json_is_object(conf)) {
        type_problem(rs, "conf", "an object of params");
        goto out;
    }
    if (ld && !json_is_null(ld)) {
        if (!json_is_string(ld)) {
            type_problem(rs, "logical_date", "a date string (YYYY-MM-DD or ISO 8601 UTC)");
            goto out;
        }
        if (when_parse(json_string_value(ld), &logical) < 0) {
            api_problem(rs, 400, "Bad Request",
                        "bad logical_date '%.64s' (expected YYYY-MM-DD or ISO 8601 UTC)",
                        json_string_value(ld));
            goto out;
        }
    }
    struct store *s = api_store(rq, rs);
    if (!s)
        goto out;
    struct ops_err e = {0};
    struct ops_run run;
    if (ops_trigger(s, rq->opts->home, rq->opts->dags, dag_id, conf, logical, &run, &e) < 0) {
        ops_problem(rs, &e, "DAG", dag_id);
        ops_err_release(&e);
        goto out;
    }
    char iso[32];
    when_format_iso(run.logical_at_ms, iso, sizeof iso);
    log_info("api: run triggered", "user=%s dag=%s run=%s", log_q(rq->user.name), log_q(dag_id),
             log_q(run.run_id));
    api_audit(rq, "trigger", dag_id, run.run_id, NULL, json_pack("{s:O?}", "conf", conf));
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "dag", dag_id, "run_id", run.run_id, "state",
                          run_state_name(RUN_QUEUED), "logical_date", iso);
    api_json(rs, 201, o);
    api_dags_changed(rq->api);
    if (rq->opts->hub)
        hub_notify(rq->opts->hub); /* its queued event is in the log: the hub reads it now */
    struct buf loc = BUF_INIT(BUF_NO_MAX);
    if (buf_addf(&loc, "/api/v1/dags/%s/runs/%s", dag_id, run.run_id) == 0) {
        rs->header_name = "Location";
        free(rs->header_value);
        rs->header_value = buf_detach(&loc, NULL);
    }
    buf_release(&loc);
out:
    json_decref(body);
}

/* ---- POST /api/v1/dags/{dag}/runs/{run}/cancel ---- */

static void cancel(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = {NULL};
    const char *dag_id = rq->seg[0], *run_id = rq->seg[1];
    json_t *body = NULL;
    if (api_body_object(rq, rs, allowed, &body) < 0)
        return;
    json_decref(body);
    int64_t wait_s = 0;
    if (api_query_int(rq, rs, "wait", 0, CANCEL_WAIT_MAX_S, 0, &wait_s) < 0)
        return;
    struct store *s = api_store(rq, rs);
    if (!s || run_of_dag(rs, s, dag_id, run_id) < 0)
        return;
    struct ops_err e = {0};
    struct ops_cancel c;
    if (ops_cancel(s, rq->opts->home, rq->opts->sched_dead_after_ms, run_id, wait_s * 1000, &c,
                   &e) < 0) {
        ops_problem(rs, &e, "run", run_id);
        ops_err_release(&e);
        return;
    }
    log_info("api: run cancel", "user=%s run=%s requested=%d", log_q(rq->user.name), log_q(run_id),
             c.requested);
    api_audit(rq, "cancel", dag_id, run_id, NULL, json_pack("{s:b}", "requested", c.requested));
    api_json(rs, c.requested ? 202 : 200,
             json_pack("{s:s, s:s}", "run_id", run_id, "state", run_state_name(c.state)));
}

/* ---- POST /api/v1/dags/{dag}/runs/{run}/tasks/{task}/clear ---- */

static void clear(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = {"downstream", NULL};
    const char *dag_id = rq->seg[0], *run_id = rq->seg[1], *task = rq->seg[2];
    json_t *body = NULL;
    if (api_body_object(rq, rs, allowed, &body) < 0)
        return;
    json_t *ds = json_object_get(body, "downstream");
    bool downstream = ds && json_is_true(ds);
    if (ds && !json_is_boolean(ds)) {
        type_problem(rs, "downstream", "a boolean");
        json_decref(body);
        return;
    }
    json_decref(body);
    struct store *s = api_store(rq, rs);
    if (!s || run_of_dag(rs, s, dag_id, run_id) < 0)
        return;
    struct ops_err e = {0};
    struct ops_clear c;
    if (ops_clear(s, rq->opts->home, rq->opts->sched_dead_after_ms, run_id, task, downstream, &c,
                  &e) < 0) {
        /* The run exists (checked above): a 404 here is the task. */
        ops_problem(rs, &e, "task", task);
        ops_err_release(&e);
        return;
    }
    log_info("api: tasks cleared", "user=%s run=%s task=%s downstream=%d rows=%zu",
             log_q(rq->user.name), log_q(run_id), log_q(task), downstream, c.nrows);
    api_audit(rq, "clear", dag_id, run_id, task,
              json_pack("{s:b, s:b}", "downstream", downstream, "requested", c.requested));
    json_t *names = json_array();
    for (size_t i = 0; i < c.ntasks; i++)
        json_array_append_new(names, json_string(c.tasks[i]));
    if (c.requested) /* a live run: the scheduler clears them once its tries in flight end */
        api_json(rs, 202,
                 json_pack("{s:s, s:o, s:b}", "run_id", run_id, "cleared", names, "requested", 1));
    else
        api_json(rs, 200,
                 json_pack("{s:s, s:o, s:I, s:s}", "run_id", run_id, "cleared", names,
                           "task_instances", (json_int_t)c.nrows, "state",
                           run_state_name(RUN_QUEUED)));
    ops_clear_release(&c);
}

/* ---- PATCH /api/v1/dags/{dag} ---- */

static void patch_dag(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = {"paused", NULL};
    const char *dag_id = rq->seg[0];
    json_t *body = NULL;
    if (api_body_object(rq, rs, allowed, &body) < 0)
        return;
    json_t *p = json_object_get(body, "paused");
    bool paused = p && json_is_true(p);
    int bad = !p || !json_is_boolean(p);
    json_decref(body);
    if (bad) {
        type_problem(rs, "paused", "a boolean (and is required)");
        return;
    }
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    struct ops_err e = {0};
    if (ops_set_paused(s, rq->opts->home, rq->opts->dags, dag_id, paused, &e) < 0) {
        ops_problem(rs, &e, "DAG", dag_id);
        ops_err_release(&e);
        return;
    }
    log_info("api: dag paused", "user=%s dag=%s paused=%d", log_q(rq->user.name), log_q(dag_id),
             paused);
    api_audit(rq, paused ? "pause" : "unpause", dag_id, NULL, NULL, NULL);
    api_json(rs, 200, json_pack("{s:s, s:b}", "dag_id", dag_id, "paused", paused));
    api_dags_changed(rq->api);
}

/* ---- PUT /api/v1/pools/{name} ---- */

static void put_pool(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = {"slots", NULL};
    const char *name = rq->seg[0];
    json_t *body = NULL;
    if (api_body_object(rq, rs, allowed, &body) < 0)
        return;
    json_t *v = json_object_get(body, "slots");
    bool ok = v && json_is_integer(v) && json_integer_value(v) >= 0 &&
              json_integer_value(v) <= OPS_POOL_SLOTS_MAX;
    int64_t slots = ok ? (int64_t)json_integer_value(v) : -1;
    json_decref(body);
    if (!ok) {
        api_problem(rs, 400, "Bad Request",
                    "field 'slots' must be a whole number from 0 to %d (and is required)",
                    OPS_POOL_SLOTS_MAX);
        return;
    }
    struct ops_err e = {0};
    if (ops_pool_check(name, &e) < 0) {
        ops_problem(rs, &e, "pool", name);
        ops_err_release(&e);
        return;
    }
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    if (ops_pool_set(s, rq->opts->home, name, slots, &e) < 0) {
        ops_problem(rs, &e, "pool", name);
        ops_err_release(&e);
        return;
    }
    log_info("api: pool set", "user=%s pool=%s slots=%lld", log_q(rq->user.name), log_q(name),
             (long long)slots);
    api_audit(rq, "pool set", NULL, NULL, NULL,
              json_pack("{s:s, s:I}", "pool", name, "slots", (json_int_t)slots));
    api_json(rs, 200, json_pack("{s:s, s:I}", "name", name, "slots", (json_int_t)slots));
}

const struct api_route api_routes_write[] = {
    {"POST", "/api/v1/dags/{dag}/runs", AUTH_OPERATOR, trigger, 0},
    {"POST", "/api/v1/dags/{dag}/runs/{run}/cancel", AUTH_OPERATOR, cancel, 0},
    {"POST", "/api/v1/dags/{dag}/runs/{run}/tasks/{task}/clear", AUTH_OPERATOR, clear, 0},
    {"PATCH", "/api/v1/dags/{dag}", AUTH_OPERATOR, patch_dag, 0},
    {"PUT", "/api/v1/pools/{name}", AUTH_ADMIN, put_pool, 0},
    {NULL, NULL, AUTH_NONE, NULL, 0},
};
