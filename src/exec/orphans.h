/*
 * orphans.h - the tries a dead scheduler left behind. Each try runs in a
 * session (and process group) of its own, so it outlives the baram process
 * that started it; the scheduler that takes the run over finds those tries
 * and kills their whole group before running them again, so no task runs
 * twice at once:
 *  - by pid: the try's start was recorded (the pid is in the store);
 *  - by tags: the start was never recorded: Linux's /proc is scanned.
 * Either way a process is taken for a try only when it still leads its own
 * session and its environment (/proc/<pid>/environ, as it was when the
 * process last exec'd) holds every tag of the run: each try carries its
 * run's identity there (run_env_tags, sched/run.h), pushed after the DAG's
 * env, which may not name BARAM_* (dag.h). A session leader
 * alone proves nothing (a systemd service, an ssh login shell, a `setsid`
 * job, a try of another run or home): a stored pid the system has since
 * given to one of them is left alone. So is a try whose command replaced
 * its environment in its session leader (`exec env -i ...`): it is not
 * found, and is left running.
 *
 * Blocking (reads /proc): call it off the loop thread (the daemon's job
 * thread). Any thread; no state.
 */
#ifndef BARAM_EXEC_ORPHANS_H
#define BARAM_EXEC_ORPHANS_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes of a process's environment looked at: the tags must be within them. */
#define ORPHANS_ENVIRON_MAX (256 * 1024)

/* A group was killed, its leader pid (for the caller's log). */
typedef void (*orphans_killed_fn)(void *ud, int pid);

/* Kills the process group pid leads when pid is still a session leader (and not this
 * process) whose environment holds each of the ntags strings "NAME=value" exactly: true
 * when the SIGKILL was sent. ntags == 0 kills nothing. */
bool orphans_kill_pid(int pid, const char *const *tags, size_t ntags);

/* Kills the group of every session leader (but this process) whose environment holds each
 * of the ntags strings "NAME=value" exactly; killed(ud, pid) is called for each (may be
 * NULL). The number of groups killed, or a negative errno when /proc cannot be read. ntags
 * == 0 kills nothing. */
int orphans_kill_tagged(const char *const *tags, size_t ntags, orphans_killed_fn killed, void *ud);

/* This machine's boot and this process's PID namespace, "BOOT_ID/PIDNS_INODE": two processes
 * with the same key see each other's pids (kill(pid, 0) speaks of the same process), whatever
 * their host names (containers with the host's network share its name, not its pids). 0 and
 * buf filled, or a negative errno when /proc cannot tell (then no pid can be judged). */
int orphans_host_key(char *buf, size_t n);

#endif
