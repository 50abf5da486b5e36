/*
 * audit.c - the audit log's recording and listing (audit.h), on the store's
 * rows (store/audit.h). A row that cannot be written is logged, never turned
 * into a failure of the change it records: that change is already made.
 */
#include "ops/audit.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "store/audit.h"
#include "store/store.h"

void audit_who_cli(struct audit_who *w)
{
    struct passwd *pw = getpwuid(geteuid());
    if (pw && pw->pw_name && *pw->pw_name)
        snprintf(w->user, sizeof w->user, "cli:%s", pw->pw_name);
    else
        snprintf(w->user, sizeof w->user, "cli:%u", (unsigned)geteuid());
    w->source = AUDIT_SOURCE_CLI;
}

void audit_who_api(struct audit_who *w, const char *name)
{
    snprintf(w->user, sizeof w->user, "%s", name && *name ? name : "?");
    w->source = AUDIT_SOURCE_API;
}

int audit_record(struct store *s, const struct audit_who *who, const char *action,
                 const char *dag_id, const char *run_id, const char *task_id, json_t *details)
{
    struct audit_rec a = {
        .at_ms = when_now_ms(),
        .user = (char *)who->user,
        .source = (char *)who->source,
        .action = (char *)action,
        .dag_id = (char *)dag_id,
        .run_id = (char *)run_id,
        .task_id = (char *)task_id,
    };
    char *text = details ? json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(details);
    a.details = text;
    struct err e = {0};
    int r = store_audit_put(s, &a, &e);
    if (r < 0)
        log_error("audit: cannot record an action", "action=%s user=%s error=%s", log_q(action),
                  log_q(who->user), log_q(err_msg(&e)));
    free(text);
    return r;
}

int audit_record_run(struct store *s, const struct audit_who *who, const char *action,
                     const char *run_id, const char *task_id, json_t *details)
{
    struct run_rec run;
    bool found = store_get_run(s, run_id, &run, NULL) == 0;
    int r = audit_record(s, who, action, found ? run.dag_id : NULL, run_id, task_id, details);
    if (found)
        run_rec_release(&run);
    return r;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

int audit_list_json(struct store *s, const char *dag_id, const char *user, int64_t before_id,
                    int64_t limit, json_t **out, const char **msg)
{
    struct audit_rec *v = NULL;
    size_t n = 0;
    struct err e = {0};
    if (limit < 1 || limit > AUDIT_LIST_MAX)
        limit = AUDIT_LIST_MAX;
    int r = store_audit_list(s, dag_id, user, before_id, limit, &v, &n, &e);
    if (r < 0) {
        log_error("audit: cannot read the audit log", "error=%s", log_q(err_msg(&e)));
        *msg = "the audit log could not be read";
        return r;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct audit_rec *a = &v[i];
        char iso[32];
        when_format_iso(a->at_ms, iso, sizeof iso);
        json_t *details = a->details ? json_loads(a->details, 0, NULL) : NULL;
        json_array_append_new(
            arr,
            json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "id", (json_int_t)a->id,
                      "at", iso, "user", a->user ? a->user : "", "source",
                      a->source ? a->source : "", "action", a->action ? a->action : "", "dag_id",
                      str_or_null(a->dag_id), "run_id", str_or_null(a->run_id), "task_id",
                      str_or_null(a->task_id), "details", details ? details : json_object()));
    }
    store_audit_free(v, n);
    *out = json_pack("{s:o}", "entries", arr);
    return 0;
}
