/*
 * cmd_init.c - `baram init` (SPEC section 3): creates the home (mode 0700),
 * its database (store_open applies the migrations) and secret.key (32
 * random bytes from libsodium, hex, mode 0600). Idempotent: an existing
 * home is completed, never overwritten; an existing key is kept (O_EXCL
 * makes the check and the creation one step, so two inits cannot race to
 * two keys). When the store has no user, it adds the first admin, 'admin',
 * with the password from BARAM_ADMIN_PASSWORD or, without it, 20 random
 * characters printed once to stdout (the count and the insert are one
 * transaction, so two inits cannot both make it). Main thread.
 */
#include "cli/cmd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "api/auth.h"
#include "api/password.h"
#include "base/buf.h"
#include "base/err.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/home.h"
#include "store/store.h"

static const char usage[] =
    "usage: baram init [--home DIR]\n"
    "\n"
    "Creates the home (default $BARAM_HOME or ./.baram): the database, secret.key and, when\n"
    "there is no user yet, the admin user 'admin' with the password from BARAM_ADMIN_PASSWORD\n"
    "or a generated one, printed once. Running it again keeps everything that exists.\n";

#define INIT_KEY_BYTES 32

/* Creates DIR/secret.key unless it exists: 1 created, 0 kept, or a negative errno. */
static int make_key(const char *dir)
{
    struct buf path = BUF_INIT(BUF_NO_MAX);
    (void)!buf_addf(&path, "%s/secret.key", dir);
    int fd = open(path.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    buf_release(&path);
    if (fd < 0)
        return errno == EEXIST ? 0 : -errno;
    unsigned char key[INIT_KEY_BYTES];
    char hex[2 * INIT_KEY_BYTES + 2];
    randombytes_buf(key, sizeof key);
    sodium_bin2hex(hex, sizeof hex - 1, key, sizeof key);
    sodium_memzero(key, sizeof key);
    size_t len = strlen(hex);
    hex[len++] = '\n';
    int r = 0;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, hex + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            break;
        }
        off += (size_t)n;
    }
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    sodium_memzero(hex, sizeof hex);
    close(fd);
    return r < 0 ? r : 1;
}

#define INIT_ADMIN          "admin"
#define INIT_PASSWORD_CHARS 20

/* Whether dir is a folder with something in it: a home made before. An empty folder (made
 * for the home, a mount point) is a new home. */
static bool home_in_use(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool used = false;
    for (struct dirent *e; !used && (e = readdir(d));)
        used = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return used;
}

/* Adds the first admin when the store has no user: 1 added (*generated set when the password
 * was made here: the caller prints it), 0 there were users, or a negative code. */
static int make_admin(struct store *s, char *pw, size_t cap, bool *generated, struct err *e)
{
    static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    const char *env = getenv("BARAM_ADMIN_PASSWORD");
    *generated = !env || !*env;
    if (!*generated) {
        if (strlen(env) >= cap) /* cmd_init checked it (password_problem) */
            return -E2BIG;
        memcpy(pw, env, strlen(env) + 1);
    } else {
        for (size_t i = 0; i < INIT_PASSWORD_CHARS; i++)
            pw[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
        pw[INIT_PASSWORD_CHARS] = 0;
    }
    int r = store_begin(s, e);
    if (r < 0)
        return r;
    int64_t n = 0;
    if ((r = store_count_users(s, NULL, &n, e)) < 0 || n > 0) {
        store_rollback(s);
        return r;
    }
    struct user_rec u = {.name = INIT_ADMIN, .role = (char *)auth_role_name(AUTH_ADMIN)};
    if ((r = auth_hash_password(pw, &u.password_hash)) == 0 && (r = store_put_user(s, &u, e)) == 0)
        r = store_commit(s, e);
    else
        store_rollback(s);
    free(u.password_hash);
    return r < 0 ? r : 1;
}

int cmd_init(int argc, char **argv)
{
    const char *home_flag = NULL, *pos[1];
    size_t npos;
    const struct args_flag flags[] = {{"home", ARGS_STRING, NULL, &home_flag, NULL}};
    int r = args_parse("init", argc, argv, flags, ARRAY_SIZE(flags), pos, 0, &npos);
    if (r == ARGS_HELP) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (r < 0)
        return EXIT_USAGE;
    if (sodium_init() < 0) {
        fputs("baram init: cannot initialise libsodium\n", stderr);
        return EXIT_FAILED;
    }

    /* A password given for the first admin passes the rule of every password, checked
     * before anything is made (an empty one: a password is generated). */
    const char *admin_pw = getenv("BARAM_ADMIN_PASSWORD");
    const char *why = admin_pw && *admin_pw ? password_problem(admin_pw) : NULL;
    if (why) {
        fprintf(stderr, "baram init: BARAM_ADMIN_PASSWORD: %s\n", why);
        return EXIT_USAGE;
    }
    struct home h;
    int ret = EXIT_USAGE;
    struct err err = {0};
    struct store *s = NULL;
    if (home_setup(&h, "init", home_flag) < 0)
        goto out;
    bool existed = home_in_use(h.dir);
    if ((r = home_create(&h, &err)) < 0) {
        fprintf(stderr, "baram init: %s\n", err_msg(&err));
        goto out;
    }
    struct err se = {0};
    /* The store's message names the database (a PostgreSQL URL's password left out); an
     * unreachable or wrong database is the caller's to fix, as for every command. */
    if ((r = store_open(h.db, &s, &se)) < 0) {
        fprintf(stderr, "baram init: %s\n", err_msg(&se));
        ret = EXIT_USAGE;
        goto out;
    }
    int key = make_key(h.dir);
    if (key < 0) {
        fprintf(stderr, "baram init: cannot create '%s/secret.key': %s\n", h.dir, strerror(-key));
        ret = EXIT_FAILED;
        goto out;
    }
    char pw[PASSWORD_MAX_BYTES + 1];
    bool generated = false;
    int admin = make_admin(s, pw, sizeof pw, &generated, &se);
    if (admin < 0) {
        sodium_memzero(pw, sizeof pw);
        if (admin == -E2BIG)
            fprintf(stderr, "baram init: BARAM_ADMIN_PASSWORD is longer than %d bytes\n",
                    PASSWORD_MAX_BYTES);
        else
            fprintf(stderr, "baram init: cannot add the admin user: %s\n",
                    admin == ERR_DB ? err_msg(&se) : err_str(admin));
        ret = admin == -E2BIG ? EXIT_USAGE : EXIT_FAILED;
        goto out;
    }
    char db[PATH_MAX + 64];
    store_describe(h.db, db, sizeof db);
    if (existed)
        printf("home '%s' already exists (database %s%s)\n", h.dir, db,
               key ? ", new secret.key" : ", secret.key kept");
    else
        printf("created home '%s' (database %s, secret.key)\n", h.dir, db);
    if (admin && generated)
        printf("created user '%s' (role admin) with the password:\n\n    %s\n\n"
               "It is shown only once: keep it now (baram users add %s --role admin --update\n"
               "sets a new one).\n",
               INIT_ADMIN, pw, INIT_ADMIN);
    else if (admin)
        printf("created user '%s' (role admin) with the password from BARAM_ADMIN_PASSWORD\n",
               INIT_ADMIN);
    sodium_memzero(pw, sizeof pw);
    ret = EXIT_OK;

out:
    store_close(s);
    home_release(&h);
    return ret;
}
