/*
 * runfilter.c - the filters of a list of runs across DAGs (runfilter.h).
 */
#include "ops/runfilter.h"

#include <errno.h>
#include <string.h>

#include "base/err.h"
#include "base/suggest.h"
#include "base/when.h"
#include "dag/dag.h"
#include "dag/state.h"

static int too_long(const char *name, struct err *e)
{
    return err_set(e, -EINVAL, "%s is too long (at most %d bytes)", name, RUNFILTER_ARG_MAX);
}

static int parse_states(const char *list, const char *name, unsigned *mask, struct err *e)
{
    const char *names[RUN_STATE_COUNT];
    for (int i = 0; i < RUN_STATE_COUNT; i++)
        names[i] = run_state_name((enum run_state)i);
    *mask = 0;
    for (const char *p = list;;) {
        size_t len = strcspn(p, ",");
        char word[RUNFILTER_ARG_MAX + 1];
        memcpy(word, p, len);
        word[len] = '\0';
        enum run_state st;
        if (len == 0)
            return err_set(e, -EINVAL, "%s has an empty state in '%s'", name, list);
        if (run_state_parse(word, &st) < 0) {
            const char *near = suggest_closest(word, names, RUN_STATE_COUNT);
            if (near)
                return err_set(e, -EINVAL, "%s: unknown run state '%s' (did you mean '%s'?)", name,
                               word, near);
            return err_set(e, -EINVAL,
                           "%s: unknown run state '%s' (expected queued, running, success, "
                           "failed or cancelled)",
                           name, word);
        }
        *mask |= RUN_STATE_BIT(st);
        if (!p[len])
            return 0;
        p += len + 1;
    }
}

static int parse_date(const char *s, const char *name, int64_t *at_ms, struct err *e)
{
    if (when_parse(s, at_ms) < 0)
        return err_set(e, -EINVAL,
                       "%s: bad date '%s' (expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS[.mmm]][Z], "
                       "UTC)",
                       name, s);
    return 0;
}

int runfilter_parse(struct run_filter *f, const char *dag_id, const char *states, const char *from,
                    const char *to, const char *const names[4], struct err *e)
{
    *f = (struct run_filter){0};
    const char *vals[4] = {states, from, to, dag_id};
    for (int i = 0; i < 4; i++) {
        if (vals[i] && !*vals[i])
            return err_set(e, -EINVAL, "%s is empty or not readable", names[i]);
        if (vals[i] && strlen(vals[i]) > RUNFILTER_ARG_MAX)
            return too_long(names[i], e);
    }
    /* nothing else names a DAG; refused before it reaches a database that checks encodings */
    if (dag_id && !dag_id_valid(dag_id))
        return err_set(
            e, -EINVAL,
            "%s: '%.64s' is not a DAG id (letters, digits, '_', '.' and '-', at most %d)", names[3],
            dag_id, DAG_ID_MAX);
    f->dag_id = dag_id;
    if (states && parse_states(states, names[0], &f->states, e) < 0)
        return -EINVAL;
    if (from) {
        if (parse_date(from, names[1], &f->from_ms, e) < 0)
            return -EINVAL;
        f->has_from = true;
    }
    if (to) {
        if (parse_date(to, names[2], &f->to_ms, e) < 0)
            return -EINVAL;
        f->has_to = true;
    }
    if (f->has_from && f->has_to && f->from_ms > f->to_ms)
        return err_set(e, -EINVAL, "%s '%s' is after %s '%s'", names[1], from, names[2], to);
    return 0;
}
