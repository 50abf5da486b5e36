/*
 * logserve.h - a worker's log server (SPEC section 12): while a try runs, its
 * log lives on the worker's disk, and `baram logs`, the API and the UI read it
 * from here over HTTP.
 *
 *   GET /logs/<run_id>/<task_id>/<try>[?offset=N]
 *       200 text/plain: the bytes of the try's log file from offset N (0 by
 *       default) to its end as it is now (empty when N is past the end);
 *       400 a bad id, try or offset; 401 no valid token; 403 a token without a
 *       role; 404 no log of that try here; 405 another method.
 *
 * task_id is "name" or "name[N]" (a mapped instance). The file is looked up
 * under HOME/logs only, with the paths of sched/logpath.h built from the
 * decoded, checked ids (never from the URL's text): HOME/logs/<dag>/<run_id>/...
 * for each DAG folder of the home (run ids are unique in a store, so at most
 * one folder holds the run).
 *
 * Every request needs "Authorization: Bearer TOKEN": a token the home's keys
 * verify (api/auth.h, as the API checks it), with the role viewer or more,
 * and, when a store is given, not revoked (api/revoke.h).
 *
 * Threads: libmicrohttpd's own (one polling thread); nothing here touches the
 * caller's loop. logserve_start and logserve_stop are called by one thread.
 */
#ifndef BARAM_WORKER_LOGSERVE_H
#define BARAM_WORKER_LOGSERVE_H

#include "base/compiler.h"

struct auth;
struct err;
struct logserve;

struct logserve_opts {
    const char *listen;    /* "host:port" ("0.0.0.0:8081", "127.0.0.1:0"...) */
    const char *home;      /* the worker's home: logs are read under HOME/logs */
    struct auth *auth;     /* borrowed until logserve_stop returns */
    const char *store_url; /* for revoked tokens; NULL: revocations are not checked */
    const char *url_host;  /* host named in logserve_url; NULL: the listen host, or this
                            * machine's name when that is a wildcard (0.0.0.0, ::) */
};

/* Starts serving. 0 and *out, or a negative code with *e filled (bad address, port taken). */
int logserve_start(const struct logserve_opts *o, struct logserve **out, struct err *e) WARN_UNUSED;
/* Stops accepting, ends the connections, joins the thread, frees ls (NULL: nothing). */
void logserve_stop(struct logserve *ls);
/* "http://HOST:PORT" with the port actually bound: the worker's log_url. Owned by ls. */
const char *logserve_url(const struct logserve *ls);
/* The port bound (for listen "HOST:0"). */
int logserve_port(const struct logserve *ls);

#endif
