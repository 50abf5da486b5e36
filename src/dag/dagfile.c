/*
 * dagfile.c - YAML text to the AST of dagfile.h, with libyaml's event
 * parser (not its document loader, which has no limits and no positions we
 * could keep).
 *
 * Key idea: one pass over the events with an explicit stack of open
 * collections; the children of every open collection sit on one shared
 * growable stack and are copied into the arena when the collection closes,
 * so building costs O(events) and never recurses. This is the only file
 * that turns libyaml's 0-based marks into 1-based lines and columns.
 *
 * Bounds: the caller caps the size (DAG_FILE_MAX, checked again here);
 * nesting is capped at DAGFILE_MAX_DEPTH; an alias shares its anchor's node
 * (no copy), and the number of aliases and the nodes they make reachable are
 * capped, so a consumer walking the tree does bounded work.
 *
 * Memory: nodes and strings in the caller's arena; the scratch stacks are
 * malloc'd and freed before returning. Not thread-safe per arena.
 */
#include "dag/dagfile.h"

#include <string.h>
#include <yaml.h>

#include "base/arena.h"
#include "base/diag.h"
#include "base/hmap.h"
#include "base/xalloc.h"
#include "dag/dag.h"

struct frame {
    struct dagfile_node *node;
    size_t base;        /* first child on the child stack */
    size_t weight;      /* nodes in the subtree, aliases expanded */
    const char *anchor; /* arena copy, or NULL */
};

struct anchor {
    const char *name;
    struct dagfile_node *node;
    size_t weight;
};

struct builder {
    struct arena *a;
    struct diag *d;
    const char *path;
    const char *text;
    size_t len;
    struct frame *frames; /* owned; depth entries */
    size_t depth, fcap;
    struct dagfile_node **kids; /* owned: children of the open collections */
    size_t *kweights;           /* owned: weight of each child */
    size_t nkids, kcap, kwcap;
    struct anchor *anchors; /* owned */
    size_t nanchors, acap;
    size_t naliases;
    size_t expanded;
    struct dagfile_node *root;
    size_t root_weight;
    int ndocs;
};

bool dagfile_is_null(const struct dagfile_node *n)
{
    if (!n || n->kind != DAGFILE_SCALAR || n->style != DAGFILE_PLAIN)
        return false;
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        if (strcmp(n->str, nulls[i]) == 0)
            return true;
    return false;
}

struct dagfile_node *dagfile_get(const struct dagfile_node *m, const char *key)
{
    if (!m || m->kind != DAGFILE_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; i < m->n; i++)
        if (m->pairs[i].key->len == klen && memcmp(m->pairs[i].key->str, key, klen) == 0)
            return m->pairs[i].value;
    return NULL;
}

const char *dagfile_kind_name(const struct dagfile_node *n)
{
    switch (n->kind) {
    case DAGFILE_SCALAR:
        return dagfile_is_null(n) ? "empty" : "a string";
    case DAGFILE_SEQ:
        return "a list";
    case DAGFILE_MAP:
        return "a mapping";
    }
    return "a value";
}

static int mark_line(const yaml_mark_t *m)
{
    return m->line >= (size_t)INT32_MAX ? INT32_MAX : (int)m->line + 1;
}

static int mark_col(const yaml_mark_t *m)
{
    return m->column >= (size_t)INT32_MAX ? INT32_MAX : (int)m->column + 1;
}

static struct dagfile_node *node_new(struct builder *b, enum dagfile_kind kind,
                                     const yaml_mark_t *start)
{
    struct dagfile_node *n = arena_zalloc(b->a, sizeof *n);
    n->kind = kind;
    n->line = mark_line(start);
    n->col = mark_col(start);
    return n;
}

/* Adds a finished node (with its weight) to the open collection, or makes it the root. */
static void add_child(struct builder *b, struct dagfile_node *n, size_t weight)
{
    if (b->depth == 0) {
        b->root = n;
        b->root_weight = weight;
        return;
    }
    xgrow((void **)&b->kids, &b->kcap, b->nkids + 1, sizeof *b->kids);
    xgrow((void **)&b->kweights, &b->kwcap, b->nkids + 1, sizeof *b->kweights);
    b->kids[b->nkids] = n;
    b->kweights[b->nkids] = weight;
    b->nkids++;
    b->frames[b->depth - 1].weight += weight;
}

static int add_anchor(struct builder *b, const char *name, struct dagfile_node *n, size_t weight,
                      int line, int col)
{
    if (b->nanchors >= DAGFILE_MAX_ALIASES)
        return diag_err(b->d, b->path, line, col, "too many anchors (the limit is %d)",
                        DAGFILE_MAX_ALIASES);
    xgrow((void **)&b->anchors, &b->acap, b->nanchors + 1, sizeof *b->anchors);
    /* A later anchor of the same name shadows the earlier one, as in YAML. */
    b->anchors[b->nanchors++] = (struct anchor){name, n, weight};
    return 0;
}

static int open_collection(struct builder *b, enum dagfile_kind kind, const yaml_event_t *ev,
                           const yaml_char_t *anchor)
{
    if (b->depth >= DAGFILE_MAX_DEPTH)
        return diag_err(b->d, b->path, mark_line(&ev->start_mark), mark_col(&ev->start_mark),
                        "nesting too deep (the limit is %d levels)", DAGFILE_MAX_DEPTH);
    xgrow((void **)&b->frames, &b->fcap, b->depth + 1, sizeof *b->frames);
    struct frame *f = &b->frames[b->depth++];
    f->node = node_new(b, kind, &ev->start_mark);
    f->base = b->nkids;
    f->weight = 1;
    f->anchor = anchor ? arena_strdup(b->a, (const char *)anchor) : NULL;
    return 0;
}

static bool key_equal(const struct dagfile_node *x, const struct dagfile_node *y)
{
    return x->len == y->len && memcmp(x->str, y->str, x->len) == 0;
}

/* Marks keys that repeat an earlier key of mapping m. Small mappings compare pairwise; big
 * ones (a DAG's tasks) go through a hash map so 100,000 tasks stay linear. */
static void mark_duplicates(struct dagfile_node *m)
{
    if (m->n <= 16) {
        for (size_t i = 1; i < m->n; i++)
            for (size_t j = 0; j < i; j++)
                if (!m->pairs[j].dup_line && key_equal(m->pairs[i].key, m->pairs[j].key)) {
                    m->pairs[i].dup_line = m->pairs[j].key->line;
                    break;
                }
        return;
    }
    struct hmap h;
    hmap_init(&h);
    for (size_t i = 0; i < m->n; i++) {
        const struct dagfile_node *k = m->pairs[i].key;
        uint32_t first;
        if (hmap_get(&h, k->str, k->len, &first))
            m->pairs[i].dup_line = m->pairs[first].key->line;
        else
            (void)hmap_put(&h, k->str, k->len, (uint32_t)i);
    }
    hmap_release(&h);
}

static int close_collection(struct builder *b)
{
    struct frame f = b->frames[--b->depth];
    struct dagfile_node *n = f.node;
    size_t count = b->nkids - f.base;
    /* No child was ever pushed when every collection so far was empty: kids stays NULL. */
    struct dagfile_node **kids = count ? b->kids + f.base : NULL;
    int r = 0;
    if (n->kind == DAGFILE_SEQ) {
        n->n = (uint32_t)count;
        n->items = arena_alloc(b->a, (count ? count : 1) * sizeof *n->items);
        if (count)
            memcpy(n->items, kids, count * sizeof *kids);
    } else {
        n->pairs = arena_zalloc(b->a, (count / 2 ? count / 2 : 1) * sizeof *n->pairs);
        size_t np = 0;
        for (size_t i = 0; i + 1 < count; i += 2) {
            if (kids[i]->kind != DAGFILE_SCALAR) {
                r = diag_err(b->d, b->path, kids[i]->line, kids[i]->col,
                             "a mapping key must be a string, not %s", dagfile_kind_name(kids[i]));
                continue;
            }
            n->pairs[np].key = kids[i];
            n->pairs[np].value = kids[i + 1];
            np++;
        }
        n->n = (uint32_t)np;
        mark_duplicates(n);
    }
    b->nkids = f.base;
    if (f.anchor && add_anchor(b, f.anchor, n, f.weight, n->line, n->col) < 0)
        r = -1;
    add_child(b, n, f.weight);
    return r;
}

static enum dagfile_style style_of(yaml_scalar_style_t s)
{
    switch (s) {
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
        return DAGFILE_SQUOTED;
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
        return DAGFILE_DQUOTED;
    case YAML_LITERAL_SCALAR_STYLE:
        return DAGFILE_LITERAL;
    case YAML_FOLDED_SCALAR_STYLE:
        return DAGFILE_FOLDED;
    default:
        return DAGFILE_PLAIN;
    }
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
    struct dagfile_node *n = node_new(b, DAGFILE_SCALAR, &ev->start_mark);
    n->len = (uint32_t)ev->data.scalar.length; /* < DAG_FILE_MAX */
    n->str = arena_strndup(b->a, (const char *)ev->data.scalar.value, n->len);
    n->style = style_of(ev->data.scalar.style);
    n->multiline = ev->end_mark.line != ev->start_mark.line;
    if (ev->data.scalar.anchor &&
        add_anchor(b, arena_strdup(b->a, (const char *)ev->data.scalar.anchor), n, 1, n->line,
                   n->col) < 0)
        return -1;
    add_child(b, n, 1);
    return 0;
}

static int on_alias(struct builder *b, const yaml_event_t *ev)
{
    int line = mark_line(&ev->start_mark), col = mark_col(&ev->start_mark);
    const char *name = (const char *)ev->data.alias.anchor;
    const struct anchor *an = NULL;
    for (size_t i = b->nanchors; i-- > 0;)
        if (strcmp(b->anchors[i].name, name) == 0) {
            an = &b->anchors[i];
            break;
        }
    if (!an)
        return diag_err(b->d, b->path, line, col, "unknown alias '*%s'", name);
    if (++b->naliases > DAGFILE_MAX_ALIASES)
        return diag_err(b->d, b->path, line, col, "too many aliases (the limit is %d)",
                        DAGFILE_MAX_ALIASES);
    b->expanded += an->weight;
    if (b->expanded > DAGFILE_MAX_EXPAND)
        return diag_err(b->d, b->path, line, col,
                        "aliases expand to too many nodes (the limit is %d)", DAGFILE_MAX_EXPAND);
    add_child(b, an->node, an->weight);
    return 0;
}

/* Reports libyaml's error with its own text and position. */
static void report_yaml_error(struct builder *b, const yaml_parser_t *p)
{
    int line, col;
    if (p->error == YAML_READER_ERROR) {
        /* Reader errors carry a byte offset, not a mark. */
        size_t off = p->problem_offset < b->len ? p->problem_offset : b->len;
        line = 1;
        size_t ls = 0;
        for (size_t i = 0; i < off; i++)
            if (b->text[i] == '\n') {
                line++;
                ls = i + 1;
            }
        col = (int)(off - ls) + 1;
    } else {
        line = mark_line(&p->problem_mark);
        col = mark_col(&p->problem_mark);
    }
    const char *problem = p->problem ? p->problem : "cannot parse";
    if (p->error == YAML_MEMORY_ERROR)
        problem = "out of memory";
    diag_err(b->d, b->path, line, col, "bad yaml: %s", problem);
    if (p->context)
        diag_hint(b->d, "%s at line %d", p->context, mark_line(&p->context_mark));
}

static void builder_free(struct builder *b)
{
    free(b->frames);
    free(b->kids);
    free(b->kweights);
    free(b->anchors);
}

struct dagfile_node *dagfile_parse(struct arena *a, const char *text, size_t len, const char *path,
                                   struct diag *d)
{
    if (len > DAG_FILE_MAX) {
        diag_err(d, path, 0, 0, "file too large (%zu bytes; the limit is %d)", len, DAG_FILE_MAX);
        return NULL;
    }
    struct builder b = {.a = a, .d = d, .path = path, .text = text, .len = len};
    size_t errors0 = d->errors;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        diag_err(d, path, 0, 0, "cannot start the yaml parser");
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
    bool done = false, failed = false;
    while (!done && !failed) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            report_yaml_error(&b, &p);
            failed = true;
            break;
        }
        int r = 0;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++b.ndocs > 1)
                r = diag_err(d, path, mark_line(&ev.start_mark), mark_col(&ev.start_mark),
                             "a DAG file holds one yaml document, found a second one");
            break;
        case YAML_SCALAR_EVENT:
            r = on_scalar(&b, &ev);
            break;
        case YAML_ALIAS_EVENT:
            r = on_alias(&b, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            r = open_collection(&b, DAGFILE_SEQ, &ev, ev.data.sequence_start.anchor);
            break;
        case YAML_MAPPING_START_EVENT:
            r = open_collection(&b, DAGFILE_MAP, &ev, ev.data.mapping_start.anchor);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            r = close_collection(&b);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (r < 0)
            failed = true;
    }
    yaml_parser_delete(&p);
    struct dagfile_node *root = b.root;
    builder_free(&b);
    if (failed || d->errors > errors0)
        return NULL;
    if (!root) {
        /* An empty stream: a null document. */
        root = arena_zalloc(a, sizeof *root);
        root->kind = DAGFILE_SCALAR;
        root->line = root->col = 1;
        root->str = "";
    }
    return root;
}
