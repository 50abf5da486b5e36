/*
 * fuzz_mask.c - libFuzzer target for exec/mask.h, the streaming masking of
 * secrets in a try's log. The input holds the values and the text: byte 0 is
 * how many values (1-4), then each value as a length byte (0-15) and its
 * bytes, then the text. The text is fed in chunks whose sizes come from the
 * input itself, and what comes out must equal a naive replacement over the
 * whole text (leftmost, longest value first, no overlap).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "exec/mask.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The obvious algorithm, over the whole text at once. */
static char *naive(const char *const *v, const size_t *vl, size_t nv, const char *s, size_t n,
                   size_t *outlen)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    size_t i = 0;
    while (i < n) {
        size_t best = 0;
        for (size_t k = 0; k < nv; k++)
            if (vl[k] >= MASK_MIN_LEN && vl[k] > best && vl[k] <= n - i &&
                memcmp(s + i, v[k], vl[k]) == 0)
                best = vl[k];
        if (best) {
            if (buf_adds(&b, MASK_REPLACEMENT) < 0)
                abort();
            i += best;
        } else {
            if (buf_add(&b, s + i, 1) < 0)
                abort();
            i++;
        }
    }
    return buf_detach(&b, outlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t nv = (size_t)(data[0] % 4) + 1, pos = 1;
    const char *v[4];
    size_t vl[4];
    for (size_t k = 0; k < nv; k++) {
        if (pos >= size)
            return 0;
        size_t l = data[pos++] % 16;
        if (l > size - pos)
            return 0;
        v[k] = (const char *)data + pos;
        vl[k] = l;
        pos += l;
    }
    const char *text = (const char *)data + pos;
    size_t n = size - pos;

    size_t want_len;
    char *want = naive(v, vl, nv, text, n, &want_len);

    struct mask m;
    mask_init(&m, v, vl, nv);
    struct buf got = BUF_INIT(BUF_NO_MAX);
    uint32_t seed = (uint32_t)size * 2654435761u;
    for (size_t i = 0; i < n;) {
        seed = seed * 1103515245u + 12345u;
        size_t chunk = (seed >> 16) % 7; /* 0..6 bytes: every boundary comes up */
        if (chunk > n - i)
            chunk = n - i;
        if (mask_feed(&m, text + i, chunk, &got) < 0)
            abort();
        i += chunk;
    }
    if (mask_flush(&m, &got) < 0)
        abort();
    if (got.len != want_len || memcmp(got.data, want, want_len) != 0)
        abort();
    size_t once_len;
    char *once = mask_string(&m, text, n, &once_len);
    if (once_len != want_len || memcmp(once, want, want_len) != 0)
        abort();
    free(once);
    buf_release(&got);
    mask_release(&m);
    free(want);
    return 0;
}
