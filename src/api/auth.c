/*
 * auth.c - users, passwords and tokens (auth.h, SPEC section 8).
 *
 * Tokens: issued with libjwt (HS256, the home's secret key). Verification
 * never lets a token choose its own key: the header is split off and
 * decoded here first (strict base64url, jansson), its alg must be HS256
 * (then the key is the secret key) or the algorithm of the configured
 * public key (then the key is that PEM), and only then is libjwt asked to
 * check the signature with that one key; its answer's alg must match the
 * pinned one too. The claims are read from the same (now verified) payload
 * bytes, decoded here: exp required, nbf honoured, iss/aud/sub/role
 * checked. The public key's algorithm comes from the key itself: the
 * algorithm OID inside the PEM's DER (rsaEncryption -> RS256,
 * id-ecPublicKey with prime256v1 -> ES256); anything else is refused at
 * auth_open.
 *
 * Passwords: argon2id (crypto_pwhash_str_alg, interactive limits). A login
 * for an unknown user still verifies against a dummy hash made at
 * auth_open, so both failures cost the same and answer the same.
 *
 * Throttle: a fixed table (AUTH_THROTTLE_SLOTS entries, the oldest evicted)
 * of failure counters keyed by "u:NAME" and "c:CLIENT", behind one mutex.
 * Failures count while each comes within AUTH_WINDOW_MS of the previous one;
 * the n-th (n >= AUTH_FREE_FAILURES) blocks the key for min(2^(n-5), max) s.
 * An attempt is counted as a failure when it starts (check and count in one
 * locked step, so parallel guesses cannot all pass the check) and taken
 * back when it succeeds. argon2 calls go through a process-wide gate (at
 * most AUTH_HASH_CONCURRENCY at once: each takes 64 MiB).
 *
 * Threads: struct auth is read-only after auth_open but for the throttle
 * table (its mutex); any thread. Nothing secret is ever logged: only user
 * names (when valid), roles and client addresses.
 */
#include "api/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <jwt.h>
#include <sodium.h>

#include "api/revoke.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "store/store.h"

#define AUTH_TOKEN_MAX        8192
#define AUTH_KEY_FILE_MAX     4096
#define AUTH_PEM_MAX          16384
#define AUTH_KEY_MIN          16
#define AUTH_KEY_MAX          64
#define AUTH_PASSWORD_MAX     4096
#define AUTH_WINDOW_MS        (15 * 60 * 1000)
#define AUTH_THROTTLE_SLOTS   4096
#define AUTH_THROTTLE_KEY     80
#define AUTH_JTI_BYTES        16
#define AUTH_HASH_CONCURRENCY 4

struct auth_throttle {
    char key[AUTH_THROTTLE_KEY]; /* "u:NAME" or "c:ADDR"; "" = free slot */
    int failures;                /* within the window */
    int64_t first_ms;            /* monotonic: the window's first failure */
    int64_t last_ms;             /* monotonic: the latest failure (eviction order) */
    int64_t blocked_until_ms;    /* monotonic */
};

struct auth {
    unsigned char secret[AUTH_KEY_MAX];
    size_t secret_len;
    char *pub_pem; /* NUL-terminated PEM, or NULL */
    size_t pub_len;
    jwt_alg_t pub_alg; /* JWT_ALG_RS256 or JWT_ALG_ES256 when pub_pem */
    int64_t ttl_ms;
    char *issuer;
    char *audience;
    char *dummy_hash; /* for logins of unknown users */
    pthread_mutex_t mu;
    struct auth_throttle *slots; /* AUTH_THROTTLE_SLOTS */
    /* Each thread's verified tokens of this auth (vcache_slot): a table per thread, freed
     * when the thread ends; the key is deleted by auth_close. vcache_ok false: no cache. */
    pthread_key_t vcache_key;
    bool vcache_ok;
};

static const char *const role_names[] = {"none", "viewer", "operator", "admin"};

const char *auth_role_name(enum auth_role r)
{
    return (unsigned)r < sizeof role_names / sizeof role_names[0] ? role_names[r] : "none";
}

int auth_role_parse(const char *s, enum auth_role *out)
{
    for (int r = AUTH_VIEWER; s && r <= AUTH_ADMIN; r++)
        if (strcmp(s, role_names[r]) == 0) {
            *out = (enum auth_role)r;
            return 0;
        }
    return -EINVAL;
}

bool auth_name_ok(const char *name)
{
    if (!name || !*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '@' || c == '-';
        if (!ok || n >= AUTH_NAME_MAX)
            return false;
    }
    return true;
}

/* ---- opening ---- */

/* Reads a small file whole (NUL-terminated): 0, -EFBIG over max, or a negative errno. */
static int read_small(const char *path, size_t max, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    struct stat st;
    int bad = fstat(fd, &st) < 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL : 0;
    if (bad < 0) {
        close(fd);
        return bad;
    }
    char *data = xmalloc(max + 1);
    size_t n = 0;
    int r = 0;
    for (;;) {
        ssize_t got = read(fd, data + n, max + 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            r = -errno;
            break;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n > max) {
            r = -EFBIG;
            break;
        }
    }
    close(fd);
    if (r < 0) {
        sodium_memzero(data, max + 1);
        free(data);
        return r;
    }
    data[n] = 0;
    *out = data;
    *len = n;
    return 0;
}

static int read_secret(struct auth *a, const char *home, struct err *e)
{
    char *path = xasprintf("%s/secret.key", home);
    char *text;
    size_t len;
    int r = read_small(path, AUTH_KEY_FILE_MAX, &text, &len);
    if (r == -ENOENT) {
        (void)err_set(e, r, "no secret key at '%s' (run `baram init`)", path);
    } else if (r < 0) {
        (void)err_set(e, r, "cannot read the secret key '%s': %s", path, err_str(r));
    } else {
        while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
            len--;
        size_t bin = 0;
        const char *end = NULL;
        if (sodium_hex2bin(a->secret, sizeof a->secret, text, len, NULL, &bin, &end) != 0 ||
            end != text + len || bin < AUTH_KEY_MIN) {
            r = err_set(e, -EINVAL,
                        "the secret key '%s' is malformed (expected %d to %d bytes in hex)", path,
                        AUTH_KEY_MIN, AUTH_KEY_MAX);
        } else {
            a->secret_len = bin;
        }
        sodium_memzero(text, len);
        free(text);
    }
    free(path);
    return r;
}

static bool has_bytes(const unsigned char *p, size_t n, const unsigned char *pat, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(p + i, pat, m) == 0)
            return true;
    return false;
}

/* The algorithm of a PEM public key, from the OIDs in its DER: RS256 for RSA, ES256 for EC on
 * P-256; JWT_ALG_INVAL for anything else. */
static jwt_alg_t pem_alg(const char *pem)
{
    static const char rsa_hdr[] = "-----BEGIN RSA PUBLIC KEY-----";
    static const char hdr[] = "-----BEGIN PUBLIC KEY-----";
    static const char ftr[] = "-----END PUBLIC KEY-----";
    static const unsigned char oid_rsa[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                            0xf7, 0x0d, 0x01, 0x01, 0x01};
    static const unsigned char oid_ec[] = {0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
    static const unsigned char oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                             0xce, 0x3d, 0x03, 0x01, 0x07};
    if (strstr(pem, rsa_hdr))
        return JWT_ALG_RS256;
    const char *b = strstr(pem, hdr);
    const char *e = b ? strstr(b, ftr) : NULL;
    if (!b || !e)
        return JWT_ALG_INVAL;
    b += sizeof hdr - 1;
    size_t n = (size_t)(e - b);
    unsigned char *der = xmalloc(n + 1);
    size_t len = 0;
    jwt_alg_t alg = JWT_ALG_INVAL;
    if (sodium_base642bin(der, n + 1, b, n, " \t\r\n", &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) == 0) {
        if (has_bytes(der, len, oid_rsa, sizeof oid_rsa))
            alg = JWT_ALG_RS256;
        else if (has_bytes(der, len, oid_ec, sizeof oid_ec) &&
                 has_bytes(der, len, oid_p256, sizeof oid_p256))
            alg = JWT_ALG_ES256;
    }
    free(der);
    return alg;
}

static int read_public_key(struct auth *a, const char *path, struct err *e)
{
    int r = read_small(path, AUTH_PEM_MAX, &a->pub_pem, &a->pub_len);
    if (r < 0) {
        (void)err_set(e, r, "cannot read the public key '%s': %s", path, err_str(r));
        return r;
    }
    a->pub_alg = pem_alg(a->pub_pem);
    if (a->pub_alg == JWT_ALG_INVAL) {
        return err_set(e, -EINVAL, "the public key '%s' is not a PEM RSA or EC P-256 public key",
                       path);
    }
    return 0;
}

int auth_open(const struct auth_opts *o, struct auth **out, struct err *e)
{
    *out = NULL;
    if (!o || !o->home || !o->issuer || !*o->issuer || !o->audience || !*o->audience)
        return err_set(e, -EINVAL, "auth needs a home, an issuer and an audience");
    if (sodium_init() < 0)
        return err_set(e, -ENOSYS, "cannot initialise libsodium");
    struct auth *a = xcalloc(1, sizeof *a);
    a->vcache_ok = pthread_key_create(&a->vcache_key, free) == 0;
    a->ttl_ms = o->token_ttl_ms > 0 ? o->token_ttl_ms : 3600 * 1000;
    a->issuer = xstrdup(o->issuer);
    a->audience = xstrdup(o->audience);
    pthread_mutex_init(&a->mu, NULL);
    a->slots = xcalloc(AUTH_THROTTLE_SLOTS, sizeof *a->slots);
    int r = read_secret(a, o->home, e);
    if (r == 0 && o->public_key && *o->public_key)
        r = read_public_key(a, o->public_key, e);
    if (r == 0) {
        /* A dummy hash of a random password, for logins of unknown users. */
        unsigned char pw[16];
        char hex[sizeof pw * 2 + 1];
        randombytes_buf(pw, sizeof pw);
        sodium_bin2hex(hex, sizeof hex, pw, sizeof pw);
        r = auth_hash_password(hex, &a->dummy_hash);
        if (r < 0)
            (void)err_set(e, r, "cannot hash a password (out of memory)");
    }
    if (r < 0) {
        auth_close(a);
        return r;
    }
    *out = a;
    return 0;
}

void auth_close(struct auth *a)
{
    if (!a)
        return;
    sodium_memzero(a->secret, sizeof a->secret);
    free(a->pub_pem);
    free(a->issuer);
    free(a->audience);
    free(a->dummy_hash);
    free(a->slots);
    pthread_mutex_destroy(&a->mu);
    if (a->vcache_ok) {
        /* The server's threads have ended (their tables with them); the caller's own, if it
         * verified tokens itself, goes now. */
        free(pthread_getspecific(a->vcache_key));
        pthread_key_delete(a->vcache_key);
    }
    free(a);
}

/* ---- issuing ---- */

/* Issues a token whose iat is now, with the claim "rgen" when rgen >= 0. */
static int issue(struct auth *a, const char *name, enum auth_role role, int64_t ttl_ms,
                 int64_t rgen, char **token, int64_t *expires_in_s)
{
    *token = NULL;
    if (expires_in_s)
        *expires_in_s = 0;
    if (!auth_name_ok(name) || role < AUTH_VIEWER || role > AUTH_ADMIN)
        return -EINVAL;
    if (ttl_ms <= 0)
        ttl_ms = a->ttl_ms;
    int64_t ttl_s = (ttl_ms + 999) / 1000;
    int64_t now_s = when_now_ms() / 1000;
    unsigned char jti_bin[AUTH_JTI_BYTES];
    char jti[AUTH_JTI_BYTES * 2 + 1];
    randombytes_buf(jti_bin, sizeof jti_bin);
    sodium_bin2hex(jti, sizeof jti, jti_bin, sizeof jti_bin);

    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0)
        return -ENOMEM;
    int r = jwt_set_alg(jwt, JWT_ALG_HS256, a->secret, (int)a->secret_len);
    r = r ? r : jwt_add_grant(jwt, "sub", name);
    r = r ? r : jwt_add_grant(jwt, "role", auth_role_name(role));
    r = r ? r : jwt_add_grant(jwt, "iss", a->issuer);
    r = r ? r : jwt_add_grant(jwt, "aud", a->audience);
    r = r ? r : jwt_add_grant(jwt, "jti", jti);
    r = r ? r : jwt_add_grant_int(jwt, "iat", (long)now_s);
    r = r ? r : jwt_add_grant_int(jwt, "exp", (long)(now_s + ttl_s));
    if (rgen >= 0)
        r = r ? r : jwt_add_grant_int(jwt, "rgen", (long)rgen);
    char *s = r ? NULL : jwt_encode_str(jwt);
    jwt_free(jwt);
    if (!s)
        return -ENOMEM;
    /* libjwt's string is freed with free() (its default allocator). */
    *token = s;
    if (expires_in_s)
        *expires_in_s = ttl_s;
    return 0;
}

int auth_issue(struct auth *a, const char *name, enum auth_role role, int64_t ttl_ms, char **token,
               int64_t *expires_in_s)
{
    return issue(a, name, role, ttl_ms, -1, token, expires_in_s);
}

int auth_issue_user(struct auth *a, const char *name, enum auth_role role, int64_t rgen,
                    int64_t ttl_ms, char **token, int64_t *expires_in_s)
{
    *token = NULL;
    if (rgen < 0)
        return -EINVAL;
    return issue(a, name, role, ttl_ms, rgen, token, expires_in_s);
}

/* ---- verifying ---- */

static bool b64url_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Decodes one base64url part (no padding) as a JSON object: the object, or NULL. */
static json_t *decode_part(const char *p, size_t n)
{
    if (n == 0)
        return NULL;
    unsigned char *bin = xmalloc(n + 1);
    size_t len = 0;
    const char *end = NULL;
    json_t *j = NULL;
    if (sodium_base642bin(bin, n + 1, p, n, NULL, &len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
        end == p + n) {
        json_error_t jerr;
        j = json_loadb((const char *)bin, len, JSON_REJECT_DUPLICATES, &jerr);
        if (j && !json_is_object(j)) {
            json_decref(j);
            j = NULL;
        }
    }
    free(bin);
    return j;
}

static bool number_claim(json_t *v, double *out)
{
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return *out == *out; /* not NaN */
}

/* A jti usable as a deny-list key as it is: 1 to AUTH_JTI_MAX printable ASCII characters, not
 * starting with '#' (the digest keys of tokens without one). */
static bool jti_ok(const char *jti)
{
    if (!jti || !*jti || *jti == '#')
        return false;
    size_t n = 0;
    for (const char *p = jti; *p; p++, n++)
        if (n >= AUTH_JTI_MAX || *p < 0x21 || *p > 0x7e)
            return false;
    return true;
}

/* Checks the verified claims; 0 and *user, or -EACCES and *why. own: the token is HS256, signed
 * by this home, so its "rgen" is baram's (an identity provider's is not looked at). */
static int check_claims(struct auth *a, json_t *c, bool own, struct auth_user *user,
                        const char **why, double *exp_out, double *nbf_out)
{
    double now = (double)when_now_ms() / 1000.0, exp, nbf = -1e300;
    json_t *v = json_object_get(c, "exp");
    if (!v) {
        *why = "token has no expiry";
        return -EACCES;
    }
    if (!number_claim(v, &exp)) {
        *why = "token expiry is not a number";
        return -EACCES;
    }
    if (exp <= now - AUTH_LEEWAY_S) {
        *why = "token expired";
        return -EACCES;
    }
    if ((v = json_object_get(c, "nbf"))) {
        if (!number_claim(v, &nbf) || nbf > now + AUTH_LEEWAY_S) {
            *why = "token not valid yet";
            return -EACCES;
        }
    }
    v = json_object_get(c, "iss");
    if (!json_is_string(v) || strcmp(json_string_value(v), a->issuer) != 0) {
        *why = "token issuer not accepted";
        return -EACCES;
    }
    v = json_object_get(c, "aud");
    bool aud_ok = json_is_string(v) && strcmp(json_string_value(v), a->audience) == 0;
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            if (json_is_string(x) && strcmp(json_string_value(x), a->audience) == 0)
                aud_ok = true;
        }
    }
    if (!aud_ok) {
        *why = "token audience not accepted";
        return -EACCES;
    }
    v = json_object_get(c, "sub");
    if (!json_is_string(v) || !auth_name_ok(json_string_value(v))) {
        *why = "token subject is not a valid user name";
        return -EACCES;
    }
    const char *sub = json_string_value(v);
    enum auth_role role;
    v = json_object_get(c, "role");
    if (!json_is_string(v) || auth_role_parse(json_string_value(v), &role) < 0) {
        *why = "token has no valid role";
        return -EACCES;
    }
    memset(user, 0, sizeof *user);
    snprintf(user->name, sizeof user->name, "%s", sub);
    user->role = role;
    double iat;
    user->iat_s = number_claim(json_object_get(c, "iat"), &iat) && iat > -9e15 && iat < 9e15
                      ? (int64_t)iat
                      : INT64_MIN;
    /* exp is past now - leeway here: positive; rounded up, as the deny list must outlive it. */
    user->exp_s = exp < 9e15 ? (int64_t)exp + (exp > (double)(int64_t)exp) : INT64_MAX / 1000;
    v = json_object_get(c, "rgen");
    user->has_rgen = own && json_is_integer(v) && json_integer_value(v) >= 0;
    user->rgen = user->has_rgen ? json_integer_value(v) : 0;
    v = json_object_get(c, "jti");
    if (jti_ok(json_string_value(v)))
        snprintf(user->jti, sizeof user->jti, "%s", json_string_value(v));
    *exp_out = exp;
    *nbf_out = nbf;
    return 0;
}

/* ---- verified tokens ---- */

/* Each thread keeps the tokens it verified last, per auth (a direct-mapped table under the
 * auth's key, so a client that sends the same token with every request costs a hash and a
 * compare, not base64, JSON and an HMAC). A hit needs the very same bytes, compared in
 * constant time; only exp and nbf, which depend on the time, are checked again. A miss
 * verifies in full. */
#define VCACHE_SLOTS     64
#define VCACHE_TOKEN_MAX 1024

struct vcache_entry {
    size_t len; /* 0: empty */
    char token[VCACHE_TOKEN_MAX];
    struct auth_user user;
    double exp, nbf;
};

static struct vcache_entry *vcache_slot(struct auth *a, const char *token, size_t len, bool create)
{
    if (len > VCACHE_TOKEN_MAX || !a->vcache_ok)
        return NULL;
    struct vcache_entry *t = pthread_getspecific(a->vcache_key);
    if (!t) {
        if (!create)
            return NULL;
        t = xcalloc(VCACHE_SLOTS, sizeof(*t));
        if (pthread_setspecific(a->vcache_key, t) != 0) {
            free(t);
            return NULL;
        }
    }
    uint64_t h = 1469598103934665603ULL; /* FNV-1a of the signature's last bytes */
    for (size_t i = len > 32 ? len - 32 : 0; i < len; i++)
        h = (h ^ (unsigned char)token[i]) * 1099511628211ULL;
    return &t[h % VCACHE_SLOTS];
}

static bool vcache_get(struct auth *a, const char *token, size_t len, struct auth_user *user)
{
    struct vcache_entry *e = vcache_slot(a, token, len, false);
    if (!e || e->len != len || sodium_memcmp(e->token, token, len) != 0)
        return false;
    double now = (double)when_now_ms() / 1000.0;
    if (e->exp <= now - AUTH_LEEWAY_S || e->nbf > now + AUTH_LEEWAY_S)
        return false; /* the full check says why */
    *user = e->user;
    return true;
}

static void vcache_put(struct auth *a, const char *token, size_t len, const struct auth_user *user,
                       double exp, double nbf)
{
    struct vcache_entry *e = vcache_slot(a, token, len, true);
    if (!e)
        return;
    e->len = len;
    memcpy(e->token, token, len);
    e->user = *user;
    e->exp = exp;
    e->nbf = nbf;
}

int auth_verify(struct auth *a, const char *token, struct auth_user *user, const char **why)
{
    static const char *const no_why = "";
    const char *why_local = no_why;
    if (!why)
        why = &why_local;
    *why = "malformed token";
    if (user)
        memset(user, 0, sizeof *user);
    if (!a || !token || !user)
        return -EACCES;
    size_t len = strnlen(token, AUTH_TOKEN_MAX + 1);
    if (len > AUTH_TOKEN_MAX) {
        *why = "token too large";
        return -EACCES;
    }
    if (vcache_get(a, token, len, user)) {
        *why = "";
        return 0;
    }
    /* Exactly three non-empty base64url parts. */
    const char *dot[2];
    size_t ndots = 0;
    for (size_t i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (ndots == 2)
                return -EACCES;
            dot[ndots++] = token + i;
        } else if (!b64url_char(token[i])) {
            return -EACCES;
        }
    }
    if (ndots != 2 || dot[0] == token || dot[1] == dot[0] + 1 || dot[1] + 1 == token + len)
        return -EACCES;

    json_t *hdr = decode_part(token, (size_t)(dot[0] - token));
    if (!hdr)
        return -EACCES;
    json_t *typ = json_object_get(hdr, "typ");
    json_t *alg_j = json_object_get(hdr, "alg");
    const char *alg = json_string_value(alg_j);
    bool typ_ok = !typ || (json_is_string(typ) && strcasecmp(json_string_value(typ), "JWT") == 0);
    bool crit = json_object_get(hdr, "crit") != NULL;
    const unsigned char *key = NULL;
    size_t keylen = 0;
    jwt_alg_t pinned = JWT_ALG_INVAL;
    if (typ_ok && !crit && alg) {
        if (strcmp(alg, "HS256") == 0) {
            pinned = JWT_ALG_HS256;
            key = a->secret;
            keylen = a->secret_len;
        } else if (a->pub_pem && strcmp(alg, jwt_alg_str(a->pub_alg)) == 0) {
            pinned = a->pub_alg;
            key = (const unsigned char *)a->pub_pem;
            keylen = a->pub_len;
        }
    }
    json_decref(hdr);
    if (!typ_ok || crit) {
        *why = "token header not accepted";
        return -EACCES;
    }
    if (pinned == JWT_ALG_INVAL) {
        *why = "token algorithm not accepted";
        return -EACCES;
    }

    jwt_t *jwt = NULL;
    int r = jwt_decode(&jwt, token, key, (int)keylen);
    bool sig_ok = r == 0 && jwt && jwt_get_alg(jwt) == pinned;
    jwt_free(jwt);
    if (!sig_ok) {
        *why = "token signature not valid";
        return -EACCES;
    }
    /* The payload bytes were just verified: read the claims from them. */
    json_t *claims = decode_part(dot[0] + 1, (size_t)(dot[1] - dot[0] - 1));
    if (!claims)
        return -EACCES;
    double exp = 0, nbf = 0;
    r = check_claims(a, claims, pinned == JWT_ALG_HS256, user, why, &exp, &nbf);
    json_decref(claims);
    if (r < 0) {
        memset(user, 0, sizeof *user);
    } else {
        *why = "";
        if (!user->jti[0]) { /* no usable jti: the token's digest keys it on the deny list */
            unsigned char d[16];
            crypto_generichash(d, sizeof d, (const unsigned char *)token, len, NULL, 0);
            user->jti[0] = '#';
            sodium_bin2hex(user->jti + 1, sizeof user->jti - 1, d, sizeof d);
        }
        vcache_put(a, token, len, user, exp, nbf);
    }
    return r;
}

/* ---- passwords ---- */

/* Each argon2 call takes crypto_pwhash_MEMLIMIT_INTERACTIVE (64 MiB): at most
 * AUTH_HASH_CONCURRENCY run at once, process-wide; the others wait their turn, so a burst of
 * logins cannot exhaust memory. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_busy;

static void gate_enter(void)
{
    pthread_mutex_lock(&gate_mu);
    while (gate_busy >= AUTH_HASH_CONCURRENCY)
        pthread_cond_wait(&gate_cv, &gate_mu);
    gate_busy++;
    pthread_mutex_unlock(&gate_mu);
}

static void gate_leave(void)
{
    pthread_mutex_lock(&gate_mu);
    gate_busy--;
    pthread_cond_signal(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

int auth_hash_password(const char *password, char **hash)
{
    *hash = NULL;
    if (!password)
        return -EINVAL;
    if (sodium_init() < 0)
        return -ENOMEM;
    char out[crypto_pwhash_STRBYTES];
    gate_enter();
    int r =
        crypto_pwhash_str_alg(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13);
    gate_leave();
    if (r != 0)
        return -ENOMEM;
    *hash = xstrdup(out);
    sodium_memzero(out, sizeof out);
    return 0;
}

bool auth_check_password(const char *hash, const char *password)
{
    if (!hash || !password || strnlen(hash, crypto_pwhash_STRBYTES) >= crypto_pwhash_STRBYTES)
        return false;
    if (sodium_init() < 0)
        return false;
    gate_enter();
    int r = crypto_pwhash_str_verify(hash, password, strlen(password));
    gate_leave();
    return r == 0;
}

/* ---- throttling ---- */

/* The slot for key (mutex held), or NULL when create is false and there is none. A new slot
 * takes a free or stale one, else the least recently failed. */
static struct auth_throttle *throttle_slot(struct auth *a, const char *key, bool create,
                                           int64_t now)
{
    struct auth_throttle *spare = NULL, *oldest = NULL;
    for (size_t i = 0; i < AUTH_THROTTLE_SLOTS; i++) {
        struct auth_throttle *t = &a->slots[i];
        if (!t->key[0] || (now - t->last_ms > AUTH_WINDOW_MS && now >= t->blocked_until_ms)) {
            if (!spare)
                spare = t;
            continue;
        }
        if (strcmp(t->key, key) == 0)
            return t;
        if (!oldest || t->last_ms < oldest->last_ms)
            oldest = t;
    }
    if (!create)
        return NULL;
    struct auth_throttle *t = spare ? spare : oldest;
    memset(t, 0, sizeof *t);
    snprintf(t->key, sizeof t->key, "%s", key);
    return t;
}

/* Seconds the key is still blocked (mutex held), 0 when it is not. */
static int throttle_wait(struct auth *a, const char *key, int64_t now)
{
    struct auth_throttle *t = throttle_slot(a, key, false, now);
    if (!t || now >= t->blocked_until_ms)
        return 0;
    return (int)((t->blocked_until_ms - now + 999) / 1000);
}

/* The block after the n-th failure (n >= AUTH_FREE_FAILURES): min(2^(n-5), max) seconds. */
static int64_t throttle_delay_s(int n)
{
    int shift = n - AUTH_FREE_FAILURES;
    int64_t delay = shift >= 7 ? AUTH_MAX_DELAY_S : (int64_t)1 << (shift < 0 ? 0 : shift);
    return delay > AUTH_MAX_DELAY_S ? AUTH_MAX_DELAY_S : delay;
}

static void throttle_fail(struct auth *a, const char *key, int64_t now)
{
    struct auth_throttle *t = throttle_slot(a, key, true, now);
    if (t->failures == 0 || now - t->last_ms > AUTH_WINDOW_MS) {
        t->failures = 0;
        t->first_ms = now;
    }
    t->failures++;
    t->last_ms = now;
    if (t->failures >= AUTH_FREE_FAILURES)
        t->blocked_until_ms = now + throttle_delay_s(t->failures) * 1000;
}

/* Takes back one failure counted ahead of a check that did not fail. */
static void throttle_undo(struct auth *a, const char *key, int64_t now)
{
    struct auth_throttle *t = throttle_slot(a, key, false, now);
    if (!t || t->failures == 0)
        return;
    t->failures--;
    if (t->failures < AUTH_FREE_FAILURES)
        t->blocked_until_ms = 0;
    else
        t->blocked_until_ms = t->last_ms + throttle_delay_s(t->failures) * 1000;
}

static void throttle_clear(struct auth *a, const char *key, int64_t now)
{
    struct auth_throttle *t = throttle_slot(a, key, false, now);
    if (t)
        memset(t, 0, sizeof *t);
}

static void throttle_keys(const char *name, const char *client, char *ukey, char *ckey)
{
    snprintf(ukey, AUTH_THROTTLE_KEY, "u:%s", name ? name : "");
    if (client && *client)
        snprintf(ckey, AUTH_THROTTLE_KEY, "c:%s", client);
    else
        ckey[0] = 0;
}

int auth_delete_user(struct store *s, const char *name, struct err *e)
{
    int r = store_begin(s, e);
    if (r < 0)
        return r;
    struct user_rec u;
    r = store_get_user(s, name, &u, e);
    if (r == 0) {
        if (strcmp(u.role, auth_role_name(AUTH_ADMIN)) == 0) {
            int64_t admins = 0;
            r = store_count_users(s, u.role, &admins, e);
            if (r == 0 && admins <= 1)
                r = -EPERM;
        }
        user_rec_release(&u);
    }
    if (r == 0)
        r = store_delete_user(s, name, e);
    if (r == 0)
        r = revoke_user(s, name, e);
    if (r == 0)
        r = store_commit(s, e);
    else
        store_rollback(s);
    return r;
}

int auth_login(struct auth *a, struct store *s, const char *name, const char *password,
               const char *client, enum auth_role *role, int64_t *rgen, int *retry_after_s,
               struct err *e)
{
    *role = AUTH_NONE;
    if (rgen)
        *rgen = -1;
    if (retry_after_s)
        *retry_after_s = 0;
    char ukey[AUTH_THROTTLE_KEY], ckey[AUTH_THROTTLE_KEY];
    throttle_keys(name, client, ukey, ckey);
    const char *who = auth_name_ok(name) ? name : "(invalid)";

    /* The attempt counts as a failure from the start, in the same locked step as the check:
     * parallel guesses cannot all slip in before the first one fails. A success undoes it. */
    int64_t now = when_mono_ms();
    pthread_mutex_lock(&a->mu);
    int wait_u = throttle_wait(a, ukey, now);
    int wait_c = ckey[0] ? throttle_wait(a, ckey, now) : 0;
    int wait = wait_u > wait_c ? wait_u : wait_c;
    if (wait == 0) {
        throttle_fail(a, ukey, now);
        if (ckey[0])
            throttle_fail(a, ckey, now);
    }
    pthread_mutex_unlock(&a->mu);
    if (wait > 0) {
        if (retry_after_s)
            *retry_after_s = wait;
        log_info("login throttled", "user=%s client=%s retry_after=%d", log_q(who),
                 log_q(client ? client : "-"), wait);
        return -EAGAIN;
    }

    struct user_rec u = {0};
    int r = -ENOENT;
    if (auth_name_ok(name) && password && strlen(password) <= AUTH_PASSWORD_MAX) {
        r = store_get_user(s, name, &u, e);
        if (r < 0 && r != -ENOENT) {
            pthread_mutex_lock(&a->mu);
            throttle_undo(a, ukey, when_mono_ms());
            if (ckey[0])
                throttle_undo(a, ckey, when_mono_ms());
            pthread_mutex_unlock(&a->mu);
            return r;
        }
    }
    enum auth_role got = AUTH_NONE;
    int64_t got_gen = u.revoked_gen; /* read with the row: the password checked is this one's */
    bool ok;
    if (r == 0) {
        ok = auth_check_password(u.password_hash, password) && auth_role_parse(u.role, &got) == 0;
    } else {
        /* Same work as a real check, same answer. */
        (void)auth_check_password(a->dummy_hash, password ? password : "");
        ok = false;
    }
    user_rec_release(&u);

    if (ok) {
        now = when_mono_ms();
        pthread_mutex_lock(&a->mu);
        throttle_clear(a, ukey, now);
        if (ckey[0])
            throttle_undo(a, ckey, now);
        pthread_mutex_unlock(&a->mu);
    }
    if (!ok) {
        log_info("login failed", "user=%s client=%s", log_q(who), log_q(client ? client : "-"));
        return -EACCES;
    }
    log_info("login", "user=%s role=%s client=%s", name, auth_role_name(got),
             log_q(client ? client : "-"));
    *role = got;
    if (rgen)
        *rgen = got_gen;
    return 0;
}
