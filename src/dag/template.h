/*
 * template.h - {{ name }} templates (SPEC section 2). A template is compiled
 * once, when the DAG is loaded, into literal segments and references; names
 * are [A-Za-z0-9_.-]+ with optional spaces inside the braces: ds, ts, run_id,
 * dag, task, try, item, params.NAME, outputs.TASK. Which names exist is the
 * DAG checker's business (dag.c); this module only parses and expands.
 *
 * Escaping is a security property. A template compiled for TEMPLATE_SHELL
 * records, for each reference, the shell quoting context it stands in
 * (unquoted, inside '...', inside "..."), found by a small lexer over the
 * literal text, and expansion escapes each value for its context, so no
 * value can end a quote or start a command substitution:
 *   unquoted:  'value' with ' as '\''  (values of only [A-Za-z0-9_./:=@%+,-]
 *              and non-empty are inserted as they are)
 *   in '...':  ' becomes '\''
 *   in "...":  $ ` " \ get a backslash
 * TEMPLATE_URL percent-encodes every byte outside RFC 3986 unreserved.
 * TEMPLATE_RAW inserts values unchanged (for_each sources, bodies, paths).
 *
 * Compiled templates are immutable: any thread may expand one.
 */
#ifndef BARAM_DAG_TEMPLATE_H
#define BARAM_DAG_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/compiler.h"

struct buf;
struct err;
struct template;

enum template_escape { TEMPLATE_RAW, TEMPLATE_SHELL, TEMPLATE_URL };

/* Compiles src[0..len). 0 and *out (free with template_free), or -EINVAL with *err_offset
 * (byte offset of the problem in src) and *err (the caller's; either may be NULL) filled:
 * "unterminated '{{'", "empty name in '{{ }}'", "bad character '!' in template name"...
 * TEMPLATE_SHELL also refuses references whose shell context is unclear (after '\' or '$',
 * inside backticks, ${...} or $((...)), after a here-document): see template.c. */
int template_compile(const char *src, size_t len, enum template_escape esc, struct template **out,
                     size_t *err_offset, struct err *err) WARN_UNUSED;
void template_free(struct template *t);

/* The escaping t was compiled for. */
enum template_escape template_mode(const struct template *t);
/* The source text, NUL-terminated (borrowed from t). */
const char *template_source(const struct template *t);
/* True if t has no references: its source is its expansion. */
bool template_is_literal(const struct template *t);
/* Number of references, and the i-th one: its name (NUL-terminated, borrowed from t) and the
 * byte offset of its '{{' in the source, for error messages. */
size_t template_nrefs(const struct template *t);
const char *template_ref(const struct template *t, size_t i, size_t *offset);

/* Resolves a name: 0 with *val and *vlen set (the bytes stay valid until template_expand
 * returns), or -ENOENT. In a TEMPLATE_SHELL template it may also return TEMPLATE_ENV_REF with
 * *val the name of an environment variable ([A-Za-z_][A-Za-z0-9_]*): the command then reads
 * the value from the environment ("${NAME}", quoted for its context) and never holds it, as
 * for a secret that must not show in the process's argv (SPEC section 13). */
#define TEMPLATE_ENV_REF 1
typedef int (*template_lookup_fn)(void *ud, const char *name, const char **val, size_t *vlen);

/* Appends the expansion of t to out, escaping each value as compiled. 0; -ENOENT with *missing
 * set to the name that lookup did not know (borrowed from t); ERR_TOO_BIG past out->max.
 * TEMPLATE_SHELL only: -EINVAL with *missing set to the name whose value holds a NUL byte
 * (a shell command cannot carry one). On error out is left as it was. */
int template_expand(const struct template *t, template_lookup_fn lookup, void *ud, struct buf *out,
                    const char **missing) WARN_UNUSED;

/* The escapers, for callers that build commands themselves: 0 or ERR_TOO_BIG. */
int template_shell_quote(struct buf *out, const char *s, size_t n) WARN_UNUSED;
int template_url_encode(struct buf *out, const char *s, size_t n) WARN_UNUSED;

#endif
