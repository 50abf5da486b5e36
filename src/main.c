/*
 * main.c - argv -> subcommand -> exit code; nothing else. The command table
 * lives in cli/cli.c.
 */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
