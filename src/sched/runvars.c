/*
 * runvars.c - {{ var.KEY }} in a run (SPEC section 13). A run of a DAG whose
 * templates read variables loads them once, when it starts: every variable,
 * secrets decrypted with the home's key (store/vars.h). A DAG that reads none
 * costs one branch.
 *
 * A secret never enters a command's text: in a `run:` command the reference
 * becomes "${BARAM_VAR_<KEY>}" and the try's environment carries the value,
 * so `ps` (argv) never shows it. The values of the secrets the run read are
 * masked in the logs of its tries and hooks (exec/mask.h).
 *
 * A variable that cannot be had (unknown key, store unreadable, a secret
 * sealed with another key) fails the try that reads it, with a message that
 * names the key; the run and the scheduler go on.
 *
 * run_vars_read: any thread (that of its store); the rest: the loop thread.
 */
#include "sched/run_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base/err.h"
#include "base/hmap.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "dag/dag.h"
#include "dag/template.h"
#include "store/store.h"
#include "store/vars.h"

struct run_var {
    char *key;
    char *value;    /* NULL when it could not be decrypted */
    char *problem;  /* why not, or NULL */
    char *env_name; /* a secret's BARAM_VAR_<KEY>, or NULL */
    bool secret;
};

struct run_vars {
    struct run_var *v;
    size_t n;
    struct hmap by_key; /* key -> index in v (keys borrowed from v) */
    char *problem;      /* the variables could not be read at all, or NULL */
    char **env;         /* "BARAM_VAR_<KEY>=value" of each secret */
    size_t nenv;
    const char **mask_vals; /* borrowed from v: the secrets' values */
    size_t *mask_lens;
    size_t nmask;
};

/* Reads one variable into rv (key taken), decrypting a secret with key (loaded on first
 * need: *key_rc 1 until then). */
static void run_vars_add(struct run_vars *rv, const char *home, struct var_rec *rec,
                         unsigned char key[VARS_KEYBYTES], int *key_rc, char **key_problem,
                         struct hmap *env_names)
{
    size_t i = rv->n;
    struct run_var *v = &rv->v[rv->n++];
    v->key = rec->key;
    rec->key = NULL;
    v->secret = rec->secret;
    hmap_put(&rv->by_key, v->key, strlen(v->key), (uint32_t)i);
    if (!v->secret) {
        v->value = rec->value;
        rec->value = NULL;
        return;
    }
    if (*key_rc == 1) {
        struct err ke = {0};
        *key_rc = vars_key_load(home, key, &ke);
        if (*key_rc < 0)
            *key_problem = xstrdup(err_msg(&ke));
    }
    if (*key_rc < 0) {
        v->problem = xasprintf("cannot decrypt the secret '%s': %s", v->key, *key_problem);
        return;
    }
    struct err de = {0};
    if (vars_open(key, rec, &v->value, &de) < 0) {
        v->problem = xstrdup(err_msg(&de));
        return;
    }
    v->env_name = run__env_name("BARAM_VAR_", v->key);
    uint32_t dummy;
    if (hmap_get(env_names, v->env_name, strlen(v->env_name), &dummy)) {
        /* "a.b" and "a_b" both read BARAM_VAR_A_B: the later one gets a name of its own */
        char *unique = xasprintf("%s_%zu", v->env_name, i);
        free(v->env_name);
        v->env_name = unique;
    }
    hmap_put(env_names, v->env_name, strlen(v->env_name), 0);
    rv->env[rv->nenv++] = xasprintf("%s=%s", v->env_name, v->value);
    rv->mask_vals[rv->nmask] = v->value;
    rv->mask_lens[rv->nmask++] = strlen(v->value);
}

struct run_vars *run_vars_read(struct store *s, const char *home, const char *const *keys, size_t n)
{
    struct run_vars *rv = xcalloc(1, sizeof(*rv));
    hmap_init(&rv->by_key);
    rv->v = xcalloc(n ? n : 1, sizeof(*rv->v));
    rv->env = xcalloc(n ? n : 1, sizeof(char *));
    rv->mask_vals = xcalloc(n ? n : 1, sizeof(char *));
    rv->mask_lens = xcalloc(n ? n : 1, sizeof(size_t));
    unsigned char key[VARS_KEYBYTES];
    struct hmap env_names; /* the secrets' variable names so far (keys borrowed from v) */
    hmap_init(&env_names);
    int key_rc = 1; /* not loaded yet */
    char *key_problem = NULL;
    for (size_t i = 0; i < n; i++) {
        struct var_rec rec;
        struct err e = {0};
        int rc = store_get_var(s, keys[i], &rec, &e);
        if (rc == -ENOENT)
            continue; /* the try that reads it fails: "no variable" */
        if (rc < 0) {
            free(rv->problem);
            rv->problem = xasprintf("cannot read the variables: %s", err_msg(&e));
            log_warn("variables not read", "key=%s err=%s", log_q(keys[i]), log_q(err_msg(&e)));
            break;
        }
        run_vars_add(rv, home, &rec, key, &key_rc, &key_problem, &env_names);
        var_rec_release(&rec);
    }
    sodium_memzero(key, sizeof key);
    hmap_release(&env_names);
    free(key_problem);
    return rv;
}

void run__vars_load(struct run *r, struct run_vars *vars, const char *missing)
{
    if (!r->dag->uses_vars) {
        run_vars_free(vars);
        return;
    }
    if (!vars) {
        vars = xcalloc(1, sizeof(*vars));
        hmap_init(&vars->by_key);
        vars->problem = xstrdup(missing);
    }
    r->vars = vars;
}

void run_vars_free(struct run_vars *rv)
{
    if (!rv)
        return;
    for (size_t i = 0; i < rv->n; i++) {
        struct run_var *v = &rv->v[i];
        if (v->value && v->secret)
            sodium_memzero(v->value, strlen(v->value));
        free(v->key);
        free(v->value);
        free(v->problem);
        free(v->env_name);
    }
    for (size_t i = 0; i < rv->nenv; i++) {
        sodium_memzero(rv->env[i], strlen(rv->env[i]));
        free(rv->env[i]);
    }
    free(rv->v);
    free(rv->env);
    free(rv->mask_vals);
    free(rv->mask_lens);
    free(rv->problem);
    hmap_release(&rv->by_key);
    free(rv);
}

void run__vars_release(struct run *r)
{
    run_vars_free(r->vars);
    r->vars = NULL;
}

static const struct run_var *run_var_find(const struct run *r, const char *key)
{
    uint32_t i;
    if (!r->vars || !hmap_get(&r->vars->by_key, key, strlen(key), &i))
        return NULL;
    return &r->vars->v[i];
}

int run__var_lookup(struct run *r, const char *key, bool shell, const char **val, size_t *vlen)
{
    const struct run_var *v = run_var_find(r, key);
    if (!v || !v->value)
        return -ENOENT;
    if (v->secret && shell) {
        *val = v->env_name;
        *vlen = strlen(v->env_name);
        return TEMPLATE_ENV_REF;
    }
    *val = v->value;
    *vlen = strlen(v->value);
    return 0;
}

char *run__var_problem(struct run *r, const char *key)
{
    const struct run_var *v = run_var_find(r, key);
    if (r->vars && r->vars->problem)
        return xstrdup(r->vars->problem);
    if (v && v->problem)
        return xstrdup(v->problem);
    return xasprintf("no variable '%s' (set it with `baram variables set %s VALUE`)", key, key);
}

void run__vars_env(struct run *r, run_strv *env)
{
    if (!r->vars)
        return;
    for (size_t i = 0; i < r->vars->nenv; i++)
        VEC_PUSH(env, r->vars->env[i]);
}

size_t run__vars_mask(const struct run *r, const char *const **vals, const size_t **lens)
{
    if (!r->vars) {
        *vals = NULL;
        *lens = NULL;
        return 0;
    }
    *vals = r->vars->mask_vals;
    *lens = r->vars->mask_lens;
    return r->vars->nmask;
}
