/*
 * logprep.h - making a task's first log file ahead of its start, on
 * libuv's thread pool, so that the loop does not pay for it on the critical
 * path: on a journalled disk a file creation adds to the journal that the
 * next store commit's fsync flushes. The run folder itself is made when the run
 * starts (logpath.h: no folder per task). The run engine
 * prepares a task while its last upstream runs (or while it waits for a
 * slot) and removes what it prepared if the task never runs.
 *
 * Both operations are idempotent, so the loop may do the same work inline
 * at any time (a task that starts before its preparation is done).
 *
 * Loop thread: logprep_create and logprep_remove are called, and the done
 * callback runs, on the loop's thread; the file system work runs on a pool
 * thread. Paths are copied.
 */
#ifndef BARAM_SCHED_LOGPREP_H
#define BARAM_SCHED_LOGPREP_H

#include <stdbool.h>

struct uv_loop_s;

/* rc: 0, or a negative errno from open. */
typedef void (*logprep_done_fn)(void *ud, int rc);

/* Queues: create file (empty, 0644, kept if it exists) in its existing folder. */
void logprep_create(struct uv_loop_s *loop, const char *file, logprep_done_fn done, void *ud);
/* Queues: remove file if it is empty. No callback. */
void logprep_remove(struct uv_loop_s *loop, const char *file);
/* True when path is on a memory file system (tmpfs, ramfs), where making a folder and a file
 * costs microseconds, less than a round trip through the thread pool: preparing ahead only
 * pays on a disk. Any thread. */
bool logprep_is_memory_fs(const char *path);
/* mkdir -p path (0755), synchronously: 0 or a negative errno. Any thread. */
int logprep_mkdirs(const char *path);

#endif
