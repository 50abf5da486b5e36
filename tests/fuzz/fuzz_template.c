/*
 * fuzz_template.c - libFuzzer target for template_compile() and
 * template_expand(). Input: one mode byte (RAW, SHELL, URL), then the
 * template, then optionally a NUL byte and the value every name expands to
 * (the name "missing" is unknown). Checks that compile either fails with an
 * offset inside the source or yields refs whose offsets point at "{{", and
 * that expansion never crosses the buffer's maximum.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "dag/template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_value {
    const char *v;
    size_t n;
};

static int fuzz_lookup(void *ud, const char *name, const char **val, size_t *vlen)
{
    const struct fuzz_value *fv = ud;
    if (strcmp(name, "missing") == 0)
        return -ENOENT;
    *val = fv->v;
    *vlen = fv->n;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum template_escape esc = (enum template_escape)(data[0] % 3);
    const char *src = (const char *)data + 1;
    size_t len = size - 1;
    struct fuzz_value fv = {"", 0};
    const char *nul = memchr(src, 0, len);
    if (nul) {
        fv.v = nul + 1;
        fv.n = len - (size_t)(nul + 1 - src);
        len = (size_t)(nul - src);
    }
    struct template *t = NULL;
    size_t off = 0;
    struct err e = {0};
    if (template_compile(src, len, esc, &t, &off, &e) != 0) {
        if (t || e.code != -EINVAL || !e.msg[0] || off > len)
            abort();
        return 0;
    }
    if (strlen(template_source(t)) != len)
        abort();
    for (size_t i = 0; i < template_nrefs(t); i++) {
        size_t at = 0;
        const char *name = template_ref(t, i, &at);
        if (!name || !*name || at + 1 >= len || src[at] != '{' || src[at + 1] != '{')
            abort();
    }
    struct buf b = BUF_INIT(1 << 20);
    const char *missing = NULL;
    int r = template_expand(t, fuzz_lookup, &fv, &b, &missing);
    if (r == -ENOENT && strcmp(missing, "missing") != 0)
        abort();
    if (r != 0 && b.len != 0)
        abort();
    if (template_is_literal(t) && r == 0 && (b.len != len || memcmp(b.data, src, len) != 0))
        abort();
    if (b.len > b.max)
        abort();
    buf_release(&b);
    template_free(t);
    return 0;
}
