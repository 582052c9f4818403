#include "verdict.h"

#include <string.h>

void pt_verdict_check(const pt_vcampaign *c, size_t nc, const pt_vuser *u, size_t nu,
                      pt_verdict *v) {
  memset(v, 0, sizeof(*v));
  v->campaigns = nc;
  v->users = nu;
  for (size_t i = 0; i < nc; i++) {
    int64_t out = c[i].held + c[i].sold;
    if (out > c[i].stock) v->oversold += out - c[i].stock;
    if (c[i].available + c[i].held + c[i].sold != c[i].stock) v->not_conserved++;
    if (c[i].available < 0 || c[i].held < 0 || c[i].sold < 0) v->negative++;
  }
  for (size_t i = 0; i < nu; i++) {
    if (u[i].campaign >= nc) continue;
    uint32_t lim = c[u[i].campaign].per_user_limit;
    if (lim && u[i].held + u[i].sold + u[i].waiting > (int64_t)lim) v->users_over_limit++;
  }
  v->pass = v->oversold == 0 && v->not_conserved == 0 && v->negative == 0 &&
            v->users_over_limit == 0;
}

void pt_verdict_unanswered(pt_verdict *v, uint64_t unanswered) {
  v->unanswered = unanswered;
  if (unanswered) v->pass = false;
}

void pt_verdict_print(FILE *f, const pt_verdict *v) {
  fprintf(f, "verdict: oversold %lld, users over limit %zu, stock conserved %s, negative counters %zu"
             " (%zu campaigns, %zu users checked), unanswered %llu: %s\n",
          (long long)v->oversold, v->users_over_limit, v->not_conserved ? "NO" : "yes",
          v->negative, v->campaigns, v->users, (unsigned long long)v->unanswered, v->pass ? "PASS" : "FAIL");
}
