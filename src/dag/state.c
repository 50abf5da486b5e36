/*
 * state.c - names of the state enums; see state.h.
 */
#include "dag/state.h"

#include <errno.h>
#include <string.h>

static const char *ti_names[] = {
#define X(e, s) s,
    TI_STATE_TABLE(X)
#undef X
};

static const char *run_names[] = {
#define X(e, s) s,
    RUN_STATE_TABLE(X)
#undef X
};

static const char *type_names[] = {
#define X(e, s) s,
    RUN_TYPE_TABLE(X)
#undef X
};

static int lookup(const char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

const char *ti_state_name(enum ti_state s)
{
    return (unsigned)s < TI_STATE_COUNT ? ti_names[s] : "unknown";
}

int ti_state_parse(const char *name, enum ti_state *out)
{
    int i = lookup(ti_names, TI_STATE_COUNT, name);
    if (i < 0)
        return -EINVAL;
    *out = (enum ti_state)i;
    return 0;
}

bool ti_state_finished(enum ti_state s)
{
    return s == TI_SUCCESS || s == TI_FAILED || s == TI_SKIPPED || s == TI_UPSTREAM_FAILED;
}

const char *run_state_name(enum run_state s)
{
    return (unsigned)s < RUN_STATE_COUNT ? run_names[s] : "unknown";
}

int run_state_parse(const char *name, enum run_state *out)
{
    int i = lookup(run_names, RUN_STATE_COUNT, name);
    if (i < 0)
        return -EINVAL;
    *out = (enum run_state)i;
    return 0;
}

bool run_state_finished(enum run_state s)
{
    return s == RUN_SUCCESS || s == RUN_FAILED || s == RUN_CANCELLED;
}

const char *run_type_name(enum run_type t)
{
    return (unsigned)t < RUN_TYPE_COUNT ? type_names[t] : "unknown";
}

int run_type_parse(const char *name, enum run_type *out)
{
    int i = lookup(type_names, RUN_TYPE_COUNT, name);
    if (i < 0)
        return -EINVAL;
    *out = (enum run_type)i;
    return 0;
}
