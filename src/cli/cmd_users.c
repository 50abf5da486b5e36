/*
 * cmd_users.c - `baram users add NAME --role ROLE | list | delete NAME`
 * (SPEC sections 3 and 8): the API's users in the home's database.
 *
 * add takes the password from --password-stdin (one line), else
 * BARAM_PASSWORD, else a prompt on the terminal with echo off (termios,
 * asked twice); with none of these it refuses (exit 2), as it does an empty
 * password. The password is hashed at once (argon2id, auth.h) and wiped;
 * only the hash is stored. An existing user is refused unless --update is
 * given; an update revokes every token the user holds, as delete does
 * (revoke.h). delete refuses to remove the last admin, as the API does. Writes
 * that check then change run in one store transaction. Main thread;
 * everything allocated here is freed here.
 */
#include "cli/cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "api/auth.h"
#include "api/password.h"
#include "api/revoke.h"
#include "base/compiler.h"
#include "base/err.h"
#include "base/suggest.h"
#include "base/when.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/home.h"
#include "cli/out.h"
#include "ops/audit.h"
#include "store/store.h"

static const char usage[] =
    "usage: baram users add NAME --role viewer|operator|admin [--password-stdin] [--update]\n"
    "       baram users list [--json]\n"
    "       baram users delete NAME\n"
    "\n"
    "add: creates a user of the API. The password comes from --password-stdin (one line),\n"
    "else BARAM_PASSWORD, else a prompt on the terminal; it may not be empty. NAME is made of\n"
    "[A-Za-z0-9_.@-], 1 to 64 characters. --update replaces an existing user's role and\n"
    "password, and revokes the tokens they hold.\n"
    "list: every user and role.  --json   print {\"users\":[{\"name\",\"role\",\"created_at\"}]}\n"
    "delete: removes a user (never the last admin) and revokes the tokens they hold.\n"
    "\n"
    "exit: 0, 1 the database failed or the user exists / does not exist, 2 usage error\n";

/* Reads one line from fd into out (cap bytes), dropping the line end: its length, -E2BIG when
 * too long, or a negative errno. */
static ssize_t read_line(int fd, char *out, size_t cap)
{
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t got = read(fd, &c, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -errno;
        if (got == 0 || c == '\n')
            break;
        if (n + 1 >= cap)
            return -E2BIG;
        out[n++] = c;
    }
    if (n && out[n - 1] == '\r')
        n--;
    out[n] = 0;
    return (ssize_t)n;
}

/* Prompts on the terminal fd with echo off: off before the prompt shows, so that nothing typed
 * as soon as it appears is echoed (as getpass(3) does). */
static ssize_t prompt(int fd, const char *text, char *out, size_t cap)
{
    struct termios old, quiet;
    if (tcgetattr(fd, &old) < 0)
        return -errno;
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    quiet.c_lflag |= ICANON;
    if (tcsetattr(fd, TCSAFLUSH, &quiet) < 0)
        return -errno;
    fputs(text, stderr);
    fflush(stderr);
    ssize_t n = read_line(fd, out, cap);
    (void)tcsetattr(fd, TCSAFLUSH, &old);
    fputc('\n', stderr);
    return n;
}

/* The new user's password into pw (cap bytes): 0, or EXIT_USAGE after saying why. */
static int get_password(bool from_stdin, char *pw, size_t cap)
{
    const char *env = getenv("BARAM_PASSWORD");
    ssize_t n;
    if (from_stdin) {
        n = read_line(STDIN_FILENO, pw, cap);
    } else if (env) {
        n = (ssize_t)strlen(env);
        if ((size_t)n >= cap)
            n = -E2BIG;
        else
            memcpy(pw, env, (size_t)n + 1);
    } else if (isatty(STDIN_FILENO)) {
        char again[PASSWORD_MAX_BYTES + 1];
        n = prompt(STDIN_FILENO, "Password: ", pw, cap);
        if (n > 0) {
            ssize_t m = prompt(STDIN_FILENO, "Password again: ", again, sizeof again);
            bool same = m == n && strcmp(pw, again) == 0;
            sodium_memzero(again, sizeof again);
            if (!same) {
                fputs("baram users add: the passwords differ\n", stderr);
                return EXIT_USAGE;
            }
        }
    } else {
        fputs("baram users add: no password: set BARAM_PASSWORD, use --password-stdin, or run "
              "on a terminal\n",
              stderr);
        return EXIT_USAGE;
    }
    if (n == -E2BIG) {
        fprintf(stderr, "baram users add: the password is longer than %d bytes\n",
                PASSWORD_MAX_BYTES);
        return EXIT_USAGE;
    }
    if (n < 0) {
        fprintf(stderr, "baram users add: cannot read the password: %s\n", err_str((int)n));
        return EXIT_USAGE;
    }
    const char *why = password_problem(pw);
    if (why) {
        fprintf(stderr, "baram users add: %s\n", why);
        return EXIT_USAGE;
    }
    return 0;
}

static int open_store(struct home *h, const char *cmd, struct store **s)
{
    struct err err = {0};
    int r = home_open_store(h, false, s, &err);
    if (r < 0) {
        fprintf(stderr, "baram %s: %s%s\n", cmd, err_msg(&err),
                r == -ENOENT ? " (run `baram init`)" : "");
        return EXIT_USAGE;
    }
    return 0;
}

static int users_add(struct home *h, const char *name, const char *role_s, bool from_stdin,
                     bool update)
{
    struct err se = {0};
    enum auth_role role;
    if (!auth_name_ok(name)) {
        fprintf(
            stderr,
            "baram users add: bad NAME '%.80s': use 1 to %d characters of A-Z a-z 0-9 _ . @ -\n",
            name, AUTH_NAME_MAX);
        return EXIT_USAGE;
    }
    if (!role_s) {
        fputs("baram users add: --role viewer|operator|admin is required\n", stderr);
        return EXIT_USAGE;
    }
    if (auth_role_parse(role_s, &role) < 0) {
        fprintf(stderr, "baram users add: bad --role '%.40s': expected viewer, operator or admin\n",
                role_s);
        return EXIT_USAGE;
    }
    struct store *s = NULL;
    int ret = open_store(h, "users add", &s);
    if (ret)
        return ret;
    char pw[PASSWORD_MAX_BYTES + 1];
    if ((ret = get_password(from_stdin, pw, sizeof pw)) != 0) {
        sodium_memzero(pw, sizeof pw);
        store_close(s);
        return ret;
    }
    struct user_rec u = {.name = (char *)name, .role = (char *)auth_role_name(role)};
    int r = auth_hash_password(pw, &u.password_hash);
    sodium_memzero(pw, sizeof pw);
    if (r < 0) {
        fputs("baram users add: cannot hash the password (out of memory)\n", stderr);
        store_close(s);
        return EXIT_FAILED;
    }
    bool exists = false;
    r = store_begin(s, &se);
    if (r == 0) {
        /* An add is one insert that fails on an existing name: a read then a write would let
         * two concurrent adds of a name both succeed on PostgreSQL (READ COMMITTED). */
        r = store_add_user(s, &u, &se);
        if (r == -EEXIST && update) {
            exists = true;
            r = store_put_user(s, &u, &se);
        }
        /* A replaced role or password ends every session of the old one (revoke.h). */
        if (r == 0 && exists)
            r = revoke_user(s, name, &se);
        struct audit_who who;
        audit_who_cli(&who);
        if (r == 0) /* in the change's transaction: both or neither */
            r = audit_record(s, &who, exists ? "user update" : "user add", NULL, NULL, NULL,
                             json_pack("{s:s, s:s}", "name", name, "role", u.role));
        if (r == 0)
            r = store_commit(s, &se);
        else
            store_rollback(s);
    }
    if (r == -EEXIST) {
        fprintf(stderr, "baram users add: user '%s' exists (--update replaces it)\n", name);
        ret = EXIT_FAILED;
    } else if (r < 0) {
        fprintf(stderr, "baram users add: %s\n", err_msg(&se));
        ret = EXIT_FAILED;
    } else {
        printf("user %s %s (role %s)\n", name, exists ? "updated" : "added", u.role);
    }
    sodium_memzero(u.password_hash, strlen(u.password_hash));
    free(u.password_hash);
    store_close(s);
    return ret;
}

static int users_list(struct home *h, bool json)
{
    struct err se = {0};
    struct store *s = NULL;
    int ret = open_store(h, "users list", &s);
    if (ret)
        return ret;
    struct user_rec *v = NULL;
    size_t n = 0;
    if (store_list_users(s, &v, &n, &se) < 0) {
        fprintf(stderr, "baram users list: %s\n", err_msg(&se));
        store_close(s);
        return EXIT_FAILED;
    }
    json_t *arr = json_array();
    int w = 4;
    for (size_t i = 0; i < n; i++) {
        char iso[32] = "";
        if (v[i].created_at_ms >= 0)
            when_format_iso(v[i].created_at_ms, iso, sizeof iso);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s?}", "name", v[i].name, "role",
                                             v[i].role, "created_at", iso[0] ? iso : NULL));
        if ((int)strlen(v[i].name) > w)
            w = (int)strlen(v[i].name);
    }
    if (json) {
        json_t *o = json_pack("{s:O}", "users", arr);
        if (out_json_print(stdout, o) < 0)
            ret = EXIT_FAILED;
        json_decref(o);
    } else {
        printf("%-*s  %-8s  %s\n", w, "USER", "ROLE", "CREATED");
        size_t i;
        json_t *o;
        json_array_foreach(arr, i, o)
        {
            const char *at = json_string_value(json_object_get(o, "created_at"));
            printf("%-*s  %-8s  %s\n", w, json_string_value(json_object_get(o, "name")),
                   json_string_value(json_object_get(o, "role")), at ? at : "-");
        }
    }
    json_decref(arr);
    store_free_users(v, n);
    store_close(s);
    return ret;
}

static int users_delete(struct home *h, const char *name)
{
    struct err se = {0};
    struct store *s = NULL;
    int ret = open_store(h, "users delete", &s);
    if (ret)
        return ret;
    int r = auth_delete_user(s, name, &se);
    if (r == -ENOENT) {
        fprintf(stderr, "baram users delete: no user '%.80s'\n", name);
        ret = EXIT_FAILED;
    } else if (r == -EPERM) {
        fprintf(stderr, "baram users delete: '%s' is the last admin and cannot be deleted\n", name);
        ret = EXIT_FAILED;
    } else if (r < 0) {
        fprintf(stderr, "baram users delete: %s\n", err_msg(&se));
        ret = EXIT_FAILED;
    } else {
        struct audit_who who;
        audit_who_cli(&who);
        (void)audit_record(s, &who, "user delete", NULL, NULL, NULL,
                           json_pack("{s:s}", "name", name));
        printf("user %s deleted\n", name);
    }
    store_close(s);
    return ret;
}

int cmd_users(int argc, char **argv)
{
    static const char *const subs[] = {"add", "list", "delete"};
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    int which = -1;
    for (int i = 0; i < (int)ARRAY_SIZE(subs); i++)
        if (strcmp(sub, subs[i]) == 0)
            which = i;
    if (which < 0) {
        const char *near = suggest_closest(sub, subs, ARRAY_SIZE(subs));
        if (near)
            fprintf(stderr, "baram users: unknown command '%s' (did you mean '%s'?)\n", sub, near);
        else
            fprintf(stderr, "baram users: unknown command '%s'; see 'baram users --help'\n", sub);
        return EXIT_USAGE;
    }
    static const char *const cmds[] = {"users add", "users list", "users delete"};
    const char *home_flag = NULL, *role = NULL, *pos[1];
    bool json = false, from_stdin = false, update = false;
    size_t npos = 0;
    const struct args_flag add_flags[] = {
        {"role", ARGS_STRING, NULL, &role, NULL},
        {"password-stdin", ARGS_BOOL, &from_stdin, NULL, NULL},
        {"update", ARGS_BOOL, &update, NULL, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    const struct args_flag list_flags[] = {
        {"json", ARGS_BOOL, &json, NULL, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    const struct args_flag del_flags[] = {
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    int r;
    if (which == 0)
        r = args_parse(cmds[0], argc - 1, argv + 1, add_flags, ARRAY_SIZE(add_flags), pos, 1,
                       &npos);
    else if (which == 1)
        r = args_parse(cmds[1], argc - 1, argv + 1, list_flags, ARRAY_SIZE(list_flags), pos, 0,
                       &npos);
    else
        r = args_parse(cmds[2], argc - 1, argv + 1, del_flags, ARRAY_SIZE(del_flags), pos, 1,
                       &npos);
    if (r == ARGS_HELP) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (r < 0)
        return EXIT_USAGE;
    if (which != 1 && npos != 1) {
        fprintf(stderr, "baram %s: expected NAME; see 'baram users --help'\n", cmds[which]);
        return EXIT_USAGE;
    }
    if (sodium_init() < 0) {
        fputs("baram users: cannot initialise libsodium\n", stderr);
        return EXIT_FAILED;
    }
    struct home h;
    if (home_setup(&h, cmds[which], home_flag) < 0) {
        home_release(&h);
        return EXIT_USAGE;
    }
    int ret;
    if (which == 0)
        ret = users_add(&h, pos[0], role, from_stdin, update);
    else if (which == 1)
        ret = users_list(&h, json);
    else
        ret = users_delete(&h, pos[0]);
    home_release(&h);
    return ret;
}
