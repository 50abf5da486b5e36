/*
 * cli.c - the command table: `baram COMMAND [ARGS]` to the cmd_* function
 * that handles it. Each command parses its own flags and prints its own
 * --help.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fputs("usage: baram COMMAND [ARGS]\n", out);
}

int cli_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("baram %s\n", BARAM_VERSION);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    fprintf(stderr, "baram: unknown command '%s'\n", argv[1]);
    return EXIT_USAGE;
}
