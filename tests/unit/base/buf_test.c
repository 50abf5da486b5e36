/*
 * buf_test.c - struct buf: growth, the maximum size, detach.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"

static void grows_and_stays_terminated(void **state)
{
    struct buf b;
    buf_init(&b, BUF_NO_MAX);
    assert_string_equal(b.data, "");
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_addf(&b, "%d,", i % 10), 0);
    assert_int_equal(b.len, 2000);
    assert_int_equal(b.data[b.len], 0);
    assert_memory_equal(b.data, "0,1,2,", 6);
    buf_release(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
}

static void refuses_to_pass_max_and_appends_nothing(void **state)
{
    struct buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_adds(&b, "12345"), 0);
    assert_int_equal(buf_adds(&b, "6789"), ERR_TOO_BIG);
    assert_string_equal(b.data, "12345");
    assert_int_equal(buf_adds(&b, "678"), 0);
    assert_string_equal(b.data, "12345678");
    assert_int_equal(buf_addc(&b, 'x'), ERR_TOO_BIG);
    assert_int_equal(buf_addf(&b, "%s", "y"), ERR_TOO_BIG);
    buf_release(&b);
}

static void detach_hands_over_and_resets(void **state)
{
    struct buf b = BUF_INIT(100);
    size_t len;
    char *p = buf_detach(&b, &len);
    assert_string_equal(p, "");
    free(p);
    assert_int_equal(buf_adds(&b, "abc"), 0);
    p = buf_detach(&b, &len);
    assert_int_equal(len, 3);
    assert_string_equal(p, "abc");
    assert_int_equal(b.len, 0);
    free(p);
    buf_truncate(&b, 0);
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grows_and_stays_terminated),
        cmocka_unit_test(refuses_to_pass_max_and_appends_nothing),
        cmocka_unit_test(detach_hands_over_and_resets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
