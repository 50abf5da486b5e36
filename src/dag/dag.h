/*
 * dag.h - a checked DAG: what a DAG file (SPEC section 2) means, with every
 * reference resolved and validated. Tasks are dense indices 0..ntasks-1 in
 * file order; names map to indices through a hash map; edges are the CSR
 * graph of graph.h; templates are compiled. Defaults are applied: a task's
 * fields hold its effective values.
 *
 * A dag is immutable once loaded and owns all its memory (no pointers into
 * the parse arena): a run borrows it for its whole life; any thread may read.
 */
#ifndef BARAM_DAG_DAG_H
#define BARAM_DAG_DAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/hmap.h"
#include "dag/cron.h"
#include "dag/graph.h"

struct diag;
struct template;
struct tz;

#define DAG_ID_MAX        200
#define DAG_OUTPUT_MAX    (64 * 1024) /* bytes of a task's output */
#define DAG_QUEUE_MAX     64          /* bytes of a queue's name */
#define DAG_FILE_MAX      (16 * 1024 * 1024)
#define DAG_KILL_GRACE_MS 10000 /* SIGTERM, then SIGKILL this much later */

enum task_kind { TASK_RUN, TASK_HTTP, TASK_WAIT };

#define TRIGGER_RULE_TABLE(X)                                                                      \
    X(TRIGGER_ALL_SUCCESS, "all_success")                                                          \
    X(TRIGGER_ALL_FAILED, "all_failed")                                                            \
    X(TRIGGER_ALL_DONE, "all_done")                                                                \
    X(TRIGGER_ONE_SUCCESS, "one_success")                                                          \
    X(TRIGGER_ONE_FAILED, "one_failed")                                                            \
    X(TRIGGER_NONE_FAILED, "none_failed")

enum trigger_rule {
#define X(e, s) e,
    TRIGGER_RULE_TABLE(X)
#undef X
        TRIGGER_RULE_COUNT
};

struct dag_kv {
    char *name;  /* owned */
    char *value; /* owned; NULL for a param with no default (it must be given) */
};

/* A task's `env` entry: the value is a template (TEMPLATE_RAW), expanded per try. */
struct dag_task_env {
    char *name;             /* owned */
    struct template *value; /* owned */
};

struct dag_http {
    char *method;           /* owned, upper case; default GET */
    struct template *url;   /* owned, TEMPLATE_URL */
    struct template *body;  /* owned, TEMPLATE_RAW, may be NULL */
    struct dag_kv *headers; /* owned */
    size_t nheaders;
    int *expect; /* owned; default {200..299} when nexpect == 0 */
    size_t nexpect;
    int64_t timeout_ms; /* per request: its own `timeout` (default 30s), capped by the task's
                           `timeout`, or by a `defaults` one only when it sets none */
    int cb_failures;    /* circuit breaker: 0 = none */
    int64_t cb_reset_ms;
};

struct dag_wait {
    struct template *file;     /* owned, TEMPLATE_RAW; or NULL */
    struct template *http_url; /* owned, TEMPLATE_URL; or NULL (exactly one is set) */
    int64_t every_ms;          /* default 30s */
    int64_t timeout_ms;        /* its own `timeout` (default 24h), capped as dag_http's */
};

/* notify: a hook is `{run: CMD}` or `{notify: NAME}`, exactly one of them; both NULL = no hook. */
struct dag_hook {
    struct template *run; /* owned, TEMPLATE_SHELL; or NULL */
    char *notify;         /* owned: a notifier's name (baram.yaml `notifiers`); or NULL */
    int line, col;        /* where `notify` stands, for messages about an unknown notifier */
};

/* True when h has a run or a notify. */
static inline bool dag_hook_set(const struct dag_hook *h)
{
    return h->run || h->notify;
}

struct dag_task {
    char *name; /* owned; [A-Za-z0-9_.-], 1-200 chars */
    enum task_kind kind;
    struct template *run; /* owned, TEMPLATE_SHELL; TASK_RUN only */
    struct dag_http http; /* TASK_HTTP only */
    struct dag_wait wait; /* TASK_WAIT only */

    /* for_each: a template (TEMPLATE_RAW, expanded when upstream is done) or a literal list. */
    bool mapped;
    struct template *for_each; /* owned, or NULL */
    char **items;              /* owned, literal list when for_each == NULL */
    size_t nitems;

    enum trigger_rule trigger;
    int retries;                /* extra tries after the first; default 0 */
    int64_t retry_delay_ms;     /* default 0 */
    double retry_backoff;       /* default 1 */
    int64_t max_retry_delay_ms; /* default 0 = no cap */
    int64_t timeout_ms;         /* per try; 0 = none */
    char *pool;                 /* owned; default "default" */
    char *queue;                /* owned: the workers' queue (SPEC section 12); default "default" */
    int priority;               /* default 1 */
    int line, col;              /* where the task's key stands in the file, 1-based */

    /* conc (SPEC section 13): */
    int max_active;       /* instances of this task running at once across runs; 0: no limit */
    bool depends_on_past; /* waits for its instance in the previous run to succeed or skip */
    /* tz part (per-task env and dir, SPEC section 13) */
    struct dag_task_env *env; /* owned: `env`, added to the DAG's (overriding same names) */
    size_t nenv;
    char *dir; /* owned: absolute working folder (`dir`, relative to the DAG's); NULL: dag->dir */

    /* notify: the task's hooks (SPEC section 13), fired once per try ending so */
    struct dag_hook on_success, on_failure, on_retry;
};

#define DAG_VAR_KEY_MAX 200 /* vars: {{ var.KEY }}, as store/vars.h VAR_KEY_MAX */

struct dag {
    char *id;          /* owned */
    char *description; /* owned, may be NULL */
    char *path;        /* owned: the file as given */
    char *dir;         /* owned: absolute folder of the file, the cwd of its tasks */
    char *schedule;    /* owned, NULL = manual only */
    struct cron cron;  /* parsed schedule when schedule != NULL */
    /* tz: time zones (SPEC section 13) */
    char *timezone;      /* owned: `timezone:`, or NULL (the home's default, else UTC) */
    const struct tz *tz; /* the zone the schedule follows (base/tz.h, never freed); NULL: UTC */
    int64_t start_at_ms; /* -1 when absent */
    int64_t end_at_ms;   /* -1 when absent */
    bool catchup;
    int max_active_runs;   /* default 16 */
    struct dag_kv *params; /* owned, file order */
    size_t nparams;
    /* params (issue 13): typed params */
    struct param_schema *pschema; /* owned: nparams entries (dag/params.h), or NULL when no
                                     param is written as a mapping */
    struct dag_kv *env;           /* owned, file order */
    size_t nenv;
    struct dag_hook on_success, on_failure;
    /* vars: a template reads {{ var.KEY }}, so a run loads the variables (SPEC section 13):
     * only those keys (owned, each once, in the order first read), never the others */
    bool uses_vars;
    char **var_keys;
    size_t nvar_keys;

    /* conc (SPEC section 13): */
    int64_t
        run_timeout_ms;   /* the run fails ("run timed out") this long after it started; 0: none */
    int max_active_tasks; /* running task instances of this DAG across its runs; 0: no limit */
    bool depends_on_past; /* the tasks' default */
    bool uses_past;       /* some task has depends_on_past */

    /* notify: `deadline: {after, run | notify}`: fires once if the run has not ended
     * deadline_ms after it was queued; 0 = none */
    int64_t deadline_ms;
    struct dag_hook deadline;

    struct dag_task *tasks; /* owned, file order */
    uint32_t ntasks;
    struct graph graph; /* edges between tasks, upstream -> downstream */
    uint32_t *topo;     /* owned: a topological order */
    uint32_t *level;    /* owned: longest path from a root, per task */
    uint32_t nlevels;
    uint32_t *component; /* owned: weakly connected component, per task */
    uint32_t ncomponents;
    struct hmap by_name; /* task name -> index; keys borrowed from tasks[i].name */

    char hash[65]; /* hex SHA-256 of the file's bytes: the DAG version */
    char *source;  /* owned: the file's bytes, kept for the version record */
    size_t source_len;
    int refs; /* references: dag_ref adds one, dag_free drops one */
};

/* Reads, parses and checks the file at path. The dag, or NULL with every problem added to d
 * (GCC-style positions; an unreadable file is one entry without a line). */
struct dag *dag_load_file(const char *path, struct diag *d);
/* The same for bytes already in memory; path names them in messages and sets dir. */
struct dag *dag_load_mem(const char *text, size_t len, const char *path, struct diag *d);
/* Reference counting, for holders that outlive each other (the DAG folder watcher and the
 * runs of a version): dag_ref adds a reference and returns dag; dag_free drops one and frees
 * the DAG with the last. Not atomic: one thread at a time (the daemon's loop). */
struct dag *dag_ref(struct dag *dag);
void dag_free(struct dag *dag);

/* Calls fn(ud, hook, where) for every hook of dag naming a notifier (where: "on_failure",
 * "deadline", "tasks.T.on_retry" ...; a buffer valid for the call). For callers that know
 * baram.yaml's notifiers and check the names (the DAG checker does not know them). */
typedef void dag_hook_fn(void *ud, const struct dag_hook *h, const char *where);
void dag_each_notify(const struct dag *dag, dag_hook_fn *fn, void *ud);

/* Task index by name: true and *idx set, or false. */
bool dag_find(const struct dag *dag, const char *name, uint32_t *idx);
/* Whether s could be a DAG or task id: [A-Za-z0-9_.-], 1 to DAG_ID_MAX bytes, not all dots. */
bool dag_id_valid(const char *s);
/* The param's index, or -1. */
int dag_param_index(const struct dag *dag, const char *name);

/* tz: the zone of DAGs that set no `timezone:` (baram.yaml's; NULL: UTC). Main thread, before
 * DAGs are loaded elsewhere. */
void dag_set_default_tz(const struct tz *z);
/* The name of the zone the DAG's schedule follows: "Europe/Berlin", or "UTC". */
const char *dag_timezone(const struct dag *dag);

const char *trigger_rule_name(enum trigger_rule r);
int trigger_rule_parse(const char *name, enum trigger_rule *out);

#endif
