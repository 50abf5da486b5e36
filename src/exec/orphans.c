/*
 * orphans.c - finding and killing the tries a dead scheduler left (see
 * orphans.h). Both ways of finding one check the same two things: the
 * process leads its own session, and its environment (/proc/<pid>/environ,
 * at most ORPHANS_ENVIRON_MAX bytes read into the caller's buffer) holds
 * every tag of the run. The /proc scan reuses one buffer for every process;
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
#include <sys/stat.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "exec/spawn.h"

/* pid leads a session of its own and is not this process. */
static bool orphans_is_leader(long pid)
{
    return pid > 1 && pid != (long)getpid() && getsid((pid_t)pid) == (pid_t)pid;
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

/* pid leads its own session (and is not this process) and its environment holds every tag;
 * buf: ORPHANS_ENVIRON_MAX bytes of scratch. */
static bool orphans_is_try(long pid, char *buf, const char *const *tags, size_t ntags)
{
    if (ntags == 0 || !orphans_is_leader(pid))
        return false;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/environ", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, ORPHANS_ENVIRON_MAX - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    return orphans_has_tags(buf, (size_t)n, tags, ntags);
}

bool orphans_kill_pid(int pid, const char *const *tags, size_t ntags)
{
    char *buf = xmalloc(ORPHANS_ENVIRON_MAX);
    bool killed = orphans_is_try(pid, buf, tags, ntags) && spawn_kill_group(pid) == 0;
    free(buf);
    return killed;
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
        if (*end || !orphans_is_try(pid, buf, tags, ntags))
            continue;
        if (spawn_kill_group((int)pid) == 0) {
            nkilled++;
            if (killed)
                killed(ud, (int)pid);
        }
    }
    free(buf);
    closedir(dir);
    return nkilled;
}

int orphans_host_key(char *buf, size_t n)
{
    char boot[64] = "";
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (!f)
        return -errno;
    bool got = fgets(boot, sizeof boot, f) != NULL;
    fclose(f);
    boot[strcspn(boot, "\n")] = 0;
    struct stat st;
    if (!got || !boot[0])
        return -EIO;
    if (stat("/proc/self/ns/pid", &st) < 0)
        return -errno;
    int w = snprintf(buf, n, "%s/%llu", boot, (unsigned long long)st.st_ino);
    return w < 0 || (size_t)w >= n ? -ENAMETOOLONG : 0;
}
