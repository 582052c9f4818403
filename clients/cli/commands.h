/* commands.h: pintuan-cli's commands, as a table: what each one is called,
 * the function that runs it, the options it takes and its synopsis in
 * --help, which is generated from the table (and from the option tables in
 * options.c), so the two cannot drift. */
#ifndef PT_CLI_COMMANDS_H
#define PT_CLI_COMMANDS_H

#include <stdio.h>

#include "cli.h"
#include "options.h"

typedef struct cli_command {
  const char *name; /* the command word */
  const char *sub;  /* its subcommand ("campaign create"), or NULL */
  /* runs it with its parsed words: the exit status */
  int (*run)(cli_ctx *c, const cli_args *a);
  /* --help's one line: the positional words and any option it needs; the
   * other options it takes are listed after these ([--opt METAVAR]) */
  const char *synopsis;
  const char *note; /* after the options in --help, or NULL */
  unsigned allowed; /* BIT(O_...) of the options it takes */
} cli_command;

/* in --help's order; ends with an entry of name NULL */
extern const cli_command cli_commands[];

/* Runs the command argv[0] (argc words, its subcommand and arguments
 * after it): finds it in the table, parses its words, runs it. The exit
 * status; EX_USAGE, after saying why, for an unknown command or bad words. */
int cli_run_command(cli_ctx *c, int argc, char **argv);

/* The whole --help text. */
void cli_usage(FILE *f);

#endif
