/*
 * history_int.h - private to the store module: the backends' halves of a DAG's versions
 * (versions.h; versions_sqlite.c, versions_pg.c) and of retention (retention.h;
 * retention_sqlite.c, retention_pg.c). versions.c and retention.c pick one by the store's
 * backend. Each takes the backend's own connection object (store__conn) and follows the
 * contract of the public function it serves; the retention writes run inside the caller's
 * transaction.
 */
#ifndef BARAM_STORE_HISTORY_INT_H
#define BARAM_STORE_HISTORY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/retention.h"
#include "store/versions.h"

struct err;

/* Finished runs, as both backends' picks name them. */
#define HISTORY_FINISHED "state IN ('success', 'failed', 'cancelled')"

int versions_sqlite_list(void *conn, const char *dag_id, struct dag_version_rec **out, size_t *n,
                         struct err *e);
int versions_pg_list(void *conn, const char *dag_id, struct dag_version_rec **out, size_t *n,
                     struct err *e);
/* Is version hash dag_id's? 1 yes, 0 no, or a negative code with *e filled. */
int versions_sqlite_owned(void *conn, const char *dag_id, const char *hash, struct err *e);
int versions_pg_owned(void *conn, const char *dag_id, const char *hash, struct err *e);

int retention_sqlite_pick(void *conn, int64_t before_ms, bool logs_kept, int64_t after_ms,
                          const char *after_id, size_t limit, struct retention_run **out, size_t *n,
                          struct err *e);
int retention_pg_pick(void *conn, int64_t before_ms, bool logs_kept, int64_t after_ms,
                      const char *after_id, size_t limit, struct retention_run **out, size_t *n,
                      struct err *e);
int retention_sqlite_count_tis(void *conn, const struct retention_run *runs, size_t n, int64_t *tis,
                               struct err *e);
int retention_pg_count_tis(void *conn, const struct retention_run *runs, size_t n, int64_t *tis,
                           struct err *e);
/* The deletes and updates, in the caller's open transaction; each marks done the runs it
 * changed (those still finished and ended before before_ms; done false on entry). */
int retention_sqlite_delete(void *conn, struct retention_run *runs, size_t n, int64_t before_ms,
                            int64_t *tis, struct err *e);
int retention_pg_delete(void *conn, struct retention_run *runs, size_t n, int64_t before_ms,
                        int64_t *tis, struct err *e);
int retention_sqlite_logs_done(void *conn, struct retention_run *runs, size_t n, int64_t before_ms,
                               int64_t at_ms, struct err *e);
int retention_pg_logs_done(void *conn, struct retention_run *runs, size_t n, int64_t before_ms,
                           int64_t at_ms, struct err *e);
int retention_pg_lock(void *conn, bool *got, struct err *e);
void retention_pg_unlock(void *conn);

#endif
