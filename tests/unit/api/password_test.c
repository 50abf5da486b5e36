/*
 * password_test.c - the password rule (src/api/password.c): the shortest
 * password taken and refused, characters counted as UTF-8 code points, the
 * byte limit, and messages that never hold the password.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <string.h>

#include "api/password.h"

static void eight_characters_are_enough(void **state)
{
    (void)state;
    assert_null(password_problem("12345678"));
    assert_null(password_problem("correct horse battery staple"));
    const char *p = password_problem("1234567");
    assert_non_null(p);
    assert_string_equal(p, "the password is shorter than 8 characters");
    assert_non_null(password_problem("a"));
    assert_string_equal(password_problem(""), "the password is empty");
    assert_string_equal(password_problem(NULL), "the password is empty");
}

static void characters_not_bytes(void **state)
{
    (void)state;
    /* 8 characters in 10 bytes; 7 characters in 14 bytes */
    assert_null(password_problem("p\xc3\xa4ssw\xc3\xb6rd"));
    assert_non_null(password_problem("\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4"));
}

static void at_most_max_bytes(void **state)
{
    (void)state;
    char pw[PASSWORD_MAX_BYTES + 2];
    memset(pw, 'x', PASSWORD_MAX_BYTES);
    pw[PASSWORD_MAX_BYTES] = 0;
    assert_null(password_problem(pw));
    pw[PASSWORD_MAX_BYTES] = 'x';
    pw[PASSWORD_MAX_BYTES + 1] = 0;
    const char *p = password_problem(pw);
    assert_non_null(p);
    assert_string_equal(p, "the password is longer than 1024 bytes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(eight_characters_are_enough),
        cmocka_unit_test(characters_not_bytes),
        cmocka_unit_test(at_most_max_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
