/*
 * spawn_test.c - spawn.c with real processes on a real libuv loop: exit
 * codes, signals, log capture of stdout+stderr, cwd, the explicit
 * environment, stdin from /dev/null, timeouts that kill the whole process
 * group (also a child that ignores SIGTERM, also when the leader is gone),
 * and spawn_kill.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "base/when.h"
#include "base/xalloc.h"
#include "exec/spawn.h"

static char dir[PATH_MAX];
static char logp[PATH_MAX + 16];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/baram-spawn-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(logp, sizeof(logp), "%s/1.log", dir);
    return 0;
}

static int teardown(void **state)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

struct got {
    int calls;
    struct spawn_result r;
    int64_t at_ms;
};

static void on_exit_cb(void *ud, const struct spawn_result *r)
{
    struct got *g = ud;
    g->calls++;
    g->r = *r;
    g->at_ms = when_mono_ms();
}

static char *env_path[] = {"PATH=/usr/bin:/bin", "FOO=bar baz", NULL};

/* Runs cmd to its end; returns the pid (= pgid). */
static int run_cmd(const char *cmd, int64_t timeout_ms, int64_t grace_ms, struct got *g)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct spawn_opts o = {.cmd = cmd,
                           .cwd = dir,
                           .env = env_path,
                           .log_path = logp,
                           .timeout_ms = timeout_ms,
                           .grace_ms = grace_ms};
    struct spawn *sp;
    memset(g, 0, sizeof(*g));
    assert_int_equal(spawn_start(&loop, &o, on_exit_cb, g, &sp), 0);
    int pid = spawn_pid(sp);
    assert_true(pid > 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(g->calls, 1);
    return pid;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *p = calloc(1, 65536);
    size_t n = fread(p, 1, 65535, f);
    p[n] = 0;
    fclose(f);
    return p;
}

/* True when no process of the group is left but zombies (orphaned members that init has
 * not reaped yet are dead; they hold no resources but a pid). */
static bool group_has_live_member(int pgid)
{
    if (kill(-pgid, 0) < 0 && errno == ESRCH)
        return false;
    DIR *d = opendir("/proc");
    assert_non_null(d);
    bool alive = false;
    struct dirent *e;
    while (!alive && (e = readdir(d)) != NULL) {
        char path[300], buf[512];
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        char *rp = strrchr(buf, ')');
        char st;
        int ppid, pgrp;
        if (rp && sscanf(rp + 1, " %c %d %d", &st, &ppid, &pgrp) == 3 && pgrp == pgid &&
            st != 'Z' && st != 'X')
            alive = true;
    }
    closedir(d);
    return alive;
}

static bool group_gone(int pgid)
{
    return !group_has_live_member(pgid);
}

static void exit_codes(void **state)
{
    struct got g;
    run_cmd("exit 0", 0, 0, &g);
    assert_int_equal(g.r.exit_code, 0);
    assert_int_equal(g.r.term_signal, 0);
    assert_false(g.r.timed_out);
    run_cmd("exit 3", 0, 0, &g);
    assert_int_equal(g.r.exit_code, 3);
    run_cmd("exit 99", 0, 0, &g);
    assert_int_equal(g.r.exit_code, 99);
}

static void signal_death_is_reported(void **state)
{
    struct got g;
    run_cmd("kill -TERM $$; sleep 5", 0, 0, &g);
    assert_int_equal(g.r.exit_code, -1);
    assert_int_equal(g.r.term_signal, SIGTERM);
}

static void log_captures_stdout_and_stderr_appending(void **state)
{
    struct got g;
    run_cmd("echo out-1; echo err-1 >&2", 0, 0, &g);
    run_cmd("echo out-2", 0, 0, &g);
    char *s = slurp(logp);
    assert_string_equal(s, "out-1\nerr-1\nout-2\n");
    free(s);
}

static void cwd_env_and_stdin(void **state)
{
    struct got g;
    run_cmd("pwd; echo \"$FOO\"; echo \"${HOME:-nohome}\"; cat; echo end", 0, 0, &g);
    assert_int_equal(g.r.exit_code, 0);
    char *s = slurp(logp);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof(want), "%s\nbar baz\nnohome\nend\n", dir);
    assert_string_equal(s, want);
    free(s);
}

static void only_stdio_is_inherited(void **state)
{
    int stray = open("/dev/null", O_RDONLY); /* no O_CLOEXEC on purpose */
    assert_true(stray >= 3);
    struct got g;
    run_cmd("ls /proc/self/fd", 0, 0, &g);
    close(stray);
    assert_int_equal(g.r.exit_code, 0);
    char *s = slurp(logp);
    assert_string_equal(s, "0\n1\n2\n3\n"); /* 3: ls's own opendir */
    free(s);
}

/* Runs script (prefixed with a no-op line of pad bytes) through spawn, from a cmd_file when
 * file is not NULL: its exit code, and its log in *log (malloc'd). */
static int run_script(const char *script, size_t pad, const char *file, char **log)
{
    char *cmd = malloc(pad + strlen(script) + 8);
    assert_non_null(cmd);
    memcpy(cmd, ": ", 2);
    memset(cmd + 2, 'p', pad);
    cmd[2 + pad] = '\n';
    memcpy(cmd + 3 + pad, script, strlen(script) + 1);
    unlink(logp);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct spawn_opts o = {
        .cmd = cmd, .cmd_file = file, .cwd = dir, .env = env_path, .log_path = logp};
    char *msg = NULL;
    assert_int_equal(spawn_check(&o, &msg), 0);
    struct got g = {0};
    struct spawn *sp;
    assert_int_equal(spawn_start(&loop, &o, on_exit_cb, &g, &sp), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(g.calls, 1);
    *log = slurp(logp);
    free(cmd);
    return g.r.exit_code;
}

/* A command longer than one argument may be runs from its cmd_file, whole. */
static void long_command_runs_from_its_file(void **state)
{
    size_t n = 3 * SPAWN_ARG_MAX;
    char *cmd = malloc(n + 64);
    assert_non_null(cmd);
    memcpy(cmd, "printf %s ", 10);
    memset(cmd + 10, 'z', n);
    memcpy(cmd + 10 + n, " | wc -c; exit 7", 17);
    char *file = xasprintf("%s/1.sh", dir), *s, want[32];
    assert_int_equal(run_script(cmd, 0, file, &s), 7);
    snprintf(want, sizeof want, "%zu\n", n);
    assert_string_equal(s, want);
    free(s);
    /* Without a cmd_file it is refused, with a message, before any process. */
    struct spawn_opts o = {.cmd = cmd, .cwd = dir, .env = env_path, .log_path = logp};
    char *msg = NULL;
    assert_int_equal(spawn_check(&o, &msg), -E2BIG);
    assert_non_null(strstr(msg, "the command is 384 KiB"));
    free(msg);
    unlink(file);
    free(file);
    free(cmd);
}

/* A task must not behave differently because its expanded command is long: run from its file,
 * it sees what `/bin/sh -c` gives ($0, no positional parameters, no extra variable), and exit,
 * set -e and its exit code behave the same. */
static void long_command_runs_as_sh_c_would(void **state)
{
    static const char *const scripts[] = {
        "echo \"0=$0 #=$# 1=${1-unset} f=${f-unset}\"; exit 7",
        "set -e; echo before; false; echo after",
        "echo a; (exit 3)",
        "f() { return 4; }; f",
    };
    char *file = xasprintf("%s/it's a \"try\" $HOME.sh", dir); /* quoting of the path */
    for (size_t i = 0; i < sizeof scripts / sizeof *scripts; i++) {
        char *short_log, *long_log;
        int short_rc = run_script(scripts[i], 16, NULL, &short_log);
        int long_rc = run_script(scripts[i], 2 * SPAWN_ARG_MAX, file, &long_log);
        assert_int_equal(access(file, F_OK), 0); /* it did run from the file */
        unlink(file);
        assert_int_equal(long_rc, short_rc);
        assert_string_equal(long_log, short_log);
        free(short_log);
        free(long_log);
    }
    char *log;
    assert_int_equal(run_script(scripts[0], 16, NULL, &log), 7);
    assert_string_equal(log, "0=/bin/sh #=0 1=unset f=unset\n");
    free(log);
    free(file);
}

/* exec's limits, checked ahead: one variable, then the whole. */
static void check_names_what_exec_would_refuse(void **state)
{
    char *big = malloc(SPAWN_ARG_MAX + 16);
    assert_non_null(big);
    memcpy(big, "BIG=", 4);
    memset(big + 4, 'b', SPAWN_ARG_MAX);
    big[SPAWN_ARG_MAX + 4] = 0;
    char *env[] = {"PATH=/usr/bin:/bin", big, NULL};
    struct spawn_opts o = {.cmd = "true", .env = env};
    char *msg = NULL;
    assert_int_equal(spawn_check(&o, &msg), -E2BIG);
    assert_non_null(strstr(msg, "environment variable 'BIG' is 128 KiB"));
    free(msg);
    big[SPAWN_ARG_MAX - 16] = 0; /* fits alone */
    assert_int_equal(spawn_check(&o, &msg), 0);
    /* Many that fit alone, over ARG_MAX together. */
    size_t nv = spawn_exec_max() / (SPAWN_ARG_MAX / 2) + 2;
    char **many = calloc(nv + 1, sizeof(char *));
    assert_non_null(many);
    for (size_t i = 0; i < nv; i++) {
        many[i] = malloc(SPAWN_ARG_MAX / 2);
        assert_non_null(many[i]);
        int k = snprintf(many[i], 32, "V%zu=", i);
        memset(many[i] + k, 'v', SPAWN_ARG_MAX / 2 - (size_t)k - 1);
        many[i][SPAWN_ARG_MAX / 2 - 1] = 0;
    }
    o.env = many;
    assert_int_equal(spawn_check(&o, &msg), -E2BIG);
    assert_non_null(strstr(msg, "ARG_MAX"));
    free(msg);
    /* posix_spawn would have said the same. */
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct got g = {0};
    struct spawn *sp;
    assert_int_equal(spawn_start(&loop, &o, on_exit_cb, &g, &sp), -E2BIG);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(g.calls, 0);
    for (size_t i = 0; i < nv; i++)
        free(many[i]);
    free(many);
    free(big);
}

static void timeout_terms_the_group_quickly(void **state)
{
    struct got g;
    int64_t t0 = when_mono_ms();
    int pid = run_cmd("sleep 30 & sleep 30", 200, 5000, &g);
    assert_true(g.r.timed_out);
    assert_int_equal(g.r.term_signal, SIGTERM);
    /* died on SIGTERM: no wait for the grace period */
    assert_true(g.at_ms - t0 < 2000);
    assert_true(group_gone(pid));
}

static void timeout_kills_a_leader_ignoring_term(void **state)
{
    struct got g;
    int64_t t0 = when_mono_ms();
    int pid = run_cmd("trap '' TERM; sleep 30", 200, 300, &g);
    assert_true(g.r.timed_out);
    assert_int_equal(g.r.term_signal, SIGKILL);
    assert_true(g.at_ms - t0 >= 450);
    assert_true(g.at_ms - t0 < 3000);
    assert_true(group_gone(pid));
}

static void timeout_kills_a_child_outliving_its_leader(void **state)
{
    struct got g;
    int64_t t0 = when_mono_ms();
    /* The leader dies on SIGTERM; its child ignores SIGTERM and must get SIGKILL. */
    int pid = run_cmd("sh -c 'trap \"\" TERM; sleep 30; echo survived' & wait", 200, 400, &g);
    assert_true(g.r.timed_out);
    assert_true(g.at_ms - t0 >= 550); /* waited for the group, not only the leader */
    assert_true(group_gone(pid));
    usleep(100000);
    char *s = slurp(logp);
    assert_null(strstr(s, "survived"));
    free(s);
}

/* A try whose main process ends leaves nothing behind: a background child (`cmd &`) is
 * killed, and writes nothing more into the log. */
static void background_children_end_with_the_try(void **state)
{
    struct got g;
    int pid = run_cmd("sh -c 'sleep 1; echo outlived' & echo started", 0, 0, &g);
    assert_int_equal(g.r.exit_code, 0);
    usleep(100000);
    assert_true(group_gone(pid));
    usleep(1200000);
    char *s = slurp(logp);
    assert_non_null(strstr(s, "started"));
    assert_null(strstr(s, "outlived"));
    free(s);
}

struct killer {
    struct spawn *sp;
    uv_timer_t t;
};

static void kill_later(uv_timer_t *t)
{
    struct killer *k = t->data;
    spawn_kill(k->sp);
    spawn_kill(k->sp); /* idempotent */
    uv_close((uv_handle_t *)t, NULL);
}

static void kill_ends_the_group(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct spawn_opts o = {
        .cmd = "sleep 30 & sleep 30", .cwd = dir, .env = env_path, .log_path = logp};
    struct got g = {0};
    struct killer k;
    assert_int_equal(spawn_start(&loop, &o, on_exit_cb, &g, &k.sp), 0);
    int pid = spawn_pid(k.sp);
    uv_timer_init(&loop, &k.t);
    k.t.data = &k;
    uv_timer_start(&k.t, kill_later, 100, 0);
    int64_t t0 = when_mono_ms();
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(g.calls, 1);
    assert_true(g.r.killed);
    assert_false(g.r.timed_out);
    assert_true(when_mono_ms() - t0 < 3000);
    assert_true(group_gone(pid));
}

static void bad_cwd_fails_to_start(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct spawn_opts o = {.cmd = "true", .cwd = "/nonexistent/dir", .env = env_path};
    struct got g = {0};
    struct spawn *sp;
    assert_true(spawn_start(&loop, &o, on_exit_cb, &g, &sp) < 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(g.calls, 0);
}

static void many_concurrent_children(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    enum { N = 64 };
    struct got g[N];
    memset(g, 0, sizeof(g));
    char cmds[N][32];
    for (int i = 0; i < N; i++) {
        snprintf(cmds[i], sizeof(cmds[i]), "exit %d", i);
        struct spawn_opts o = {.cmd = cmds[i], .cwd = dir, .env = env_path};
        struct spawn *sp;
        assert_int_equal(spawn_start(&loop, &o, on_exit_cb, &g[i], &sp), 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(g[i].calls, 1);
        assert_int_equal(g[i].r.exit_code, i);
    }
}

/* The same cases with exits watched through SIGCHLD (kernels without pidfd_open). */
static int setup_sigchld(void **state)
{
    spawn__use_sigchld(true);
    return setup(state);
}

static int teardown_sigchld(void **state)
{
    spawn__use_sigchld(false);
    return teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(exit_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(signal_death_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(log_captures_stdout_and_stderr_appending, setup, teardown),
        cmocka_unit_test_setup_teardown(cwd_env_and_stdin, setup, teardown),
        cmocka_unit_test_setup_teardown(only_stdio_is_inherited, setup, teardown),
        cmocka_unit_test_setup_teardown(timeout_terms_the_group_quickly, setup, teardown),
        cmocka_unit_test_setup_teardown(timeout_kills_a_leader_ignoring_term, setup, teardown),
        cmocka_unit_test_setup_teardown(timeout_kills_a_child_outliving_its_leader, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(kill_ends_the_group, setup, teardown),
        cmocka_unit_test_setup_teardown(background_children_end_with_the_try, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_cwd_fails_to_start, setup, teardown),
        cmocka_unit_test_setup_teardown(long_command_runs_from_its_file, setup, teardown),
        cmocka_unit_test_setup_teardown(long_command_runs_as_sh_c_would, setup, teardown),
        cmocka_unit_test_setup_teardown(check_names_what_exec_would_refuse, setup, teardown),
        cmocka_unit_test_setup_teardown(many_concurrent_children, setup, teardown),
        cmocka_unit_test_setup_teardown(exit_codes, setup_sigchld, teardown_sigchld),
        cmocka_unit_test_setup_teardown(signal_death_is_reported, setup_sigchld, teardown_sigchld),
        cmocka_unit_test_setup_teardown(timeout_kills_a_child_outliving_its_leader, setup_sigchld,
                                        teardown_sigchld),
        cmocka_unit_test_setup_teardown(kill_ends_the_group, setup_sigchld, teardown_sigchld),
        cmocka_unit_test_setup_teardown(many_concurrent_children, setup_sigchld, teardown_sigchld),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
