/*
 * pg_int.h - private to the store module: the PostgreSQL backend
 * (store_pg.c, events_pg.c, migrate_pg.c) and its libpq helpers (pg_conn.c).
 *
 * libpq is not linked: lazy_pq.c defines the libpq functions baram uses and
 * opens the library on first use, so any file here may call libpq's
 * documented API (#include <libpq-fe.h>) as usual. A function it lacks is one
 * line in lazy_pq.c's list.
 *
 * A database is named by a libpq URI, postgresql://... or postgres://...
 * Such a URL may hold a password: it is never printed. Messages name the
 * database as "PostgreSQL at HOST/DB" (pg__where).
 *
 * A connection (PGconn) is used by one thread at a time. Any thread.
 */
#ifndef BARAM_STORE_PG_INT_H
#define BARAM_STORE_PG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "base/compiler.h"
#include "store/store_int.h"

struct err;

/* ---- pg_conn.c: connecting, errors, small exec helpers ---- */

/* Room for "PostgreSQL at HOST:PORT/DB" (pg__where). */
#define PG_WHERE_MAX 512

/* Connects to url (a postgresql:// or postgres:// URI) in blocking mode, adding what the URL
 * leaves unset: connect_timeout=5 (a blackholed host fails in about 5 s, never hangs), TCP
 * keepalives (idle 5 s, every 2 s, 3 probes: a dead server is noticed in about 11 s),
 * application_name baram, client_encoding UTF8, and a quiet notice processor. 0 and *out (the
 * caller PQfinish()es it), or ERR_DB with *e naming host and database (never the password): a
 * URL libpq refuses, an unreachable server, a missing database, refused credentials, or libpq
 * not installed. */
int pg__connect(const char *url, PGconn **out, struct err *e) WARN_UNUSED;
/* Bounds the connections opened from now on by dead_after (store_set_dead_after):
 * idle_in_transaction_session_timeout dead_after/4, lock_timeout and tcp_user_timeout
 * dead_after/2 (within fixed limits). Call before any connection is opened. */
void pg__set_limits(int64_t dead_after_ms);

/* "PostgreSQL at HOST[:PORT]/DB" for url into buf (n >= 1), the password left out; a socket
 * folder stands for HOST. For a URL libpq cannot parse: "PostgreSQL (an invalid URL)". */
void pg__where(const char *url, char *buf, size_t n);

/* Fills e with "what: <the server's message>" (from r when it carries an error, else from c)
 * and returns ERR_DB; or, when the connection is gone (PQstatus bad), fills e with "what: the
 * connection to PostgreSQL was lost (...)" and returns -ECONNRESET. r may be NULL; e may be
 * NULL. Does not PQclear r. */
int pg__fail(PGconn *c, const PGresult *r, const char *what, struct err *e);

/* r's SQLSTATE (five characters, e.g. "23505") or "" when r is NULL or carries none. */
const char *pg__sqlstate(const PGresult *r);

/* Runs sql (one or more statements without parameters, no rows wanted). 0, or pg__fail's code
 * with e saying "cannot <what>: ...". */
int pg__exec(PGconn *c, const char *sql, const char *what, struct err *e) WARN_UNUSED;

/* After a failed load of libpq: why ("cannot load libpq.so.5: ..."); NULL when it loaded. */
const char *pg__lib_error(void);

/* ---- queue.c: array parameters and statements (queue.c, wq.c) ---- */

struct buf;
/* Append an element to a PostgreSQL array literal in b (no maximum: cannot fail): a string
 * always quoted and escaped (NULL: the element NULL), a number, a boolean. */
void pg__arr_str(struct buf *b, const char *s);
void pg__arr_int(struct buf *b, int64_t v);
void pg__arr_bool(struct buf *b, bool v);
/* Closes the array begun in b ("{}" when empty) and returns its text (b's). */
const char *pg__arr_end(struct buf *b);
/* Runs sql with n text params; PGRES_COMMAND_OK or PGRES_TUPLES_OK gives the result in *out
 * (or cleared when out is NULL). 0, or pg__fail's code with *e filled ("what: ..."). */
int pg__exec_params(PGconn *c, const char *sql, int n, const char *const *params, const char *what,
                    PGresult **out, struct err *e) WARN_UNUSED;

/* ---- store_pg.c: the backend ---- */

extern const struct store_backend store__pg_backend;

/* Connects to url and migrates the database (migrate_pg). 0 and *db (a connection object of
 * store_pg.c, released by store__pg_backend.close), or a negative code with *e filled. */
int store__pg_open(const char *url, void **db, struct err *e) WARN_UNUSED;
/* The same, but -ENOENT (e filled) when the database holds no baram store yet (no
 * schema_migrations table): nothing is created. */
int store__pg_open_existing(const char *url, void **db, struct err *e) WARN_UNUSED;

/* The libpq handle of a connection object of store_pg.c, ready for a direct query: the writes
 * pipelined by an open transaction are sent and their results collected first (a failure
 * among them is kept and reported by the commit). NULL for NULL. A caller may run queries in
 * the connection's open transaction; it must not begin, commit or roll back itself. */
PGconn *store__pg(void *conn);

/* Tests and measurements: whether conn pipelines a transaction's writes (on by default). */
void store__pg_set_pipelining(void *conn, bool on);

/* "PostgreSQL at HOST/DB" of a connection object, for messages. */
const char *store__pg_where(void *conn);

/* ---- store_pg_nodes.c: the registry, run ownership, the fence (store_backend's entries) ---- */

int pg_node_register(void *db, const struct node_rec *n, int64_t *id, struct err *e);
int pg_node_heartbeat(void *db, int64_t id, bool *alive, struct err *e);
int pg_node_stop(void *db, int64_t id, struct err *e);
int pg_list_nodes(void *db, struct node_rec **out, size_t *n, struct err *e);
int pg_reap_nodes(void *db, int64_t dead_after_ms, size_t *reaped, struct err *e);
int pg_live_schedulers(void *db, int64_t fresh_ms, const char *host, const char *home, int64_t *n,
                       struct err *e);
int pg_lost_scheduler(void *db, const char *run_id, char **name, struct err *e);
int pg_unserved_tis(void *db, const char *run_id, struct ti_unserved **out, size_t *n,
                    struct err *e);
int pg_claim_runs(void *db, int64_t id, int limit, size_t *claimed, struct err *e);
int pg_take_run(void *db, int64_t id, const char *run_id, bool *taken, struct err *e);
int pg_fence(void *db, int64_t id, struct err *e);

/* ---- migrate_pg.c ---- */

/* Applies every pending PostgreSQL migration (migrate.h) to c under a session advisory lock,
 * each in its own transaction with its row in schema_migrations; refuses a database recording
 * a number this baram does not know. 0, or a negative code with *e filled; where names the
 * database in messages. */
int migrate_pg(PGconn *c, const char *where, struct err *e) WARN_UNUSED;

/* ---- events_pg.c: the event log's entries of store__pg_backend, wake-ups, health ---- */

int events_pg_w_open(void *conn, void **w, struct err *e);
void events_pg_w_close(void *w);
int events_pg_w_put(void *w, enum event_kind kind, const char *dag_id, const char *run_id,
                    const char *task_id, const char *state, int try_number, int64_t at_ms,
                    struct err *e);
int events_pg_w_flush(void *w, struct err *e);
int events_pg_w_prune(void *w, int64_t keep, struct err *e);
int events_pg_list(void *conn, int64_t after_id, const char *dag_id, const char *run_id,
                   size_t limit, struct event_rec **out, size_t *n, struct err *e);
int events_pg_last_id(void *conn, int64_t *id, struct err *e);
int events_pg_count_tis(void *conn, int64_t counts[TI_STATE_COUNT], struct err *e);
int events_pg_count_runs(void *conn, int64_t counts[RUN_STATE_COUNT], struct err *e);
/* One event in the connection's open transaction (or its own): for store_pg.c's claim_run
 * as for events_put. */
int events_pg_put(void *conn, enum event_kind kind, const char *dag_id, const char *run_id,
                  const char *task_id, const char *state, int try_number, int64_t at_ms,
                  struct err *e);
int events_pg_notify(void *conn, const char *channel, struct err *e);
int events_pg_ping(void *conn, struct err *e);

#endif
