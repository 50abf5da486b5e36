/*
 * runenv.c - what a try sees: template expansion ({{ ds }}, params,
 * outputs, item), the environment (the parent's minus baram's own BARAM_*,
 * then the run's and try's names, OUTPUT_<UPSTREAM>, the DAG's env), and a
 * run's param values (dag/params.h checks and resolves them).
 *
 * Large outputs: exec refuses a variable over 128 KiB and an environment
 * plus command over ARG_MAX (E2BIG), and a mapped upstream's JSON array of
 * outputs grows with its instances. An upstream's value over
 * RUN_ENV_INLINE_MAX, or the largest ones while the whole would not fit,
 * is written once per run to HOME/logs/<dag>/<run>/<task>.out and passed
 * as OUTPUT_<TASK>_FILE (its path), OUTPUT_<TASK> then unset. The file stays
 * with the run's logs and goes with them.
 *
 * Loop thread; run_diag_msg and run__diag_err are pure and may be called
 * from any thread.
 */
#include "exec/notify.h"
#include "sched/run_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "base/buf.h"
#include "base/diag.h"
#include "base/err.h"
#include "base/hmap.h"
#include "base/log.h"
#include "base/suggest.h"
#include "base/vec.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "dag/dag.h"
#include "dag/params.h"
#include "dag/template.h"
#include "exec/httptask.h"
#include "exec/spawn.h"
#include "exec/waiter.h"
#include "sched/engine.h"
#include "sched/logpath.h"
#include "sched/retry.h"
#include "sched/sched.h"
#include "sched/trigger.h"
#include "store/store.h"

/* An upstream's output goes to a file rather than OUTPUT_<TASK> past this: one task's output
 * (at most DAG_OUTPUT_MAX) always stays in the variable; a mapped upstream's array of outputs
 * past it does not. Half of what exec takes for one variable. */
#define RUN_ENV_INLINE_MAX DAG_OUTPUT_MAX

/* "OUTPUT_" / "PARAM_" + NAME upper-cased, non-alphanumerics as '_'. */
char *run__env_name(const char *prefix, const char *name)
{
    size_t pl = strlen(prefix), nl = strlen(name);
    char *s = xmalloc(pl + nl + 1);
    memcpy(s, prefix, pl);
    for (size_t i = 0; i < nl; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c >= 'a' && c <= 'z')
            c = (unsigned char)(c - 'a' + 'A');
        else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            c = '_';
        s[pl + i] = (char)c;
    }
    s[pl + nl] = 0;
    return s;
}

/* ---- templates ---- */

struct run_lookup {
    struct run *r;
    struct run_inst *in; /* NULL for hooks and for_each expansion */
    uint32_t task;       /* UINT32_MAX for hooks */
    bool shell;          /* the template is a command: a secret goes by the environment */
    char trybuf[16];
};

static int run_lookup(void *ud, const char *name, const char **val, size_t *vlen)
{
    struct run_lookup *lk = ud;
    struct run *r = lk->r;
    const struct dag *dag = r->dag;
    const char *v = NULL;
    if (strcmp(name, "ds") == 0) {
        v = r->ds;
    } else if (strcmp(name, "ts") == 0) {
        v = r->ts;
    } else if (strcmp(name, "run_id") == 0) {
        v = r->run_id;
    } else if (strcmp(name, "dag") == 0) {
        v = dag->id;
    } else if (strcmp(name, "task") == 0) {
        if (lk->in)
            v = run__inst_id(r, lk->in);
        else if (lk->task != UINT32_MAX)
            v = dag->tasks[lk->task].name;
    } else if (strcmp(name, "try") == 0) {
        if (lk->in) {
            snprintf(lk->trybuf, sizeof(lk->trybuf), "%d", lk->in->try_number);
            v = lk->trybuf;
        }
    } else if (strcmp(name, "item") == 0) {
        if (lk->in && lk->in->map_index >= 0)
            v = lk->in->item;
    } else if (strncmp(name, "params.", 7) == 0) {
        v = params_lookup(dag, r->param_values, name + 7);
    } else if (strncmp(name, "var.", 4) == 0) {
        return run__var_lookup(r, name + 4, lk->shell, val, vlen);
    } else if (strncmp(name, "outputs.", 8) == 0) {
        uint32_t t;
        if (dag_find(dag, name + 8, &t) && r->tasks[t].complete) {
            struct run_task *rt = &r->tasks[t];
            if (dag->tasks[t].mapped && rt->out_json) {
                *val = rt->out_json;
                *vlen = rt->out_json_len;
                return 0;
            }
            struct run_inst *up = rt->ninst ? run__inst_at(r, rt->inst_start) : NULL;
            if (up && up->output) {
                *val = up->output;
                *vlen = up->output_len;
                return 0;
            }
            v = "";
        }
    }
    if (!v)
        return -ENOENT;
    *val = v;
    *vlen = strlen(v);
    return 0;
}

/* Expands t into out; on failure, *msg (malloc'd) says why. */
int run__expand(struct run *r, const struct template *t, struct run_inst *in, uint32_t task,
                struct buf *out, char **msg)
{
    struct run_lookup lk = {
        .r = r, .in = in, .task = task, .shell = template_mode(t) == TEMPLATE_SHELL};
    const char *missing = NULL;
    int rc = template_expand(t, run_lookup, &lk, out, &missing);
    if (rc == -ENOENT && missing && strncmp(missing, "var.", 4) == 0)
        *msg = run__var_problem(r, missing + 4);
    else if (rc == -ENOENT)
        *msg = xasprintf("cannot resolve '{{ %s }}' in template", missing ? missing : "?");
    else if (rc == -EINVAL && missing) /* a NUL byte: /bin/sh -c would cut the command there */
        *msg = xasprintf("the value of '{{ %s }}' holds a NUL byte, which a command cannot carry",
                         missing);
    else if (rc == ERR_TOO_BIG)
        *msg = xasprintf("the template expands to more than %zu KiB, the most it may",
                         out->max / 1024);
    else if (rc < 0)
        *msg = xasprintf("template expansion failed: %s", err_str(rc));
    return rc;
}

/* ---- environment ---- */

/* A variable of baram's own environment that a try must not see: one baram sets itself, and
 * every BARAM_* of baram's (its configuration: BARAM_DB may hold a database password,
 * BARAM_PASSWORD a user's), so a task sees only the BARAM_* that describe its try. */
static bool run_env_excluded(struct run *r, const struct hmap *excl, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || strncmp(kv, "BARAM_", 6) == 0)
        return true;
    uint32_t dummy;
    return hmap_get(excl, kv, (size_t)(eq - kv), &dummy);
}

void run__env_init(struct run *r, struct run_vars *vars, const char *vars_missing)
{
    const struct dag *dag = r->dag;
    static const char *fixed[] = {"BARAM_DAG", "BARAM_RUN_ID", "BARAM_TASK",  "BARAM_TRY",
                                  "BARAM_DS",  "BARAM_TS",     "BARAM_OUTPUT"};
    struct hmap excl;
    run__vars_load(r, vars, vars_missing);
    hmap_init(&excl);
    hmap_init(&r->dag_env_names);
    VEC(char *) names = {0};
    for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
        hmap_put(&excl, fixed[i], strlen(fixed[i]), 0);
    for (size_t i = 0; i < dag->nenv; i++) {
        hmap_put(&excl, dag->env[i].name, strlen(dag->env[i].name), 0);
        hmap_put(&r->dag_env_names, dag->env[i].name, strlen(dag->env[i].name), 0);
    }
    for (size_t i = 0; i < dag->nparams; i++) {
        char *n = run__env_name("PARAM_", dag->params[i].name);
        VEC_PUSH(&names, n);
        hmap_put(&excl, n, strlen(n), 0);
    }
    for (uint32_t t = 0; t < dag->ntasks; t++) {
        hmap_put(&excl, r->tasks[t].env_name, strlen(r->tasks[t].env_name), 0);
        char *n = xasprintf("%s_FILE", r->tasks[t].env_name);
        VEC_PUSH(&names, n);
        hmap_put(&excl, n, strlen(n), 0);
    }

    for (char **e = environ; e && *e; e++)
        if (!run_env_excluded(r, &excl, *e))
            VEC_PUSH(&r->base_env, *e);

    uint32_t dummy;
    char *s;
#define RUN_ENV_ADD(NAME, VAL)                                                                     \
    do {                                                                                           \
        if (!hmap_get(&r->dag_env_names, NAME, strlen(NAME), &dummy)) {                            \
            s = xasprintf("%s=%s", NAME, VAL);                                                     \
            VEC_PUSH(&r->base_env, s);                                                             \
            VEC_PUSH(&r->owned_env, s);                                                            \
        }                                                                                          \
    } while (0)
    run_env_tags(dag->id, r->run_id, r->env_tags); /* pushed last: nothing overrides them */
    RUN_ENV_ADD("BARAM_DS", r->ds);
    RUN_ENV_ADD("BARAM_TS", r->ts);
    for (size_t i = 0; i < dag->nparams; i++) /* the PARAM_ names come first in names */
        RUN_ENV_ADD(names.v[i], r->param_values[i] ? r->param_values[i] : "");
#undef RUN_ENV_ADD
    for (size_t i = 0; i < dag->nenv; i++) {
        s = xasprintf("%s=%s", dag->env[i].name, dag->env[i].value ? dag->env[i].value : "");
        VEC_PUSH(&r->dag_env, s);
    }
    for (size_t i = 0; i < names.n; i++)
        free(names.v[i]);
    VEC_FREE(&names);
    hmap_release(&excl);
}

static void run_env_push(run_strv *env, run_strv *owned, char *s)
{
    VEC_PUSH(env, s);
    VEC_PUSH(owned, s);
}

void run_env_tags(const char *dag_id, const char *run_id, char *tags[RUN_ENV_NTAGS])
{
    tags[0] = xasprintf("BARAM_DAG=%s", dag_id);
    tags[1] = xasprintf("BARAM_RUN_ID=%s", run_id);
}

/* The DAG's env, then the run's tags and the end of env: the tags come last, so a process
 * that looks for them (exec/orphans.h) finds the run's own whatever came before. */
static void run_env_push_last(struct run *r, run_strv *env)
{
    for (size_t i = 0; i < r->dag_env.n; i++)
        VEC_PUSH(env, r->dag_env.v[i]);
    for (size_t i = 0; i < RUN_ENV_NTAGS; i++)
        VEC_PUSH(env, r->env_tags[i]);
    VEC_PUSH(env, NULL);
}

void run__env_hook(struct run *r, const struct notify_facts *f, run_strv *env, run_strv *owned)
{
    /* Like a try's: none of baram's own BARAM_* (BARAM_DB may hold a database password,
     * BARAM_PASSWORD a user's), only those that describe the run. */
    for (char **e = environ; e && *e; e++)
        if (strchr(*e, '=') && strncmp(*e, "BARAM_", 6) != 0)
            VEC_PUSH(env, *e);
    run_env_push(env, owned, xasprintf("BARAM_RUN_STATE=%s", run_state_name(r->state)));
    run_env_push(env, owned, xasprintf("BARAM_DS=%s", r->ds));
    run__vars_env(r, env);
    /* notify: the facts a notifier's message carries, the same for a `run` hook */
    run_env_push(env, owned, xasprintf("BARAM_HOOK=%s", f->hook));
    run_env_push(env, owned, xasprintf("BARAM_STATE=%s", f->state ? f->state : ""));
    if (f->task) {
        run_env_push(env, owned, xasprintf("BARAM_TASK=%s", f->task));
        run_env_push(env, owned, xasprintf("BARAM_TRY=%d", f->try_number));
    }
    if (f->message)
        run_env_push(env, owned, xasprintf("BARAM_MESSAGE=%s", f->message));
    if (f->url)
        run_env_push(env, owned, xasprintf("BARAM_URL=%s", f->url));
    run_env_push_last(r, env);
}

void run__env_release(struct run *r)
{
    for (size_t i = 0; i < r->owned_env.n; i++)
        free(r->owned_env.v[i]);
    for (size_t i = 0; i < r->dag_env.n; i++)
        free(r->dag_env.v[i]);
    for (size_t i = 0; i < RUN_ENV_NTAGS; i++)
        free(r->env_tags[i]);
    VEC_FREE(&r->owned_env);
    VEC_FREE(&r->dag_env);
    VEC_FREE(&r->base_env);
    hmap_release(&r->dag_env_names);
    run__vars_release(r);
}

/* What a downstream sees of upstream u: its output, or a mapped task's JSON array of outputs
 * ("" until it is complete). Borrowed from the run. */
static void run_up_value(struct run *r, uint32_t u, const char **v, size_t *vl)
{
    struct run_task *ut = &r->tasks[u];
    *v = "";
    *vl = 0;
    if (!ut->complete)
        return;
    if (r->dag->tasks[u].mapped && ut->out_json) {
        *v = ut->out_json;
        *vl = ut->out_json_len;
    } else if (ut->ninst && run__inst_at(r, ut->inst_start)->output) {
        *v = run__inst_at(r, ut->inst_start)->output;
        *vl = run__inst_at(r, ut->inst_start)->output_len;
    }
}

/* Upstream u's value in a file, written once per run (u is complete: it no longer changes):
 * HOME/logs/<dag>/<run>/<task>.out (logpath.h). Its path (owned by the run), or NULL with *msg. */
static const char *run_up_file(struct run *r, uint32_t u, char **msg)
{
    struct run_task *ut = &r->tasks[u];
    if (ut->out_file)
        return ut->out_file;
    if (!r->logdir) {
        *msg = xasprintf("the output of '%s' is too large for its variable, and this run has no "
                         "log folder to hold it",
                         r->dag->tasks[u].name);
        return NULL;
    }
    const char *v;
    size_t vl;
    run_up_value(r, u, &v, &vl);
    char *path = logpath_task_output(r->logdir, r->dag->tasks[u].name);
    int rc = spawn_file_put(path, v, vl);
    if (rc < 0) {
        *msg = xasprintf("cannot write the output of '%s' to '%s': %s", r->dag->tasks[u].name, path,
                         err_str(rc));
        free(path);
        return NULL;
    }
    ut->out_file = path;
    return path;
}

/* One direct upstream of a try: its variable's cost, and whether it goes to a file. */
struct run_up {
    uint32_t task;
    size_t cost; /* what "OUTPUT_<TASK>=value" costs exec */
    bool file;
};

static int run_up_cmp(const void *a, const void *b)
{
    size_t x = ((const struct run_up *)a)->cost, y = ((const struct run_up *)b)->cost;
    return x < y ? 1 : x > y ? -1 : 0;
}

void run__env_try_release(run_strv *env, run_strv *owned)
{
    for (size_t i = 0; i < owned->n; i++)
        free(owned->v[i]);
    VEC_FREE(owned);
    VEC_FREE(env);
}

/* Whether "K=V" kv names one of the task's env entries: its index, or -1. */
static int run_env_task_index(const struct dag_task *t, const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t n = eq ? (size_t)(eq - kv) : strlen(kv);
    for (size_t i = 0; i < t->nenv; i++)
        if (strlen(t->env[i].name) == n && memcmp(t->env[i].name, kv, n) == 0)
            return (int)i;
    return -1;
}

/* tz part: the task's own `env` over a try's environment (env ends with the run's tags and a
 * NULL). Its expanded "K=V" go before the tags; an entry of the same name after the inherited
 * ones (baram's, the DAG's) is dropped; an inherited one (the first base_env.n - owned_env.n,
 * which a worker replaces with its own) becomes the task's string too, so no two values of one
 * name reach the process. Only tasks with an `env` come here. 0, or a negative code with *msg. */
static int run_env_task(struct run *r, struct run_inst *in, run_strv *env, run_strv *owned,
                        char **msg)
{
    const struct dag_task *t = &r->dag->tasks[in->task];
    char **vals = xcalloc(t->nenv, sizeof *vals);
    int rc = 0;
    for (size_t i = 0; i < t->nenv && rc == 0; i++) {
        struct buf b = BUF_INIT(RUN_CMD_MAX);
        rc = buf_addf(&b, "%s=", t->env[i].name);
        if (rc == 0)
            rc = run__expand(r, t->env[i].value, in, in->task, &b, msg);
        if (rc == 0) {
            vals[i] = buf_detach(&b, NULL);
            VEC_PUSH(owned, vals[i]);
        } else {
            buf_release(&b);
        }
    }
    if (rc < 0) {
        free(vals);
        return rc;
    }
    size_t inherited = r->base_env.n - r->owned_env.n, tail = RUN_ENV_NTAGS + 1, out = 0;
    for (size_t i = 0; i < env->n - tail; i++) {
        int k = run_env_task_index(t, env->v[i]);
        if (k >= 0 && i < inherited)
            env->v[out++] = vals[k];
        else if (k < 0)
            env->v[out++] = env->v[i];
    }
    char *tags[RUN_ENV_NTAGS + 1];
    memcpy(tags, env->v + env->n - tail, sizeof tags);
    env->n = out;
    for (size_t i = 0; i < t->nenv; i++)
        VEC_PUSH(env, vals[i]);
    for (size_t i = 0; i < tail; i++)
        VEC_PUSH(env, tags[i]);
    free(vals);
    return 0;
}

/* The environment of one try: base + per-try names + OUTPUT_<UP> (or OUTPUT_<UP>_FILE) + the
 * DAG's env (+ the task's own, run_env_task), sized for a command of cmd_len bytes. Strings made
 * here are pushed to *owned. 0, or a negative code with *msg (malloc'd) when a large output
 * cannot be written to its file or a task's env value does not expand. */
int run__env_try(struct run *r, struct run_inst *in, const char *out_path, size_t cmd_len,
                 run_strv *env, run_strv *owned, char **msg)
{
    const struct dag *dag = r->dag;
    uint32_t dummy;
    VEC_RESERVE(env, r->base_env.n + r->dag_env.n + 8);
    memcpy(env->v, r->base_env.v, r->base_env.n * sizeof(char *));
    env->n = r->base_env.n;
    if (!hmap_get(&r->dag_env_names, "BARAM_TASK", 10, &dummy))
        run_env_push(env, owned, xasprintf("BARAM_TASK=%s", run__inst_id(r, in)));
    if (!hmap_get(&r->dag_env_names, "BARAM_TRY", 9, &dummy))
        run_env_push(env, owned, xasprintf("BARAM_TRY=%d", in->try_number));
    if (out_path && !hmap_get(&r->dag_env_names, "BARAM_OUTPUT", 12, &dummy))
        run_env_push(env, owned, xasprintf("BARAM_OUTPUT=%s", out_path));

    /* Which upstream values go to files: any over RUN_ENV_INLINE_MAX, then the largest until
     * the environment and the command fit in what exec takes (spawn.h). */
    const struct graph *g = &dag->graph;
    uint32_t first = g->up_start[in->task], nup = g->up_start[in->task + 1] - first;
    struct run_up *ups = xcalloc(nup ? nup : 1, sizeof(*ups));
    size_t n = 0, total = 0;
    for (size_t i = 0; i < env->n; i++)
        total += strlen(env->v[i]) + 1 + sizeof(char *);
    for (size_t i = 0; i < r->dag_env.n; i++)
        total += strlen(r->dag_env.v[i]) + 1 + sizeof(char *);
    for (size_t i = 0; i < RUN_ENV_NTAGS; i++)
        total += strlen(r->env_tags[i]) + 1 + sizeof(char *);
    total += cmd_len + 1 <= SPAWN_ARG_MAX ? cmd_len + 1 : PATH_MAX; /* else run from a file */
    for (uint32_t k = 0; k < nup; k++) {
        uint32_t u = g->up[first + k];
        const char *name = r->tasks[u].env_name;
        if (hmap_get(&r->dag_env_names, name, strlen(name), &dummy))
            continue;
        const char *v;
        size_t vl;
        run_up_value(r, u, &v, &vl);
        ups[n].task = u;
        ups[n].cost = strlen(name) + 1 + vl + 1 + sizeof(char *);
        ups[n].file = vl > RUN_ENV_INLINE_MAX;
        total += ups[n].file ? PATH_MAX : ups[n].cost;
        n++;
    }
    if (total > spawn_exec_max()) {
        qsort(ups, n, sizeof(*ups), run_up_cmp);
        for (size_t i = 0; i < n && total > spawn_exec_max(); i++) {
            if (!ups[i].file && ups[i].cost > PATH_MAX) {
                ups[i].file = true;
                total -= ups[i].cost - PATH_MAX;
            }
        }
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = ups[i].task;
        const char *name = r->tasks[u].env_name;
        if (ups[i].file) {
            const char *path = run_up_file(r, u, msg);
            if (!path) {
                rc = -EIO;
                break;
            }
            char *s = xasprintf("%s_FILE=%s", name, path);
            if (hmap_get(&r->dag_env_names, s, strlen(name) + 5, &dummy))
                free(s);
            else
                run_env_push(env, owned, s);
            continue;
        }
        const char *v;
        size_t vl;
        run_up_value(r, u, &v, &vl);
        size_t nl = strlen(name);
        char *s = xmalloc(nl + 1 + vl + 1);
        memcpy(s, name, nl);
        s[nl] = '=';
        memcpy(s + nl + 1, v, vl);
        s[nl + 1 + vl] = 0;
        run_env_push(env, owned, s);
    }
    free(ups);
    run__vars_env(r, env);
    run_env_push_last(r, env);
    if (rc == 0 && dag->tasks[in->task].nenv)
        rc = run_env_task(r, in, env, owned, msg);
    return rc;
}

/* ---- setup and the front doors ---- */

/* The values of the DAG's params with the overrides applied (last override wins). The run
 * keeps its own copies of the overrides' values. */
void run__params_init(struct run *r, const struct params_override *params, size_t nparams)
{
    struct params_override *cp = xcalloc(nparams ? nparams : 1, sizeof(*cp));
    r->owned_params = xcalloc(nparams ? nparams : 1, sizeof(char *));
    for (size_t i = 0; i < nparams; i++) {
        cp[i].name = params[i].name;
        if (params[i].value)
            cp[i].value = r->owned_params[r->nowned_params++] = xstrdup(params[i].value);
    }
    r->param_values = params_values(r->dag, cp, nparams);
    free(cp);
}

char *run_diag_msg(struct diag *d)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    for (size_t i = 0; i < d->n; i++) {
        char *line = diag_format(&d->v[i]);
        RUN_IGN(buf_addf(&b, "%s%s", i ? "\n" : "", line));
        free(line);
    }
    return buf_detach(&b, NULL);
}

int run__diag_err(struct diag *d, int code, struct err *e)
{
    if (!e)
        return code;
    struct buf b = BUF_INIT(sizeof e->msg - 64); /* room for the count */
    size_t more = 0;
    for (size_t i = 0; i < d->n; i++) {
        char *line = diag_format(&d->v[i]);
        if (more || buf_addf(&b, "%s%s", i ? "\n" : "", line) < 0)
            more++;
        free(line);
    }
    if (more)
        (void)err_set(e, code, "%s%s(%zu more not shown)", b.data, b.len ? "\n" : "", more);
    else
        (void)err_set(e, code, "%s", b.data);
    buf_release(&b);
    return code;
}
