/*
 * dynlib.c - a shared library opened on first use (see dynlib.h for why).
 * dlopen with RTLD_NOW | RTLD_LOCAL: every symbol of the library is bound
 * before the first call returns (a missing one is found here, not in the
 * middle of a request), and nothing it exports can interpose on another
 * library's symbols. Any thread; one pthread_once per library.
 */
#include "base/dynlib.h"

#include <dlfcn.h>
#include <stdio.h>

#include "base/log.h"

/* pthread_once takes no argument: the library being opened is passed through this
 * thread-local (pthread_once runs the routine on the calling thread). */
static _Thread_local struct dynlib *dynlib_opening;

static void dynlib_load(void)
{
    struct dynlib *lib = dynlib_opening;
    void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(lib->error, sizeof(lib->error), "cannot load %s: %s", lib->soname,
                 why ? why : "unknown error");
        log_error("shared library missing", "library=%s error=%s", lib->soname, log_q(lib->error));
        return;
    }
    for (size_t i = 0; lib->names[i]; i++) {
        void *sym = dlsym(h, lib->names[i]);
        if (!sym) {
            snprintf(lib->error, sizeof(lib->error), "%s has no symbol %s", lib->soname,
                     lib->names[i]);
            log_error("shared library too old", "library=%s symbol=%s", lib->soname, lib->names[i]);
            return;
        }
        lib->table[i] = sym;
    }
    lib->ok = true;
}

bool dynlib_open(struct dynlib *lib)
{
    dynlib_opening = lib;
    pthread_once(&lib->once, dynlib_load);
    dynlib_opening = NULL;
    return lib->ok;
}

const char *dynlib_error(const struct dynlib *lib)
{
    return lib->error[0] ? lib->error : "not loaded";
}
