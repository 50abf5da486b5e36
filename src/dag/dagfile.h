/*
 * dagfile.h - a DAG file's YAML text as a small tree (the AST): scalars,
 * sequences and mappings, each node with its 1-based line and column. No
 * meaning is given here (that is dag.c's job): this module only makes sure
 * the text is well-formed YAML, bounded (size, nesting depth, alias budget,
 * so a "billion laughs" file cannot blow up), and has no duplicate keys
 * where a consumer would silently lose one. Nodes are 32 bytes: a
 * 100,000-task file makes about 700,000 of them.
 *
 * Every node and string lives in the caller's arena; the tree is freed with
 * it. Not thread-safe per arena; different arenas may be used in parallel.
 */
#ifndef BARAM_DAG_DAGFILE_H
#define BARAM_DAG_DAGFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;
struct diag;

#define DAGFILE_MAX_DEPTH   64   /* nested collections */
#define DAGFILE_MAX_ALIASES 64   /* '*alias' references in one file */
#define DAGFILE_MAX_EXPAND  4096 /* nodes reachable through aliases, in all */

enum dagfile_kind { DAGFILE_SCALAR, DAGFILE_SEQ, DAGFILE_MAP };

enum dagfile_style {
    DAGFILE_PLAIN,   /* foo */
    DAGFILE_SQUOTED, /* 'foo' */
    DAGFILE_DQUOTED, /* "foo" */
    DAGFILE_LITERAL, /* |  */
    DAGFILE_FOLDED,  /* >  */
};

struct dagfile_pair;

struct dagfile_node {
    unsigned char kind;  /* enum dagfile_kind */
    unsigned char style; /* enum dagfile_style; scalars only */
    bool multiline;      /* a scalar that spans several source lines */
    int line, col;       /* 1-based position of the node's first character */
    union {
        uint32_t len; /* DAGFILE_SCALAR: bytes in str (files are < 4 GiB) */
        uint32_t n;   /* DAGFILE_SEQ: items; DAGFILE_MAP: pairs */
    };
    const char *str; /* DAGFILE_SCALAR: NUL-terminated; a YAML escape may put a NUL inside */
    union {
        struct dagfile_node **items; /* DAGFILE_SEQ */
        struct dagfile_pair *pairs;  /* DAGFILE_MAP */
    };
};

struct dagfile_pair {
    struct dagfile_node *key; /* always a scalar */
    struct dagfile_node *value;
    int dup_line; /* > 0: this key repeats an earlier one of the same mapping, defined there */
};

/* Parses text[0..len) (path names it in messages). The root node, or NULL with the problem
 * added to d (an empty document gives a null scalar root, not NULL). Duplicate keys are kept
 * and marked (pair.dup_line), not reported: the consumer reports them in its own words. */
struct dagfile_node *dagfile_parse(struct arena *a, const char *text, size_t len, const char *path,
                                   struct diag *d);

/* True for a plain scalar null: empty, ~, null, Null, NULL. */
bool dagfile_is_null(const struct dagfile_node *n);
/* The value of key in mapping m (the first one if repeated), or NULL. */
struct dagfile_node *dagfile_get(const struct dagfile_node *m, const char *key);
/* Human name of a node's type for messages: "a string", "a list", "a mapping". */
const char *dagfile_kind_name(const struct dagfile_node *n);

#endif
