/*
 * auth.h - who may call the API (SPEC section 8): users with roles, their
 * argon2id password hashes (libsodium), HS256 tokens signed with the home's
 * secret key (libjwt), and the verifier that accepts them.
 *
 * The verifier pins algorithms: a token's header names its algorithm and
 * only two are accepted, each with its own key: HS256 with the home's secret
 * key, and, when a public key is configured (baram.yaml auth.public_key), the
 * algorithm of that key (RS256 for RSA, ES256 for EC P-256) with that key.
 * Anything else (alg none, HS384, HS256 signed with the public key as its
 * secret, ...) is refused before any signature is looked at. exp is required
 * (60 s leeway), nbf honoured, iss and aud must match the configuration.
 *
 * Failed logins are throttled per user name and per client address: after
 * AUTH_FREE_FAILURES failures, each further attempt within the window is
 * refused with a Retry-After (429) that doubles up to AUTH_MAX_DELAY_S.
 *
 * Thread-safe: an auth is read-only after auth_open, except the throttle
 * table (its own mutex) and each thread's cache of the tokens it verified
 * (a table per thread under the auth's own key, so two auths in a process
 * share nothing). No token, password or key is ever logged.
 */
#ifndef BARAM_API_AUTH_H
#define BARAM_API_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

struct err;
struct store;

#define AUTH_NAME_MAX      64 /* user names: [A-Za-z0-9_.@-], 1-64 chars */
#define AUTH_FREE_FAILURES 5
#define AUTH_MAX_DELAY_S   60
#define AUTH_LEEWAY_S      60

enum auth_role { AUTH_NONE = 0, AUTH_VIEWER = 1, AUTH_OPERATOR = 2, AUTH_ADMIN = 3 };

const char *auth_role_name(enum auth_role r);            /* "viewer", ... */
int auth_role_parse(const char *s, enum auth_role *out); /* 0 or -EINVAL */
bool auth_name_ok(const char *name);

#define AUTH_JTI_MAX 64 /* a jti longer than this is keyed by a digest (see auth_user.jti) */

/* An authenticated caller. */
struct auth_user {
    char name[AUTH_NAME_MAX + 1];
    enum auth_role role;
    /* What revocation (revoke.h) needs of the token: its jti, or, for a token without a usable
     * one (none, longer than AUTH_JTI_MAX, not printable ASCII), "#" and a hex digest of the
     * token's bytes; its iat (INT64_MIN when it has none) and exp, in seconds. */
    char jti[AUTH_JTI_MAX + 1];
    int64_t iat_s;
    int64_t exp_s;
    /* has_rgen: the token has an "rgen" claim (read from HS256 tokens only: baram's own), the
     * user's revocation generation it was issued under. Without one (an identity provider's
     * token), revoke_check goes by iat. */
    bool has_rgen;
    int64_t rgen;
};

struct auth_opts {
    const char *home;       /* HOME/secret.key holds the HS256 key (hex) */
    int64_t token_ttl_ms;   /* default lifetime of issued tokens */
    const char *issuer;     /* iss of issued tokens, required on verified ones */
    const char *audience;   /* aud, likewise */
    const char *public_key; /* path of a PEM public key (RS256 or ES256), or NULL */
};

struct auth;

/* Reads the keys. 0 and *out, or a negative code with *e filled: no secret.key (run `baram
 * init`), an unreadable or malformed key. */
int auth_open(const struct auth_opts *o, struct auth **out, struct err *e) WARN_UNUSED;
/* Frees a and the calling thread's cache of verified tokens. Call it once the other threads
 * that verified tokens with it have ended (after api_stop): the cache of one still running
 * would never be freed. */
void auth_close(struct auth *a);

/* Issues an HS256 token for name/role (sub, role, iat, exp, iss, aud, jti); ttl_ms <= 0: the
 * configured default. 0 and *token (malloc'd), *expires_in_s; or a negative code. */
int auth_issue(struct auth *a, const char *name, enum auth_role role, int64_t ttl_ms, char **token,
               int64_t *expires_in_s) WARN_UNUSED;

/* As auth_issue, for a user of the store whose row (role, password) was read with revocation
 * generation rgen (user_rec.revoked_gen, or auth_login's *rgen): the token carries it as its
 * "rgen" claim, and revoke_check refuses it once the user is revoked above rgen. So a token
 * issued on the strength of a row that a revocation has since replaced (a password reset, a
 * demotion, a delete committed while the login checked the old password) is refused, however
 * close in time the two were; one issued after the revocation, from the new row, stands. */
int auth_issue_user(struct auth *a, const char *name, enum auth_role role, int64_t rgen,
                    int64_t ttl_ms, char **token, int64_t *expires_in_s) WARN_UNUSED;

/* Verifies a bearer token (the part after "Bearer "). 0 with *user, or -EACCES with *why: a
 * short static reason for the problem's detail ("token expired"), never the token. */
int auth_verify(struct auth *a, const char *token, struct auth_user *user,
                const char **why) WARN_UNUSED;

/* argon2id (crypto_pwhash_str, interactive limits). 0 and *hash (malloc'd) or -ENOMEM. */
int auth_hash_password(const char *password, char **hash) WARN_UNUSED;
bool auth_check_password(const char *hash, const char *password);

/* Deletes the user in one transaction, unless it is the last admin (a home must keep one), and
 * revokes every token issued to them (revoke_user) in the same transaction. 0; -ENOENT no such
 * user; -EPERM the last admin (nothing changed); or ERR_DB (*e says why). The CLI's
 * `users delete` and the API's DELETE /users/{name} both call this. */
int auth_delete_user(struct store *s, const char *name, struct err *e) WARN_UNUSED;

/* A login: checks the user's password in the store, with throttling. 0 and *role, and *rgen
 * (may be NULL): the user's revocation generation read with the row, for auth_issue_user;
 * -EACCES bad user or password (the same answer for both); -EAGAIN throttled, *retry_after_s
 * set; or ERR_DB. client: the caller's address (for the per-address throttle), may be NULL. */
int auth_login(struct auth *a, struct store *s, const char *name, const char *password,
               const char *client, enum auth_role *role, int64_t *rgen, int *retry_after_s,
               struct err *e) WARN_UNUSED;

#endif
