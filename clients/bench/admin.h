/* The set-up and the verdict, over libpintuan's blocking client (with its
 * failover): the admin connection (-k key), the run's campaigns, and at the
 * end the campaigns' states and the holdings of every user who got a unit,
 * checked by pt_verdict_check. Each returns 0, or non-zero/NULL after a
 * message on stderr (the verdict's caller prints pintuan_error). */
#ifndef PT_BENCH_ADMIN_H
#define PT_BENCH_ADMIN_H

#include "bench.h"
#include "verdict.h"

pintuan_client *admin_connect(const bench *b);
int admin_create_campaigns(bench *b, pintuan_client *c);
int admin_verdict(bench *b, pintuan_client *c, pt_verdict *v);

#endif
