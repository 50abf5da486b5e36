/*
 * cmd_token.c - `baram token NAME [--ttl 1h]` (SPEC section 3): an admin
 * tool that mints a JWT for an existing user, with the user's role from the
 * store, signed with the home's secret.key (auth_issue, HS256) and the
 * issuer, audience and default lifetime of baram.yaml's auth section. The
 * bare token goes to stdout (nothing else), so `$(baram token alice)` works;
 * problems go to stderr. Main thread.
 */
#include "cli/cmd.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/auth.h"
#include "base/compiler.h"
#include "base/err.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/home.h"
#include "dag/duration.h"
#include "store/store.h"

#define TOKEN_TTL_MAX_MS (366LL * 24 * 3600 * 1000)

static const char usage[] =
    "usage: baram token NAME [--ttl DURATION]\n"
    "\n"
    "Prints a JWT (HS256, signed with the home's secret.key) for the existing user NAME,\n"
    "with its role, for `Authorization: Bearer TOKEN`. --ttl: its lifetime (\"30m\", \"1h\",\n"
    "\"7d\"; default baram.yaml auth.token_ttl, 1h; at most 366 days).\n"
    "\n"
    "exit: 0, 1 no such user or the database failed, 2 usage error or no secret.key\n";

int cmd_token(int argc, char **argv)
{
    struct err se = {0};
    const char *home_flag = NULL, *ttl_s = NULL, *pos[1];
    size_t npos = 0;
    const struct args_flag flags[] = {
        {"ttl", ARGS_STRING, NULL, &ttl_s, NULL},
        {"home", ARGS_STRING, NULL, &home_flag, NULL},
    };
    int r = args_parse("token", argc, argv, flags, ARRAY_SIZE(flags), pos, 1, &npos);
    if (r == ARGS_HELP) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (r < 0)
        return EXIT_USAGE;
    if (npos != 1) {
        fputs("baram token: expected NAME; see 'baram token --help'\n", stderr);
        return EXIT_USAGE;
    }
    const char *name = pos[0];
    int64_t ttl_ms = 0;
    if (ttl_s &&
        (duration_parse(ttl_s, &ttl_ms) < 0 || ttl_ms < 1000 || ttl_ms > TOKEN_TTL_MAX_MS)) {
        fprintf(stderr, "baram token: bad --ttl '%.40s': expected a duration from 1s to 366d\n",
                ttl_s);
        return EXIT_USAGE;
    }
    if (!auth_name_ok(name)) {
        fprintf(stderr, "baram token: bad NAME '%.80s'\n", name);
        return EXIT_USAGE;
    }
    struct home h;
    if (home_setup(&h, "token", home_flag) < 0) {
        home_release(&h);
        return EXIT_USAGE;
    }
    int ret = EXIT_USAGE;
    char *tok = NULL;
    struct err err = {0};
    struct store *s = NULL;
    struct auth *a = NULL;
    struct user_rec u = {0};
    enum auth_role role;
    if ((r = home_open_store(&h, false, &s, &err)) < 0) {
        fprintf(stderr, "baram token: %s%s\n", err_msg(&err),
                r == -ENOENT ? " (run `baram init`)" : "");
        goto out;
    }
    r = store_get_user(s, name, &u, &se);
    if (r == -ENOENT) {
        fprintf(stderr, "baram token: no user '%s' (see 'baram users list')\n", name);
        ret = EXIT_FAILED;
        goto out;
    }
    if (r < 0) {
        fprintf(stderr, "baram token: %s\n", err_msg(&se));
        ret = EXIT_FAILED;
        goto out;
    }
    if (auth_role_parse(u.role, &role) < 0) {
        fprintf(stderr, "baram token: user '%s' has an unknown role\n", name);
        ret = EXIT_FAILED;
        goto out;
    }
    struct auth_opts o = {
        .home = h.dir,
        .token_ttl_ms = h.auth.token_ttl_ms,
        .issuer = h.auth.issuer ? h.auth.issuer : "baram",
        .audience = h.auth.audience ? h.auth.audience : "baram",
        .public_key = h.auth.public_key,
    };
    if ((r = auth_open(&o, &a, &se)) < 0) {
        fprintf(stderr, "baram token: %s\n", err_msg(&se));
        goto out;
    }
    int64_t expires_in;
    /* The generation read with the row: a revocation since then refuses the token. */
    if ((r = auth_issue_user(a, name, role, u.revoked_gen, ttl_ms, &tok, &expires_in)) < 0) {
        fprintf(stderr, "baram token: cannot issue a token: %s\n", err_str(r));
        ret = EXIT_FAILED;
        goto out;
    }
    printf("%s\n", tok);
    ret = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAILED;

out:
    free(tok);
    auth_close(a);
    user_rec_release(&u);
    store_close(s);
    home_release(&h);
    return ret;
}
