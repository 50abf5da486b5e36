/*
 * fuzz_jwt.c - libFuzzer target for auth_verify() (src/api/auth.c). The
 * input is a bearer token. Two verifiers: one with the HS256 secret alone,
 * one that also trusts an RSA public key (RS256). The verifier must never
 * crash, and must never accept a token not signed by the test keys: every
 * accepted token is checked again independently (HS256: HMAC-SHA256 over
 * header.payload recomputed with libsodium and compared with the signature;
 * RS256: only the verifier with the public key may accept it, and libjwt
 * must confirm it with that key), else abort(). Corpus:
 * tests/fuzz/corpus/jwt/ (valid tokens expiring in 2100, and broken ones).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jwt.h>
#include <sodium.h>

#include "api/auth.h"
#include "base/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The key of secret.key: bytes 0, 1, ..., 31 (corpus tokens are signed with it). */
#define FUZZ_KEY_LEN 32

static const char rsa_public[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAp/aXj7Gx9O1DbHYVTxKD\n"
    "KDw3lwLlDxaDep3S0W3pAjxevi66fDVP+/fQZtD76b7BV34xm7Venw+Cjpg4Ql29\n"
    "nLwqRVpw7LxyVYgv+LC5a0hvXZirqBXeOMySZMk/Pl8l/M0RqlMLaPntf66WxJz8\n"
    "b7o89sFPgjpiwcKW+1zsFIU5Rbvld7+vCajU4u49zvOwos47jsVm0A1xK5sSbOU5\n"
    "arcBq7iUttTR4oJbTNouVRIrrKPIH5naiK9XWzL4iDKTvjFZwN87kg0Ph4ELWI3X\n"
    "nb0VfiW9Bzf4SURBMw3NeD4U/+D95DtlgOA2Fozb7NmI77TYuzl1aVXUq4t1dc1t\n"
    "0wIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

static struct auth *hs_only, *with_pub;
static unsigned char key[FUZZ_KEY_LEN];
static char home[64], secret_path[96], pub_path[96];

static void cleanup(void)
{
    auth_close(hs_only);
    auth_close(with_pub);
    unlink(secret_path);
    unlink(pub_path);
    rmdir(home);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        abort();
}

static void setup(void)
{
    if (sodium_init() < 0)
        abort();
    snprintf(home, sizeof home, "/tmp/baram-fuzz-jwt-XXXXXX");
    if (!mkdtemp(home))
        abort();
    for (int i = 0; i < FUZZ_KEY_LEN; i++)
        key[i] = (unsigned char)i;
    char hex[FUZZ_KEY_LEN * 2 + 2];
    sodium_bin2hex(hex, sizeof hex, key, sizeof key);
    snprintf(secret_path, sizeof secret_path, "%s/secret.key", home);
    snprintf(pub_path, sizeof pub_path, "%s/public.pem", home);
    write_file(secret_path, hex);
    write_file(pub_path, rsa_public);
    struct auth_opts o = {.home = home, .issuer = "baram", .audience = "baram"};
    struct err err = {0};
    if (auth_open(&o, &hs_only, &err) != 0)
        abort();
    o.public_key = pub_path;
    if (auth_open(&o, &with_pub, &err) != 0)
        abort();
    atexit(cleanup);
}

/* Whether the token's third part is the HMAC-SHA256 of the first two under key. */
static bool hmac_ok(const char *t)
{
    const char *d2 = strrchr(t, '.');
    if (!d2)
        return false;
    unsigned char mac[crypto_auth_hmacsha256_BYTES], sig[64];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, sizeof key);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)t, (size_t)(d2 - t));
    crypto_auth_hmacsha256_final(&st, mac);
    size_t len = 0;
    const char *end = NULL;
    if (sodium_base642bin(sig, sizeof sig, d2 + 1, strlen(d2 + 1), NULL, &len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        *end || len != sizeof mac)
        return false;
    return sodium_memcmp(mac, sig, sizeof mac) == 0;
}

/* Whether libjwt, asked with the public key, finds an RS256 token signed by its pair. */
static bool rs256_ok(const char *t)
{
    jwt_t *jwt = NULL;
    bool ok =
        jwt_decode(&jwt, t, (const unsigned char *)rsa_public, (int)strlen(rsa_public)) == 0 &&
        jwt_get_alg(jwt) == JWT_ALG_RS256;
    jwt_free(jwt);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!hs_only)
        setup();
    if (size > 16384)
        size = 16384;
    char *t = malloc(size + 1);
    if (!t)
        return 0;
    memcpy(t, data, size);
    t[size] = 0;
    struct auth_user u;
    const char *why = NULL;
    int r = auth_verify(hs_only, t, &u, &why);
    if (r == 0) {
        if (!hmac_ok(t) || u.role < AUTH_VIEWER || u.role > AUTH_ADMIN || !auth_name_ok(u.name))
            abort();
    } else if (r != -EACCES || !why || !*why || u.role != AUTH_NONE) {
        abort();
    }
    why = NULL;
    r = auth_verify(with_pub, t, &u, &why);
    if (r == 0) {
        if (!hmac_ok(t) && !rs256_ok(t))
            abort();
        if (u.role < AUTH_VIEWER || u.role > AUTH_ADMIN || !auth_name_ok(u.name))
            abort();
    } else if (r != -EACCES || !why || !*why) {
        abort();
    }
    free(t);
    return 0;
}
