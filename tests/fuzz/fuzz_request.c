/*
 * fuzz_request.c - libFuzzer target for the API's request parsing: the
 * routing and decoding of a raw path (api_route_path: every {segment} that
 * comes back must be non-empty, at most API_SEG_MAX bytes, valid UTF-8, free
 * of '/' and NUL, and neither "." nor "..") and the reading of a JSON body
 * (api_body_object with a list of allowed keys: an object of those keys, or
 * a 400 problem). The first byte picks the method and what is fuzzed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fuzz_methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
static const char *const fuzz_allowed[] = {"conf", "logical_date", "paused", NULL};

static void fuzz_check_seg(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > API_SEG_MAX || strchr(s, '/') || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        abort();
    for (size_t i = 0; i < n;) { /* UTF-8, no overlongs beyond what the decoder allows */
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (k == 0 || i + k > n)
            abort();
        for (size_t j = 1; j < k; j++)
            if (((unsigned char)s[i + j] >> 6) != 2)
                abort();
        i += k;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    if (sel & 0x80) {
        struct api_req rq = {.body = text, .body_len = size - 1};
        struct api_resp rs = {0};
        json_t *o = NULL;
        if (api_body_object(&rq, &rs, fuzz_allowed, &o) == 0) {
            if (!json_is_object(o))
                abort();
            const char *k;
            json_t *v;
            json_object_foreach(o, k, v)
            {
                int ok = 0;
                for (size_t i = 0; fuzz_allowed[i]; i++)
                    ok |= strcmp(k, fuzz_allowed[i]) == 0;
                if (!ok)
                    abort();
            }
            json_decref(o);
        } else if (rs.status != 400) {
            abort();
        }
        json_decref(rs.body);
        free(rs.raw);
    } else {
        char *seg[API_MAX_SEGS];
        size_t n = 0;
        int st = api_route_path(fuzz_methods[sel % 6], text, seg, &n);
        if (st == 0) {
            for (size_t i = 0; i < n; i++) {
                fuzz_check_seg(seg[i]);
                free(seg[i]);
            }
        } else if (st != 400 && st != 404 && st != 405) {
            abort();
        }
    }
    free(text);
    return 0;
}
