/* The admin port's JSON: /server_info, /campaigns, /campaigns/ID and the
 * /stats/stream line, written with jansson (the campaign views, which may
 * be long, straight into the buffer). Ids are bytes on the wire: they are
 * shown printable (abuf_id) so the JSON is always valid. */
#include <jansson.h>
#include <string.h>

#include "admin_int.h"
#include "clock.h"

static void dump(json_t *j, abuf *out) {
  char *s = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  if (!s) abort(); /* only out of memory: fatal, as everywhere */
  abuf_add(out, s, strlen(s));
  abuf_add(out, "\n", 1);
  free(s);
}

static const char *role_name(const pt_admin_sources *src) {
  return *src->mirror ? pt_role_name(pt_mirror_role(*src->mirror))
         : src->mode == PT_MIRROR_OFF ? "memory-only"
                                      : "stopped";
}

const char *pt_admin_unready(const pt_admin_sources *src) {
  if (src->mode == PT_MIRROR_OFF) return *src->server ? NULL : "stopping";
  pt_mirror *m = *src->mirror;
  if (!m) return "stopping";
  switch (pt_mirror_role(m)) {
  case PT_ROLE_PRIMARY: break;
  case PT_ROLE_CONNECTING: return "connecting to Redis";
  case PT_ROLE_STANDBY: return "standby: another daemon holds the lease";
  case PT_ROLE_RECOVERING: return "recovering: rebuilding the state from Redis";
  case PT_ROLE_UNAVAILABLE: return "unavailable: Redis was lost, rebuilding once it answers";
  case PT_ROLE_FAILED: return "failed: the journal does not replay as recorded (see the log)";
  case PT_ROLE_REFUSED: return pt_mirror_refuses(m, true, &(pt_status){0}, &(const char *){0});
  }
  pt_status st;
  const char *leader;
  return pt_mirror_refuses(m, true, &st, &leader); /* the lease in doubt, the backlog full */
}

void admin_server_info(const pt_admin_sources *src, abuf *out) {
  const pt_config *c = src->cfg;
  json_t *j = json_object();
  json_object_set_new(j, "version", json_string(PT_VERSION));
  json_object_set_new(j, "role", json_string(role_name(src)));
  const char *why = pt_admin_unready(src);
  json_object_set_new(j, "ready", json_boolean(!why));
  if (why) json_object_set_new(j, "not_ready_reason", json_string(why));
  pt_mirror_stats ms = {0};
  if (*src->mirror) pt_mirror_stats_get(*src->mirror, &ms);
  json_object_set_new(j, "epoch", json_integer((json_int_t)ms.epoch));
  json_object_set_new(j, "node_id", json_string(src->node_id));
  if (*src->mirror) json_object_set_new(j, "leader", json_string(pt_mirror_leader(*src->mirror)));
  int64_t now = pt_wall_ms();
  json_object_set_new(j, "uptime_s", json_integer((now - src->started_ms) / 1000));
  json_object_set_new(j, "started_ms", json_integer(src->started_ms));
  if (*src->server) json_object_set_new(j, "port", json_integer(pt_server_port(*src->server)));

  json_t *cfg = json_object(); /* the effective configuration, secrets left out */
  json_object_set_new(cfg, "config_file", json_string(c->config_path));
  char listen[PT_HOST_MAX + 16];
  snprintf(listen, sizeof listen, strchr(c->host, ':') ? "[%s]:%d" : "%s:%d", c->host, c->port);
  json_object_set_new(cfg, "listen", json_string(listen));
  json_object_set_new(cfg, "admin_listen", json_string(c->admin_listen));
  json_object_set_new(cfg, "keys", json_integer(src->svc->keys ? pt_keys_count(src->svc->keys) : 0));
  json_object_set_new(cfg, "allow_anonymous", json_boolean(c->allow_anonymous));
  json_object_set_new(cfg, "max_clients", json_integer(c->max_clients));
  json_object_set_new(cfg, "max_frame", json_integer((json_int_t)c->max_frame));
  json_object_set_new(cfg, "output_high_water", json_integer((json_int_t)c->out_high));
  json_object_set_new(cfg, "output_hard_limit", json_integer((json_int_t)c->out_hard));
  json_object_set_new(cfg, "frame_timeout_ms", json_integer((json_int_t)c->frame_timeout_ms));
  json_object_set_new(cfg, "idempotency_window_ms", json_integer(c->idem_window_ms));
  json_object_set_new(cfg, "max_remembered", json_integer((json_int_t)c->max_remembered));
  json_object_set_new(cfg, "max_campaign_metrics", json_integer(c->max_campaign_metrics));
  static const char *levels[] = {"debug", "info", "warn", "error"};
  json_object_set_new(cfg, "log_level", json_string(levels[c->log_level]));
  json_object_set_new(cfg, "capture", json_string(c->capture_path));
  json_object_set_new(cfg, "mirror", json_string(pt_mirror_mode_name(src->mode)));
  if (src->mode != PT_MIRROR_OFF) {
    json_object_set_new(cfg, "redis", json_string(c->redis));
    json_object_set_new(cfg, "redis_user", json_string(c->redis_user));
    json_object_set_new(cfg, "redis_password_set", json_boolean(c->redis_password[0] != 0));
    json_object_set_new(cfg, "shard", json_string(c->shard));
    json_object_set_new(cfg, "lease_ms", json_integer(c->lease_ms));
    json_object_set_new(cfg, "snapshot_after_bytes", json_integer((json_int_t)c->snapshot_after));
    json_object_set_new(cfg, "snapshot_growth_percent", json_integer((json_int_t)c->snapshot_growth));
    json_object_set_new(cfg, "snapshot_chunk_bytes", json_integer((json_int_t)c->snapshot_chunk));
    json_object_set_new(cfg, "snapshot_compression", json_string(c->snapshot_compress ? "zstd" : "none"));
    json_object_set_new(cfg, "max_inflight", json_integer(c->max_inflight));
    json_object_set_new(cfg, "max_backlog_bytes", json_integer((json_int_t)c->max_backlog));
    json_object_set_new(cfg, "events_maxlen", json_integer((json_int_t)c->events_maxlen));
  }
  json_object_set_new(j, "config", cfg);
  dump(j, out);
}

/* One campaign's JSON, written straight into out: the same text
 * json_dumps(JSON_COMPACT) made of the jansson object it replaces (keys in
 * this order, integers in decimal), at a fraction of the cost (a page of a
 * thousand must not hold the loop for milliseconds). */
static void campaign_text(pt_engine *e, pt_campaign *cp, int64_t now, abuf *out) {
  pt_campaign_info ci;
  pt_campaign_info_get(e, cp, now, &ci);
  abuf_lit(out, "{\"campaign_id\":\"");
  abuf_id_escaped(out, ci.id);
  /* enum values as the protocol names them, for people (as pintuan-cli) */
  if (ci.kind == PT_GROUP_BUY) abuf_lit(out, "\",\"kind\":\"GROUP_BUY\",\"start_ms\":");
  else abuf_lit(out, "\",\"kind\":\"FLASH_SALE\",\"start_ms\":");
  abuf_i64(out, ci.start_ms);
  abuf_lit(out, ",\"end_ms\":");
  abuf_i64(out, ci.end_ms);
  if (ci.retired) abuf_lit(out, ",\"ended\":true,\"retired\":true,\"stock\":");
  else if (ci.ended) abuf_lit(out, ",\"ended\":true,\"stock\":");
  else abuf_lit(out, ",\"ended\":false,\"stock\":");
  abuf_i64(out, ci.stock);
  abuf_lit(out, ",\"available\":");
  abuf_i64(out, ci.available);
  abuf_lit(out, ",\"held\":");
  abuf_i64(out, ci.held);
  abuf_lit(out, ",\"sold\":");
  abuf_i64(out, ci.sold);
  abuf_lit(out, ",\"per_user_limit\":");
  abuf_i64(out, ci.per_user_limit);
  abuf_lit(out, ",\"hold_ms\":");
  abuf_i64(out, ci.hold_ms);
  if (ci.waitlist) abuf_lit(out, ",\"waitlist\":true,\"waitlist_length\":");
  else abuf_lit(out, ",\"waitlist\":false,\"waitlist_length\":");
  abuf_i64(out, ci.waitlist_length);
  if (ci.kind == PT_GROUP_BUY) {
    abuf_lit(out, ",\"group_size\":");
    abuf_i64(out, ci.group_size);
    abuf_lit(out, ",\"group_ttl_ms\":");
    abuf_i64(out, ci.group_ttl_ms);
    abuf_lit(out, ",\"open_groups\":");
    abuf_i64(out, ci.open_groups);
  }
  abuf_lit(out, "}");
}

/* The campaign views show the state of the one daemon that decides: on any
 * other (a standby, or one without its lease) they answer 503 saying which
 * role it is and who the primary is, never an empty list that reads like
 * an empty primary. */
static int not_the_primary(const pt_admin_sources *src, abuf *out) {
  pt_mirror *m = *src->mirror;
  if (src->mode == PT_MIRROR_OFF || (m && pt_mirror_role(m) == PT_ROLE_PRIMARY)) return 0;
  json_t *j = json_object();
  json_object_set_new(j, "role", json_string(role_name(src)));
  if (m && pt_mirror_leader(m)[0]) json_object_set_new(j, "leader", json_string(pt_mirror_leader(m)));
  json_object_set_new(j, "error", json_string("this daemon is not the primary: ask the primary's admin port"));
  dump(j, out);
  return 503;
}

int admin_campaigns(const pt_admin_sources *src, uint64_t cursor, unsigned limit, abuf *out) {
  int st = not_the_primary(src, out);
  if (st) return st;
  pt_engine *e = *src->engine;
  int64_t now = pt_turn_clock(src->turn);
  abuf_printf(out, "{\"role\":\"%s\",\"campaigns\":[", role_name(src));
  /* Slots from the cursor on, empty ones skipped; at most ADMIN_PAGE_SCAN
   * of them, so a page costs little however many campaigns there are or
   * how many slots are empty (a page may then hold fewer than limit). */
  size_t n = pt_campaign_count(e), i = cursor < n ? (size_t)cursor : n, shown = 0;
  size_t end = n - i > ADMIN_PAGE_SCAN ? i + ADMIN_PAGE_SCAN : n;
  for (; i < end && shown < limit; i++) {
    pt_campaign *cp = pt_campaign_at(e, i);
    if (!cp) continue;
    if (shown++) abuf_lit(out, ",");
    campaign_text(e, cp, now, out);
  }
  abuf_lit(out, "],\"next_cursor\":");
  abuf_i64(out, i < n ? (int64_t)i : 0);
  abuf_lit(out, "}\n");
  return 200;
}

int admin_campaign(const pt_admin_sources *src, pt_bytes id, abuf *out) {
  int st = not_the_primary(src, out);
  if (st) return st;
  pt_engine *e = *src->engine;
  pt_campaign *cp = pt_id_valid(id) ? pt_campaign_find(e, id) : NULL;
  if (!cp) return 404;
  campaign_text(e, cp, pt_turn_clock(src->turn), out);
  abuf_lit(out, "\n");
  return 200;
}

void admin_sample_take(const pt_admin_sources *src, admin_sample *out) {
  const pt_service_stats *st = &src->svc->st;
  out->mono_ns = pt_mono_ns();
  out->requests = st->requests;
  out->ok = out->sold_out = 0;
  for (unsigned op = 0; op < PT_SVC_OPS; op++) {
    out->ok += st->replies[op][PT_OK];
    out->sold_out += st->replies[op][PT_SOLD_OUT];
  }
  out->latency = *src->latency;
}

void admin_stats_line(const pt_admin_sources *src, const admin_sample *was,
                      const admin_sample *now, abuf *out) {
  double s = (double)(now->mono_ns - was->mono_ns) / 1e9;
  if (s <= 0) s = 1;
  pt_engine_stats es;
  pt_engine_stats_get(*src->engine, &es);
  pt_server_stats ss = {0};
  if (*src->server) pt_server_stats_get(*src->server, &ss);
  json_t *j = json_object();
  json_object_set_new(j, "t", json_integer(pt_wall_ms()));
  json_object_set_new(j, "role", json_string(role_name(src)));
  json_object_set_new(j, "req_s", json_integer((json_int_t)((double)(now->requests - was->requests) / s + 0.5)));
  json_object_set_new(j, "ok_s", json_integer((json_int_t)((double)(now->ok - was->ok) / s + 0.5)));
  json_object_set_new(j, "sold_out_s",
                      json_integer((json_int_t)((double)(now->sold_out - was->sold_out) / s + 0.5)));
  json_object_set_new(j, "p99_ms",
                      json_real((double)pt_histo_quantile(&now->latency, &was->latency, 0.99) / 1e3));
  json_object_set_new(j, "conns", json_integer(ss.clients));
  json_object_set_new(j, "holds", json_integer((json_int_t)es.live_holds));
  json_object_set_new(j, "open_groups", json_integer((json_int_t)es.open_groups));
  json_object_set_new(j, "remembered", json_integer((json_int_t)es.idem_records));
  if (*src->mirror) {
    pt_mirror_stats ms;
    pt_mirror_stats_get(*src->mirror, &ms);
    json_object_set_new(j, "epoch", json_integer((json_int_t)ms.epoch));
    json_object_set_new(j, "mirror_lag_ms", json_real((double)ms.lag_us / 1e3));
    json_object_set_new(j, "mirror_unacked", json_integer((json_int_t)(ms.last_seq - ms.acked_seq)));
  }
  dump(j, out);
}
