/*
 * dag.c - the DAG checker: the AST of a DAG file (dagfile.h) to a checked,
 * self-contained struct dag (dag.h), or every problem as a diagnostic.
 *
 * Key idea: one pass per concern over the tree, never stopping at the first
 * error (every check records a diag_err at the offending node and goes on),
 * and nothing quadratic, so a 100,000-task file checks in well under a
 * second: task names go through a hash map, `needs` duplicates through a
 * stamp array, edges into the CSR graph of graph.h; the "outputs.TASK must be
 * upstream" rule costs a direct-upstream scan, and a pruned upward search
 * only for tasks that reference a non-direct upstream. Cycles are reported
 * one error each (up to MAX_CYCLES), each starting at its first task in file
 * order; diagnostics are sorted by position before returning.
 *
 * Defaults are folded in while checking: a task starts as a copy of the
 * checked `defaults` and its own keys override them, so an error in
 * `defaults` is reported once.
 *
 * Memory: the AST and scratch live in a per-load arena released before
 * returning; the dag owns every byte it points to (xmalloc'd), so a half-built
 * dag is freed by dag_free on the error path. Any thread; sodium_init runs
 * once under pthread_once.
 */
#include "dag/dag.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/diag.h"
#include "base/err.h"
#include "base/parse.h"
#include "base/suggest.h"
#include "base/tz.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "dag/cron.h"
#include "dag/dagfile.h"
#include "dag/duration.h"
#include "dag/params.h"
#include "dag/template.h"

/* Did-you-mean work per file, in candidates compared: a file with thousands of misspelt
 * names among 100,000 tasks must not turn suggestions into a quadratic step. */
#define HINT_BUDGET (500 * 1000)

/* ---- trigger rules ---------------------------------------------------- */

static const char *const trigger_names[] = {
#define X(e, s) s,
    TRIGGER_RULE_TABLE(X)
#undef X
};

const char *trigger_rule_name(enum trigger_rule r)
{
    if ((unsigned)r >= TRIGGER_RULE_COUNT)
        return "?";
    return trigger_names[r];
}

int trigger_rule_parse(const char *name, enum trigger_rule *out)
{
    for (int i = 0; i < TRIGGER_RULE_COUNT; i++)
        if (strcmp(name, trigger_names[i]) == 0) {
            *out = (enum trigger_rule)i;
            return 0;
        }
    return -EINVAL;
}

/* ---- key tables ------------------------------------------------------- */

static const char *const top_keys[] = {
    "dag",
    "description",
    "schedule",
    "start",
    "end",
    "catchup",
    "max_active_runs",
    "params",
    "env",
    "defaults",
    "on_success",
    "on_failure",
    "tasks",
    /* notify */
    "deadline",
    /* tz */
    "timezone",
    /* conc */
    "run_timeout",
    "max_active_tasks",
    "depends_on_past",
};

static const char *const task_keys[] = {
    "needs",
    "run",
    "http",
    "wait",
    "for_each",
    "trigger",
    "retries",
    "retry_delay",
    "retry_backoff",
    "max_retry_delay",
    "timeout",
    "pool",
    "priority",
    "description",
    "queue",
    /* notify */
    "on_success",
    "on_failure",
    "on_retry",
    /* tz */
    "env",
    "dir",
    /* conc */
    "max_active",
    "depends_on_past",
};

/* Task keys that `defaults` may not hold. */
static const char *const task_only_keys[] = {"needs",      "run",      "http", "wait",
                                             "env",        "for_each", "dir",  "on_success",
                                             "on_failure", "on_retry"};

static const char *const defaults_keys[] = {
    "trigger", "retries", "retry_delay", "retry_backoff", "max_retry_delay",
    "timeout", "pool",    "priority",    "description",   "queue",
};

static const char *const http_keys[] = {
    "method", "url", "body", "headers", "expect", "timeout", "circuit_breaker",
};
static const char *const wait_keys[] = {"file", "http", "every", "timeout"};
static const char *const cb_keys[] = {"failures", "reset"};
static const char *const hook_keys[] = {"run", "notify"};
static const char *const deadline_keys[] = {"after", "run", "notify"};

static const char *const http_methods[] = {"GET",   "HEAD",   "POST",   "PUT",
                                           "PATCH", "DELETE", "OPTIONS"};

/* tz: the zone of DAGs without `timezone:` (the home's `timezone:`); NULL: UTC. Set by the main
 * thread before DAGs load on other threads. */
static const struct tz *dag_default_tz;

void dag_set_default_tz(const struct tz *z)
{
    dag_default_tz = z;
}

const char *dag_timezone(const struct dag *dag)
{
    return dag->tz ? tz_name(dag->tz) : "UTC";
}

static const char *const builtin_names[] = {"ds", "ts", "run_id", "dag", "task", "try", "item"};

/* ---- the checker's context ---------------------------------------------- */

/* A compiled template waiting for its name check (which needs the whole graph). */
struct tref {
    const struct template *t; /* borrowed from the dag */
    const struct dagfile_node *node;
    const char *field;
    uint32_t task; /* UINT32_MAX: a DAG hook */
    bool in_for_each;
};

struct ck {
    struct diag *d;
    const char *file;
    struct dag *dag;
    struct arena a;
    const char *text;
    size_t len;
    size_t *line_starts; /* lazily built, arena */
    size_t nlines;
    size_t hints_left;                         /* candidates we may still compare for suggestions */
    const char **task_names;                   /* arena: tasks[i].name, for suggestions */
    const struct dagfile_node **task_keys;     /* arena: each task's key node */
    const struct dagfile_node **task_vals;     /* arena: each task's mapping (or NULL) */
    const struct dagfile_node **task_vals_raw; /* arena: each task's value node */
    struct tref *trefs;                        /* owned */
    size_t ntrefs, trcap;
    uint32_t *topo_pos;  /* owned, or NULL if the graph has a cycle */
    uint32_t *mark;      /* owned: stamps for the upstream search */
    uint32_t *direct;    /* owned: direct[u] == direct_for when u is a direct upstream */
    uint32_t direct_for; /* task index + 1 whose upstream direct[] marks; 0 = none */
    struct hmap params;  /* param name -> index */
    uint32_t *queue;     /* owned */
    uint32_t stamp;
};

static void err_at(struct ck *c, const struct dagfile_node *n, const char *fmt, ...)
    PRINTF_LIKE(3, 4);
static void err_at(struct ck *c, const struct dagfile_node *n, const char *fmt, ...)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    va_list ap;
    va_start(ap, fmt);
    if (buf_vaddf(&b, fmt, ap) < 0)
        buf_reset(&b);
    va_end(ap);
    diag_err(c->d, c->file, n ? n->line : 0, n ? n->col : 0, "%s", b.data);
    buf_release(&b);
}

static void err_pos(struct ck *c, int line, int col, const char *fmt, ...) PRINTF_LIKE(4, 5);
static void err_pos(struct ck *c, int line, int col, const char *fmt, ...)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    va_list ap;
    va_start(ap, fmt);
    if (buf_vaddf(&b, fmt, ap) < 0)
        buf_reset(&b);
    va_end(ap);
    diag_err(c->d, c->file, line, col, "%s", b.data);
    buf_release(&b);
}

/* Adds "did you mean 'PREFIXbest'?" to the last entry when a close candidate exists. */
static void hint_closest(struct ck *c, const char *word, const char *const *cands, size_t n,
                         const char *prefix)
{
    if (c->hints_left < n)
        return;
    c->hints_left -= n;
    const char *best = suggest_closest(word, cands, n);
    if (best)
        diag_hint(c->d, "did you mean '%s%s'?", prefix, best);
}

static bool is_str(const struct dagfile_node *n)
{
    return n && n->kind == DAGFILE_SCALAR && !dagfile_is_null(n);
}

/* Short form of a scalar for messages. */
#define SHOW "%.100s"

/* Ids name folders under HOME/logs, so "." and ".." (any all-dot name) are refused too. */
static bool id_ok(const char *s, size_t len)
{
    if (len < 1 || len > DAG_ID_MAX || strspn(s, ".") >= len)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return false;
    }
    return true;
}

bool dag_id_valid(const char *s)
{
    return id_ok(s, strlen(s));
}

static bool env_name_ok(const char *s, size_t len)
{
    if (len < 1 || len > DAG_ID_MAX || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            return false;
    }
    return true;
}

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

/* Reports duplicate and unknown keys of mapping m. special (may be NULL) are keys known but
 * refused here, reported as "'KEY' is not allowed in WHERE". */
static void check_keys(struct ck *c, const struct dagfile_node *m, const char *const *keys,
                       size_t nkeys, const char *const *special, size_t nspecial, const char *where)
{
    for (size_t i = 0; i < m->n; i++) {
        const struct dagfile_node *k = m->pairs[i].key;
        if (m->pairs[i].dup_line) {
            err_at(c, k, "duplicate key '" SHOW "'", k->str);
            diag_hint(c->d, "first defined at line %d", m->pairs[i].dup_line);
            continue;
        }
        if (in_list(k->str, keys, nkeys))
            continue;
        if (special && in_list(k->str, special, nspecial)) {
            err_at(c, k, "'%s' is not allowed in '%s'", k->str, where);
            continue;
        }
        err_at(c, k, "unknown key '" SHOW "'", k->str);
        hint_closest(c, k->str, keys, nkeys, "");
    }
}

/* ---- typed values ------------------------------------------------------- */

static bool get_string(struct ck *c, const struct dagfile_node *v, const char *key)
{
    if (is_str(v))
        return true;
    err_at(c, v, "'%s' must be a string", key);
    return false;
}

static bool get_int(struct ck *c, const struct dagfile_node *v, const char *key, int min, int max,
                    int *out)
{
    if (!is_str(v)) {
        err_at(c, v, "'%s' must be an integer", key);
        return false;
    }
    int r = parse_int(v->str, min, max, out);
    if (r == -ERANGE) {
        if (max == INT_MAX)
            err_at(c, v, "'%s' must be at least %d", key, min);
        else
            err_at(c, v, "'%s' must be between %d and %d", key, min, max);
        return false;
    }
    if (r < 0) {
        err_at(c, v, "'%s' must be an integer", key);
        return false;
    }
    return true;
}

static bool get_duration(struct ck *c, const struct dagfile_node *v, const char *key, int64_t *out)
{
    if (!is_str(v)) {
        err_at(c, v, "'%s' must be a duration", key);
        return false;
    }
    if (duration_parse(v->str, out) < 0) {
        err_at(c, v, "bad duration '" SHOW "' for '%s'", v->str, key);
        return false;
    }
    return true;
}

static bool get_bool(struct ck *c, const struct dagfile_node *v, const char *key, bool *out)
{
    if (is_str(v) && v->style == DAGFILE_PLAIN) {
        if (strcmp(v->str, "true") == 0) {
            *out = true;
            return true;
        }
        if (strcmp(v->str, "false") == 0) {
            *out = false;
            return true;
        }
    }
    err_at(c, v, "'%s' must be true or false", key);
    return false;
}

static bool get_map(struct ck *c, const struct dagfile_node *v, const char *key)
{
    if (v && v->kind == DAGFILE_MAP)
        return true;
    err_at(c, v, "'%s' must be a mapping", key);
    return false;
}

/* ---- templates ------------------------------------------------------------ */

static void build_line_index(struct ck *c)
{
    if (c->line_starts)
        return;
    size_t n = 1;
    for (size_t i = 0; i < c->len; i++)
        n += c->text[i] == '\n';
    c->line_starts = arena_alloc(&c->a, n * sizeof *c->line_starts);
    c->nlines = 0;
    c->line_starts[c->nlines++] = 0;
    for (size_t i = 0; i < c->len; i++)
        if (c->text[i] == '\n')
            c->line_starts[c->nlines++] = i + 1;
}

/* Where byte off of scalar n's value stands in the file. Exact for one-line scalars (plain or
 * quoted without escapes before off) and literal blocks; the scalar's start otherwise. */
static void tpl_pos(struct ck *c, const struct dagfile_node *n, size_t off, int *line, int *col)
{
    *line = n->line;
    *col = n->col;
    if (!n->multiline &&
        (n->style == DAGFILE_PLAIN || n->style == DAGFILE_SQUOTED || n->style == DAGFILE_DQUOTED)) {
        size_t add = off + (n->style == DAGFILE_PLAIN ? 0 : 1);
        if (add < (size_t)INT_MAX - (size_t)n->col)
            *col = n->col + (int)add;
        return;
    }
    if (n->style == DAGFILE_LITERAL) {
        size_t k = 0, ls = 0;
        for (size_t i = 0; i < off && i < n->len; i++)
            if (n->str[i] == '\n') {
                k++;
                ls = i + 1;
            }
        build_line_index(c);
        size_t li = (size_t)n->line + k; /* 0-based index of the content line */
        if (li >= c->nlines || li > (size_t)INT_MAX - 1)
            return;
        size_t indent = 0;
        for (size_t p = c->line_starts[li]; p < c->len && c->text[p] == ' '; p++)
            indent++;
        *line = (int)li + 1;
        *col = (int)(indent + (off - ls) + 1 < (size_t)INT_MAX ? indent + (off - ls) + 1 : 1);
    }
}

/* Compiles scalar v as a template; NULL after reporting a syntax error. */
static struct template *compile(struct ck *c, const struct dagfile_node *v, const char *field,
                                enum template_escape esc)
{
    struct template *t = NULL;
    size_t off = 0;
    struct err e = {0};
    if (template_compile(v->str, v->len, esc, &t, &off, &e) < 0) {
        int line, col;
        tpl_pos(c, v, off, &line, &col);
        err_pos(c, line, col, "bad template in '%s': %s", field, err_msg(&e));
        return NULL;
    }
    return t;
}

static void add_tref(struct ck *c, const struct template *t, const struct dagfile_node *node,
                     const char *field, uint32_t task, bool in_for_each)
{
    if (!t || template_nrefs(t) == 0)
        return;
    xgrow((void **)&c->trefs, &c->trcap, c->ntrefs + 1, sizeof *c->trefs);
    c->trefs[c->ntrefs++] = (struct tref){t, node, field, task, in_for_each};
}

/* True if task `up` is upstream (direct or transitive) of task `down`. */
static bool is_upstream(struct ck *c, uint32_t up, uint32_t down)
{
    const struct graph *g = &c->dag->graph;
    /* Direct upstream: mark down's upstream once, then each reference is O(1) (a sink with
     * 100,000 upstream tasks may reference many of them). */
    if (c->direct_for != down + 1) {
        c->direct_for = down + 1;
        for (uint32_t i = g->up_start[down]; i < g->up_start[down + 1]; i++)
            c->direct[g->up[i]] = down + 1;
    }
    if (c->direct[up] == down + 1)
        return true;
    if (!c->topo_pos)
        return true; /* a cycle: unknowable, and the cycle is the error to fix first */
    if (c->topo_pos[up] >= c->topo_pos[down])
        return false;
    /* Search upward from down, pruning vertices placed before `up` in the topological
     * order: no path from `up` can pass through them. */
    uint32_t limit = c->topo_pos[up];
    uint32_t stamp = ++c->stamp;
    size_t head = 0, tail = 0;
    c->queue[tail++] = down;
    c->mark[down] = stamp;
    while (head < tail) {
        uint32_t v = c->queue[head++];
        for (uint32_t i = g->up_start[v]; i < g->up_start[v + 1]; i++) {
            uint32_t w = g->up[i];
            if (w == up)
                return true;
            if (c->mark[w] == stamp || c->topo_pos[w] < limit)
                continue;
            c->mark[w] = stamp;
            c->queue[tail++] = w;
        }
    }
    return false;
}

/* vars: records a key that a template reads, once. A DAG reads a few: a scan is enough. */
static void dag_var_key_add(struct dag *dag, const char *key)
{
    for (size_t i = 0; i < dag->nvar_keys; i++)
        if (strcmp(dag->var_keys[i], key) == 0)
            return;
    dag->var_keys = xrealloc(dag->var_keys, (dag->nvar_keys + 1) * sizeof *dag->var_keys);
    dag->var_keys[dag->nvar_keys++] = xstrdup(key);
}

static void check_tref(struct ck *c, const struct tref *r)
{
    struct dag *dag = c->dag;
    bool hook = r->task == UINT32_MAX;
    for (size_t i = 0; i < template_nrefs(r->t); i++) {
        size_t off = 0;
        const char *name = template_ref(r->t, i, &off);
        int line, col;
        tpl_pos(c, r->node, off, &line, &col);
        if (strcmp(name, "item") == 0) {
            if (hook)
                err_pos(c, line, col, "'item' is not available in a hook");
            else if (r->in_for_each)
                err_pos(c, line, col, "'item' is not available in 'for_each'");
            else if (!dag->tasks[r->task].mapped)
                err_pos(c, line, col, "'item' is only available in a task with 'for_each'");
            continue;
        }
        if (in_list(name, builtin_names, ARRAY_SIZE(builtin_names)))
            continue;
        if (strncmp(name, "var.", 4) == 0) { /* vars: any key, read when a run starts */
            size_t kl = strlen(name + 4);
            if (kl == 0 || kl > DAG_VAR_KEY_MAX)
                err_pos(c, line, col, "bad variable key in '" SHOW "': 1 to %d characters", name,
                        DAG_VAR_KEY_MAX);
            dag->uses_vars = true;
            dag_var_key_add(dag, name + 4);
            continue;
        }
        if (strncmp(name, "params.", 7) == 0) {
            uint32_t pi;
            if (hmap_get(&c->params, name + 7, strlen(name + 7), &pi))
                continue;
            err_pos(c, line, col, "unknown template name '" SHOW "'", name);
            if (dag->nparams && c->hints_left >= dag->nparams) {
                const char **names = arena_alloc(&c->a, dag->nparams * sizeof *names);
                for (size_t p = 0; p < dag->nparams; p++)
                    names[p] = dag->params[p].name;
                hint_closest(c, name + 7, names, dag->nparams, "params.");
            }
            continue;
        }
        if (strncmp(name, "outputs.", 8) == 0) {
            uint32_t up;
            if (hook) {
                err_pos(c, line, col, "'" SHOW "' is not available in a hook", name);
                continue;
            }
            if (!dag_find(dag, name + 8, &up)) {
                err_pos(c, line, col, "unknown template name '" SHOW "'", name);
                hint_closest(c, name + 8, c->task_names, dag->ntasks, "outputs.");
                continue;
            }
            if (!is_upstream(c, up, r->task))
                err_pos(c, line, col, "'" SHOW "' is not an upstream of '%s'", name,
                        dag->tasks[r->task].name);
            continue;
        }
        err_pos(c, line, col, "unknown template name '" SHOW "'", name);
        hint_closest(c, name, builtin_names, ARRAY_SIZE(builtin_names), "");
    }
}

/* ---- DAG-level keys --------------------------------------------------------- */

/* A hook's `run` or `notify` (exactly one), in mapping v (hook or deadline) named key. */
static void check_hook_body(struct ck *c, const struct dagfile_node *v, const char *key,
                            struct dag_hook *h)
{
    const struct dagfile_node *run = dagfile_get(v, "run"), *notify = dagfile_get(v, "notify");
    if (!run && !notify) {
        err_at(c, v, "'%s' needs 'run' or 'notify'", key);
        return;
    }
    if (run && notify) {
        err_at(c, notify, "'%s' takes 'run' or 'notify', not both", key);
        return;
    }
    if (notify) {
        if (!get_string(c, notify, "notify"))
            return;
        if (!id_ok(notify->str, notify->len)) {
            err_at(c, notify, "bad notifier name '" SHOW "'", notify->str);
            diag_hint(c->d, "use letters, digits, '_', '.' and '-'");
            return;
        }
        h->notify = xstrndup(notify->str, notify->len);
        h->line = notify->line;
        h->col = notify->col;
        return;
    }
    if (!get_string(c, run, "run"))
        return;
    h->run = compile(c, run, "run", TEMPLATE_SHELL);
    add_tref(c, h->run, run, "run", UINT32_MAX, false);
}

static void check_hook(struct ck *c, const struct dagfile_node *v, const char *key,
                       struct dag_hook *h)
{
    if (!get_map(c, v, key))
        return;
    check_keys(c, v, hook_keys, ARRAY_SIZE(hook_keys), NULL, 0, key);
    check_hook_body(c, v, key, h);
}

static void check_deadline(struct ck *c, const struct dagfile_node *v, struct dag *dag)
{
    if (!get_map(c, v, "deadline"))
        return;
    check_keys(c, v, deadline_keys, ARRAY_SIZE(deadline_keys), NULL, 0, "deadline");
    const struct dagfile_node *after = dagfile_get(v, "after");
    int64_t ms = 0;
    if (!after) {
        err_at(c, v, "'deadline' needs 'after'");
    } else if (get_duration(c, after, "after", &ms) && ms <= 0) {
        err_at(c, after, "'after' must be more than 0");
        ms = 0;
    }
    check_hook_body(c, v, "deadline", &dag->deadline);
    if (dag_hook_set(&dag->deadline))
        dag->deadline_ms = ms;
}

/* params and env: a mapping of names to scalars. */
/* The variable part of PARAM_<NAME> and OUTPUT_<TASK> (SPEC section 2): upper case, any
 * other character than a letter or digit as '_'. In the arena. */
static char *env_key(struct ck *c, const char *name)
{
    size_t n = strlen(name);
    char *k = arena_alloc(&c->a, n + 1);
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        else if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
            ch = '_';
        k[i] = ch;
    }
    k[n] = 0;
    return k;
}

/* Two direct upstreams of one task that would become the same $OUTPUT_<TASK> (a-b and a_b)
 * would overwrite each other in its environment. */
static void check_output_vars(struct ck *c)
{
    const struct dag *dag = c->dag;
    const struct graph *g = &dag->graph;
    /* Each upstream u may become $OUTPUT_<KEY> (keys[2u]) or, when its output is large,
     * $OUTPUT_<KEY>_FILE (keys[2u + 1]): neither may be another upstream's name for its own. */
    char **keys = NULL;
    for (uint32_t t = 0; t < dag->ntasks; t++) {
        if (graph_nup(g, t) < 2)
            continue;
        if (!keys) {
            keys = arena_zalloc(&c->a, 2 * (size_t)dag->ntasks * sizeof *keys);
            for (uint32_t u = 0; u < dag->ntasks; u++) {
                keys[2 * u] = env_key(c, dag->tasks[u].name);
                size_t n = strlen(keys[2 * u]);
                keys[2 * u + 1] = arena_alloc(&c->a, n + sizeof "_FILE");
                memcpy(keys[2 * u + 1], keys[2 * u], n);
                memcpy(keys[2 * u + 1] + n, "_FILE", sizeof "_FILE");
            }
        }
        struct hmap seen;
        hmap_init(&seen);
        bool clash = false;
        for (uint32_t k = g->up_start[t]; k < g->up_start[t + 1] && !clash; k++) {
            uint32_t u = g->up[k], prev;
            for (uint32_t j = 2 * u; j < 2 * u + 2 && !clash; j++) {
                if (hmap_get(&seen, keys[j], strlen(keys[j]), &prev) && prev != u) {
                    err_at(c, c->task_keys[t],
                           "upstreams '%s' and '%s' of task '%s' both become $OUTPUT_%s",
                           dag->tasks[prev].name, dag->tasks[u].name, dag->tasks[t].name, keys[j]);
                    /* Which of the two the name is a large output's file for, if either. */
                    uint32_t big = j % 2 ? u : strcmp(keys[2 * prev], keys[j]) != 0 ? prev : t;
                    if (big == t)
                        diag_hint(c->d, "rename one of them");
                    else
                        diag_hint(c->d,
                                  "a large output of '%s' is passed as $OUTPUT_%s; rename "
                                  "one of them",
                                  dag->tasks[big].name, keys[j]);
                    clash = true;
                }
            }
            for (uint32_t j = 2 * u; j < 2 * u + 2; j++)
                (void)hmap_put(&seen, keys[j], strlen(keys[j]), u);
        }
        hmap_release(&seen);
    }
}

static void check_kvs(struct ck *c, const struct dagfile_node *v, const char *key, bool env,
                      struct dag_kv **out, size_t *nout, struct param_schema **schemas)
{
    if (!v || dagfile_is_null(v) || !get_map(c, v, key))
        return;
    struct hmap vars; /* params: $PARAM_<NAME> -> index, to catch two names for one variable */
    hmap_init(&vars);
    *out = xcalloc(v->n ? v->n : 1, sizeof **out);
    for (size_t i = 0; i < v->n; i++) {
        const struct dagfile_node *k = v->pairs[i].key, *val = v->pairs[i].value;
        if (v->pairs[i].dup_line) {
            err_at(c, k, "duplicate key '" SHOW "'", k->str);
            diag_hint(c->d, "first defined at line %d", v->pairs[i].dup_line);
            continue;
        }
        if (env ? !env_name_ok(k->str, k->len) : !id_ok(k->str, k->len) || strchr(k->str, '.')) {
            err_at(c, k, "bad %s name '" SHOW "'", env ? "env" : "param", k->str);
            diag_hint(c->d, env ? "use letters, digits and '_', not starting with a digit"
                                : "use letters, digits, '_' and '-'");
            continue;
        }
        if (env && strncmp(k->str, "BARAM_", 6) == 0) {
            /* baram's own: the run's tags among them find a try left running by a crashed
             * daemon (exec/orphans.h), so a DAG may not set or hide them */
            err_at(c, k, "env '" SHOW "' is baram's own", k->str);
            diag_hint(c->d, "baram sets the BARAM_* variables of every try; pick another name");
            continue;
        }
        if (!env) {
            char *var = env_key(c, k->str);
            uint32_t prev;
            if (hmap_get(&vars, var, strlen(var), &prev)) {
                err_at(c, k, "params '%s' and '" SHOW "' both become $PARAM_%s", (*out)[prev].name,
                       k->str, var);
                diag_hint(c->d, "rename one of them");
                continue;
            }
            (void)hmap_put(&vars, var, strlen(var), (uint32_t)*nout);
        }
        struct dag_kv *kv = &(*out)[(*nout)++];
        kv->name = xstrndup(k->str, k->len);
        if (!env && val->kind == DAGFILE_MAP) { /* a typed param: {type, default, ...} */
            if (!*schemas)
                *schemas = xcalloc(v->n, sizeof **schemas);
            kv->value = params_schema_load(&(*schemas)[*nout - 1], kv->name, val, c->file, c->d);
            continue;
        }
        if (val->kind != DAGFILE_SCALAR || (env && dagfile_is_null(val))) {
            err_at(c, val, "%s '%s' must be a string%s", env ? "env" : "param", kv->name,
                   env ? "" : ", a number, a boolean or empty");
            if (!env && val->kind == DAGFILE_SEQ) /* params: a list is a typed default */
                diag_hint(c->d, "a list param is typed: {type: array, default: [...]}");
            continue;
        }
        kv->value = dagfile_is_null(val) ? NULL : xstrndup(val->str, val->len);
    }
    hmap_release(&vars);
}

/* ---- tasks -------------------------------------------------------------------- */

/* The keys a task shares with `defaults`; writes into t. */
static void check_common(struct ck *c, const struct dagfile_node *m, struct dag_task *t)
{
    for (size_t i = 0; i < m->n; i++) {
        if (m->pairs[i].dup_line)
            continue;
        const char *k = m->pairs[i].key->str;
        const struct dagfile_node *v = m->pairs[i].value;
        if (strcmp(k, "trigger") == 0) {
            if (!get_string(c, v, k))
                continue;
            if (trigger_rule_parse(v->str, &t->trigger) < 0) {
                err_at(c, v, "bad trigger rule '" SHOW "'", v->str);
                hint_closest(c, v->str, trigger_names, TRIGGER_RULE_COUNT, "");
                if (!c->d->v[c->d->n - 1].hint)
                    diag_hint(c->d, "use all_success, all_failed, all_done, one_success, "
                                    "one_failed or none_failed");
            }
        } else if (strcmp(k, "retries") == 0) {
            (void)get_int(c, v, k, 0, 1000, &t->retries);
        } else if (strcmp(k, "retry_delay") == 0) {
            (void)get_duration(c, v, k, &t->retry_delay_ms);
        } else if (strcmp(k, "retry_backoff") == 0) {
            double x;
            if (!is_str(v) || parse_double(v->str, &x) < 0)
                err_at(c, v, "'%s' must be a number", k);
            else if (x < 1 || x > 1000)
                err_at(c, v, "'%s' must be between 1 and 1000", k);
            else
                t->retry_backoff = x;
        } else if (strcmp(k, "max_retry_delay") == 0) {
            (void)get_duration(c, v, k, &t->max_retry_delay_ms);
        } else if (strcmp(k, "timeout") == 0) {
            (void)get_duration(c, v, k, &t->timeout_ms);
        } else if (strcmp(k, "pool") == 0) {
            if (!get_string(c, v, k))
                continue;
            if (!id_ok(v->str, v->len)) {
                err_at(c, v, "bad pool name '" SHOW "'", v->str);
                diag_hint(c->d, "use letters, digits, '_', '.' and '-'");
                continue;
            }
            free(t->pool);
            t->pool = xstrndup(v->str, v->len);
        } else if (strcmp(k, "queue") == 0) {
            if (!get_string(c, v, k))
                continue;
            if (!id_ok(v->str, v->len) || v->len > DAG_QUEUE_MAX) {
                err_at(c, v, "bad queue name '" SHOW "'", v->str);
                diag_hint(c->d, "use at most 64 letters, digits, '_', '.' and '-'");
                continue;
            }
            free(t->queue);
            t->queue = xstrndup(v->str, v->len);
        } else if (strcmp(k, "priority") == 0) {
            (void)get_int(c, v, k, INT_MIN + 1, INT_MAX - 1, &t->priority);
        } else if (strcmp(k, "description") == 0) {
            if (!dagfile_is_null(v) && v->kind != DAGFILE_SCALAR)
                err_at(c, v, "'%s' must be a string", k);
        }
    }
}

static int expect_code(struct ck *c, const struct dagfile_node *v)
{
    int code;
    if (!is_str(v) || parse_int(v->str, 100, 599, &code) < 0) {
        err_at(c, v, "'expect' must be an http status code (100-599) or a list of them");
        return -1;
    }
    return code;
}

static void check_http(struct ck *c, uint32_t ti, const struct dagfile_node *m)
{
    struct dag_task *t = &c->dag->tasks[ti];
    struct dag_http *h = &t->http;
    h->timeout_ms = 30 * 1000;
    if (!get_map(c, m, "http"))
        return;
    check_keys(c, m, http_keys, ARRAY_SIZE(http_keys), NULL, 0, "http");
    const struct dagfile_node *v;
    if ((v = dagfile_get(m, "method")) && get_string(c, v, "method")) {
        char up[16];
        size_t n = v->len < sizeof up - 1 ? v->len : sizeof up - 1;
        for (size_t i = 0; i < n; i++)
            up[i] = (v->str[i] >= 'a' && v->str[i] <= 'z') ? (char)(v->str[i] - 32) : v->str[i];
        up[n] = 0;
        if (v->len >= sizeof up || !in_list(up, http_methods, ARRAY_SIZE(http_methods))) {
            err_at(c, v, "bad http method '" SHOW "'", v->str);
            hint_closest(c, up, http_methods, ARRAY_SIZE(http_methods), "");
        } else {
            h->method = xstrdup(up);
        }
    }
    if (!h->method)
        h->method = xstrdup("GET");
    if (!(v = dagfile_get(m, "url")))
        err_at(c, m, "'http' needs a 'url'");
    else if (get_string(c, v, "url") && (h->url = compile(c, v, "url", TEMPLATE_URL)))
        add_tref(c, h->url, v, "url", ti, false);
    if ((v = dagfile_get(m, "body")) && get_string(c, v, "body") &&
        (h->body = compile(c, v, "body", TEMPLATE_RAW)))
        add_tref(c, h->body, v, "body", ti, false);
    if ((v = dagfile_get(m, "headers")) && get_map(c, v, "headers")) {
        h->headers = xcalloc(v->n ? v->n : 1, sizeof *h->headers);
        for (size_t i = 0; i < v->n; i++) {
            const struct dagfile_node *k = v->pairs[i].key, *val = v->pairs[i].value;
            if (v->pairs[i].dup_line) {
                err_at(c, k, "duplicate key '" SHOW "'", k->str);
                diag_hint(c->d, "first defined at line %d", v->pairs[i].dup_line);
                continue;
            }
            bool ok = k->len > 0;
            for (size_t j = 0; j < k->len && ok; j++)
                ok = k->str[j] > 32 && k->str[j] < 127 && !strchr("()<>@,;:\\\"/[]?={}", k->str[j]);
            if (!ok) {
                err_at(c, k, "bad header name '" SHOW "'", k->str);
                continue;
            }
            if (!is_str(val)) {
                err_at(c, val, "header '" SHOW "' must be a string", k->str);
                continue;
            }
            if (memchr(val->str, '\n', val->len) || memchr(val->str, '\r', val->len) ||
                memchr(val->str, '\0', val->len)) {
                err_at(c, val, "header '" SHOW "' must not contain a line break", k->str);
                continue;
            }
            struct dag_kv *kv = &h->headers[h->nheaders++];
            kv->name = xstrndup(k->str, k->len);
            kv->value = xstrndup(val->str, val->len);
        }
    }
    if ((v = dagfile_get(m, "expect"))) {
        if (v->kind == DAGFILE_SEQ) {
            h->expect = xcalloc(v->n ? v->n : 1, sizeof *h->expect);
            for (size_t i = 0; i < v->n; i++) {
                int code = expect_code(c, v->items[i]);
                if (code > 0)
                    h->expect[h->nexpect++] = code;
            }
        } else {
            int code = expect_code(c, v);
            if (code > 0) {
                h->expect = xmalloc(sizeof *h->expect);
                h->expect[h->nexpect++] = code;
            }
        }
    }
    if ((v = dagfile_get(m, "timeout")))
        (void)get_duration(c, v, "timeout", &h->timeout_ms);
    if ((v = dagfile_get(m, "circuit_breaker")) && get_map(c, v, "circuit_breaker")) {
        check_keys(c, v, cb_keys, ARRAY_SIZE(cb_keys), NULL, 0, "circuit_breaker");
        const struct dagfile_node *f = dagfile_get(v, "failures");
        const struct dagfile_node *r = dagfile_get(v, "reset");
        h->cb_reset_ms = 60 * 1000;
        if (!f)
            err_at(c, v, "'circuit_breaker' needs 'failures'");
        else
            (void)get_int(c, f, "failures", 1, INT_MAX, &h->cb_failures);
        if (r)
            (void)get_duration(c, r, "reset", &h->cb_reset_ms);
    }
}

static void check_wait(struct ck *c, uint32_t ti, const struct dagfile_node *m)
{
    struct dag_wait *w = &c->dag->tasks[ti].wait;
    w->every_ms = 30 * 1000;
    w->timeout_ms = 24 * 3600 * 1000LL;
    if (!get_map(c, m, "wait"))
        return;
    check_keys(c, m, wait_keys, ARRAY_SIZE(wait_keys), NULL, 0, "wait");
    const struct dagfile_node *file = dagfile_get(m, "file"), *http = dagfile_get(m, "http");
    const struct dagfile_node *v;
    if (!file && !http)
        err_at(c, m, "'wait' needs one of 'file', 'http'");
    else if (file && http)
        err_at(c, http, "'wait' takes only one of 'file', 'http'");
    else if (file && get_string(c, file, "file") &&
             (w->file = compile(c, file, "file", TEMPLATE_RAW)))
        add_tref(c, w->file, file, "file", ti, false);
    else if (http && get_string(c, http, "http") &&
             (w->http_url = compile(c, http, "http", TEMPLATE_URL)))
        add_tref(c, w->http_url, http, "http", ti, false);
    if ((v = dagfile_get(m, "every")) && get_duration(c, v, "every", &w->every_ms) &&
        w->every_ms <= 0)
        err_at(c, v, "'every' must be more than 0");
    if ((v = dagfile_get(m, "timeout")))
        (void)get_duration(c, v, "timeout", &w->timeout_ms);
}

static void check_for_each(struct ck *c, uint32_t ti, const struct dagfile_node *v)
{
    struct dag_task *t = &c->dag->tasks[ti];
    t->mapped = true;
    if (v->kind == DAGFILE_SEQ) {
        t->items = xcalloc(v->n ? v->n : 1, sizeof *t->items);
        for (size_t i = 0; i < v->n; i++) {
            const struct dagfile_node *it = v->items[i];
            if (it->kind != DAGFILE_SCALAR) {
                err_at(c, it, "'for_each' items must be strings, not %s", dagfile_kind_name(it));
                continue;
            }
            t->items[t->nitems++] = xstrndup(it->str, it->len);
        }
        return;
    }
    if (!is_str(v)) {
        err_at(c, v, "'for_each' must be a string or a list");
        return;
    }
    if ((t->for_each = compile(c, v, "for_each", TEMPLATE_RAW)))
        add_tref(c, t->for_each, v, "for_each", ti, true);
}

/* The limit of an http request or a wait: the task's own `http.timeout` / `wait.timeout` wins
 * over a `defaults` timeout (SPEC section 2: a 6h wait under a 1h default waits 6h); a default
 * caps only the built-in limit of a task that sets none. A `timeout` the task sets itself caps
 * either, as it caps a process. */
static void cap_request_timeout(struct dag_task *t, bool own_timeout, const struct dagfile_node *m)
{
    if (!m || t->timeout_ms <= 0)
        return;
    int64_t *limit = t->kind == TASK_HTTP ? &t->http.timeout_ms : &t->wait.timeout_ms;
    bool own_limit = m->kind == DAGFILE_MAP && dagfile_get(m, "timeout") != NULL;
    if (own_limit && !own_timeout)
        return;
    if (*limit <= 0 || t->timeout_ms < *limit)
        *limit = t->timeout_ms;
}

/* tz part: a task's `env` (names as the DAG's, values templates) and `dir` (a folder, made
 * absolute against the DAG file's; it is checked when a try starts, where it runs). */
static void check_task_env_dir(struct ck *c, uint32_t ti, const struct dagfile_node *m)
{
    struct dag_task *t = &c->dag->tasks[ti];
    const struct dagfile_node *v = dagfile_get(m, "env");
    struct dag_kv *kvs = NULL;
    size_t n = 0;
    check_kvs(c, v, "env", true, &kvs, &n, NULL);
    if (n)
        t->env = xcalloc(n, sizeof *t->env);
    for (size_t i = 0; i < n; i++) {
        const struct dagfile_node *val = kvs[i].value ? dagfile_get(v, kvs[i].name) : NULL;
        struct template *tpl = val ? compile(c, val, "env", TEMPLATE_RAW) : NULL;
        if (tpl) {
            add_tref(c, tpl, val, "env", ti, false);
            t->env[t->nenv].name = kvs[i].name;
            t->env[t->nenv++].value = tpl;
            kvs[i].name = NULL;
        }
        free(kvs[i].name);
        free(kvs[i].value);
    }
    free(kvs);
    if ((v = dagfile_get(m, "dir")) && get_string(c, v, "dir")) {
        if (v->len == 0 || strlen(v->str) != v->len)
            err_at(c, v, "'dir' must be a folder's path");
        else if (v->str[0] == '/')
            t->dir = xstrndup(v->str, v->len);
        else
            t->dir = xasprintf("%s/%s", c->dag->dir, v->str);
    }
}

static void check_task(struct ck *c, uint32_t ti, const struct dag_task *def)
{
    struct dag_task *t = &c->dag->tasks[ti];
    const struct dagfile_node *key = c->task_keys[ti], *m = c->task_vals[ti];
    t->trigger = def->trigger;
    t->retries = def->retries;
    t->retry_delay_ms = def->retry_delay_ms;
    t->retry_backoff = def->retry_backoff;
    t->max_retry_delay_ms = def->max_retry_delay_ms;
    t->timeout_ms = def->timeout_ms;
    t->pool = xstrdup(def->pool);
    t->queue = xstrdup(def->queue);
    t->priority = def->priority;
    t->line = key->line;
    t->col = key->col;
    if (!m) {
        /* A null task has nothing; any other non-mapping was reported by collect_tasks. */
        if (dagfile_is_null(c->task_vals_raw[ti]))
            err_at(c, key, "task '%s' has none of 'run', 'http', 'wait'", t->name);
        return;
    }
    check_keys(c, m, task_keys, ARRAY_SIZE(task_keys), NULL, 0, "task");
    check_common(c, m, t);
    /* conc */
    const struct dagfile_node *cv;
    t->depends_on_past = c->dag->depends_on_past;
    if ((cv = dagfile_get(m, "max_active")))
        (void)get_int(c, cv, "max_active", 1, INT_MAX, &t->max_active);
    if ((cv = dagfile_get(m, "depends_on_past")))
        (void)get_bool(c, cv, "depends_on_past", &t->depends_on_past);
    c->dag->uses_past |= t->depends_on_past;
    const struct dagfile_node *run = dagfile_get(m, "run"), *http = dagfile_get(m, "http"),
                              *wait = dagfile_get(m, "wait"), *fe = dagfile_get(m, "for_each");
    int kinds = !!run + !!http + !!wait;
    if (kinds == 0)
        err_at(c, key, "task '%s' has none of 'run', 'http', 'wait'", t->name);
    else if (kinds > 1)
        err_at(c, key, "task '%s' has more than one of 'run', 'http', 'wait'", t->name);
    if (fe)
        check_for_each(c, ti, fe);
    if (run) {
        t->kind = TASK_RUN;
        if (get_string(c, run, "run") && (t->run = compile(c, run, "run", TEMPLATE_SHELL)))
            add_tref(c, t->run, run, "run", ti, false);
    }
    if (http) {
        if (!run)
            t->kind = TASK_HTTP;
        check_http(c, ti, http);
    }
    if (wait) {
        if (!run && !http)
            t->kind = TASK_WAIT;
        check_wait(c, ti, wait);
    }
    if (!run)
        cap_request_timeout(t, dagfile_get(m, "timeout") != NULL, http ? http : wait);
    check_task_env_dir(c, ti, m);
    const struct dagfile_node *h;
    if ((h = dagfile_get(m, "on_success")))
        check_hook(c, h, "on_success", &t->on_success);
    if ((h = dagfile_get(m, "on_failure")))
        check_hook(c, h, "on_failure", &t->on_failure);
    if ((h = dagfile_get(m, "on_retry")))
        check_hook(c, h, "on_retry", &t->on_retry);
}

/* Turns every task's `needs` into edges. seen: n stamps, zeroed. */
static void collect_edges(struct ck *c, struct graph_edge **edges, size_t *nedges, uint32_t *seen)
{
    size_t cap = 0;
    struct dag *dag = c->dag;
    for (uint32_t ti = 0; ti < dag->ntasks; ti++) {
        const struct dagfile_node *m = c->task_vals[ti];
        const struct dagfile_node *needs = m ? dagfile_get(m, "needs") : NULL;
        if (!needs)
            continue;
        const struct dagfile_node *const *items;
        size_t n;
        if (needs->kind == DAGFILE_SEQ) {
            items = (const struct dagfile_node *const *)needs->items;
            n = needs->n;
        } else if (is_str(needs)) {
            items = &needs;
            n = 1;
        } else {
            if (!dagfile_is_null(needs))
                err_at(c, needs, "'needs' must be a list of task names or one task name");
            continue;
        }
        const char *name = dag->tasks[ti].name;
        for (size_t i = 0; i < n; i++) {
            const struct dagfile_node *it = items[i];
            uint32_t up;
            if (!is_str(it)) {
                err_at(c, it, "'needs' items must be task names, not %s", dagfile_kind_name(it));
                continue;
            }
            if (!hmap_get(&dag->by_name, it->str, it->len, &up)) {
                err_at(c, it, "task '%s' needs unknown task '" SHOW "'", name, it->str);
                hint_closest(c, it->str, c->task_names, dag->ntasks, "");
                continue;
            }
            if (up == ti) {
                err_at(c, it, "task '%s' needs itself", name);
                continue;
            }
            if (seen[up] == ti + 1) {
                err_at(c, it, "task '%s' needs '%s' twice", name, dag->tasks[up].name);
                continue;
            }
            seen[up] = ti + 1;
            xgrow((void **)edges, &cap, *nedges + 1, sizeof **edges);
            (*edges)[(*nedges)++] = (struct graph_edge){up, ti};
        }
    }
}

/* Reports the cycle path[0..n) (path[n - 1] == path[0]), starting at its first task in file
 * order so the message is stable. */
static void report_cycle(struct ck *c, const uint32_t *path, size_t n)
{
    struct dag *dag = c->dag;
    size_t len = n - 1, lo = 0;
    for (size_t i = 1; i < len; i++)
        if (path[i] < path[lo])
            lo = i;
    /* A long cycle prints its first and last tasks around a count of the ones left out. */
    struct buf b = BUF_INIT(BUF_NO_MAX);
    int r = buf_adds(&b, "cycle: ");
    for (size_t i = 0; i <= len && r == 0; i++) {
        if (len > 20 && i == 10) {
            r = buf_addf(&b, " -> ... (%zu more) ...", len - 19);
            i = len - 10;
            continue;
        }
        r = buf_addf(&b, "%s%s", i ? " -> " : "", dag->tasks[path[(lo + i) % len]].name);
    }
    const struct dag_task *first = &dag->tasks[path[lo]];
    err_pos(c, first->line, first->col, "%s", b.data);
    buf_release(&b);
}

/* One error per cycle: report a cycle, drop the edges of its tasks, look again, at most
 * MAX_CYCLES times (each round is O(V + E)). Cycles sharing a task count as one. */
#define MAX_CYCLES 10
static void report_cycles(struct ck *c)
{
    const struct graph *full = &c->dag->graph;
    uint32_t n = full->n;
    uint32_t *path = xmalloc(((size_t)n + 1) * sizeof *path);
    uint32_t *order = xmalloc((n ? n : 1) * sizeof *order);
    unsigned char *gone = xcalloc(n ? n : 1, 1);
    struct graph cur = {0};
    const struct graph *g = full;
    for (int round = 0; round < MAX_CYCLES; round++) {
        size_t len = graph_find_cycle(g, path);
        if (len < 2)
            break;
        report_cycle(c, path, len);
        for (size_t i = 0; i + 1 < len; i++)
            gone[path[i]] = 1;
        struct graph_edge *e = xmalloc((full->nedges ? full->nedges : 1) * sizeof *e);
        size_t ne = 0;
        for (uint32_t v = 0; v < n; v++)
            for (uint32_t i = g->down_start[v]; i < g->down_start[v + 1]; i++)
                if (!gone[v] && !gone[g->down[i]])
                    e[ne++] = (struct graph_edge){v, g->down[i]};
        struct graph next;
        if (graph_build(&next, n, e, ne) < 0)
            BUG("edge out of range");
        free(e);
        graph_release(&cur);
        cur = next;
        g = &cur;
        if (graph_topo(g, order) == 0)
            break;
    }
    graph_release(&cur);
    free(gone);
    free(order);
    free(path);
}

/* Collects task names and their nodes; reports duplicate and bad names. */
static void collect_tasks(struct ck *c, const struct dagfile_node *tasks)
{
    struct dag *dag = c->dag;
    size_t n = 0;
    for (size_t i = 0; i < tasks->n; i++)
        n += !tasks->pairs[i].dup_line;
    dag->tasks = xcalloc(n ? n : 1, sizeof *dag->tasks);
    c->task_names = arena_alloc(&c->a, (n ? n : 1) * sizeof *c->task_names);
    c->task_keys = arena_alloc(&c->a, (n ? n : 1) * sizeof *c->task_keys);
    c->task_vals = arena_alloc(&c->a, (n ? n : 1) * sizeof *c->task_vals);
    c->task_vals_raw = arena_alloc(&c->a, (n ? n : 1) * sizeof *c->task_vals_raw);
    for (size_t i = 0; i < tasks->n; i++) {
        const struct dagfile_node *k = tasks->pairs[i].key, *v = tasks->pairs[i].value;
        if (tasks->pairs[i].dup_line) {
            err_at(c, k, "duplicate task '" SHOW "'", k->str);
            diag_hint(c->d, "first defined at line %d", tasks->pairs[i].dup_line);
            continue;
        }
        if (!id_ok(k->str, k->len)) {
            err_at(c, k, "bad task name '" SHOW "'", k->str);
            diag_hint(c->d, "use letters, digits, '_', '.' and '-', at most %d", DAG_ID_MAX);
        }
        uint32_t ti = dag->ntasks++;
        struct dag_task *t = &dag->tasks[ti];
        t->name = xstrndup(k->str, k->len);
        t->line = k->line;
        t->col = k->col;
        c->task_names[ti] = t->name;
        c->task_keys[ti] = k;
        c->task_vals[ti] = NULL;
        c->task_vals_raw[ti] = v;
        if (v->kind == DAGFILE_MAP)
            c->task_vals[ti] = v;
        else if (!dagfile_is_null(v))
            err_at(c, v, "task '%s' must be a mapping, not %s", t->name, dagfile_kind_name(v));
        (void)hmap_put(&dag->by_name, t->name, strlen(t->name), ti);
    }
}

/* The logs of a run share one folder (sched/logpath.h): a try of mapped task X's instance N
 * logs to "X.N.<try>.log", so a task named "X.N" (N in the same decimal form), whose tries
 * log to "X.N.<try>.log" too, would share every log, command and output file with it:
 * refused. Other names cannot meet: every task file ends in ".<try>.<ext>" or ".out" after
 * the task's name, and the hooks' "on_success.log" has no try number. */
static void check_log_folders(struct ck *c)
{
    const struct dag *dag = c->dag;
    for (uint32_t ti = 0; ti < dag->ntasks; ti++) {
        const char *name = dag->tasks[ti].name, *dot = strrchr(name, '.');
        if (!dot || dot == name)
            continue;
        const char *num = dot + 1;
        size_t nd = strspn(num, "0123456789");
        if (nd == 0 || num[nd] != 0 || (num[0] == '0' && nd > 1))
            continue;
        uint32_t m;
        if (!hmap_get(&dag->by_name, name, (size_t)(dot - name), &m) || !dag->tasks[m].mapped)
            continue;
        err_at(c, c->task_keys[ti], "task name '" SHOW "' is the log name of mapped task '%s'",
               name, dag->tasks[m].name);
        diag_hint(c->d, "instance %s of '%s' logs to '%s.<try>.log': rename this task", num,
                  dag->tasks[m].name, name);
    }
}

static void check_tasks(struct ck *c, const struct dagfile_node *root)
{
    struct dag *dag = c->dag;
    struct dag_task def = {
        .trigger = TRIGGER_ALL_SUCCESS,
        .retry_backoff = 1,
        .pool = xstrdup("default"),
        .queue = xstrdup("default"),
        .priority = 1,
    };
    const struct dagfile_node *dv = dagfile_get(root, "defaults");
    if (dv && !dagfile_is_null(dv) && get_map(c, dv, "defaults")) {
        check_keys(c, dv, defaults_keys, ARRAY_SIZE(defaults_keys), task_only_keys,
                   ARRAY_SIZE(task_only_keys), "defaults");
        check_common(c, dv, &def);
    }
    const struct dagfile_node *tasks = dagfile_get(root, "tasks");
    if (!tasks) {
        err_at(c, root, "missing 'tasks'");
    } else if (tasks->kind != DAGFILE_MAP) {
        if (dagfile_is_null(tasks))
            err_at(c, tasks, "'tasks' is empty");
        else
            err_at(c, tasks, "'tasks' must be a mapping of task names to tasks");
    } else {
        collect_tasks(c, tasks);
    }
    for (uint32_t ti = 0; ti < dag->ntasks; ti++)
        check_task(c, ti, &def);
    free(def.pool);
    free(def.queue);
    check_log_folders(c);

    uint32_t n = dag->ntasks;
    uint32_t *seen = xcalloc(n ? n : 1, sizeof *seen);
    struct graph_edge *edges = NULL;
    size_t nedges = 0;
    collect_edges(c, &edges, &nedges, seen);
    free(seen);
    if (graph_build(&dag->graph, n, edges, nedges) < 0)
        BUG("edge out of range");
    free(edges);
    dag->topo = xmalloc((n ? n : 1) * sizeof *dag->topo);
    dag->level = xcalloc(n ? n : 1, sizeof *dag->level);
    dag->component = xcalloc(n ? n : 1, sizeof *dag->component);
    if (graph_topo(&dag->graph, dag->topo) < 0) {
        report_cycles(c);
    } else {
        dag->nlevels = graph_levels(&dag->graph, dag->topo, dag->level);
        c->topo_pos = xmalloc((n ? n : 1) * sizeof *c->topo_pos);
        for (uint32_t k = 0; k < n; k++)
            c->topo_pos[dag->topo[k]] = k;
    }
    dag->ncomponents = graph_components(&dag->graph, dag->component);
    check_output_vars(c);
    c->mark = xcalloc(n ? n : 1, sizeof *c->mark);
    c->direct = xcalloc(n ? n : 1, sizeof *c->direct);
    for (size_t p = 0; p < dag->nparams; p++)
        (void)hmap_put(&c->params, dag->params[p].name, strlen(dag->params[p].name), (uint32_t)p);
    c->queue = xmalloc((n ? n : 1) * sizeof *c->queue);
    for (size_t i = 0; i < c->ntrefs; i++)
        check_tref(c, &c->trefs[i]);
}

static void check_dag_keys(struct ck *c, const struct dagfile_node *root)
{
    struct dag *dag = c->dag;
    const struct dagfile_node *v;
    if (!(v = dagfile_get(root, "dag"))) {
        err_at(c, root, "missing 'dag' id");
    } else if (get_string(c, v, "dag")) {
        if (!id_ok(v->str, v->len)) {
            err_at(c, v, "bad dag id '" SHOW "'", v->str);
            diag_hint(c->d, "use letters, digits, '_', '.' and '-', at most %d", DAG_ID_MAX);
        } else {
            dag->id = xstrndup(v->str, v->len);
        }
    }
    if ((v = dagfile_get(root, "description")) && !dagfile_is_null(v)) {
        if (v->kind != DAGFILE_SCALAR)
            err_at(c, v, "'description' must be a string");
        else
            dag->description = xstrndup(v->str, v->len);
    }
    const struct dagfile_node *sched = dagfile_get(root, "schedule");
    if (sched && !dagfile_is_null(sched) && get_string(c, sched, "schedule")) {
        struct err e = {0};
        if (cron_parse(sched->str, &dag->cron, &e) < 0)
            err_at(c, sched, "bad schedule '" SHOW "': %s", sched->str, err_msg(&e));
        else
            dag->schedule = xstrndup(sched->str, sched->len);
    }
    const struct dagfile_node *start = dagfile_get(root, "start"), *end = dagfile_get(root, "end");
    if (start && get_string(c, start, "start") && when_parse(start->str, &dag->start_at_ms) < 0) {
        err_at(c, start, "bad date '" SHOW "' for 'start'", start->str);
        diag_hint(c->d, "use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
        dag->start_at_ms = -1;
    }
    if (end && get_string(c, end, "end") && when_parse(end->str, &dag->end_at_ms) < 0) {
        err_at(c, end, "bad date '" SHOW "' for 'end'", end->str);
        diag_hint(c->d, "use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
        dag->end_at_ms = -1;
    }
    if (sched && !dagfile_is_null(sched) && !start)
        err_at(c, sched, "'schedule' needs a 'start' date");
    if (dag->start_at_ms >= 0 && dag->end_at_ms >= 0 && dag->end_at_ms < dag->start_at_ms)
        err_at(c, end, "'end' is before 'start'");
    /* tz: the schedule's zone; the home's default (dag_set_default_tz) when absent */
    dag->tz = dag_default_tz;
    if ((v = dagfile_get(root, "timezone")) && !dagfile_is_null(v) &&
        get_string(c, v, "timezone")) {
        dag->timezone = xstrndup(v->str, v->len);
        if (strlen(dag->timezone) != v->len)
            err_at(c, v, "unknown time zone (a NUL byte in its name)");
        else
            (void)tz_get_diag(dag->timezone, &dag->tz, c->d, c->file, v->line, v->col);
    }
    if ((v = dagfile_get(root, "catchup")))
        (void)get_bool(c, v, "catchup", &dag->catchup);
    if ((v = dagfile_get(root, "max_active_runs")))
        (void)get_int(c, v, "max_active_runs", 1, INT_MAX, &dag->max_active_runs);
    /* conc */
    if ((v = dagfile_get(root, "run_timeout")) &&
        get_duration(c, v, "run_timeout", &dag->run_timeout_ms) && dag->run_timeout_ms <= 0)
        err_at(c, v, "'run_timeout' must be more than 0");
    if ((v = dagfile_get(root, "max_active_tasks")))
        (void)get_int(c, v, "max_active_tasks", 1, INT_MAX, &dag->max_active_tasks);
    if ((v = dagfile_get(root, "depends_on_past")))
        (void)get_bool(c, v, "depends_on_past", &dag->depends_on_past);
    check_kvs(c, dagfile_get(root, "params"), "params", false, &dag->params, &dag->nparams,
              &dag->pschema);
    check_kvs(c, dagfile_get(root, "env"), "env", true, &dag->env, &dag->nenv, NULL);
    if ((v = dagfile_get(root, "on_success")))
        check_hook(c, v, "on_success", &dag->on_success);
    if ((v = dagfile_get(root, "on_failure")))
        check_hook(c, v, "on_failure", &dag->on_failure);
    if ((v = dagfile_get(root, "deadline")))
        check_deadline(c, v, dag);
}

/* ---- loading ----------------------------------------------------------------- */

static void sodium_once_fn(void)
{
    /* -1 only if libsodium cannot start; crypto_hash_sha256 needs none of its setup. */
    if (sodium_init() < 0)
        return;
}

static char *dir_of(const char *path)
{
    char *tmp = xstrdup(path);
    char *slash = strrchr(tmp, '/');
    const char *dn = ".";
    if (slash == tmp)
        dn = "/";
    else if (slash) {
        *slash = 0;
        dn = tmp;
    }
    char *real = realpath(dn, NULL);
    if (real) {
        free(tmp);
        return real;
    }
    struct buf b = BUF_INIT(BUF_NO_MAX);
    int r = 0;
    if (dn[0] != '/') {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            cwd[0] = 0;
        r |= buf_adds(&b, cwd);
        if (strcmp(dn, ".") != 0)
            r |= buf_addf(&b, "%s%s", b.len && b.data[b.len - 1] == '/' ? "" : "/", dn);
    } else {
        r |= buf_adds(&b, dn);
    }
    (void)r;
    free(tmp);
    return buf_detach(&b, NULL);
}

static void dag_hash(struct dag *dag, const char *text, size_t len)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    (void)pthread_once(&once, sodium_once_fn);
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)text, len);
    sodium_bin2hex(dag->hash, sizeof dag->hash, h, sizeof h);
}

static int diag_cmp(const void *x, const void *y)
{
    const struct diag_entry *a = x, *b = y;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    if (a->col != b->col)
        return a->col < b->col ? -1 : 1;
    /* Equal positions keep the order they were found in: src_line holds it while sorting. */
    return a->src_line < b->src_line ? -1 : a->src_line > b->src_line;
}

/* Orders the entries added since n0 by position, so the report reads top to bottom. */
static void sort_diags(struct diag *d, size_t n0)
{
    size_t n = d->n - n0;
    if (n < 2)
        return;
    int *saved = xmalloc(n * sizeof *saved);
    for (size_t i = 0; i < n; i++) {
        saved[i] = d->v[n0 + i].src_line;
        d->v[n0 + i].src_line = (int)i;
    }
    qsort(d->v + n0, n, sizeof *d->v, diag_cmp);
    for (size_t i = 0; i < n; i++)
        d->v[n0 + i].src_line = saved[d->v[n0 + i].src_line];
    free(saved);
}

/* Loads text[0..len), a malloc'd buffer with room for a NUL at text[len] that the dag takes
 * over as its source (freed with it, or here on failure). */
static struct dag *load_take(char *text, size_t len, const char *path, struct diag *d)
{
    struct dag *dag = xcalloc(1, sizeof *dag);
    dag->refs = 1;
    size_t errors0 = d->errors, n0 = d->n;
    dag->path = xstrdup(path);
    dag->dir = dir_of(path);
    dag->start_at_ms = dag->end_at_ms = -1;
    dag->max_active_runs = 16;
    hmap_init(&dag->by_name);
    text[len] = 0;
    dag->source = text;
    dag->source_len = len;
    dag_hash(dag, text, len);

    struct ck c = {.d = d, .file = path, .dag = dag, .text = text, .len = len};
    c.hints_left = HINT_BUDGET;
    hmap_init(&c.params);
    arena_init(&c.a, 64 * 1024);
    struct dagfile_node *root = dagfile_parse(&c.a, text, len, path, d);
    if (root) {
        if (root->kind != DAGFILE_MAP) {
            err_at(&c, root, "a DAG file must be a mapping, not %s", dagfile_kind_name(root));
        } else {
            check_keys(&c, root, top_keys, ARRAY_SIZE(top_keys), NULL, 0, "dag");
            check_dag_keys(&c, root);
            check_tasks(&c, root);
        }
    }
    arena_release(&c.a);
    free(c.trefs);
    free(c.topo_pos);
    free(c.mark);
    free(c.direct);
    hmap_release(&c.params);
    free(c.queue);
    sort_diags(d, n0);
    if (!root || d->errors > errors0) {
        dag_free(dag);
        return NULL;
    }
    return dag;
}

struct dag *dag_load_mem(const char *text, size_t len, const char *path, struct diag *d)
{
    char *copy = xmalloc(len + 1);
    if (len)
        memcpy(copy, text, len);
    return load_take(copy, len, path, d);
}

struct dag *dag_load_file(const char *path, struct diag *d)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        diag_err(d, path, 0, 0, "cannot open file: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        diag_err(d, path, 0, 0, "cannot read file: %s",
                 S_ISDIR(st.st_mode) ? "is a directory" : strerror(e ? e : EINVAL));
        close(fd);
        return NULL;
    }
    if (st.st_size > DAG_FILE_MAX) {
        diag_err(d, path, 0, 0, "file too large (%lld bytes; the limit is %d)",
                 (long long)st.st_size, DAG_FILE_MAX);
        close(fd);
        return NULL;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *text = xmalloc(cap);
    for (;;) {
        ssize_t r = read(fd, text + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            diag_err(d, path, 0, 0, "cannot read file: %s", strerror(errno));
            free(text);
            close(fd);
            return NULL;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == cap) { /* the file grew since fstat */
            if (cap > DAG_FILE_MAX) {
                diag_err(d, path, 0, 0, "file too large (the limit is %d bytes)", DAG_FILE_MAX);
                free(text);
                close(fd);
                return NULL;
            }
            cap *= 2;
            text = xrealloc(text, cap);
        }
    }
    close(fd);
    return load_take(text, len, path, d);
}

static void hook_release(struct dag_hook *h)
{
    template_free(h->run);
    free(h->notify);
}

static void kvs_free(struct dag_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
    free(kv);
}

struct dag *dag_ref(struct dag *dag)
{
    if (dag)
        dag->refs++;
    return dag;
}

void dag_free(struct dag *dag)
{
    if (!dag || --dag->refs > 0)
        return;
    for (uint32_t i = 0; i < dag->ntasks; i++) {
        struct dag_task *t = &dag->tasks[i];
        free(t->name);
        template_free(t->run);
        for (size_t j = 0; j < t->nenv; j++) {
            free(t->env[j].name);
            template_free(t->env[j].value);
        }
        free(t->env);
        free(t->dir);
        free(t->http.method);
        template_free(t->http.url);
        template_free(t->http.body);
        kvs_free(t->http.headers, t->http.nheaders);
        free(t->http.expect);
        template_free(t->wait.file);
        template_free(t->wait.http_url);
        template_free(t->for_each);
        for (size_t k = 0; k < t->nitems; k++)
            free(t->items[k]);
        free(t->items);
        free(t->pool);
        free(t->queue);
        hook_release(&t->on_success);
        hook_release(&t->on_failure);
        hook_release(&t->on_retry);
    }
    free(dag->tasks);
    for (size_t i = 0; i < dag->nvar_keys; i++)
        free(dag->var_keys[i]);
    free(dag->var_keys);
    free(dag->id);
    free(dag->description);
    free(dag->path);
    free(dag->dir);
    free(dag->schedule);
    free(dag->timezone);
    kvs_free(dag->params, dag->nparams);
    params_schema_free(dag->pschema, dag->nparams);
    kvs_free(dag->env, dag->nenv);
    hook_release(&dag->on_success);
    hook_release(&dag->on_failure);
    hook_release(&dag->deadline);
    graph_release(&dag->graph);
    free(dag->topo);
    free(dag->level);
    free(dag->component);
    hmap_release(&dag->by_name);
    free(dag->source);
    free(dag);
}

void dag_each_notify(const struct dag *dag, dag_hook_fn *fn, void *ud)
{
    const struct {
        const struct dag_hook *h;
        const char *where;
    } top[] = {{&dag->on_success, "on_success"},
               {&dag->on_failure, "on_failure"},
               {&dag->deadline, "deadline"}};
    for (size_t i = 0; i < ARRAY_SIZE(top); i++)
        if (top[i].h->notify)
            fn(ud, top[i].h, top[i].where);
    for (uint32_t t = 0; t < dag->ntasks; t++) {
        const struct dag_task *dt = &dag->tasks[t];
        const struct dag_hook *hs[] = {&dt->on_success, &dt->on_failure, &dt->on_retry};
        static const char *const names[] = {"on_success", "on_failure", "on_retry"};
        for (size_t i = 0; i < ARRAY_SIZE(hs); i++) {
            if (!hs[i]->notify)
                continue;
            char where[DAG_ID_MAX + 32];
            snprintf(where, sizeof where, "tasks.%s.%s", dt->name, names[i]);
            fn(ud, hs[i], where);
        }
    }
}

bool dag_find(const struct dag *dag, const char *name, uint32_t *idx)
{
    return hmap_get(&dag->by_name, name, strlen(name), idx);
}

int dag_param_index(const struct dag *dag, const char *name)
{
    for (size_t i = 0; i < dag->nparams; i++)
        if (strcmp(dag->params[i].name, name) == 0)
            return (int)i;
    return -1;
}
