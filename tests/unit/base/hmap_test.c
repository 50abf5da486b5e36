/*
 * hmap_test.c - struct hmap: lookups across growth, replacement, misses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hmap.h"

static void finds_every_key_after_growth(void **state)
{
    enum { N = 100000 };
    char (*names)[16] = calloc(N, 16);
    struct hmap h;
    hmap_init(&h);
    for (uint32_t i = 0; i < N; i++) {
        snprintf(names[i], 16, "task_%u", i);
        assert_true(hmap_put(&h, names[i], strlen(names[i]), i));
    }
    assert_int_equal(h.count, N);
    for (uint32_t i = 0; i < N; i++) {
        uint32_t v;
        assert_true(hmap_get(&h, names[i], strlen(names[i]), &v));
        assert_int_equal(v, i);
    }
    uint32_t v;
    assert_false(hmap_get(&h, "task_", 5, &v));
    assert_false(hmap_get(&h, "nope", 4, &v));
    hmap_release(&h);
    assert_int_equal(h.count, 0);
    free(names);
}

static void put_replaces_existing_value(void **state)
{
    struct hmap h;
    hmap_init(&h);
    uint32_t v;
    assert_false(hmap_get(&h, "a", 1, &v));
    assert_true(hmap_put(&h, "a", 1, 1));
    assert_false(hmap_put(&h, "a", 1, 2));
    assert_true(hmap_get(&h, "a", 1, &v));
    assert_int_equal(v, 2);
    assert_int_equal(h.count, 1);
    hmap_release(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_every_key_after_growth),
        cmocka_unit_test(put_replaces_existing_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
