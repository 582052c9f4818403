/* libpintuan's internals shared by its files (not exported: the library is
 * built with -fvisibility=hidden and only PINTUAN_API names leave it). */
#ifndef PINTUAN_CLIENT_INT_H
#define PINTUAN_CLIENT_INT_H

#include "pintuan.h"

/* Sets the client's error text (pintuan_error) and returns -1. */
int pintuan__fail(pintuan_client *c, const char *msg);

#endif
