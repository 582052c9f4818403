/* print.h: a daemon's reply on stdout, as one JSON object (print_json.c)
 * or as indented "name: value" lines (print_human.c). */
#ifndef PT_CLI_PRINT_H
#define PT_CLI_PRINT_H

#include <jansson.h>

#include "pintuan.h"

/* The reply as a JSON object: every present field of the message, status
 * by its name. The caller owns it (json_decref). */
json_t *cli_reply_json(const pintuan_response *r);

/* One line: the reply as compact JSON, fields in the message's order. */
void cli_print_json(const pintuan_response *r);

/* "STATUS detail (replay)", then the reply's fields, one a line. */
void cli_print_human(const pintuan_response *r);

#endif
