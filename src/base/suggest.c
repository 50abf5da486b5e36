/*
 * suggest.c - nearest-name suggestions by edit distance; see suggest.h.
 * O(len(a) * len(b)) per pair with two rows of scratch; any thread.
 */
#include "base/suggest.h"

#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

size_t suggest_distance(const char *a, const char *b, size_t limit)
{
    size_t la = strlen(a), lb = strlen(b);
    if ((la > lb ? la - lb : lb - la) > limit)
        return limit + 1;
    if (la > 256 || lb > 256)
        return limit + 1;
    size_t *prev2 = xcalloc(lb + 1, sizeof(size_t));
    size_t *prev = xcalloc(lb + 1, sizeof(size_t));
    size_t *cur = xcalloc(lb + 1, sizeof(size_t));
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    size_t result;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        size_t rowmin = cur[0];
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t v = prev[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (prev[j - 1] + cost < v)
                v = prev[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < v)
                v = prev2[j - 2] + 1;
            cur[j] = v;
            if (v < rowmin)
                rowmin = v;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
        if (rowmin > limit) {
            result = limit + 1;
            goto out;
        }
    }
    result = prev[lb] > limit ? limit + 1 : prev[lb];
out:
    free(prev2);
    free(prev);
    free(cur);
    return result;
}

const char *suggest_closest(const char *word, const char *const *cands, size_t n)
{
    size_t len = strlen(word);
    size_t limit = len / 3;
    if (limit < 1)
        limit = 1;
    if (len >= 5 && limit < 2)
        limit = 2;
    const char *best = NULL;
    size_t bestd = limit + 1;
    for (size_t i = 0; i < n; i++) {
        size_t d = suggest_distance(word, cands[i], limit);
        if (d < bestd && d > 0) {
            best = cands[i];
            bestd = d;
        }
    }
    return best;
}
