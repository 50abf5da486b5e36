/*
 * versions.h - a DAG's versions as the store keeps them (dag_versions: one
 * row per hash of a DAG file's source, first recorded when the scheduler
 * loads the file or a run starts with it), listed for `baram dags versions`
 * and GET /api/v1/dags/{dag}/versions (SPEC section 13).
 *
 * Any thread that may block, one at a time per store (store.h).
 */
#ifndef BARAM_STORE_VERSIONS_H
#define BARAM_STORE_VERSIONS_H

#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

struct err;
struct store;

struct dag_version_rec {
    char *hash;            /* owned */
    int64_t created_at_ms; /* when first recorded (first seen) */
    int64_t first_run_ms;  /* the earliest queue time of its runs; -1: no run */
    int64_t runs;          /* runs that started with it */
};

/* Every version of dag_id, newest first (by first seen, then hash). 0 and *out (malloc'd, n
 * entries; NULL when none), or a negative code with *e filled. */
int store_list_dag_versions(struct store *s, const char *dag_id, struct dag_version_rec **out,
                            size_t *n, struct err *e) WARN_UNUSED;
void store_free_dag_versions(struct dag_version_rec *v, size_t n);

/* The source of version hash of dag_id: 0 and *source (malloc'd, NUL-terminated, *len bytes),
 * -ENOENT when no such version is stored for that DAG (unknown, or another DAG's), or a
 * negative code with *e filled. */
int store_get_dag_version_of(struct store *s, const char *dag_id, const char *hash, char **source,
                             size_t *len, struct err *e) WARN_UNUSED;

#endif
