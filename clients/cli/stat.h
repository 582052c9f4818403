/* stat.h: pintuan-cli stat: follows the daemon's /stats/stream on its admin
 * port (admin, or -a's host on port 7734) and prints a line per second,
 * `count` lines (0: until interrupted). The exit status: 0 after count
 * lines, 69 when the stream cannot be had or ends. */
#ifndef PT_CLI_STAT_H
#define PT_CLI_STAT_H

#include <stdint.h>

#include "cli.h"

int cli_stat(cli_ctx *c, const char *admin, int64_t count);

#endif
