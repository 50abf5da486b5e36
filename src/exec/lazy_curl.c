/*
 * lazy_curl.c - libcurl, opened the first time baram calls it (base/dynlib.h).
 * Defines the libcurl functions baram uses under their own names, so exec/
 * calls libcurl's documented API as if it were linked; only a process that
 * runs an http task or an http wait loads libcurl and its TLS, HTTP/2, LDAP
 * and Kerberos libraries. The variadic setters forward their one argument by
 * the type libcurl itself reads for that option (curl's CURLOPTTYPE_ ranges).
 * Any thread (libcurl's own rules apply).
 */
#define CURL_DISABLE_TYPECHECK /* the type-checking macros would rename the definitions below */
#include <curl/curl.h>
#include <stdarg.h>

#include "base/dynlib.h"

/* X(return type, name, parameters, arguments, value on failure) */
#define LAZY_CURL_FUNCS(X)                                                                         \
    X(CURL *, curl_easy_init, (void), (), NULL)                                                    \
    X(CURLcode, curl_easy_perform, (CURL * e), (e), CURLE_FAILED_INIT)                             \
    X(const char *, curl_easy_strerror, (CURLcode c), (c), "libcurl not loaded")                   \
    X(CURLcode, curl_global_init, (long flags), (flags), CURLE_FAILED_INIT)                        \
    X(CURLMcode, curl_multi_add_handle, (CURLM * m, CURL * e), (m, e), CURLM_INTERNAL_ERROR)       \
    X(CURLMcode, curl_multi_assign, (CURLM * m, curl_socket_t s, void *p), (m, s, p),              \
      CURLM_INTERNAL_ERROR)                                                                        \
    X(CURLMcode, curl_multi_cleanup, (CURLM * m), (m), CURLM_INTERNAL_ERROR)                       \
    X(CURLMsg *, curl_multi_info_read, (CURLM * m, int *left), (m, left), NULL)                    \
    X(CURLM *, curl_multi_init, (void), (), NULL)                                                  \
    X(CURLMcode, curl_multi_remove_handle, (CURLM * m, CURL * e), (m, e), CURLM_INTERNAL_ERROR)    \
    X(CURLMcode, curl_multi_socket_action, (CURLM * m, curl_socket_t s, int ev, int *running),     \
      (m, s, ev, running), CURLM_INTERNAL_ERROR)                                                   \
    X(struct curl_slist *, curl_slist_append, (struct curl_slist * l, const char *s), (l, s),      \
      NULL)                                                                                        \
    X(CURLU *, curl_url, (void), (), NULL)                                                         \
    X(CURLUcode, curl_url_get, (CURLU * u, CURLUPart what, char **part, unsigned int flags),       \
      (u, what, part, flags), CURLUE_OUT_OF_MEMORY)                                                \
    X(CURLUcode, curl_url_set, (CURLU * u, CURLUPart what, const char *part, unsigned int flags),  \
      (u, what, part, flags), CURLUE_OUT_OF_MEMORY)                                                \
    X(const char *, curl_url_strerror, (CURLUcode c), (c), "libcurl not loaded")                   \
    X(curl_version_info_data *, curl_version_info, (CURLversion v), (v), NULL)

/* V(name, parameters, arguments) */
#define LAZY_CURL_VOIDS(V)                                                                         \
    V(curl_easy_cleanup, (CURL * e), (e))                                                          \
    V(curl_free, (void *p), (p))                                                                   \
    V(curl_global_cleanup, (void), ())                                                             \
    V(curl_slist_free_all, (struct curl_slist * l), (l))                                           \
    V(curl_url_cleanup, (CURLU * u), (u))

/* N(name): the variadic ones, written out below */
#define LAZY_CURL_VARIADIC(N) N(curl_easy_setopt) N(curl_multi_setopt) N(curl_easy_getinfo)

DYNLIB_STUBS(BARAM_SONAME_CURL, LAZY_CURL_FUNCS, LAZY_CURL_VOIDS, LAZY_CURL_VARIADIC);

/* The options' value types, as libcurl's own setopt reads them (curl/curl.h: CURLOPTTYPE_*;
 * the multi options use the same ranges). A function pointer travels as one. */
typedef void (*lazy_curl_any_fn)(void);
#define LAZY_CURL_FORWARD(fn, h, option, ap)                                                       \
    ((option) < CURLOPTTYPE_OBJECTPOINT     ? (fn)((h), (option), va_arg((ap), long))              \
     : (option) < CURLOPTTYPE_FUNCTIONPOINT ? (fn)((h), (option), va_arg((ap), void *))            \
     : (option) < CURLOPTTYPE_OFF_T         ? (fn)((h), (option), va_arg((ap), lazy_curl_any_fn))  \
     : (option) < CURLOPTTYPE_BLOB          ? (fn)((h), (option), va_arg((ap), curl_off_t))        \
                                            : (fn)((h), (option), va_arg((ap), void *)))

CURLcode curl_easy_setopt(CURL *curl, CURLoption option, ...)
{
    if (!dynlib_open(&lazy_lib))
        return CURLE_FAILED_INIT;
    CURLcode (*set)(CURL *, CURLoption, ...) = lazy_table[DYNLIB_SYM_curl_easy_setopt];
    va_list ap;
    va_start(ap, option);
    CURLcode rc = LAZY_CURL_FORWARD(set, curl, option, ap);
    va_end(ap);
    return rc;
}

CURLMcode curl_multi_setopt(CURLM *multi, CURLMoption option, ...)
{
    if (!dynlib_open(&lazy_lib))
        return CURLM_INTERNAL_ERROR;
    CURLMcode (*set)(CURLM *, CURLMoption, ...) = lazy_table[DYNLIB_SYM_curl_multi_setopt];
    va_list ap;
    va_start(ap, option);
    CURLMcode rc = LAZY_CURL_FORWARD(set, multi, option, ap);
    va_end(ap);
    return rc;
}

/* Every CURLINFO takes one pointer to where the answer goes. */
CURLcode curl_easy_getinfo(CURL *curl, CURLINFO info, ...)
{
    if (!dynlib_open(&lazy_lib))
        return CURLE_FAILED_INIT;
    CURLcode (*get)(CURL *, CURLINFO, ...) = lazy_table[DYNLIB_SYM_curl_easy_getinfo];
    va_list ap;
    va_start(ap, info);
    CURLcode rc = get(curl, info, va_arg(ap, void *));
    va_end(ap);
    return rc;
}
