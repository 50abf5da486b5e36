/*
 * logpath.h - where a run's files live: every path of a try's log, its
 * command file, its output and an upstream's output passed by file is built
 * here, so the scheduler, `baram logs` and the API agree on one layout.
 *
 * The layout (SPEC section 4, the flat form): one folder per run,
 * HOME/logs/<dag>/<run_id>/, holding
 *   <task>.<try>.log     a try's stdout and stderr (mapped: <task>.<index>.<try>.log)
 *   <task>.<try>.sh      the command of a try too long for exec (same naming)
 *   <task>.<try>.output  a try's $BARAM_OUTPUT when there is no scratch folder
 *   <task>.out           an upstream's output passed to downstreams by file
 *   on_success.log, on_success.sh (and on_failure.*)  the DAG's hooks
 * One file per try and no folder per task instance: on a journalled disk each
 * new inode makes the next group commit's fsync slower. Task names are
 * [A-Za-z0-9_.-]; a name's last dotted part is never all digits in two ways
 * at once, so only "<mapped task>.<N>" can collide (dag.c refuses it).
 * Homes made by an earlier baram have <task>[.<index>]/<try>.log: readers
 * fall back to it (logpath_find_log).
 *
 * A try's $BARAM_OUTPUT goes to a scratch folder on a memory file system when
 * there is one, /dev/shm/baram-<uid>/<hash of the home>/, removed once read.
 * Each engine using it keeps a mark there (.engine-<pid>-<n>) and removes the
 * folder, when empty, as it stops (engine.c).
 *
 * Every function returns a malloc'd string (the caller frees it) and may be
 * called from any thread; none keeps state.
 */
#ifndef BARAM_SCHED_LOGPATH_H
#define BARAM_SCHED_LOGPATH_H

#include <stdint.h>

/* HOME/logs/<dag>/<run_id>, absolute (a relative home is taken from the cwd). An id made
 * only of dots ("." or "..") is written as "%2E" per dot, so no id leaves its folder. */
char *logpath_run_dir(const char *home, const char *dag_id, const char *run_id);

/* <run_dir>/<task>[.<map_index>].<try>.<ext>: ext "log", "sh" or "output". map_index < 0
 * for an unmapped task. */
char *logpath_try(const char *run_dir, const char *task, int map_index, int try_number,
                  const char *ext);

/* <run_dir>/<task>.out: a complete upstream's output (or a mapped task's array of outputs)
 * written once for downstreams whose variable it would not fit. */
char *logpath_task_output(const char *run_dir, const char *task);

/* <run_dir>/<hook>.<ext>: the log ("log") or command file ("sh") of hook "on_success" or
 * "on_failure". */
char *logpath_hook(const char *run_dir, const char *hook, const char *ext);

/* The log of a try for a reader: the flat path when it exists or when the old one does not
 * (a try not started yet writes there), else <task>[.<index>]/<try>.log of a home made by
 * an earlier baram. */
char *logpath_find_log(const char *home, const char *dag_id, const char *run_id, const char *task,
                       int map_index, int try_number);

/* Makes (0700) and checks the scratch folder of home: root/baram-<euid>/<hash of home>,
 * where root is a memory file system (tmpfs or ramfs; normally "/dev/shm"). Each level must
 * be a real folder (not a symlink), owned by this user and closed to others; otherwise it is
 * refused. 0 with *dir (malloc'd), or a negative errno: -ENOTSUP when root is not a memory
 * file system, -EPERM when a level is not ours or not safe, others from mkdir. */
int logpath_scratch_dir(const char *root, const char *home, char **dir);

/* <scratch>/<hash of dag, run id, task and map index>.<try>.output: a try's $BARAM_OUTPUT in
 * the scratch folder, unique to the home, run, task instance (by its identity, not its place
 * in the run, which a resumed run may order otherwise) and try. map_index < 0 for an
 * unmapped task. */
char *logpath_scratch_output(const char *scratch, const char *dag_id, const char *run_id,
                             const char *task, int map_index, int try_number);

#endif
