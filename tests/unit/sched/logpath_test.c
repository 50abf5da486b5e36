/*
 * logpath_test.c - the paths of a run's files: the flat layout, names that
 * cannot leave their folder, the fallback to an earlier baram's layout, and
 * the scratch folder that is refused unless it is safely ours.
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
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sched/logpath.h"
#include "sched/logprep.h"

static void check_str(char *got, const char *want)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void one_folder_per_run_one_file_per_try(void **state)
{
    (void)state;
    check_str(logpath_run_dir("/h", "etl", "manual__1"), "/h/logs/etl/manual__1");
    check_str(logpath_try("/h/logs/etl/r", "load", -1, 2, "log"), "/h/logs/etl/r/load.2.log");
    check_str(logpath_try("/h/logs/etl/r", "load", 3, 1, "log"), "/h/logs/etl/r/load.3.1.log");
    check_str(logpath_try("/h/logs/etl/r", "load", 0, 1, "sh"), "/h/logs/etl/r/load.0.1.sh");
    check_str(logpath_try("/h/logs/etl/r", "load", -1, 1, "output"), "/h/logs/etl/r/load.1.output");
    check_str(logpath_task_output("/h/logs/etl/r", "fan"), "/h/logs/etl/r/fan.out");
    check_str(logpath_hook("/h/logs/etl/r", "on_success", "log"), "/h/logs/etl/r/on_success.log");
}

static void ids_of_dots_stay_inside(void **state)
{
    (void)state;
    check_str(logpath_run_dir("/h", "..", "."), "/h/logs/%2E%2E/%2E");
    check_str(logpath_try("/r", "..", -1, 1, "log"), "/r/%2E%2E.1.log");
    check_str(logpath_task_output("/r", "."), "/r/%2E.out");
    char *rel = logpath_run_dir("home", "d", "r"); /* a relative home is made absolute */
    assert_non_null(rel);
    assert_int_equal(rel[0], '/');
    assert_non_null(strstr(rel, "/home/logs/d/r"));
    free(rel);
}

static void put_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    close(fd);
}

static void readers_fall_back_to_the_earlier_layout(void **state)
{
    (void)state;
    char home[] = "/tmp/logpath_test.XXXXXX";
    assert_non_null(mkdtemp(home));
    char *run = logpath_run_dir(home, "d", "r");
    assert_int_equal(logprep_mkdirs(run), 0);
    char *flat = logpath_try(run, "m", 1, 2, "log");
    /* Neither exists: the flat path, where a try about to start writes. */
    check_str(logpath_find_log(home, "d", "r", "m", 1, 2), flat);
    char old_dir[4096], old[4200];
    snprintf(old_dir, sizeof(old_dir), "%s/m.1", run);
    snprintf(old, sizeof(old), "%s/2.log", old_dir);
    assert_int_equal(mkdir(old_dir, 0755), 0);
    put_file(old);
    check_str(logpath_find_log(home, "d", "r", "m", 1, 2), old);
    put_file(flat); /* both: the flat one wins */
    check_str(logpath_find_log(home, "d", "r", "m", 1, 2), flat);
    unlink(flat);
    unlink(old);
    rmdir(old_dir);
    free(flat);
    rmdir(run);
    free(run);
    char *p = logpath_run_dir(home, "d", ".");
    *strrchr(p, '/') = 0;
    rmdir(p);
    *strrchr(p, '/') = 0;
    rmdir(p);
    free(p);
    assert_int_equal(rmdir(home), 0);
}

/* A scratch root of our own on tmpfs, standing in for /dev/shm. */
static char *shm_root(void)
{
    char *root = strdup("/dev/shm/logpath_test.XXXXXX");
    if (!logprep_is_memory_fs("/dev/shm") || !mkdtemp(root)) {
        free(root);
        return NULL;
    }
    return root;
}

static void scratch_is_private_and_checked(void **state)
{
    (void)state;
    char *root = shm_root();
    if (!root)
        skip();
    char user[4096], other[4096];
    snprintf(user, sizeof(user), "%s/baram-%lu", root, (unsigned long)geteuid());
    snprintf(other, sizeof(other), "%s/elsewhere", root);
    assert_int_equal(mkdir(other, 0700), 0);

    char *dir = NULL;
    assert_int_equal(logpath_scratch_dir(root, "/some/home", &dir), 0);
    assert_non_null(dir);
    assert_int_equal(strncmp(dir, user, strlen(user)), 0);
    struct stat st;
    assert_int_equal(lstat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    char *again = NULL; /* the same home, the same folder */
    assert_int_equal(logpath_scratch_dir(root, "/some/home", &again), 0);
    check_str(again, dir);
    char *out = logpath_scratch_output(dir, "d", "r", "t", 7, 2);
    assert_int_equal(strncmp(out, dir, strlen(dir)), 0);
    assert_non_null(strstr(out, ".2.output"));
    /* another run, task or map index: another name */
    char *others[] = {logpath_scratch_output(dir, "d", "r2", "t", 7, 2),
                      logpath_scratch_output(dir, "d", "r", "u", 7, 2),
                      logpath_scratch_output(dir, "d", "r", "t", 8, 2),
                      logpath_scratch_output(dir, "d", "r", "t", -1, 2)};
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        assert_string_not_equal(out, others[i]);
        free(others[i]);
    }
    free(out);
    assert_int_equal(rmdir(dir), 0);
    free(dir);

    /* Open to others: refused. */
    assert_int_equal(chmod(user, 0755), 0);
    assert_int_equal(logpath_scratch_dir(root, "/some/home", &dir), -EPERM);
    assert_null(dir);
    /* A symlink planted in its place: refused, and nothing is made where it points. */
    assert_int_equal(rmdir(user), 0);
    assert_int_equal(symlink(other, user), 0);
    assert_int_equal(logpath_scratch_dir(root, "/some/home", &dir), -EPERM);
    assert_null(dir);
    assert_int_equal(rmdir(other), 0); /* still empty */
    unlink(user);
    assert_int_equal(rmdir(root), 0);
    free(root);
}

static void scratch_needs_a_memory_file_system(void **state)
{
    (void)state;
    char root[] = "/var/tmp/logpath_test.XXXXXX";
    if (!mkdtemp(root))
        skip();
    if (logprep_is_memory_fs(root)) {
        rmdir(root);
        skip();
    }
    char *dir = (char *)1;
    assert_int_equal(logpath_scratch_dir(root, "/some/home", &dir), -ENOTSUP);
    assert_null(dir);
    assert_int_equal(rmdir(root), 0); /* nothing made in it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_folder_per_run_one_file_per_try),
        cmocka_unit_test(ids_of_dots_stay_inside),
        cmocka_unit_test(readers_fall_back_to_the_earlier_layout),
        cmocka_unit_test(scratch_is_private_and_checked),
        cmocka_unit_test(scratch_needs_a_memory_file_system),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
