/*
 * orphans.c - finding and killing the tries a dead scheduler left (see
 * orphans.h). The /proc scan reads at most ORPHANS_ENVIRON_MAX bytes of each
 * session leader's environment into one buffer, reused for every process;
 * processes that are not session leaders are skipped before their
 * environment is opened, so the scan costs one getsid per process.
 */
#include "exec/orphans.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "exec/spawn.h"

/* pid leads a session of its own and is not this process. */
static bool orphans_is_leader(long pid)
{
    return pid > 1 && pid != (long)getpid() && getsid((pid_t)pid) == (pid_t)pid;
}

bool orphans_kill_pid(int pid)
{
    return orphans_is_leader(pid) && spawn_kill_group(pid) == 0;
}

/* The NUL-separated environment env (n bytes, NUL-terminated) holds every tag. */
static bool orphans_has_tags(const char *env, size_t n, const char *const *tags, size_t ntags)
{
    for (size_t k = 0; k < ntags; k++) {
        bool found = false;
        for (size_t i = 0; i < n && !found; i += strlen(env + i) + 1)
            found = strcmp(env + i, tags[k]) == 0;
        if (!found)
            return false;
    }
    return true;
}

int orphans_kill_tagged(const char *const *tags, size_t ntags, orphans_killed_fn killed, void *ud)
{
    if (ntags == 0)
        return 0;
    DIR *dir = opendir("/proc");
    if (!dir)
        return -errno;
    char *buf = xmalloc(ORPHANS_ENVIRON_MAX);
    int nkilled = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || !orphans_is_leader(pid))
            continue;
        char path[64];
        snprintf(path, sizeof(path), "/proc/%ld/environ", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, ORPHANS_ENVIRON_MAX - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = 0;
        if (orphans_has_tags(buf, (size_t)n, tags, ntags) && spawn_kill_group((int)pid) == 0) {
            nkilled++;
            if (killed)
                killed(ud, (int)pid);
        }
    }
    free(buf);
    closedir(dir);
    return nkilled;
}
