#include "capture.h"

#include "clock.h"
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t MAGIC[8] = {'P', 'T', 'C', 'A', 'P', 0, 0, 1};


static int start_file(pt_capture *c) {
  c->f = fopen(c->path, "wb");
  if (!c->f) return -1;
  setvbuf(c->f, NULL, _IOFBF, 1 << 20);
  uint8_t h[PT_CAP_HEADER];
  memcpy(h, MAGIC, 8);
  pt_be32_put(h + 8, PT_CAP_VERSION);
  pt_be32_put(h + 12, 0);
  pt_be64_put(h + 16, (uint64_t)pt_wall_us());
  c->written = PT_CAP_HEADER;
  return fwrite(h, 1, sizeof h, c->f) == sizeof h ? 0 : -1;
}

pt_capture *pt_capture_open(const char *path, uint64_t max_bytes) {
  pt_capture *c = calloc(1, sizeof(*c));
  if (!c) return NULL;
  c->path = strdup(path);
  c->max_bytes = max_bytes ? max_bytes : (1ull << 30);
  if (!c->path || start_file(c)) {
    int e = errno;
    if (c->f) fclose(c->f);
    free(c->path);
    free(c);
    errno = e;
    return NULL;
  }
  return c;
}

int pt_capture_write(pt_capture *c, int kind, uint64_t conn, int64_t time_us,
                     const uint8_t *data, size_t len) {
  if (!c->f) return -1;
  if (c->written + PT_CAP_RECORD + len > c->max_bytes && c->written > PT_CAP_HEADER) {
    /* rotate: FILE -> FILE.1, then a fresh FILE */
    fclose(c->f);
    c->f = NULL;
    size_t n = strlen(c->path) + 3;
    char *old = malloc(n);
    if (!old) return -1;
    snprintf(old, n, "%s.1", c->path);
    rename(c->path, old);
    free(old);
    c->rotations++;
    if (start_file(c)) return -1;
  }
  uint8_t h[PT_CAP_RECORD] = {0};
  h[0] = (uint8_t)kind;
  pt_be32_put(h + 4, (uint32_t)len);
  pt_be64_put(h + 8, conn);
  pt_be64_put(h + 16, (uint64_t)time_us);
  if (fwrite(h, 1, sizeof h, c->f) != sizeof h || (len && fwrite(data, 1, len, c->f) != len))
    return -1;
  c->written += PT_CAP_RECORD + len;
  return 0;
}

void pt_capture_close(pt_capture *c) {
  if (!c) return;
  if (c->f) fclose(c->f);
  free(c->path);
  free(c);
}

int pt_cap_reader_open(pt_cap_reader *r, const char *path, char *err, size_t errlen) {
  memset(r, 0, sizeof(*r));
  r->f = fopen(path, "rb");
  if (!r->f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  uint8_t h[PT_CAP_HEADER];
  if (fread(h, 1, sizeof h, r->f) != sizeof h || memcmp(h, MAGIC, 8) != 0) {
    snprintf(err, errlen, "%s: not a pintuan capture", path);
    fclose(r->f);
    r->f = NULL;
    return -1;
  }
  if (pt_be32_get(h + 8) != PT_CAP_VERSION) {
    snprintf(err, errlen, "%s: capture version %u, this build reads %d", path, pt_be32_get(h + 8),
             PT_CAP_VERSION);
    fclose(r->f);
    r->f = NULL;
    return -1;
  }
  r->created_us = (int64_t)pt_be64_get(h + 16);
  return 0;
}

int pt_cap_read(pt_cap_reader *r, pt_cap_record *rec, char *err, size_t errlen) {
  uint8_t h[PT_CAP_RECORD];
  size_t n = fread(h, 1, sizeof h, r->f);
  if (n == 0 && feof(r->f)) return 0;
  if (n != sizeof h) {
    snprintf(err, errlen, "truncated record header");
    return -1;
  }
  rec->kind = h[0];
  rec->len = pt_be32_get(h + 4);
  rec->conn = pt_be64_get(h + 8);
  rec->time_us = (int64_t)pt_be64_get(h + 16);
  if (rec->kind < PT_CAP_REQUEST || rec->kind > PT_CAP_CLOSE || rec->len > (64u << 20)) {
    snprintf(err, errlen, "corrupt record (kind %d, length %zu)", rec->kind, rec->len);
    return -1;
  }
  if (rec->len > r->cap) {
    uint8_t *b = realloc(r->buf, rec->len);
    if (!b) {
      snprintf(err, errlen, "out of memory");
      return -1;
    }
    r->buf = b;
    r->cap = rec->len;
  }
  if (rec->len && fread(r->buf, 1, rec->len, r->f) != rec->len) {
    snprintf(err, errlen, "truncated record");
    return -1;
  }
  rec->data = r->buf;
  return 1;
}

void pt_cap_reader_close(pt_cap_reader *r) {
  if (r->f) fclose(r->f);
  free(r->buf);
  memset(r, 0, sizeof(*r));
}
