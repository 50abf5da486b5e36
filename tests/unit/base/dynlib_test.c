/*
 * dynlib_test.c - a shared library opened on first use: symbols resolved in
 * order, a missing library or symbol reported (not aborted on) with its name,
 * and the outcome kept for every later call, from any thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "base/dynlib.h"
#include "base/log.h"

static const char *const libm_names[] = {"cos", "sqrt", NULL};

static void resolves_every_symbol_once(void **state)
{
    void *table[2] = {NULL, NULL};
    struct dynlib lib = DYNLIB_INIT("libm.so.6", libm_names, table);
    assert_true(dynlib_open(&lib));
    double (*sqrt_fn)(double) = table[1];
    assert_non_null(table[0]);
    assert_true(sqrt_fn(16.0) == 4.0);
    void *first = table[0];
    assert_true(dynlib_open(&lib));
    assert_ptr_equal(table[0], first);
}

static void a_missing_library_is_an_error_with_its_name(void **state)
{
    void *table[2] = {NULL, NULL};
    struct dynlib lib = DYNLIB_INIT("libbaram-absent.so.9", libm_names, table);
    assert_false(dynlib_open(&lib));
    assert_non_null(strstr(dynlib_error(&lib), "cannot load libbaram-absent.so.9"));
    assert_null(table[0]);
    assert_false(dynlib_open(&lib)); /* the outcome is kept: not retried on every call */
}

static void a_missing_symbol_is_an_error_with_its_name(void **state)
{
    static const char *const names[] = {"cos", "baram_no_such_symbol", NULL};
    void *table[2] = {NULL, NULL};
    struct dynlib lib = DYNLIB_INIT("libm.so.6", names, table);
    assert_false(dynlib_open(&lib));
    assert_string_equal(dynlib_error(&lib), "libm.so.6 has no symbol baram_no_such_symbol");
}

static void *open_from_thread(void *arg)
{
    return dynlib_open(arg) ? arg : NULL;
}

static void threads_share_one_opening(void **state)
{
    void *table[2] = {NULL, NULL};
    struct dynlib lib = DYNLIB_INIT("libm.so.6", libm_names, table);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, open_from_thread, &lib), 0);
    for (int i = 0; i < 4; i++) {
        void *ret;
        assert_int_equal(pthread_join(t[i], &ret), 0);
        assert_ptr_equal(ret, &lib);
    }
    assert_non_null(table[1]);
}

int main(void)
{
    log_set_level(LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resolves_every_symbol_once),
        cmocka_unit_test(a_missing_library_is_an_error_with_its_name),
        cmocka_unit_test(a_missing_symbol_is_an_error_with_its_name),
        cmocka_unit_test(threads_share_one_opening),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
