/*
 * template.c - {{ name }} templates: compiled once into literal runs and
 * references, expanded many times with per-reference escaping.
 *
 * Key idea (TEMPLATE_SHELL): a small shell lexer runs over the literal text
 * at compile time and records, for each reference, the quoting context the
 * shell will be in when it reads the expanded value: unquoted (also inside
 * "$(...)", which starts a fresh unquoted context), '...', "...", $'...' or a
 * '#' comment. Expansion escapes the value for that context so the shell
 * always reads it as one piece of data:
 *   unquoted   'v' with ' as '\'' (safe, non-empty values other than reserved
 *              words go in as they are)
 *   '...'      ' as '\''
 *   "..."      \ before $ ` " \
 *   $'...'     \xHH for every byte outside the safe set (safe for bash, and
 *              for dash, which reads $'...' as $ + '...')
 *   # comment  as unquoted, with newlines turned into spaces so the value
 *              cannot end the comment
 * Where the lexer cannot be sure what the shell will do, the template is
 * refused at compile time rather than guessed at: a reference right after an
 * unquoted '\' or '$', inside ${...}, $((...)), ((...)) or backticks, and any
 * reference after a here-document ('<<'), a "case" inside $(...) (its ')'
 * patterns defeat paren matching), quotes inside backticks, or a \' inside
 * $'...' (bash and dash disagree there), or a '$['. Values with a NUL byte are refused
 * at expansion: /bin/sh -c would cut the command there.
 *
 * Ownership: a struct template owns a copy of its source and its names.
 * Compiled templates are immutable: any thread may expand one. Compile errors
 * fill the caller's struct err.
 */
#include "dag/template.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/xalloc.h"

#define TEMPLATE_LEX_DEPTH 64

/* Where a reference stands, as the shell will read it. */
enum template_ctx {
    TEMPLATE_CTX_PLAIN, /* not TEMPLATE_SHELL: escape by the template's mode */
    TEMPLATE_CTX_UNQUOTED,
    TEMPLATE_CTX_SQUOTE,
    TEMPLATE_CTX_DQUOTE,
    TEMPLATE_CTX_ANSI,
    TEMPLATE_CTX_COMMENT,
};

struct template_ref {
    size_t lit_off, lit_len; /* the literal text before this reference, in src */
    size_t offset;           /* of its '{{' in src */
    char *name;              /* owned */
    enum template_ctx ctx;
};

struct template
{
    char *src; /* owned, NUL-terminated copy */
    size_t len;
    enum template_escape esc;
    struct template_ref *refs; /* owned, nrefs entries */
    size_t nrefs;
    size_t tail_off, tail_len; /* literal text after the last reference */
};

/* --- the shell lexer ---------------------------------------------------------------------- */

enum template_lex {
    TLEX_TOP,     /* unquoted, top level */
    TLEX_CMDSUB,  /* unquoted, inside $( ... ) */
    TLEX_SQ,      /* '...' */
    TLEX_DQ,      /* "..." */
    TLEX_ANSI,    /* $'...' */
    TLEX_BQ,      /* `...` */
    TLEX_PARAM,   /* ${...} */
    TLEX_ARITH,   /* $(( ... )) */
    TLEX_COMMENT, /* # ... up to a newline */
};

struct template_lexer {
    uint8_t kind[TEMPLATE_LEX_DEPTH];
    int parens[TEMPLATE_LEX_DEPTH]; /* open '(' inside this level */
    int depth;                      /* kind[depth - 1] is the current context */
    bool escape;                    /* the previous character was an active '\' */
    bool dollar;                    /* the previous character was a bare '$' */
    bool word_start;                /* the next character starts a word ('#' comments) */
    const char *refuse;             /* from here on references are refused, and why */
};

static int template_lex_push(struct template_lexer *lx, enum template_lex k)
{
    if (lx->depth >= TEMPLATE_LEX_DEPTH)
        return -EINVAL;
    lx->kind[lx->depth] = (uint8_t)k;
    lx->parens[lx->depth] = 0;
    lx->depth++;
    return 0;
}

static void template_lex_pop(struct template_lexer *lx)
{
    if (lx->depth > 1)
        lx->depth--;
}

static bool template_is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/* A '$' at s[*i] (not escaped, not in '...'): what it starts. */
static int template_lex_dollar(struct template_lexer *lx, const char *s, size_t n, size_t *i,
                               enum template_lex k)
{
    char c1 = *i + 1 < n ? s[*i + 1] : 0;
    char c2 = *i + 2 < n ? s[*i + 2] : 0;
    if (c1 == '(' && c2 == '(') {
        *i += 2;
        return template_lex_push(lx, TLEX_ARITH);
    }
    if (c1 == '(') {
        *i += 1;
        lx->word_start = true;
        return template_lex_push(lx, TLEX_CMDSUB);
    }
    if (c1 == '{') {
        *i += 1;
        return template_lex_push(lx, TLEX_PARAM);
    }
    if (c1 == '[') {
        lx->refuse = "template reference after '$[' is not supported";
        return 0;
    }
    if (c1 == '\'' && k != TLEX_DQ) {
        *i += 1;
        return template_lex_push(lx, TLEX_ANSI);
    }
    lx->dollar = true; /* "$name", "$1", or a '$' right before a reference */
    return 0;
}

/* Runs the lexer over literal text s[0..n); -EINVAL at *at when nesting is too deep. */
static int template_lex(struct template_lexer *lx, const char *s, size_t n, size_t *at)
{
    for (size_t i = 0; i < n; i++) {
        const size_t start = i;
        char c = s[i];
        enum template_lex k = (enum template_lex)lx->kind[lx->depth - 1];
        lx->dollar = false;
        int r = 0;
        if (lx->escape) {
            lx->escape = false;
            lx->word_start = false;
            continue;
        }
        switch (k) {
        case TLEX_COMMENT:
            if (c == '\n') {
                template_lex_pop(lx);
                lx->word_start = true;
            }
            break;
        case TLEX_SQ:
            if (c == '\'')
                template_lex_pop(lx);
            break;
        case TLEX_ANSI:
            if (c == '\\') {
                if (i + 1 < n && s[i + 1] == '\'')
                    lx->refuse = "template reference after \\' inside $'...' is not supported";
                lx->escape = true;
            } else if (c == '\'') {
                template_lex_pop(lx);
            }
            break;
        case TLEX_DQ:
            if (c == '\\')
                lx->escape = true;
            else if (c == '"')
                template_lex_pop(lx);
            else if (c == '`')
                r = template_lex_push(lx, TLEX_BQ);
            else if (c == '$')
                r = template_lex_dollar(lx, s, n, &i, k);
            break;
        case TLEX_BQ:
            if (c == '\\')
                lx->escape = true;
            else if (c == '`')
                template_lex_pop(lx);
            else if (c == '\'' || c == '"' || c == '(' || c == '#')
                lx->refuse = "template reference after quotes or '(' inside backticks is not "
                             "supported (use $(...))";
            break;
        case TLEX_PARAM:
            if (c == '}')
                template_lex_pop(lx);
            else if (c == '\\' || c == '\'' || c == '"' || c == '`' || c == '$' || c == '{')
                lx->refuse = "template reference after nested quotes inside ${...} is not "
                             "supported";
            break;
        case TLEX_ARITH:
            if (c == '(') {
                lx->parens[lx->depth - 1]++;
            } else if (c == ')') {
                if (lx->parens[lx->depth - 1] > 0) {
                    lx->parens[lx->depth - 1]--;
                } else if (i + 1 < n && s[i + 1] == ')') {
                    i++;
                    template_lex_pop(lx);
                } else {
                    lx->refuse = "template reference after an ambiguous '$((' is not supported";
                    template_lex_pop(lx);
                }
            } else if (c == '\\') {
                lx->escape = true;
            } else if (c == '\'') {
                r = template_lex_push(lx, TLEX_SQ);
            } else if (c == '"') {
                r = template_lex_push(lx, TLEX_DQ);
            } else if (c == '`') {
                r = template_lex_push(lx, TLEX_BQ);
            } else if (c == '$') {
                r = template_lex_dollar(lx, s, n, &i, k);
            }
            break;
        case TLEX_TOP:
        case TLEX_CMDSUB: {
            bool ws = false;
            if (k == TLEX_CMDSUB && lx->word_start && n - i >= 4 && memcmp(s + i, "case", 4) == 0 &&
                (n - i == 4 || !template_is_name_char(s[i + 4])))
                lx->refuse = "template reference after 'case' inside $(...) is not supported";
            if (c == '(' && lx->word_start && i + 1 < n && s[i + 1] == '(') {
                i++; /* bash's (( arithmetic )) command, or two subshells: refs refused inside */
                r = template_lex_push(lx, TLEX_ARITH);
            } else if (c == '\\') {
                lx->escape = true;
            } else if (c == '\'') {
                r = template_lex_push(lx, TLEX_SQ);
            } else if (c == '"') {
                r = template_lex_push(lx, TLEX_DQ);
            } else if (c == '`') {
                r = template_lex_push(lx, TLEX_BQ);
            } else if (c == '$') {
                r = template_lex_dollar(lx, s, n, &i, k);
                if (lx->kind[lx->depth - 1] == TLEX_CMDSUB && r == 0 && i > 0 && s[i] == '(')
                    ws = true;
            } else if (c == '#' && lx->word_start) {
                r = template_lex_push(lx, TLEX_COMMENT);
            } else if (c == ' ' || c == '\t' || c == '\n' || c == ';' || c == '&' || c == '|' ||
                       c == '>') {
                ws = true;
            } else if (c == '<') {
                if (i + 1 < n && s[i + 1] == '<')
                    lx->refuse = "template reference after a here-document ('<<') is not "
                                 "supported";
                ws = true;
            } else if (c == '(') {
                lx->parens[lx->depth - 1]++;
                ws = true;
            } else if (c == ')') {
                if (lx->parens[lx->depth - 1] > 0)
                    lx->parens[lx->depth - 1]--;
                else if (k == TLEX_CMDSUB)
                    template_lex_pop(lx);
                ws = k == TLEX_TOP || lx->kind[lx->depth - 1] == TLEX_CMDSUB ||
                     lx->kind[lx->depth - 1] == TLEX_TOP;
            }
            lx->word_start = ws;
            break;
        }
        }
        if (r < 0) {
            *at = start;
            return r;
        }
    }
    return 0;
}

/* The context of a reference standing where the lexer is, or NULL and *why. */
static int template_lex_ctx(const struct template_lexer *lx, enum template_ctx *ctx,
                            const char **why)
{
    if (lx->escape) {
        *why = "template reference right after '\\'";
        return -EINVAL;
    }
    if (lx->dollar) {
        *why = "template reference right after '$'";
        return -EINVAL;
    }
    if (lx->refuse) {
        *why = lx->refuse;
        return -EINVAL;
    }
    switch ((enum template_lex)lx->kind[lx->depth - 1]) {
    case TLEX_TOP:
    case TLEX_CMDSUB:
        *ctx = TEMPLATE_CTX_UNQUOTED;
        return 0;
    case TLEX_SQ:
        *ctx = TEMPLATE_CTX_SQUOTE;
        return 0;
    case TLEX_DQ:
        *ctx = TEMPLATE_CTX_DQUOTE;
        return 0;
    case TLEX_ANSI:
        *ctx = TEMPLATE_CTX_ANSI;
        return 0;
    case TLEX_COMMENT:
        *ctx = TEMPLATE_CTX_COMMENT;
        return 0;
    case TLEX_BQ:
        *why = "template reference inside backticks is not supported (use $(...))";
        return -EINVAL;
    case TLEX_PARAM:
        *why = "template reference inside '${...}' is not supported";
        return -EINVAL;
    case TLEX_ARITH:
        *why = "template reference inside '$((...))' or '((...))' is not supported";
        return -EINVAL;
    }
    *why = "template reference in an unknown shell context";
    return -EINVAL;
}

/* --- compile ------------------------------------------------------------------------------ */

/* A character that cannot be in a template name: -EINVAL with err saying which. */
static int template_bad_char(struct err *err, char c)
{
    unsigned char u = (unsigned char)c;
    if (u > 0x20 && u < 0x7f)
        return err_set(err, -EINVAL, "bad character '%c' in template name", c);
    return err_set(err, -EINVAL, "bad character '\\x%02x' in template name", u);
}

static bool template_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

int template_compile(const char *src, size_t len, enum template_escape esc, struct template **out,
                     size_t *err_offset, struct err *err)
{
    struct template *t = xcalloc(1, sizeof(*t));
    t->src = xmalloc(len + 1);
    if (len)
        memcpy(t->src, src, len);
    t->src[len] = 0;
    t->len = len;
    t->esc = esc;
    const char *s = t->src;
    size_t cap = 0, lit = 0, bad = 0;
    const char *msg = NULL;
    struct template_lexer lx = {.depth = 1, .word_start = true};
    lx.kind[0] = TLEX_TOP;

    size_t i = 0;
    while (i < len) {
        if (!(s[i] == '{' && i + 1 < len && s[i + 1] == '{')) {
            i++;
            continue;
        }
        size_t open = i, j = i + 2;
        while (j < len && template_is_blank(s[j]))
            j++;
        size_t name = j;
        while (j < len && template_is_name_char(s[j]))
            j++;
        size_t name_end = j;
        while (j < len && template_is_blank(s[j]))
            j++;
        if (j + 1 < len && s[j] == '}' && s[j + 1] == '}') {
            if (name == name_end) {
                bad = open;
                msg = "empty name in '{{ }}'";
                goto fail;
            }
        } else if (j >= len || (j + 1 >= len && s[j] == '}')) {
            bad = open;
            msg = "unterminated '{{'";
            goto fail;
        } else if (template_is_name_char(s[j]) && j > name_end) {
            bad = name_end;
            msg = "space in template name";
            goto fail;
        } else {
            bad = j;
            template_bad_char(err, s[j]);
            goto fail_set;
        }
        enum template_ctx ctx = TEMPLATE_CTX_PLAIN;
        if (esc == TEMPLATE_SHELL) {
            if (template_lex(&lx, s + lit, open - lit, &bad) < 0) {
                bad += lit;
                msg = "shell quoting nested too deeply";
                goto fail;
            }
            if (template_lex_ctx(&lx, &ctx, &msg) < 0) {
                bad = open;
                goto fail;
            }
            lx.word_start = false;
        }
        xgrow((void **)&t->refs, &cap, t->nrefs + 1, sizeof(*t->refs));
        t->refs[t->nrefs++] = (struct template_ref){
            .lit_off = lit,
            .lit_len = open - lit,
            .offset = open,
            .name = xstrndup(s + name, name_end - name),
            .ctx = ctx,
        };
        i = lit = j + 2;
    }
    t->tail_off = lit;
    t->tail_len = len - lit;
    *out = t;
    return 0;
fail:
    err_set(err, -EINVAL, "%s", msg);
fail_set: /* err is filled */
    template_free(t);
    *out = NULL;
    if (err_offset)
        *err_offset = bad;
    return -EINVAL;
}

void template_free(struct template *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nrefs; i++)
        free(t->refs[i].name);
    free(t->refs);
    free(t->src);
    free(t);
}

const char *template_source(const struct template *t)
{
    return t->src;
}

bool template_is_literal(const struct template *t)
{
    return t->nrefs == 0;
}

size_t template_nrefs(const struct template *t)
{
    return t->nrefs;
}

const char *template_ref(const struct template *t, size_t i, size_t *offset)
{
    if (i >= t->nrefs)
        return NULL;
    if (offset)
        *offset = t->refs[i].offset;
    return t->refs[i].name;
}

/* --- escaping ----------------------------------------------------------------------------- */

static bool template_shell_safe(const char *s, size_t n)
{
    static const char *const reserved[] = {"if",   "then",     "else",   "elif",  "fi",    "do",
                                           "done", "case",     "esac",   "while", "until", "for",
                                           "in",   "function", "select", "time",  "coproc"};
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("_./:=@%+,-", c)) ||
            c == 0)
            return false;
    }
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strlen(reserved[i]) == n && memcmp(reserved[i], s, n) == 0)
            return false;
    return true;
}

/* Appends s[0..n) with every ' as '\'' (the inside of a '...' string), and newlines as spaces
 * when flatten is set. */
static int template_sq_body(struct buf *out, const char *s, size_t n, bool flatten)
{
    size_t from = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '\'' && !(flatten && s[i] == '\n'))
            continue;
        int r = buf_add(out, s + from, i - from);
        if (r == 0 && i < n)
            r = buf_adds(out, s[i] == '\'' ? "'\\''" : " ");
        if (r < 0)
            return r;
        from = i + 1;
    }
    return 0;
}

/* The unquoted form: as it is when safe, else '...'. */
static int template_unquoted(struct buf *out, const char *s, size_t n, bool flatten)
{
    if (template_shell_safe(s, n))
        return buf_add(out, s, n);
    int r = buf_addc(out, '\'');
    if (r == 0)
        r = template_sq_body(out, s, n, flatten);
    if (r == 0)
        r = buf_addc(out, '\'');
    return r;
}

static int template_dq_body(struct buf *out, const char *s, size_t n)
{
    size_t from = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && !strchr("$`\"\\", s[i]))
            continue;
        int r = buf_add(out, s + from, i - from);
        if (r == 0 && i < n)
            r = buf_addc(out, '\\');
        if (r < 0)
            return r;
        from = i; /* the special character itself goes out with the next run */
    }
    return 0;
}

static int template_ansi_body(struct buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int r = template_shell_safe(s + i, 1) ? buf_addc(out, s[i])
                                              : buf_addf(out, "\\x%02x", (unsigned char)s[i]);
        if (r < 0)
            return r;
    }
    return 0;
}

int template_shell_quote(struct buf *out, const char *s, size_t n)
{
    size_t keep = out->len;
    int r = template_unquoted(out, s, n, false);
    if (r < 0)
        buf_truncate(out, keep);
    return r;
}

int template_url_encode(struct buf *out, const char *s, size_t n)
{
    size_t keep = out->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
        int r = unreserved ? buf_addc(out, (char)c) : buf_addf(out, "%%%02X", c);
        if (r < 0) {
            buf_truncate(out, keep);
            return r;
        }
    }
    return 0;
}

/* --- expand ------------------------------------------------------------------------------- */

static int template_escape_value(const struct template *t, enum template_ctx ctx, struct buf *out,
                                 const char *v, size_t n)
{
    if (t->esc == TEMPLATE_RAW)
        return buf_add(out, v, n);
    if (t->esc == TEMPLATE_URL)
        return template_url_encode(out, v, n);
    if (memchr(v, 0, n))
        return -EINVAL;
    switch (ctx) {
    case TEMPLATE_CTX_SQUOTE:
        return template_sq_body(out, v, n, false);
    case TEMPLATE_CTX_DQUOTE:
        return template_dq_body(out, v, n);
    case TEMPLATE_CTX_ANSI:
        return template_ansi_body(out, v, n);
    case TEMPLATE_CTX_COMMENT:
        return template_unquoted(out, v, n, true);
    case TEMPLATE_CTX_PLAIN:
    case TEMPLATE_CTX_UNQUOTED:
        break;
    }
    return template_unquoted(out, v, n, false);
}

enum template_escape template_mode(const struct template *t)
{
    return t->esc;
}

/* A reference to the environment variable name[0..n) for a shell context: "${NAME}" in
 * double quotes, so it stays one word and is never split or globbed. */
static int template_env_ref(enum template_ctx ctx, struct buf *out, const char *name, size_t n)
{
    static const char *const pre[] = {
        [TEMPLATE_CTX_PLAIN] = "\"${",   [TEMPLATE_CTX_UNQUOTED] = "\"${",
        [TEMPLATE_CTX_SQUOTE] = "'\"${", [TEMPLATE_CTX_DQUOTE] = "${",
        [TEMPLATE_CTX_ANSI] = "'\"${",   [TEMPLATE_CTX_COMMENT] = "${",
    };
    static const char *const post[] = {
        [TEMPLATE_CTX_PLAIN] = "}\"",   [TEMPLATE_CTX_UNQUOTED] = "}\"",
        [TEMPLATE_CTX_SQUOTE] = "}\"'", [TEMPLATE_CTX_DQUOTE] = "}",
        [TEMPLATE_CTX_ANSI] = "}\"$'",  [TEMPLATE_CTX_COMMENT] = "}",
    };
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
              (i && c >= '0' && c <= '9')))
            return -EINVAL;
    }
    if (n == 0)
        return -EINVAL;
    int r = buf_adds(out, pre[ctx]);
    if (r == 0)
        r = buf_add(out, name, n);
    if (r == 0)
        r = buf_adds(out, post[ctx]);
    return r;
}

int template_expand(const struct template *t, template_lookup_fn lookup, void *ud, struct buf *out,
                    const char **missing)
{
    size_t keep = out->len;
    int r = 0;
    for (size_t i = 0; i < t->nrefs && r == 0; i++) {
        const struct template_ref *ref = &t->refs[i];
        r = buf_add(out, t->src + ref->lit_off, ref->lit_len);
        if (r < 0)
            break;
        const char *v = NULL;
        size_t vlen = 0;
        r = lookup(ud, ref->name, &v, &vlen);
        if (r == TEMPLATE_ENV_REF)
            r = t->esc == TEMPLATE_SHELL ? template_env_ref(ref->ctx, out, v, vlen) : -EINVAL;
        else if (r == 0)
            r = template_escape_value(t, ref->ctx, out, v ? v : "", v ? vlen : 0);
        if (r == -ENOENT || r == -EINVAL) {
            if (missing)
                *missing = ref->name;
            r = r == -EINVAL ? -EINVAL : -ENOENT;
        }
    }
    if (r == 0)
        r = buf_add(out, t->src + t->tail_off, t->tail_len);
    if (r < 0)
        buf_truncate(out, keep);
    return r;
}
