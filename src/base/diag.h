/*
 * diag.h - diagnostics about user input (DAG files, config, flags): checkers
 * add entries and keep going, so one pass reports every problem; the caller
 * prints them, GCC-style: FILE:LINE:COL: error: MESSAGE (SPEC section 2).
 *
 * Lines and columns are 1-based here (dagfile.c converts libyaml's 0-based
 * marks). line 0 means "no position": printed as FILE: error: MESSAGE.
 * Messages: lower case, no final period, names in single quotes; a hint is
 * printed after the message in parentheses, "(did you mean 'retries'?)".
 */
#ifndef BARAM_BASE_DIAG_H
#define BARAM_BASE_DIAG_H

#include <stddef.h>
#include <stdio.h>

#include "base/compiler.h"

enum diag_level { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE };

struct diag_entry {
    enum diag_level level;
    char *file; /* owned */
    int line, col;
    char *msg;            /* owned */
    char *hint;           /* owned, may be NULL */
    const char *src_file; /* where in baram the entry was made (for --debug) */
    int src_line;
};

struct diag {
    struct diag_entry *v; /* owned */
    size_t n, cap;
    size_t errors;
};

void diag_init(struct diag *d);
void diag_release(struct diag *d);

/* Adds an entry; returns -EINVAL so a checker can `return diag_err(...)`. */
int diag__add(struct diag *d, enum diag_level level, const char *file, int line, int col,
              const char *src_file, int src_line, const char *fmt, ...) PRINTF_LIKE(8, 9);
#define diag_err(d, file, line, col, ...)                                                          \
    diag__add((d), DIAG_ERROR, (file), (line), (col), __FILE__, __LINE__, __VA_ARGS__)
#define diag_warn(d, file, line, col, ...)                                                         \
    diag__add((d), DIAG_WARNING, (file), (line), (col), __FILE__, __LINE__, __VA_ARGS__)
/* Sets the hint of the last entry (printed as " (HINT)"); no-op without entries. */
void diag_hint(struct diag *d, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* Prints every entry, one per line. debug adds "[src_file:line]". */
void diag_print(const struct diag *d, FILE *out, int debug);
/* Formats entry e as its printed line, without newline, into a malloc'd string. */
char *diag_format(const struct diag_entry *e);
/* Entry e's message and hint, "MESSAGE (HINT)", without position or level, into a malloc'd
 * string: what a record of the problem keeps (an import error in the store). */
char *diag_message(const struct diag_entry *e);
/* "error", "warning", "note". */
const char *diag_level_name(enum diag_level l);

#endif
