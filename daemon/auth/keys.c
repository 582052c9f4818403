#include "keys.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

typedef struct key {
  char name[PT_KEY_NAME_MAX + 1];
  pt_key_role role;
  uint8_t hash[32];
  uint32_t rate; /* 0: the daemon's key_rate */
} key;

struct pt_keys {
  key *v; /* sorted by name: found by binary search */
  uint32_t n;
};

static const char *const ROLES[] = {[PT_KEY_NONE] = "none", [PT_KEY_READER] = "reader",
                                    [PT_KEY_STOREFRONT] = "storefront", [PT_KEY_ADMIN] = "admin"};

pt_key_role pt_key_role_parse(const char *s) {
  for (int r = PT_KEY_READER; r <= PT_KEY_ADMIN; r++)
    if (!strcmp(s, ROLES[r])) return (pt_key_role)r;
  return PT_KEY_NONE;
}

const char *pt_key_role_name(pt_key_role r) {
  return (unsigned)r <= PT_KEY_ADMIN ? ROLES[r] : "none";
}

static bool name_ok(const char *s, size_t n) {
  if (n == 0 || n > PT_KEY_NAME_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      return false;
  }
  return true;
}

static void sha256(const uint8_t *p, size_t n, uint8_t out[32]) {
  unsigned len = 32;
  EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

static int unhex(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const key *)a)->name, ((const key *)b)->name);
}

/* One line's key into *k: NULL, or what is wrong with it. */
static const char *parse_line(char *line, key *k) {
  char *save = NULL, *name = strtok_r(line, " \t", &save), *role = strtok_r(NULL, " \t", &save),
       *hash = strtok_r(NULL, " \t", &save), *rate = strtok_r(NULL, " \t", &save),
       *more = strtok_r(NULL, " \t", &save);
  if (!role || !hash) return "want NAME ROLE sha256:HEX [rate=N]";
  if (more) return "more than NAME ROLE sha256:HEX [rate=N]";
  k->rate = 0;
  if (rate) {
    char *end;
    unsigned long r = strncmp(rate, "rate=", 5) ? 0 : strtoul(rate + 5, &end, 10);
    if (!r || *end || r > 10000000) return "rate=N: N requests a second, 1..10000000";
    k->rate = (uint32_t)r;
  }
  if (!name_ok(name, strlen(name))) return "a NAME is 1..64 of A-Z a-z 0-9 . _ -";
  if (!(k->role = pt_key_role_parse(role))) return "ROLE is admin, storefront or reader";
  if (strncmp(hash, "sha256:", 7) || strlen(hash) != 7 + 64) return "the hash is sha256: and 64 hex digits";
  for (int i = 0; i < 32; i++) {
    int h = unhex(hash[7 + 2 * i]), l = unhex(hash[8 + 2 * i]);
    if (h < 0 || l < 0) return "the hash is sha256: and 64 hex digits";
    k->hash[i] = (uint8_t)(h << 4 | l);
  }
  snprintf(k->name, sizeof k->name, "%s", name);
  return NULL;
}

pt_keys *pt_keys_load(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "keys file %s: %s", path, strerror(errno));
    return NULL;
  }
  pt_keys *k = calloc(1, sizeof *k);
  uint32_t cap = 0;
  char line[512];
  const char *bad = NULL;
  unsigned lineno = 0;
  while (!bad && fgets(line, sizeof line, f)) {
    lineno++;
    size_t len = strlen(line);
    if (len == sizeof line - 1 && line[len - 1] != '\n') {
      bad = "line too long";
      break;
    }
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    line[strcspn(line, "\r\n")] = 0;
    if (!line[strspn(line, " \t")]) continue;
    if (k->n == PT_KEYS_MAX) {
      bad = "more than 100000 keys";
      break;
    }
    if (k->n == cap) {
      cap = cap ? cap * 2 : 16;
      k->v = realloc(k->v, cap * sizeof *k->v);
    }
    bad = parse_line(line, &k->v[k->n]);
    if (!bad) k->n++;
  }
  bool rerr = ferror(f);
  fclose(f);
  if (!bad && rerr) bad = "read error";
  if (!bad && !k->n) bad = "no keys: nobody could connect", lineno = 0;
  if (!bad) {
    qsort(k->v, k->n, sizeof *k->v, by_name);
    for (uint32_t i = 1; i < k->n; i++)
      if (!strcmp(k->v[i].name, k->v[i - 1].name)) {
        snprintf(err, errlen, "keys file %s: the key %s is there twice", path, k->v[i].name);
        pt_keys_free(k);
        return NULL;
      }
    return k;
  }
  if (lineno) snprintf(err, errlen, "keys file %s:%u: %s", path, lineno, bad);
  else snprintf(err, errlen, "keys file %s: %s", path, bad);
  pt_keys_free(k);
  return NULL;
}

void pt_keys_free(pt_keys *k) {
  if (!k) return;
  free(k->v);
  free(k);
}

uint32_t pt_keys_count(const pt_keys *k) { return k->n; }

static const key *find(const pt_keys *k, const char *name) {
  key probe;
  snprintf(probe.name, sizeof probe.name, "%s", name);
  return bsearch(&probe, k->v, k->n, sizeof *k->v, by_name);
}

pt_key_check pt_keys_check(const pt_keys *k, const uint8_t *name, size_t name_len,
                           const uint8_t *secret, size_t secret_len, uint32_t *index,
                           pt_key_role *role) {
  uint8_t h[32];
  sha256(secret, secret_len, h); /* whether or not the name is known */
  if (!name_ok((const char *)name, name_len)) return PT_KEY_UNKNOWN;
  char n[PT_KEY_NAME_MAX + 1];
  memcpy(n, name, name_len), n[name_len] = 0;
  const key *e = find(k, n);
  if (!e) return PT_KEY_UNKNOWN;
  if (CRYPTO_memcmp(h, e->hash, 32)) return PT_KEY_WRONG_SECRET;
  *index = (uint32_t)(e - k->v);
  *role = e->role;
  return PT_KEY_OK;
}

bool pt_keys_same(const pt_keys *a, uint32_t i, const pt_keys *b, uint32_t *in_b) {
  if (i >= a->n) return false;
  const key *e = find(b, a->v[i].name);
  if (!e || e->role != a->v[i].role || memcmp(e->hash, a->v[i].hash, 32)) return false;
  *in_b = (uint32_t)(e - b->v);
  return true;
}

const char *pt_keys_name(const pt_keys *k, uint32_t i) { return i < k->n ? k->v[i].name : "?"; }

bool pt_keys_find(const pt_keys *k, const char *name, uint32_t *index, pt_key_role *role) {
  if (!name_ok(name, strlen(name))) return false;
  const key *e = find(k, name);
  if (!e) return false;
  *index = (uint32_t)(e - k->v);
  *role = e->role;
  return true;
}
uint32_t pt_keys_rate(const pt_keys *k, uint32_t i) { return i < k->n ? k->v[i].rate : 0; }

int pt_keys_make(const char *name, const char *role, char *secret, size_t secret_size, char *line,
                 size_t line_size, char *err, size_t errlen) {
  if (!name_ok(name, strlen(name))) {
    snprintf(err, errlen, "bad key name '%s': 1..64 of A-Z a-z 0-9 . _ -", name);
    return -1;
  }
  if (!pt_key_role_parse(role)) {
    snprintf(err, errlen, "bad role '%s': admin, storefront or reader", role);
    return -1;
  }
  uint8_t raw[32];
  if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
    snprintf(err, errlen, "getrandom: %s", strerror(errno));
    return -1;
  }
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  char s[64] = "ptk_";
  size_t o = 4;
  for (size_t i = 0; i < sizeof raw; i += 3) { /* base64url, no padding: 43 characters */
    uint32_t v = (uint32_t)raw[i] << 16 | (i + 1 < sizeof raw ? (uint32_t)raw[i + 1] << 8 : 0) |
                 (i + 2 < sizeof raw ? raw[i + 2] : 0);
    int chars = i + 2 < sizeof raw ? 4 : i + 1 < sizeof raw ? 3 : 2;
    for (int c = 0; c < chars; c++) s[o++] = b64[(v >> (18 - 6 * c)) & 63];
  }
  s[o] = 0;
  if (snprintf(secret, secret_size, "%s", s) >= (int)secret_size) return -1;
  uint8_t h[32];
  sha256((const uint8_t *)s, o, h);
  char hex[65];
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", h[i]);
  if (snprintf(line, line_size, "%s %s sha256:%s", name, role, hex) >= (int)line_size) return -1;
  return 0;
}
