/*
 * wf_util: the small containers and string helpers the wf stages share.
 */
#include "wf_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---- map ---- */

/*
 * FNV-1a started from a secret seed, then mixed. A fixed hash would let a
 * document be written so that all its names collide and the parse turns
 * quadratic; the seed changes with every parse.
 */
static uint64_t hash_bytes(const char *s, size_t len, uint64_t seed)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

uint64_t wf_seed(void)
{
    uint64_t seed = 0;
    struct timespec ts;

    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == sizeof(seed))
        return seed;

    /* No entropy yet (early boot): the clock still varies per parse. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)ts.tv_sec ^
           (uint64_t)(uintptr_t)&seed;
}

int wf_map_init(wf_map *m, size_t n, uint64_t seed)
{
    size_t cap = 16;

    /* Keep the load under one half so probes stay short. */
    while (cap < n * 2) {
        if (cap > SIZE_MAX / 4 / sizeof(wf_map_slot))
            return -1;
        cap *= 2;
    }
    m->slots = calloc(cap, sizeof(*m->slots));
    if (m->slots == NULL)
        return -1;
    m->cap = cap;
    m->n = 0;
    m->seed = seed;
    return 0;
}

void wf_map_free(wf_map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = 0;
    m->n = 0;
}

static wf_map_slot *map_probe(const wf_map *m, const char *key, size_t len,
                              uint64_t h)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)h & mask;

    for (;;) {
        wf_map_slot *s = &m->slots[i];

        if (s->key == NULL)
            return s;
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0)
            return s;
        i = (i + 1) & mask;
    }
}

const wf_map_slot *wf_map_get(const wf_map *m, const char *key, size_t len)
{
    const wf_map_slot *s;

    if (m->cap == 0)
        return NULL;
    s = map_probe(m, key, len, hash_bytes(key, len, m->seed));
    return s->key != NULL ? s : NULL;
}

int wf_map_put(wf_map *m, const char *key, size_t len, size_t val,
               size_t *found)
{
    uint64_t h;
    wf_map_slot *s;

    /* The map is sized once for the keys we will put: never grow. */
    if (m->cap == 0 || m->n + 1 > m->cap / 2)
        return -1;
    h = hash_bytes(key, len, m->seed);
    s = map_probe(m, key, len, h);
    if (s->key != NULL) {
        if (found != NULL)
            *found = s->val;
        return 0;
    }
    s->key = key;
    s->len = len;
    s->val = val;
    s->hash = h;
    m->n++;
    return 1;
}

/* ---- arena ---- */

#define ARENA_BLOCK 65536

struct wf_arena_block {
    wf_arena_block *next;
    size_t used;
    size_t cap;
    char data[];
};

char *wf_arena_strndup(wf_arena *a, const char *s, size_t len)
{
    wf_arena_block *b = a->head;
    char *p;

    if (len >= SIZE_MAX - sizeof(*b) - ARENA_BLOCK)
        return NULL;
    if (b == NULL || b->cap - b->used < len + 1) {
        size_t cap = len + 1 > ARENA_BLOCK ? len + 1 : ARENA_BLOCK;

        b = malloc(sizeof(*b) + cap);
        if (b == NULL)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    p = b->data + b->used;
    memcpy(p, s, len);
    p[len] = '\0';
    b->used += len + 1;
    return p;
}

void wf_arena_free(wf_arena *a)
{
    wf_arena_block *b = a->head;

    while (b != NULL) {
        wf_arena_block *next = b->next;

        free(b);
        b = next;
    }
    a->head = NULL;
}

/* ---- truncated strings ---- */

int wf_nulset_add(wf_ctx *c, const cJSON *item, int is_key, const char *text,
                  size_t len, int raw_json)
{
    wf_nulset *s = &c->nuls;
    wf_nul *e;

    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        wf_nul *items = realloc(s->items, cap * sizeof(*items));

        if (items == NULL)
            return -1;
        s->items = items;
        s->cap = cap;
    }
    e = &s->items[s->n];
    e->text = malloc(len + 1);
    if (e->text == NULL)
        return -1;
    memcpy(e->text, text, len);
    e->text[len] = '\0';
    e->len = len;
    e->item = item;
    e->is_key = is_key;
    e->raw_json = raw_json;
    s->n++;
    s->sorted = 0;
    return 0;
}

static int nul_cmp(const void *pa, const void *pb)
{
    const wf_nul *a = pa;
    const wf_nul *b = pb;
    uintptr_t ia = (uintptr_t)a->item;
    uintptr_t ib = (uintptr_t)b->item;

    if (ia != ib)
        return ia < ib ? -1 : 1;
    return a->is_key - b->is_key;
}

const wf_nul *wf_nulset_find(wf_nulset *s, const cJSON *item, int is_key)
{
    wf_nul probe;

    if (s->n == 0)
        return NULL;
    if (!s->sorted) {
        qsort(s->items, s->n, sizeof(*s->items), nul_cmp);
        s->sorted = 1;
    }
    probe.item = item;
    probe.is_key = is_key;
    return bsearch(&probe, s->items, s->n, sizeof(*s->items), nul_cmp);
}

void wf_nulset_free(wf_nulset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->items[i].text);
    free(s->items);
    memset(s, 0, sizeof(*s));
}

/* ---- text ---- */

const char *wf_quote(char *buf, const char *s, size_t len, int raw_json)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t out = 0;
    size_t shown = 0;
    size_t i = 0;

    while (i < len) {
        uint32_t cp;
        size_t n;

        if (shown == WF_QUOTE_MAX) {
            memcpy(buf + out, "...", 3);
            out += 3;
            break;
        }
        n = jw_utf8_next(u + i, len - i, &cp);
        if (n == 0) {
            out += (size_t)snprintf(buf + out, 8, "\\x%02x", u[i]);
            i++;
        } else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
            out += (size_t)snprintf(buf + out, 8, "\\u%04x", (unsigned)cp);
            i += n;
        } else if (cp == '\\' && !raw_json) {
            memcpy(buf + out, "\\\\", 2);
            out += 2;
            i++;
        } else {
            memcpy(buf + out, u + i, n);
            out += n;
            i += n;
        }
        shown++;
    }
    buf[out] = '\0';
    return buf;
}

const char *wf_quotes(char *buf, const char *s)
{
    return wf_quote(buf, s, strlen(s), 0);
}

const char *wf_type_name(const cJSON *item)
{
    if (item == NULL)
        return "nothing";
    if (cJSON_IsNull(item))
        return "null";
    if (cJSON_IsBool(item))
        return "a boolean";
    if (cJSON_IsNumber(item))
        return "a number";
    if (cJSON_IsString(item))
        return "a string";
    if (cJSON_IsArray(item))
        return "a list";
    if (cJSON_IsObject(item))
        return "an object";
    return "an unknown value";
}
