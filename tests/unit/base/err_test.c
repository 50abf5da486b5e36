/*
 * err_test.c - struct err (base/err.c): err_set fills the caller's struct
 * and returns the code, a NULL struct is allowed, long messages are cut,
 * and err_msg falls back to the code's text.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <string.h>

#include "base/err.h"

static void set_fills_and_returns_the_code(void **state)
{
    (void)state;
    struct err e = {0};
    assert_string_equal(err_msg(&e), "");
    assert_int_equal(err_set(&e, ERR_DB, "cannot open '%s'", "x.db"), ERR_DB);
    assert_int_equal(e.code, ERR_DB);
    assert_string_equal(err_msg(&e), "cannot open 'x.db'");
    assert_int_equal(err_set(NULL, -EINVAL, "nobody reads %d", 1), -EINVAL);
}

static void msg_falls_back_to_the_code_and_long_text_is_cut(void **state)
{
    (void)state;
    struct err e = {.code = ERR_DB};
    assert_string_equal(err_msg(&e), "database error");
    assert_string_equal(err_msg(NULL), "");
    char big[ERR_MSG_MAX * 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    err_set(&e, -E2BIG, "%s", big);
    assert_int_equal(strlen(e.msg), ERR_MSG_MAX - 1);
}

/* Two failures kept at once keep their own words: the storage is the caller's. */
static void two_failures_keep_their_own_words(void **state)
{
    (void)state;
    struct err a = {0}, b = {0};
    err_set(&a, -EINVAL, "first");
    err_set(&b, -ENOENT, "second");
    assert_string_equal(err_msg(&a), "first");
    assert_string_equal(err_msg(&b), "second");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(set_fills_and_returns_the_code),
        cmocka_unit_test(msg_falls_back_to_the_code_and_long_text_is_cut),
        cmocka_unit_test(two_failures_keep_their_own_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
