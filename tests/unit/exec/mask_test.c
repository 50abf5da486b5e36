/*
 * mask_test.c - secrets masked in a stream (exec/mask.h) under hostile logs:
 * a value split across writes at every point, repeated, overlapping itself,
 * at the end of the stream, one value the prefix of another, binary bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "exec/mask.h"

/* Feeds text in chunks of `chunk` bytes (0: all at once) and returns what came out. */
static char *feed(const char *const *v, size_t nv, const char *text, size_t n, size_t chunk,
                  size_t *outlen)
{
    size_t lens[8];
    for (size_t i = 0; i < nv; i++)
        lens[i] = strlen(v[i]);
    struct mask m;
    mask_init(&m, v, lens, nv);
    struct buf out = BUF_INIT(BUF_NO_MAX);
    for (size_t i = 0; i < n;) {
        size_t c = chunk && chunk < n - i ? chunk : n - i;
        assert_int_equal(mask_feed(&m, text + i, c, &out), 0);
        i += c;
    }
    assert_int_equal(mask_flush(&m, &out), 0);
    mask_release(&m);
    return buf_detach(&out, outlen);
}

/* Every chunk size from 1 to the text's length gives `want`. */
static void check(const char *const *v, size_t nv, const char *text, const char *want)
{
    size_t n = strlen(text);
    for (size_t chunk = 0; chunk <= n; chunk++) {
        size_t len;
        char *got = feed(v, nv, text, n, chunk, &len);
        if (len != strlen(want) || memcmp(got, want, len) != 0)
            fail_msg("chunk %zu: got '%.*s', want '%s'", chunk, (int)len, got, want);
        free(got);
    }
}

static void masks_every_occurrence(void **state)
{
    const char *v[] = {"hunter2"};
    check(v, 1, "pw=hunter2 again hunter2hunter2\n", "pw=*** again ******\n");
    check(v, 1, "hunter2", "***");
    check(v, 1, "hunter", "hunter"); /* a prefix at the end is written as it is */
    check(v, 1, "hunterhunter2hunte", "hunter***hunte");
}

static void self_overlapping_value(void **state)
{
    const char *v[] = {"aab"};
    check(v, 1, "aaab aab aaaab", "a*** *** aa***");
    const char *w[] = {"abab"};
    check(w, 1, "abababab ababab", "****** ***ab");
}

static void longest_value_wins(void **state)
{
    const char *v[] = {"abc", "abcdef", "cde"};
    check(v, 3, "abcdef abcde abcxcdef", "*** ***de ***x***f");
}

static void short_values_are_not_masked(void **state)
{
    const char *v[] = {"a", "xy", ""};
    check(v, 3, "a xy axy", "a xy axy");
}

static void binary_bytes(void **state)
{
    const char val[] = {'\x00', '\xff', '\x00', '\x80'};
    const char *v[] = {val};
    size_t lens[] = {sizeof(val)};
    const char text[] = {'\x00', '\x00', '\xff', '\x00', '\x80', '\xff', '\x00', '\xff', '\x00'};
    struct mask m;
    mask_init(&m, v, lens, 1);
    for (size_t chunk = 1; chunk <= sizeof(text); chunk++) {
        struct buf out = BUF_INIT(BUF_NO_MAX);
        for (size_t i = 0; i < sizeof(text); i += chunk)
            assert_int_equal(
                mask_feed(&m, text + i, chunk < sizeof(text) - i ? chunk : sizeof(text) - i, &out),
                0);
        assert_int_equal(mask_flush(&m, &out), 0);
        const char want[] = {'\x00', '*', '*', '*', '\xff', '\x00', '\xff', '\x00'};
        assert_int_equal(out.len, sizeof(want));
        assert_memory_equal(out.data, want, sizeof(want));
        buf_release(&out);
    }
    mask_release(&m);
}

static void large_stream_at_buffer_edges(void **state)
{
    /* A 64 KiB log with the value at every offset modulo 4096 across 4 KiB writes. */
    const char *v[] = {"s3cr3t-v4lu3"};
    size_t vl = strlen(v[0]);
    struct buf text = BUF_INIT(BUF_NO_MAX), want = BUF_INIT(BUF_NO_MAX);
    for (size_t i = 0; text.len < 65536; i++) {
        size_t pad = i % 13;
        for (size_t k = 0; k < pad; k++) {
            assert_int_equal(buf_addc(&text, '.'), 0);
            assert_int_equal(buf_addc(&want, '.'), 0);
        }
        assert_int_equal(buf_add(&text, v[0], vl), 0);
        assert_int_equal(buf_adds(&want, "***"), 0);
    }
    size_t len;
    char *got = feed(v, 1, text.data, text.len, 4096, &len);
    assert_int_equal(len, want.len);
    assert_memory_equal(got, want.data, len);
    free(got);
    got = feed(v, 1, text.data, text.len, 4095, &len);
    assert_int_equal(len, want.len);
    assert_memory_equal(got, want.data, len);
    free(got);
    buf_release(&text);
    buf_release(&want);
}

static void no_values_copies(void **state)
{
    struct mask m;
    mask_init(&m, NULL, NULL, 0);
    assert_true(mask_empty(&m));
    struct buf out = BUF_INIT(BUF_NO_MAX);
    assert_int_equal(mask_feed(&m, "abc", 3, &out), 0);
    assert_int_equal(mask_flush(&m, &out), 0);
    assert_string_equal(out.data, "abc");
    buf_release(&out);
    mask_release(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(masks_every_occurrence), cmocka_unit_test(self_overlapping_value),
        cmocka_unit_test(longest_value_wins),     cmocka_unit_test(short_values_are_not_masked),
        cmocka_unit_test(binary_bytes),           cmocka_unit_test(large_stream_at_buffer_edges),
        cmocka_unit_test(no_values_copies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
