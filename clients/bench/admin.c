/* admin.c owns what pintuan-bench asks on its one blocking connection:
 * the admin hello, creating the campaigns before the load, and querying
 * every campaign and every successful user's holdings for the verdict
 * after it (pipelined, a thousand queries at a time). */
#include "admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "scenarios.h"
#include "xalloc.h"

#define SETUP_WAIT_MS 30000

pintuan_client *admin_connect(const bench *b) {
  char err[1024];
  const bench_opts *o = &b->o;
  pintuan_tls tls = {.ca_file = o->tls_ca, .cert_file = o->tls_cert, .key_file = o->tls_key,
                     .server_name = o->tls_server_name};
  pintuan_client *c = pintuan_connect_tls(o->addr, 10000, o->tls ? &tls : NULL, err, sizeof err);
  if (!c) {
    fprintf(stderr, "pintuan-bench: %s\n", err);
    return NULL;
  }
  if (b->o.key_name[0]) {
    pintuan_response *r;
    if (pintuan_hello(c, b->o.key_name, b->o.key_secret, &r) || r->status != PINTUAN__V1__STATUS__OK) {
      fprintf(stderr, "pintuan-bench: the key %s was refused\n", b->o.key_name);
      pintuan_response_free(r);
      pintuan_close(c);
      return NULL;
    }
    pintuan_response_free(r);
  }
  return c;
}

int admin_create_campaigns(bench *b, pintuan_client *c) {
  const bench_opts *o = &b->o;
  scenarios_make_campaigns(b, o->scenario == SC_ZIPF ? (size_t)o->campaigns : 1);
  for (size_t i = 0; i < b->ncamps; i++) {
    const char *id = b->camps[i].id;
    pintuan_campaign_spec s = {
        .campaign_id = id, .stock = o->stock, .per_user_limit = o->limit, .hold_ms = 600000,
        .kind = o->scenario == SC_GROUP ? PINTUAN__V1__CAMPAIGN_KIND__GROUP_BUY
                                        : PINTUAN__V1__CAMPAIGN_KIND__FLASH_SALE};
    if (o->scenario == SC_GROUP) s.group_size = o->group_size, s.group_ttl_ms = 3600000;
    pintuan_response *r = NULL;
    int waited = 0;
    /* a daemon still rebuilding from Redis answers UNAVAILABLE: wait for
     * it (up to SETUP_WAIT_MS), retrying with the same request id */
    for (int64_t until = pt_mono_ns() + SETUP_WAIT_MS * 1000000LL;;) {
      if (o->scenario == SC_STAMPEDE) /* the sale opens as the measurement starts */
        s.start_ms = pt_wall_ms() + (int64_t)(o->warmup * 1000) + 200;
      if (pintuan_create_campaign(c, &s, id, &r) || r->status != PINTUAN__V1__STATUS__UNAVAILABLE ||
          pt_mono_ns() >= until)
        break;
      if (!waited++)
        fprintf(stderr, "pintuan-bench: the daemon is not ready (%s); waiting up to %d s\n", r->detail,
                SETUP_WAIT_MS / 1000);
      pintuan_response_free(r);
      r = NULL;
      nanosleep(&(struct timespec){.tv_nsec = 100000000}, NULL);
    }
    if (!r || r->status != PINTUAN__V1__STATUS__OK) {
      fprintf(stderr, "pintuan-bench: cannot create campaign %s: %s\n", id, r ? r->detail : pintuan_error(c));
      pintuan_response_free(r);
      return -1;
    }
    pintuan_response_free(r);
  }
  if (o->scenario == SC_ZIPF) scenarios_zipf_weights(b);
  /* the stampede waits for its start instant during the warm-up */
  return 0;
}

static int cmp_ok(const void *a, const void *b) {
  const okuser *x = a, *y = b;
  if (x->campaign != y->campaign) return x->campaign < y->campaign ? -1 : 1;
  return strcmp(x->user, y->user);
}

/* The holdings of users oks[0..nu): pipelined, every query sent, then every
 * reply read, a thousand at a time. */
static int query_holdings(bench *b, pintuan_client *c, size_t nu, pt_vuser *vu) {
  for (size_t i = 0; i < nu; i++) {
    pintuan_request q;
    Pintuan__V1__GetHoldings m;
    pintuan_req_get_holdings(&q, &m, b->camps[b->oks[i].campaign].id, b->oks[i].user);
    if (pintuan_send(c, &q)) return -1;
    if (i % 1000 == 999 || i + 1 == nu) {
      if (pintuan_flush(c)) return -1;
      for (size_t k = i - i % 1000; k <= i; k++) {
        pintuan_response *r;
        if (pintuan_recv(c, &r)) return -1;
        vu[k].campaign = b->oks[k].campaign;
        vu[k].user = b->oks[k].user;
        if (r->result_case == PINTUAN__V1__RESPONSE__RESULT_HOLDINGS)
          vu[k].held = r->holdings->held, vu[k].sold = r->holdings->sold, vu[k].waiting = r->holdings->waiting;
        pintuan_response_free(r);
      }
    }
  }
  return 0;
}

int admin_verdict(bench *b, pintuan_client *c, pt_verdict *v) {
  size_t nc = b->ncamps;
  pt_vcampaign *vc = pt_xcalloc(nc + 1, sizeof(*vc));
  pintuan_response **keep = pt_xcalloc(nc + 1, sizeof(*keep));
  pt_vuser *vu = NULL;
  int rc = -1;
  for (size_t i = 0; i < nc; i++) {
    if (pintuan_get_campaign(c, b->camps[i].id, &keep[i])) goto out;
    pintuan_response *r = keep[i];
    vc[i].id = b->camps[i].id;
    if (r->result_case == PINTUAN__V1__RESPONSE__RESULT_CAMPAIGN) {
      vc[i].stock = r->campaign->stock, vc[i].available = r->campaign->available;
      vc[i].held = r->campaign->held, vc[i].sold = r->campaign->sold;
      vc[i].per_user_limit = r->campaign->per_user_limit;
    }
  }
  if (b->noks) qsort(b->oks, b->noks, sizeof(*b->oks), cmp_ok); /* (oks is NULL when none) */
  size_t nu = 0;
  for (size_t i = 0; i < b->noks; i++)
    if (i == 0 || cmp_ok(&b->oks[i], &b->oks[i - 1])) b->oks[nu++] = b->oks[i];
  vu = pt_xcalloc(nu + 1, sizeof(*vu));
  if (query_holdings(b, c, nu, vu)) goto out;
  pt_verdict_check(vc, nc, vu, nu, v);
  rc = 0;
out:
  for (size_t i = 0; i < nc; i++) pintuan_response_free(keep[i]);
  free(keep);
  free(vc);
  free(vu);
  return rc;
}
