/*
 * vars.c - variables and secrets (vars.h): the checks, the sealing, and the
 * SQL of both backends in one place (the store's backend table is left as it
 * is: these calls are rare, never on a try's path).
 */
#include "store/vars.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "store/pg_int.h"
#include "store/store.h"
#include "store/store_int.h"

#define VARS_KDF_CONTEXT  "baram variables v1"
#define VARS_KEY_FILE_MAX 4096

void var_rec_release(struct var_rec *v)
{
    free(v->key);
    if (v->value)
        sodium_memzero(v->value, strlen(v->value));
    free(v->value);
    free(v->ciphertext);
    free(v->nonce);
    free(v->updated_by);
    memset(v, 0, sizeof(*v));
}

void vars_free(struct var_rec *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        var_rec_release(&v[i]);
    free(v);
}

bool var_key_ok(const char *key)
{
    size_t n = key ? strlen(key) : 0;
    if (n < 1 || n > VAR_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* Whether s[0..n) is UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
static bool vars_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3, cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k + 1;
    }
    return true;
}

const char *var_value_problem(const char *value, size_t len)
{
    if (len > VAR_VALUE_MAX)
        return "is larger than 64 KiB";
    if (memchr(value, 0, len))
        return "holds a NUL byte";
    if (!vars_utf8((const unsigned char *)value, len))
        return "is not valid UTF-8";
    return NULL;
}

int vars_key_load(const char *home, unsigned char key[VARS_KEYBYTES], struct err *e)
{
    const char *env = getenv("BARAM_SECRET_KEY_FILE");
    char *path = env && *env ? xstrdup(env) : xasprintf("%s/secret.key", home);
    int r = 0;
    char text[VARS_KEY_FILE_MAX + 1];
    unsigned char bin[VARS_KEY_FILE_MAX / 2];
    ssize_t n = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, text, VARS_KEY_FILE_MAX);
        if (n < 0)
            r = -errno;
        close(fd);
    } else {
        r = -errno;
    }
    if (r < 0) {
        r = err_set(e, r, "cannot read the secret key '%s': %s%s", path, err_str(r),
                    r == -ENOENT && !(env && *env) ? " (run `baram init`)" : "");
        free(path);
        return r;
    }
    size_t len = (size_t)n, blen = 0;
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    const char *end = NULL;
    if (sodium_hex2bin(bin, sizeof bin, text, len, NULL, &blen, &end) != 0 || end != text + len ||
        blen < crypto_generichash_KEYBYTES_MIN) {
        r = err_set(e, -EINVAL,
                    "the secret key '%s' is malformed (expected at least %d bytes in hex)", path,
                    (int)crypto_generichash_KEYBYTES_MIN);
    } else {
        unsigned char master[crypto_generichash_KEYBYTES_MAX];
        size_t mlen = blen;
        if (blen > sizeof master) { /* a long key is hashed down first */
            crypto_generichash(master, sizeof master, bin, blen, NULL, 0);
            mlen = sizeof master;
        } else {
            memcpy(master, bin, blen);
        }
        crypto_generichash(key, VARS_KEYBYTES, (const unsigned char *)VARS_KDF_CONTEXT,
                           strlen(VARS_KDF_CONTEXT), master, mlen);
        sodium_memzero(master, sizeof master);
    }
    sodium_memzero(text, sizeof text);
    sodium_memzero(bin, sizeof bin);
    free(path);
    return r;
}

static char *vars_hex(const unsigned char *p, size_t n)
{
    char *s = xmalloc(n * 2 + 1);
    sodium_bin2hex(s, n * 2 + 1, p, n);
    return s;
}

void vars_seal(const unsigned char key[VARS_KEYBYTES], const char *value, size_t len,
               struct var_rec *v)
{
    unsigned char nonce[crypto_secretbox_NONCEBYTES];
    randombytes_buf(nonce, sizeof nonce);
    unsigned char *c = xmalloc(len + crypto_secretbox_MACBYTES);
    crypto_secretbox_easy(c, (const unsigned char *)value, len, nonce, key);
    free(v->ciphertext);
    free(v->nonce);
    v->ciphertext = vars_hex(c, len + crypto_secretbox_MACBYTES);
    v->nonce = vars_hex(nonce, sizeof nonce);
    free(c);
}

int vars_open(const unsigned char key[VARS_KEYBYTES], const struct var_rec *v, char **value,
              struct err *e)
{
    *value = NULL;
    size_t clen = v->ciphertext ? strlen(v->ciphertext) / 2 : 0, got = 0, nlen = 0;
    unsigned char nonce[crypto_secretbox_NONCEBYTES];
    unsigned char *c = xmalloc(clen + 1);
    int r = 0;
    if (!v->ciphertext || !v->nonce ||
        sodium_hex2bin(c, clen + 1, v->ciphertext, strlen(v->ciphertext), NULL, &got, NULL) != 0 ||
        got < crypto_secretbox_MACBYTES ||
        sodium_hex2bin(nonce, sizeof nonce, v->nonce, strlen(v->nonce), NULL, &nlen, NULL) != 0 ||
        nlen != sizeof nonce) {
        r = err_set(e, -EBADMSG, "cannot decrypt the secret '%s': its stored form is damaged",
                    v->key);
    } else {
        char *m = xmalloc(got - crypto_secretbox_MACBYTES + 1);
        if (crypto_secretbox_open_easy((unsigned char *)m, c, got, nonce, key) != 0) {
            free(m);
            r = err_set(e, -EBADMSG,
                        "cannot decrypt the secret '%s': it was sealed with another secret key "
                        "(set it again, or use that home's secret.key)",
                        v->key);
        } else {
            m[got - crypto_secretbox_MACBYTES] = 0;
            *value = m;
        }
    }
    free(c);
    return r;
}

/* ---- the SQL of both backends ---- */

#define VAR_COLS "key, value, ciphertext, nonce, is_secret, updated_at, updated_by"

static bool vars_pg(struct store *s)
{
    return store__backend(s) == &store__pg_backend;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? xstrndup((const char *)t, (size_t)sqlite3_column_bytes(st, i)) : NULL;
}

static void sqlite_read(sqlite3_stmt *st, struct var_rec *v)
{
    v->key = col_dup(st, 0);
    v->value = col_dup(st, 1);
    v->ciphertext = col_dup(st, 2);
    v->nonce = col_dup(st, 3);
    v->secret = sqlite3_column_int(st, 4) != 0;
    v->updated_at_ms = sqlite3_column_int64(st, 5);
    v->updated_by = col_dup(st, 6);
}

static char *pg_dup(PGresult *r, int row, int i)
{
    return PQgetisnull(r, row, i) ? NULL
                                  : xstrndup(PQgetvalue(r, row, i), (size_t)PQgetlength(r, row, i));
}

static void pg_read(PGresult *r, int row, struct var_rec *v)
{
    v->key = pg_dup(r, row, 0);
    v->value = pg_dup(r, row, 1);
    v->ciphertext = pg_dup(r, row, 2);
    v->nonce = pg_dup(r, row, 3);
    v->secret = PQgetvalue(r, row, 4)[0] == 't';
    v->updated_at_ms = strtoll(PQgetvalue(r, row, 5), NULL, 10);
    v->updated_by = pg_dup(r, row, 6);
}

static int sqlite_fail(sqlite3 *db, const char *what, struct err *e)
{
    return err_set(e, ERR_DB, "cannot %s: %s", what, sqlite3_errmsg(db));
}

static void bind_opt(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

int store_put_var(struct store *s, const struct var_rec *v, struct err *e)
{
    int64_t at = store__now_or(v->updated_at_ms);
    if (vars_pg(s)) {
        char atbuf[24];
        snprintf(atbuf, sizeof atbuf, "%lld", (long long)at);
        const char *p[] = {v->key, v->value,     v->ciphertext, v->nonce, v->secret ? "t" : "f",
                           atbuf,  v->updated_by};
        return pg__exec_params(store__pg(store__conn(s)),
                               "INSERT INTO variables (" VAR_COLS ") VALUES ($1, $2, $3, $4, $5, "
                               "$6, $7) ON CONFLICT (key) DO UPDATE SET value = $2, ciphertext "
                               "= $3, nonce = $4, is_secret = $5, updated_at = $6, updated_by = $7",
                               7, p, "write a variable", NULL, e);
    }
    sqlite3 *db = store__sqlite(store__conn(s));
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO variables (" VAR_COLS ") VALUES (?, ?, ?, "
                           "?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        return sqlite_fail(db, "write a variable", e);
    bind_opt(st, 1, v->key);
    bind_opt(st, 2, v->value);
    bind_opt(st, 3, v->ciphertext);
    bind_opt(st, 4, v->nonce);
    sqlite3_bind_int(st, 5, v->secret);
    sqlite3_bind_int64(st, 6, at);
    bind_opt(st, 7, v->updated_by);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : sqlite_fail(db, "write a variable", e);
    sqlite3_finalize(st);
    return r;
}

/* One variable (key non-NULL) or all of them. */
static int vars_select(struct store *s, const char *key, struct var_rec **out, size_t *n,
                       struct err *e)
{
    *out = NULL;
    *n = 0;
    if (vars_pg(s)) {
        PGresult *res = NULL;
        const char *p[] = {key};
        int r = pg__exec_params(store__pg(store__conn(s)),
                                key ? "SELECT " VAR_COLS " FROM variables WHERE key = $1"
                                    : "SELECT " VAR_COLS " FROM variables ORDER BY key",
                                key ? 1 : 0, p, "read variables", &res, e);
        if (r < 0)
            return r;
        int rows = PQntuples(res);
        *out = xcalloc(rows ? (size_t)rows : 1, sizeof(**out));
        for (int i = 0; i < rows; i++)
            pg_read(res, i, &(*out)[i]);
        *n = (size_t)rows;
        PQclear(res);
        return 0;
    }
    sqlite3 *db = store__sqlite(store__conn(s));
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           key ? "SELECT " VAR_COLS " FROM variables WHERE key = ?"
                               : "SELECT " VAR_COLS " FROM variables ORDER BY key",
                           -1, &st, NULL) != SQLITE_OK)
        return sqlite_fail(db, "read variables", e);
    bind_opt(st, 1, key);
    size_t cap = 8;
    *out = xcalloc(cap, sizeof(**out));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap)
            *out = xrealloc(*out, (cap *= 2) * sizeof(**out));
        memset(&(*out)[*n], 0, sizeof(**out));
        sqlite_read(st, &(*out)[(*n)++]);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        vars_free(*out, *n);
        *out = NULL;
        *n = 0;
        return sqlite_fail(db, "read variables", e);
    }
    return 0;
}

int store_get_var(struct store *s, const char *key, struct var_rec *out, struct err *e)
{
    memset(out, 0, sizeof(*out));
    struct var_rec *v;
    size_t n;
    int r = vars_select(s, key, &v, &n, e);
    if (r < 0)
        return r;
    if (n == 0) {
        free(v);
        return -ENOENT;
    }
    *out = v[0];
    free(v);
    return 0;
}

int store_list_vars(struct store *s, struct var_rec **out, size_t *n, struct err *e)
{
    return vars_select(s, NULL, out, n, e);
}

int store_delete_var(struct store *s, const char *key, struct err *e)
{
    if (vars_pg(s)) {
        PGresult *res = NULL;
        const char *p[] = {key};
        int r = pg__exec_params(store__pg(store__conn(s)), "DELETE FROM variables WHERE key = $1",
                                1, p, "delete a variable", &res, e);
        if (r < 0)
            return r;
        r = strcmp(PQcmdTuples(res), "0") == 0 ? -ENOENT : 0;
        PQclear(res);
        return r;
    }
    sqlite3 *db = store__sqlite(store__conn(s));
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "DELETE FROM variables WHERE key = ?", -1, &st, NULL) != SQLITE_OK)
        return sqlite_fail(db, "delete a variable", e);
    bind_opt(st, 1, key);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : sqlite_fail(db, "delete a variable", e);
    sqlite3_finalize(st);
    if (r == 0 && sqlite3_changes(db) == 0)
        r = -ENOENT;
    return r;
}

int vars_write(struct store *s, const unsigned char key_bytes[VARS_KEYBYTES], const char *key,
               const char *value, size_t len, bool secret, const char *by, struct err *e)
{
    if (!var_key_ok(key))
        return err_set(e, -EINVAL, VARS_BAD_KEY_FMT, key ? key : "");
    const char *why = var_value_problem(value, len);
    if (why)
        return err_set(e, -EINVAL, "the value of '%s' %s", key, why);
    struct var_rec v = {.key = (char *)key, .secret = secret, .updated_by = (char *)by};
    if (secret)
        vars_seal(key_bytes, value, len, &v);
    else
        v.value = (char *)value;
    int r = store_put_var(s, &v, e);
    free(v.ciphertext);
    free(v.nonce);
    return r;
}
