/*
 * logprep.c - log files prepared on the thread pool; see
 * logprep.h. Each request is one heap object that the after-work callback
 * frees; a queued request keeps the loop alive until it is done, so the run
 * cannot be freed under it.
 */
#include "sched/logprep.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include <uv.h>

#include "base/xalloc.h"

struct logprep_req {
    uv_work_t work;
    char *file; /* owned */
    bool remove;
    int rc;
    logprep_done_fn done;
    void *ud;
};

int logprep_mkdirs(const char *path)
{
    /* The common case, one new folder under an existing one, is one syscall. */
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return 0;
    if (errno != ENOENT)
        return -errno;
    char *p = xstrdup(path);
    int r = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0755) < 0 && errno != EEXIST) {
                r = -errno;
                break;
            }
            *s = c;
            if (c == 0)
                break;
        }
    }
    free(p);
    return r;
}

bool logprep_is_memory_fs(const char *path)
{
    struct statfs st;
    if (statfs(path, &st) < 0)
        return false;
    return st.f_type == TMPFS_MAGIC || st.f_type == RAMFS_MAGIC;
}

static void logprep_work(uv_work_t *w)
{
    struct logprep_req *q = w->data;
    if (q->remove) {
        struct stat st;
        if (stat(q->file, &st) == 0 && st.st_size == 0)
            (void)unlink(q->file);
        return;
    }
    int fd = open(q->file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        q->rc = -errno;
    else
        close(fd);
}

static void logprep_after(uv_work_t *w, int status)
{
    struct logprep_req *q = w->data;
    if (q->done)
        q->done(q->ud, status < 0 ? status : q->rc);
    free(q->file);
    free(q);
}

static void logprep_queue(struct uv_loop_s *loop, const char *file, bool remove,
                          logprep_done_fn done, void *ud)
{
    struct logprep_req *q = xcalloc(1, sizeof(*q));
    q->work.data = q;
    q->file = xstrdup(file);
    q->remove = remove;
    q->done = done;
    q->ud = ud;
    int rc = uv_queue_work(loop, &q->work, logprep_work, logprep_after);
    if (rc < 0) {
        /* Cannot happen with a valid loop and callbacks; report it like a failed attempt so
         * the caller falls back to doing the work inline. */
        if (done)
            done(ud, rc);
        free(q->file);
        free(q);
    }
}

void logprep_create(struct uv_loop_s *loop, const char *file, logprep_done_fn done, void *ud)
{
    logprep_queue(loop, file, false, done, ud);
}

void logprep_remove(struct uv_loop_s *loop, const char *file)
{
    logprep_queue(loop, file, true, NULL, NULL);
}
