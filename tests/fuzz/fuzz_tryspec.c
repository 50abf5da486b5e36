/*
 * fuzz_tryspec.c - libFuzzer target for tryspec_decode(), the reader of the
 * spec a worker takes from ti_queue. Any input either decodes or fails with a
 * "try spec: " message; what decodes is encoded again, and that text decodes
 * to a spec that encodes to the very same text (the round trip is stable).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exec/tryspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tryspec s;
    char *msg = NULL;
    if (tryspec_decode((const char *)data, size, &s, &msg) < 0) {
        if (!msg || strncmp(msg, "try spec: ", 10) != 0 || s.dag || s.env)
            abort(); /* a refusal says why, and hands nothing over */
        free(msg);
        return 0;
    }
    if (msg)
        abort();
    char *once = tryspec_encode(&s);
    if (!once)
        abort(); /* what decodes is a whole spec */
    struct tryspec t;
    if (tryspec_decode(once, strlen(once), &t, &msg) < 0)
        abort();
    char *twice = tryspec_encode(&t);
    if (!twice || strcmp(once, twice) != 0)
        abort();
    if (s.kind != t.kind || s.http.body_len != t.http.body_len ||
        (s.http.body_len && memcmp(s.http.body, t.http.body, s.http.body_len) != 0))
        abort();
    free(twice);
    free(once);
    tryspec_release(&t);
    tryspec_release(&s);
    return 0;
}
