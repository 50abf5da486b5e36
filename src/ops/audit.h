/*
 * audit.h - the audit log (SPEC section 13): who changed what, when, from the
 * CLI or the API. Every state-changing command and route calls audit_record
 * once its change is written (or, where the change is one transaction of
 * the caller's, inside it, so both commit together); a failed validation
 * records nothing. The rows live in the store (store/audit.h); `baram audit
 * list`, GET /api/v1/audit and the UI's Audit page read them.
 *
 * details is a JSON object of the request's facts (never a secret's value:
 * the caller leaves those out). Any thread, on the caller's store.
 */
#ifndef BARAM_OPS_AUDIT_H
#define BARAM_OPS_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/compiler.h"

struct store;

#define AUDIT_SOURCE_CLI "cli"
#define AUDIT_SOURCE_API "api"
#define AUDIT_USER_MAX   160
#define AUDIT_LIST_MAX   1000

/* Who acts: user is an API user's name or "cli:<unix user>", source AUDIT_SOURCE_*. */
struct audit_who {
    char user[AUDIT_USER_MAX];
    const char *source;
};

/* The CLI's actor: "cli:<the effective unix user's name>" (or its uid when it has none). */
void audit_who_cli(struct audit_who *w);
/* An API user's actor. */
void audit_who_api(struct audit_who *w, const char *name);

/* Records one action (e.g. "mark", "clear", "trigger", "pause", "pool set", "variable set") on
 * a target (dag_id, run_id, task_id: each may be NULL) with details (a JSON object, consumed;
 * may be NULL). 0, or a negative code: the failure is logged (the change it records stands). */
int audit_record(struct store *s, const struct audit_who *who, const char *action,
                 const char *dag_id, const char *run_id, const char *task_id, json_t *details);

/* audit_record on a run, its DAG read from the store (NULL when the run is not there). */
int audit_record_run(struct store *s, const struct audit_who *who, const char *action,
                     const char *run_id, const char *task_id, json_t *details);

/* The rows as GET /api/v1/audit and `baram audit list --json` show them: {"entries": [{"id",
 * "at" (ISO 8601 UTC), "user", "source", "action", "dag_id", "run_id", "task_id", "details"
 * (an object)}]}. dag_id, user: filters (NULL: any); before_id > 0: older than that row;
 * limit 1..AUDIT_LIST_MAX. 0 and *out, or a negative code with msg (a fixed text). */
int audit_list_json(struct store *s, const char *dag_id, const char *user, int64_t before_id,
                    int64_t limit, json_t **out, const char **msg) WARN_UNUSED;

#endif
