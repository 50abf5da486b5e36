/*
 * spawn.c - a try's process on the loop; see spawn.h for the contract.
 *
 * Life of a struct spawn: posix_spawn -> watch the exit (pidfd on a
 * uv_poll, or a SIGCHLD uv_signal) -> reap with waitpid(WNOHANG) -> report
 * -> close the handles -> free in the last close callback.
 *
 * Killing (timeout or spawn_kill): SIGTERM to the group and a deadline
 * grace_ms later. While the deadline has not passed, the one timer re-checks
 * the group with kill(-pgid, 0) at a growing short interval once the leader
 * has exited, so a group that dies on SIGTERM is reported at once; at the
 * deadline the whole group gets SIGKILL. The report waits until the group is
 * gone (bounded: zombies of a group whose leader we reaped belong to init).
 *
 * When the leader exits on its own, what it left in its group is SIGKILLed:
 * no process of a try outlives it.
 *
 * Per try, the parent makes: open(log), posix_spawn (one clone + exec),
 * pidfd_open, epoll_ctl add/del, waitpid, kill(-pgid), close x2.
 *
 * exec's size limits (E2BIG) are checked ahead (spawn_check), so a person
 * reads which variable is too large rather than "Argument list too long". A
 * command longer than one argument may be, or one that would take the
 * environment over the total, is written to cmd_file and run from there as
 * `/bin/sh -c ". 'FILE'"`, not `/bin/sh FILE`: so $0 is still /bin/sh and
 * there are no positional parameters, as with the command itself after -c;
 * exit, set -e, a top-level return and the exit status behave the same. What
 * still differs: a syntax error's message names the file, and the shell
 * reads the file as it runs rather than holding the text in memory.
 */
#include "exec/spawn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "base/buf.h"
#include "base/fault.h"
#include "base/xalloc.h"
#include "exec/mask.h"

/* Room left in ARG_MAX for the program's path, "/bin/sh -c" and what the kernel adds. */
#define SPAWN_EXEC_SLACK (4 * 1024)

/* How long after SIGKILL we keep waiting for the group to vanish before reporting anyway. */
#define SPAWN_REAP_WAIT_MS 2000

/* A masked try's log: apart, so that a try without secrets allocates none of it. */
struct spawn_masked {
    uv_pipe_t out; /* the read end of the try's stdout and stderr */
    struct mask mask;
    struct buf mbuf; /* masked bytes on their way to logfd */
    int logfd;
    char rbuf[16384];
};

struct spawn {
    uv_loop_t *loop;
    pid_t pid;
    int pidfd;        /* -1 with the SIGCHLD fallback */
    uv_poll_t poll;   /* on pidfd */
    uv_signal_t sig;  /* SIGCHLD fallback */
    uv_timer_t timer; /* timeout, then group re-checks and the SIGKILL deadline */
    int nopen;        /* handles initialised and not yet closed */
    bool use_signal;
    bool exited;  /* the leader was reaped */
    bool killing; /* SIGTERM sent to the group */
    bool sigkill_sent;
    bool reported;
    bool poll_open;   /* poll was initialised */
    bool first_check; /* the timer first reaps once (SIGCHLD fallback) */
    int64_t timeout_ms;
    int64_t deadline_ms;   /* loop time of the SIGKILL */
    int64_t reap_until_ms; /* loop time after which we stop waiting for the group */
    int64_t grace_ms;
    int64_t recheck_ms;
    struct spawn_result res;
    spawn_exit_fn cb;
    void *ud; /* borrowed */
    /* vars: the log through a pipe, secrets masked (spawn_opts.mask_vals) */
    struct spawn_masked *mk; /* owned; NULL for a try without secrets (the usual case) */
    bool out_open;           /* mk->out is initialised and not yet closed */
    bool report_pending;     /* the exit waits for the pipe's end */
};

static char *const spawn_empty_env[] = {NULL};

/* A cached kernel capability, not state: cleared once by the loop thread when pidfd_open is
 * missing (ENOSYS) or forbidden (EPERM under seccomp); tests clear it to cover the fallback. */
static bool have_pidfd = true;

void spawn__use_sigchld(bool on)
{
    have_pidfd = !on;
}

static void spawn_on_timer(uv_timer_t *h);

static void spawn_masked_free(struct spawn_masked *mk)
{
    if (!mk)
        return;
    if (mk->logfd >= 0)
        close(mk->logfd);
    mask_release(&mk->mask);
    buf_release(&mk->mbuf);
    free(mk);
}

static void spawn_on_close(uv_handle_t *h)
{
    struct spawn *sp = h->data;
    if (--sp->nopen == 0) {
        if (sp->pidfd >= 0)
            close(sp->pidfd);
        spawn_masked_free(sp->mk);
        free(sp);
    }
}

static void spawn_close_all(struct spawn *sp)
{
    if (sp->out_open) {
        sp->out_open = false;
        uv_close((uv_handle_t *)&sp->mk->out, spawn_on_close);
    }
    uv_close((uv_handle_t *)&sp->timer, spawn_on_close);
    if (sp->use_signal)
        uv_close((uv_handle_t *)&sp->sig, spawn_on_close);
    if (sp->poll_open)
        uv_close((uv_handle_t *)&sp->poll, spawn_on_close);
}

static void spawn_report(struct spawn *sp);

/* Appends the masked bytes to the log; a write that fails loses them, as a full disk would
 * for a try writing its log itself. */
static void spawn_log_write(struct spawn *sp)
{
    for (size_t off = 0; off < sp->mk->mbuf.len;) {
        ssize_t w = write(sp->mk->logfd, sp->mk->mbuf.data + off, sp->mk->mbuf.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    buf_reset(&sp->mk->mbuf);
}

/* The pipe's end (or the drain timer): the held tail is written, and a pending exit reported. */
static void spawn_out_end(struct spawn *sp)
{
    if (!sp->out_open)
        return;
    if (mask_flush(&sp->mk->mask, &sp->mk->mbuf) == 0)
        spawn_log_write(sp);
    uv_read_stop((uv_stream_t *)&sp->mk->out);
    sp->out_open = false;
    uv_close((uv_handle_t *)&sp->mk->out, spawn_on_close);
    if (sp->report_pending)
        spawn_report(sp);
}

static void spawn_out_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct spawn *sp = h->data;
    *b = uv_buf_init(sp->mk->rbuf, sizeof sp->mk->rbuf);
}

static void spawn_out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct spawn *sp = s->data;
    if (n > 0) {
        if (mask_feed(&sp->mk->mask, b->base, (size_t)n, &sp->mk->mbuf) == 0)
            spawn_log_write(sp);
    } else if (n < 0) {
        spawn_out_end(sp);
    }
}

static void spawn_on_drain_timer(uv_timer_t *h)
{
    spawn_out_end(h->data);
}

static void spawn_report(struct spawn *sp)
{
    if (sp->reported)
        return;
    if (sp->out_open) { /* what the try wrote last is still in the pipe */
        if (!sp->report_pending) {
            sp->report_pending = true;
            uv_timer_stop(&sp->timer);
            uv_timer_start(&sp->timer, spawn_on_drain_timer, SPAWN_DRAIN_MS, 0);
        }
        return;
    }
    sp->reported = true;
    uv_timer_stop(&sp->timer);
    if (sp->use_signal)
        uv_signal_stop(&sp->sig);
    if (sp->poll_open)
        uv_poll_stop(&sp->poll);
    sp->cb(sp->ud, &sp->res);
    spawn_close_all(sp);
}

/* Is a process of the group still running? kill(-pgid, 0) also counts zombies: members
 * orphaned by the leader's death wait for init to reap them, which can take seconds in a
 * container; so when kill() says yes, /proc tells whether any member is more than a zombie.
 * Only called while killing a group, never on the hot path. */
static bool spawn_group_alive(const struct spawn *sp)
{
    if (kill(-sp->pid, 0) < 0 && errno != EPERM)
        return false;
    DIR *d = opendir("/proc");
    if (!d)
        return true;
    bool alive = false;
    struct dirent *e;
    char path[300], buf[512];
    while (!alive && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = 0;
        /* "pid (comm) S ppid pgrp ...": comm may hold spaces and parentheses. */
        char *rp = strrchr(buf, ')');
        char state;
        int ppid, pgrp;
        if (!rp || sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgrp) != 3)
            continue;
        if (pgrp == sp->pid && state != 'Z' && state != 'X')
            alive = true;
    }
    closedir(d);
    return alive;
}

/* The leader is gone: report now, or keep watching the group while killing it. */
static void spawn_after_exit(struct spawn *sp)
{
    if (!sp->killing) {
        /* The try is over. Whatever it left running in its group (`cmd &`) would outlive it
         * and write on into its log: SIGKILL it, as the task itself has ended (a task that
         * means to leave a daemon behind starts it in a session of its own, with setsid).
         * One syscall, ESRCH in the usual case of an empty group. */
        kill(-sp->pid, SIGKILL);
        spawn_report(sp);
        return;
    }
    if (!spawn_group_alive(sp)) {
        spawn_report(sp);
        return;
    }
    sp->recheck_ms = 1;
    uv_timer_stop(&sp->timer);
    uv_timer_start(&sp->timer, spawn_on_timer, (uint64_t)sp->recheck_ms, 0);
}

static void spawn_reap(struct spawn *sp)
{
    if (sp->exited)
        return;
    int status;
    pid_t r;
    do
        r = waitpid(sp->pid, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return;
    sp->exited = true;
    if (r < 0) { /* somebody else reaped it: we cannot know how it ended */
        sp->res.exit_code = -1;
    } else if (WIFEXITED(status)) {
        sp->res.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        sp->res.exit_code = -1;
        sp->res.term_signal = WTERMSIG(status);
    }
    if (sp->use_signal)
        uv_signal_stop(&sp->sig);
    if (sp->poll_open)
        uv_poll_stop(&sp->poll);
    spawn_after_exit(sp);
}

static void spawn_on_poll(uv_poll_t *h, int status, int events)
{
    spawn_reap(h->data);
}

static void spawn_on_sigchld(uv_signal_t *h, int signum)
{
    spawn_reap(h->data);
}

static void spawn_start_kill(struct spawn *sp)
{
    sp->killing = true;
    kill(-sp->pid, SIGTERM);
    sp->deadline_ms = (int64_t)uv_now(sp->loop) + sp->grace_ms;
    if (sp->first_check) /* the pending first check also arms the deadline */
        return;
    if (sp->exited) {
        spawn_after_exit(sp);
        return;
    }
    uv_timer_stop(&sp->timer);
    uv_timer_start(&sp->timer, spawn_on_timer, (uint64_t)sp->grace_ms, 0);
}

static void spawn_on_timer(uv_timer_t *h)
{
    struct spawn *sp = h->data;
    int64_t now = (int64_t)uv_now(sp->loop);
    if (sp->first_check) { /* SIGCHLD fallback: the child may have exited before the watch */
        sp->first_check = false;
        spawn_reap(sp);
        if (sp->exited)
            return;
        if (sp->killing)
            uv_timer_start(&sp->timer, spawn_on_timer,
                           (uint64_t)(sp->deadline_ms > now ? sp->deadline_ms - now : 0), 0);
        else if (sp->timeout_ms > 0)
            uv_timer_start(&sp->timer, spawn_on_timer, (uint64_t)sp->timeout_ms, 0);
        return;
    }
    if (!sp->killing) { /* the timeout */
        sp->res.timed_out = true;
        spawn_start_kill(sp);
        return;
    }
    if (!sp->sigkill_sent && now >= sp->deadline_ms) {
        kill(-sp->pid, SIGKILL);
        sp->sigkill_sent = true;
        sp->reap_until_ms = now + SPAWN_REAP_WAIT_MS;
    }
    if (sp->exited) {
        if (!spawn_group_alive(sp) || (sp->sigkill_sent && now >= sp->reap_until_ms)) {
            spawn_report(sp);
            return;
        }
        sp->recheck_ms = sp->recheck_ms < 100 ? sp->recheck_ms * 2 : 100;
        int64_t next = sp->recheck_ms;
        if (!sp->sigkill_sent && now + next > sp->deadline_ms)
            next = sp->deadline_ms - now;
        uv_timer_start(&sp->timer, spawn_on_timer, (uint64_t)(next > 0 ? next : 0), 0);
    }
    /* Leader still alive after SIGKILL: its exit (poll/signal) will come. */
}

size_t spawn_strv_size(char *const *v)
{
    size_t n = 0;
    for (; v && *v; v++)
        n += strlen(*v) + 1 + sizeof(char *);
    return n + sizeof(char *);
}

size_t spawn_exec_max(void)
{
    long m = sysconf(_SC_ARG_MAX);
    if (m < 32 * 4096)
        m = 32 * 4096; /* the kernel's floor, whatever the stack limit */
    if (m > 6 * 1024 * 1024)
        m = 6 * 1024 * 1024; /* its ceiling (3/4 of _STK_LIM), even with no stack limit */
    return (size_t)m - SPAWN_EXEC_SLACK;
}

/* "NAME" of "NAME=value", malloc'd. */
static char *spawn_var_name(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq ? xstrndup(kv, (size_t)(eq - kv)) : xstrdup(kv);
}

/* Whether o->cmd goes to o->cmd_file: too long for one argument, or too much with env. */
static bool spawn_cmd_to_file(const struct spawn_opts *o, size_t env_size)
{
    if (!o->cmd_file)
        return false;
    size_t n = strlen(o->cmd) + 1;
    return n > SPAWN_ARG_MAX || env_size + n > spawn_exec_max();
}

/* The command that runs the file at path: ". 'PATH'", quoted for the shell (each ' as '\''),
 * with "./" before a relative path (which "." would look for in PATH). Malloc'd. */
static char *spawn_file_cmd(const char *path)
{
    size_t quotes = 0, n = strlen(path);
    for (const char *p = path; *p; p++)
        quotes += *p == '\'';
    char *out = xmalloc(sizeof ". './''" + n + 3 * quotes), *q = out;
    memcpy(q, ". '", 3);
    q += 3;
    if (path[0] != '/') {
        memcpy(q, "./", 2);
        q += 2;
    }
    for (const char *p = path; *p; p++) {
        if (*p == '\'') {
            memcpy(q, "'\\''", 4);
            q += 4;
        } else {
            *q++ = *p;
        }
    }
    memcpy(q, "'", 2);
    return out;
}

int spawn_check(const struct spawn_opts *o, char **msg)
{
    *msg = NULL;
    for (char *const *v = o->env; v && *v; v++) {
        size_t n = strlen(*v) + 1;
        if (n > SPAWN_ARG_MAX) {
            char *name = spawn_var_name(*v);
            *msg = xasprintf("cannot start the process: environment variable '%s' is %zu KiB, "
                             "over the %d KiB one variable may hold (E2BIG)",
                             name, n / 1024, SPAWN_ARG_MAX / 1024);
            free(name);
            return -E2BIG;
        }
    }
    size_t env = spawn_strv_size(o->env);
    size_t cmd = strlen(o->cmd) + 1, max = spawn_exec_max();
    if (spawn_cmd_to_file(o, env)) {
        char *file_cmd = spawn_file_cmd(o->cmd_file);
        cmd = strlen(file_cmd) + 1;
        free(file_cmd);
    }
    if (cmd > SPAWN_ARG_MAX) {
        *msg = xasprintf("cannot start the process: the command is %zu KiB once expanded, "
                         "over the %d KiB one argument may hold (E2BIG)",
                         cmd / 1024, SPAWN_ARG_MAX / 1024);
        return -E2BIG;
    }
    if (env + cmd > max) {
        *msg = xasprintf("cannot start the process: its environment (%zu KiB) and command "
                         "(%zu KiB) are over the %zu KiB exec takes in all (ARG_MAX, E2BIG)",
                         env / 1024, cmd / 1024, max / 1024);
        return -E2BIG;
    }
    return 0;
}

int spawn_file_put(const char *path, const char *data, size_t len)
{
    char *tmp = xasprintf("%s.tmp", path);
    int r = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    for (size_t off = 0; off < len && r == 0;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno != EINTR)
            r = -errno;
        else if (w > 0)
            off += (size_t)w;
    }
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0)
        unlink(tmp);
out:
    free(tmp);
    return r;
}

int spawn_start(uv_loop_t *loop, const struct spawn_opts *o, spawn_exit_fn cb, void *ud,
                struct spawn **out)
{
    int r;
    int logfd = -1;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    bool fa_init = false, attr_init = false;
    struct spawn *sp = xcalloc(1, sizeof(*sp));
    sp->loop = loop;
    sp->pidfd = -1;
    int pipefd[2] = {-1, -1};
    sp->cb = cb;
    sp->ud = ud;
    sp->grace_ms = o->grace_ms > 0 ? o->grace_ms : 0;
    sp->res.exit_code = -1;

    if (FAULT(FP_SPAWN)) {
        r = -EAGAIN;
        goto fail;
    }
    if (FAULT(FP_SPAWN_E2BIG)) { /* the kernel refusing what spawn_check let through */
        r = -E2BIG;
        goto fail;
    }
    bool cmd_in_file = spawn_cmd_to_file(o, spawn_strv_size(o->env));
    if (cmd_in_file && (r = spawn_file_put(o->cmd_file, o->cmd, strlen(o->cmd))) < 0)
        goto fail;
    if (o->log_path) {
        logfd = open(o->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (logfd < 0) {
            r = -errno;
            goto fail;
        }
    }
    if (logfd >= 0 && o->nmask) {
        sp->mk = xmalloc(sizeof(*sp->mk));
        mask_init(&sp->mk->mask, o->mask_vals, o->mask_lens, o->nmask);
        buf_init(&sp->mk->mbuf, BUF_NO_MAX);
        sp->mk->logfd = -1;
        /* Values all too short to mask: the log is written straight, as without any. */
        if (!mask_empty(&sp->mk->mask) && pipe2(pipefd, O_CLOEXEC) < 0) {
            r = -errno;
            goto fail;
        }
    }
    if ((r = -posix_spawn_file_actions_init(&fa)) < 0)
        goto fail;
    fa_init = true;
    if ((r = -posix_spawnattr_init(&attr)) < 0)
        goto fail;
    attr_init = true;

    r = -posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (r == 0 && pipefd[1] >= 0) {
        r = -posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
        if (r == 0)
            r = -posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    } else if (r == 0 && logfd >= 0) {
        r = -posix_spawn_file_actions_adddup2(&fa, logfd, 1);
        if (r == 0)
            r = -posix_spawn_file_actions_adddup2(&fa, logfd, 2);
    } else if (r == 0 && !o->inherit_stdio) {
        r = -posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        if (r == 0)
            r = -posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
    if (r == 0 && o->cwd)
        r = -posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
    /* Nothing else reaches the task: not even fds baram inherited without CLOEXEC from
     * whoever started it (one close_range in the child). */
    if (r == 0)
        r = -posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (r < 0)
        goto fail;

    sigset_t none, def;
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGQUIT);
    sigaddset(&def, SIGHUP);
    if ((r = -posix_spawnattr_setsigmask(&attr, &none)) < 0 ||
        (r = -posix_spawnattr_setsigdefault(&attr, &def)) < 0 ||
        (r = -posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                                  POSIX_SPAWN_SETSIGDEF)) < 0)
        goto fail;

    /* A try's process (pidfd) or, without pidfd, SIGCHLD watched from before the fork. */
    uv_timer_init(loop, &sp->timer);
    sp->timer.data = sp;
    sp->nopen = 1;
    sp->use_signal = !have_pidfd;
    if (sp->use_signal) {
        uv_signal_init(loop, &sp->sig);
        sp->sig.data = sp;
        sp->nopen++;
        if ((r = uv_signal_start(&sp->sig, spawn_on_sigchld, SIGCHLD)) < 0)
            goto fail_handles;
    }

    char *file_cmd = cmd_in_file ? spawn_file_cmd(o->cmd_file) : NULL;
    char *argv[] = {"/bin/sh", "-c", file_cmd ? file_cmd : (char *)o->cmd, NULL};
    r = posix_spawn(&sp->pid, "/bin/sh", &fa, &attr, argv, o->env ? o->env : spawn_empty_env);
    free(file_cmd); /* the child has its own copy, or has exec'd, by now */
    if (r != 0) {
        r = -r;
        goto fail_handles;
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    fa_init = attr_init = false;
    if (pipefd[1] >= 0) { /* the try's output comes through the pipe, masked on the loop */
        close(pipefd[1]);
        pipefd[1] = -1;
        uv_pipe_init(loop, &sp->mk->out, 0);
        sp->mk->out.data = sp;
        sp->nopen++;
        sp->out_open = true;
        sp->mk->logfd = logfd;
        logfd = -1;
        if (uv_pipe_open(&sp->mk->out, pipefd[0]) == 0) {
            pipefd[0] = -1;
            uv_read_start((uv_stream_t *)&sp->mk->out, spawn_out_alloc, spawn_out_read);
        } else {
            close(pipefd[0]); /* the try gets EPIPE; its exit is still reported */
            pipefd[0] = -1;
            spawn_out_end(sp);
        }
    }
    if (logfd >= 0)
        close(logfd);
    logfd = -1;

    if (!sp->use_signal) {
        sp->pidfd = (int)syscall(SYS_pidfd_open, sp->pid, 0);
        if (sp->pidfd < 0) {
            /* Old kernel: SIGCHLD from now on; this child may have exited before the watch
             * started, so the timer reaps once first. */
            if (errno == ENOSYS || errno == EPERM)
                have_pidfd = false; /* for good; other errors (EMFILE) only for this child */
            sp->use_signal = true;
            uv_signal_init(loop, &sp->sig);
            sp->sig.data = sp;
            sp->nopen++;
            uv_signal_start(&sp->sig, spawn_on_sigchld, SIGCHLD);
            sp->first_check = true;
            sp->timeout_ms = o->timeout_ms;
            uv_timer_start(&sp->timer, spawn_on_timer, 0, 0);
            *out = sp;
            return 0;
        } else {
            uv_poll_init(loop, &sp->poll, sp->pidfd);
            sp->poll.data = sp;
            sp->poll_open = true;
            sp->nopen++;
            uv_poll_start(&sp->poll, UV_READABLE, spawn_on_poll);
        }
    }
    if (o->timeout_ms > 0)
        uv_timer_start(&sp->timer, spawn_on_timer, (uint64_t)o->timeout_ms, 0);
    *out = sp;
    return 0;

fail_handles:
    for (int i = 0; i < 2; i++)
        if (pipefd[i] >= 0)
            close(pipefd[i]);
    if (fa_init)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_init)
        posix_spawnattr_destroy(&attr);
    if (logfd >= 0)
        close(logfd);
    sp->reported = true;
    spawn_close_all(sp);
    return r;
fail:
    for (int i = 0; i < 2; i++)
        if (pipefd[i] >= 0)
            close(pipefd[i]);
    if (fa_init)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_init)
        posix_spawnattr_destroy(&attr);
    if (logfd >= 0)
        close(logfd);
    spawn_masked_free(sp->mk);
    free(sp);
    return r;
}

void spawn_kill(struct spawn *sp)
{
    if (sp->reported || sp->report_pending) /* the group is gone; only output is awaited */
        return;
    sp->res.killed = true;
    if (sp->killing)
        return;
    spawn_start_kill(sp);
}

int spawn_kill_group(int pid)
{
    if (pid <= 1)
        return -ESRCH; /* never kill(0) or kill(-1): this process's group, or everything */
    return kill(-(pid_t)pid, SIGKILL) < 0 ? -errno : 0;
}

int spawn_pid(const struct spawn *sp)
{
    return sp->pid;
}
