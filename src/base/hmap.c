/*
 * hmap.c - open-addressing string -> uint32 map; see hmap.h.
 * Growth doubles the table when it would pass half full, so a lookup probes
 * about 1.5 slots on average. No deletion: DAGs are built once and freed.
 */
#include "base/hmap.h"

#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

void hmap_init(struct hmap *h)
{
    h->slots = NULL;
    h->cap = 0;
    h->count = 0;
}

void hmap_release(struct hmap *h)
{
    free(h->slots);
    hmap_init(h);
}

uint32_t hmap_hash(const char *key, size_t len)
{
    uint32_t x = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        x ^= (unsigned char)key[i];
        x *= 16777619u;
    }
    return x;
}

static struct hmap_slot *hmap_find(const struct hmap *h, const char *key, size_t len,
                                   uint32_t hash)
{
    size_t mask = h->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        struct hmap_slot *s = &h->slots[i];
        if (!s->key)
            return s;
        if (s->hash == hash && s->keylen == len && memcmp(s->key, key, len) == 0)
            return s;
    }
}

static void hmap_grow(struct hmap *h)
{
    size_t oldcap = h->cap;
    struct hmap_slot *old = h->slots;
    h->cap = oldcap ? oldcap * 2 : 16;
    h->slots = xcalloc(h->cap, sizeof *h->slots);
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].key)
            *hmap_find(h, old[i].key, old[i].keylen, old[i].hash) = old[i];
    }
    free(old);
}

bool hmap_get(const struct hmap *h, const char *key, size_t len, uint32_t *value)
{
    if (!h->cap)
        return false;
    struct hmap_slot *s = hmap_find(h, key, len, hmap_hash(key, len));
    if (!s->key)
        return false;
    *value = s->value;
    return true;
}

bool hmap_put(struct hmap *h, const char *key, size_t len, uint32_t value)
{
    if ((h->count + 1) * 2 > h->cap)
        hmap_grow(h);
    uint32_t hash = hmap_hash(key, len);
    struct hmap_slot *s = hmap_find(h, key, len, hash);
    bool fresh = !s->key;
    s->key = key;
    s->keylen = (uint32_t)len;
    s->hash = hash;
    s->value = value;
    h->count += fresh;
    return fresh;
}
