/*
 * hmap.h - a hash map from byte-string keys to uint32_t values, open
 * addressing with linear probing (the load factor stays under 1/2), FNV-1a
 * hashes kept beside the entries so a probe compares keys only on a hash
 * match. Made for name -> dense index lookups: 16 bytes per slot.
 *
 * Keys are borrowed: the caller keeps each key's bytes alive and unchanged
 * while it is in the map (DAG task names live in the dag). Not thread-safe.
 */
#ifndef BARAM_BASE_HMAP_H
#define BARAM_BASE_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hmap_slot {
    const char *key; /* borrowed; NULL = empty */
    uint32_t keylen;
    uint32_t hash;
    uint32_t value;
};

struct hmap {
    struct hmap_slot *slots; /* owned */
    size_t cap;              /* power of two, or 0 */
    size_t count;
};

void hmap_init(struct hmap *h);
void hmap_release(struct hmap *h);
uint32_t hmap_hash(const char *key, size_t len);
/* Finds key: true and *value set, or false. */
bool hmap_get(const struct hmap *h, const char *key, size_t len, uint32_t *value);
/* Inserts or replaces key. Returns true if the key was new. */
bool hmap_put(struct hmap *h, const char *key, size_t len, uint32_t value);

#endif
