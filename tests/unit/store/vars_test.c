/*
 * vars_test.c - variables and secrets in the store (store/vars.h): writes,
 * reads, lists and deletes on both backends; a secret kept only sealed, under
 * a fresh nonce per write, opened with the key it was sealed with and refused
 * with a message naming it under another; the key read from HOME/secret.key
 * or BARAM_SECRET_KEY_FILE; the checks of keys and values.
 *
 * Built once, run twice (tests/unit/pgtmp.h): SQLite, then PostgreSQL.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "store/store.h"
#include "store/vars.h"

#include "../pgtmp.h"

static int setup(void **state)
{
    (void)state;
    testdb_reset("vars");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_drop();
    return 0;
}

static struct store *open_store(void)
{
    struct store *s = NULL;
    struct err e = {0};
    if (store_open(testdb_url("v"), &s, &e) < 0)
        fail_msg("store_open: %s", err_msg(&e));
    return s;
}

static void write_key(const char *path, const char *hex)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", hex);
    fclose(f);
}

static void put_get_list_delete(void **state)
{
    struct store *s = open_store();
    struct err e = {0};
    unsigned char key[VARS_KEYBYTES] = {1, 2, 3};
    assert_int_equal(vars_write(s, key, "b.plain", "v\xc3\xa9", 3, false, "cli", &e), 0);
    assert_int_equal(vars_write(s, key, "a.secret", "hunter2", 7, true, "ann", &e), 0);
    assert_int_equal(vars_write(s, key, "b.plain", "v2", 2, false, "bob", &e), 0); /* replaces */
    struct var_rec *v;
    size_t n;
    assert_int_equal(store_list_vars(s, &v, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].key, "a.secret"); /* by key */
    assert_true(v[0].secret);
    assert_null(v[0].value);
    assert_non_null(v[0].ciphertext);
    assert_null(strstr(v[0].ciphertext, "hunter2"));
    assert_string_equal(v[0].updated_by, "ann");
    assert_string_equal(v[1].value, "v2");
    assert_false(v[1].secret);
    assert_string_equal(v[1].updated_by, "bob");
    assert_true(v[1].updated_at_ms > 0);
    char *plain = NULL;
    assert_int_equal(vars_open(key, &v[0], &plain, &e), 0);
    assert_string_equal(plain, "hunter2");
    free(plain);
    vars_free(v, n);

    struct var_rec one;
    assert_int_equal(store_get_var(s, "nope", &one, &e), -ENOENT);
    assert_int_equal(store_get_var(s, "a.secret", &one, &e), 0);
    /* A fresh nonce per write: the same value sealed again reads differently. */
    assert_int_equal(vars_write(s, key, "a.secret", "hunter2", 7, true, "ann", &e), 0);
    struct var_rec two;
    assert_int_equal(store_get_var(s, "a.secret", &two, &e), 0);
    assert_string_not_equal(one.nonce, two.nonce);
    assert_string_not_equal(one.ciphertext, two.ciphertext);
    /* Sealed with another key: refused, the key named. */
    unsigned char other[VARS_KEYBYTES] = {9};
    assert_int_equal(vars_open(other, &two, &plain, &e), -EBADMSG);
    assert_null(plain);
    assert_non_null(strstr(err_msg(&e), "'a.secret'"));
    /* Damaged in the store: refused likewise. */
    two.ciphertext[0] = 'z';
    assert_int_equal(vars_open(key, &two, &plain, &e), -EBADMSG);
    assert_non_null(strstr(err_msg(&e), "'a.secret'"));
    var_rec_release(&one);
    var_rec_release(&two);

    assert_int_equal(store_delete_var(s, "b.plain", &e), 0);
    assert_int_equal(store_delete_var(s, "b.plain", &e), -ENOENT);
    assert_int_equal(store_list_vars(s, &v, &n, &e), 0);
    assert_int_equal(n, 1);
    vars_free(v, n);
    store_close(s);
}

static void keys_and_values_are_checked(void **state)
{
    struct store *s = open_store();
    struct err e = {0};
    unsigned char key[VARS_KEYBYTES] = {0};
    char big[VAR_KEY_MAX + 2];
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = 0;
    const char *bad_keys[] = {"", "a b", "a/b", "\xc3\xa9", big, "a;b"};
    for (size_t i = 0; i < sizeof bad_keys / sizeof *bad_keys; i++) {
        assert_false(var_key_ok(bad_keys[i]));
        assert_int_equal(vars_write(s, key, bad_keys[i], "v", 1, false, NULL, &e), -EINVAL);
        assert_non_null(strstr(err_msg(&e), "bad key"));
    }
    big[VAR_KEY_MAX] = 0;
    assert_true(var_key_ok(big));
    assert_true(var_key_ok("A-z_0.9"));
    static char huge[VAR_VALUE_MAX + 1];
    memset(huge, 'x', sizeof huge);
    assert_int_equal(vars_write(s, key, "k", huge, sizeof huge, false, NULL, &e), -EINVAL);
    assert_non_null(strstr(err_msg(&e), "64 KiB"));
    assert_int_equal(vars_write(s, key, "k", huge, VAR_VALUE_MAX, true, NULL, &e), 0);
    assert_int_equal(vars_write(s, key, "k", "a\0b", 3, false, NULL, &e), -EINVAL);
    assert_int_equal(vars_write(s, key, "k", "\xff", 1, false, NULL, &e), -EINVAL);
    assert_int_equal(vars_write(s, key, "k", "\xed\xa0\x80", 3, false, NULL, &e), -EINVAL);
    assert_int_equal(vars_write(s, key, "k", "\xc0\xaf", 2, false, NULL, &e), -EINVAL);
    store_close(s);
}

static void the_key_comes_from_the_home_or_the_env(void **state)
{
    char dir[] = "/tmp/baram-vars-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[PATH_MAX], other[PATH_MAX];
    snprintf(path, sizeof path, "%s/secret.key", dir);
    snprintf(other, sizeof other, "%s/other.key", dir);
    unsetenv("BARAM_SECRET_KEY_FILE");
    unsigned char k1[VARS_KEYBYTES], k2[VARS_KEYBYTES], k3[VARS_KEYBYTES];
    struct err e = {0};
    assert_int_equal(vars_key_load(dir, k1, &e), -ENOENT);
    assert_non_null(strstr(err_msg(&e), "baram init"));
    write_key(path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
    assert_int_equal(vars_key_load(dir, k1, &e), 0);
    /* Derived, not the signing key itself. */
    static const unsigned char raw[] = {0x00, 0x11, 0x22, 0x33};
    assert_memory_not_equal(k1, raw, sizeof raw);
    write_key(other, "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100");
    setenv("BARAM_SECRET_KEY_FILE", other, 1);
    assert_int_equal(vars_key_load(dir, k2, &e), 0);
    assert_memory_not_equal(k1, k2, VARS_KEYBYTES);
    write_key(other, "not hex");
    assert_int_equal(vars_key_load(dir, k3, &e), -EINVAL);
    assert_non_null(strstr(err_msg(&e), other));
    unsetenv("BARAM_SECRET_KEY_FILE");
    assert_int_equal(vars_key_load(dir, k3, &e), 0);
    assert_memory_equal(k1, k3, VARS_KEYBYTES);
    unlink(path);
    unlink(other);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(put_get_list_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(keys_and_values_are_checked, setup, teardown),
        cmocka_unit_test(the_key_comes_from_the_home_or_the_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
