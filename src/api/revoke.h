/*
 * revoke.h - revoked API tokens (SPEC section 8). A logout revokes the token
 * it was made with: its jti goes on the store's deny list until the token's
 * exp (plus the verifier's leeway) has passed, then it is purged. Deleting a
 * user, or replacing their role or password, revokes every token issued to
 * them until then: a per-user row with a cutoff ("tokens issued before this
 * second are refused", for identity providers' tokens) and a generation
 * (baram's own tokens carry the user's generation read with the row their
 * login checked, and are refused once it is lower than the user's: so a
 * login that overlaps the revocation cannot keep the old role).
 * revoke_check refuses both on every authenticated request.
 *
 * How a revocation reaches every API thread, in whichever process it was
 * made: each revocation raises the store's revocation generation in the
 * transaction that records it (store.h). revoke_check reads that one number
 * on the request's own store connection and, only when it moved, reads the
 * rows above the generation already seen into one snapshot that the
 * server's threads share. So a revocation committed by any process on the
 * same database (the CLI's `baram users delete`, a second `baram api`, this
 * server's own logout) is refused by every request that starts after the
 * commit: the bound is the commit itself, not a polling period. The check
 * runs after auth_verify on every request, so the verified-token cache of
 * auth.c cannot keep accepting a revoked token.
 *
 * Threads: a struct revoke is shared by the server's threads (its mutex).
 * Each call uses the caller's store connection (one thread at a time, as
 * store.h says). Nothing here logs a token.
 */
#ifndef BARAM_API_REVOKE_H
#define BARAM_API_REVOKE_H

#include <stdint.h>

#include "base/compiler.h"

struct err;
struct store;
struct auth_user;

struct revoke;

/* The snapshot of the deny list a server keeps: empty until the first check. */
struct revoke *revoke_new(void);
void revoke_free(struct revoke *rv);

/* Whether u's token (as auth_verify described it) was revoked: 0 when it stands; -EACCES
 * with *why ("token revoked") when it was; or ERR_DB (*e says why), when the store
 * cannot tell. Any thread. */
int revoke_check(struct revoke *rv, struct store *s, const struct auth_user *u, const char **why,
                 struct err *e) WARN_UNUSED;

/* For a server that must not wait on the store per request (a worker's log server): a side
 * thread brings the snapshot up to the store's generation (0 or ERR_DB), and requests are
 * checked against the snapshot alone (0 or -EACCES with *why), so a revocation is refused
 * from the refresh after its commit on. */
int revoke_refresh(struct revoke *rv, struct store *s, struct err *e) WARN_UNUSED;
int revoke_check_cached(struct revoke *rv, const struct auth_user *u, const char **why);

/* A logout: puts u's token on the deny list until its exp, and purges the tokens whose exp
 * (plus leeway) has passed, in one transaction. 0 or ERR_DB. */
int revoke_token(struct store *s, const struct auth_user *u, struct err *e) WARN_UNUSED;

/* Refuses every token issued to name up to now (its iat at or before this second). Joins the
 * caller's transaction when there is one (auth_delete_user's, `users add --update`'s).
 * 0 or ERR_DB. */
int revoke_user(struct store *s, const char *name, struct err *e) WARN_UNUSED;

#endif
