/*
 * orphans_test.c - orphans.c with real processes: a try started by spawn.c
 * (a session of its own) carrying a run's tags in its environment is found
 * in /proc and its whole group killed, children included; one carrying only
 * some of the tags, or another run's, is left alone; by pid, only a session
 * leader carrying the tags is killed (never this process, never a pid that
 * leads nothing, never an unrelated session leader such as a `setsid` job).
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
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "base/when.h"
#include "exec/orphans.h"
#include "exec/spawn.h"

struct got {
    int calls;
    struct spawn_result r;
};

static void on_exit_cb(void *ud, const struct spawn_result *r)
{
    struct got *g = ud;
    g->calls++;
    g->r = *r;
}

struct seen {
    int pids[8];
    int n;
};

static void on_killed(void *ud, int pid)
{
    struct seen *s = ud;
    if (s->n < 8)
        s->pids[s->n++] = pid;
}

/* A tag unique to this test process, so a parallel test run never matches. */
static void tag(char *out, size_t cap, const char *name, const char *what)
{
    snprintf(out, cap, "%s=orphans-test-%d-%s", name, (int)getpid(), what);
}

/* Waits (running the loop) until g has its exit, at most 5 s. */
static void wait_exit(uv_loop_t *loop, struct got *g)
{
    int64_t t0 = when_mono_ms();
    while (g->calls == 0 && when_mono_ms() - t0 < 5000)
        uv_run(loop, UV_RUN_ONCE);
}

static void tagged_tries_are_killed_with_their_children(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char dag[128], run[128], other[128];
    tag(dag, sizeof(dag), "BARAM_DAG", "d");
    tag(run, sizeof(run), "BARAM_RUN_ID", "r1");
    tag(other, sizeof(other), "BARAM_RUN_ID", "r2");
    char *env_both[] = {"PATH=/usr/bin:/bin", dag, run, NULL};
    char *env_dag_only[] = {"PATH=/usr/bin:/bin", dag, NULL};
    char *env_other[] = {"PATH=/usr/bin:/bin", dag, other, NULL};
    /* The first one's child ignores SIGTERM: only a SIGKILL to the group ends it. */
    struct spawn_opts o = {.cmd = "sh -c 'trap \"\" TERM; sleep 30' & sleep 30",
                           .env = env_both,
                           .inherit_stdio = true};
    struct spawn *sp[3];
    struct got g[3] = {{0}};
    assert_int_equal(spawn_start(&loop, &o, on_exit_cb, &g[0], &sp[0]), 0);
    o.cmd = "sleep 30";
    o.env = env_dag_only;
    assert_int_equal(spawn_start(&loop, &o, on_exit_cb, &g[1], &sp[1]), 0);
    o.env = env_other;
    assert_int_equal(spawn_start(&loop, &o, on_exit_cb, &g[2], &sp[2]), 0);
    int pid = spawn_pid(sp[0]);
    /* posix_spawn returns before exec: give the shells a moment to have their environment. */
    usleep(200 * 1000);

    const char *tags[] = {dag, run};
    struct seen s = {0};
    assert_int_equal(orphans_kill_tagged(tags, 2, on_killed, &s), 1);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.pids[0], pid);
    wait_exit(&loop, &g[0]);
    assert_int_equal(g[0].calls, 1);
    assert_int_equal(g[0].r.term_signal, SIGKILL);
    assert_false(g[0].r.killed); /* not through spawn_kill: from outside, as after a crash */
    /* The group is gone, its child included (reparented and reaped by init soon after). */
    int64_t t0 = when_mono_ms();
    while (kill(-pid, 0) == 0 && when_mono_ms() - t0 < 3000)
        usleep(10 * 1000);
    assert_int_equal(kill(-pid, 0), -1);
    assert_int_equal(errno, ESRCH);

    /* The others still run: no tag set, no kill. */
    assert_int_equal(g[1].calls + g[2].calls, 0);
    assert_int_equal(orphans_kill_tagged(tags, 0, on_killed, &s), 0);
    assert_int_equal(s.n, 1);
    for (int i = 1; i < 3; i++) {
        spawn_kill(sp[i]);
        wait_exit(&loop, &g[i]);
        assert_true(g[i].r.killed);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void by_pid_only_a_session_leader(void **state)
{
    (void)state;
    char dag[128], run[128], other[128];
    tag(dag, sizeof(dag), "BARAM_DAG", "d");
    tag(run, sizeof(run), "BARAM_RUN_ID", "p1");
    tag(other, sizeof(other), "BARAM_RUN_ID", "p2");
    const char *tags[] = {dag, run}, *other_tags[] = {dag, other};
    assert_false(orphans_kill_pid(0, tags, 2));
    assert_false(orphans_kill_pid(1, tags, 2));
    assert_false(orphans_kill_pid(-5, tags, 2));
    assert_false(orphans_kill_pid((int)getpid(), tags, 2));
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char *env[] = {"PATH=/usr/bin:/bin", dag, run, NULL};
    struct spawn_opts o = {
        .cmd = "sleep 30 & echo $! > /dev/null; wait", .env = env, .inherit_stdio = true};
    struct spawn *sp;
    struct got g = {0};
    assert_int_equal(spawn_start(&loop, &o, on_exit_cb, &g, &sp), 0);
    int pid = spawn_pid(sp);
    usleep(200 * 1000); /* posix_spawn returns before exec: let the shell have its environment */
    assert_false(orphans_kill_pid(pid, other_tags, 2)); /* another run's pid: left alone */
    assert_false(orphans_kill_pid(pid, tags, 0));
    assert_true(orphans_kill_pid(pid, tags, 2));
    wait_exit(&loop, &g);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.r.term_signal, SIGKILL);
    /* Reaped: the pid leads nothing any more. */
    assert_false(orphans_kill_pid(pid, tags, 2));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A stored pid the system gave to an unrelated session leader (here a `setsid sleep`, as a
 * systemd service or an ssh login shell would be) after the scheduler died: not a try of the
 * run, so neither it nor its group is killed. */
static void by_pid_an_unrelated_session_leader_is_left_alone(void **state)
{
    (void)state;
    char dag[128], run[128];
    tag(dag, sizeof(dag), "BARAM_DAG", "d");
    tag(run, sizeof(run), "BARAM_RUN_ID", "u1");
    const char *tags[] = {dag, run};
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execlp("setsid", "setsid", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    int64_t t0 = when_mono_ms();
    while (getsid(pid) != pid && when_mono_ms() - t0 < 5000)
        usleep(10 * 1000);
    assert_int_equal(getsid(pid), pid); /* a session leader, as a try would be */
    usleep(100 * 1000);                 /* and sleep by now, not setsid */
    assert_false(orphans_kill_pid((int)pid, tags, 2));
    int st;
    assert_int_equal(waitpid(pid, &st, WNOHANG), 0); /* still running */
    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM); /* ours, not orphans.c's SIGKILL */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tagged_tries_are_killed_with_their_children),
        cmocka_unit_test(by_pid_only_a_session_leader),
        cmocka_unit_test(by_pid_an_unrelated_session_leader_is_left_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
