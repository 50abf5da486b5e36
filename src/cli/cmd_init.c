/*
 * cmd_init.c - `baram init` (SPEC section 3): creates the home (mode 0700),
 * its database (store_open applies the migrations) and secret.key (32
 * random bytes from libsodium, hex, mode 0600). Idempotent: an existing
 * home is completed, never overwritten; an existing key is kept (O_EXCL
 * makes the check and the creation one step, so two inits cannot race to
 * two keys). Users come later. Main thread.
 */
#include "cli/cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "base/buf.h"
#include "base/err.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/home.h"
#include "store/store.h"

static const char usage[] =
    "usage: baram init [--home DIR]\n"
    "\n"
    "Creates the home (default $BARAM_HOME or ./.baram): the database and secret.key.\n"
    "Running it again keeps everything that exists.\n";

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

    struct home h;
    int ret = EXIT_USAGE;
    char *err = NULL;
    struct store *s = NULL;
    if (home_setup(&h, "init", home_flag) < 0)
        goto out;
    struct stat st;
    bool existed = stat(h.dir, &st) == 0 && S_ISDIR(st.st_mode);
    if ((r = home_create(&h, &err)) < 0) {
        fprintf(stderr, "baram init: %s\n", err);
        goto out;
    }
    if ((r = store_open(h.db, &s, &err)) < 0) {
        fprintf(stderr, "baram init: cannot open the database '%s': %s\n", h.db,
                err ? err : err_str(r));
        ret = EXIT_FAILED;
        goto out;
    }
    int key = make_key(h.dir);
    if (key < 0) {
        fprintf(stderr, "baram init: cannot create '%s/secret.key': %s\n", h.dir, strerror(-key));
        ret = EXIT_FAILED;
        goto out;
    }
    if (existed)
        printf("home '%s' already exists (database %s%s)\n", h.dir, h.db,
               key ? ", new secret.key" : ", secret.key kept");
    else
        printf("created home '%s' (database %s, secret.key)\n", h.dir, h.db);
    ret = EXIT_OK;

out:
    free(err);
    store_close(s);
    home_release(&h);
    return ret;
}
