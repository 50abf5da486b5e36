/*
 * wtry_test.c - what a worker keeps of a try's log for the store
 * (wtry_read_log): all of it up to logs.store_max, else its last store_max
 * bytes after one line saying how many were cut; nothing for a missing file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker/worker_int.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/baram-wtry-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/t.1.log", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)unlink(path);
    return rmdir(dir);
}

static void write_log(const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void read_log_keeps_a_short_log_whole(void **state)
{
    write_log("hello\nworld\n", 12);
    char *log;
    size_t len;
    wtry_read_log(path, 12, &log, &len);
    assert_int_equal(len, 12);
    assert_string_equal(log, "hello\nworld\n");
    free(log);
}

static void read_log_keeps_the_tail_of_a_long_one(void **state)
{
    write_log("0123456789abcdef", 16);
    char *log;
    size_t len;
    wtry_read_log(path, 6, &log, &len);
    const char *want = "[baram: log cut: the first 10 bytes are not kept]\nabcdef";
    assert_int_equal(len, strlen(want));
    assert_string_equal(log, want);
    free(log);
}

static void read_log_gives_nothing_without_a_file(void **state)
{
    char *log = (char *)"x";
    size_t len = 1;
    wtry_read_log(path, 1024, &log, &len); /* never written */
    assert_null(log);
    assert_int_equal(len, 0);
    wtry_read_log(NULL, 1024, &log, &len);
    assert_null(log);
}

static void read_log_of_an_empty_file_is_empty(void **state)
{
    write_log("", 0);
    char *log;
    size_t len;
    wtry_read_log(path, 1024, &log, &len);
    assert_non_null(log);
    assert_int_equal(len, 0);
    assert_string_equal(log, "");
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(read_log_keeps_a_short_log_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(read_log_keeps_the_tail_of_a_long_one, setup, teardown),
        cmocka_unit_test_setup_teardown(read_log_gives_nothing_without_a_file, setup, teardown),
        cmocka_unit_test_setup_teardown(read_log_of_an_empty_file_is_empty, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
