/*
 * suggest.h - "did you mean" for misspelt keys and names: the candidate
 * closest to a word by optimal-string-alignment distance (Damerau-Levenshtein
 * with adjacent transpositions), if it is close enough to be a likely typo.
 */
#ifndef BARAM_BASE_SUGGEST_H
#define BARAM_BASE_SUGGEST_H

#include <stddef.h>

/* Edit distance between a and b, stopping early once it exceeds limit (returns limit + 1). */
size_t suggest_distance(const char *a, const char *b, size_t limit);
/* The best candidate within max(1, strlen(word) / 3) edits (2 at least for words of 5+), or
 * NULL. Borrowed pointer into cands. */
const char *suggest_closest(const char *word, const char *const *cands, size_t n);

#endif
