/*
 * migrate.c - what the backends' migrations share (migrate.h): the newest
 * number of a table of steps. Each backend applies its own steps with its
 * own locking (migrate_sqlite.c). Any thread.
 */
#include "store/migrate.h"

int migrate_latest(const struct migrate_step *steps, size_t n)
{
    int latest = 0;
    for (size_t i = 0; i < n; i++)
        if (steps[i].number > latest)
            latest = steps[i].number;
    return latest;
}
