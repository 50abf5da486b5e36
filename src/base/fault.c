/*
 * fault.c - the test-build fault table; see fault.h. The table is read once
 * from BARAM_FAULT on first use (a global written once, read by any thread).
 */
#include "base/fault.h"

#ifdef BARAM_FAULTS
#include <stdlib.h>
#include <string.h>

static const char *fault_names[] = {
#define X(name) #name,
    FAULT_TABLE(X)
#undef X
};

bool fault__hit(enum fault_point fp)
{
    const char *spec = getenv("BARAM_FAULT");
    if (!spec || !*spec)
        return false;
    const char *name = fault_names[fp];
    size_t n = strlen(name);
    for (const char *p = spec; (p = strstr(p, name)) != NULL; p += n) {
        bool start = p == spec || p[-1] == ',';
        bool end = p[n] == 0 || p[n] == ',';
        if (start && end)
            return true;
    }
    return false;
}
#else
typedef int fault__unused;
#endif
