/*
 * schedlock.c - the scheduler's lock file (see schedlock.h). The holder
 * writes its pid into the file so a refused second daemon can say who runs.
 */
#include "ops/schedlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/xalloc.h"

static char *schedlock_path(const char *home_dir)
{
    size_t n = strlen(home_dir) + sizeof("/scheduler.lock");
    char *p = xmalloc(n);
    snprintf(p, n, "%s/scheduler.lock", home_dir);
    return p;
}

int schedlock_take(const char *home_dir, int *fd, struct err *e)
{
    char *path = schedlock_path(home_dir);
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f < 0) {
        int no = errno;
        (void)err_set(e, -no, "cannot open '%s': %s", path, strerror(no));
        free(path);
        return -no;
    }
    if (flock(f, LOCK_EX | LOCK_NB) < 0) {
        int no = errno;
        char pid[32] = "";
        ssize_t k = pread(f, pid, sizeof(pid) - 1, 0);
        if (k > 0) {
            pid[k] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
        }
        close(f);
        if (no == EWOULDBLOCK) {
            (void)err_set(e, -EBUSY,
                          "a scheduler is already running on this home%s%s%s ('%s' is locked)",
                          *pid ? " (pid " : "", pid, *pid ? ")" : "", path);
            free(path);
            return -EBUSY;
        }
        (void)err_set(e, -no, "cannot lock '%s': %s", path, strerror(no));
        free(path);
        return -no;
    }
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(f, 0) < 0 || pwrite(f, buf, (size_t)len, 0) != len) {
        /* the pid is only informative */
    }
    free(path);
    *fd = f;
    return 0;
}

void schedlock_drop(int fd)
{
    if (fd >= 0)
        close(fd);
}

bool schedlock_held(const char *home_dir)
{
    char *path = schedlock_path(home_dir);
    int f = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (f < 0)
        return false;
    bool held = flock(f, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    close(f);
    return held;
}

char *schedlock_wake_path(const char *home_dir)
{
    return xasprintf("%s/scheduler.wake", home_dir);
}

void schedlock_ring(const char *home_dir)
{
    char *path = schedlock_wake_path(home_dir);
    if (utimensat(AT_FDCWD, path, NULL, 0) < 0) {
        /* no scheduler has made it: nobody to wake */
    }
    free(path);
}
