/*
 * audit.h - the audit log's rows in the store (migrations 0010_audit.sql on
 * SQLite, 0014_audit.sql on PostgreSQL): one row per state-changing command
 * or API call. ops/audit.h builds and records them; this file only reads
 * and writes rows, with the SQL of both backends in audit.c.
 *
 * Any thread, one store per thread (store.h). A put runs in the caller's
 * open transaction when there is one, so the row commits with the change.
 */
#ifndef BARAM_STORE_AUDIT_H
#define BARAM_STORE_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"
#include "base/err.h"

struct store;

struct audit_rec {
    int64_t id;                      /* assigned by the store on put */
    int64_t at_ms;                   /* UTC */
    char *user;                      /* an API user's name, or "cli:<unix user>" */
    char *source;                    /* "cli" or "api" */
    char *action;                    /* "trigger", "mark", "clear", ... */
    char *dag_id, *run_id, *task_id; /* the target, each may be NULL */
    char *details;                   /* a JSON object's text, or NULL */
};

void audit_rec_release(struct audit_rec *a);
void store_audit_free(struct audit_rec *v, size_t n);

/* Appends a row (a->id is ignored). 0, or ERR_DB with e. */
int store_audit_put(struct store *s, const struct audit_rec *a, struct err *e) WARN_UNUSED;

/* The newest rows first, at most limit, of dag_id and user when not NULL, with ids below
 * before_id when > 0. 0 and *out (store_audit_free), or ERR_DB with e. */
int store_audit_list(struct store *s, const char *dag_id, const char *user, int64_t before_id,
                     int64_t limit, struct audit_rec **out, size_t *n, struct err *e) WARN_UNUSED;

#endif
