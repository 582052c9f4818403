#include "shard.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sysexits.h>
#include <unistd.h>

#include "functions.h"
#include "log.h"
#include "mirror_int.h"

#define STATE_HEADER "# pintuand shard state: what this daemon knew of its shard (do not edit)"

int pt_shard_state_read(const char *path, const char *shard, pt_shard_known *k, char *err,
                        size_t errlen) {
  memset(k, 0, sizeof *k);
  FILE *f = fopen(path, "r");
  if (!f) {
    if (errno == ENOENT) return 0;
    snprintf(err, errlen, "state file %s: %s", path, strerror(errno));
    return -1;
  }
  char line[256], name[80] = "";
  int n = 0, bad = 0;
  while (fgets(line, sizeof line, f)) {
    n++;
    char *nl = strchr(line, '\n');
    if (!nl) { /* a line longer than any this file has */
      bad = n;
      break;
    }
    *nl = 0;
    if (line[0] == '#' || !line[0]) continue;
    char *eq = strchr(line, '=');
    if (!eq) {
      bad = n;
      break;
    }
    *eq = 0;
    const char *v = eq + 1;
    char *end = NULL;
    errno = 0;
    if (!strcmp(line, "shard")) snprintf(name, sizeof name, "%s", v);
    else if (!strcmp(line, "id") && strlen(v) < sizeof k->id) snprintf(k->id, sizeof k->id, "%s", v);
    else if (!strcmp(line, "created_ms")) k->created_ms = strtoll(v, &end, 10);
    else if (!strcmp(line, "epoch")) k->epoch = strtoull(v, &end, 10);
    else if (!strcmp(line, "seq")) k->seq = strtoull(v, &end, 10);
    else bad = n;
    if (bad || (end && (*end || errno || end == v))) {
      bad = n;
      break;
    }
  }
  fclose(f);
  if (bad) {
    snprintf(err, errlen, "state file %s: line %d does not parse (written by pintuand; remove it "
             "only if this daemon is to forget what it knew of the shard)", path, bad);
    memset(k, 0, sizeof *k);
    return -1;
  }
  if (strcmp(name, shard)) {
    snprintf(err, errlen, "state file %s belongs to shard '%s', not '%s': give each daemon its own",
             path, name, shard);
    memset(k, 0, sizeof *k);
    return -1;
  }
  return 0;
}

int pt_shard_state_write(const char *path, const char *shard, const pt_shard_known *k) {
  char tmp[4200];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
    errno = ENAMETOOLONG;
    return -1;
  }
  char text[512];
  int n = snprintf(text, sizeof text,
                   STATE_HEADER "\nshard=%s\nid=%s\ncreated_ms=%" PRId64 "\nepoch=%" PRIu64
                                "\nseq=%" PRIu64 "\n",
                   shard, k->id, k->created_ms, k->epoch, k->seq);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  if (write(fd, text, (size_t)n) != n || fsync(fd)) {
    int e = errno;
    close(fd);
    unlink(tmp);
    errno = e;
    return -1;
  }
  if (close(fd) || rename(tmp, path)) {
    int e = errno;
    unlink(tmp);
    errno = e;
    return -1;
  }
  return 0;
}

void pt_shard_new_id(char id[40]) {
  uint8_t b[16];
  if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) abort(); /* never on Linux >= 3.17 */
  for (int i = 0; i < 16; i++) snprintf(id + 2 * i, 3, "%02x", b[i]);
}

uint64_t pt_shard_tag(const char *id) {
  uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
  for (const char *p = id; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
  return h ? h : 1;
}

/* ---- the state file, written off the loop ---- */

static void save_work(uv_work_t *w) {
  pt_mirror *m = w->data;
  m->save_errno = pt_shard_state_write(m->cfg.state_file, m->cfg.shard, &m->to_save) ? errno : 0;
}

static void save_done(uv_work_t *w, int status) {
  pt_mirror *m = w->data;
  (void)status;
  m->saving = false;
  if (m->save_errno) { /* logged once per error: it is tried again every tick */
    static int last;
    if (last != m->save_errno)
      pt_error("mirror state file %s: %s (what this daemon knows of its shard is not kept across "
               "a restart)", m->cfg.state_file, strerror(m->save_errno));
    last = m->save_errno;
  } else {
    m->saved = m->to_save;
  }
  if (m->stopping) mirror_closed_one(m);
}

void mirror_save_known(pt_mirror *m) {
  if (!m->cfg.state_file[0] || m->saving || m->stopping ||
      !memcmp(&m->saved, &m->known, sizeof m->known))
    return;
  m->saving = true;
  m->to_save = m->known;
  m->save_work.data = m;
  uv_queue_work(m->loop, &m->save_work, save_work, save_done);
}

/* ---- the one-shot commands ---- */

static redisReply *cmd(redisContext *c, const char *what, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(c, fmt, ap);
  va_end(ap);
  if (!r) {
    pt_error("%s: Redis: %s", what, c->errstr);
    return NULL;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    pt_error("%s: Redis answered: %s", what, r->str);
    freeReplyObject(r);
    return NULL;
  }
  return r;
}

static const char *str(const redisReply *r) {
  return r->type == REDIS_REPLY_STRING ? r->str : r->type == REDIS_REPLY_INTEGER ? "(number)" : "";
}

int pt_shard_command(const pt_mirror_config *cfg, const char *state_file, bool accept_loss) {
  const char *what = accept_loss ? "--accept-loss" : "--init-shard";
  struct timeval tv = {5, 0};
  redisContext *c = redisConnectWithTimeout(cfg->redis.host, cfg->redis.port, tv);
  if (!c || c->err) {
    pt_error("%s: cannot reach Redis %s:%d: %s", what, cfg->redis.host, cfg->redis.port,
             c ? c->errstr : "out of memory");
    redisFree(c);
    return EX_UNAVAILABLE;
  }
  redisSetTimeout(c, tv);
  int rc = EX_UNAVAILABLE;
  redisReply *r = NULL;
  if (cfg->redis_password[0]) {
    r = cfg->redis_user[0] ? cmd(c, what, "AUTH %s %s", cfg->redis_user, cfg->redis_password)
                           : cmd(c, what, "AUTH %s", cfg->redis_password);
    if (!r) goto out;
    freeReplyObject(r);
  }
  /* a Redis user limited to its shard may not load functions: an
   * administrator's copy, this version or newer, serves (functions.h) */
  if (!(r = redisCommand(c, "FUNCTION LOAD REPLACE %s", pt_redis_shard_functions))) {
    pt_error("%s: Redis: %s", what, c->errstr);
    goto out;
  }
  bool denied = r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOPERM", 6);
  if (r->type == REDIS_REPLY_ERROR && !denied) pt_error("%s: Redis answered: %s", what, r->str);
  bool failed = r->type == REDIS_REPLY_ERROR && !denied;
  freeReplyObject(r);
  if (failed) goto out;
  if (denied) {
    if (!(r = cmd(c, what, "FCALL_RO pintuan_shard_version 0"))) goto out;
    failed = r->type != REDIS_REPLY_INTEGER || r->integer < PT_SHARD_FUNCTIONS_VERSION;
    if (failed)
      pt_error("%s: this Redis user may not load the functions library pintuan_shard, and Redis "
               "has an older one (this daemon needs version %d or newer): load it as a Redis "
               "administrator (deploy/redis-acl.sh)", what, PT_SHARD_FUNCTIONS_VERSION);
    freeReplyObject(r);
    if (failed) goto out;
  }
  char k_shard[160], k_epoch[160], k_seq[160], k_lease[160], id[40];
  snprintf(k_shard, sizeof k_shard, "pintuan:{%s}:" PT_KEY_SHARD, cfg->shard);
  snprintf(k_epoch, sizeof k_epoch, "pintuan:{%s}:" PT_KEY_EPOCH, cfg->shard);
  snprintf(k_seq, sizeof k_seq, "pintuan:{%s}:" PT_KEY_SEQ, cfg->shard);
  snprintf(k_lease, sizeof k_lease, "pintuan:{%s}:" PT_KEY_LEASE, cfg->shard);
  pt_shard_new_id(id);
  if (!accept_loss) {
    if (!(r = cmd(c, what, "FCALL pintuan_init_shard 3 %s %s %s %s %s", k_shard, k_epoch, k_seq, id,
                  cfg->node_id)))
      goto out;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
      if (r->element[0]->integer == 1)
        printf("shard %s created in Redis %s:%d: incarnation %s\n", cfg->shard, cfg->redis.host,
               cfg->redis.port, str(r->element[1]));
      else
        printf("shard %s already exists in Redis %s:%d: incarnation %s (created_ms %s); nothing "
               "changed\n", cfg->shard, cfg->redis.host, cfg->redis.port, str(r->element[1]),
               str(r->element[2]));
      rc = EX_OK;
    }
    freeReplyObject(r);
    goto out;
  }
  pt_shard_known k = {0};
  char err[512];
  if (state_file && state_file[0] && pt_shard_state_read(state_file, cfg->shard, &k, err, sizeof err))
    pt_warn("%s: %s (ignored)", what, err);
  if (!(r = cmd(c, what, "FCALL pintuan_accept_loss 4 %s %s %s %s %s %s %" PRId64, k_shard, k_epoch,
                k_seq, k_lease, id, cfg->node_id, k.created_ms)))
    goto out;
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 5) {
    printf("shard %s: the loss is accepted. Redis %s:%d holds the journal up to record %s; "
           "incarnation %s replaces %s. The daemons of the shard adopt it and the next primary "
           "serves what Redis holds; ids handed out before are NOT_FOUND from now on.\n",
           cfg->shard, cfg->redis.host, cfg->redis.port, str(r->element[3]), str(r->element[0]),
           str(r->element[2])[0] ? str(r->element[2]) : "(none: Redis had no shard)");
    pt_warn("%s: shard %s is now incarnation %s (was %s)", what, cfg->shard, str(r->element[0]),
            str(r->element[2])[0] ? str(r->element[2]) : "none");
    rc = EX_OK;
  }
  freeReplyObject(r);
out:
  redisFree(c);
  return rc;
}
