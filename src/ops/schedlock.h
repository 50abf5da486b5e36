/*
 * schedlock.h - one scheduler per home: the daemon holds an exclusive
 * flock(2) on HOME/scheduler.lock for its whole life (the kernel drops it
 * when the process dies, even by SIGKILL, so a crash never leaves a stale
 * lock). The CLI asks whether a scheduler is alive to decide between
 * handing a request over (`runs cancel`) and doing it itself, and to tell
 * the user when a queued run will wait for `baram standalone`.
 *
 * Any thread. The fd is the caller's to keep open while it holds the lock.
 */
#ifndef BARAM_OPS_SCHEDLOCK_H
#define BARAM_OPS_SCHEDLOCK_H

#include <stdbool.h>

#include "base/compiler.h"

struct err;

/* Takes the lock of the home (created when missing, mode 0600). 0 and *fd, -EBUSY when
 * another process holds it (*e says which pid, when known), or another negative errno with
 * *e filled. */
int schedlock_take(const char *home_dir, int *fd, struct err *e) WARN_UNUSED;
/* Releases the lock (closes fd). */
void schedlock_drop(int fd);
/* Rings the scheduler's doorbell: touches HOME/scheduler.wake, which a running scheduler
 * watches (inotify), so it reads the store at once after a request (a trigger, a cancel, a
 * pause) instead of at its next periodic look. Harmless when no scheduler runs. */
void schedlock_ring(const char *home_dir);
/* The doorbell's path, malloc'd. */
char *schedlock_wake_path(const char *home_dir);
/* Whether another process holds the home's lock (a scheduler is running). */
bool schedlock_held(const char *home_dir);

#endif
