/*
 * cmd_variables.c - `baram variables set|get|list|delete` (SPEC section 13):
 * the values templates read as {{ var.KEY }}. A secret is sealed with the
 * home's key before it reaches the store (store/vars.h) and is never printed:
 * get and list show "***" for it.
 *
 * Main thread; everything allocated here is freed here.
 */
#include "cli/cmd.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/suggest.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/home.h"
#include "cli/out.h"
#include "ops/audit.h"
#include "store/store.h"
#include "store/vars.h"

/* The audit row of a change to a variable: its key and whether it is a secret, never the
 * value. */
static void vars_audit(struct store *s, const char *action, const char *key, bool secret)
{
    struct audit_who who;
    audit_who_cli(&who);
    (void)audit_record(s, &who, action, NULL, NULL, NULL,
                       json_pack("{s:s, s:b}", "key", key, "secret", secret));
}

static const char usage[] =
    "usage: baram variables set KEY [VALUE] [--secret]\n"
    "       baram variables get KEY\n"
    "       baram variables list [--json]\n"
    "       baram variables delete KEY\n"
    "\n"
    "Variables are read by templates as {{ var.KEY }}. KEY is 1 to 200 characters of\n"
    "[A-Za-z0-9_.-]; a value is at most 64 KiB of UTF-8.\n"
    "\n"
    "set: without VALUE, the value is read from stdin (one trailing newline dropped).\n"
    "  --secret  encrypt it at rest with the home's secret key (or BARAM_SECRET_KEY_FILE);\n"
    "            it is never printed (***), passed to a command through its environment\n"
    "            and written as *** wherever it appears in a try's log\n"
    "get: prints the value (*** for a secret).\n"
    "list: every variable. --json prints {\"variables\":[{\"key\",\"value\",\"secret\",\n"
    "      \"updated_at\",\"updated_by\"}]}\n"
    "delete: removes it.\n"
    "\n"
    "exit: 0, 1 the database failed, 2 usage error, bad key or value, or no such variable\n";

#define SECRET_SHOWN "***"

static int open_store(struct home *h, const char *cmd, bool create, struct store **s)
{
    struct err err = {0};
    int r = create ? home_create(h, &err) : 0;
    if (r == 0)
        r = home_open_store(h, create, s, &err);
    if (r < 0) {
        fprintf(stderr, "baram %s: %s\n", cmd, err_msg(&err));
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* get and delete: the key checked, then the existing store opened. */
static int open_for_key(struct home *h, const char *cmd, const char *key, struct store **s)
{
    if (!var_key_ok(key)) {
        fprintf(stderr, "baram %s: " VARS_BAD_KEY_FMT "\n", cmd, key);
        return EXIT_USAGE;
    }
    return open_store(h, cmd, false, s);
}

static int no_variable(const char *cmd, const char *key)
{
    fprintf(stderr, "baram %s: no variable %s: baram variables list\n", cmd, key);
    return EXIT_USAGE;
}

static int read_stdin(struct buf *b)
{
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        if (buf_add(b, chunk, n) < 0)
            return ERR_TOO_BIG;
    if (b->len && b->data[b->len - 1] == '\n')
        buf_truncate(b, b->len - (b->len > 1 && b->data[b->len - 2] == '\r' ? 2 : 1));
    return 0;
}

static int vars_set(struct home *h, const char *key, const char *value, bool secret)
{
    const char *cmd = "variables set";
    if (!var_key_ok(key)) {
        fprintf(stderr, "baram %s: " VARS_BAD_KEY_FMT "\n", cmd, key);
        return EXIT_USAGE;
    }
    struct buf in = BUF_INIT(VAR_VALUE_MAX + 2);
    size_t len;
    if (!value) {
        if (read_stdin(&in) < 0) {
            fprintf(stderr, "baram %s: the value of '%s' is larger than 64 KiB\n", cmd, key);
            buf_release(&in);
            return EXIT_USAGE;
        }
        value = in.data;
        len = in.len;
    } else {
        len = strlen(value);
    }
    unsigned char kb[VARS_KEYBYTES];
    struct err err = {0};
    struct store *s = NULL;
    int ret = EXIT_OK;
    if (secret && vars_key_load(h->dir, kb, &err) < 0) {
        fprintf(stderr, "baram %s: %s\n", cmd, err_msg(&err));
        ret = EXIT_USAGE;
    } else if ((ret = open_store(h, cmd, true, &s)) == EXIT_OK) {
        int r = vars_write(s, kb, key, value, len, secret, "cli", &err);
        if (r < 0) {
            fprintf(stderr, "baram %s: %s\n", cmd, err_msg(&err));
            ret = r == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
        } else {
            vars_audit(s, "variable set", key, secret);
            printf("variable %s set%s\n", key, secret ? " (secret)" : "");
        }
    }
    sodium_memzero(kb, sizeof kb);
    if (in.len)
        sodium_memzero(in.data, in.len);
    buf_release(&in);
    store_close(s);
    return ret;
}

static int vars_get(struct home *h, const char *key)
{
    const char *cmd = "variables get";
    struct store *s = NULL;
    int ret = open_for_key(h, cmd, key, &s);
    if (ret != EXIT_OK)
        return ret;
    struct var_rec v;
    struct err err = {0};
    int r = store_get_var(s, key, &v, &err);
    if (r == -ENOENT) {
        ret = no_variable(cmd, key);
    } else if (r < 0) {
        fprintf(stderr, "baram %s: %s\n", cmd, err_msg(&err));
        ret = EXIT_FAILED;
    } else {
        printf("%s\n", v.secret ? SECRET_SHOWN : v.value ? v.value : "");
        var_rec_release(&v);
    }
    store_close(s);
    return ret;
}

static int vars_list(struct home *h, bool json)
{
    const char *cmd = "variables list";
    struct store *s = NULL;
    struct err err = {0};
    int r = home_open_store(h, false, &s, &err);
    if (r < 0 && r != -ENOENT) {
        fprintf(stderr, "baram %s: %s\n", cmd, err_msg(&err));
        return EXIT_USAGE;
    }
    struct var_rec *v = NULL;
    size_t n = 0;
    if (s && store_list_vars(s, &v, &n, &err) < 0) {
        fprintf(stderr, "baram %s: %s\n", cmd, err_msg(&err));
        store_close(s);
        return EXIT_FAILED;
    }
    int ret = EXIT_OK;
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            char at[40];
            when_format_iso(v[i].updated_at_ms, at, sizeof at);
            json_array_append_new(arr,
                                  json_pack("{s:s, s:s, s:b, s:s, s:s?}", "key", v[i].key, "value",
                                            v[i].secret  ? SECRET_SHOWN
                                            : v[i].value ? v[i].value
                                                         : "",
                                            "secret", v[i].secret, "updated_at", at, "updated_by",
                                            v[i].updated_by));
        }
        json_t *o = json_pack("{s:o}", "variables", arr);
        if (out_json_print(stdout, o) < 0)
            ret = EXIT_FAILED;
        json_decref(o);
    } else {
        int w = 3;
        for (size_t i = 0; i < n; i++)
            w = (int)strlen(v[i].key) > w ? (int)strlen(v[i].key) : w;
        printf("%-*s  %-6s  %s\n", w, "KEY", "SECRET", "VALUE");
        for (size_t i = 0; i < n; i++) {
            const char *val = v[i].secret ? SECRET_SHOWN : v[i].value ? v[i].value : "";
            /* One line each: a long or multi-line value is cut at its first line, 60 bytes. */
            size_t l = strcspn(val, "\r\n");
            printf("%-*s  %-6s  %.*s%s\n", w, v[i].key, v[i].secret ? "yes" : "no",
                   (int)(l > 60 ? 60 : l), val, l > 60 || val[l] ? "..." : "");
        }
    }
    vars_free(v, n);
    store_close(s);
    return ret;
}

static int vars_delete(struct home *h, const char *key)
{
    const char *cmd = "variables delete";
    struct store *s = NULL;
    int ret = open_for_key(h, cmd, key, &s);
    if (ret != EXIT_OK)
        return ret;
    struct err err = {0};
    struct var_rec v;
    bool secret = false; /* for the audit row */
    if (store_get_var(s, key, &v, NULL) == 0) {
        secret = v.secret;
        var_rec_release(&v);
    }
    int r = store_delete_var(s, key, &err);
    if (r == -ENOENT) {
        ret = no_variable(cmd, key);
    } else if (r < 0) {
        fprintf(stderr, "baram %s: %s\n", cmd, err_msg(&err));
        ret = EXIT_FAILED;
    } else {
        vars_audit(s, "variable delete", key, secret);
        printf("variable %s deleted\n", key);
    }
    store_close(s);
    return ret;
}

int cmd_variables(int argc, char **argv)
{
    static const char *const subs[] = {"set", "get", "list", "delete"};
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    size_t which = ARRAY_SIZE(subs);
    for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
        if (strcmp(sub, subs[i]) == 0)
            which = i;
    if (which == ARRAY_SIZE(subs)) {
        const char *near = suggest_closest(sub, subs, ARRAY_SIZE(subs));
        if (near)
            fprintf(stderr, "baram variables: unknown command '%s' (did you mean '%s'?)\n", sub,
                    near);
        else
            fprintf(stderr, "baram variables: unknown command '%s'; see 'baram variables --help'\n",
                    sub);
        return EXIT_USAGE;
    }
    const char *home_flag = NULL, *pos[2] = {NULL, NULL};
    bool json = false, secret = false;
    size_t npos = 0;
    struct args_flag flags[3] = {{"home", ARGS_STRING, NULL, &home_flag, NULL}};
    size_t nflags = 1;
    if (which == 0)
        flags[nflags++] = (struct args_flag){"secret", ARGS_BOOL, &secret, NULL, NULL};
    if (which == 2)
        flags[nflags++] = (struct args_flag){"json", ARGS_BOOL, &json, NULL, NULL};
    char cmd[32];
    snprintf(cmd, sizeof cmd, "variables %s", sub);
    size_t maxpos = which == 0 ? 2 : which == 2 ? 0 : 1;
    int r = args_parse(cmd, argc - 1, argv + 1, flags, nflags, pos, maxpos, &npos);
    if (r == ARGS_HELP) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (r < 0)
        return EXIT_USAGE;
    if (which != 2 && npos < 1) {
        fprintf(stderr, "baram %s: expected KEY; see 'baram variables --help'\n", cmd);
        return EXIT_USAGE;
    }
    struct home h;
    if (home_setup(&h, cmd, home_flag) < 0) {
        home_release(&h);
        return EXIT_USAGE;
    }
    int ret;
    switch (which) {
    case 0:
        ret = vars_set(&h, pos[0], npos > 1 ? pos[1] : NULL, secret);
        break;
    case 1:
        ret = vars_get(&h, pos[0]);
        break;
    case 2:
        ret = vars_list(&h, json);
        break;
    default:
        ret = vars_delete(&h, pos[0]);
        break;
    }
    home_release(&h);
    return ret;
}
