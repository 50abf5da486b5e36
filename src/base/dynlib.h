/*
 * dynlib.h - a shared library opened on first use.
 *
 * baram is one binary, but most commands never send an HTTP request, serve
 * the API or check a token. Linking libcurl, libmicrohttpd and libjwt made
 * every command load and relocate them and the 30 libraries they pull in
 * (TLS, Kerberos, LDAP, ...): most of the start-up time and of an idle
 * daemon's memory. Each is instead opened by its own stub file (exec/lazy_curl.c,
 * api/lazy_mhd.c, api/lazy_jwt.c), which defines the library's functions that
 * baram calls under their own names and forwards them through a table filled
 * by dynlib_open() the first time one of them is called. Call sites keep the
 * library's documented API unchanged.
 *
 * A library that cannot be opened (or lacks a symbol) is reported once as a
 * log line naming it and dlerror()'s text; the stubs then return the
 * library's own failure values (NULL, an error code), so the caller's usual
 * error path runs. The handle is never closed: it lives as long as the process.
 * Any thread; the table is filled once under pthread_once.
 */
#ifndef BARAM_BASE_DYNLIB_H
#define BARAM_BASE_DYNLIB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct dynlib {
    const char *soname;       /* e.g. "libcurl.so.4" (the build's SONAME, see CMakeLists.txt) */
    const char *const *names; /* the symbols to resolve, NULL-terminated */
    void **table;             /* filled with the symbols in the order of names */
    pthread_once_t once;
    bool ok;
    char error[256];
};

#define DYNLIB_INIT(soname, names, table)                                                          \
    {                                                                                              \
        (soname), (names), (void **)(table), PTHREAD_ONCE_INIT, false, ""                          \
    }

/* Opens lib and resolves every name on the first call (later calls return at once).
 * Returns true when every symbol is in lib->table, false otherwise (logged once). */
bool dynlib_open(struct dynlib *lib);

/* After a failed dynlib_open: what went wrong ("cannot load libcurl.so.4: ..."). */
const char *dynlib_error(const struct dynlib *lib);

/*
 * The stub files (one per library, each its own translation unit) list the library's
 * functions as X-macros and expand DYNLIB_STUBS once:
 *   FUNCS(X): X(return type, name, (parameters), (arguments), value returned on failure)
 *   VOIDS(V): V(name, (parameters), (arguments)) for functions returning nothing
 *   OTHERS(N): N(name) for symbols the file calls through lazy_table[DYNLIB_SYM_name] itself
 *             (variadic functions, whose arguments only the file knows how to forward)
 * This defines `lazy_lib` (the struct dynlib), `lazy_table` and a stub for each of FUNCS
 * and VOIDS that opens the library on first use and forwards the call.
 */
#define DYNLIB_STUBS(soname, FUNCS, VOIDS, OTHERS)                                                 \
    enum { FUNCS(DYNLIB_SYM_F) VOIDS(DYNLIB_SYM_V) OTHERS(DYNLIB_SYM_N) DYNLIB_NSYMS };            \
    static const char *const lazy_names[] = {FUNCS(DYNLIB_STR_F) VOIDS(DYNLIB_STR_V)               \
                                                 OTHERS(DYNLIB_STR_N) NULL};                       \
    static void *lazy_table[DYNLIB_NSYMS];                                                         \
    static struct dynlib lazy_lib = DYNLIB_INIT(soname, lazy_names, lazy_table);                   \
    FUNCS(DYNLIB_DEF_F) VOIDS(DYNLIB_DEF_V) enum { DYNLIB_STUBS_END }

#define DYNLIB_SYM_F(ret, name, params, args, fail) DYNLIB_SYM_##name,
#define DYNLIB_SYM_V(name, params, args)            DYNLIB_SYM_##name,
#define DYNLIB_SYM_N(name)                          DYNLIB_SYM_##name,
#define DYNLIB_STR_F(ret, name, params, args, fail) #name,
#define DYNLIB_STR_V(name, params, args)            #name,
#define DYNLIB_STR_N(name)                          #name,
#define DYNLIB_DEF_F(ret, name, params, args, fail)                                                \
    ret name params                                                                                \
    {                                                                                              \
        if (!dynlib_open(&lazy_lib))                                                               \
            return fail;                                                                           \
        return ((ret(*) params)lazy_table[DYNLIB_SYM_##name])args;                                 \
    }
#define DYNLIB_DEF_V(name, params, args)                                                           \
    void name params                                                                               \
    {                                                                                              \
        if (dynlib_open(&lazy_lib))                                                                \
            ((void(*) params)lazy_table[DYNLIB_SYM_##name]) args;                                  \
    }

#endif
