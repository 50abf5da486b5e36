/*
 * logpath.c - the paths of a run's logs, command files and outputs; see
 * logpath.h for the layout. Paths are built with struct buf and handed over
 * (buf_detach). Any thread.
 */
#include "sched/logpath.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"

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
