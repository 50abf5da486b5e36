/*
 * versions.h - a DAG's versions as `baram dags versions` and GET
 * /api/v1/dags/{dag}/versions show them (SPEC section 13): one JSON shape
 * for both, built from the store (store/versions.h).
 *
 *   {"dag_id": D, "current": HASH or null,
 *    "versions": [{"hash", "current", "created_at", "first_run_at", "runs"}]}
 *
 * newest first (by when the version was first seen: the scheduler records a
 * DAG file's version as soon as it loads it, a run the version it starts
 * with). "current" is the version the scheduler has loaded now.
 *
 * Any thread, one store per thread (store.h).
 */
#ifndef BARAM_OPS_VERSIONS_H
#define BARAM_OPS_VERSIONS_H

#include <stdbool.h>

#include <jansson.h>

#include "base/compiler.h"

struct err;
struct store;

/* The versions of dag_id: 0 and *out (the caller json_decref()s it); -ENOENT (e filled: "no
 * DAG ...", with a did-you-mean among the store's DAGs) when the store knows no such DAG and
 * no version of it; or a negative code with *e filled (the store failed). */
int ops_dag_versions(struct store *s, const char *dag_id, json_t **out, struct err *e) WARN_UNUSED;

/* Is s a well-formed version hash (hex, 1 to 128 characters)? A route or command checks it
 * before asking the store. */
bool ops_version_hash_ok(const char *s);

#endif
