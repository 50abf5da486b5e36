/*
 * revoke.c - revoked API tokens (revoke.h): the store's deny list and
 * per-user cutoffs, and the snapshot of them each server checks.
 *
 * The snapshot is a table of entries, "j:JTI" -> the token's exp (ms) and
 * "u:NAME" -> the cutoff second and the generation of the user's latest
 * revocation, found through an hmap whose keys are the entries' own
 * strings. A token of baram's own carries the user's generation as it was
 * when its login read the user's row (auth.h, "rgen"): it is refused when
 * the user's generation is above it. Generations, unlike seconds, order a
 * login's read of the user against a revocation exactly. A token without
 * one (an identity provider's) is refused when its iat is below the cutoff.
 *
 * The snapshot knows the store's revocation generation it reflects: a
 * check reads the store's generation (one row) and, when it moved, the
 * rows above the old one, merged in under the mutex. A generation lower
 * than the snapshot's is read again under the mutex (it may have been read
 * before another thread moved the snapshot on); still lower, it is another
 * database behind the same url: the snapshot starts over. Entries of tokens
 * past exp + leeway are dropped at most every REVOKE_SWEEP_MS (the table is
 * rebuilt then); user entries stay, one per user name ever revoked.
 *
 * Cost of a check: one prepared one-row SELECT on the thread's connection,
 * a mutex, two hash lookups (tests/unit/api/auth_test.c measures it).
 *
 * Threads: any; struct revoke's fields are under its mutex. The store
 * connection is the caller's. Owns its entries' keys.
 */
#include "api/revoke.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/auth.h"
#include "base/err.h"
#include "base/hmap.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "store/store.h"

#define REVOKE_SWEEP_MS  (60 * 1000)
#define REVOKE_LEEWAY_MS ((int64_t)AUTH_LEEWAY_S * 1000)
#define REVOKE_KEY_MAX   (2 + (AUTH_JTI_MAX > AUTH_NAME_MAX ? AUTH_JTI_MAX : AUTH_NAME_MAX) + 1)

struct revoke_entry {
    char *key;   /* "j:JTI" or "u:NAME", owned */
    int64_t at;  /* j: the token's exp (UTC ms); u: tokens with an iat below this second */
    int64_t gen; /* u: tokens with an rgen below this generation */
};

struct revoke {
    pthread_mutex_t mu;
    int64_t gen; /* the store's revocation generation the snapshot reflects */
    struct revoke_entry *v;
    size_t n, cap;
    struct hmap map; /* key -> index in v; keys borrowed from v[i].key */
    int64_t swept_at_ms;
};

struct revoke *revoke_new(void)
{
    struct revoke *rv = xcalloc(1, sizeof *rv);
    pthread_mutex_init(&rv->mu, NULL);
    hmap_init(&rv->map);
    rv->swept_at_ms = when_now_ms();
    return rv;
}

static void entries_clear(struct revoke *rv)
{
    for (size_t i = 0; i < rv->n; i++)
        free(rv->v[i].key);
    rv->n = 0;
    hmap_release(&rv->map);
    hmap_init(&rv->map);
}

void revoke_free(struct revoke *rv)
{
    if (!rv)
        return;
    entries_clear(rv);
    hmap_release(&rv->map);
    free(rv->v);
    pthread_mutex_destroy(&rv->mu);
    free(rv);
}

/* A token entry past exp + leeway. Compared as at < now - leeway: a token's exp may be as far
 * as auth.c lets it (INT64_MAX / 1000 s, in ms), where adding the leeway would overflow. */
static bool expired(const struct revoke_entry *e, int64_t now_ms)
{
    return e->key[0] == 'j' && e->at < now_ms - REVOKE_LEEWAY_MS;
}

/* Drops the entries of tokens no verifier accepts any more (mutex held). */
static void sweep(struct revoke *rv, int64_t now_ms)
{
    size_t kept = 0;
    for (size_t i = 0; i < rv->n; i++) {
        if (expired(&rv->v[i], now_ms))
            free(rv->v[i].key);
        else
            rv->v[kept++] = rv->v[i];
    }
    rv->n = kept;
    hmap_release(&rv->map);
    hmap_init(&rv->map);
    for (size_t i = 0; i < rv->n; i++)
        hmap_put(&rv->map, rv->v[i].key, strlen(rv->v[i].key), (uint32_t)i);
    rv->swept_at_ms = now_ms;
}

/* Adds or raises one entry (mutex held). */
static void merge(struct revoke *rv, const char *key, int64_t at, int64_t gen)
{
    size_t len = strlen(key);
    uint32_t i;
    if (hmap_get(&rv->map, key, len, &i)) {
        if (rv->v[i].at < at)
            rv->v[i].at = at;
        if (rv->v[i].gen < gen)
            rv->v[i].gen = gen;
        return;
    }
    xgrow((void **)&rv->v, &rv->cap, rv->n + 1, sizeof *rv->v);
    rv->v[rv->n] = (struct revoke_entry){.key = xstrdup(key), .at = at, .gen = gen};
    hmap_put(&rv->map, rv->v[rv->n].key, len, (uint32_t)rv->n);
    rv->n++;
}

/* Brings the snapshot up to the store's generation gen (mutex held). */
static int load(struct revoke *rv, struct store *s, int64_t gen, int64_t now_ms, struct err *e)
{
    if (gen < rv->gen) {
        /* Read before another thread moved the snapshot on: read again. Still lower, it is
         * another database (generations only grow): start over. */
        int r = store_revocation_gen(s, &gen, e);
        if (r < 0)
            return r;
        if (gen < rv->gen) {
            entries_clear(rv);
            rv->gen = 0;
        }
    }
    struct revocation_rec *v = NULL;
    size_t n = 0;
    int r = store_list_revocations(s, rv->gen, &v, &n, e);
    if (r < 0)
        return r;
    int64_t top = gen;
    for (size_t i = 0; i < n; i++) {
        char key[REVOKE_KEY_MAX];
        snprintf(key, sizeof key, "%s:%s", v[i].jti ? "j" : "u", v[i].jti ? v[i].jti : v[i].name);
        struct revoke_entry probe = {.key = key, .at = v[i].at};
        if (!expired(&probe, now_ms))
            merge(rv, key, v[i].at, v[i].gen);
        if (v[i].gen > top)
            top = v[i].gen;
    }
    store_free_revocations(v, n);
    rv->gen = top;
    return 0;
}

/* Whether the snapshot refuses u's token (mutex held). */
static bool lookup(struct revoke *rv, const struct auth_user *u)
{
    char jkey[REVOKE_KEY_MAX], ukey[REVOKE_KEY_MAX];
    snprintf(jkey, sizeof jkey, "j:%s", u->jti);
    snprintf(ukey, sizeof ukey, "u:%s", u->name);
    uint32_t i;
    if (u->jti[0] && hmap_get(&rv->map, jkey, strlen(jkey), &i))
        return true;
    if (!hmap_get(&rv->map, ukey, strlen(ukey), &i))
        return false;
    const struct revoke_entry *cut = &rv->v[i];
    if (u->has_rgen)
        return u->rgen < cut->gen;
    return u->iat_s == INT64_MIN || u->iat_s < cut->at;
}

int revoke_check(struct revoke *rv, struct store *s, const struct auth_user *u, const char **why,
                 struct err *e)
{
    int64_t gen;
    int r = store_revocation_gen(s, &gen, e);
    if (r < 0)
        return r;
    int64_t now_ms = when_now_ms();
    pthread_mutex_lock(&rv->mu);
    if (gen != rv->gen)
        r = load(rv, s, gen, now_ms, e);
    if (r == 0 && now_ms - rv->swept_at_ms >= REVOKE_SWEEP_MS)
        sweep(rv, now_ms);
    bool revoked = r == 0 && lookup(rv, u);
    pthread_mutex_unlock(&rv->mu);
    if (r < 0)
        return r;
    if (revoked) {
        if (why)
            *why = "token revoked";
        return -EACCES;
    }
    return 0;
}

int revoke_refresh(struct revoke *rv, struct store *s, struct err *e)
{
    int64_t gen;
    int r = store_revocation_gen(s, &gen, e);
    if (r < 0)
        return r;
    pthread_mutex_lock(&rv->mu);
    if (gen != rv->gen)
        r = load(rv, s, gen, when_now_ms(), e);
    if (r == 0 && when_now_ms() - rv->swept_at_ms >= REVOKE_SWEEP_MS)
        sweep(rv, when_now_ms());
    pthread_mutex_unlock(&rv->mu);
    return r;
}

int revoke_check_cached(struct revoke *rv, const struct auth_user *u, const char **why)
{
    pthread_mutex_lock(&rv->mu);
    bool revoked = lookup(rv, u);
    pthread_mutex_unlock(&rv->mu);
    if (revoked) {
        if (why)
            *why = "token revoked";
        return -EACCES;
    }
    return 0;
}

int revoke_token(struct store *s, const struct auth_user *u, struct err *e)
{
    int64_t purged = 0;
    int r = store_begin(s, e);
    if (r < 0)
        return r;
    r = store_revoke_token(s, u->jti, u->name, u->exp_s * 1000, e);
    if (r == 0)
        r = store_purge_revocations(s, when_now_ms() - REVOKE_LEEWAY_MS, &purged, e);
    if (r == 0)
        return store_commit(s, e);
    store_rollback(s);
    return r;
}

int revoke_user(struct store *s, const char *name, struct err *e)
{
    /* Every token issued up to now has an iat at or below this second: refuse below the next
     * (an identity provider's token of that second is refused too, until the next second).
     * baram's own tokens are refused by the generation this raises (auth_issue_user). */
    return store_revoke_user(s, name, when_now_ms() / 1000 + 1, e);
}
