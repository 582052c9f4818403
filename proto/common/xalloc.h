/* Allocation that cannot fail quietly: out of memory is fatal, as in Redis'
 * zmalloc, because a half-applied decision is worse than a restart from the
 * mirror. */
#ifndef PT_XALLOC_H
#define PT_XALLOC_H

#include <stddef.h>

void *pt_xmalloc(size_t n);
void *pt_xcalloc(size_t n, size_t size);
void *pt_xrealloc(void *p, size_t n);
/* Prints the message and aborts: for states the engine cannot continue from. */
_Noreturn void pt_fatal(const char *what);

#endif
