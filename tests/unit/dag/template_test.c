/*
 * template_test.c - {{ name }} templates: compile errors with their offsets,
 * expansion through a lookup table (RAW, URL, SHELL), and the hostile suite:
 * every hostile value in every shell context is expanded with TEMPLATE_SHELL
 * and really run by /bin/sh -c (and bash, when installed) in an empty
 * temporary folder; the test asserts that stdout is exactly the value (with
 * the literal text around it) and that the folder is still empty, so the
 * shell took the value as data and ran nothing from it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/compiler.h"
#include "base/err.h"
#include "dag/template.h"

struct kv {
    const char *name;
    const char *val;
    size_t len; /* 0: strlen(val) */
};

static int table_lookup(void *ud, const char *name, const char **val, size_t *vlen)
{
    for (const struct kv *kv = ud; kv->name; kv++) {
        if (strcmp(kv->name, name) == 0) {
            *val = kv->val;
            *vlen = kv->len ? kv->len : strlen(kv->val);
            return 0;
        }
    }
    return -ENOENT;
}

static struct template *compile_ok(const char *src, enum template_escape esc)
{
    struct template *t = NULL;
    size_t off = 0;
    struct err e = {0};
    int r = template_compile(src, strlen(src), esc, &t, &off, &e);
    if (r != 0)
        fail_msg("'%s' rejected at %zu: %s", src, off, e.msg);
    return t;
}

/* Expands src with one value for params.v; the caller frees the result. */
static char *expand_one(const char *src, enum template_escape esc, const char *v, size_t vlen)
{
    struct kv kv[] = {{"params.v", v, vlen}, {NULL, NULL, 0}};
    struct template *t = compile_ok(src, esc);
    struct buf b = BUF_INIT(BUF_NO_MAX);
    const char *missing = NULL;
    assert_int_equal(template_expand(t, table_lookup, kv, &b, &missing), 0);
    template_free(t);
    size_t n;
    return buf_detach(&b, &n);
}

static void compile_errors_have_offsets(void **state)
{
    static const struct {
        const char *src;
        enum template_escape esc;
        size_t off;
        const char *msg;
    } cases[] = {
        {"echo {{ x", TEMPLATE_RAW, 5, "unterminated '{{'"},
        {"{{", TEMPLATE_RAW, 0, "unterminated '{{'"},
        {"ab {{ a }", TEMPLATE_RAW, 3, "unterminated '{{'"},
        {"a {{}}", TEMPLATE_RAW, 2, "empty name in '{{ }}'"},
        {"{{ }}", TEMPLATE_URL, 0, "empty name in '{{ }}'"},
        {"{{ a! }}", TEMPLATE_RAW, 4, "bad character '!' in template name"},
        {"{{ a }x", TEMPLATE_RAW, 5, "bad character '}' in template name"},
        {"{{{ a }}}", TEMPLATE_RAW, 2, "bad character '{' in template name"},
        {"{{ a\n}}", TEMPLATE_RAW, 4, "bad character '\\x0a' in template name"},
        {"{{ a b }}", TEMPLATE_RAW, 4, "space in template name"},
        {"ok {{ a }} then {{ $x }}", TEMPLATE_SHELL, 19, "bad character '$' in template name"},
        {"echo \\{{ v }}", TEMPLATE_SHELL, 6, "template reference right after '\\'"},
        {"echo \"\\{{ v }}\"", TEMPLATE_SHELL, 7, "template reference right after '\\'"},
        {"echo ${{ v }}", TEMPLATE_SHELL, 6, "template reference right after '$'"},
        {"echo \"${{ v }}\"", TEMPLATE_SHELL, 7, "template reference right after '$'"},
        {"echo `{{ v }}`", TEMPLATE_SHELL, 6,
         "template reference inside backticks is not supported (use $(...))"},
        {"echo \"`{{ v }}`\"", TEMPLATE_SHELL, 7,
         "template reference inside backticks is not supported (use $(...))"},
        {"echo ${x:-{{ v }}}", TEMPLATE_SHELL, 10,
         "template reference inside '${...}' is not supported"},
        {"echo $(( {{ v }} ))", TEMPLATE_SHELL, 9,
         "template reference inside '$((...))' or '((...))' is not supported"},
        {"for ((i = 0; i < {{ n }}; i++)); do :; done", TEMPLATE_SHELL, 17,
         "template reference inside '$((...))' or '((...))' is not supported"},
        {"x; (( {{ n }} ))", TEMPLATE_SHELL, 6,
         "template reference inside '$((...))' or '((...))' is not supported"},
        {"cat <<EOF\n{{ v }}\nEOF\n", TEMPLATE_SHELL, 10,
         "template reference after a here-document ('<<') is not supported"},
        {"x=$(case a in a) echo;; esac) {{ v }}", TEMPLATE_SHELL, 30,
         "template reference after 'case' inside $(...) is not supported"},
        {"echo `date +'%s'` {{ v }}", TEMPLATE_SHELL, 18,
         "template reference after quotes or '(' inside backticks is not supported (use $(...))"},
        {"echo $'a\\'' {{ v }}", TEMPLATE_SHELL, 12,
         "template reference after \\' inside $'...' is not supported"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct template *t = (struct template *)1;
        size_t off = 999;
        struct err e = {0};
        int r = template_compile(cases[i].src, strlen(cases[i].src), cases[i].esc, &t, &off, &e);
        if (r != -EINVAL || e.code != -EINVAL || off != cases[i].off ||
            strcmp(e.msg, cases[i].msg) != 0)
            fail_msg("'%s': r=%d at %zu '%s', want %zu '%s'", cases[i].src, r, off, e.msg,
                     cases[i].off, cases[i].msg);
        assert_null(t);
    }
    /* The same reference outside a shell is fine. */
    struct template *t = compile_ok("echo ${{ v }} `{{ v }}`", TEMPLATE_RAW);
    template_free(t);
    /* Nesting too deep for the lexer is an error, not a crash. */
    char deep[400] = "";
    for (int i = 0; i < 100; i++)
        memcpy(deep + i * 3, "\"$(", 3);
    memcpy(deep + 300, "{{ v }}", 8);
    size_t off;
    struct err e = {0};
    assert_int_equal(template_compile(deep, strlen(deep), TEMPLATE_SHELL, &t, &off, &e), -EINVAL);
    assert_string_equal(e.msg, "shell quoting nested too deeply");
    assert_int_equal(off, 94); /* the '$' of the 32nd "$(: 1 + 63 levels */
}

static void literal_text_and_refs(void **state)
{
    const char *src = "a { b } c }} { {x} {{ds}} and {{  params.region\t}} {{outputs.x-y.z}}";
    struct template *t = compile_ok(src, TEMPLATE_SHELL);
    assert_string_equal(template_source(t), src);
    assert_false(template_is_literal(t));
    assert_int_equal(template_nrefs(t), 3);
    size_t off;
    assert_string_equal(template_ref(t, 0, &off), "ds");
    assert_int_equal(off, 19);
    assert_string_equal(template_ref(t, 1, &off), "params.region");
    assert_int_equal(off, 30);
    assert_string_equal(template_ref(t, 2, &off), "outputs.x-y.z");
    assert_null(template_ref(t, 3, &off));
    template_free(t);

    t = compile_ok("plain { text } }}", TEMPLATE_SHELL);
    assert_true(template_is_literal(t));
    struct buf b = BUF_INIT(100);
    struct kv none[] = {{NULL, NULL, 0}};
    assert_int_equal(template_expand(t, table_lookup, none, &b, NULL), 0);
    assert_string_equal(b.data, "plain { text } }}");
    buf_release(&b);
    template_free(t);
    template_free(NULL);

    t = compile_ok("", TEMPLATE_RAW);
    assert_true(template_is_literal(t));
    assert_string_equal(template_source(t), "");
    template_free(t);
}

static void expands_raw_url_and_shell(void **state)
{
    struct kv kv[] = {{"ds", "2026-11-29", 0},
                      {"params.q", "a b/c?d=\xc3\xa9~&x", 0},
                      {"params.n", "it's", 0},
                      {NULL, NULL, 0}};
    struct buf b = BUF_INIT(BUF_NO_MAX);
    const char *missing = NULL;

    struct template *t = compile_ok("run {{ ds }} {{params.n}}!", TEMPLATE_RAW);
    assert_int_equal(template_expand(t, table_lookup, kv, &b, &missing), 0);
    assert_string_equal(b.data, "run 2026-11-29 it's!");
    template_free(t);

    buf_reset(&b);
    t = compile_ok("http://h/x?ds={{ ds }}&q={{ params.q }}", TEMPLATE_URL);
    assert_int_equal(template_expand(t, table_lookup, kv, &b, &missing), 0);
    assert_string_equal(b.data, "http://h/x?ds=2026-11-29&q=a%20b%2Fc%3Fd%3D%C3%A9~%26x");
    template_free(t);

    buf_reset(&b);
    t = compile_ok("echo {{ ds }} {{ params.n }} \"{{ params.n }}\" '{{ params.n }}'",
                   TEMPLATE_SHELL);
    assert_int_equal(template_expand(t, table_lookup, kv, &b, &missing), 0);
    assert_string_equal(b.data, "echo 2026-11-29 'it'\\''s' \"it's\" 'it'\\''s'");

    /* An unknown name: -ENOENT, its name, and out untouched. */
    struct template *u = compile_ok("pre {{ ds }} {{ nope }}", TEMPLATE_SHELL);
    buf_reset(&b);
    assert_int_equal(buf_adds(&b, "keep"), 0);
    assert_int_equal(template_expand(u, table_lookup, kv, &b, &missing), -ENOENT);
    assert_string_equal(missing, "nope");
    assert_string_equal(b.data, "keep");
    template_free(u);

    /* Past out->max: ERR_TOO_BIG, out untouched. */
    struct buf small = BUF_INIT(20);
    assert_int_equal(template_expand(t, table_lookup, kv, &small, &missing), ERR_TOO_BIG);
    assert_int_equal(small.len, 0);
    buf_release(&small);
    template_free(t);

    /* A NUL byte cannot go into a shell command. */
    struct kv nul[] = {{"params.v", "a\0b", 3}, {NULL, NULL, 0}};
    t = compile_ok("echo {{ params.v }}", TEMPLATE_SHELL);
    buf_reset(&b);
    assert_int_equal(template_expand(t, table_lookup, nul, &b, &missing), -EINVAL);
    assert_string_equal(missing, "params.v");
    assert_int_equal(b.len, 0);
    template_free(t);
    t = compile_ok("{{ params.v }}", TEMPLATE_RAW);
    assert_int_equal(template_expand(t, table_lookup, nul, &b, &missing), 0);
    assert_int_equal(b.len, 3);
    template_free(t);
    buf_release(&b);
}

static void escapers(void **state)
{
    static const struct {
        const char *in, *out;
    } q[] = {
        {"abc", "abc"},
        {"2026-11-29T03:00:00.000Z", "2026-11-29T03:00:00.000Z"},
        {"a=b,c@d%e+f/g.h:i_j", "a=b,c@d%e+f/g.h:i_j"},
        {"", "''"},
        {"a b", "'a b'"},
        {"it's", "'it'\\''s'"},
        {"'", "''\\'''"},
        {"if", "'if'"},
        {"case", "'case'"},
        {"~", "'~'"},
        {"*", "'*'"},
        {"$x", "'$x'"},
    };
    struct buf b = BUF_INIT(BUF_NO_MAX);
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
        buf_reset(&b);
        assert_int_equal(template_shell_quote(&b, q[i].in, strlen(q[i].in)), 0);
        assert_string_equal(b.data, q[i].out);
    }
    buf_reset(&b);
    assert_int_equal(template_url_encode(&b, "AZaz09-._~ /%\x01\xff", 15), 0);
    assert_string_equal(b.data, "AZaz09-._~%20%2F%25%01%FF");
    buf_release(&b);

    struct buf small = BUF_INIT(5);
    assert_int_equal(buf_adds(&small, "ab"), 0);
    assert_int_equal(template_shell_quote(&small, "x y", 3), ERR_TOO_BIG);
    assert_string_equal(small.data, "ab");
    assert_int_equal(template_url_encode(&small, "   ", 3), ERR_TOO_BIG);
    assert_string_equal(small.data, "ab");
    buf_release(&small);

    /* $'...': only safe bytes and \xHH, whatever the shell makes of $'. */
    char *s = expand_one("printf %s $'{{ params.v }}'", TEMPLATE_SHELL, "a'b\n\\", 0);
    assert_string_equal(s, "printf %s $'a\\x27b\\x0a\\x5c'");
    free(s);
    /* In a comment, a newline cannot end the comment. */
    s = expand_one("true # {{ params.v }}\n", TEMPLATE_SHELL, "x\ntouch PWNED", 0);
    assert_string_equal(s, "true # 'x touch PWNED'\n");
    free(s);
}

/* --- the hostile suite --------------------------------------------------------------------- */

/* Runs script with shell -c in dir; returns its stdout (caller frees) and exit status. */
static char *run_shell(const char *shell, const char *script, const char *dir, int *status)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (chdir(dir) != 0 || dup2(p[1], 1) < 0)
            _exit(126);
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 2);
        }
        alarm(10); /* a runaway script dies */
        execl(shell, shell, "-c", script, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    struct buf out = BUF_INIT(BUF_NO_MAX);
    char chunk[4096];
    for (;;) {
        ssize_t n = read(p[0], chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        assert_int_equal(buf_add(&out, chunk, (size_t)n), 0);
    }
    close(p[0]);
    assert_int_equal(waitpid(pid, status, 0), pid);
    size_t len;
    return buf_detach(&out, &len);
}

static bool dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    bool empty = true;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = false;
    closedir(d);
    return empty;
}

struct hostile_ctx {
    const char *src;
    const char *before, *after; /* literal output around the value */
    bool comment;               /* the value must not show at all */
    bool bash_only;
    bool echo; /* dash's echo reads '\' escapes and "-n": skip values with those */
};

static const struct hostile_ctx hostile_ctxs[] = {
    {"printf '%s' {{ params.v }}", "", "", false, false, false},
    {"echo {{ params.v }}", "", "\n", false, false, true},
    {"echo \"{{ params.v }}\"", "", "\n", false, false, true},
    {"echo '{{ params.v }}'", "", "\n", false, false, true},
    {"echo x{{ params.v }}y", "x", "y\n", false, false, true},
    {"echo \"$(echo {{ params.v }})\"y", "", "y\n", false, false, true},
    {"printf '%s' \"{{ params.v }}\"", "", "", false, false, false},
    {"printf '%s' '{{ params.v }}'", "", "", false, false, false},
    {"printf '%s' x{{ params.v }}y", "x", "y", false, false, false},
    {"printf '%s' \"$(printf '%s' {{ params.v }}y)\"", "", "y", false, false, false},
    {"printf '%s' \"a$(printf '%s' \"{{ params.v }}\"; printf y)b\"", "a", "yb", false, false,
     false},
    {"printf '%s' \"a$(printf '%s' '{{ params.v }}'; printf y)b\"", "a", "yb", false, false, false},
    {"printf '%s' \"x'{{ params.v }}'y\"", "x'", "'y", false, false, false},
    {"printf '%s' '\"'{{ params.v }}'\"'", "\"", "\"", false, false, false},
    {"printf '%s' x'a'{{ params.v }}\"b\"", "xa", "b", false, false, false},
    {"v={{ params.v }}; printf '%s' \"$v\"", "", "", false, false, false},
    {"(printf '%s' {{ params.v }})", "", "", false, false, false},
    {"( (printf '%s' {{ params.v }}) )", "", "", false, false, false},
    {"(( 1 )) ; printf '%s' {{ params.v }}", "", "", false, true, false},
    {"if true; then printf '%s' {{ params.v }}; fi", "", "", false, false, false},
    {"printf '%s' ok # {{ params.v }} \nprintf '%s' !", "ok!", "", true, false, false},
    {"printf '%s' $(( 1 + 2 )) \"$HOME\" {{ params.v }} >&1", "3/nonexistent", "", false, false,
     false},
    {"printf '%s' $'{{ params.v }}'", "", "", false, true, false},
};

static void hostile_values_stay_data(void **state)
{
    static char quotes[10001], dquotes[10001], backslashes[10001], bytes[128];
    memset(quotes, '\'', 10000);
    memset(dquotes, '"', 10000);
    memset(backslashes, '\\', 10000);
    for (int i = 1; i < 128; i++)
        bytes[i - 1] = (char)i;
    const char *values[] = {
        "'; touch PWNED; '",
        "$(touch PWNED)",
        "`touch PWNED`",
        "\"; touch PWNED; \"",
        "\\",
        "\\\"",
        "$HOME",
        "${HOME}",
        "a b",
        "\ntouch PWNED",
        "x\n#\ntouch PWNED\n",
        "' \"$(touch PWNED)\" '",
        "",
        quotes,
        dquotes,
        backslashes,
        bytes,
        "a;touch PWNED",
        "a&&touch PWNED",
        "a|touch PWNED",
        ">PWNED",
        "}} {{ params.v }}",
        "-n",
        "*",
        "~",
        "!",
        "#",
        "if",
        "case",
        "\\'",
        "'",
        "\"",
        ")",
        ") ; touch PWNED ; (",
        "$(( 1 ))",
        "a\nb\n\n",
        "\xc3\xa9\xff\x80",
        "\\n\\c\\0",
    };
    char dir[] = "/tmp/baram-template-XXXXXX";
    assert_non_null(mkdtemp(dir));
    setenv("HOME", "/nonexistent", 1);
    const char *shells[] = {"/bin/sh", "/bin/bash"};
    int runs = 0;
    for (size_t s = 0; s < 2; s++) {
        if (access(shells[s], X_OK) != 0)
            continue;
        for (size_t c = 0; c < sizeof(hostile_ctxs) / sizeof(hostile_ctxs[0]); c++) {
            const struct hostile_ctx *ctx = &hostile_ctxs[c];
            if (ctx->bash_only && s == 0)
                continue;
            for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
                size_t vl = strlen(values[v]);
                if (ctx->echo && (strchr(values[v], '\\') || values[v][0] == '-' ||
                                  (vl && values[v][vl - 1] == '\n')))
                    continue; /* echo's own quirks, and $(...) eats trailing newlines */
                char *script = expand_one(ctx->src, TEMPLATE_SHELL, values[v], 0);
                int status;
                char *out = run_shell(shells[s], script, dir, &status);
                struct buf want = BUF_INIT(BUF_NO_MAX);
                assert_int_equal(buf_adds(&want, ctx->before), 0);
                if (!ctx->comment)
                    assert_int_equal(buf_adds(&want, values[v]), 0);
                assert_int_equal(buf_adds(&want, ctx->after), 0);
                if (strcmp(out, want.data) != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
                    !dir_is_empty(dir))
                    fail_msg("%s: context %zu value %zu: script [%.200s] printed [%.200s] "
                             "want [%.200s], status %d, folder %s",
                             shells[s], c, v, script, out, want.data, status,
                             dir_is_empty(dir) ? "empty" : "NOT EMPTY");
                buf_release(&want);
                free(out);
                free(script);
                runs++;
            }
        }
    }
    print_message("hostile suite: %d shell runs\n", runs);
    assert_true(runs >= 15 * 30);
    assert_int_equal(rmdir(dir), 0);
}

static int envref_lookup(void *ud, const char *name, const char **val, size_t *vlen)
{
    *val = "BARAM_VAR_T";
    *vlen = strlen(*val);
    return TEMPLATE_ENV_REF;
}

/* vars: a secret's reference becomes "${NAME}" quoted for its context: every shell context
 * of the hostile suite prints the value from the environment, as it prints an inline value,
 * and the command's text never holds the value. */
static void env_refs_read_the_environment(void **state)
{
    const char *values[] = {"s3cr3t value", "'; touch PWNED; '", "$(touch PWNED)",
                            "a\nb",         "\"$HOME/x\"",       "*"};
    char dir[] = "/tmp/baram-template-XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *shells[] = {"/bin/sh", "/bin/bash"};
    int runs = 0;
    for (size_t s = 0; s < 2; s++) {
        if (access(shells[s], X_OK) != 0)
            continue;
        for (size_t c = 0; c < sizeof(hostile_ctxs) / sizeof(hostile_ctxs[0]); c++) {
            const struct hostile_ctx *ctx = &hostile_ctxs[c];
            if (ctx->bash_only && s == 0)
                continue;
            struct template *t = compile_ok(ctx->src, TEMPLATE_SHELL);
            struct buf script = BUF_INIT(BUF_NO_MAX);
            assert_int_equal(template_expand(t, envref_lookup, NULL, &script, NULL), 0);
            template_free(t);
            for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
                if (ctx->echo && strchr(values[v], '\\'))
                    continue;
                setenv("BARAM_VAR_T", values[v], 1);
                int status;
                char *out = run_shell(shells[s], script.data, dir, &status);
                struct buf want = BUF_INIT(BUF_NO_MAX);
                assert_int_equal(buf_adds(&want, ctx->before), 0);
                if (!ctx->comment)
                    assert_int_equal(buf_adds(&want, values[v]), 0);
                assert_int_equal(buf_adds(&want, ctx->after), 0);
                if (strcmp(out, want.data) != 0 || strstr(script.data, values[v]) ||
                    !dir_is_empty(dir))
                    fail_msg("%s: context %zu value %zu: script [%.200s] printed [%.200s] "
                             "want [%.200s]",
                             shells[s], c, v, script.data, out, want.data);
                buf_release(&want);
                free(out);
                runs++;
            }
            buf_release(&script);
        }
    }
    unsetenv("BARAM_VAR_T");
    assert_true(runs >= 15 * 4);
    /* Not a shell template: a reference to the environment is refused. */
    struct template *t = compile_ok("x={{ params.v }}", TEMPLATE_RAW);
    struct buf b = BUF_INIT(BUF_NO_MAX);
    const char *missing = NULL;
    assert_int_equal(template_expand(t, envref_lookup, NULL, &b, &missing), -EINVAL);
    template_free(t);
    buf_release(&b);
    assert_int_equal(rmdir(dir), 0);
}

/* Random templates built from shell fragments, with values that only do harm if the shell
 * parses them as syntax (${IFS} is expanded by parsing, not by word splitting of a value), run
 * by every shell: whatever the template, no value may run its command. Templates the lexer
 * refuses are skipped; the test asserts most are accepted. */
static void random_templates_never_inject(void **state)
{
    static const char *const frags[] = {
        "echo ",
        "printf %s ",
        " ",
        "\"",
        "'",
        "$(",
        ")",
        "(",
        "#",
        "\n",
        "\\",
        ";",
        "{{ v }}",
        "{{ v }}",
        "{{ v }}",
        "$",
        "}",
        "x",
        "|",
        "&&",
        "a",
        ":",
        "if true; then ",
        " fi",
        "[",
        "]",
        "*",
        "~",
        "{",
        "-",
        "\t",
        "cat ",
        ">/dev/null ",
        "!",
        "for i in ",
        "; do ",
        "; done",
        "$'",
        "$\"",
        "((",
        "`",
        "${",
        "<<",
        "case x in x) ",
        ";; esac",
    };
    static const char *const wraps[] = {
        "\"@\"",
        "'@'",
        "$(@)",
        "(@)",
        "echo @",
        "x@y",
        "@ # c\n",
        "{ @; }",
        "if true; then @; fi",
        "for i in 1; do @; done",
        "@ | cat",
        "a=@",
        "$'@'",
        "echo \"a@b\"",
        "printf %s @",
        ": @",
        "@\n",
        "\"x$(@)y\"",
        "'a'@\"b\"",
    };
    static const char *const payloads[] = {
        ";touch${IFS}PWNED;", "$(touch${IFS}PWNED)", "`touch${IFS}PWNED`", "\ntouch${IFS}PWNED\n",
        "|touch${IFS}PWNED",  "&touch${IFS}PWNED&",  "&&touch${IFS}PWNED",
    };
    static const char *const around[] = {
        "",     "'",  "\"", "\\", ")",   "}", "'\"",   "\"'",   "\\'",
        "\\\"", "))", "`",  "$(", "\n#", " ", "esac ", "'\"$(",
    };
    char dir[] = "/tmp/baram-template-XXXXXX";
    assert_non_null(mkdtemp(dir));
    srand(20261129);
    int compiled = 0, runs = 0;
    for (int k = 0; k < 400; k++) {
        struct buf src = BUF_INIT(BUF_NO_MAX), val = BUF_INIT(BUF_NO_MAX);
        if (k % 2) { /* fragments: mostly unbalanced, so mostly syntax errors */
            int nf = 1 + rand() % 12;
            for (int i = 0; i < nf; i++)
                assert_int_equal(buf_adds(&src, frags[(size_t)rand() % ARRAY_SIZE(frags)]), 0);
        } else { /* balanced: the reference nested in 1-4 shell constructs */
            struct buf inner = BUF_INIT(BUF_NO_MAX);
            assert_int_equal(buf_adds(&inner, "{{ v }}"), 0);
            for (int d = 1 + rand() % 4; d > 0; d--) {
                const char *w = wraps[(size_t)rand() % ARRAY_SIZE(wraps)], *at = strchr(w, '@');
                struct buf outer = BUF_INIT(BUF_NO_MAX);
                assert_int_equal(buf_add(&outer, w, (size_t)(at - w)), 0);
                assert_int_equal(buf_add(&outer, inner.data, inner.len), 0);
                assert_int_equal(buf_adds(&outer, at + 1), 0);
                buf_release(&inner);
                inner = outer;
            }
            assert_int_equal(buf_add(&src, inner.data, inner.len), 0);
            buf_release(&inner);
        }
        if (!strstr(src.data, "{{"))
            assert_int_equal(buf_adds(&src, "{{ v }}"), 0);
        assert_int_equal(buf_adds(&val, around[(size_t)rand() % ARRAY_SIZE(around)]), 0);
        assert_int_equal(buf_adds(&val, payloads[(size_t)rand() % ARRAY_SIZE(payloads)]), 0);
        assert_int_equal(buf_adds(&val, around[(size_t)rand() % ARRAY_SIZE(around)]), 0);
        struct template *t = NULL;
        size_t off;
        if (template_compile(src.data, src.len, TEMPLATE_SHELL, &t, &off, NULL) == 0) {
            compiled++;
            struct kv kv[] = {{"v", val.data, 0}, {NULL, NULL, 0}};
            struct buf script = BUF_INIT(BUF_NO_MAX);
            const char *missing;
            assert_int_equal(template_expand(t, table_lookup, kv, &script, &missing), 0);
            for (size_t s = 0; s < 2; s++) {
                const char *shell = s ? "/bin/bash" : "/bin/sh";
                if (access(shell, X_OK) != 0)
                    continue;
                int status;
                free(run_shell(shell, script.data, dir, &status));
                runs++;
                if (!dir_is_empty(dir))
                    fail_msg("%s ran a value: template [%s] value [%s] script [%s]", shell,
                             src.data, val.data, script.data);
            }
            buf_release(&script);
            template_free(t);
        }
        buf_release(&src);
        buf_release(&val);
    }
    print_message("random templates: %d of 400 compiled, %d shell runs\n", compiled, runs);
    assert_true(compiled > 200);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(compile_errors_have_offsets),
        cmocka_unit_test(literal_text_and_refs),
        cmocka_unit_test(expands_raw_url_and_shell),
        cmocka_unit_test(escapers),
        cmocka_unit_test(hostile_values_stay_data),
        cmocka_unit_test(env_refs_read_the_environment),
        cmocka_unit_test(random_templates_never_inject),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
