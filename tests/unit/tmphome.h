/*
 * tmphome.h - a fresh home folder for each unit test that needs files: a
 * setup makes /tmp/baram-<what>-XXXXXX and the path of its database, the
 * teardown removes the folder and all it holds. Header-only (static), for
 * cmocka setup/teardown functions; one home per test executable at a time.
 */
#ifndef BARAM_TESTS_TMPHOME_H
#define BARAM_TESTS_TMPHOME_H

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static char home[PATH_MAX];
static char dbpath[PATH_MAX + 32];

static int tmphome_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* Makes the home (what names the test in its folder's name): 0, or -1 for cmocka. */
static int tmphome_make(const char *what)
{
    snprintf(home, sizeof(home), "/tmp/baram-%s-XXXXXX", what);
    if (!mkdtemp(home))
        return -1;
    snprintf(dbpath, sizeof(dbpath), "%s/baram.db", home);
    return 0;
}

static int tmphome_remove(void)
{
    nftw(home, tmphome_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

#endif
