#include "capture.h"

#include "clock.h"
#include "frame.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

static const uint8_t MAGIC[8] = {'P', 'T', 'C', 'A', 'P', 0, 0, 1};


static int start_file(pt_capture *c) {
  /* 0600: a capture holds every customer's requests */
  int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  if (fchmod(fd, 0600) || !(c->f = fdopen(fd, "wb"))) {
    close(fd);
    return -1;
  }
  setvbuf(c->f, NULL, _IOFBF, 1 << 20);
  uint8_t h[PT_CAP_HEADER];
  memcpy(h, MAGIC, 8);
  pt_be32_put(h + 8, PT_CAP_VERSION);
  pt_be32_put(h + 12, 0);
  pt_be64_put(h + 16, (uint64_t)pt_wall_us());
  c->written = c->base = PT_CAP_HEADER;
  if (fwrite(h, 1, sizeof h, c->f) != sizeof h) return -1;
  if (c->on_start) c->on_start(c->on_start_ctx, c);
  return 0;
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

int pt_capture_begin(pt_capture *c, int kind, uint64_t conn, int64_t time_us, size_t len) {
  if (!c->f) return -1;
  /* Rotation happens only before a request or a close, never between a
   * decision and its record: the new file's state must not hold a decision
   * that its records then apply again. */
  if (c->written - c->base + PT_CAP_RECORD + len > c->max_bytes && c->written > c->base &&
      (kind == PT_CAP_REQUEST || kind == PT_CAP_CLOSE)) {
    /* rotate: FILE -> FILE.1, then a fresh FILE (its state record first) */
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
  if (fwrite(h, 1, sizeof h, c->f) != sizeof h) return -1;
  c->written += PT_CAP_RECORD;
  /* the state a file begins with is not counted against max_bytes: else a
   * state near the bound would rotate the file at every request */
  if (kind == PT_CAP_STATE && c->written == PT_CAP_HEADER + PT_CAP_RECORD) c->base = c->written + len;
  return 0;
}

int pt_capture_append(pt_capture *c, const void *p, size_t n) {
  if (!c->f || (n && fwrite(p, 1, n, c->f) != n)) return -1;
  c->written += n;
  return 0;
}

int pt_capture_write(pt_capture *c, int kind, uint64_t conn, int64_t time_us,
                     const uint8_t *data, size_t len) {
  if (pt_capture_begin(c, kind, conn, time_us, len)) return -1;
  return pt_capture_append(c, data, len);
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
  r->version = pt_be32_get(h + 8);
  if (r->version < 1 || r->version > PT_CAP_VERSION) {
    snprintf(err, errlen, "%s: capture version %u, this build reads 1 to %d", path, r->version,
             PT_CAP_VERSION);
    fclose(r->f);
    r->f = NULL;
    return -1;
  }
  r->created_us = (int64_t)pt_be64_get(h + 16);
  r->offset = PT_CAP_HEADER;
  struct stat st;
  r->size = fstat(fileno(r->f), &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : UINT64_MAX;
  if (r->size != UINT64_MAX && r->size <= SIZE_MAX) {
    /* mapped: no copy of each record, no read per record */
    void *m = mmap(NULL, (size_t)r->size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fileno(r->f), 0);
    if (m != MAP_FAILED) {
      madvise(m, (size_t)r->size, MADV_SEQUENTIAL);
      r->map = m;
    }
  }
  return 0;
}

/* Bytes after the current record's header (so that a corrupt length is
 * found out before anything is allocated for it). */
static uint64_t remaining(const pt_cap_reader *r) {
  uint64_t at = r->at + PT_CAP_RECORD;
  return r->size > at ? r->size - at : 0;
}

int pt_cap_read(pt_cap_reader *r, pt_cap_record *rec, char *err, size_t errlen) {
  uint8_t h[PT_CAP_RECORD];
  r->at = r->offset;
  size_t n;
  if (r->map) {
    n = r->size - r->offset < sizeof h ? (size_t)(r->size - r->offset) : sizeof h;
    if (n == 0) return 0;
    memcpy(h, r->map + r->offset, n);
  } else {
    n = fread(h, 1, sizeof h, r->f);
    if (n == 0 && feof(r->f)) return 0;
  }
  if (n != sizeof h) {
    snprintf(err, errlen, "at byte %" PRIu64 ": truncated record header (%zu of %d bytes)", r->at, n,
             PT_CAP_RECORD);
    return -1;
  }
  rec->kind = h[0];
  rec->len = pt_be32_get(h + 4);
  rec->conn = pt_be64_get(h + 8);
  rec->time_us = (int64_t)pt_be64_get(h + 16);
  int last = r->version >= 2 ? PT_CAP_STATE : PT_CAP_CLOSE;
  size_t max = rec->kind == PT_CAP_STATE ? PT_CAP_MAX_RECORD : (64u << 20);
  if (rec->kind < PT_CAP_REQUEST || rec->kind > last || h[1] || h[2] || h[3] || rec->len > max ||
      (rec->kind == PT_CAP_CLOSE && rec->len)) {
    snprintf(err, errlen, "at byte %" PRIu64 ": corrupt record (kind %d, length %zu)", r->at,
             rec->kind, rec->len);
    return -1;
  }
  if (rec->len > remaining(r)) {
    snprintf(err, errlen, "at byte %" PRIu64 ": truncated record (%zu bytes announced, %" PRIu64 " left)",
             r->at, rec->len, remaining(r));
    return -1;
  }
  if (r->map) {
    rec->data = r->map + r->at + PT_CAP_RECORD;
    r->offset += PT_CAP_RECORD + rec->len;
    return 1;
  }
  if (rec->len > r->cap) {
    uint8_t *b = realloc(r->buf, rec->len);
    if (!b) {
      snprintf(err, errlen, "at byte %" PRIu64 ": out of memory for %zu bytes", r->at, rec->len);
      return -1;
    }
    r->buf = b;
    r->cap = rec->len;
  }
  if (rec->len && fread(r->buf, 1, rec->len, r->f) != rec->len) {
    snprintf(err, errlen, "at byte %" PRIu64 ": truncated record", r->at);
    return -1;
  }
  rec->data = r->buf;
  r->offset += PT_CAP_RECORD + rec->len;
  return 1;
}

void pt_cap_reader_close(pt_cap_reader *r) {
  if (r->map) munmap((void *)r->map, (size_t)r->size);
  if (r->f) fclose(r->f);
  free(r->buf);
  memset(r, 0, sizeof(*r));
}

uint64_t pt_cap_checksum(const void *vp, size_t n) {
  /* 8 bytes a step, each folded in by a multiply and a rotation */
  const uint8_t *p = vp;
  uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h = h << 31 | h >> 33;
  }
  for (; i < n; i++) h = (h ^ p[i]) * 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  return h ^ (h >> 33);
}

int pt_capture_state(pt_capture *c, int64_t time_us, const void *snapshot, size_t n) {
  uint8_t sum[8];
  pt_be64_put(sum, pt_cap_checksum(snapshot, n));
  if (pt_capture_begin(c, PT_CAP_STATE, 0, time_us, 8 + n)) return -1;
  return pt_capture_append(c, sum, 8) || pt_capture_append(c, snapshot, n) ? -1 : 0;
}

int pt_cap_state(const pt_cap_record *rec, const uint8_t **snapshot, size_t *n) {
  if (rec->kind != PT_CAP_STATE || rec->len < 8) return -1;
  *snapshot = rec->data + 8;
  *n = rec->len - 8;
  return pt_be64_get(rec->data) == pt_cap_checksum(*snapshot, *n) ? 0 : -1;
}
