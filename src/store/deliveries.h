/*
 * deliveries.h - notify: the store's record of hook notifications (table
 * `deliveries`, SPEC section 13): one row per message a hook sent or tried
 * to send to a notifier, rewritten after each attempt, and the mark that a
 * run's deadline fired (hook 'deadline'). Written by the scheduler through
 * its store writer (store_writer_put_delivery, store.h); read by the API.
 * Both backends, the same rows. Threads: those of the store used.
 */
#ifndef BARAM_STORE_DELIVERIES_H
#define BARAM_STORE_DELIVERIES_H

#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

struct store;
struct err;

struct delivery_rec {
    char *id; /* run_id, task, try, hook, notifier joined by '/' (delivery_id) */
    char *run_id;
    char *task_id;  /* NULL for a DAG's hook */
    int try_number; /* 0 when not about a try */
    char *hook;     /* on_success, on_failure, on_retry, deadline */
    char *notifier; /* the notifier's name; "run" for a deadline's command */
    int attempts;
    char *state; /* pending, sent, failed */
    long status; /* the last HTTP status or SMTP reply code; 0: none */
    char *error; /* the last attempt's failure, or NULL */
    int64_t created_at_ms, updated_at_ms;
};

/* The id of r (malloc'd) from its run, task, try, hook and notifier. */
char *delivery_id(const struct delivery_rec *r);
void delivery_rec_release(struct delivery_rec *r);
void delivery_rec_copy(struct delivery_rec *dst, const struct delivery_rec *src);
void deliveries_free(struct delivery_rec *v, size_t n);

/* Inserts or replaces the row of r->id. 0, or a negative code with *e filled. */
int store_put_delivery(struct store *s, const struct delivery_rec *r, struct err *e) WARN_UNUSED;
/* The run's deliveries, oldest first (*out malloc'd, *n rows). 0, or a negative code. */
int store_list_deliveries(struct store *s, const char *run_id, struct delivery_rec **out, size_t *n,
                          struct err *e) WARN_UNUSED;

#endif
