/* print_human.c: the human printer. Owns the reply as people read it: a
 * first line "STATUS detail (replay)", then every field of the reply (its
 * JSON object from print_json.c) as indented "name: value" lines, nested
 * messages and lists indented below their name, epoch-ms times also shown
 * as UTC dates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "print.h"

static void print_object(json_t *o, int indent, int top) {
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    if (top && (!strcmp(k, "id") || !strcmp(k, "status") || !strcmp(k, "detail")))
      continue;
    if (json_is_object(v)) {
      printf("%*s%s:\n", indent, "", k);
      print_object(v, indent + 2, 0);
    } else if (json_is_array(v)) {
      size_t i;
      json_t *e;
      json_array_foreach(v, i, e) {
        if (json_is_object(e)) {
          printf("%*s%s[%zu]:\n", indent, "", k, i);
          print_object(e, indent + 2, 0);
        } else {
          printf("%*s%s[%zu]: %s\n", indent, "", k, i, json_is_string(e) ? json_string_value(e) : "?");
        }
      }
    } else {
      char *s = json_dumps(v, JSON_ENCODE_ANY);
      const char *shown = json_is_string(v) ? json_string_value(v) : s;
      if ((strstr(k, "_ms") && json_is_integer(v) && json_integer_value(v) > 1000000000000LL &&
           strcmp(k, "hold_ms"))) {
        time_t t = (time_t)(json_integer_value(v) / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        char when[64];
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        printf("%*s%s: %s (%s.%03lldZ)\n", indent, "", k, shown, when,
               (long long)(json_integer_value(v) % 1000));
      } else {
        printf("%*s%s: %s\n", indent, "", k, shown);
      }
      free(s);
    }
  }
}

void cli_print_human(const pintuan_response *r) {
  printf("%s%s%s%s\n", pintuan_status_str(r->status), r->detail ? " " : "",
         r->detail ? r->detail : "", r->has_replay && r->replay ? " (replay)" : "");
  json_t *o = cli_reply_json(r);
  print_object(o, 2, 1);
  json_decref(o);
}
