/* The keys file: who may connect, and with what role (in the style of a
 * Redis ACL file). One key per line,
 *
 *   NAME ROLE sha256:HEX [rate=N]
 *
 * NAME 1..64 of [A-Za-z0-9._-], ROLE admin, storefront or reader, HEX the
 * SHA-256 of the key's secret (64 hex digits), N the requests a second
 * the key's connections together may send (burst 2 N; default: the
 * daemon's key_rate); '#' starts a comment. The
 * file holds no secret: a client proves its key by sending the secret,
 * whose hash is compared in constant time. Secrets are made by
 * pt_keys_make (pintuand --make-key): 32 random bytes, so a fast hash is
 * as good as a slow one against guessing.
 *
 * Roles nest: a reader reads and subscribes; a storefront also reserves,
 * confirms, cancels and joins; an admin also creates, updates and ends
 * campaigns. */
#ifndef PT_KEYS_H
#define PT_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum pt_key_role {
  PT_KEY_NONE = 0, /* not authenticated */
  PT_KEY_READER = 1,
  PT_KEY_STOREFRONT = 2,
  PT_KEY_ADMIN = 3,
} pt_key_role;

#define PT_KEY_NAME_MAX 64
#define PT_KEY_SECRET_MAX 128
#define PT_KEYS_MAX 100000

typedef struct pt_keys pt_keys;

/* Reads and checks the whole file; NULL with the reason (file:line) in err.
 * An empty file (no keys) is an error: nobody could connect. */
pt_keys *pt_keys_load(const char *path, char *err, size_t errlen);
void pt_keys_free(pt_keys *k);
uint32_t pt_keys_count(const pt_keys *k);

typedef enum pt_key_check {
  PT_KEY_OK = 0,
  PT_KEY_UNKNOWN,      /* no key of that name */
  PT_KEY_WRONG_SECRET, /* the name is known, the secret is not its */
} pt_key_check;

/* Is secret the secret of the key called name? On PT_KEY_OK, its index
 * (stable until the table is freed) and role. The time taken says nothing
 * of the secret. */
pt_key_check pt_keys_check(const pt_keys *k, const uint8_t *name, size_t name_len,
                           const uint8_t *secret, size_t secret_len, uint32_t *index,
                           pt_key_role *role);

/* The key at index i of a, found in b (after a reload): true, with its
 * index in b, if b has a key of the same name, secret hash and role. */
bool pt_keys_same(const pt_keys *a, uint32_t i, const pt_keys *b, uint32_t *in_b);
const char *pt_keys_name(const pt_keys *k, uint32_t i);
/* The key called name (a TLS certificate's CN): true, its index and role. */
bool pt_keys_find(const pt_keys *k, const char *name, uint32_t *index, pt_key_role *role);
uint32_t pt_keys_rate(const pt_keys *k, uint32_t i); /* 0: the daemon's default */

pt_key_role pt_key_role_parse(const char *s); /* PT_KEY_NONE if unknown */
const char *pt_key_role_name(pt_key_role r);

/* A new key: a random secret (written to secret, NUL-ended, at least 48
 * bytes of room) and its line for the keys file (line, at least 160
 * bytes). 0, or -1 with the reason in err (a bad name or role). */
int pt_keys_make(const char *name, const char *role, char *secret, size_t secret_size, char *line,
                 size_t line_size, char *err, size_t errlen);

#endif
