/*
 * logpath.c - the paths of a run's logs, command files and outputs; see
 * logpath.h for the layout. Paths are built with struct buf and handed over
 * (buf_detach); the scratch folder is checked with lstat after mkdir, so a
 * symlink or a folder someone else planted at its path is refused, never
 * followed. Any thread.
 */
#include "sched/logpath.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "sched/logprep.h"

/* Appends a DAG or task id as one path component: an id made only of dots ("." or "..")
 * becomes "%2E" per dot, so no id can name a folder outside its place. */
static void logpath_add_component(struct buf *b, const char *id)
{
    if (id[strspn(id, ".")] != 0) {
        (void)!buf_adds(b, id);
        return;
    }
    for (const char *p = id; *p; p++)
        (void)!buf_adds(b, "%2E");
}

char *logpath_run_dir(const char *home, const char *dag_id, const char *run_id)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    if (home[0] != '/') {
        char *cwd = getcwd(NULL, 0);
        (void)!buf_addf(&b, "%s/", cwd ? cwd : ".");
        free(cwd);
    }
    (void)!buf_addf(&b, "%s/logs/", home);
    logpath_add_component(&b, dag_id);
    (void)!buf_addc(&b, '/');
    logpath_add_component(&b, run_id);
    return buf_detach(&b, NULL);
}

/* <run_dir>/<task>[.<map_index>] */
static void logpath_add_inst(struct buf *b, const char *run_dir, const char *task, int map_index)
{
    (void)!buf_addf(b, "%s/", run_dir);
    logpath_add_component(b, task);
    if (map_index >= 0)
        (void)!buf_addf(b, ".%d", map_index);
}

char *logpath_try(const char *run_dir, const char *task, int map_index, int try_number,
                  const char *ext)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    logpath_add_inst(&b, run_dir, task, map_index);
    (void)!buf_addf(&b, ".%d.%s", try_number, ext);
    return buf_detach(&b, NULL);
}

char *logpath_task_output(const char *run_dir, const char *task)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    logpath_add_inst(&b, run_dir, task, -1);
    (void)!buf_adds(&b, ".out");
    return buf_detach(&b, NULL);
}

char *logpath_hook(const char *run_dir, const char *hook, const char *ext)
{
    return xasprintf("%s/%s.%s", run_dir, hook, ext);
}

char *logpath_find_log(const char *home, const char *dag_id, const char *run_id, const char *task,
                       int map_index, int try_number)
{
    char *dir = logpath_run_dir(home, dag_id, run_id);
    char *flat = logpath_try(dir, task, map_index, try_number, "log");
    if (access(flat, F_OK) == 0) {
        free(dir);
        return flat;
    }
    struct buf b = BUF_INIT(BUF_NO_MAX);
    logpath_add_inst(&b, dir, task, map_index);
    (void)!buf_addf(&b, "/%d.log", try_number);
    free(dir);
    char *old = buf_detach(&b, NULL);
    if (access(old, F_OK) == 0) {
        free(flat);
        return old;
    }
    free(old);
    return flat;
}

/* mkdir path 0700 unless it exists, then check that it is a folder of ours that no one
 * else may enter: 0, or -EPERM (a symlink, another kind of file, another owner, or open to
 * others), or a negative errno from mkdir or lstat. */
static int logpath_own_dir(const char *path)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (lstat(path, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0)
        return -EPERM;
    return 0;
}

/* FNV-1a, 64 bits: names a home or a run in the scratch folder. Not for security: the
 * folder is private to the user. */
static uint64_t logpath_hash(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

#define LOGPATH_HASH_SEED 0xcbf29ce484222325ULL

int logpath_scratch_dir(const char *root, const char *home, char **dir)
{
    *dir = NULL;
    if (!logprep_is_memory_fs(root))
        return -ENOTSUP;
    char *user = xasprintf("%s/baram-%lu", root, (unsigned long)geteuid());
    int rc = logpath_own_dir(user);
    if (rc < 0) {
        free(user);
        return rc;
    }
    char *real = realpath(home, NULL);
    uint64_t h = logpath_hash(LOGPATH_HASH_SEED, real ? real : home);
    free(real);
    char *path = xasprintf("%s/%016llx", user, (unsigned long long)h);
    free(user);
    rc = logpath_own_dir(path);
    if (rc < 0) {
        free(path);
        return rc;
    }
    *dir = path;
    return 0;
}

char *logpath_scratch_output(const char *scratch, const char *dag_id, const char *run_id,
                             const char *task, int map_index, int try_number)
{
    uint64_t h = logpath_hash(logpath_hash(LOGPATH_HASH_SEED, dag_id), "/");
    h = logpath_hash(logpath_hash(h, run_id), "/");
    h = logpath_hash(h, task);
    if (map_index >= 0) {
        char idx[24]; /* "[" INT_MAX "]": brackets are in no task name */
        (void)snprintf(idx, sizeof idx, "[%d]", map_index);
        h = logpath_hash(h, idx);
    }
    return xasprintf("%s/%016llx.%d.output", scratch, (unsigned long long)h, try_number);
}
