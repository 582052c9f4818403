/* The conformance runner for libpintuan: plays the scenarios of
 * tests/conformance/ (the .scn files; its README.md says the format)
 * through the library's blocking call,
 * against the daemons ctl.sh starts. Requests are built and replies read
 * by field name through protobuf-c's descriptors, so a scenario can name
 * any operation and field without code here.
 *
 *   run_c CTL SCENARIO...   ($PINTUAND: the daemon ctl.sh starts)
 *
 * One line per scenario ("ok NAME" / "not ok NAME: file:line: why"), then
 * "N passed, N failed"; exit 1 when any failed. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pintuan.h"

#define MAX_CLIENTS 8
#define MAX_VARS 64
#define MAX_ALLOCS 256

typedef struct client {
  char name[32];
  pintuan_client *c;
  pintuan_response *last;
} client;

typedef struct run {
  const char *ctl, *file;
  int line;
  char dir[64], addrs[256];
  bool up;
  client cl[MAX_CLIENTS];
  int ncl;
  char var[MAX_VARS][32], val[MAX_VARS][128];
  int nvar;
  void *alloc[MAX_ALLOCS]; /* what a request was built from */
  int nalloc;
  char why[512];
} run;

static int failf(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failf(run *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = snprintf(r->why, sizeof r->why, "%s:%d: ", r->file, r->line);
  vsnprintf(r->why + n, sizeof r->why - (size_t)n, fmt, ap);
  va_end(ap);
  return -1;
}

static void *keep(run *r, void *p) {
  if (!p || r->nalloc == MAX_ALLOCS) abort();
  return r->alloc[r->nalloc++] = p;
}
static void drop_allocs(run *r) {
  while (r->nalloc) free(r->alloc[--r->nalloc]);
}

/* $VAR substituted in s (into out). */
static int expand(run *r, const char *s, char *out, size_t cap) {
  size_t o = 0;
  while (*s && o + 1 < cap) {
    if (*s != '$') {
      out[o++] = *s++;
      continue;
    }
    const char *e = ++s;
    while (*e && (*e == '_' || (*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z') || (*e >= '0' && *e <= '9'))) e++;
    int i = 0;
    for (; i < r->nvar; i++)
      if (strlen(r->var[i]) == (size_t)(e - s) && !strncmp(r->var[i], s, (size_t)(e - s))) break;
    if (i == r->nvar) return failf(r, "no saved value $%.*s", (int)(e - s), s);
    o += (size_t)snprintf(out + o, cap - o, "%s", r->val[i]);
    s = e;
  }
  out[o < cap ? o : cap - 1] = 0;
  return 0;
}

static client *find_client(run *r, const char *name) {
  for (int i = 0; i < r->ncl; i++)
    if (!strcmp(r->cl[i].name, name)) return &r->cl[i];
  failf(r, "no client %s", name);
  return NULL;
}

/* ---- messages by field name ---- */

static const ProtobufCFieldDescriptor *field(run *r, const ProtobufCMessageDescriptor *d, const char *name) {
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
  if (!f) failf(r, "%s has no field %s", d->name, name);
  return f;
}

/* The submessage f of msg, made when absent. */
static void *sub(run *r, void *msg, const ProtobufCFieldDescriptor *f) {
  void **p = (void **)((uint8_t *)msg + f->offset);
  if (!*p) {
    const ProtobufCMessageDescriptor *d = f->descriptor;
    *p = keep(r, calloc(1, d->sizeof_message));
    d->message_init(*p);
  }
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) *(uint32_t *)((uint8_t *)msg + f->quantifier_offset) = f->id;
  return *p;
}

static int set_scalar(run *r, void *msg, const ProtobufCFieldDescriptor *f, const char *v) {
  uint8_t *at = (uint8_t *)msg + f->offset;
  char *end;
  errno = 0;
  if (f->label == PROTOBUF_C_LABEL_REPEATED) { /* bytes and strings: one more */
    size_t *n = (size_t *)((uint8_t *)msg + f->quantifier_offset);
    size_t el = f->type == PROTOBUF_C_TYPE_BYTES ? sizeof(ProtobufCBinaryData) : sizeof(char *);
    if (f->type != PROTOBUF_C_TYPE_BYTES && f->type != PROTOBUF_C_TYPE_STRING)
      return failf(r, "repeated %s: only bytes and strings", f->name);
    void *arr = keep(r, calloc(*n + 1, el));
    if (*n) memcpy(arr, *(void **)at, *n * el);
    if (f->type == PROTOBUF_C_TYPE_BYTES)
      ((ProtobufCBinaryData *)arr)[*n] = (ProtobufCBinaryData){strlen(v), (uint8_t *)keep(r, strdup(v))};
    else
      ((char **)arr)[*n] = keep(r, strdup(v));
    *(void **)at = arr;
    (*n)++;
    return 0;
  }
  long long sv;
  unsigned long long uv;
  bool neg = v[0] == '-';
  switch (f->type) { /* a number out of its field's range is a bad number, not wrapped */
  case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    sv = strtoll(v, &end, 10);
    if (sv < INT32_MIN || sv > INT32_MAX) errno = ERANGE;
    *(int32_t *)at = (int32_t)sv;
    break;
  case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
    uv = strtoull(v, &end, 10);
    if (neg || uv > UINT32_MAX) errno = ERANGE;
    *(uint32_t *)at = (uint32_t)uv;
    break;
  case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    *(int64_t *)at = strtoll(v, &end, 10);
    break;
  case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
    uv = strtoull(v, &end, 10);
    if (neg) errno = ERANGE;
    *(uint64_t *)at = uv;
    break;
  case PROTOBUF_C_TYPE_BOOL:
    if (strcmp(v, "true") && strcmp(v, "false")) return failf(r, "%s: true or false, not %s", f->name, v);
    *(protobuf_c_boolean *)at = !strcmp(v, "true");
    end = (char *)v + strlen(v);
    break;
  case PROTOBUF_C_TYPE_ENUM: {
    const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, v);
    if (!e) return failf(r, "%s: no value %s", f->name, v);
    *(int *)at = e->value;
    end = (char *)v + strlen(v);
    break;
  }
  case PROTOBUF_C_TYPE_STRING:
    *(char **)at = keep(r, strdup(v));
    return 0;
  case PROTOBUF_C_TYPE_BYTES:
    *(ProtobufCBinaryData *)at = (ProtobufCBinaryData){strlen(v), (uint8_t *)keep(r, strdup(v))};
    end = (char *)v + strlen(v);
    break;
  default:
    return failf(r, "%s: a type this runner does not set", f->name);
  }
  if (errno || *end) return failf(r, "%s: bad number %s", f->name, v);
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) *(uint32_t *)((uint8_t *)msg + f->quantifier_offset) = f->id;
  else if (f->label == PROTOBUF_C_LABEL_OPTIONAL) *(protobuf_c_boolean *)((uint8_t *)msg + f->quantifier_offset) = 1;
  return 0;
}

/* PATH=VALUE into msg (of descriptor d). */
static int set_path(run *r, void *msg, const ProtobufCMessageDescriptor *d, char *path, const char *v) {
  for (char *dot; (dot = strchr(path, '.')); path = dot + 1) {
    *dot = 0;
    const ProtobufCFieldDescriptor *f = field(r, d, path);
    if (!f) return -1;
    if (f->type != PROTOBUF_C_TYPE_MESSAGE) return failf(r, "%s is not a message", path);
    msg = sub(r, msg, f);
    d = f->descriptor;
  }
  const ProtobufCFieldDescriptor *f = field(r, d, path);
  return f ? set_scalar(r, msg, f, v) : -1;
}

/* PATH of msg as text into out: "-" when absent. */
static int get_path(run *r, const void *msg, const ProtobufCMessageDescriptor *d, char *path, char *out, size_t cap) {
  for (char *seg = path, *dot;; seg = dot + 1) {
    dot = strchr(seg, '.');
    if (dot) *dot = 0;
    const ProtobufCFieldDescriptor *f = field(r, d, seg);
    if (!f) return -1;
    const uint8_t *base = msg, *at = base + f->offset;
    bool present = true;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) present = *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
             f->type != PROTOBUF_C_TYPE_STRING)
      present = *(const protobuf_c_boolean *)(base + f->quantifier_offset);
    if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING)
      present = present && *(void *const *)at;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      snprintf(out, cap, "%zu", *(const size_t *)(base + f->quantifier_offset)); /* how many */
      return 0;
    }
    if (!present) {
      snprintf(out, cap, "-");
      return 0;
    }
    if (dot) {
      if (f->type != PROTOBUF_C_TYPE_MESSAGE) return failf(r, "%s is not a message", seg);
      msg = *(void *const *)at;
      d = f->descriptor;
      continue;
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
      snprintf(out, cap, "%" PRId32, *(const int32_t *)at); break;
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
      snprintf(out, cap, "%" PRIu32, *(const uint32_t *)at); break;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
      snprintf(out, cap, "%" PRId64, *(const int64_t *)at); break;
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
      snprintf(out, cap, "%" PRIu64, *(const uint64_t *)at); break;
    case PROTOBUF_C_TYPE_BOOL: snprintf(out, cap, "%s", *(const protobuf_c_boolean *)at ? "true" : "false"); break;
    case PROTOBUF_C_TYPE_ENUM: {
      const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)at);
      if (e) snprintf(out, cap, "%s", e->name);
      else snprintf(out, cap, "%d", *(const int *)at);
      break;
    }
    case PROTOBUF_C_TYPE_STRING: snprintf(out, cap, "%s", *(char *const *)at); break;
    case PROTOBUF_C_TYPE_BYTES: {
      const ProtobufCBinaryData *b = (const ProtobufCBinaryData *)at;
      snprintf(out, cap, "%.*s", (int)b->len, (const char *)b->data);
      break;
    }
    default: return failf(r, "%s: a message, not a value", seg);
    }
    return 0;
  }
}

/* ---- the steps ---- */

static int ctl(run *r, const char *args, char *out, size_t cap) {
  char cmd[1024];
  if (!strncmp(args, "up ", 3)) snprintf(cmd, sizeof cmd, "bash '%s' up '%s' %s", r->ctl, r->dir, args + 3);
  else snprintf(cmd, sizeof cmd, "bash '%s' %s '%s'", r->ctl, args, r->dir);
  FILE *p = popen(cmd, "r");
  if (!p) return failf(r, "ctl: %s", strerror(errno));
  char line[512] = "";
  if (!fgets(line, sizeof line, p)) line[0] = 0;
  int st = pclose(p);
  if (st != 0) return failf(r, "ctl %s failed (%d)", args, st);
  line[strcspn(line, "\n")] = 0;
  if (out) snprintf(out, cap, "%s", line);
  return 0;
}

static int step_client(run *r, char **w, int n) {
  if (n != 3) return failf(r, "client NAME ROLE");
  if (r->ncl == MAX_CLIENTS) return failf(r, "too many clients");
  client *k = &r->cl[r->ncl];
  char err[1024], ca[128];
  snprintf(ca, sizeof ca, "%s/tls/ca.pem", r->dir); /* ctl.sh up ... tls made it: TLS */
  pintuan_tls tls = {.ca_file = ca};
  k->c = access(ca, R_OK) == 0 ? pintuan_connect_tls(r->addrs, 10000, &tls, err, sizeof err)
                               : pintuan_connect(r->addrs, 10000, err, sizeof err);
  if (!k->c) return failf(r, "connect: %s", err);
  snprintf(k->name, sizeof k->name, "%s", w[1]);
  r->ncl++;
  if (!strcmp(w[2], "none")) return 0;
  char path[256], name[128], secret[256];
  snprintf(path, sizeof path, "%s/keys/%s.key", r->dir, w[2]);
  if (pintuan_read_key_file(path, name, sizeof name, secret, sizeof secret, err, sizeof err))
    return failf(r, "key %s: %s", w[2], err);
  pintuan_response *resp;
  if (pintuan_hello(k->c, name, secret, &resp)) return failf(r, "hello: %s", pintuan_error(k->c));
  int st = resp->status;
  pintuan_response_free(resp);
  return st == PINTUAN__V1__STATUS__OK ? 0 : failf(r, "hello as %s: %s", w[2], pintuan_status_str(st));
}

static int step_send(run *r, char **w, int n) {
  if (n < 3) return failf(r, "send NAME OP [FIELD=VALUE ...]");
  client *k = find_client(r, w[1]);
  if (!k) return -1;
  pintuan_request q;
  pintuan__v1__request__init(&q);
  const ProtobufCFieldDescriptor *op = field(r, &pintuan__v1__request__descriptor, w[2]);
  if (!op || op->type != PROTOBUF_C_TYPE_MESSAGE) return op ? failf(r, "%s is not an operation", w[2]) : -1;
  void *body = sub(r, &q, op);
  int rc = 0;
  for (int i = 3; i < n && !rc; i++) {
    char tok[512], *eq;
    if (expand(r, w[i], tok, sizeof tok)) return -1;
    if (!(eq = strchr(tok, '='))) return failf(r, "%s: FIELD=VALUE", w[i]);
    *eq = 0;
    rc = set_path(r, body, op->descriptor, tok, eq + 1);
  }
  if (!rc) {
    pintuan_response_free(k->last);
    k->last = NULL;
    if (pintuan_call(k->c, &q, &k->last)) rc = failf(r, "%s: %s", w[2], pintuan_error(k->c));
  }
  drop_allocs(r);
  return rc;
}

static int check(run *r, const void *msg, const ProtobufCMessageDescriptor *d, char **w, int n);

static int step_expect(run *r, char **w, int n) {
  if (n < 3) return failf(r, "expect NAME STATUS [PATH=VALUE ...] [>VAR=PATH ...]");
  client *k = find_client(r, w[1]);
  if (!k) return -1;
  if (!k->last) return failf(r, "%s has no reply", w[1]);
  const char *got = pintuan_status_str(k->last->status);
  if (strcmp(got, w[2]))
    return failf(r, "status %s, wanted %s (%s)", got, w[2], k->last->detail ? k->last->detail : "");
  return check(r, k->last, &pintuan__v1__response__descriptor, w + 3, n - 3);
}

/* The next event pushed to NAME's connection (it subscribed with `send NAME
 * subscribe`), within the client's timeout: its type, then its fields. */
static int step_event(run *r, char **w, int n) {
  if (n < 3) return failf(r, "event NAME TYPE [PATH=VALUE ...] [>VAR=PATH ...]");
  client *k = find_client(r, w[1]);
  if (!k) return -1;
  pintuan_response *e = NULL;
  for (;;) { /* replies with an id were their calls' (pintuan_call took them) */
    if (pintuan_recv(k->c, &e)) return failf(r, "no event: %s", pintuan_error(k->c));
    if (e->id == 0 && e->event) break;
    pintuan_response_free(e);
  }
  pintuan_response_free(k->last);
  k->last = e;
  char type[64];
  if (get_path(r, e->event, &pintuan__v1__event__descriptor, (char[]){"type"}, type, sizeof type)) return -1;
  if (strcmp(type, w[2])) return failf(r, "event %s, wanted %s", type, w[2]);
  return check(r, e->event, &pintuan__v1__event__descriptor, w + 3, n - 3);
}

/* Each PATH=VALUE of w[0..n) holds in msg (a d); each >VAR=PATH is saved. */
static int check(run *r, const void *msg, const ProtobufCMessageDescriptor *d, char **w, int n) {
  for (int i = 0; i < n; i++) {
    char tok[512], have[512], *eq;
    if (expand(r, w[i], tok, sizeof tok)) return -1;
    if (!(eq = strchr(tok, '='))) return failf(r, "%s: PATH=VALUE", w[i]);
    *eq = 0;
    char *path = tok[0] == '>' ? eq + 1 : tok, named[512];
    snprintf(named, sizeof named, "%s", path); /* get_path cuts path at its dots */
    if (get_path(r, msg, d, path, have, sizeof have)) return -1;
    if (tok[0] == '>') {
      int at = 0; /* saved again: the latest value wins */
      while (at < r->nvar && strcmp(r->var[at], tok + 1)) at++;
      if (at == MAX_VARS) return failf(r, "too many saved values");
      if (strlen(tok + 1) >= sizeof r->var[0] || strlen(have) >= sizeof r->val[0])
        return failf(r, "%s: too long to save", w[i]);
      memcpy(r->var[at], tok + 1, strlen(tok + 1) + 1);
      memcpy(r->val[at], have, strlen(have) + 1);
      if (at == r->nvar) r->nvar++;
    } else if (strcmp(have, eq + 1)) {
      return failf(r, "%s is %s, wanted %s", named, have, eq + 1);
    }
  }
  return 0;
}

static int play(run *r) {
  FILE *f = fopen(r->file, "r");
  if (!f) return failf(r, "%s", strerror(errno));
  char line[2048];
  int rc = 0;
  while (!rc && fgets(line, sizeof line, f)) {
    r->line++;
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    char *w[64];
    int n = 0;
    for (char *t = strtok(line, " \t\r\n"); t && n < 64; t = strtok(NULL, " \t\r\n")) w[n++] = t;
    if (!n) continue;
    if (!strcmp(w[0], "setup")) {
      char args[64];
      snprintf(args, sizeof args, "up %s%s%s", n > 1 ? w[1] : "single", n > 2 ? " " : "", n > 2 ? w[2] : "");
      r->up = true; /* down even after a setup that failed partway */
      rc = ctl(r, args, r->addrs, sizeof r->addrs);
    } else if (!strcmp(w[0], "client")) {
      rc = step_client(r, w, n);
    } else if (!strcmp(w[0], "send")) {
      rc = step_send(r, w, n);
    } else if (!strcmp(w[0], "expect")) {
      rc = step_expect(r, w, n);
    } else if (!strcmp(w[0], "event")) {
      rc = step_event(r, w, n);
    } else if (!strcmp(w[0], "ctl")) {
      rc = n == 2 ? ctl(r, w[1], NULL, 0) : failf(r, "ctl COMMAND");
    } else {
      rc = failf(r, "unknown step %s", w[0]);
    }
  }
  fclose(f);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: run_c CTL SCENARIO...\n");
    return 64;
  }
  int passed = 0, failed = 0;
  for (int i = 2; i < argc; i++) {
    static run r;
    memset(&r, 0, sizeof r);
    r.ctl = argv[1], r.file = argv[i];
    snprintf(r.dir, sizeof r.dir, "/tmp/pt-conf-XXXXXX");
    if (!mkdtemp(r.dir)) return 1;
    int rc = play(&r);
    for (int k = 0; k < r.ncl; k++) {
      pintuan_response_free(r.cl[k].last);
      pintuan_close(r.cl[k].c);
    }
    if (r.up) ctl(&r, "down", NULL, 0);
    const char *base = strrchr(r.file, '/') ? strrchr(r.file, '/') + 1 : r.file;
    if (rc) {
      printf("not ok %s: %s\n", base, r.why);
      char cmd[256];
      snprintf(cmd, sizeof cmd, "tail -n 5 %s/*.log 2>/dev/null | sed 's/^/#   /'", r.dir);
      fflush(stdout);
      if (system(cmd)) { /* the logs are a courtesy */
      }
      failed++;
    } else {
      printf("ok %s\n", base);
      passed++;
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", r.dir);
    if (system(cmd)) {
    }
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
