/*
 * fuzz_config.c - libFuzzer target for home_parse_config(), the reader of a
 * home's baram.yaml (SPEC section 4: dags, db, listen, parallelism, pools,
 * auth, api, log_level). Any input either applies or yields diagnostics;
 * whatever it applied stays within the documented ranges, and nothing leaks
 * or crashes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/diag.h"
#include "cli/home.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct home h;
    home_init(&h, "/nonexistent-fuzz-home");
    struct diag d;
    diag_init(&d);
    (void)!home_parse_config(&h, (const char *)data, size, "baram.yaml", &d);
    if (h.parallelism < 1 || h.parallelism > HOME_PARALLELISM_MAX)
        abort();
    if (h.api.max_rps < 0 || h.api.max_rps > HOME_API_MAX_RPS_MAX)
        abort();
    if (h.api.threads < 1 || h.api.threads > HOME_API_THREADS_MAX)
        abort();
    for (size_t i = 0; i < h.npools; i++)
        if (!h.pools[i].name || h.pools[i].slots < 1)
            abort();
    if (!h.listen || !h.dags || !h.db)
        abort();
    diag_release(&d);
    home_release(&h);
    return 0;
}
