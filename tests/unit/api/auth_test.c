/*
 * auth_test.c - users, passwords and tokens (src/api/auth.c) against real
 * things: a secret.key in a fresh mkdtemp home, a real SQLite store, RSA and
 * EC P-256 key pairs in tests/unit/api/keys/ (made with openssl), tokens
 * signed with libjwt and by hand (libsodium's HMAC-SHA256). The verifier is
 * attacked: alg none, HS256 signed with the public key as its secret, wrong
 * key, tampered payload, expired, exp missing, future nbf, wrong iss/aud,
 * garbage, bad base64, huge tokens, HS384; fresh HS256 and RS256/ES256
 * tokens are accepted. Logins: round trips, the same refusal for unknown
 * users and bad passwords, the throttle and its growing Retry-After.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <jwt.h>
#include <sodium.h>

#include "api/auth.h"
#include "api/revoke.h"
#include "base/err.h"
#include "base/when.h"
#include "store/store.h"

static char tmpdir[PATH_MAX];
static unsigned char secret[32];
static char keydir[PATH_MAX];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/baram-auth-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    for (size_t i = 0; i < sizeof secret; i++)
        secret[i] = (unsigned char)(i * 7 + 3);
    char hex[sizeof secret * 2 + 1], path[PATH_MAX + 32];
    sodium_bin2hex(hex, sizeof hex, secret, sizeof secret);
    snprintf(path, sizeof path, "%s/secret.key", tmpdir);
    write_file(path, hex);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static const char *key_path(const char *name)
{
    static char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", keydir, name);
    return p;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *d = calloc(1, 65536);
    assert_non_null(d);
    *len = fread(d, 1, 65535, f);
    fclose(f);
    return d;
}

static struct auth *open_auth(const char *public_key)
{
    struct auth_opts o = {.home = tmpdir,
                          .token_ttl_ms = 3600 * 1000,
                          .issuer = "baram",
                          .audience = "baram-api",
                          .public_key = public_key};
    struct auth *a = NULL;
    struct err err = {0};
    int r = auth_open(&o, &a, &err);
    if (r != 0)
        fprintf(stderr, "auth_open: %s\n", err.msg);
    assert_int_equal(r, 0);
    assert_int_equal(err.code, 0);
    return a;
}

/* ---- token crafting ---- */

struct claims {
    const char *sub, *role, *iss, *aud;
    bool no_exp, aud_array;
    int64_t exp_off, nbf_off; /* seconds from now */
    bool has_nbf;
    size_t pad; /* bytes of an extra claim, for huge tokens */
};

static struct claims good_claims(void)
{
    return (struct claims){
        .sub = "alice", .role = "viewer", .iss = "baram", .aud = "baram-api", .exp_off = 600};
}

static char *claims_json(const struct claims *c)
{
    int64_t now = when_now_ms() / 1000;
    json_t *j = json_object();
    if (c->sub)
        json_object_set_new(j, "sub", json_string(c->sub));
    if (c->role)
        json_object_set_new(j, "role", json_string(c->role));
    if (c->iss)
        json_object_set_new(j, "iss", json_string(c->iss));
    if (c->aud && c->aud_array)
        json_object_set_new(j, "aud", json_pack("[ss]", "other", c->aud));
    else if (c->aud)
        json_object_set_new(j, "aud", json_string(c->aud));
    if (!c->no_exp)
        json_object_set_new(j, "exp", json_integer(now + c->exp_off));
    if (c->has_nbf)
        json_object_set_new(j, "nbf", json_integer(now + c->nbf_off));
    json_object_set_new(j, "iat", json_integer(now));
    if (c->pad) {
        char *p = malloc(c->pad + 1);
        memset(p, 'x', c->pad);
        p[c->pad] = 0;
        json_object_set_new(j, "pad", json_string(p));
        free(p);
    }
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

/* A token signed by libjwt with alg and key. */
static char *sign(jwt_alg_t alg, const void *key, size_t keylen, const struct claims *c)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    char *js = claims_json(c);
    assert_int_equal(jwt_add_grants_json(jwt, js), 0);
    free(js);
    assert_int_equal(jwt_set_alg(jwt, alg, key, (int)keylen), 0);
    char *t = jwt_encode_str(jwt);
    assert_non_null(t);
    jwt_free(jwt);
    return t;
}

static char *b64url(const void *p, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *s = malloc(cap);
    sodium_bin2base64(s, cap, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return s;
}

/* header.payload.HMAC-SHA256(key) (or an empty signature when key is NULL), by hand. */
static char *hand_token(const char *header, const char *payload, const void *key, size_t keylen)
{
    char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload));
    size_t in_len = strlen(h) + 1 + strlen(p);
    char *in = malloc(in_len + 1);
    snprintf(in, in_len + 1, "%s.%s", h, p);
    char *sig = NULL;
    if (key) {
        unsigned char mac[crypto_auth_hmacsha256_BYTES];
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, key, keylen);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)in, in_len);
        crypto_auth_hmacsha256_final(&st, mac);
        sig = b64url(mac, sizeof mac);
    }
    size_t n = in_len + 2 + (sig ? strlen(sig) : 0);
    char *t = malloc(n);
    snprintf(t, n, "%s.%s", in, sig ? sig : "");
    free(h);
    free(p);
    free(in);
    free(sig);
    return t;
}

static void expect_refused(struct auth *a, const char *token, const char *why_part)
{
    struct auth_user u;
    const char *why = NULL;
    assert_int_equal(auth_verify(a, token, &u, &why), -EACCES);
    assert_non_null(why);
    assert_int_equal(u.role, AUTH_NONE);
    if (why_part && !strstr(why, why_part)) {
        fprintf(stderr, "why '%s', expected '%s'\n", why, why_part);
        fail();
    }
}

static void expect_accepted(struct auth *a, const char *token, const char *name,
                            enum auth_role role)
{
    struct auth_user u;
    const char *why = NULL;
    int r = auth_verify(a, token, &u, &why);
    if (r != 0)
        fprintf(stderr, "refused: %s\n", why ? why : "?");
    assert_int_equal(r, 0);
    assert_string_equal(u.name, name);
    assert_int_equal(u.role, role);
}

/* ---- tests ---- */

static void roles_and_names(void **state)
{
    (void)state;
    enum auth_role r;
    assert_int_equal(auth_role_parse("viewer", &r), 0);
    assert_int_equal(r, AUTH_VIEWER);
    assert_int_equal(auth_role_parse("operator", &r), 0);
    assert_int_equal(r, AUTH_OPERATOR);
    assert_int_equal(auth_role_parse("admin", &r), 0);
    assert_int_equal(r, AUTH_ADMIN);
    assert_int_equal(auth_role_parse("Admin", &r), -EINVAL);
    assert_int_equal(auth_role_parse("none", &r), -EINVAL);
    assert_int_equal(auth_role_parse("", &r), -EINVAL);
    assert_int_equal(auth_role_parse(NULL, &r), -EINVAL);
    assert_string_equal(auth_role_name(AUTH_OPERATOR), "operator");
    assert_string_equal(auth_role_name((enum auth_role)42), "none");

    assert_true(auth_name_ok("alice"));
    assert_true(auth_name_ok("a.b-c_d@example.com"));
    char n64[65], n65[66];
    memset(n64, 'a', 64);
    n64[64] = 0;
    memset(n65, 'a', 65);
    n65[65] = 0;
    assert_true(auth_name_ok(n64));
    assert_false(auth_name_ok(n65));
    assert_false(auth_name_ok(""));
    assert_false(auth_name_ok(NULL));
    assert_false(auth_name_ok("a b"));
    assert_false(auth_name_ok("a/b"));
    assert_false(auth_name_ok(".."));
    assert_false(auth_name_ok("é"));
}

static void open_errors(void **state)
{
    (void)state;
    struct auth *a = NULL;
    struct err err = {0};
    char other[PATH_MAX + 32];
    snprintf(other, sizeof other, "%s/empty", tmpdir);
    assert_int_equal(mkdir(other, 0700), 0);
    struct auth_opts o = {.home = other, .issuer = "baram", .audience = "baram"};
    assert_int_equal(auth_open(&o, &a, &err), -ENOENT);
    assert_null(a);
    assert_non_null(strstr(err.msg, "baram init"));

    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/secret.key", other);
    write_file(path, "not hex at all\n");
    assert_int_equal(auth_open(&o, &a, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "malformed"));
    assert_null(strstr(err.msg, "not hex")); /* the key's text is never echoed */
    write_file(path, "abcd\n");              /* too short */
    assert_int_equal(auth_open(&o, &a, &err), -EINVAL);

    /* A private key, or a text file, is not a public key. */
    o.home = tmpdir;
    o.public_key = key_path("rsa_private.pem");
    assert_int_equal(auth_open(&o, &a, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "public key"));
    o.public_key = key_path("missing.pem");
    assert_int_equal(auth_open(&o, &a, &err), -ENOENT);
}

static void passwords(void **state)
{
    (void)state;
    char *h = NULL;
    assert_int_equal(auth_hash_password("correct horse", &h), 0);
    assert_non_null(h);
    assert_int_equal(strncmp(h, "$argon2id$", 10), 0);
    assert_null(strstr(h, "correct horse"));
    assert_true(auth_check_password(h, "correct horse"));
    assert_false(auth_check_password(h, "correct horsf"));
    assert_false(auth_check_password(h, ""));
    assert_false(auth_check_password(h, NULL));
    assert_false(auth_check_password("garbage", "correct horse"));
    assert_false(auth_check_password(NULL, "x"));
    char *h2 = NULL;
    assert_int_equal(auth_hash_password("correct horse", &h2), 0);
    assert_string_not_equal(h, h2); /* salted */
    free(h);
    free(h2);
}

static void issue_and_verify(void **state)
{
    (void)state;
    struct auth *a = open_auth(NULL);
    char *t = NULL;
    int64_t exp_in = 0;
    assert_int_equal(auth_issue(a, "alice", AUTH_OPERATOR, 0, &t, &exp_in), 0);
    assert_int_equal(exp_in, 3600);
    expect_accepted(a, t, "alice", AUTH_OPERATOR);

    /* The claims the contract lists, read back by libjwt with the key. */
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_decode(&jwt, t, secret, sizeof secret), 0);
    assert_int_equal(jwt_get_alg(jwt), JWT_ALG_HS256);
    assert_string_equal(jwt_get_grant(jwt, "sub"), "alice");
    assert_string_equal(jwt_get_grant(jwt, "role"), "operator");
    assert_string_equal(jwt_get_grant(jwt, "iss"), "baram");
    assert_string_equal(jwt_get_grant(jwt, "aud"), "baram-api");
    assert_int_equal(strlen(jwt_get_grant(jwt, "jti")), 32);
    long iat = jwt_get_grant_int(jwt, "iat"), exp = jwt_get_grant_int(jwt, "exp");
    assert_int_equal(exp - iat, 3600);
    jwt_free(jwt);
    free(t);

    assert_int_equal(auth_issue(a, "bob", AUTH_ADMIN, 90 * 1000, &t, &exp_in), 0);
    assert_int_equal(exp_in, 90);
    expect_accepted(a, t, "bob", AUTH_ADMIN);
    free(t);
    assert_int_equal(auth_issue(a, "bad name", AUTH_ADMIN, 0, &t, &exp_in), -EINVAL);
    assert_int_equal(auth_issue(a, "bob", AUTH_NONE, 0, &t, &exp_in), -EINVAL);

    /* Tokens crafted with the right key: accepted within the rules. */
    struct claims c = good_claims();
    t = sign(JWT_ALG_HS256, secret, sizeof secret, &c);
    expect_accepted(a, t, "alice", AUTH_VIEWER);
    free(t);
    c.exp_off = -30; /* within the leeway */
    t = sign(JWT_ALG_HS256, secret, sizeof secret, &c);
    expect_accepted(a, t, "alice", AUTH_VIEWER);
    free(t);
    c = good_claims();
    c.has_nbf = true;
    c.nbf_off = 30;
    t = sign(JWT_ALG_HS256, secret, sizeof secret, &c);
    expect_accepted(a, t, "alice", AUTH_VIEWER);
    free(t);
    c = good_claims();
    c.aud_array = true;
    t = sign(JWT_ALG_HS256, secret, sizeof secret, &c);
    expect_accepted(a, t, "alice", AUTH_VIEWER);
    free(t);
    auth_close(a);
}

static void attack_alg_none(void **state)
{
    (void)state;
    struct auth *a = open_auth(key_path("rsa_public.pem"));
    struct claims c = good_claims();
    c.role = "admin";
    char *payload = claims_json(&c);
    char *t = hand_token("{\"alg\":\"none\"}", payload, NULL, 0);
    expect_refused(a, t, NULL);
    free(t);
    t = hand_token("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, secret, sizeof secret);
    expect_refused(a, t, "algorithm");
    free(t);
    t = hand_token("{\"alg\":\"None\"}", payload, secret, sizeof secret);
    expect_refused(a, t, "algorithm");
    free(t);
    /* libjwt's own alg-none token. */
    t = sign(JWT_ALG_NONE, NULL, 0, &c);
    expect_refused(a, t, NULL);
    free(t);
    /* No alg at all, or alg not a string. */
    t = hand_token("{\"typ\":\"JWT\"}", payload, secret, sizeof secret);
    expect_refused(a, t, "algorithm");
    free(t);
    t = hand_token("{\"alg\":[\"HS256\"]}", payload, secret, sizeof secret);
    expect_refused(a, t, "algorithm");
    free(t);
    free(payload);
    auth_close(a);
}

static void attack_hs256_with_public_key(void **state)
{
    (void)state;
    struct auth *a = open_auth(key_path("rsa_public.pem"));
    size_t len;
    char *pem = slurp(key_path("rsa_public.pem"), &len);
    struct claims c = good_claims();
    c.role = "admin";
    char *t = sign(JWT_ALG_HS256, pem, len, &c);
    expect_refused(a, t, "signature");
    free(t);
    char *payload = claims_json(&c);
    t = hand_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, pem, len);
    expect_refused(a, t, "signature");
    free(t);
    /* Header says RS256, signed as HMAC with the PEM: libjwt checks it as RSA and fails. */
    t = hand_token("{\"alg\":\"RS256\"}", payload, pem, len);
    expect_refused(a, t, "signature");
    free(t);
    free(payload);
    free(pem);
    auth_close(a);
}

static void attack_wrong_key_and_tamper(void **state)
{
    (void)state;
    struct auth *a = open_auth(NULL);
    unsigned char other[32];
    memcpy(other, secret, sizeof other);
    other[0] ^= 1;
    struct claims c = good_claims();
    char *t = sign(JWT_ALG_HS256, other, sizeof other, &c);
    expect_refused(a, t, "signature");
    free(t);

    /* A genuine viewer token with its payload edited to admin, signature kept. */
    int64_t exp_in;
    assert_int_equal(auth_issue(a, "alice", AUTH_VIEWER, 0, &t, &exp_in), 0);
    expect_accepted(a, t, "alice", AUTH_VIEWER);
    char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');
    size_t plen = (size_t)(d2 - d1 - 1);
    unsigned char bin[2048];
    size_t bl;
    assert_int_equal(sodium_base642bin(bin, sizeof bin - 1, d1 + 1, plen, NULL, &bl, NULL,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
    bin[bl] = 0;
    char *edited = calloc(1, bl + 8);
    char *role = strstr((char *)bin, "\"viewer\"");
    assert_non_null(role);
    snprintf(edited, bl + 8, "%.*s\"admin\"%s", (int)(role - (char *)bin), (char *)bin, role + 8);
    char *p64 = b64url(edited, strlen(edited));
    size_t n = (size_t)(d1 - t) + strlen(p64) + strlen(d2) + 2;
    char *forged = malloc(n);
    snprintf(forged, n, "%.*s.%s%s", (int)(d1 - t), t, p64, d2);
    expect_refused(a, forged, "signature");
    /* A flipped signature byte. */
    forged[strlen(forged) - 2] = forged[strlen(forged) - 2] == 'A' ? 'B' : 'A';
    expect_refused(a, forged, NULL);
    free(forged);
    free(p64);
    free(edited);
    free(t);
    auth_close(a);
}

/* The verified-token cache (auth.c): a token seen before is taken without a full check only
 * when it is the very same bytes for the very same auth. */
static void verified_token_cache(void **state)
{
    (void)state;
    struct auth *a = open_auth(NULL);
    char *t;
    int64_t exp_in;
    assert_int_equal(auth_issue(a, "alice", AUTH_OPERATOR, 0, &t, &exp_in), 0);
    for (int i = 0; i < 3; i++)
        expect_accepted(a, t, "alice", AUTH_OPERATOR);
    /* Every single-character change of the cached token is refused. */
    size_t n = strlen(t);
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '.')
            continue;
        char keep = t[i];
        t[i] = keep == 'A' ? 'B' : 'A';
        expect_refused(a, t, NULL);
        t[i] = keep;
    }
    expect_accepted(a, t, "alice", AUTH_OPERATOR);
    /* Another auth (another audience here) checks in full: the cache is not shared. */
    struct auth_opts o = {
        .home = tmpdir, .token_ttl_ms = 3600 * 1000, .issuer = "baram", .audience = "someone-else"};
    struct auth *b = NULL;
    struct err err = {0};
    assert_int_equal(auth_open(&o, &b, &err), 0);
    expect_refused(b, t, "audience");
    auth_close(b);
    /* Closed and opened again at maybe the same address: still a full check (passes). */
    auth_close(a);
    a = open_auth(NULL);
    expect_accepted(a, t, "alice", AUTH_OPERATOR);
    free(t);
    auth_close(a);
}

/* A token the cache holds is refused once its exp (plus leeway) has passed: the cache checks
 * the time again on every hit, it does not keep what was true when the token was verified. */
static void cached_token_is_refused_once_expired(void **state)
{
    (void)state;
    struct auth *a = open_auth(NULL);
    double exp = (double)when_now_ms() / 1000.0 - AUTH_LEEWAY_S + 3.0; /* 3 s left */
    char payload[256];
    snprintf(payload, sizeof payload,
             "{\"sub\":\"alice\",\"role\":\"viewer\",\"iss\":\"baram\",\"aud\":\"baram-api\","
             "\"exp\":%.3f}",
             exp);
    char *t = hand_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, secret, sizeof secret);
    expect_accepted(a, t, "alice", AUTH_VIEWER); /* verified in full, cached */
    expect_accepted(a, t, "alice", AUTH_VIEWER); /* from the cache */
    while ((double)when_now_ms() / 1000.0 <= exp + AUTH_LEEWAY_S + 0.2) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    expect_refused(a, t, "expired");
    free(t);
    auth_close(a);
}

static void attack_claims(void **state)
{
    (void)state;
    struct auth *a = open_auth(NULL);
    struct {
        struct claims c;
        const char *why;
    } cases[8];
    size_t n = 0;
    cases[n].c = good_claims(), cases[n].c.exp_off = -120, cases[n++].why = "expired";
    cases[n].c = good_claims(), cases[n].c.no_exp = true, cases[n++].why = "expiry";
    cases[n].c = good_claims(), cases[n].c.has_nbf = true, cases[n].c.nbf_off = 600,
    cases[n++].why = "not valid yet";
    cases[n].c = good_claims(), cases[n].c.iss = "evil", cases[n++].why = "issuer";
    cases[n].c = good_claims(), cases[n].c.iss = NULL, cases[n++].why = "issuer";
    cases[n].c = good_claims(), cases[n].c.aud = "other-api", cases[n++].why = "audience";
    cases[n].c = good_claims(), cases[n].c.role = "root", cases[n++].why = "role";
    cases[n].c = good_claims(), cases[n].c.sub = "../etc", cases[n++].why = "subject";
    for (size_t i = 0; i < n; i++) {
        char *t = sign(JWT_ALG_HS256, secret, sizeof secret, &cases[i].c);
        expect_refused(a, t, cases[i].why);
        free(t);
    }
    /* Claims of the wrong type. */
    const char *bad[] = {
        "{\"sub\":\"alice\",\"role\":\"admin\",\"iss\":\"baram\",\"aud\":\"baram-api\","
        "\"exp\":\"9999999999\"}",
        "{\"sub\":\"alice\",\"role\":\"admin\",\"iss\":\"baram\",\"aud\":[1,2],\"exp\":9999999999}",
        "{\"sub\":\"alice\",\"iss\":\"baram\",\"aud\":\"baram-api\",\"exp\":9999999999}",
        "{\"sub\":7,\"role\":\"admin\",\"iss\":\"baram\",\"aud\":\"baram-api\",\"exp\":9999999999}",
        "[1,2,3]",
        "{\"sub\":\"alice\",\"sub\":\"bob\",\"role\":\"admin\",\"iss\":\"baram\","
        "\"aud\":\"baram-api\",\"exp\":9999999999}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *t = hand_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", bad[i], secret, sizeof secret);
        expect_refused(a, t, NULL);
        free(t);
    }
    /* The control: the same hand-made path accepts a good payload. */
    char *t = hand_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
                         "{\"sub\":\"alice\",\"role\":\"admin\",\"iss\":\"baram\","
                         "\"aud\":\"baram-api\",\"exp\":9999999999}",
                         secret, sizeof secret);
    expect_accepted(a, t, "alice", AUTH_ADMIN);
    free(t);
    /* An unknown typ or a crit header. */
    t = hand_token("{\"alg\":\"HS256\",\"typ\":\"at+jwt+evil\"}",
                   "{\"sub\":\"alice\",\"role\":\"admin\",\"iss\":\"baram\","
                   "\"aud\":\"baram-api\",\"exp\":9999999999}",
                   secret, sizeof secret);
    expect_refused(a, t, "header");
    free(t);
    t = hand_token("{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}",
                   "{\"sub\":\"alice\",\"role\":\"admin\",\"iss\":\"baram\","
                   "\"aud\":\"baram-api\",\"exp\":9999999999}",
                   secret, sizeof secret);
    expect_refused(a, t, "header");
    free(t);
    auth_close(a);
}

static void attack_garbage(void **state)
{
    (void)state;
    struct auth *a = open_auth(NULL);
    const char *bad[] = {
        "",
        ".",
        "..",
        "...",
        "a",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "Bearer x.y.z",
        " x.y.z",
        "!!!.###.$$$",
        "eyJhbGciOiJIUzI1NiJ9..sig",
        ".eyJ9.sig",
        "eyJhbGciOiJIUzI1NiJ9.eyJ9.",
        "eyJhbGciOiJIUzI1NiJ9=.eyJ9.c2ln",
        "eyJhbGciOiJIUzI1NiJ9.e+J9.c2ln",
        "eyJhbGciOiJIUzI1NiJ9.eyJ9.c2ln\n",
        "bnVsbA.bnVsbA.c2ln", /* "null" header */
        "e30.e30.c2ln",       /* {} header */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_refused(a, bad[i], NULL);
    struct auth_user u;
    const char *why;
    assert_int_equal(auth_verify(a, NULL, &u, &why), -EACCES);
    /* Random bytes. */
    for (int i = 0; i < 200; i++) {
        char junk[64];
        randombytes_buf(junk, sizeof junk - 1);
        junk[sizeof junk - 1] = 0;
        if (i % 2) {
            junk[10] = '.';
            junk[30] = '.';
        }
        assert_int_equal(auth_verify(a, junk, &u, &why), -EACCES);
    }
    /* A huge token, validly signed. */
    struct claims c = good_claims();
    c.pad = 9000;
    char *t = sign(JWT_ALG_HS256, secret, sizeof secret, &c);
    expect_refused(a, t, "too large");
    free(t);
    c.pad = 1000; /* control: a big but allowed one */
    t = sign(JWT_ALG_HS256, secret, sizeof secret, &c);
    expect_accepted(a, t, "alice", AUTH_VIEWER);
    free(t);
    char *huge = malloc(1 << 20);
    memset(huge, 'A', (1 << 20) - 1);
    huge[(1 << 20) - 1] = 0;
    huge[100] = '.';
    huge[200] = '.';
    expect_refused(a, huge, "too large");
    free(huge);
    auth_close(a);
}

static void attack_other_algs(void **state)
{
    (void)state;
    struct auth *a = open_auth(NULL);
    struct claims c = good_claims();
    char *t = sign(JWT_ALG_HS384, secret, sizeof secret, &c);
    expect_refused(a, t, "algorithm");
    free(t);
    t = sign(JWT_ALG_HS512, secret, sizeof secret, &c);
    expect_refused(a, t, "algorithm");
    free(t);
    /* RS256 with no public key configured. */
    size_t len;
    char *priv = slurp(key_path("rsa_private.pem"), &len);
    t = sign(JWT_ALG_RS256, priv, len, &c);
    expect_refused(a, t, "algorithm");
    free(t);
    free(priv);
    auth_close(a);
}

static void public_key_tokens(void **state)
{
    (void)state;
    size_t len;
    char *rsa = slurp(key_path("rsa_private.pem"), &len);
    size_t eclen;
    char *ec = slurp(key_path("ec_private.pem"), &eclen);
    struct claims c = good_claims();
    c.sub = "carol@idp";
    c.role = "operator";

    struct auth *a = open_auth(key_path("rsa_public.pem"));
    char *t = sign(JWT_ALG_RS256, rsa, len, &c);
    expect_accepted(a, t, "carol@idp", AUTH_OPERATOR);
    free(t);
    /* HS256 with the home's key still works alongside. */
    t = sign(JWT_ALG_HS256, secret, sizeof secret, &c);
    expect_accepted(a, t, "carol@idp", AUTH_OPERATOR);
    free(t);
    /* RS384, ES256 with an RSA key configured: refused. */
    t = sign(JWT_ALG_RS384, rsa, len, &c);
    expect_refused(a, t, "algorithm");
    free(t);
    t = sign(JWT_ALG_ES256, ec, eclen, &c);
    expect_refused(a, t, "algorithm");
    free(t);
    /* The identity provider's token needs the role claim too. */
    struct claims nr = c;
    nr.role = NULL;
    t = sign(JWT_ALG_RS256, rsa, len, &nr);
    expect_refused(a, t, "role");
    free(t);
    auth_close(a);

    a = open_auth(key_path("ec_public.pem"));
    t = sign(JWT_ALG_ES256, ec, eclen, &c);
    expect_accepted(a, t, "carol@idp", AUTH_OPERATOR);
    free(t);
    t = sign(JWT_ALG_RS256, rsa, len, &c);
    expect_refused(a, t, "algorithm");
    free(t);
    auth_close(a);
    free(rsa);
    free(ec);
}

static struct store *open_store(void)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/baram.db", tmpdir);
    struct store *s = NULL;
    struct err serr = {0};
    assert_int_equal(store_open(path, &s, &serr), 0);
    return s;
}

static void put_user(struct store *s, const char *name, const char *role, const char *pw)
{
    struct user_rec u = {.name = (char *)name, .role = (char *)role};
    assert_int_equal(auth_hash_password(pw, &u.password_hash), 0);
    assert_int_equal(store_put_user(s, &u, NULL), 0);
    free(u.password_hash);
}

/* A token for a user of s, issued as `baram token` does: the row read, then the token. */
static int issue_user(struct auth *a, struct store *s, const char *name, enum auth_role role,
                      char **tok)
{
    struct user_rec u;
    int r = store_get_user(s, name, &u, NULL);
    int64_t exp_in;
    if (r == 0)
        r = auth_issue_user(a, name, role, u.revoked_gen, 0, tok, &exp_in);
    user_rec_release(&u);
    return r;
}

static void store_users(void **state)
{
    (void)state;
    struct store *s = open_store();
    int64_t n = -1;
    assert_int_equal(store_count_users(s, NULL, &n, NULL), 0);
    assert_int_equal(n, 0);
    struct user_rec u = {.name = "zed", .role = "viewer", .password_hash = "h1"};
    assert_int_equal(store_put_user(s, &u, NULL), 0);
    u = (struct user_rec){
        .name = "amy", .role = "admin", .password_hash = "h2", .created_at_ms = 5};
    assert_int_equal(store_put_user(s, &u, NULL), 0);
    struct user_rec got;
    assert_int_equal(store_get_user(s, "amy", &got, NULL), 0);
    assert_string_equal(got.role, "admin");
    assert_string_equal(got.password_hash, "h2");
    assert_int_equal(got.created_at_ms, 5);
    user_rec_release(&got);
    /* Upsert: role and hash replaced, created_at kept. */
    u = (struct user_rec){.name = "amy", .role = "operator", .password_hash = "h3"};
    assert_int_equal(store_put_user(s, &u, NULL), 0);
    assert_int_equal(store_get_user(s, "amy", &got, NULL), 0);
    assert_string_equal(got.role, "operator");
    assert_string_equal(got.password_hash, "h3");
    assert_int_equal(got.created_at_ms, 5);
    user_rec_release(&got);
    assert_int_equal(store_get_user(s, "nobody", &got, NULL), -ENOENT);

    struct user_rec *v;
    size_t nv;
    assert_int_equal(store_list_users(s, &v, &nv, NULL), 0);
    assert_int_equal(nv, 2);
    assert_string_equal(v[0].name, "amy");
    assert_string_equal(v[1].name, "zed");
    store_free_users(v, nv);
    assert_int_equal(store_count_users(s, "viewer", &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_count_users(s, "admin", &n, NULL), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_delete_user(s, "zed", NULL), 0);
    assert_int_equal(store_delete_user(s, "zed", NULL), -ENOENT);
    assert_int_equal(store_count_users(s, NULL, &n, NULL), 0);
    assert_int_equal(n, 1);
    u = (struct user_rec){.name = "x", .role = "viewer"};
    assert_int_equal(store_put_user(s, &u, NULL), ERR_DB); /* no hash */
    store_close(s);
}

/* Revocation (revoke.h) with two servers on one database (two snapshots, two connections), the
 * tokens held in the verified-token cache: a logout through one, a user deleted or updated
 * through a third connection (the CLI), each refused by both at the next check. */
static void revoked_tokens_are_refused_through_the_cache(void **state)
{
    (void)state;
    struct auth *a = open_auth(NULL);
    struct store *s1 = open_store(), *s2 = open_store(), *cli = open_store();
    struct revoke *rv1 = revoke_new(), *rv2 = revoke_new();
    put_user(cli, "alice", "operator", "pw-alice-1");
    put_user(cli, "bob", "viewer", "pw-bob-1");
    put_user(cli, "root", "admin", "pw-root-1");
    char *t1, *t2, *tb;
    assert_int_equal(issue_user(a, cli, "alice", AUTH_OPERATOR, &t1), 0);
    assert_int_equal(issue_user(a, cli, "alice", AUTH_OPERATOR, &t2), 0);
    assert_int_equal(issue_user(a, cli, "bob", AUTH_VIEWER, &tb), 0);
    struct auth_user u1, u2, ub;
    const char *why = NULL;
    assert_int_equal(auth_verify(a, t1, &u1, &why), 0);
    assert_int_equal(auth_verify(a, t2, &u2, &why), 0);
    assert_int_equal(auth_verify(a, tb, &ub, &why), 0);
    assert_int_equal(strlen(u1.jti), 32);
    assert_int_equal(u1.exp_s - u1.iat_s, 3600);
    assert_int_equal(revoke_check(rv1, s1, &u1, &why, NULL), 0);
    assert_int_equal(revoke_check(rv2, s2, &u1, &why, NULL), 0);

    /* A logout on server 2: server 1 refuses the (cached) token at its next check. */
    assert_int_equal(revoke_token(s2, &u1, NULL), 0);
    struct auth_user again;
    assert_int_equal(auth_verify(a, t1, &again, &why), 0); /* the signature is still good */
    assert_int_equal(revoke_check(rv1, s1, &again, &why, NULL), -EACCES);
    assert_string_equal(why, "token revoked");
    assert_int_equal(revoke_check(rv2, s2, &again, &why, NULL), -EACCES);
    assert_int_equal(revoke_check(rv1, s1, &u2, &why, NULL), 0); /* another session stands */
    assert_int_equal(revoke_check(rv1, s1, &ub, &why, NULL), 0);

    /* The user deleted from the CLI: every token of theirs, on both servers. */
    assert_int_equal(auth_delete_user(cli, "alice", NULL), 0);
    assert_int_equal(revoke_check(rv1, s1, &u2, &why, NULL), -EACCES);
    assert_int_equal(revoke_check(rv2, s2, &u2, &why, NULL), -EACCES);
    assert_int_equal(revoke_check(rv1, s1, &ub, &why, NULL), 0);
    /* Made again and logged in within the same second: the new token stands, the old not. */
    put_user(cli, "alice", "viewer", "pw-alice-2");
    char *t3;
    struct auth_user u3;
    assert_int_equal(issue_user(a, cli, "alice", AUTH_VIEWER, &t3), 0);
    assert_int_equal(auth_verify(a, t3, &u3, &why), 0);
    assert_int_equal(revoke_check(rv1, s1, &u3, &why, NULL), 0);
    assert_int_equal(revoke_check(rv1, s1, &u2, &why, NULL), -EACCES);
    assert_int_equal(u3.exp_s - u3.iat_s, 3600);

    /* A token without a jti is keyed by its digest: its logout revokes it and nothing else. */
    struct claims c = good_claims();
    c.sub = "bob";
    char *nj = sign(JWT_ALG_HS256, secret, sizeof secret, &c);
    struct auth_user un;
    assert_int_equal(auth_verify(a, nj, &un, &why), 0);
    assert_int_equal(un.jti[0], '#');
    assert_int_equal(revoke_token(cli, &un, NULL), 0);
    assert_int_equal(revoke_check(rv1, s1, &un, &why, NULL), -EACCES);
    assert_int_equal(revoke_check(rv1, s1, &ub, &why, NULL), 0);

    /* The last admin is not deleted, and nothing is revoked for them. */
    struct auth_user ur;
    char *tr;
    assert_int_equal(issue_user(a, cli, "root", AUTH_ADMIN, &tr), 0);
    assert_int_equal(auth_verify(a, tr, &ur, &why), 0);
    assert_int_equal(auth_delete_user(cli, "root", NULL), -EPERM);
    assert_int_equal(revoke_check(rv2, s2, &ur, &why, NULL), 0);

    /* The cost of a check that finds nothing new: one one-row read and two lookups. */
    int64_t t0 = when_mono_ns();
    enum { N = 20000 };
    for (int i = 0; i < N; i++)
        assert_int_equal(revoke_check(rv1, s1, &ub, &why, NULL), 0);
    fprintf(stderr, "revoke_check: %.2f us per check\n",
            (double)(when_mono_ns() - t0) / N / 1000.0);

    free(t1), free(t2), free(t3), free(tb), free(nj), free(tr);
    revoke_free(rv1);
    revoke_free(rv2);
    store_close(cli);
    store_close(s2);
    store_close(s1);
    auth_close(a);
}

/* A login that overlaps a revocation: the password and role checked are the old row's, the token
 * is issued after the revocation committed (in the same second). The token carries the
 * generation read with the old row, so it is refused; a login after the revocation stands. */
static void login_racing_a_revocation_is_refused(void **state)
{
    (void)state;
    struct auth *a = open_auth(NULL);
    struct store *api = open_store(), *cli = open_store();
    struct revoke *rv = revoke_new();
    put_user(cli, "root", "admin", "pw-root-1");
    put_user(cli, "dora", "admin", "pw-dora-1");
    for (int round = 0; round < 2; round++) { /* the first revocation of dora, then a second */
        enum auth_role role;
        int64_t rgen = -1;
        int retry;
        assert_int_equal(auth_login(a, api, "dora", "pw-dora-1", NULL, &role, &rgen, &retry, NULL), 0);
        assert_int_equal(role, AUTH_ADMIN);
        /* `users add dora --role viewer --update`, from another connection, in between. */
        assert_int_equal(store_begin(cli, NULL), 0);
        struct user_rec u = {.name = "dora", .role = "viewer", .password_hash = "new-hash"};
        assert_int_equal(store_put_user(cli, &u, NULL), 0);
        assert_int_equal(revoke_user(cli, "dora", NULL), 0);
        assert_int_equal(store_commit(cli, NULL), 0);
        char *tok;
        int64_t exp_in;
        assert_int_equal(auth_issue_user(a, "dora", role, rgen, 0, &tok, &exp_in), 0);
        struct auth_user au;
        const char *why = NULL;
        assert_int_equal(auth_verify(a, tok, &au, &why), 0);
        assert_true(au.has_rgen);
        assert_int_equal(au.rgen, rgen);
        assert_int_equal(au.role, AUTH_ADMIN);
        assert_int_equal(revoke_check(rv, api, &au, &why, NULL), -EACCES);
        assert_string_equal(why, "token revoked");
        free(tok);
        /* The row as it is now: a token issued from it stands, with the new role. */
        assert_int_equal(issue_user(a, cli, "dora", AUTH_VIEWER, &tok), 0);
        assert_int_equal(auth_verify(a, tok, &au, &why), 0);
        assert_int_equal(revoke_check(rv, api, &au, &why, NULL), 0);
        free(tok);
        put_user(cli, "dora", "admin", "pw-dora-1"); /* back, for the next round */
    }
    /* A token of an identity provider (no rgen) issued before the cutoff is refused by iat. */
    struct auth_user idp = {.name = "dora", .role = AUTH_ADMIN, .jti = "idp-1", .iat_s = 1};
    idp.exp_s = when_now_ms() / 1000 + 600;
    const char *why = NULL;
    assert_int_equal(revoke_check(rv, api, &idp, &why, NULL), -EACCES);
    idp.iat_s = when_now_ms() / 1000 + 5;
    assert_int_equal(revoke_check(rv, api, &idp, &why, NULL), 0);
    revoke_free(rv);
    store_close(cli);
    store_close(api);
    auth_close(a);
}

/* A snapshot whose store's generation went down (another database behind the url) starts over:
 * the other database's revocations are refused, the first one's are not kept. */
static void revoke_snapshot_follows_another_database(void **state)
{
    (void)state;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/other.db", tmpdir);
    struct store *s1 = open_store(), *s2 = NULL;
    struct err serr = {0};
    assert_int_equal(store_open(path, &s2, &serr), 0);
    struct revoke *rv = revoke_new();
    struct auth_user a = {.name = "alice",
                          .role = AUTH_VIEWER,
                          .jti = "a1",
                          .iat_s = 1,
                          .exp_s = when_now_ms() / 1000 + 600};
    struct auth_user b = a;
    snprintf(b.jti, sizeof b.jti, "b1");
    const char *why;
    for (int i = 0; i < 3; i++)
        assert_int_equal(revoke_token(s1, &a, NULL), 0);
    assert_int_equal(revoke_check(rv, s1, &a, &why, NULL), -EACCES);
    assert_int_equal(revoke_token(s2, &b, NULL), 0); /* generation 1 there, 3 here */
    assert_int_equal(revoke_check(rv, s2, &b, &why, NULL), -EACCES);
    assert_int_equal(revoke_check(rv, s2, &a, &why, NULL), 0);
    revoke_free(rv);
    store_close(s2);
    store_close(s1);
}

static void login_and_throttle(void **state)
{
    (void)state;
    struct auth *a = open_auth(NULL);
    struct store *s = open_store();
    put_user(s, "alice", "operator", "s3cret-pass");
    enum auth_role role;
    int retry = -1;
    assert_int_equal(auth_login(a, s, "alice", "s3cret-pass", "10.0.0.1", &role, NULL, &retry, NULL), 0);
    assert_int_equal(role, AUTH_OPERATOR);
    /* Unknown user and bad password: the same answer. */
    assert_int_equal(auth_login(a, s, "nobody", "s3cret-pass", "10.0.0.9", &role, NULL, &retry, NULL),
                     -EACCES);
    assert_int_equal(role, AUTH_NONE);
    assert_int_equal(auth_login(a, s, "alice", "wrong", "10.0.0.9", &role, NULL, &retry, NULL), -EACCES);
    assert_int_equal(auth_login(a, s, "bad name!", "x", "10.0.0.9", &role, NULL, &retry, NULL), -EACCES);

    /* Throttle per name: 5 free failures (from several clients), then 429s. */
    put_user(s, "bob", "viewer", "bob-pass");
    for (int i = 0; i < AUTH_FREE_FAILURES; i++) {
        char client[32];
        snprintf(client, sizeof client, "10.1.0.%d", i);
        assert_int_equal(auth_login(a, s, "bob", "nope", client, &role, NULL, &retry, NULL), -EACCES);
    }
    assert_int_equal(auth_login(a, s, "bob", "bob-pass", "10.2.0.1", &role, NULL, &retry, NULL), -EAGAIN);
    assert_int_equal(retry, 1);
    /* The right password is refused too while throttled; other users are not. */
    assert_int_equal(auth_login(a, s, "alice", "s3cret-pass", "10.2.0.1", &role, NULL, &retry, NULL), 0);
    usleep(1100 * 1000);
    assert_int_equal(auth_login(a, s, "bob", "nope", "10.2.0.1", &role, NULL, &retry, NULL), -EACCES);
    assert_int_equal(auth_login(a, s, "bob", "nope", "10.2.0.1", &role, NULL, &retry, NULL), -EAGAIN);
    assert_int_equal(retry, 2); /* grows */
    usleep(2100 * 1000);
    assert_int_equal(auth_login(a, s, "bob", "nope", "10.2.0.2", &role, NULL, &retry, NULL), -EACCES);
    assert_int_equal(auth_login(a, s, "bob", "nope", "10.2.0.2", &role, NULL, &retry, NULL), -EAGAIN);
    assert_true(retry >= 3 && retry <= 4);
    usleep((useconds_t)retry * 1000 * 1000 + 100 * 1000);
    /* A success clears the name's counter. */
    assert_int_equal(auth_login(a, s, "bob", "bob-pass", "10.2.0.3", &role, NULL, &retry, NULL), 0);
    assert_int_equal(role, AUTH_VIEWER);
    assert_int_equal(auth_login(a, s, "bob", "nope", "10.2.0.3", &role, NULL, &retry, NULL), -EACCES);
    assert_int_equal(auth_login(a, s, "bob", "bob-pass", "10.2.0.3", &role, NULL, &retry, NULL), 0);

    /* Throttle per client: many names from one address. */
    for (int i = 0; i < AUTH_FREE_FAILURES; i++) {
        char name[32];
        snprintf(name, sizeof name, "guess%d", i);
        assert_int_equal(auth_login(a, s, name, "x", "192.0.2.7", &role, NULL, &retry, NULL), -EACCES);
    }
    assert_int_equal(auth_login(a, s, "alice", "s3cret-pass", "192.0.2.7", &role, NULL, &retry, NULL),
                     -EAGAIN);
    assert_int_equal(retry, 1);
    assert_int_equal(auth_login(a, s, "alice", "s3cret-pass", "192.0.2.8", &role, NULL, &retry, NULL), 0);
    store_close(s);
    auth_close(a);
}

struct guess {
    struct auth *a;
    char db[PATH_MAX + 32];
    int r;
};

static void *guess_thread(void *arg)
{
    struct guess *g = arg;
    struct store *s = NULL;
    struct err serr = {0};
    if (store_open(g->db, &s, &serr) < 0) {
        g->r = 1;
        return NULL;
    }
    enum auth_role role;
    int retry;
    g->r = auth_login(g->a, s, "bob", "guess", NULL, &role, NULL, &retry, NULL);
    store_close(s);
    return NULL;
}

/* Parallel guesses cannot all pass the throttle's check before the first fails. */
static void throttle_parallel(void **state)
{
    (void)state;
    struct auth *a = open_auth(NULL);
    struct store *s = open_store();
    put_user(s, "bob", "viewer", "bob-pass");
    enum { N = 12 };
    struct guess g[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        g[i].a = a;
        snprintf(g[i].db, sizeof g[i].db, "%s/baram.db", tmpdir);
        g[i].r = 1;
        assert_int_equal(pthread_create(&th[i], NULL, guess_thread, &g[i]), 0);
    }
    int refused = 0, throttled = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        refused += g[i].r == -EACCES;
        throttled += g[i].r == -EAGAIN;
    }
    assert_int_equal(refused, AUTH_FREE_FAILURES);
    assert_int_equal(throttled, N - AUTH_FREE_FAILURES);
    store_close(s);
    auth_close(a);
}

int main(void)
{
    const char *src = getenv("BARAM_SOURCE_DIR");
    if (src && *src) {
        snprintf(keydir, sizeof keydir, "%s/tests/unit/api/keys", src);
    } else {
        snprintf(keydir, sizeof keydir, "%s", __FILE__);
        char *slash = strrchr(keydir, '/');
        if (slash)
            snprintf(slash, sizeof keydir - (size_t)(slash - keydir), "/keys");
    }
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roles_and_names),
        cmocka_unit_test_setup_teardown(open_errors, setup, teardown),
        cmocka_unit_test(passwords),
        cmocka_unit_test_setup_teardown(issue_and_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(attack_alg_none, setup, teardown),
        cmocka_unit_test_setup_teardown(verified_token_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(cached_token_is_refused_once_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(attack_hs256_with_public_key, setup, teardown),
        cmocka_unit_test_setup_teardown(attack_wrong_key_and_tamper, setup, teardown),
        cmocka_unit_test_setup_teardown(attack_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(attack_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(attack_other_algs, setup, teardown),
        cmocka_unit_test_setup_teardown(public_key_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(store_users, setup, teardown),
        cmocka_unit_test_setup_teardown(login_and_throttle, setup, teardown),
        cmocka_unit_test_setup_teardown(revoked_tokens_are_refused_through_the_cache, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(login_racing_a_revocation_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(revoke_snapshot_follows_another_database, setup, teardown),
        cmocka_unit_test_setup_teardown(throttle_parallel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
