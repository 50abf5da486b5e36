/*
 * mask.h - streaming replacement of secret values in a try's log: every
 * occurrence of any of a set of byte strings is written as "***" (SPEC
 * section 13), whatever the boundaries of the writes that carry it.
 *
 * Matching is leftmost-longest and non-overlapping, the same as replacing in
 * the whole text at once (scan left to right; at each position the longest
 * value that starts there is replaced and the scan goes on after it). To do
 * that on a stream, the matcher holds back at most max_len - 1 bytes that
 * could be the start of a value, and mask_flush writes them at the end.
 *
 * Values shorter than MASK_MIN_LEN bytes are not masked: a one- or two-byte
 * secret would turn every such byte of a log into "***" and tell a reader
 * the secret anyway. Bytes are bytes: NULs and invalid UTF-8 are matched as
 * any other.
 *
 * A struct mask is used by one thread at a time.
 */
#ifndef BARAM_EXEC_MASK_H
#define BARAM_EXEC_MASK_H

#include <stdbool.h>
#include <stddef.h>

#include "base/compiler.h"

struct buf;

#define MASK_MIN_LEN     3
#define MASK_REPLACEMENT "***"

struct mask_pat {
    char *p; /* owned */
    size_t len;
};

struct mask {
    struct mask_pat *pats; /* owned, longest first */
    size_t npats;
    size_t max_len;
    bool first[256]; /* bytes a value starts with */
    char *held;      /* owned, max_len bytes: the tail that may start a value */
    size_t nheld;
};

/* Builds a matcher for the n values vals[i] of lens[i] bytes (copied; those shorter than
 * MASK_MIN_LEN and duplicates are skipped). mask_empty tells whether any value is left. */
void mask_init(struct mask *m, const char *const *vals, const size_t *lens, size_t n);
bool mask_empty(const struct mask *m);
void mask_release(struct mask *m);

/* Appends the masked form of data[0..n) to out, holding back what may start a value: 0 or
 * ERR_TOO_BIG (out's max; what was held stays held). */
int mask_feed(struct mask *m, const char *data, size_t n, struct buf *out) WARN_UNUSED;
/* End of the stream: appends what is held, masked. 0 or ERR_TOO_BIG. */
int mask_flush(struct mask *m, struct buf *out) WARN_UNUSED;

/* The whole text at once (tests, short lines): a malloc'd, NUL-terminated copy of s[0..n)
 * with every value masked, its length in *outlen (may be NULL). */
char *mask_string(struct mask *m, const char *s, size_t n, size_t *outlen);

#endif
