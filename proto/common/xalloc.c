#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>

_Noreturn void pt_fatal(const char *what) {
  fprintf(stderr, "pintuan: fatal: %s\n", what);
  abort();
}

static _Noreturn void oom(size_t n) {
  fprintf(stderr, "pintuan: out of memory allocating %zu bytes\n", n);
  abort();
}

void *pt_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) oom(n);
  return p;
}

void *pt_xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) oom(n * size);
  return p;
}

void *pt_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) oom(n);
  return q;
}
