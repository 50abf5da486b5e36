/*
 * cli.h - the command line (SPEC section 3): dispatches `baram COMMAND ...`
 * to the cmd_* modules and returns the process exit code: 0 success, 1 the
 * work failed, 2 usage error or unusable input.
 */
#ifndef BARAM_CLI_CLI_H
#define BARAM_CLI_CLI_H

#define EXIT_OK     0
#define EXIT_FAILED 1
#define EXIT_USAGE  2

int cli_main(int argc, char **argv);

#endif
