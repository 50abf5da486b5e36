/*
 * args.c - the shared flag parser; see args.h. A linear scan over a
 * command's few flags; unknown names get suggest_closest over the flag names
 * (plus "help"). Main thread.
 */
#include "cli/args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/diag.h"
#include "base/parse.h"
#include "base/suggest.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "dag/dag.h"
#include "dag/params.h"
#include "ops/dagdir.h"
#include "sched/run.h"

static const struct args_flag *find_flag(const struct args_flag *flags, size_t nflags,
                                         const char *name, size_t len)
{
    for (size_t i = 0; i < nflags; i++)
        if (strlen(flags[i].name) == len && memcmp(flags[i].name, name, len) == 0)
            return &flags[i];
    return NULL;
}

static void unknown_flag(const char *cmd, const char *arg, size_t len,
                         const struct args_flag *flags, size_t nflags)
{
    char word[128];
    size_t skip = arg[1] == '-' ? 2 : 1;
    size_t wl = len > skip ? len - skip : 0;
    if (wl >= sizeof word)
        wl = sizeof word - 1;
    memcpy(word, arg + skip, wl);
    word[wl] = 0;
    const char **names = xcalloc(nflags + 1, sizeof *names);
    for (size_t i = 0; i < nflags; i++)
        names[i] = flags[i].name;
    names[nflags] = "help";
    const char *near = suggest_closest(word, names, nflags + 1);
    if (near)
        fprintf(stderr, "baram %s: unknown flag '%.*s' (did you mean '--%s'?)\n", cmd, (int)len,
                arg, near);
    else
        fprintf(stderr, "baram %s: unknown flag '%.*s'; see 'baram %s --help'\n", cmd, (int)len,
                arg, cmd);
    free(names);
}

int args_parse(const char *cmd, int argc, char **argv, const struct args_flag *flags, size_t nflags,
               const char **pos, size_t maxpos, size_t *npos)
{
    bool only_pos = false;
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (!only_pos && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0))
            return ARGS_HELP;
        if (only_pos || a[0] != '-' || a[1] == 0) {
            if (*npos >= maxpos) {
                fprintf(stderr, "baram %s: unexpected argument '%s'; see 'baram %s --help'\n", cmd,
                        a, cmd);
                return -EINVAL;
            }
            pos[(*npos)++] = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const struct args_flag *f = NULL;
        if (a[1] == '-')
            f = find_flag(flags, nflags, a + 2, len - 2);
        if (!f) {
            unknown_flag(cmd, a, len, flags, nflags);
            return -EINVAL;
        }
        if (f->kind == ARGS_BOOL) {
            if (eq) {
                fprintf(stderr, "baram %s: flag '--%s' takes no value\n", cmd, f->name);
                return -EINVAL;
            }
            *f->on = true;
            continue;
        }
        const char *val;
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(stderr, "baram %s: flag '--%s' needs a value\n", cmd, f->name);
            return -EINVAL;
        }
        if (f->kind == ARGS_STRING) {
            *f->value = val;
        } else {
            struct args_list *l = f->list;
            xgrow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v);
            l->v[l->n++] = val;
        }
    }
    return 0;
}

void args_list_release(struct args_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

int args_params(const char *cmd, const struct args_list *l, struct params_override **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!l->n)
        return 0;
    struct params_override *v = xcalloc(l->n, sizeof *v);
    for (size_t i = 0; i < l->n; i++) {
        const char *s = l->v[i];
        const char *eq = strchr(s, '=');
        if (!eq || eq == s) {
            fprintf(stderr, "baram %s: bad --param '%s' (expected NAME=VALUE)\n", cmd, s);
            args_params_free(v, i);
            return -EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strlen(v[j].name) == (size_t)(eq - s) && memcmp(v[j].name, s, eq - s) == 0) {
                fprintf(stderr, "baram %s: --param '%.*s' given twice\n", cmd, (int)(eq - s), s);
                args_params_free(v, i);
                return -EINVAL;
            }
        }
        v[i].name = xstrndup(s, (size_t)(eq - s));
        v[i].value = xstrdup(eq + 1);
    }
    *out = v;
    *n = l->n;
    return 0;
}

void args_params_free(struct params_override *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free((char *)v[i].name);
        free((char *)v[i].value);
    }
    free(v);
}

int args_date(const char *cmd, const char *s, int64_t *at_ms)
{
    if (when_parse(s, at_ms) < 0) {
        fprintf(stderr, "baram %s: bad date '%s' (expected YYYY-MM-DD)\n", cmd, s);
        return -EINVAL;
    }
    return 0;
}

int args_int(const char *cmd, const char *flag, const char *s, int min, int max, int *out)
{
    if (parse_int(s, min, max, out) < 0) {
        fprintf(stderr, "baram %s: bad %s '%s' (a whole number from %d to %d)\n", cmd, flag, s, min,
                max);
        return -EINVAL;
    }
    return 0;
}

struct dag *args_dag(const char *path, const struct params_override *params, size_t nparams)
{
    struct diag d;
    diag_init(&d);
    struct dag *dag = dag_load_file(path, &d);
    if (dag && (params_check(dag, params, nparams, &d) < 0 || dagdir_check_notify(dag, &d) > 0)) {
        dag_free(dag);
        dag = NULL;
    }
    if (!dag)
        diag_print(&d, stderr, 0);
    diag_release(&d);
    return dag;
}
