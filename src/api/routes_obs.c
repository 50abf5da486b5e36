/*
 * routes_obs.c - observability routes (SPEC sections 8 and 10):
 *   GET /api/v1/events   Server-Sent Events of every state change (hub.h),
 *                        ?dag= ?run= filters, resumable with Last-Event-ID
 *                        (header, or ?last_event_id=)
 *   GET /metrics         Prometheus text format: task instances and runs by
 *                        state (the store), tries started/finished, the
 *                        scheduling-latency histogram, queue depth, active
 *                        runs (this process's engines, sched/metrics.h),
 *                        store commits and their time (its store writers,
 *                        store_writer_totals), event subscribers, memory,
 *                        and per host of http tasks and waits: requests in
 *                        flight and queued, circuit breaker state (a
 *                        snapshot the loop publishes, exec/hoststats.h)
 * Handlers run on the server's few threads: an event stream with nothing to
 * send suspends its connection and the hub resumes it (hub_arm).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api/api.h"
#include "api/hub.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/parse.h"
#include "base/xalloc.h"
#include "dag/state.h"
#include "exec/circuit.h"
#include "exec/hoststats.h"
#include "sched/metrics.h"
#include "store/events.h"
#include "store/store.h"

/* A stream: its subscription and the connection to park while there is nothing to send. */
struct obs_stream {
    struct hub_sub *sub;
    struct MHD_Connection *mc;
};

static void obs_events_wake(void *ud)
{
    MHD_resume_connection(ud);
}

/* The server's threads serve many connections each: a stream with nothing to send is
 * suspended (it costs nothing while parked) and resumed by the hub when there may be. */
static ssize_t obs_events_reader(void *ud, uint64_t pos, char *buf, size_t max)
{
    struct obs_stream *st = ud;
    (void)pos;
    ssize_t n = hub_read(st->sub, buf, max);
    if (n < 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n > 0)
        return n;
    MHD_suspend_connection(st->mc);
    if (!hub_arm(st->sub, obs_events_wake, st->mc))
        MHD_resume_connection(st->mc); /* something came meanwhile: read again */
    return 0;
}

static void obs_events_free(void *ud)
{
    struct obs_stream *st = ud;
    hub_unsubscribe(st->sub);
    free(st);
}

static void obs_events(struct api_req *rq, struct api_resp *rs)
{
    if (!rq->opts->hub) {
        api_problem(rs, 503, "Service Unavailable", "this server has no event stream");
        return;
    }
    const char *dag = api_query(rq, "dag"), *run = api_query(rq, "run");
    const char *last = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (!last)
        last = api_query(rq, "last_event_id");
    int64_t last_id = -1;
    if (last && *last) {
        if (parse_int64(last, 0, INT64_MAX, &last_id) < 0) {
            api_problem(rs, 400, "Bad Request",
                        "Last-Event-ID must be an event id (a whole number >= 0)");
            return;
        }
    }
    if ((dag && strlen(dag) > API_SEG_MAX) || (run && strlen(run) > API_SEG_MAX)) {
        api_problem(rs, 400, "Bad Request", "dag and run filters are at most %d bytes",
                    API_SEG_MAX);
        return;
    }
    struct obs_stream *st = xcalloc(1, sizeof(*st));
    st->sub = hub_subscribe(rq->opts->hub, last_id, dag, run);
    st->mc = rq->conn;
    rs->status = 200;
    rs->content_type = "text/event-stream";
    rs->reader = obs_events_reader;
    rs->reader_ud = st;
    rs->reader_free = obs_events_free;
}

/* ---- /metrics ---- */

static void obs_head(struct buf *b, const char *name, const char *type, const char *help)
{
    (void)!buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static long obs_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

/* A label value as Prometheus' text format wants it: \\, \" and \n escaped. */
static void obs_label(struct buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            (void)!buf_addf(b, "\\%c", *v);
        else if (*v == '\n')
            (void)!buf_adds(b, "\\n");
        else
            (void)!buf_addc(b, *v);
    }
}

/* One `NAME{host="KEY"[,state="S"]} VALUE` line. */
static void obs_host_line(struct buf *b, const char *name, const char *host, const char *state,
                          int64_t value)
{
    (void)!buf_addf(b, "%s{host=\"", name);
    obs_label(b, host);
    if (state)
        (void)!buf_addf(b, "\",state=\"%s", state);
    (void)!buf_addf(b, "\"} %" PRId64 "\n", value);
}

static void obs_hosts(struct buf *b)
{
    static const enum circuit_state states[] = {CIRCUIT_CLOSED, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN};
    struct hoststats_row *rows = xcalloc(HOSTSTATS_MAX, sizeof(*rows));
    uint64_t untracked;
    size_t n = hoststats_snapshot(rows, HOSTSTATS_MAX, &untracked);
    obs_head(b, "baram_http_in_flight", "gauge",
             "Requests of http tasks and waits in flight, by host.");
    for (size_t i = 0; i < n; i++)
        obs_host_line(b, "baram_http_in_flight", rows[i].key, NULL, rows[i].in_flight);
    obs_head(b, "baram_http_queued", "gauge",
             "Requests waiting for a slot under http.max_per_host, by host.");
    for (size_t i = 0; i < n; i++)
        obs_host_line(b, "baram_http_queued", rows[i].key, NULL, rows[i].queued);
    obs_head(b, "baram_circuit_state", "gauge",
             "Circuit breaker of a host: 1 for its current state (hosts with a breaker).");
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; rows[i].circuit != HOSTSTATS_NO_CIRCUIT && k < ARRAY_SIZE(states); k++)
            obs_host_line(b, "baram_circuit_state", rows[i].key, circuit_state_name(states[k]),
                          rows[i].circuit == (int)states[k]);
    obs_head(b, "baram_http_hosts_untracked", "gauge",
             "Hosts not shown by the series above (beyond the first 256).");
    (void)!buf_addf(b, "baram_http_hosts_untracked %" PRIu64 "\n", untracked);
    free(rows);
}

static void obs_metrics(struct api_req *rq, struct api_resp *rs)
{
    struct err se = {0};
    struct store *s = api_store(rq, rs);
    if (!s)
        return;
    int64_t tis[TI_STATE_COUNT], runs[RUN_STATE_COUNT];
    if (events_count_tis(s, tis, &se) < 0 || events_count_runs(s, runs, &se) < 0) {
        api_problem(rs, 503, "Service Unavailable", "cannot read the store: %s", err_msg(&se));
        return;
    }
    struct metrics m;
    metrics_read(&m);
    uint64_t commits, commit_ns;
    store_writer_totals(&commits, &commit_ns);
    struct buf b = BUF_INIT(BUF_NO_MAX);
    obs_head(&b, "baram_task_instances", "gauge", "Task instances in the store, by state.");
    for (int i = 0; i < TI_STATE_COUNT; i++)
        (void)!buf_addf(&b, "baram_task_instances{state=\"%s\"} %" PRId64 "\n",
                        ti_state_name((enum ti_state)i), tis[i]);
    obs_head(&b, "baram_runs", "gauge", "Runs in the store, by state.");
    for (int i = 0; i < RUN_STATE_COUNT; i++)
        (void)!buf_addf(&b, "baram_runs{state=\"%s\"} %" PRId64 "\n",
                        run_state_name((enum run_state)i), runs[i]);
    obs_head(&b, "baram_tries_started_total", "counter",
             "Tries started by the scheduler in this process.");
    (void)!buf_addf(&b, "baram_tries_started_total %" PRIu64 "\n", m.tries_started);
    obs_head(&b, "baram_tries_finished_total", "counter",
             "Tries finished under the scheduler in this process.");
    (void)!buf_addf(&b, "baram_tries_finished_total %" PRIu64 "\n", m.tries_finished);
    obs_head(&b, "baram_scheduler_latency_seconds", "histogram",
             "From a task instance becoming ready to its process started.");
    uint64_t cum = 0;
    for (int i = 0; i < METRICS_LAT_BUCKETS; i++) {
        cum += m.lat_bucket[i];
        (void)!buf_addf(&b, "baram_scheduler_latency_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                        metrics_lat_bounds_s[i], cum);
    }
    cum += m.lat_bucket[METRICS_LAT_BUCKETS];
    (void)!buf_addf(&b, "baram_scheduler_latency_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
    (void)!buf_addf(&b, "baram_scheduler_latency_seconds_sum %.9f\n", (double)m.lat_sum_ns / 1e9);
    (void)!buf_addf(&b, "baram_scheduler_latency_seconds_count %" PRIu64 "\n", m.lat_count);
    obs_head(&b, "baram_queue_depth", "gauge",
             "Task instances ready and waiting for a slot (parallelism or pool).");
    (void)!buf_addf(&b, "baram_queue_depth %" PRId64 "\n", m.queue_depth);
    obs_head(&b, "baram_active_runs", "gauge", "Runs on this process's scheduler.");
    (void)!buf_addf(&b, "baram_active_runs %" PRId64 "\n", m.active_runs);
    obs_head(&b, "baram_store_commits_total", "counter", "Group commits of the store writer.");
    (void)!buf_addf(&b, "baram_store_commits_total %" PRIu64 "\n", commits);
    obs_head(&b, "baram_store_commit_seconds_total", "counter",
             "Time spent in those commits (with the fsync).");
    (void)!buf_addf(&b, "baram_store_commit_seconds_total %.9f\n", (double)commit_ns / 1e9);
    obs_head(&b, "baram_event_subscribers", "gauge", "Clients of GET /api/v1/events.");
    (void)!buf_addf(&b, "baram_event_subscribers %zu\n",
                    rq->opts->hub ? hub_subscribers(rq->opts->hub) : (size_t)0);
    obs_head(&b, "baram_process_resident_memory_bytes", "gauge", "Resident memory (RSS).");
    (void)!buf_addf(&b, "baram_process_resident_memory_bytes %ld\n", obs_rss_bytes());
    obs_hosts(&b);
    rs->status = 200;
    rs->raw = buf_detach(&b, &rs->raw_len);
    rs->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

const struct api_route api_routes_obs[] = {
    {"GET", "/api/v1/events", AUTH_VIEWER, obs_events, 0},
    {"GET", "/metrics", AUTH_NONE, obs_metrics, API_ROUTE_UNPACED},
    {NULL, NULL, AUTH_NONE, NULL, 0},
};
