/*
 * lazy_jwt.c - libjwt, opened the first time baram signs or checks a token
 * (base/dynlib.h): a command that never does loads neither it nor OpenSSL's
 * libcrypto. Defines the functions auth.c uses under their own names. On a
 * failed load every call fails the way libjwt reports errors (a non-zero
 * int, NULL, JWT_ALG_INVAL), so a token is refused, never accepted. Any thread.
 */
#include <errno.h>
#include <jwt.h>

#include "base/dynlib.h"

/* X(return type, name, parameters, arguments, value on failure) */
#define LAZY_JWT_FUNCS(X)                                                                          \
    X(int, jwt_add_grant, (jwt_t * j, const char *grant, const char *val), (j, grant, val),        \
      ELIBACC)                                                                                     \
    X(int, jwt_add_grant_int, (jwt_t * j, const char *grant, long val), (j, grant, val), ELIBACC)  \
    X(const char *, jwt_alg_str, (jwt_alg_t alg), (alg), NULL)                                     \
    X(int, jwt_decode, (jwt_t * *j, const char *token, const unsigned char *key, int len),         \
      (j, token, key, len), ELIBACC)                                                               \
    X(char *, jwt_encode_str, (jwt_t * j), (j), NULL)                                              \
    X(jwt_alg_t, jwt_get_alg, (jwt_t * j), (j), JWT_ALG_INVAL)                                     \
    X(int, jwt_new, (jwt_t * *j), (j), ELIBACC)                                                    \
    X(int, jwt_set_alg, (jwt_t * j, jwt_alg_t alg, const unsigned char *key, int len),             \
      (j, alg, key, len), ELIBACC)

/* V(name, parameters, arguments) */
#define LAZY_JWT_VOIDS(V) V(jwt_free, (jwt_t * j), (j))
#define LAZY_JWT_OTHERS(N)

DYNLIB_STUBS(BARAM_SONAME_JWT, LAZY_JWT_FUNCS, LAZY_JWT_VOIDS, LAZY_JWT_OTHERS);
