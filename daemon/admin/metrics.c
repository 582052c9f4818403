/* /metrics: the Prometheus text exposition format 0.0.4. Names carry the
 * pintuan_ prefix and base units (seconds, bytes); counters end in _total.
 * The process_* family is the one every Prometheus client library exports
 * under these exact names, so the usual dashboards and alerts work as they
 * are. Everything is read at scrape time: the hot path only bumps the
 * counters it already had. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "admin_int.h"
#include "pintuan.pb-c.h"
#include "prefault.h"
#include "xalloc.h"

static void head(abuf *b, const char *name, const char *type, const char *help) {
  abuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The shortest text that reads back as v: 0.009, not 0.0089999999999999993. */
static const char *num(char buf[32], double v) {
  if (v == (double)(long long)v && v > -1e15 && v < 1e15) { /* counts: all their digits */
    snprintf(buf, 32, "%lld", (long long)v);
    return buf;
  }
  for (int digits = 6; digits < 17; digits++) {
    snprintf(buf, 32, "%.*g", digits, v);
    if (strtod(buf, NULL) == v) return buf;
  }
  snprintf(buf, 32, "%.17g", v);
  return buf;
}

static void one(abuf *b, const char *name, const char *type, const char *help, double v) {
  head(b, name, type, help);
  char n[32];
  abuf_printf(b, "%s %s\n", name, num(n, v));
}

/* Observations are kept in 1/per of the base unit (µs: per = 1e6); dividing
 * (not multiplying by 1e-6) prints the bounds as written: 0.025, not
 * 0.024999999999999998. */
static void histogram(abuf *b, const char *name, const char *help, const pt_histo *h, double per) {
  head(b, name, "histogram", help);
  uint64_t cum = 0;
  char n[32];
  for (unsigned i = 0; i < h->n; i++) {
    cum += h->count[i];
    abuf_printf(b, "%s_bucket{le=\"%s\"} %llu\n", name, num(n, (double)h->le[i] / per),
                (unsigned long long)cum);
  }
  abuf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->total);
  abuf_printf(b, "%s_sum %s\n%s_count %llu\n", name, num(n, (double)h->sum / per), name,
              (unsigned long long)h->total);
}

static const char *op_name(unsigned op) {
  const ProtobufCFieldDescriptor *f =
      op ? protobuf_c_message_descriptor_get_field(&pintuan__v1__request__descriptor, op) : NULL;
  return f ? f->name : "none";
}

static void requests(abuf *b, const pt_admin_sources *src) {
  const pt_service_stats *st = &src->svc->st;
  head(b, "pintuan_requests_total", "counter",
       "Requests answered, by operation and status (op=\"none\": not a Request)");
  for (unsigned op = 0; op < PT_SVC_OPS; op++)
    for (unsigned s = 0; s < PT_SVC_STATUSES; s++)
      if (st->replies[op][s])
        abuf_printf(b, "pintuan_requests_total{op=\"%s\",status=\"%s\"} %llu\n", op_name(op),
                    pt_status_name((pt_status)s), (unsigned long long)st->replies[op][s]);
  histogram(b, "pintuan_request_duration_seconds",
            "Time inside the daemon, per loop turn: from the turn's first request read to its "
            "replies written (durable: after Redis acknowledged the turn)",
            src->latency, 1e6);
  histogram(b, "pintuan_loop_busy_seconds",
            "Each loop turn's busy time, from the end of its wait for I/O to the next wait: "
            "the longest a request that arrives meanwhile waits to be read",
            src->loop_busy, 1e6);
  head(b, "pintuan_frame_errors_total", "counter",
       "Frames refused, by class: oversize and timeout close the connection");
  pt_server_stats ss = {0};
  if (*src->server) pt_server_stats_get(*src->server, &ss);
  abuf_printf(b,
              "pintuan_frame_errors_total{class=\"oversize\"} %llu\n"
              "pintuan_frame_errors_total{class=\"timeout\"} %llu\n"
              "pintuan_frame_errors_total{class=\"malformed\"} %llu\n"
              "pintuan_frame_errors_total{class=\"missing_id\"} %llu\n",
              (unsigned long long)ss.oversize, (unsigned long long)ss.frame_timeouts,
              (unsigned long long)st->malformed, (unsigned long long)st->missing_id);
  head(b, "pintuan_auth_refused_total", "counter",
       "Requests refused for who sent them: bad_key (a Hello with an unknown key or a wrong "
       "secret: answered late, the connection closed), no_hello (before a Hello, with keys), "
       "role (the key's role does not allow it)");
  abuf_printf(b,
              "pintuan_auth_refused_total{reason=\"bad_key\"} %llu\n"
              "pintuan_auth_refused_total{reason=\"no_hello\"} %llu\n"
              "pintuan_auth_refused_total{reason=\"role\"} %llu\n",
              (unsigned long long)st->auth_failed, (unsigned long long)st->no_hello,
              (unsigned long long)st->denied);
  head(b, "pintuan_rate_limited_total", "counter",
       "Requests answered RATE_LIMITED, by the rate they were over: a connection's, a key's, a user's");
  abuf_printf(b,
              "pintuan_rate_limited_total{scope=\"connection\"} %llu\n"
              "pintuan_rate_limited_total{scope=\"key\"} %llu\n"
              "pintuan_rate_limited_total{scope=\"user\"} %llu\n",
              (unsigned long long)st->limited[0], (unsigned long long)st->limited[1],
              (unsigned long long)st->limited[2]);
  one(b, "pintuan_keys_revoked_connections_total", "counter",
      "Connections dropped at a reload because their key was revoked or changed", (double)st->revoked);
}

static void connections(abuf *b, const pt_admin_sources *src) {
  pt_server_stats ss = {0};
  if (*src->server) pt_server_stats_get(*src->server, &ss);
  one(b, "pintuan_connections", "gauge", "Client connections open", ss.clients);
  one(b, "pintuan_connections_accepted_total", "counter", "Client connections accepted",
      (double)ss.accepted);
  head(b, "pintuan_connections_refused_total", "counter",
       "Client connections refused: max_clients reached, or max_clients_per_ip from one address");
  abuf_printf(b,
              "pintuan_connections_refused_total{reason=\"max_clients\"} %llu\n"
              "pintuan_connections_refused_total{reason=\"per_ip\"} %llu\n",
              (unsigned long long)ss.refused, (unsigned long long)ss.refused_ip);
  head(b, "pintuan_connections_dropped_total", "counter",
       "Client connections the daemon closed, by reason");
  abuf_printf(b,
              "pintuan_connections_dropped_total{reason=\"slow_reader\"} %llu\n"
              "pintuan_connections_dropped_total{reason=\"held_in_doubt\"} %llu\n"
              "pintuan_connections_dropped_total{reason=\"reply_deadline\"} %llu\n"
              "pintuan_connections_dropped_total{reason=\"output_budget\"} %llu\n"
              "pintuan_connections_dropped_total{reason=\"silent\"} %llu\n"
              "pintuan_connections_dropped_total{reason=\"idle\"} %llu\n",
              (unsigned long long)ss.dropped_slow, (unsigned long long)ss.dropped_held,
              (unsigned long long)ss.dropped_deadline, (unsigned long long)ss.dropped_budget,
              (unsigned long long)ss.closed_silent, (unsigned long long)ss.closed_idle);
  one(b, "pintuan_tls_failed_total", "counter",
      "TLS connections closed on a failed handshake or record (a plaintext client, a bad certificate)",
      (double)ss.tls_failed);
  one(b, "pintuan_unsent_bytes", "gauge",
      "Replies of every connection not written yet (bounded by output_budget)", (double)ss.unsent);
  one(b, "pintuan_connections_paused", "gauge",
      "Connections not read now: their unsent replies passed the high water", ss.paused);
  one(b, "pintuan_backpressure_pauses_total", "counter",
      "Times a connection stopped being read because its replies were not read", (double)ss.pauses);
  one(b, "pintuan_output_memory_bytes", "gauge",
      "Memory of the connections' output buffers (counted in output_budget, with kept input)",
      (double)ss.out_mem);
  one(b, "pintuan_kept_input_bytes", "gauge",
      "Input read and not yet decided: frames waiting for their turn, partial frames (counted in output_budget)",
      (double)ss.kept);
  one(b, "pintuan_turn_yields_total", "counter",
      "Times a connection took its share of a loop turn's work and waited for the next turn", (double)ss.yields);
  one(b, "pintuan_demotions_total", "counter",
      "Turns in which a connection was held to a few requests: refused for its own or its key's rate, "
      "or anonymous where keys are required", (double)ss.demoted);
  one(b, "pintuan_memory_trims_total", "counter",
      "Times freed memory was handed back to the system after connections' buffers were freed", (double)ss.trims);
  one(b, "pintuan_received_bytes_total", "counter", "Bytes read from clients", (double)ss.bytes_in);
  one(b, "pintuan_sent_bytes_total", "counter", "Bytes written to clients", (double)ss.bytes_out);
}

/* A scrape under way. Two parts of it grow with the daemon's size:
 * - the per-campaign series are for the newest campaigns that have not
 *   ended: finding them may mean looking through every campaign (a sale
 *   day's many ended ones newer than a long one still running), a cache
 *   miss each: milliseconds for 100k;
 * - process_open_fds: Linux 6.2 and later give the number at once (the
 *   size of /proc/self/fd); before, the directory's entries are counted,
 *   ~1.5 µs each: tens of milliseconds for 16k clients.
 * So both are done a slice at a time (admin_scrape_step, one slice of
 * each per loop turn), and the exposition is written once both are done. */
#define PICK_MAX 1000  /* admin max_campaign_metrics' own bound */
#define FD_SLICE 4096  /* bytes of directory entries a slice reads: ~170 */
struct admin_scrape {
  const pt_engine *engine; /* the one looked through (a failover replaces it: start over) */
  size_t next;             /* slots below this are still to be looked at, newest first */
  size_t cap, shown;       /* shown: found, in pick[] */
  size_t pick[PICK_MAX];
  int fd_dir;              /* /proc/self/fd while its entries are counted, else -1 */
  unsigned fds;            /* open descriptors (counted so far) */
};

admin_scrape *admin_scrape_new(void) {
  admin_scrape *s = pt_xcalloc(1, sizeof *s);
  struct stat st;
  s->fd_dir = -1;
  if (stat("/proc/self/fd", &st) == 0 && st.st_size > 0) s->fds = (unsigned)st.st_size;
  else s->fd_dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return s;
}

void admin_scrape_free(admin_scrape *s) {
  if (!s) return;
  if (s->fd_dir >= 0) close(s->fd_dir);
  free(s);
}

/* getdents64(2)'s entry (glibc names it only under _GNU_SOURCE) */
struct linux_dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

/* One slice of the directory's entries; false when all are counted. */
static bool count_fds(admin_scrape *s) {
  if (s->fd_dir < 0) return false;
  _Alignas(8) char buf[FD_SLICE];
  long n = syscall(SYS_getdents64, s->fd_dir, buf, sizeof buf);
  for (long off = 0; off < n;) {
    const struct linux_dirent64 *de = (const struct linux_dirent64 *)(buf + off);
    if (de->d_name[0] != '.') s->fds++;
    off += de->d_reclen;
  }
  if (n > 0) return true;
  close(s->fd_dir);
  s->fd_dir = -1;
  if (s->fds) s->fds--; /* the directory's own */
  return false;
}

bool admin_scrape_step(const pt_admin_sources *src, admin_scrape *s, size_t budget) {
  bool fds_left = count_fds(s);
  pt_engine *e = *src->engine;
  if (s->engine != e) {
    s->engine = e;
    s->next = pt_campaign_count(e);
    s->shown = 0;
    s->cap = src->cfg->max_campaign_metrics < PICK_MAX ? src->cfg->max_campaign_metrics : PICK_MAX;
  }
  int64_t now = pt_turn_clock(src->turn);
  for (; s->next > 0 && s->shown < s->cap && budget > 0; budget--) {
    pt_campaign *cp = pt_campaign_at(e, --s->next);
    pt_campaign_info ci;
    if (!cp) continue;
    pt_campaign_info_get(e, cp, now, &ci);
    if (!ci.ended) s->pick[s->shown++] = s->next;
  }
  return !fds_left && (s->next == 0 || s->shown == s->cap);
}

static void campaigns(abuf *b, const pt_admin_sources *src, const admin_scrape *s) {
  pt_engine *e = *src->engine;
  pt_engine_stats es;
  pt_engine_stats_get(e, &es);
  one(b, "pintuan_campaigns", "gauge", "Campaigns known (ended ones included)", (double)es.campaigns);
  one(b, "pintuan_campaigns_retired", "gauge",
      "Campaigns retired (ended longer ago than campaign_retention_ms: their final counters kept, the rest freed)",
      (double)(*src->engine ? pt_campaigns_retired(*src->engine) : 0));
  one(b, "pintuan_holds", "gauge", "Live holds: reservations and seats not yet confirmed",
      (double)es.live_holds);
  one(b, "pintuan_waitlisted", "gauge", "Requests waiting on a waitlist", (double)es.waiting);
  one(b, "pintuan_open_groups", "gauge", "Group buys forming", (double)es.open_groups);
  one(b, "pintuan_groups_completed_total", "counter", "Group buys that filled", (double)es.groups_completed);
  one(b, "pintuan_groups_failed_total", "counter", "Group buys that expired unfilled",
      (double)es.groups_failed);
  one(b, "pintuan_holds_expired_total", "counter", "Holds released by their deadline",
      (double)es.expiries);
  one(b, "pintuan_due_deferred_turns_total", "counter",
      "Loop turns that left due work (expiries, retirements, forgotten ids) to the next: a mass "
      "expiry drained in slices of engine.due_per_turn, or held back while Redis is behind",
      (double)src->turn->deferred);
  one(b, "pintuan_remembered_effects", "gauge",
      "Effects remembered by request id (answered again on a retry)", (double)es.idem_records);
  one(b, "pintuan_remembered_evictions_total", "counter",
      "Remembered effects forgotten early by max_remembered", (double)es.idem_evictions);
  one(b, "pintuan_events_total", "counter", "Events the engine published", (double)es.events);
  one(b, "pintuan_events_pushed_total", "counter", "Event frames pushed to subscribers",
      (double)src->svc->events_pushed);

  /* Per campaign, the newest that have not ended, up to the cap (found by
   * admin_scrape_step): a sale day's many finished campaigns must not
   * swamp the scrape. Each campaign's values and label are read once. */
  static const struct { const char *name, *help; } g[] = {
      {"pintuan_campaign_stock", "Units the campaign started with"},
      {"pintuan_campaign_available", "Units neither held nor sold"},
      {"pintuan_campaign_held", "Units held, not yet confirmed"},
      {"pintuan_campaign_sold", "Units sold (confirmed)"},
      {"pintuan_campaign_waitlist", "Requests on the campaign's waitlist"},
      {"pintuan_campaign_open_groups", "The campaign's group buys forming"}};
  int64_t now = pt_turn_clock(src->turn);
  size_t found = s->engine == e ? s->shown : 0, shown = 0;
  int64_t(*v)[6] = pt_xmalloc((found ? found : 1) * sizeof *v);
  size_t *label_end = pt_xmalloc((found ? found : 1) * sizeof *label_end);
  abuf labels = {0}; /* {campaign="ID"} and a space, one after another */
  for (size_t j = 0; j < found; j++) {
    pt_campaign *cp = pt_campaign_at(e, s->pick[j]);
    pt_campaign_info ci;
    if (!cp) continue;
    pt_campaign_info_get(e, cp, now, &ci);
    int64_t val[6] = {ci.stock, ci.available, ci.held, ci.sold, ci.waitlist_length, ci.open_groups};
    memcpy(v[shown], val, sizeof val);
    abuf_lit(&labels, "{campaign=\"");
    abuf_id_escaped(&labels, ci.id);
    abuf_lit(&labels, "\"} ");
    label_end[shown++] = labels.len;
  }
  for (unsigned k = 0; k < sizeof g / sizeof g[0]; k++) {
    head(b, g[k].name, "gauge", g[k].help);
    size_t name_len = strlen(g[k].name);
    for (size_t j = 0; j < shown; j++) {
      size_t from = j ? label_end[j - 1] : 0;
      abuf_add(b, g[k].name, name_len);
      abuf_add(b, labels.p + from, label_end[j] - from);
      abuf_i64(b, v[j][k]);
      abuf_lit(b, "\n");
    }
  }
  free(labels.p);
  free(label_end);
  free(v);
  one(b, "pintuan_campaign_metrics_omitted", "gauge",
      "Campaigns without per-campaign series (ended, or past admin max_campaign_metrics)",
      (double)(pt_campaign_count(e) - shown));
}

static void mirror(abuf *b, const pt_admin_sources *src) {
  pt_mirror *m = *src->mirror;
  head(b, "pintuan_role", "gauge", "This daemon's role (1 for the current one)");
  static const char *roles[] = {"memory-only", "connecting", "standby",    "recovering",
                                "primary",     "unavailable", "failed",  "refused"};
  int cur = m ? (int)pt_mirror_role(m) : 0;
  for (int r = src->mode == PT_MIRROR_OFF ? 0 : 1; r < (int)(sizeof roles / sizeof *roles); r++) {
    abuf_printf(b, "pintuan_role{role=\"%s\"} %d\n", roles[r], r == cur);
    if (src->mode == PT_MIRROR_OFF) break;
  }
  if (!m) return;
  pt_mirror_stats st;
  pt_mirror_stats_get(m, &st);
  one(b, "pintuan_mirror_epoch", "gauge", "The lease epoch this daemon holds or last held",
      (double)st.epoch);
  one(b, "pintuan_mirror_records_in_flight", "gauge", "Journal records sent, not yet acknowledged",
      (double)st.inflight);
  one(b, "pintuan_mirror_unacknowledged_records", "gauge",
      "Journal records made and not yet acknowledged (in flight or queued)",
      (double)(st.last_seq - st.acked_seq));
  one(b, "pintuan_mirror_backlog_bytes", "gauge", "Journal bytes queued, not yet sent",
      (double)st.backlog_bytes);
  one(b, "pintuan_mirror_lag_seconds", "gauge",
      "Age of the oldest journal record Redis has not acknowledged (0: none)", (double)st.lag_us / 1e6);
  one(b, "pintuan_mirror_records_total", "counter", "Journal records sent", (double)st.appended);
  one(b, "pintuan_mirror_records_acknowledged_total", "counter", "Journal records acknowledged",
      (double)st.acked);
  one(b, "pintuan_mirror_sent_bytes_total", "counter", "Journal and event bytes sent", (double)st.bytes);
  one(b, "pintuan_mirror_record_parts_total", "counter",
      "Journal records sent in the middle of a turn too big for one record", (double)st.parts);
  histogram(b, "pintuan_mirror_batch_requests", "State-changing requests per journal record",
            &st.batch, 1);
  histogram(b, "pintuan_mirror_append_duration_seconds",
            "A journal record's round trip: sent to acknowledged by Redis", &st.append_us, 1e6);
  one(b, "pintuan_mirror_reconnects_total", "counter", "Connections to Redis made again", (double)st.reconnects);
  one(b, "pintuan_mirror_snapshots_total", "counter", "Snapshots written", (double)st.snapshots);
  one(b, "pintuan_mirror_snapshot_failures_total", "counter", "Snapshots that failed",
      (double)st.snapshot_failures);
  one(b, "pintuan_mirror_recoveries_total", "counter", "Rebuilds of the state from Redis",
      (double)st.recoveries);
  one(b, "pintuan_mirror_recovered_inputs_total", "counter", "Journal inputs replayed by rebuilds",
      (double)st.recovered_inputs);
  one(b, "pintuan_mirror_last_recovery_seconds", "gauge", "How long the last rebuild took",
      (double)st.last_recovery_ms / 1e3);
  one(b, "pintuan_mirror_step_downs_total", "counter",
      "Times this daemon stopped deciding (lease lost, Redis lost, an append refused)",
      (double)st.step_downs);
  one(b, "pintuan_mirror_follow_record", "gauge",
      "A standby: the last journal record it followed into its own engine (stale reads, takeovers)",
      (double)st.follow_seq);
  one(b, "pintuan_mirror_follow_age_seconds", "gauge",
      "A standby: since it last found no newer record in Redis (-1: it follows nothing)",
      st.follow_age_ms < 0 ? -1.0 : (double)st.follow_age_ms / 1e3);
  one(b, "pintuan_mirror_lease_waits_total", "counter",
      "Times the lease ended by this daemon's clock before a renewal came back (nothing answered meanwhile)",
      (double)st.lease_waits);
  one(b, "pintuan_mirror_known_record", "gauge",
      "The highest journal record this daemon saw Redis hold (a Redis holding less is refused)",
      (double)st.known_seq);
  head(b, "pintuan_mirror_refused", "gauge",
       "1 while this daemon refuses its shard: Redis holds less than it saw (reason: NOSHARD not "
       "created, GONE lost entirely, IDENTITY another incarnation, EPOCH or SEQ an older copy)");
  static const char *reasons[] = {"NOSHARD", "GONE", "IDENTITY", "EPOCH", "SEQ"};
  const char *why = m ? pt_mirror_refusal(m) : "";
  for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++)
    abuf_printf(b, "pintuan_mirror_refused{reason=\"%s\"} %d\n", reasons[i], !strcmp(why, reasons[i]));
  one(b, "pintuan_mirror_appends_refused_total", "counter",
      "Journal appends Redis refused (FENCED: another primary's epoch; SEQ: a gap)",
      (double)st.appends_refused);
}

static void prefault(abuf *b) {
  uint64_t touched, dropped;
  pt_prefault_stats(&touched, &dropped);
  one(b, "pintuan_prefault_bytes_total", "counter",
      "Bytes of the engine's next memory faulted in ahead of it by the prefault thread", (double)touched);
  one(b, "pintuan_prefault_dropped_total", "counter",
      "Ranges left for the engine to fault itself because the prefault queue was full", (double)dropped);
}

static void process(abuf *b, const pt_admin_sources *src, const admin_scrape *s) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  one(b, "process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds",
      (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
          ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6);
  long page = sysconf(_SC_PAGESIZE);
  unsigned long long vsz = 0, rss = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%llu %llu", &vsz, &rss) != 2) vsz = rss = 0;
    fclose(f);
  }
  one(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes",
      (double)rss * (double)page);
  one(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes",
      (double)vsz * (double)page);
  one(b, "process_open_fds", "gauge", "Open file descriptors", s->fds);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    one(b, "process_max_fds", "gauge", "Maximum open file descriptors", (double)rl.rlim_cur);
  one(b, "process_start_time_seconds", "gauge", "Start time since the Unix epoch, in seconds",
      (double)src->started_ms / 1e3);
}

void admin_scrape_write(const pt_admin_sources *src, const admin_scrape *s, abuf *b) {
  head(b, "pintuan_build_info", "gauge", "The running build (always 1)");
  abuf_printf(b, "pintuan_build_info{version=\"%s\"} 1\n", PT_VERSION);
  requests(b, src);
  connections(b, src);
  campaigns(b, src, s);
  mirror(b, src);
  prefault(b);
  process(b, src, s);
}
