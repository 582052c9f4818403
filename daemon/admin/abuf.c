/* The admin port's growable text buffer (admin_int.h). */
#include <stdio.h>
#include <string.h>

#include "admin_int.h"
#include "xalloc.h"

void abuf_add(abuf *b, const void *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1) cap *= 2;
    b->p = pt_xrealloc(b->p, cap);
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = 0;
}

void abuf_printf(abuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char small[256];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    abuf_add(b, small, (size_t)n);
    return;
  }
  abuf_add(b, "", 0); /* make room */
  if (b->len + (size_t)n + 1 > b->cap) {
    b->cap = b->len + (size_t)n + 1;
    b->p = pt_xrealloc(b->p, b->cap);
  }
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void abuf_id(abuf *b, pt_bytes id) {
  for (size_t i = 0; i < id.len; i++) {
    uint8_t c = id.p[i];
    if (c > 0x20 && c < 0x7f && c != '\\' && c != '"') abuf_add(b, &c, 1);
    else abuf_printf(b, "\\x%02x", c);
  }
}

void abuf_id_escaped(abuf *b, pt_bytes id) {
  static const char hex[] = "0123456789abcdef";
  char t[64 * 5]; /* an id's bytes, each at most \\xHH */
  size_t n = 0;
  for (size_t i = 0; i < id.len; i++) {
    uint8_t c = id.p[i];
    if (n + 5 > sizeof t) abuf_add(b, t, n), n = 0;
    if (c > 0x20 && c < 0x7f && c != '\\' && c != '"') {
      t[n++] = (char)c;
    } else {
      t[n++] = '\\', t[n++] = '\\', t[n++] = 'x';
      t[n++] = hex[c >> 4], t[n++] = hex[c & 15];
    }
  }
  abuf_add(b, t, n);
}

void abuf_i64(abuf *b, int64_t v) {
  char buf[24], *p = buf + sizeof buf;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do *--p = (char)('0' + u % 10);
  while (u /= 10);
  if (v < 0) *--p = '-';
  abuf_add(b, p, (size_t)(buf + sizeof buf - p));
}
