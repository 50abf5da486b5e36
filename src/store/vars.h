/*
 * vars.h - variables and secrets (SPEC section 13): the `variables` table on
 * both backends, the checks of keys and values, and the sealing of secrets.
 *
 * A secret is kept only as crypto_secretbox_easy ciphertext (hex) under a
 * fresh random nonce per write, with a 32-byte key derived (keyed BLAKE2b,
 * crypto_generichash, context "baram variables v1") from the home's secret
 * key: HOME/secret.key, or the file named by BARAM_SECRET_KEY_FILE, which
 * every scheduler, API and CLI of one PostgreSQL database must then share.
 * The token signing key itself never seals anything.
 *
 * Threads: those of the store used; the key functions are pure.
 */
#ifndef BARAM_STORE_VARS_H
#define BARAM_STORE_VARS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

struct err;
struct store;

#define VAR_KEY_MAX   200
#define VAR_VALUE_MAX (64 * 1024)
#define VARS_KEYBYTES 32

struct var_rec {
    char *key;        /* owned */
    char *value;      /* owned: a plain variable's value; NULL for a secret */
    char *ciphertext; /* owned: a secret's sealed value (hex); NULL for a plain one */
    char *nonce;      /* owned: hex */
    bool secret;
    int64_t updated_at_ms; /* 0: now, on write */
    char *updated_by;      /* owned, may be NULL */
};

void var_rec_release(struct var_rec *v);
void vars_free(struct var_rec *v, size_t n);

/* A variable's key is 1-200 of [A-Za-z0-9_.-]. */
bool var_key_ok(const char *key);
/* A value: at most VAR_VALUE_MAX bytes of UTF-8 without NUL. NULL, or why not (static). */
const char *var_value_problem(const char *value, size_t len);

/* The key that seals secrets: from the file BARAM_SECRET_KEY_FILE names, else HOME/secret.key
 * (hex, as `baram init` writes it). 0, or a negative code with *e naming the file. */
int vars_key_load(const char *home, unsigned char key[VARS_KEYBYTES], struct err *e) WARN_UNUSED;

/* Fills v->ciphertext and v->nonce (fresh) from the value; v->value stays NULL. */
void vars_seal(const unsigned char key[VARS_KEYBYTES], const char *value, size_t len,
               struct var_rec *v);
/* The value of a secret (malloc'd, NUL-terminated): 0, or -EBADMSG with *e naming the key
 * ("cannot decrypt the secret 'K': ..."), as for a secret sealed with another key. */
int vars_open(const unsigned char key[VARS_KEYBYTES], const struct var_rec *v, char **value,
              struct err *e) WARN_UNUSED;

/* Inserts or replaces v (key checked by the caller). 0 or a negative code with *e. */
int store_put_var(struct store *s, const struct var_rec *v, struct err *e) WARN_UNUSED;
/* 0 and *out (release it), -ENOENT, or a negative code with *e. */
int store_get_var(struct store *s, const char *key, struct var_rec *out, struct err *e) WARN_UNUSED;
/* Every variable by key (vars_free them). */
int store_list_vars(struct store *s, struct var_rec **out, size_t *n, struct err *e) WARN_UNUSED;
/* 0, -ENOENT, or a negative code with *e. */
int store_delete_var(struct store *s, const char *key, struct err *e) WARN_UNUSED;

/* Checks, seals (a secret) and writes one variable: 0; -EINVAL with *e naming what is wrong
 * ("bad key '...'", "the value is larger than 64 KiB"); or the store's code. key_bytes is only
 * read for a secret. */
int vars_write(struct store *s, const unsigned char key_bytes[VARS_KEYBYTES], const char *key,
               const char *value, size_t len, bool secret, const char *by,
               struct err *e) WARN_UNUSED;
#define VARS_BAD_KEY_FMT "bad key '%.64s': 1 to 200 characters of [A-Za-z0-9_.-]"

#endif
