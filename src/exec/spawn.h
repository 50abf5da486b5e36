/*
 * spawn.h - one try of a `run` task as a process: `/bin/sh -c CMD` in its
 * own session (so its own process group), in a given folder, with an
 * explicit environment, stdin from /dev/null, stdout + stderr appended
 * to one log file and no other fd (not even ones inherited by baram). The exit is an event on a
 * libuv loop; a timeout or a kill sends SIGTERM to the whole group, then SIGKILL to the group after
 * the grace period if anything in it is still alive, even when the leader
 * has already exited: a killed try leaves no process behind.
 *
 * Key idea: the hot path costs few syscalls. The child is started with
 * posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK), no page-table copy as
 * with libuv 1.44's fork) and its exit is watched through a pidfd polled on
 * the loop (one fd per child, no SIGCHLD fan-out over every child); kernels
 * without pidfd_open fall back to a SIGCHLD uv_signal per child.
 *
 * Loop thread only. A struct spawn is owned by this module: it is freed
 * after its exit callback has returned and its handles are closed; the
 * caller must not touch it after the callback.
 */
#ifndef BARAM_EXEC_SPAWN_H
#define BARAM_EXEC_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

struct spawn;
struct uv_loop_s;

/* Linux's limits on what exec takes: one argument or one "NAME=value" with its NUL
 * (MAX_ARG_STRLEN, 32 pages of 4 KiB), and all of argv and the environment, strings and
 * pointers, within ARG_MAX (sysconf; a quarter of the stack limit, 2 MiB by default). */
#define SPAWN_ARG_MAX (128 * 1024)

struct spawn_opts {
    const char *cmd;      /* run as /bin/sh -c cmd (borrowed for the call) */
    const char *cmd_file; /* NULL, or where a cmd too long for exec is written, to run as
                           * /bin/sh -c ". 'cmd_file'" instead ($0 and the positional
                           * parameters as with -c cmd); without it such a cmd is refused */
    const char *cwd;      /* NULL: this process's cwd */
    char *const *env;     /* NULL-terminated "NAME=value" array (borrowed for the call) */
    const char *log_path; /* stdout+stderr appended here (created 0644); NULL: see below */
    bool inherit_stdio;   /* with log_path NULL: stdout/stderr are this process's */
    int64_t timeout_ms;   /* 0 = none */
    int64_t grace_ms;     /* SIGTERM -> SIGKILL delay (the caller's policy: a DAG task's is
                             DAG_KILL_GRACE_MS); <= 0: SIGKILL right after the SIGTERM */
    /* vars: values to write as *** in the log (exec/mask.h; copied). With any, stdout and
     * stderr go through a pipe read on the loop instead of straight to log_path, and the exit
     * is reported once the pipe is drained (or SPAWN_DRAIN_MS after the group is gone). */
    const char *const *mask_vals;
    const size_t *mask_lens;
    size_t nmask;
};

/* How long a masked try's output may still come after its process group has gone (a
 * descendant in a session of its own holding the pipe) before the exit is reported anyway. */
#define SPAWN_DRAIN_MS 2000

struct spawn_result {
    int exit_code;   /* 0..255, or -1 when ended by a signal */
    int term_signal; /* 0, or the signal that ended the leader */
    bool timed_out;  /* the timeout fired */
    bool killed;     /* spawn_kill was called */
};

/* Called once on the loop thread when the leader has exited (and, for a killed or timed-out
 * try, when the whole group is gone). */
typedef void (*spawn_exit_fn)(void *ud, const struct spawn_result *r);

/* The bytes exec counts against ARG_MAX for the NULL-terminated strings v: each string with
 * its NUL, plus one pointer each. Any thread. */
size_t spawn_strv_size(char *const *v);
/* What exec takes in all (argv and environment), from sysconf(_SC_ARG_MAX), less a margin for
 * the program's name and the kernel's own strings. Any thread. */
size_t spawn_exec_max(void);
/* Whether exec can take o->cmd (or run it from o->cmd_file) with o->env: 0, or -E2BIG with
 * *msg (malloc'd) naming the variable or the total that is too large, for a person. Any
 * thread. */
int spawn_check(const struct spawn_opts *o, char **msg) WARN_UNUSED;

/* Writes len bytes of data to path (0644) through a temporary file renamed over it, so a
 * process that reads path sees the whole of it (or what was there before): 0 or a negative
 * errno. For the files a process is handed: a long command, a large input. Any thread. */
int spawn_file_put(const char *path, const char *data, size_t len) WARN_UNUSED;

/* Starts the process. 0 and *out (owned by this module, valid until the callback returns), or a
 * negative errno (log file cannot be opened, spawn failed; -E2BIG: see spawn_check): no
 * callback will come then. */
int spawn_start(struct uv_loop_s *loop, const struct spawn_opts *o, spawn_exit_fn cb, void *ud,
                struct spawn **out) WARN_UNUSED;
/* SIGTERM to the group now, SIGKILL to it after the grace period if any of it lives on. The
 * callback still comes (with killed set). Idempotent. */
void spawn_kill(struct spawn *sp);
/* SIGKILL to the process group of a try whose leader is pid (its pgid), now and without
 * grace: a try that must not outlive a scheduler halting, or one a dead scheduler left
 * (see orphans.h, which first checks that pid still leads a session of its own). 0, or a
 * negative errno (-ESRCH: no such group). Any thread. */
int spawn_kill_group(int pid) WARN_UNUSED;
/* The leader's pid (= its process group id). */
int spawn_pid(const struct spawn *sp);

/* Tests only: watch exits through SIGCHLD instead of pidfds (the fallback for kernels
 * without pidfd_open) from now on, or go back. Loop thread, with no spawn in flight. */
void spawn__use_sigchld(bool on);

#endif
